"""The Python API: everything the CLI does, callable from a notebook (docs/api.md).

    from npi_runtime import api
    checked = api.load_program("programs/addition.npi")
    traces = api.compile_traces(checked, lengths=range(1, 21), count=32, seed=1)
    result = api.train(checked, traces, "runs/add")
    model = api.load_model("runs/add", checked)
    api.run_network(model, checked, [["96", "125"]])      # [{"result": "221", ...}]
    report = api.verify(model, checked, lengths=[100, 1000], count=20, seed=7)

Errors are exceptions, all `npi_dsl.errors.NpiError`: `DiagnosticError` (a bad program file),
`TraceFormatError` (a bad trace file), `TraceError` (traces that do not fit the program file),
`CheckpointError` (a missing, corrupt or mismatched run directory), `NpiRuntimeError` (the
reference program failed), `EnvError` (an input the environment refuses).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from npi_dsl.checker import Checked, load
from npi_dsl.errors import NpiError
from npi_dsl.interpreter import TaskRunner, compile_task
from npi_dsl.trace import env_header
from npi_runtime import checkpoint as ckpt
from npi_runtime.data import FrameSet, TraceError, build_frameset
from npi_runtime.encoders import make_encoder
from npi_runtime.executor import NeuralExecutor, Outcome
from npi_runtime.model import NPI, NPIConfig
from npi_runtime.train import TrainConfig, Trainer
from npi_runtime.val_defaults import plan_validation
from npi_runtime.verify import VerifyReport, verify_sets
from npi_runtime.verify import verify as _verify

__all__ = [
    "NPIConfig", "TrainConfig", "TrainResult", "load_program", "task_runner", "compile_traces",
    "read_traces", "new_model", "train", "train_tasks", "learn_programs", "load_model",
    "run_network", "verify",
]


def load_program(path: str | Path) -> Checked:
    """Parse and check a .npi file (raises DiagnosticError listing every error)."""
    return load(path)


def task_runner(checked: Checked, task: str | None = None, *, max_steps: int = 5_000_000,
                max_depth: int = 20_000, engine: str = "compiled") -> TaskRunner:
    """The symbolic reference of a task (`task` may be None when the file has one task).

    `engine="reference"` runs it with the tree-walking interpreter that defines the
    language's meaning (npi_dsl/reference.py: the same traces, slower)."""
    return compile_task(checked, checked.task(task).name, max_steps=max_steps,  # type: ignore[return-value]
                        max_depth=max_depth, engine=engine)


def compile_traces(checked: Checked, task: str | None = None, *, lengths: Iterable[int],
                   count: int, seed: int = 0, path: str | Path | None = None,
                   cover: bool = False, pool: int | None = None,
                   cover_programs: Iterable[str] | None = None,
                   cover_score: str = "count", engine: str = "compiled") -> list[dict]:
    """Traces of `count` inputs per length, as `npi compile` makes them (and writes them to
    `path` if given). `cover=True` chooses each input from `pool` candidates by the decision
    contexts it adds, as `npi compile --cover [--pool] [--cover-programs] [--cover-score]`
    does (docs/tasks.md); `cover_programs` takes bare or qualified program names; `engine`
    as for `task_runner`."""
    from npi_dsl.coverage import DEFAULT_POOL, cover_picks
    from npi_dsl.coverage import cover_programs as resolve
    from npi_dsl.sampling import iter_inputs
    from npi_dsl.trace import write_traces

    runner = task_runner(checked, task, engine=engine)
    if cover:
        focus = (None if cover_programs is None
                 else resolve(checked, runner.task.name, cover_programs))
        records = [p.record for p in cover_picks(
            runner, list(lengths), count, seed, DEFAULT_POOL if pool is None else pool,
            programs=focus, score=cover_score, records=True)]
    else:
        if pool is not None or cover_programs is not None or cover_score != "count":
            raise ValueError("pool, cover_programs and cover_score choose among candidate "
                             "inputs and need cover=True")
        records = [runner.run(value, s) for s, value in
                   iter_inputs(runner, list(lengths), count, seed)]
    if path is not None:
        write_traces(path, records)
    return records


def read_traces(paths: Sequence[str | Path], task: str | None = None) -> list[dict]:
    """The records of trace files (validated), only those of `task` when it is given."""
    from npi_dsl.trace import read_traces as _read

    out = []
    for p in paths:
        for rec in _read(p):
            if task is None or rec["task"] == task:
                out.append(rec)
    return out


def memory_order(checked: Checked) -> list[str]:
    """The program memory of a fresh model: ACT, then the file's programs in canonical order."""
    from npi_runtime.multitask import memory_names

    return memory_names([checked])


def new_model(checked: Checked | Sequence[Checked], config: NPIConfig | None = None,
              seed: int = 0) -> NPI:
    """An untrained model for the file's environment and every program of the file; given
    several files, one network for all of them (one encoder per environment, keyed as
    `multitask.new_encoder_key` says; the arguments' range the widest of the files')."""
    from npi_runtime.multitask import env_identity, memory_names, new_encoder_key

    files = [checked] if isinstance(checked, Checked) else list(checked)
    config = config or NPIConfig()
    arg_range = max(c.vocabulary.arg_range for c in files)
    if arg_range != config.arg_range:
        config = replace(config, arg_range=arg_range)
    torch.manual_seed(seed)
    encoders: dict[str, Any] = {}
    keys: dict[tuple[str, str, str], str] = {}
    for c in files:
        if env_identity(c) in keys:
            continue
        key = c.env_name if len(files) == 1 else new_encoder_key(encoders, c)
        keys[env_identity(c)] = key
        vocab = c.vocabulary
        encoders[key] = make_encoder(c.env_name, vocab.observation, vocab.arg_range,
                                     config.encoder_hidden, config.state_dim)
    model = NPI(config, encoders, memory_names(files))
    model.env_keys = keys
    return model


def base_manifest(checked: Checked, model: NPI, task: str, records: Sequence[dict],
                  trace_files: Sequence[str] = ()) -> dict:
    from npi_dsl import __version__
    from npi_runtime.staleness import program_hashes, task_entry

    header = env_header(checked.vocabulary)
    return {
        "format": ckpt.FORMAT,
        "npi_version": __version__,
        "programs": list(model.memory.names),
        "environments": {
            checked.env_name: ckpt.env_entry(header, model.encoders[checked.env_name].describe())
        },
        "model": model.config.to_dict(),
        "source_hash": checked.source_hash,
        "program_hashes": program_hashes(checked),
        "task_entry": task_entry(checked, task),
        "program_file": Path(checked.root.path).name,
        "task": task,
        "signatures": signatures(checked),
        "data": data_entry(records, trace_files),
    }


def signatures(checked: Checked) -> dict[str, int]:
    """The manifest's `signatures`: each program's number of arguments, by qualified name."""
    return {q: len(info.params) for q, info in sorted(checked.programs.items())}


def data_entry(records: Sequence[dict], trace_files: Sequence[str] = ()) -> dict:
    """The manifest's record of the traces a run trained on (`data`)."""
    return {"trace_files": [str(p) for p in trace_files], "traces": len(records),
            "traces_sha256": traces_hash(records),
            "lengths": sorted({int(r["length"]) for r in records})}


def traces_hash(records: Sequence[dict]) -> str:
    """The SHA-256 of trace records (their canonical JSON): what a run was trained on."""
    h = hashlib.sha256()
    for rec in records:
        h.update(json.dumps(rec, sort_keys=True, separators=(",", ":")).encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def _warn(message: str) -> None:
    import warnings

    warnings.warn(message, stacklevel=3)


def fit_checkpoint(model: NPI, manifest: dict, checked: Checked, *, strict: bool = False,
                   warn: Callable[[str], None] | None = None) -> list[str]:
    """Check a checkpoint against a program file (`ckpt.fit_programs`: environment,
    vocabulary, argument range, programs, their order and arity) and compare the programs'
    source hash: a difference is a warning (`warn`, by default `warnings.warn`), or with
    `strict` a CheckpointError. Returns the programs the file adds.

    A run of several tasks (its manifest lists `tasks`) adds nothing: the file must be one
    the run can execute (`multitask.fit_run`)."""
    if "tasks" in manifest:
        from npi_runtime.multitask import fit_run

        fit_run(model, manifest, checked, strict=strict, warn=warn or _warn)
        return []
    added = ckpt.fit_programs(
        model, manifest, checked.env_name, env_header(checked.vocabulary),
        checked.program_order, str(checked.root.path),
        arities=signatures(checked),
        arg_range=checked.vocabulary.arg_range)
    from npi_runtime.staleness import manifest_differences

    recorded = manifest.get("source_hash")
    if recorded is not None and recorded != checked.source_hash:
        message = (f"{checked.root.path} differs from the program file the checkpoint was "
                   f"trained on (source hash {checked.source_hash[:19]}..., the checkpoint's "
                   f"{str(recorded)[:19]}...): "
                   + "; ".join(manifest_differences(checked, manifest)))
        if strict:
            raise ckpt.CheckpointError(f"{message}; --strict refuses it")
        (warn or _warn)(message)
    return added


#: records re-run through the reference by `check_traces` without `strict` (all with it)
RERUN_SAMPLE = 8

_VOCAB_FIELDS = ("blank", "arg_range", "actions", "names", "kinds", "observe", "observation")


def check_traces(checked: Checked, records: Sequence[dict], task: str | None = None, *,
                 strict: bool = False, rerun: int = RERUN_SAMPLE) -> list[str]:
    """Check that traces were made by this program file; raise TraceError if they cannot
    have been, return warnings (a `source_hash` of another version of the file).

    Errors: another environment, configuration or vocabulary (`blank`, `arg_range`,
    actions, names, kinds, observation slots); programs the file does not define; a
    `result` that the task's `expect` says is wrong (every record); a record that differs
    from what the reference computes for its `input` and `seed` (wrong `obs`, steps or
    result) among `rerun` records spread over the set, or every record when `strict`. With
    `strict` a foreign `source_hash` is an error too (see docs/cli.md, "Traces and the
    program file").
    """
    from npi_dsl.envs.base import EnvError
    from npi_dsl.interpreter import NpiRuntimeError
    from npi_dsl.trace_schema import dumps
    from npi_runtime.staleness import trace_differences

    where = str(checked.root.path)
    ours = json.loads(dumps(env_header(checked.vocabulary)))
    known = set(checked.program_order)
    seen_envs: set[str] = set()
    first_foreign: int | None = None
    n_foreign = 0
    for i, rec in enumerate(records):
        env = rec["env"]
        if env["name"] != checked.env_name:
            raise TraceError(f"trace {i} runs env {env['name']}, but "
                             f"{where} uses env {checked.env_name}")
        text = dumps(env)
        if text not in seen_envs:
            seen_envs.add(text)
            _compare_env(i, env, ours, where)
        unknown = [p for p in rec["programs"] if p not in known]
        if unknown:
            raise TraceError(f"trace {i} uses programs {', '.join(unknown)} that "
                             f"{where} does not define")
        if rec["source_hash"] != checked.source_hash:
            n_foreign += 1
            if first_foreign is None:
                first_foreign = i
    warnings: list[str] = []
    if first_foreign is not None:
        theirs = records[first_foreign]["source_hash"]
        message = (f"{n_foreign} of {len(records)} traces (the first: trace {first_foreign}) "
                   f"have source_hash {_brief(theirs[:19] + '...')}, not "
                   f"{_brief(checked.source_hash[:19] + '...')} of {where} and its imports: "
                   "they were compiled from another version of the program ("
                   + "; ".join(trace_differences(checked, task or records[first_foreign]["task"],
                                                 records[first_foreign]))
                   + "); recompile them with npi compile")
        if strict:
            raise TraceError(message + " (--strict)")
        warnings.append(message)
    if not records:
        return warnings
    runner = task_runner(checked, task if task is not None else records[0]["task"])
    if strict or rerun >= len(records):
        picks = set(range(len(records)))
    else:
        picks = {round(k * (len(records) - 1) / max(rerun - 1, 1)) for k in range(rerun)}
    for i, rec in enumerate(records):
        try:
            value = runner.parse_input(rec["input"])
        except EnvError as e:
            raise TraceError(f"trace {i}: its input is not an input of task "
                             f"{runner.task.name}: {e}") from None
        if runner.task.expect is not None and not runner.correct(value, rec["result"]):
            raise TraceError(f"trace {i}: result {_brief(rec['result'])} is wrong for its "
                             f"input {_brief(rec['input'])} (expect {runner.task.expect} "
                             f"gives {_brief(runner.expected(value))})")
        if i not in picks:
            continue
        try:
            again = runner.run(value, rec["seed"])
        except NpiRuntimeError as e:
            raise TraceError(f"trace {i}: the reference fails on its input: {e}") from None
        diff = _first_difference(rec, again)
        if diff is not None:
            raise TraceError(f"trace {i} is not what {where} computes for its input: {diff}; "
                             "recompile the traces with npi compile")
    return warnings


def _compare_env(i: int, env: dict, ours: dict, where: str) -> None:
    if env.get("config") != ours["config"]:
        raise TraceError(f"trace {i} was made with env config {_brief(env.get('config'))}, "
                         f"but {where} configures {_brief(ours['config'])}")
    theirs = env.get("vocabulary", {})
    for key in _VOCAB_FIELDS:
        if theirs.get(key) != ours["vocabulary"].get(key):  # observe: absent = default
            raise TraceError(f"trace {i} has env.vocabulary.{key} {_brief(theirs.get(key))}, "
                             f"but env {ours['name']} of {where} has "
                             f"{_brief(ours['vocabulary'].get(key))}")


def _first_difference(rec: dict, again: dict) -> str | None:
    for key in ("length", "input", "result"):
        if rec[key] != again[key]:
            return f"{key} is {_brief(rec[key])}, the reference gives {_brief(again[key])}"
    steps, ref = rec["steps"], again["steps"]
    for k, (a, b) in enumerate(zip(steps, ref, strict=False)):
        if a != b:
            field = next((f for f in a if a.get(f) != b.get(f)), "?")
            return (f"steps[{k}].{field} (in a frame of program {a.get('program')}) is "
                    f"{_brief(a.get(field))}, the reference gives {_brief(b.get(field))}")
    if len(steps) != len(ref):
        return f"it has {len(steps)} steps, the reference {len(ref)}"
    return None


def _brief(value: Any, limit: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 4:]}"


@dataclass
class TrainResult:
    run_dir: Path
    model: NPI
    summary: dict  # step, epochs, seconds, stopped, last metrics
    added_programs: list[str]


def train(checked: Checked, traces: Sequence[dict] | Sequence[str | Path], run_dir: str | Path,
          task: str | None = None, *, model_config: NPIConfig | None = None,
          train_config: TrainConfig | None = None, resume: bool = False,
          on_event: Callable[[str, dict], None] | None = None, strict: bool = False,
          warn: Callable[[str], None] | None = None, device: str | Any = "auto"
          ) -> TrainResult:
    """Train a network on traces (records, or paths of trace files) and write `run_dir`,
    on `device` (as for `run_network`; started by torchrun, in several processes:
    npi_runtime.distributed).

    With `resume=True`, `run_dir` must hold an earlier run of the same programs and traces:
    training continues from its last committed checkpoint with its configuration. Without
    it, `run_dir` must not hold a committed run. The run directory is locked meanwhile: a
    second writer gets a CheckpointError.

    The traces are checked against the program file first (`check_traces`), and a resumed
    checkpoint too (`fit_checkpoint`). A warning (a source hash of another version of the
    file) goes to `warn`, else to `on_event("warning", {"message": ...})`, else to
    `warnings.warn`; `strict` makes it an error, and re-runs every trace through the
    reference.
    """
    if resume and "tasks" in ckpt.read_manifest(Path(run_dir)):
        return train_tasks([checked], traces, run_dir, resume=True, on_event=on_event,
                           strict=strict, warn=warn, device=device)
    from npi_runtime import distributed

    where, group = distributed.placement(device)
    info = checked.task(task)
    files: list[str] = []
    if traces and isinstance(traces[0], (str, Path)):
        files = [str(p) for p in traces]
        records = read_traces(files, info.name)
    else:
        records = [r for r in traces if r["task"] == info.name]  # type: ignore[index]
    if not records:
        raise TraceError(f"no traces of task {info.name}")
    if warn is None and on_event is not None:
        def warn(message: str) -> None:
            on_event("warning", {"message": message})
    for message in check_traces(checked, records, info.name, strict=strict):
        (warn or _warn)(message)
    runner = task_runner(checked, info.name)
    run_dir = Path(run_dir)
    added: list[str] = []
    earlier_attempt = (run_dir / ckpt.LOCK_FILE).exists()
    with distributed.run_lock(run_dir, group):
        if resume:
            manifest = ckpt.read_manifest(run_dir)
            model = ckpt.build_model(manifest)
            added = fit_checkpoint(model, manifest, checked, strict=strict, warn=warn)
            if added:
                raise ckpt.CheckpointError(
                    f"{run_dir} was trained without {', '.join(added)}: resume training with "
                    "the program file it was started with")
            _check_same_traces(run_dir, manifest, records, files)
            config, state, base = resume_parts(run_dir, manifest, group)
        else:
            if ckpt.holds_run(run_dir):
                raise ckpt.CheckpointError(
                    f"{run_dir} already holds a run; continue it with --resume {run_dir} "
                    "(resume=True), or choose another directory")
            distributed.start_fresh(run_dir, earlier_attempt, group)
            config = train_config or TrainConfig()
            model = new_model(checked, model_config, seed=config.seed)
            base = base_manifest(checked, model, info.name, records, files)
            if not config.val_lengths:
                plan = plan_validation(records, config.val_count, runner.env.max_length)
                config = replace(config, val_lengths=plan.lengths)
                base["validation_plan"] = plan.to_json()
                if on_event is not None:
                    on_event("validation", {"message": plan.describe(), **plan.to_json()})
            elif on_event is not None:
                on_event("validation", {
                    "message": f"validation at lengths {', '.join(map(str, config.val_lengths))}"
                               f", {config.val_count} inputs each (given)",
                    "lengths": list(config.val_lengths), "count": config.val_count})
            state = None
        frames: FrameSet = build_frameset(records, model.memory.names,
                                          model.encoders[checked.env_name], checked.env_name)
        trainer = Trainer(model, frames, runner, config, run_dir, base, on_event,
                          device=where, group=group)
        if state is not None:
            trainer.restore(state)
            if ckpt.committed_dir(run_dir) is None:
                # a run directory of the earlier layout: commit its resume state in this one
                # now (which also repairs one killed between its last two renames)
                trainer.save()
        summary = trainer.fit()
    return TrainResult(run_dir=run_dir, model=model, summary=summary, added_programs=added)


def train_tasks(checkeds: Sequence[Checked], traces: Sequence[dict] | Sequence[str | Path],
                run_dir: str | Path, **options: Any) -> TrainResult:
    """One network for the tasks of several program files (`npi train A.npi B.npi
    TRACES...`); options as for `train` (npi_runtime.train_tasks.train_tasks)."""
    from npi_runtime.train_tasks import train_tasks as _train_tasks

    return _train_tasks(checkeds, traces, run_dir, **options)


def learn_programs(from_run: str | Path, checked: Checked,
                   traces: Sequence[dict] | Sequence[str | Path], run_dir: str | Path,
                   **options: Any) -> TrainResult:
    """A trained network learns the new programs of `checked` (`npi train --from RUN --add
    FILE TRACES [--freeze-core] -o NEW`; npi_runtime.train_tasks.learn_programs)."""
    from npi_runtime.train_tasks import learn_programs as _learn

    return _learn(from_run, checked, traces, run_dir, **options)


def resume_parts(run_dir: Path, manifest: dict, group: Any = None
                 ) -> tuple[TrainConfig, ckpt.ResumeState, dict]:
    """What resuming a run takes from its directory: its training configuration, its resume
    state (uncommitted files are then cleaned away, by the process that writes the run when
    `group`, a `distributed.Group`, has several), and its manifest's lasting part."""
    from npi_runtime import distributed

    config = TrainConfig.from_dict(manifest.get("training") or {})
    state = ckpt.load_resume(run_dir)
    distributed.clean(run_dir, group)
    base = {k: v for k, v in manifest.items()
            if k not in ("training", "progress", "weights", "files")}
    return config, state, base


def _check_same_traces(run_dir: Path, manifest: dict, records: Sequence[dict],
                       files: Sequence[str]) -> None:
    """Refuse to resume on other traces than the run was started with."""
    data = manifest.get("data") or {}
    started = data.get("trace_files") or []
    was = (f"trace file{'s' if len(started) > 1 else ''} {', '.join(map(str, started))}"
           if started else "trace records given through the API")
    now = ", ".join(files) if files else "the records given"
    want = data.get("traces_sha256")
    differ = (want is not None and want != traces_hash(records)) or (
        isinstance(data.get("traces"), int) and data["traces"] != len(records))
    if differ:
        raise ckpt.CheckpointError(
            f"{run_dir} was started with {was} ({data.get('traces')} traces); {now} "
            f"({len(records)} traces) differ: resume with the traces it was started with")


def load_model(run_dir: str | Path, checked: Checked | None = None, *, strict: bool = False,
               warn: Callable[[str], None] | None = None) -> NPI:
    """A trained model; with `checked`, refused unless it fits that program file (new
    programs in the file are added to the program memory, untrained; `strict` and `warn` as
    for `fit_checkpoint`)."""
    model, manifest = ckpt.load_model(Path(run_dir))
    if checked is not None:
        fit_checkpoint(model, manifest, checked, strict=strict, warn=warn)
    model.eval()
    return model


def _correct(runner: Any, value: Any, result: Any) -> bool:
    """The task's check of a network's result: its `expect`, or without one, the reference
    program's result on that input (False when the reference itself fails there)."""
    try:
        return runner.correct(value, result)
    except NpiError:
        return False


def run_network(model: NPI, checked: Checked, inputs: Sequence[Any], task: str | None = None,
                *, max_steps: int = 1_000_000, max_depth: int = 10_000,
                batch: int = 256, device: str | Any = "auto") -> list[dict]:
    """Run the network in closed loop on inputs (all at once, in batches), its steps on
    `device` (`auto`, `cpu`, `cuda`, `cuda:N`, `mps` or a torch.device; a device that is
    not there is a `DeviceError`).

    Returns per input `{input, result, correct, status, steps, message}`; `correct` is the
    task's `expect` check, or for a task without `expect`, whether the result equals the
    reference program's result on that input; `status` is `ok`,
    `step_budget`, `depth_budget` or `env_error` (the network made an illegal action).
    """
    from npi_runtime.device import resolve_device
    from npi_runtime.multitask import task_view

    where = resolve_device(device)
    runner = task_runner(checked, task)
    values = [runner.parse_input(x) for x in inputs]
    executor = NeuralExecutor(task_view(model, checked), checked.env_name, max_steps=max_steps,
                              max_depth=max_depth, device=where)
    out: list[dict] = []
    for lo in range(0, len(values), batch):
        chunk = values[lo : lo + batch]
        envs = [runner.new_env(v) for v in chunk]
        outcomes: list[Outcome] = executor.run(envs, runner.task.entry, runner.task.entry_args)
        for v, env, o in zip(chunk, envs, outcomes, strict=True):
            result = runner.result(env) if o.ok else None
            out.append({"input": v, "result": result,
                        "correct": o.ok and _correct(runner, v, result), "status": o.status,
                        "steps": o.steps, "message": o.message})
    return out


def verify(model: NPI | str | Path, checked: Checked, lengths: Sequence[int] | None,
           count: int, seed: int = 0, task: str | None = None, *, keep_outputs: bool = False,
           progress: Callable[[Any], None] | None = None, threads: int = 1,
           engine: str = "compiled", jobs: int = 1, device: str | Any = "auto",
           batch: int | None = None) -> VerifyReport:
    """Compare the network with the reference at each length (see npi_runtime.verify), or,
    with `lengths` None, on the environment's verification sets (the camera: every start
    pose of `count` seen and `count` unseen cars); `threads` > 1 runs big batches of the
    network on that many cores; `engine` runs the reference traces as for `task_runner`;
    `jobs` > 1 runs the reference in that many processes (the report is the same);
    `device` is where the network steps (as for `run_network`); `batch` instances step at
    once (default 64 on the CPU, 256 on a device)."""
    from npi_runtime.device import resolve_device
    from npi_runtime.multitask import task_view

    where = resolve_device(device)
    if not isinstance(model, NPI):
        model = load_model(model, checked)
    model = task_view(model, checked)
    runner = task_runner(checked, task, engine=engine)
    if lengths is None:
        return verify_sets(model, runner, count, seed, keep_outputs=keep_outputs,
                           progress=progress, threads=threads, jobs=jobs, device=where,
                           batch=batch)
    return _verify(model, runner, lengths, count, seed, keep_outputs=keep_outputs,
                   progress=progress, threads=threads, jobs=jobs, device=where, batch=batch)
