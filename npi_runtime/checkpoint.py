"""Run directories: the weights, the manifest and the resume state, committed atomically.

A RUN_DIR (docs/training.md, "The run directory") holds

* `checkpoints/current`: a symbolic link to the committed checkpoint, `checkpoints/ckpt-SEQ/`,
  a directory with `manifest.json`, `model.safetensors` (the weights), `optim.safetensors`
  (Adam's state), `extra.safetensors` (RNG state, the epoch's frame order) and `state.json`
  (counters, curriculum and early-stopping state); the manifest records the SHA-256 of
  every other file of the directory;
* `model.safetensors` and `manifest.json`: symbolic links to those of `checkpoints/current`,
  the layout `npi verify RUN_DIR` and users read;
* `metrics.jsonl` (one record per validation) and `.lock` (held by the one `npi train`
  writing the directory).

The commit protocol: a checkpoint is written whole into a hidden temporary directory (every
file fsynced, then the directory), renamed to `ckpt-SEQ`, and committed by replacing the
`current` link with one `os.replace` (then the parent is fsynced). A kill at any moment
leaves the previous committed checkpoint; what is not committed (temporary files and
directories, checkpoints `current` does not name) is removed on the next start. Reading
always goes through `current`, so the top-level links only serve a user's eyes.

Run directories of earlier versions (real `model.safetensors` and `manifest.json` files, the
resume state in `resume/`) are still read and resumed; their first new checkpoint converts
them. A corrupt or mismatched run directory is a `CheckpointError` (exit status 2) with a
message that says what is wrong.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from npi_dsl.errors import NpiError
from npi_dsl.trace import ACT
from npi_dsl.trace_files import fsync_directory, remove_stale_temporaries, temporary_name
from npi_runtime.encoders import encoder_from_description
from npi_runtime.model import NPI, NPIConfig

FORMAT = "npi-checkpoint/1"
MODEL_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"
CHECKPOINTS_DIR = "checkpoints"
CURRENT = "current"
OPTIM_FILE = "optim.safetensors"
EXTRA_FILE = "extra.safetensors"
STATE_FILE = "state.json"
LOCK_FILE = ".lock"
RESUME_DIR = "resume"  # the resume state of run directories of earlier versions

#: every temporary name npi writes: `.NAME.PID.HEX.tmp`
_TMP = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.tmp$")
_CKPT = re.compile(r"^ckpt-(\d{6,})$")

#: the largest model a manifest may describe (parameters), checked before anything is built
MAX_PARAMETERS = 200_000_000
_MAX_DIM = 16_384

#: called with a label before every file operation of a checkpoint and of an atomic write;
#: the fault-injection tests raise from it to simulate a kill at that operation
FAULT_HOOK: Callable[[str], None] | None = None


class CheckpointError(NpiError):
    """A run directory that cannot be used: missing, corrupt, or not fitting the programs.

    Bad input: `npi` exits 2."""

    exit_code = 2


def fault_point(label: str) -> None:
    """A file operation: the fault-injection hook may raise here (`FAULT_HOOK`)."""
    if FAULT_HOOK is not None:
        FAULT_HOOK(label)


# ------------------------------------------------------------------------ atomic writing


def _tmp_name(path: Path) -> Path:
    return Path(temporary_name(path))


def fsync_dir(path: Path) -> None:
    fault_point(f"fsync {Path(path).name}/")
    fsync_directory(path)


def _write_synced(path: Path, data: bytes) -> None:
    fault_point(f"write {path.name}")
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        fault_point(f"fsync {path.name}")
        os.fsync(f.fileno())


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename.

    An error removes the temporary file; a kill leaves it (`.NAME.PID.HEX.tmp`), and the next
    write of the same path removes it (`remove_stale_temporaries`), as does the next `npi
    train` of the run directory."""
    path = Path(path)
    remove_stale_temporaries(path)
    tmp = _tmp_name(path)
    try:
        _write_synced(tmp, data)
        fault_point(f"rename {path.name}")
        os.replace(tmp, path)
    except Exception:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8")


def _tensors_bytes(tensors: Mapping[str, torch.Tensor]) -> bytes:
    return st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None


def _parse_tensors(data: bytes, path: Path) -> dict[str, torch.Tensor]:
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is corrupt (not a readable safetensors file: {e})") from None


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    return _parse_tensors(_read_bytes(path), path)


def _parse_json(data: bytes, path: Path) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt (not valid JSON: {e})") from None


def _read_json(path: Path) -> Any:
    return _parse_json(_read_bytes(path), path)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- the run directory's state


def committed_dir(run_dir: Path) -> Path | None:
    """The committed checkpoint's directory (`checkpoints/current`), or None."""
    link = Path(run_dir) / CHECKPOINTS_DIR / CURRENT
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    if not _CKPT.match(target) or not (link.parent / target).is_dir():
        raise CheckpointError(f"{link} is corrupt: it names {target!r}, not a checkpoint "
                              "directory beside it")
    return link.parent / target


def holds_run(run_dir: Path) -> bool:
    """Whether `run_dir` holds a committed run (of this version or an earlier one)."""
    run_dir = Path(run_dir)
    return (run_dir / CHECKPOINTS_DIR / CURRENT).is_symlink() or (
        (run_dir / MANIFEST_FILE).is_file() and not (run_dir / MANIFEST_FILE).is_symlink())


def _source(run_dir: Path) -> Path:
    """Where the committed manifest and weights are: `checkpoints/current`, or the run
    directory itself (a run of an earlier version)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a run directory (no such directory)")
    current = committed_dir(run_dir)
    if current is not None:
        return current
    if (run_dir / MANIFEST_FILE).is_symlink() or (
            not (run_dir / MANIFEST_FILE).exists() and (run_dir / CHECKPOINTS_DIR).is_dir()):
        raise CheckpointError(f"{run_dir} holds no committed checkpoint: training was "
                              "interrupted before its first one; train it again with "
                              f"npi train -o {run_dir}")
    return run_dir


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold `RUN_DIR/.lock` (flock, exclusive): a second writer is refused, not queued."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise CheckpointError(f"cannot lock {run_dir / LOCK_FILE}: {e}") from None
            other = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            raise CheckpointError(
                f"{run_dir} is being written by another npi train"
                f"{f' (process {other})' if other.isdigit() else ''}; wait for it to end, or "
                "choose another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def clean(run_dir: Path) -> None:
    """Remove what no commit names (only names npi writes): temporary files and directories,
    checkpoints other than the committed one, the resume state of an earlier version once a
    checkpoint of this one is committed; then make the top-level links. Call it holding the
    lock."""
    run_dir = Path(run_dir)
    cdir = run_dir / CHECKPOINTS_DIR
    current = committed_dir(run_dir)
    if cdir.is_dir():
        for entry in cdir.iterdir():
            ours = _CKPT.match(entry.name) or _TMP.match(entry.name)  # nothing else is touched
            if ours and (current is None or entry.name != current.name):
                fault_point(f"remove {entry.name}")
                _remove(entry)
    for entry in run_dir.iterdir():
        if _TMP.match(entry.name):
            _remove(entry)
    if current is not None:
        _link_top_level(run_dir)
        if (run_dir / RESUME_DIR).is_dir():
            _remove(run_dir / RESUME_DIR)
    if cdir.is_dir():
        fsync_dir(cdir)
    fsync_dir(run_dir)


def _link_top_level(run_dir: Path) -> None:
    for name in (MODEL_FILE, MANIFEST_FILE):
        path = run_dir / name
        target = f"{CHECKPOINTS_DIR}/{CURRENT}/{name}"
        if path.is_symlink() and os.readlink(path) == target:
            continue
        tmp = _tmp_name(path)
        fault_point(f"symlink {name}")
        os.symlink(target, tmp)
        fault_point(f"rename {name}")
        os.replace(tmp, path)


def start_fresh(run_dir: Path, earlier_attempt: bool) -> None:
    """Before a new run (`-o`) in a directory without a committed run: remove what an
    interrupted earlier start left (uncommitted checkpoints, temporary files, and its
    metrics.jsonl when `earlier_attempt`, the lock file existed before: npi train wrote
    here). Call it holding the lock."""
    run_dir = Path(run_dir)
    if earlier_attempt or (run_dir / CHECKPOINTS_DIR).is_dir():
        _remove(run_dir / "metrics.jsonl")
    clean(run_dir)


def commit_checkpoint(run_dir: Path, files: Mapping[str, bytes], manifest: dict) -> Path:
    """Write one checkpoint (`files` and the manifest, which gets their hashes) and commit it
    by replacing `checkpoints/current`; remove the previous one. Returns its directory."""
    run_dir = Path(run_dir)
    cdir = run_dir / CHECKPOINTS_DIR
    cdir.mkdir(parents=True, exist_ok=True)
    current = committed_dir(run_dir)
    seq = int(_CKPT.match(current.name).group(1)) + 1 if current is not None else 1  # type: ignore[union-attr]
    name = f"ckpt-{seq:06d}"
    manifest = {**manifest, "files": {n: sha256(b) for n, b in files.items()}}
    if MODEL_FILE in files:
        manifest["weights"] = {"file": MODEL_FILE, "sha256": manifest["files"][MODEL_FILE]}
    tmp = _tmp_name(cdir / name)
    fault_point(f"mkdir {name}")
    tmp.mkdir()
    for n, data in {**files, MANIFEST_FILE: _json_bytes(manifest)}.items():
        _write_synced(tmp / n, data)
    fsync_dir(tmp)
    fault_point(f"rename {name}")
    os.rename(tmp, cdir / name)
    fsync_dir(cdir)
    link = _tmp_name(cdir / CURRENT)
    fault_point(f"symlink {CURRENT}")
    os.symlink(name, link)
    fault_point(f"commit {name}")
    os.replace(link, cdir / CURRENT)  # the commit
    fsync_dir(cdir)
    clean(run_dir)
    return cdir / name


# ------------------------------------------------------------------- checking a manifest


def _bad(where: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{where} is corrupt: {what}")


def _int_in(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def validate_manifest(manifest: Any, where: Path) -> dict:
    """Type- and range-check every field a manifest's reader uses, before anything is built."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not an {FORMAT} manifest")
    for key in ("programs", "environments", "model"):
        if key not in manifest:
            raise _bad(where, f"no {key!r}")
    programs = manifest["programs"]
    if not (isinstance(programs, list) and programs and len(programs) <= 100_000
            and all(isinstance(p, str) and p for p in programs)):
        raise _bad(where, "'programs' is not a list of program names")
    if programs[0] != ACT or len(set(programs)) != len(programs):
        raise _bad(where, f"'programs' must start with {ACT} and name each program once")
    envs = manifest["environments"]
    if not (isinstance(envs, dict) and envs):
        raise _bad(where, "'environments' is not an object of environments")
    for name, env in envs.items():
        if not (isinstance(env, dict) and isinstance(env.get("encoder"), dict)):
            raise _bad(where, f"environment {name!r} has no encoder")
        enc = env["encoder"]
        slots = enc.get("slots")
        if enc.get("kind") not in ("symbol", "image"):
            raise _bad(where, f"environment {name!r}: unknown encoder kind {enc.get('kind')!r}")
        if enc["kind"] == "image" and not (
                isinstance(enc.get("image_shape"), list) and len(enc["image_shape"]) == 3
                and all(_int_in(x, 1, 1024) for x in enc["image_shape"])
                and isinstance(enc.get("env"), str) and isinstance(enc.get("image_name"), str)
                and _int_in(enc.get("image_slot"), 0, 4096)):
            raise _bad(where, f"environment {name!r}: the image encoder's 'env', "
                       "'image_name', 'image_slot' or 'image_shape' is malformed")
        if not (isinstance(slots, list) and len(slots) <= 4096
                and (slots or enc["kind"] == "image")):
            raise _bad(where, f"environment {name!r}: encoder 'slots' is not a list")
        for key, hi in (("arg_range", 100_000), ("hidden", _MAX_DIM),
                        ("state_dim", _MAX_DIM), ("layers", 16)):
            if not _int_in(enc.get(key, 1), 1, hi):
                raise _bad(where, f"environment {name!r}: encoder {key!r} is "
                           f"{enc.get(key)!r}, not a whole number in 1..{hi}")
    model = manifest["model"]
    if not isinstance(model, dict):
        raise _bad(where, "'model' is not an object")
    limits = {"layers": 16, "arg_range": 100_000}
    for f in fields(NPIConfig):
        if f.name in model and not _int_in(model[f.name], 1, limits.get(f.name, _MAX_DIM)):
            raise _bad(where, f"model.{f.name} is {model[f.name]!r}, not a whole number in "
                       f"1..{limits.get(f.name, _MAX_DIM)}")
    weights = manifest.get("weights")
    if not (isinstance(weights, dict) and isinstance(weights.get("sha256"), str)):
        raise _bad(where, f"it records no SHA-256 of {MODEL_FILE} ('weights'); a manifest "
                   "written by npi train always does")
    files = manifest.get("files", {})
    if not (isinstance(files, dict) and all(isinstance(v, str) for v in files.values())):
        raise _bad(where, "'files' is not an object of hashes")
    for key in ("training", "progress", "data", "signatures"):
        if key in manifest and not isinstance(manifest[key], (dict, type(None))):
            raise _bad(where, f"{key!r} is not an object")
    _validate_training(manifest.get("training") or {}, where)
    data = manifest.get("data") or {}
    lengths = data.get("lengths", [])
    if not (isinstance(lengths, list) and all(_int_in(n, 0, 10**7) for n in lengths)):
        raise _bad(where, "data.lengths is not a list of lengths")
    _validate_tasks(manifest, where)
    signatures = manifest.get("signatures") or {}
    if not all(_int_in(v, 0, 3) for v in signatures.values()):
        raise _bad(where, "'signatures' is not an object of arities (0..3)")
    n = _parameter_count(manifest, where)
    if n > MAX_PARAMETERS:
        raise _bad(where, f"it describes a model of {n:,} parameters (at most "
                   f"{MAX_PARAMETERS:,})")
    return manifest


def _validate_tasks(manifest: dict, where: Path) -> None:
    """The `tasks` of a run of several (npi_runtime.multitask): each names its label, an
    encoder of `environments` and programs of `programs`."""
    if "tasks" not in manifest:
        return
    tasks = manifest["tasks"]
    if not (isinstance(tasks, list) and tasks and len(tasks) <= 10_000):
        raise _bad(where, "'tasks' is not a list of tasks")
    known = set(manifest["programs"])
    for i, t in enumerate(tasks):
        if not (isinstance(t, dict) and isinstance(t.get("label"), str)
                and isinstance(t.get("task"), str)
                and t.get("environment") in manifest["environments"]
                and isinstance(t.get("programs"), list)
                and all(isinstance(p, str) and p in known for p in t["programs"])
                and isinstance(t.get("data", {}), dict)):
            raise _bad(where, f"tasks[{i}] does not describe a task of this network (its "
                       "label, task, environment or programs)")
    learned = manifest.get("learned_from")
    if learned is not None and not (isinstance(learned, dict)
                                    and isinstance(learned.get("scope", {}), dict)):
        raise _bad(where, "'learned_from' is not an object")


def _validate_training(training: dict, where: Path) -> None:
    from npi_runtime.train import PRECISIONS, TrainConfig

    defaults = TrainConfig()
    for f in fields(TrainConfig):
        if f.name not in training:
            continue
        value, default = training[f.name], getattr(defaults, f.name)
        if f.name == "precision":
            ok = value in PRECISIONS
        elif isinstance(default, tuple):
            ok = isinstance(value, list) and len(value) <= 64 and all(
                _int_in(x, 1, 10**6) for x in value)
        elif isinstance(default, int):
            ok = _int_in(value, 0, 10**12) and (value >= 1 or f.name not in (
                "batch_frames", "val_count", "threads", "decay_steps", "patience"))
        else:
            ok = _number(value)
        if not ok:
            raise _bad(where, f"training.{f.name} is {value!r}")


def _parameter_count(manifest: dict, where: Path) -> int:
    """The parameters of the model a manifest describes, counted on torch's meta device."""
    try:
        with torch.device("meta"):
            model = build_model(manifest)
    except CheckpointError:
        raise
    except Exception as e:  # a shape torch refuses
        raise _bad(where, f"it does not describe a model: {e}") from None
    return sum(p.numel() for p in model.parameters())


def read_manifest(run_dir: Path) -> dict:
    """The committed manifest of a run directory, checked field by field."""
    path = _source(run_dir) / MANIFEST_FILE
    return validate_manifest(_read_json(path), path)


def build_model(manifest: dict) -> NPI:
    """An untrained model of the manifest's shape (programs, encoders, sizes)."""
    try:
        config = NPIConfig.from_dict(manifest["model"])
        encoders = {name: encoder_from_description(env["encoder"])
                    for name, env in manifest["environments"].items()}
        model = NPI(config, encoders, manifest["programs"])
        from npi_runtime.multitask import entry_identity

        model.env_keys = {entry_identity(k, e): k for k, e in manifest["environments"].items()}
        return model
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
        raise CheckpointError(f"the manifest does not describe a model: {e}") from None


def _load_weights(model: NPI, tensors: dict[str, torch.Tensor], where: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{where} does not fit its manifest: missing {missing[:3]}, "
                              f"unexpected {extra[:3]}")
    for k, v in expected.items():
        if tensors[k].shape != v.shape or tensors[k].dtype != v.dtype:
            raise CheckpointError(f"{where}: tensor {k} is {tuple(tensors[k].shape)} "
                                  f"{tensors[k].dtype}, the manifest implies {tuple(v.shape)}")
    model.load_state_dict(tensors)


def _checked_bytes(src: Path, name: str, want: str | None) -> bytes:
    data = _read_bytes(src / name)
    if want is not None and sha256(data) != want:
        raise CheckpointError(f"{src / name} is corrupt: its SHA-256 differs from the one in "
                              f"{MANIFEST_FILE} (edited, or damaged on disk)")
    return data


def load_model(run_dir: Path) -> tuple[NPI, dict]:
    """The trained model of a run directory and its manifest (weights checked by hash).

    Read while training commits a newer checkpoint (and removes the one being read), it
    reads the newer one."""
    for _ in range(3):
        before = _current_name(run_dir)
        try:
            return _load_model(run_dir)
        except CheckpointError:
            if before is None or _current_name(run_dir) == before:
                raise
    return _load_model(run_dir)


def _current_name(run_dir: Path) -> str | None:
    try:
        return os.readlink(Path(run_dir) / CHECKPOINTS_DIR / CURRENT)
    except OSError:
        return None


def _load_model(run_dir: Path) -> tuple[NPI, dict]:
    src = _source(run_dir)
    manifest = read_manifest(run_dir)
    data = _checked_bytes(src, MODEL_FILE, manifest["weights"]["sha256"])
    tensors = _parse_tensors(data, src / MODEL_FILE)
    model = build_model(manifest)
    _load_weights(model, tensors, src / MODEL_FILE)
    model.eval()
    return model, manifest


# ------------------------------------------------------------------ fitting a program file


def env_entry(header: dict, encoder_description: dict) -> dict:
    """The manifest's description of one environment (a trace's `env` header + encoder)."""
    return {"config": header["config"], "vocabulary": header["vocabulary"],
            "encoder": encoder_description}


def fit_programs(model: NPI, manifest: dict, env_name: str, env_header: dict,
                 programs: tuple[str, ...], what: str, *,
                 arities: Mapping[str, int] | None = None,
                 arg_range: int | None = None) -> list[str]:
    """Check that a program file fits the checkpoint; add its new programs to the memory.

    Refused (CheckpointError): another environment, another vocabulary, configuration or
    argument range, programs the checkpoint knows that the file lacks, the checkpoint's
    programs in another order than the file's, or a program whose arity changed. Accepted:
    a file that adds programs; they get fresh rows in the program memory. Returns the added
    programs.
    """
    envs = manifest["environments"]
    if env_name not in envs:
        raise CheckpointError(
            f"the checkpoint was trained on env {', '.join(sorted(envs))}, but {what} uses "
            f"env {env_name}")
    known = envs[env_name]
    for key in ("config", "vocabulary"):
        if _canon(known.get(key)) != _canon(env_header[key]):
            raise CheckpointError(
                f"env {env_name} of {what} has another {key} than the one the checkpoint "
                f"was trained on ({_canon(known.get(key))} vs {_canon(env_header[key])})")
    if arg_range is not None and manifest["model"].get("arg_range", arg_range) != arg_range:
        raise CheckpointError(
            f"the checkpoint was trained with arguments 0..{manifest['model']['arg_range'] - 1}"
            f", but {what} uses 0..{arg_range - 1}")
    memory = [p for p in model.memory.names if p != ACT]
    missing = [p for p in memory if p not in programs]
    if missing:
        raise CheckpointError(
            f"the checkpoint was trained on programs that {what} does not define: "
            f"{', '.join(missing)} (it knows {', '.join(memory)}; the file defines "
            f"{', '.join(programs)})")
    in_file_order = [p for p in programs if p in memory]
    if in_file_order != memory:
        raise CheckpointError(
            f"the checkpoint's program memory is in the order {', '.join(memory)}, but "
            f"{what} orders them {', '.join(in_file_order)}: its manifest.json was edited or "
            "is corrupt")
    signatures = manifest.get("signatures") or {}
    if arities is not None:
        changed = [f"{p} ({signatures[p]} -> {arities[p]})" for p in memory
                   if p in signatures and p in arities and signatures[p] != arities[p]]
        if changed:
            raise CheckpointError(
                f"programs of {what} take another number of arguments than when the "
                f"checkpoint was trained: {', '.join(changed)}")
    added = [p for p in programs if p not in model.memory.names]
    for p in added:
        model.memory.add_program(p)
    return added


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# --------------------------------------------------------------------------- resume state


@dataclass
class ResumeState:
    """Everything `--resume` needs besides the manifest."""

    state: dict  # counters and small state (JSON)
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    extra: dict[str, torch.Tensor]  # RNG state, the epoch's frame order


def save_checkpoint(run_dir: Path, state: dict, model: NPI, optimizer: torch.optim.Optimizer,
                    extra: Mapping[str, torch.Tensor], manifest: dict) -> Path:
    """Commit the checkpoint of `state["step"]`: weights, optimizer, extra tensors, the
    state and the manifest, as one (`commit_checkpoint`)."""
    state = {**state, "optimizer_groups": optimizer_groups(optimizer)}
    manifest = {**manifest, "programs": list(model.memory.names)}
    files = {MODEL_FILE: _tensors_bytes(model.state_dict()),
             OPTIM_FILE: _tensors_bytes(optimizer_tensors(model, optimizer)),
             EXTRA_FILE: _tensors_bytes(dict(extra)),
             STATE_FILE: _json_bytes(state)}
    return commit_checkpoint(run_dir, files, manifest)


def save_model(run_dir: Path, model: NPI, manifest: dict) -> Path:
    """Commit a checkpoint of weights only (no resume state): a run directory `npi verify`
    reads but `--resume` cannot continue. `run_dir` is locked meanwhile."""
    manifest = {k: v for k, v in manifest.items() if k not in ("files", "weights")}
    manifest["programs"] = list(model.memory.names)
    with run_lock(run_dir):
        return commit_checkpoint(run_dir, {MODEL_FILE: _tensors_bytes(model.state_dict())},
                                 manifest)


def load_resume(run_dir: Path) -> ResumeState:
    """The committed resume state (every file checked against the manifest's hashes)."""
    run_dir = Path(run_dir)
    src = _source(run_dir)
    if src == run_dir:
        return _load_old_resume(run_dir)
    manifest = read_manifest(run_dir)
    hashes = manifest.get("files", {})
    for name in (MODEL_FILE, OPTIM_FILE, EXTRA_FILE, STATE_FILE):
        if name not in hashes:
            raise _bad(src / MANIFEST_FILE, f"it records no SHA-256 of {name}")
    blobs = {n: _checked_bytes(src, n, hashes[n])
             for n in (MODEL_FILE, OPTIM_FILE, EXTRA_FILE, STATE_FILE)}
    _checked_bytes(src, MODEL_FILE, manifest["weights"]["sha256"])
    state = _parse_json(blobs[STATE_FILE], src / STATE_FILE)
    if not isinstance(state, dict):
        raise _bad(src / STATE_FILE, "not an object")
    return ResumeState(state=state, weights=_parse_tensors(blobs[MODEL_FILE], src / MODEL_FILE),
                       optimizer=_parse_tensors(blobs[OPTIM_FILE], src / OPTIM_FILE),
                       extra=_parse_tensors(blobs[EXTRA_FILE], src / EXTRA_FILE))


def _load_old_resume(run_dir: Path) -> ResumeState:
    """The resume state of a run directory of an earlier version (`resume/state.json`)."""
    rdir = run_dir / RESUME_DIR
    copied = run_dir / CHECKPOINTS_DIR / CURRENT
    if copied.is_dir() and not copied.is_symlink():
        raise CheckpointError(
            f"{run_dir} was copied following its symbolic links ({copied} is a directory, "
            "not a link): npi verify reads it, but to resume training copy the original with "
            "its links (cp -a, or shutil.copytree(..., symlinks=True))")
    if not (rdir / STATE_FILE).is_file():
        raise CheckpointError(f"{run_dir} has no resume state ({RESUME_DIR}/{STATE_FILE}); "
                              "it was not written by npi train")
    state = _read_json(rdir / STATE_FILE)
    try:
        files = state["files"]
        return ResumeState(state=state, weights=_read_tensors(rdir / files["weights"]),
                           optimizer=_read_tensors(rdir / files["optimizer"]),
                           extra=_read_tensors(rdir / files["extra"]))
    except (KeyError, TypeError):
        raise CheckpointError(f"{rdir / STATE_FILE} is corrupt: no file list") from None


def restore_weights(model: NPI, resume: ResumeState, run_dir: Path) -> None:
    _load_weights(model, resume.weights, Path(run_dir) / CHECKPOINTS_DIR)


def optimizer_tensors(model: NPI, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state as named tensors (`PARAM::KEY`)."""
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for p, st in optimizer.state.items():
        for k, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            out[f"{names[id(p)]}::{k}"] = t
    return out


def optimizer_groups(optimizer: torch.optim.Optimizer) -> list[dict]:
    return [{k: v for k, v in g.items() if k != "params" and _jsonable(v)}
            for g in optimizer.param_groups]


def _jsonable(v: Any) -> bool:
    return isinstance(v, (int, float, bool, str, type(None))) or (
        isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) for x in v))


def restore_optimizer(model: NPI, optimizer: torch.optim.Optimizer, resume: ResumeState) -> None:
    params = dict(model.named_parameters())
    state: dict[torch.nn.Parameter, dict[str, torch.Tensor]] = {}
    for key, t in resume.optimizer.items():
        name, _, k = key.partition("::")
        if name not in params:
            raise CheckpointError(f"the optimizer state names an unknown parameter {name}")
        if k in ("exp_avg", "exp_avg_sq") and t.shape != params[name].shape:
            raise CheckpointError(f"the optimizer state of {name} is {tuple(t.shape)}, the "
                                  f"parameter {tuple(params[name].shape)}")
        # Adam's moments live where the parameter does; its step count stays on the CPU
        moved = t.clone() if k == "step" else t.to(params[name].device, copy=True)
        state.setdefault(params[name], {})[k] = moved
    optimizer.state.clear()
    for p, st in state.items():
        optimizer.state[p] = st
    groups = resume.state.get("optimizer_groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise CheckpointError("the resume state's optimizer_groups is not a list of objects")
    for g, saved in zip(optimizer.param_groups, groups, strict=False):
        for k, v in saved.items():
            if k in g and type(g[k]) is not type(v) and not (
                    isinstance(g[k], tuple) and isinstance(v, list)) and not (
                    _number(g[k]) and _number(v)):
                raise CheckpointError(f"the resume state's optimizer setting {k} is {v!r}")
            g[k] = tuple(v) if isinstance(g.get(k), tuple) else v
