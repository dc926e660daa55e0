"""Training one network on several tasks, and learning new programs into a trained one.

`train_tasks` is `npi train A.npi B.npi ... TRACES... -o RUN`: one core, one program memory,
one encoder per environment (npi_runtime.multitask), batches that mix every task's frames,
the curriculum per program row across tasks, validation per task. `learn_programs` is
`npi train --from RUN --add FILE TRACES... [--freeze-core] -o NEW`: the run's network with
new rows for the file's new programs (and an encoder for an environment it has never seen),
trained on the new traces; with `--freeze-core` nothing else changes (npi_runtime.freeze).
Both write run directories of several tasks (their manifest lists `tasks`), which
`npi verify RUN FILE` and `api.run_network` run task by task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from npi_dsl.checker import Checked
from npi_dsl.trace import env_header
from npi_runtime import checkpoint as ckpt
from npi_runtime import distributed
from npi_runtime.api import (
    TrainResult,
    _check_same_traces,
    _warn,
    check_traces,
    data_entry,
    new_model,
    read_traces,
    resume_parts,
    signatures,
    task_runner,
)
from npi_runtime.data import build_frameset, merge_framesets
from npi_runtime.encoders import make_encoder
from npi_runtime.freeze import FrozenCore
from npi_runtime.model import NPI, NPIConfig
from npi_runtime.multitask import (
    TaskData,
    assign_records,
    check_files,
    check_shared_programs,
    encoder_key,
    env_identity,
    fit_run,
    new_encoder_key,
    single_task_entries,
    task_entry,
)
from npi_runtime.train import TrainConfig, Trainer, ValTask
from npi_runtime.val_defaults import plan_validation

Warn = Callable[[str], None]


def several_tasks_config(config: TrainConfig, tasks: int) -> TrainConfig:
    """The schedule of one task stretched over `tasks`: each task's share of the optimizer
    steps sees the learning rate and step budget a run of that task alone would (the step
    limit and the decay interval times the number of tasks)."""
    return replace(config, max_steps=config.max_steps * tasks,
                   decay_steps=config.decay_steps * tasks)


def _records(traces: Sequence[dict] | Sequence[str | Path]) -> tuple[list[str], list[dict]]:
    if traces and isinstance(traces[0], (str, Path)):
        files = [str(p) for p in traces]
        return files, read_traces(files)
    return [], list(traces)  # type: ignore[arg-type]


def _warner(warn: Warn | None, on_event: Callable[[str, dict], None] | None) -> Warn:
    if warn is not None:
        return warn
    if on_event is not None:
        return lambda message: on_event("warning", {"message": message})
    return _warn


def _check_task_traces(tasks: Sequence[TaskData], strict: bool, warn: Warn) -> None:
    for t in tasks:
        for message in check_traces(t.checked, t.records, t.task, strict=strict):
            warn(message)


def _environments(model: NPI, checkeds: Sequence[Checked], known: dict | None = None) -> dict:
    """The manifest's `environments`: every encoder with its environment's header."""
    envs = dict(known or {})
    for c in checkeds:
        key = model.env_keys[env_identity(c)]
        if key not in envs:
            envs[key] = {"env": c.env_name, **ckpt.env_entry(env_header(c.vocabulary),
                                                             model.encoders[key].describe())}
    return envs


def _signatures(checkeds: Sequence[Checked], known: dict | None = None) -> dict:
    out = dict(known or {})
    for c in checkeds:
        out.update(signatures(c))
    return dict(sorted(out.items()))


def _plan(task: TaskData, config: TrainConfig, on_event: Any) -> dict:
    """The task's validation lengths (given, or derived from its traces) as recorded."""
    if config.val_lengths:
        return {"lengths": list(config.val_lengths), "count": config.val_count}
    runner = task_runner(task.checked, task.task)
    plan = plan_validation(task.records, config.val_count, runner.env.max_length)
    if on_event is not None:
        on_event("validation", {"message": f"{task.label}: {plan.describe()}",
                                **plan.to_json()})
    return plan.to_json()


def _task_entries(tasks: Sequence[TaskData], config: TrainConfig, on_event: Any) -> list[dict]:
    """The manifest's entries of the tasks this run trains, with their validation plans."""
    entries = []
    for t in tasks:
        entry = task_entry(t, data_entry(t.records))
        entry["validation_plan"] = _plan(t, config, on_event)
        entries.append(entry)
    return entries


def _manifest(model: NPI, environments: dict, arities: dict, tasks: list[dict],
              records: Sequence[dict], files: Sequence[str]) -> dict:
    """The lasting part of a several-task run's manifest."""
    return {"format": ckpt.FORMAT, "npi_version": _version(),
            "programs": list(model.memory.names), "environments": environments,
            "model": model.config.to_dict(), "signatures": arities, "tasks": tasks,
            "data": data_entry(records, files)}


def _fit(model: NPI, tasks: Sequence[TaskData], entries: Sequence[dict], run_dir: Path,
         config: TrainConfig, base: dict, on_event: Any, state: ckpt.ResumeState | None,
         freeze: FrozenCore | None, place: tuple[Any, Any]) -> dict:
    """Tensorize every task's traces, validate each task on its own, train."""
    by_label = {e["label"]: e for e in entries}
    for t in tasks:
        plan = (by_label.get(t.label) or {}).get("validation_plan")
        if not (isinstance(plan, dict) and isinstance(plan.get("lengths"), list) and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1
                for n in plan["lengths"]) and plan["lengths"]):
            raise ckpt.CheckpointError(f"{run_dir}/manifest.json is corrupt: task {t.label} "
                                       "has no validation plan (tasks[].validation_plan)")
    parts = []
    for t in tasks:
        fs = build_frameset(t.records, model.memory.names, model.encoders[t.encoder],
                            t.checked.env_name)
        parts.append((t.label, replace(fs, env=t.encoder)))
    val = [ValTask(t.label, task_runner(t.checked, t.task), t.checked.program_order, t.encoder,
                   tuple(by_label[t.label]["validation_plan"]["lengths"])) for t in tasks]
    trainer = Trainer(model, merge_framesets(parts), None, config, run_dir, base, on_event,
                      tasks=val, freeze=freeze, device=place[0], group=place[1])
    if state is not None:
        trainer.restore(state)
    return trainer.fit()


def train_tasks(checkeds: Sequence[Checked], traces: Sequence[dict] | Sequence[str | Path],
                run_dir: str | Path, *, model_config: NPIConfig | None = None,
                train_config: TrainConfig | None = None, resume: bool = False,
                on_event: Callable[[str, dict], None] | None = None, strict: bool = False,
                warn: Warn | None = None, device: Any = "auto") -> TrainResult:
    """Train one network on the tasks of several program files (or continue such a run, or
    one made by `learn_programs`, with `resume`). Every trace must belong to one of the
    files (its task, environment and programs), every file must get traces. Without a
    `train_config`, `several_tasks_config(TrainConfig(), len(checkeds))`. `device` as for
    `api.train`."""
    place = distributed.placement(device)
    checkeds = list(checkeds)
    check_files(checkeds)
    files, records = _records(traces)
    warn = _warner(warn, on_event)
    run_dir = Path(run_dir)
    if not resume:
        if ckpt.holds_run(run_dir):
            raise ckpt.CheckpointError(
                f"{run_dir} already holds a run; continue it with --resume {run_dir} "
                "(resume=True), or choose another directory")
        config = train_config or several_tasks_config(TrainConfig(), len(checkeds))
        model = new_model(checkeds, model_config, seed=config.seed)
        keys = [model.env_keys[env_identity(c)] for c in checkeds]
        tasks = assign_records(checkeds, records, keys)
        _check_task_traces(tasks, strict, warn)
        earlier_attempt = (run_dir / ckpt.LOCK_FILE).exists()
        with distributed.run_lock(run_dir, place[1]):
            distributed.start_fresh(run_dir, earlier_attempt, place[1])
            entries = _task_entries(tasks, config, on_event)
            base = _manifest(model, _environments(model, checkeds), _signatures(checkeds),
                             entries, records, files)
            summary = _fit(model, tasks, entries, run_dir, config, base, on_event, None, None,
                           place)
        return TrainResult(run_dir=run_dir, model=model, summary=summary, added_programs=[])
    with distributed.run_lock(run_dir, place[1]):
        manifest = ckpt.read_manifest(run_dir)
        if "tasks" not in manifest:
            raise ckpt.CheckpointError(f"{run_dir} is a run of one task: resume it with its "
                                       "one program file")
        model = ckpt.build_model(manifest)
        keys = [fit_run(model, manifest, c, strict=strict, warn=warn) for c in checkeds]
        tasks = assign_records(checkeds, records, keys)
        entries = single_task_entries(manifest)
        here = sorted(e["label"] for e in entries if e.get("trained_in") == "this run")
        given = sorted(t.label for t in tasks)
        if here != given:
            raise ckpt.CheckpointError(
                f"{run_dir} trained tasks {', '.join(here)}; the files and traces given have "
                f"{', '.join(given)}: resume with the files and traces it was started with")
        _check_task_traces(tasks, strict, warn)
        _check_same_traces(run_dir, manifest, records, files)
        config, state, base = resume_parts(run_dir, manifest, place[1])
        freeze = None
        scope = (manifest.get("learned_from") or {}).get("scope") or {}
        ckpt.restore_weights(model, state, run_dir)
        if scope.get("freeze_core"):
            names = model.memory.names
            first = min((names.index(p) for p in scope.get("programs", []) if p in names),
                        default=len(names))
            freeze = FrozenCore(model, first, scope.get("encoders", []))
        summary = _fit(model, tasks, entries, run_dir, config, base, on_event, state, freeze,
                       place)
    return TrainResult(run_dir=run_dir, model=model, summary=summary, added_programs=[])


def learn_programs(from_run: str | Path, checked: Checked,
                   traces: Sequence[dict] | Sequence[str | Path], run_dir: str | Path, *,
                   freeze_core: bool = True, train_config: TrainConfig | None = None,
                   on_event: Callable[[str, dict], None] | None = None, strict: bool = False,
                   warn: Warn | None = None, device: Any = "auto") -> TrainResult:
    """A new run `run_dir`: the network of `from_run` with rows for the new programs of
    `checked` (and an encoder for its environment, if the network has none), trained on
    the file's traces. With `freeze_core` only those train, every other weight is copied
    bit for bit; without it every weight trains. `from_run` is only read. `device` as for
    `api.train`."""
    place = distributed.placement(device)
    warn = _warner(warn, on_event)
    from_run, run_dir = Path(from_run), Path(run_dir)
    model, manifest = ckpt.load_model(from_run)
    where = checked.root.path
    envs = manifest["environments"]
    key = encoder_key(envs, checked)
    new_encoder = key is None
    new_key = key or new_encoder_key(envs, checked)
    memory = model.memory.names
    new_programs = [p for p in checked.program_order if p not in memory]
    if not new_programs and not new_encoder and freeze_core:
        raise ckpt.CheckpointError(
            f"--freeze-core has nothing new to train: {from_run} has a row for every program "
            f"of {where} and an encoder for its environment (npi verify {from_run} {where} "
            "runs it as it is)")
    if checked.vocabulary.arg_range > model.config.arg_range:
        raise ckpt.CheckpointError(
            f"{where} uses arguments 0..{checked.vocabulary.arg_range - 1}, but the network of "
            f"{from_run} chooses them in 0..{model.config.arg_range - 1}")
    check_shared_programs(manifest, checked, strict=strict, warn=warn)
    files, records = _records(traces)
    task = assign_records([checked], records, [new_key])
    _check_task_traces(task, strict, warn)
    if ckpt.holds_run(run_dir):
        raise ckpt.CheckpointError(f"{run_dir} already holds a run; choose another directory")
    if run_dir.resolve() == from_run.resolve():
        raise ckpt.CheckpointError(f"-o {run_dir} is the run learned from: choose a new "
                                   "directory (the earlier run stays as it is)")
    config = train_config or TrainConfig()
    earlier_attempt = (run_dir / ckpt.LOCK_FILE).exists()
    with distributed.run_lock(run_dir, place[1]):
        distributed.start_fresh(run_dir, earlier_attempt, place[1])
        torch.manual_seed(config.seed)
        first_new = len(model.memory)
        for p in new_programs:
            model.memory.add_program(p)
        if new_encoder:
            vocab = checked.vocabulary
            model.encoders[new_key] = make_encoder(
                checked.env_name, vocab.observation, vocab.arg_range,
                model.config.encoder_hidden, model.config.state_dim)
            model.env_keys[env_identity(checked)] = new_key
        freeze = FrozenCore(model, first_new, [new_key] if new_encoder else ()) \
            if freeze_core else None
        inherited = []
        for e in single_task_entries(manifest):
            if e.get("trained_in") == "this run":
                e["trained_in"] = str(from_run)
            inherited.append(e)
        entries = _task_entries(task, config, on_event)
        scope = freeze.describe() if freeze is not None else {"freeze_core": False}
        base = _manifest(model, _environments(model, [checked], _tagged(envs)),
                         _signatures([checked], manifest.get("signatures")),
                         inherited + entries, records, files)
        base["learned_from"] = {"run": str(from_run),
                                "weights_sha256": manifest["weights"]["sha256"],
                                "scope": scope}
        summary = _fit(model, task, entries, run_dir, config, base, on_event, None, freeze,
                       place)
    return TrainResult(run_dir=run_dir, model=model, summary=summary,
                       added_programs=new_programs)


def _tagged(envs: dict) -> dict:
    """Environment entries with their environment's name (`env`), as several-task runs
    record them."""
    return {k: {"env": e.get("env", k), **e} for k, e in envs.items()}


def _version() -> str:
    from npi_dsl import __version__

    return __version__
