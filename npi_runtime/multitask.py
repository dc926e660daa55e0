"""One network for several tasks: which program files it runs, their encoders and memory.

A run of several tasks (`npi train A.npi B.npi TRACES...`, docs/training.md "One network for
every task") has one core, one program memory keyed by qualified names (`addition.LSHIFT` and
`sorting.LSHIFT` are two rows) and one encoder per environment. Two files share an encoder
when they use the same environment with the same configuration and observation (sorting and
MAX); another observation or configuration of the same environment gets its own encoder, keyed
`ENV:FILESTEM`. Its manifest lists the tasks under `tasks`, each with what a single-task
manifest records at its top level (program file, source and program hashes, entry, data).

Running a task, the network chooses among the programs its file defines, and ACT
(`NPI.view`): a program of another environment cannot run in this one. So a task's
behaviour depends only on its own rows, the shared weights and its encoder, and learning a
new program with the core frozen (npi_runtime.freeze) cannot change an earlier task's runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from npi_dsl.checker import Checked
from npi_dsl.trace import ACT, env_header
from npi_runtime.checkpoint import CheckpointError
from npi_runtime.data import TraceError
from npi_runtime.model import NPI


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def env_identity(checked: Checked) -> tuple[str, str, str]:
    """What makes two files' environments one: name, configuration, vocabulary."""
    header = json.loads(canonical(env_header(checked.vocabulary)))
    return checked.env_name, canonical(header["config"]), canonical(header["vocabulary"])


def entry_identity(key: str, entry: dict) -> tuple[str, str, str]:
    """`env_identity` of a manifest's environment entry (keyed `key`)."""
    return (str(entry.get("env", key)), canonical(entry.get("config")),
            canonical(entry.get("vocabulary")))


def task_label(checked: Checked, task: str) -> str:
    """A task's name in a run of several: FILESTEM.TASK (two files may both have `add`)."""
    return f"{checked.root.stem}.{task}"


def encoder_key(environments: dict[str, dict], checked: Checked) -> str | None:
    """The key of the encoder among a manifest's `environments` that fits the file's
    environment (name, configuration and observation), or None."""
    ours = env_identity(checked)
    for key, entry in environments.items():
        if entry_identity(key, entry) == ours:
            return key
    return None


def new_encoder_key(environments: dict[str, Any], checked: Checked) -> str:
    """A key for a new encoder of the file's environment: its name, or ENV:FILESTEM when
    another configuration or observation of that environment has the name already."""
    key = checked.env_name
    if key in environments:
        key = f"{checked.env_name}:{checked.root.stem}"
    n = 2
    while key in environments:
        key, n = f"{checked.env_name}:{checked.root.stem}{n}", n + 1
    return key


def check_files(checkeds: Sequence[Checked]) -> None:
    """Refuse a file given twice and two files defining one qualified name differently."""
    from npi_runtime.staleness import program_hashes

    seen_paths: dict[str, str] = {}
    defined: dict[str, tuple[str, str]] = {}  # qualified -> (hash, file)
    for c in checkeds:
        path = str(Path(c.root.path).resolve())
        if path in seen_paths:
            raise TraceError(f"{c.root.path} is given twice")
        seen_paths[path] = c.root.path
        for q, h in program_hashes(c).items():
            where = c.programs[q].file.path
            if q in defined and defined[q][0] != h:
                raise TraceError(
                    f"two files define program {q} differently: {defined[q][1]} and {where}; "
                    "a run's program memory is keyed by qualified name (FILESTEM.NAME), so "
                    "rename one of the files")
            defined.setdefault(q, (h, where))


def memory_names(checkeds: Sequence[Checked]) -> list[str]:
    """ACT, then every file's programs in its canonical order, each program once."""
    names = [ACT]
    for c in checkeds:
        names += [p for p in c.program_order if p not in names]
    return names


@dataclass
class TaskData:
    """One task of a run of several, with its traces."""

    checked: Checked
    task: str
    encoder: str
    records: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return task_label(self.checked, self.task)


def assign_records(checkeds: Sequence[Checked], records: Sequence[dict],
                   encoders: Sequence[str]) -> list[TaskData]:
    """Sort trace records into the files' tasks: a record belongs to the file that has its
    task and defines every program it names, in its environment. Every record must belong to
    a file, and every file must get records."""
    tasks: dict[tuple[int, str], TaskData] = {}
    for i, rec in enumerate(records):
        for f, c in enumerate(checkeds):
            if rec["task"] in c.tasks and rec["env"]["name"] == c.env_name \
                    and set(rec["programs"]) <= set(c.programs):
                key = (f, rec["task"])
                if key not in tasks:
                    tasks[key] = TaskData(c, rec["task"], encoders[f])
                tasks[key].records.append(rec)
                break
        else:
            raise TraceError(
                f"trace {i} (task {rec['task']}, env {rec['env']['name']}, programs "
                f"{', '.join(rec['programs'][:4])}) belongs to none of the program files "
                f"given ({', '.join(c.root.path for c in checkeds)})")
    for f, c in enumerate(checkeds):
        if not any(k[0] == f for k in tasks):
            raise TraceError(f"no traces of {c.root.path} (of its tasks "
                             f"{', '.join(sorted(c.tasks)) or 'none'}): give its trace files "
                             "too, made by npi compile")
    return [tasks[k] for k in sorted(tasks)]


def task_entry(task: TaskData, data: dict, trained_in: str = "this run") -> dict:
    """The manifest's record of one task."""
    from npi_runtime.staleness import program_hashes
    from npi_runtime.staleness import task_entry as entry_of

    c = task.checked
    return {"label": task.label, "task": task.task, "program_file": Path(c.root.path).name,
            "environment": task.encoder, "source_hash": c.source_hash,
            "program_hashes": program_hashes(c), "task_entry": entry_of(c, task.task),
            "programs": list(c.program_order), "data": data, "trained_in": trained_in}


def single_task_entries(manifest: dict) -> list[dict]:
    """A manifest's tasks: its `tasks`, or the one task of a single-task manifest."""
    if isinstance(manifest.get("tasks"), list):
        return [dict(t) for t in manifest["tasks"]]
    stem = Path(str(manifest.get("program_file", "program.npi"))).stem
    env = next(iter(manifest["environments"]))
    programs = [p for p in manifest["programs"] if p != ACT]
    return [{"label": f"{stem}.{manifest.get('task')}", "task": manifest.get("task"),
             "program_file": manifest.get("program_file"), "environment": env,
             "source_hash": manifest.get("source_hash"),
             "program_hashes": manifest.get("program_hashes"),
             "task_entry": manifest.get("task_entry"), "programs": programs,
             "data": manifest.get("data") or {}, "trained_in": "this run"}]


def fit_run(model: NPI, manifest: dict, checked: Checked, *, strict: bool = False,
            warn: Callable[[str], None]) -> str:
    """Check a program file against a run of several tasks; returns its encoder's key.

    Refused (CheckpointError): an environment (with this configuration and observation) the
    run has no encoder for, a program of the file the run has no row for, a program whose
    number of arguments changed. A program whose text differs from the one the run was
    trained on is a warning, or with `strict` an error."""
    where = checked.root.path
    envs = manifest["environments"]
    key = encoder_key(envs, checked)
    if key is None:
        have = ", ".join(f"{k} (env {e.get('env', k)})" for k, e in envs.items())
        same_name = [k for k, e in envs.items() if e.get("env", k) == checked.env_name]
        why = (f"; env {checked.env_name} is there, but with another configuration or "
               "observation" if same_name else "")
        raise CheckpointError(
            f"the run has no encoder for env {checked.env_name} of {where}{why} (it has "
            f"{have}); learn it with npi train --from RUN --add {where} TRACES -o NEW_RUN")
    missing = [p for p in checked.program_order if p not in model.memory.names]
    if missing:
        raise CheckpointError(
            f"the run has no program-memory rows for {', '.join(missing)} of {where}; learn "
            f"them with npi train --from RUN --add {where} TRACES --freeze-core -o NEW_RUN")
    check_shared_programs(manifest, checked, strict=strict, warn=warn)
    return key


def check_shared_programs(manifest: dict, checked: Checked, *, strict: bool,
                          warn: Callable[[str], None]) -> None:
    """The file's programs that the run knows must take the same number of arguments
    (else CheckpointError) and have the same text (else a warning; with `strict` an
    error) as when the run learned them."""
    from npi_runtime.staleness import program_hashes

    where = checked.root.path
    signatures = manifest.get("signatures") or {}
    changed = [f"{p} ({signatures[p]} -> {len(checked.programs[p].params)})"
               for p in checked.program_order
               if p in signatures and signatures[p] != len(checked.programs[p].params)]
    if changed:
        raise CheckpointError(f"programs of {where} take another number of arguments than "
                              f"when the run learned them: {', '.join(changed)}")
    recorded: dict[str, str] = {}
    for t in single_task_entries(manifest):
        recorded.update(t.get("program_hashes") or {})
    ours = program_hashes(checked)
    differ = [q for q in checked.program_order if q in recorded and recorded[q] != ours[q]]
    if differ:
        message = (f"{where} differs from the program file the run learned them from: "
                   f"programs changed: {', '.join(differ)}")
        if strict:
            raise CheckpointError(f"{message}; --strict refuses it")
        warn(message)


def task_view(model: NPI, checked: Checked) -> NPI:
    """The network as it runs a task of `checked` (`NPI.view`): its file's programs, and the
    encoder of its environment under the file's environment name."""
    key = model.env_keys.get(env_identity(checked))
    if key is None:
        if checked.env_name not in model.encoders:
            raise CheckpointError(f"the network has no encoder for env {checked.env_name} of "
                                  f"{checked.root.path}")
        key = checked.env_name
    return model.view(checked.program_order, {checked.env_name: key})
