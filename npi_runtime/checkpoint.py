"""Run directories: the weights, the manifest and the resume state, written atomically.

A RUN_DIR holds

* `model.safetensors`: the weights to use (safetensors: no pickle anywhere a user loads);
* `manifest.json`: the programs in program-memory order (qualified names), the environments
  with their vocabularies and encoder configurations, the model sizes, the programs' source
  hash, the training configuration, the progress, npi's version, and the weights' SHA-256;
* `resume/`: what `npi train --resume` needs: `state.json` (counters, the epoch's data order
  position, curriculum and early-stopping state, learning rate) pointing at a weights file and
  an optimizer file (`model-STEP.safetensors`, `optim-STEP.safetensors`, tensors only) of the
  same step, plus the torch RNG state as a tensor.

Every file is written to a temporary name, fsynced and moved into place with `os.replace`. The
resume state is committed by its `state.json`, written after the files it names, so a kill at
any moment leaves the previous complete checkpoint. A corrupt or mismatched file is a
`CheckpointError` with a message that says what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from npi_dsl.errors import NpiError
from npi_dsl.trace import ACT
from npi_runtime.encoders import encoder_from_description
from npi_runtime.model import NPI, NPIConfig

FORMAT = "npi-checkpoint/1"
MODEL_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"
RESUME_DIR = "resume"
STATE_FILE = "state.json"


class CheckpointError(NpiError):
    """A run directory that cannot be used: missing, corrupt, or not fitting the programs."""


# ------------------------------------------------------------------------ atomic writing


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8")


def _tensors_bytes(tensors: Mapping[str, torch.Tensor]) -> bytes:
    return st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is corrupt (not a readable safetensors file: {e})") from None


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise CheckpointError(f"{path} is corrupt (not valid JSON: {e})") from None


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------ weights


def save_model(run_dir: Path, model: NPI, manifest: dict) -> None:
    """Write `model.safetensors` then `manifest.json` (which records the weights' hash)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = _tensors_bytes(model.state_dict())
    manifest = dict(manifest)
    manifest["programs"] = list(model.memory.names)
    manifest["weights"] = {"file": MODEL_FILE, "sha256": sha256(data)}
    write_atomic(run_dir / MODEL_FILE, data)
    write_atomic(run_dir / MANIFEST_FILE, _json_bytes(manifest))


def read_manifest(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a run directory (no such directory)")
    manifest = _read_json(run_dir / MANIFEST_FILE)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{run_dir / MANIFEST_FILE} is not an {FORMAT} manifest")
    for key in ("programs", "environments", "model"):
        if key not in manifest:
            raise CheckpointError(f"{run_dir / MANIFEST_FILE} is corrupt: no {key!r}")
    return manifest


def build_model(manifest: dict) -> NPI:
    """An untrained model of the manifest's shape (programs, encoders, sizes)."""
    try:
        config = NPIConfig.from_dict(manifest["model"])
        encoders = {name: encoder_from_description(env["encoder"])
                    for name, env in manifest["environments"].items()}
        return NPI(config, encoders, manifest["programs"])
    except (KeyError, TypeError, ValueError) as e:
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


def load_model(run_dir: Path) -> tuple[NPI, dict]:
    """The trained model of a run directory and its manifest (weights checked by hash)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    path = run_dir / MODEL_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: training has not written a checkpoint "
                              "yet") from None
    want = manifest.get("weights", {}).get("sha256")
    if want is not None and sha256(data) != want:
        raise CheckpointError(f"{path} is corrupt: its SHA-256 differs from the one in "
                              f"{MANIFEST_FILE}")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is corrupt (not a readable safetensors file: {e})") from None
    model = build_model(manifest)
    _load_weights(model, tensors, path)
    model.eval()
    return model, manifest


# ------------------------------------------------------------------ fitting a program file


def env_entry(header: dict, encoder_description: dict) -> dict:
    """The manifest's description of one environment (a trace's `env` header + encoder)."""
    return {"config": header["config"], "vocabulary": header["vocabulary"],
            "encoder": encoder_description}


def fit_programs(model: NPI, manifest: dict, env_name: str, env_header: dict,
                 programs: tuple[str, ...], what: str) -> list[str]:
    """Check that a program file fits the checkpoint; add its new programs to the memory.

    Refused (CheckpointError): another environment, another vocabulary or configuration, or
    programs the checkpoint knows that the file lacks. Accepted: a file that adds programs;
    they get fresh rows in the program memory. Returns the added programs.
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
    memory = [p for p in model.memory.names if p != ACT]
    missing = [p for p in memory if p not in programs]
    if missing:
        raise CheckpointError(
            f"the checkpoint was trained on programs that {what} does not define: "
            f"{', '.join(missing)} (it knows {', '.join(memory)}; the file defines "
            f"{', '.join(programs)})")
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


def save_resume(run_dir: Path, state: dict, model: NPI, optimizer: torch.optim.Optimizer,
                extra: Mapping[str, torch.Tensor]) -> None:
    """Write the resume files of `state["step"]`, commit them with state.json, prune old ones."""
    rdir = Path(run_dir) / RESUME_DIR
    rdir.mkdir(parents=True, exist_ok=True)
    step = int(state["step"])
    names = {"weights": f"model-{step}.safetensors", "optimizer": f"optim-{step}.safetensors",
             "extra": f"extra-{step}.safetensors"}
    write_atomic(rdir / names["weights"], _tensors_bytes(model.state_dict()))
    write_atomic(rdir / names["optimizer"], _tensors_bytes(optimizer_tensors(model, optimizer)))
    write_atomic(rdir / names["extra"], _tensors_bytes(dict(extra)))
    state = {**state, "files": names, "optimizer_groups": optimizer_groups(optimizer)}
    write_atomic(rdir / STATE_FILE, _json_bytes(state))
    keep = set(names.values()) | {STATE_FILE}
    for f in rdir.iterdir():
        if f.name not in keep and f.suffix == ".safetensors":
            try:
                f.unlink()
            except OSError:
                pass


def load_resume(run_dir: Path) -> ResumeState:
    rdir = Path(run_dir) / RESUME_DIR
    if not (rdir / STATE_FILE).is_file():
        raise CheckpointError(f"{run_dir} has no resume state ({RESUME_DIR}/{STATE_FILE}); "
                              "it was not written by npi train, or training never reached "
                              "its first checkpoint")
    state = _read_json(rdir / STATE_FILE)
    try:
        files = state["files"]
        return ResumeState(state=state, weights=_read_tensors(rdir / files["weights"]),
                           optimizer=_read_tensors(rdir / files["optimizer"]),
                           extra=_read_tensors(rdir / files["extra"]))
    except (KeyError, TypeError):
        raise CheckpointError(f"{rdir / STATE_FILE} is corrupt: no file list") from None


def restore_weights(model: NPI, resume: ResumeState, run_dir: Path) -> None:
    _load_weights(model, resume.weights, Path(run_dir) / RESUME_DIR)


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
        state.setdefault(params[name], {})[k] = t.clone()
    optimizer.state.clear()
    for p, st in state.items():
        optimizer.state[p] = st
    for g, saved in zip(optimizer.param_groups, resume.state.get("optimizer_groups", []),
                        strict=False):
        for k, v in saved.items():
            g[k] = tuple(v) if isinstance(g.get(k), tuple) else v
