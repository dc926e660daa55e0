"""What differs between a program file and an artifact made from another version of it
(docs/training.md, "Stale traces and checkpoints").

Traces record one `source_hash` of the whole program file and its imports, and the qualified
names of the programs the task reaches; their bytes must not change (golden traces), so they
get no per-program hashes. A checkpoint's manifest (not golden) records, for new runs,
`program_hashes`: a hash of each program's source text by qualified name, and the task's
entry. From those:

* traces: programs added and removed (the trace's `programs` against the task's), the entry
  (the first step's program and arguments), the declared observation
  (`env.vocabulary.observe`, absent = the environment's default); which programs changed
  cannot be told, so the message says the program file differs;
* checkpoints: programs added, removed and changed by name (`program_hashes`), the task's
  entry; a manifest of an earlier version, without `program_hashes`, gives added and removed
  programs from its `signatures` and says the file differs.

A program's hash covers its text from `program` to its closing brace: an edit in a comment
outside every program, a task or a constant changes the file's hash but no program's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from npi_dsl.checker import Checked


def _span_text(source: str, span: Any) -> str:
    lines = source.split("\n")
    if span.line == span.end_line:
        return lines[span.line - 1][span.column - 1 : span.end_column - 1]
    parts = [lines[span.line - 1][span.column - 1 :], *lines[span.line : span.end_line - 1],
             lines[span.end_line - 1][: span.end_column - 1]]
    return "\n".join(parts)


def program_hashes(checked: Checked) -> dict[str, str]:
    """`sha256:<hex>` of each program's source text, by qualified name (sorted)."""
    out = {}
    for q in sorted(checked.programs):
        info = checked.programs[q]
        text = _span_text(info.file.source, info.node.span)
        out[q] = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return out


def task_entry(checked: Checked, task: str) -> str:
    """The task's entry as `QUALIFIED(a, b, c)`."""
    info = checked.task(task)
    return f"{info.entry}({', '.join(map(str, info.entry_args))})"


def observation(vocabulary: dict) -> list | None:
    """The declared observation of a trace header's or manifest's vocabulary (None: the
    environment's default)."""
    value = vocabulary.get("observe") if isinstance(vocabulary, dict) else None
    return list(value) if isinstance(value, list) else None


def _ours_observe(checked: Checked) -> list | None:
    from npi_dsl.trace import env_header

    return observation(env_header(checked.vocabulary)["vocabulary"])


def _names(items: Sequence[str]) -> str:
    return ", ".join(items)


def _added_removed(now: Sequence[str], then: Sequence[str]) -> list[str]:
    out = []
    added = [p for p in now if p not in then]
    removed = [p for p in then if p not in now]
    if added:
        out.append(f"programs added: {_names(added)}")
    if removed:
        out.append(f"programs removed: {_names(removed)}")
    return out


def _observe_change(then: list | None, now: list | None) -> list[str]:
    if then == now:
        return []
    def show(o: list | None) -> str:
        return "the environment's default" if o is None else ", ".join(map(str, o))
    return [f"observation changed: {show(then)} -> {show(now)}"]


def trace_differences(checked: Checked, task: str, record: dict) -> list[str]:
    """What differs between the program file and the one a trace record was made from
    (empty when their source hashes agree)."""
    if record["source_hash"] == checked.source_hash:
        return []
    info = checked.task(task)
    out = ["the program file differs (which programs changed, traces cannot tell: they "
           "record one hash of the whole file)"]
    out += _added_removed(list(info.programs), list(record["programs"]))
    steps = record.get("steps") or []
    if steps:
        first = steps[0]
        then = f"{first['program']}({', '.join(map(str, first['args']))})"
        now = f"{checked.bare(info.entry)}({', '.join(map(str, info.entry_args))})"
        if then != now:
            out.append(f"task {task}: entry changed: {then} -> {now}")
    vocab = (record.get("env") or {}).get("vocabulary") or {}
    out += _observe_change(observation(vocab), _ours_observe(checked))
    return out


def manifest_differences(checked: Checked, manifest: dict) -> list[str]:
    """What differs between the program file and the one a checkpoint was trained on
    (empty when their source hashes agree or the manifest records none)."""
    recorded = manifest.get("source_hash")
    if recorded is None or recorded == checked.source_hash:
        return []
    ours = program_hashes(checked)
    theirs = manifest.get("program_hashes")
    out: list[str] = []
    if isinstance(theirs, dict):
        out += _added_removed(list(ours), list(theirs))
        changed = [q for q in ours if q in theirs and theirs[q] != ours[q]]
        if changed:
            out.append(f"programs changed: {_names(changed)}")
        if not out:
            out.append("no program's text changed (the difference is in a task, a constant, "
                       "a comment or an import)")
    else:
        out.append("the program file differs (the checkpoint is of an earlier npi that "
                   "records no per-program hashes, so which programs changed cannot be told)")
        known = manifest.get("signatures")
        if isinstance(known, dict):
            out += _added_removed(list(ours), list(known))
    entry = manifest.get("task_entry")
    task = manifest.get("task")
    if isinstance(entry, str) and isinstance(task, str) and task in checked.tasks:
        now = task_entry(checked, task)
        if now != entry:
            out.append(f"task {task}: entry changed: {entry} -> {now}")
    return out
