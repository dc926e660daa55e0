"""Reproducers of bad inputs: trace files that are corrupt or made for another program, and a
way to run `npi` in a subprocess that fails (rather than blocks) on a hang."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from npi_dsl.bundled import program_path

ADDITION = str(program_path("addition"))

#: seconds a subprocess may take before a test calls it a hang
HANG = 60


def npi_process(*args: str, stdin: Any = subprocess.DEVNULL, stdout: Any = subprocess.PIPE,
                cwd: str | Path | None = None, pass_fds: tuple[int, ...] = (),
                preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m npi_runtime.cli` ARGS; a hang raises subprocess.TimeoutExpired."""
    code = "from npi_runtime.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], stdin=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, timeout=HANG, cwd=cwd, text=True,
                          pass_fds=pass_fds, preexec_fn=preexec,
                          env={**os.environ, "COLUMNS": "200"})


def good_records() -> list[dict]:
    """4 traces of the addition task, as npi compile makes them."""
    from npi_dsl.checker import load
    from npi_dsl.interpreter import compile_task
    from npi_dsl.sampling import iter_inputs

    checked = load(ADDITION)
    runner = compile_task(checked, "add")
    return [runner.run(value, s) for s, value in iter_inputs(runner, [1, 2], 2, 0)]


def _vocab(key: str, value: Any) -> Callable[[list[dict]], None]:
    def f(records: list[dict]) -> None:
        for r in records:
            r["env"]["vocabulary"][key] = value
    return f


def _obs(records: list[dict]) -> None:
    step = records[1]["steps"][3]
    step["obs"][0] = (step["obs"][0] + 1) % 10


def _result(records: list[dict]) -> None:
    records[2]["result"] = "999"


def _hash(records: list[dict]) -> None:
    for r in records:
        r["source_hash"] = "sha256:" + "0" * 64


#: name -> (what it does to good records, a text the error (or warning) contains)
MISMATCHED: dict[str, tuple[Callable[[list[dict]], None], str]] = {
    "blank": (_vocab("blank", 9), "trace 0 has env.vocabulary.blank 9, but env scratchpad"),
    "arg_range": (_vocab("arg_range", 11), "env.vocabulary.arg_range 11"),
    "actions": (_vocab("actions", [{"name": "MOVE", "id": 0, "params": ["row", "dir"]},
                                   {"name": "WRITE", "id": 1, "params": ["row", "dir"]}]),
                "env.vocabulary.actions"),
    "obs": (_obs, "trace 1 is not what"),
    "result": (_result, 'trace 2: result "999" is wrong for its input'),
    "source_hash": (_hash, "4 of 4 traces (the first: trace 0) have source_hash"),
}


def write_records(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def mismatched_file(tmp_path: Path, name: str) -> Path:
    records = copy.deepcopy(good_records())
    MISMATCHED[name][0](records)
    return write_records(tmp_path / f"{name}.jsonl", records)


def corrupt_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a corrupt trace file, the text its TraceFormatError contains)."""
    good = json.dumps(good_records()[0])
    huge = json.loads(good)
    huge["length"] = 10**300
    cases = {
        "deep": ("[" * 100_000 + "]" * 100_000 + "\n",
                 ":1: invalid JSON: arrays or objects nested too deeply"),
        "huge_length": (good + "\n" + json.dumps(huge) + "\n",
                        ":2: field length must be in [0, 10,000,000], got an integer of 301"),
        "long_int": (good.replace('"seed":', '"seed":' + "9" * 5000 + ",\"x\":", 1) + "\n",
                     ":1: invalid JSON"),
        "not_json": ("not json\n", ":1: invalid JSON"),
    }
    out = {}
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(text)
        out[name] = (path, message)
    return out


#: a task whose reference result is wrong (no carry): R006, exit 1
WRONG = """env scratchpad

task add {
    entry ADD()
    expect sum
}

program ADD() {
    while read(in1) != BLANK or read(in2) != BLANK {
        WRITE(out, (digit(in1) + digit(in2)) % 10)
        MOVE(in1, LEFT)
        MOVE(in2, LEFT)
        MOVE(out, LEFT)
    }
}
"""
