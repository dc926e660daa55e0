"""Errors through the CLI: every NpiError is printed in one way and exits with its code.

The expected texts are what `npi` printed before the errors had one base (NpiError) and one
handler (cli.common.reporting_errors); the handler must not change a character of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from inputs_helpers import ADDITION, WRONG
from typer.testing import CliRunner

from npi_dsl.bundled import program_path
from npi_dsl.diagnostics import DiagnosticError
from npi_dsl.envs.base import EnvError
from npi_dsl.errors import NpiError
from npi_dsl.interpreter import NpiRuntimeError
from npi_dsl.trace import TraceFormatError
from npi_runtime.checkpoint import CheckpointError
from npi_runtime.cli import app
from npi_runtime.data import TraceError


def npi(*args: str):
    return CliRunner().invoke(app, list(args))


def test_every_error_class_is_an_npi_error() -> None:
    for cls in (DiagnosticError, NpiRuntimeError, EnvError, TraceFormatError, TraceError,
                CheckpointError):
        assert issubclass(cls, NpiError)
    for cls in (DiagnosticError, NpiRuntimeError, EnvError):
        assert cls.exit_code == 1
    # a corrupt or mismatched input file or run directory is bad input: exit 2
    for cls in (TraceFormatError, TraceError, CheckpointError):
        assert cls.exit_code == 2
    assert issubclass(TraceFormatError, ValueError) and issubclass(TraceError, ValueError)
    assert TraceFormatError("t.jsonl", 3, "bad").render() == "error: t.jsonl:3: bad"
    assert CheckpointError("gone").render() == "error: gone"


def test_wrong_result(tmp_path: Path) -> None:
    path = tmp_path / "wrong.npi"
    path.write_text(WRONG)
    for extra in ((), ("--json",)):
        r = npi("run", str(path), "-i", '["96", "125"]', *extra)
        assert r.exit_code == 1
        assert r.stderr.endswith(
            f"{path}:5:5: error[R006]: wrong result: for input [\"96\",\"125\"] the task `add` "
            "gives \"111\", expected \"221\" (expect sum)\n"
            "  5 |     expect sum\n"
            "    |     ^^^^^^^^^^\n"
            "  = hint: the reference program is wrong for this input: run it with "
            "`npi run --input ...` to see its execution\n")
    r = npi("compile", str(path), "-l", "2", "-n", "3")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith(f"{path}:5:5: error[R006]: wrong result: for input")
    assert r.stderr.endswith("execution\nnothing was written\n")


def test_budget_exceeded() -> None:
    r = npi("run", ADDITION, "-i", '["96", "125"]', "--max-steps", "5", "--json")
    assert r.exit_code == 1 and r.stdout == ""
    bar = "^" * 64
    assert r.stderr == (
        f"{ADDITION}:10:11: error[R004]: step budget exceeded: more than 5 steps (in ADD at "
        "depth 0)\n"
        "  10 |     while read(in1) != BLANK or read(in2) != BLANK or read(carry) != BLANK {\n"
        f"     |           {bar}\n"
        "  = hint: an infinite loop? if the run is legitimately long, raise --max-steps\n"
        "  call stack (innermost first):\n"
        f"    ADD() frame 0, depth 0, at {ADDITION}:10:11\n")


@pytest.mark.parametrize(("value", "message"), [
    ("not json", "error: --input value is not valid JSON (Expecting value: line 1 column 1 "
     "(char 0)): 'not json'; e.g. --input '[\"96\", \"125\"]' or --input '[5, 2, 8]'\n"),
    ("[/x]", "error: --input value is not valid JSON (Expecting value: line 1 column 2 "
     "(char 1)): '[/x]'; e.g. --input '[\"96\", \"125\"]' or --input '[5, 2, 8]'\n"),
    ('["1a", "2"]', "error: bad --input for task `add` (env scratchpad): first operand must "
     "be a string of decimal digits 0-9, got '1a'\n"),
])
def test_bad_input_is_a_usage_error(value: str, message: str) -> None:
    r = npi("run", ADDITION, "-i", value)
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", message)


def test_bad_program_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.npi"
    path.write_text("env scratchpad\ntask add {\n    entry ADD()\n}\nprogram ADD() {\n"
                    "    FOO()\n}\nprogram UNUSED() {\n    MOVE(in1, LEFT)\n}\n")
    expected = (
        f"{path}:6:5: error[E201]: unknown program or action `FOO`\n"
        "  6 |     FOO()\n"
        "    |     ^^^\n"
        "  = hint: actions of env scratchpad: MOVE, WRITE\n"
        f"{path}:8:9: warning[W601]: program `UNUSED` is unreachable from every task entry\n"
        "  8 | program UNUSED() {\n"
        "    |         ^^^^^^\n"
        "  = hint: call it from a program of a task, or remove it\n")
    for args in (("run", str(path), "-i", "[]"), ("graph", str(path)),
                 ("compile", str(path), "-l", "2")):
        r = npi(*args)
        assert (r.exit_code, r.stdout, r.stderr) == (1, "", expected)
    r = npi("check", str(path))
    assert r.exit_code == 1
    assert r.stderr == expected + "failed: checked 1 file: 1 error, 1 warning\n"


@pytest.mark.parametrize(("content", "message"), [
    (b"not json\n", "1: invalid JSON: Expecting value (column 1)"),
    (b'{"format": "npi-trace/1"}\n', "1: missing field schema: not an npi trace"),
    (b"[bold]x[/]\n", "1: invalid JSON: Expecting value (column 2)"),
])
def test_bad_trace_file(tmp_path: Path, content: bytes, message: str) -> None:
    traces = tmp_path / "t.jsonl"
    traces.write_bytes(content)
    r = npi("train", ADDITION, str(traces), "-o", str(tmp_path / "run"), "--epochs", "1")
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", f"error: {traces}:{message}\n")


def test_traces_of_another_task(tmp_path: Path) -> None:
    traces = tmp_path / "sort.jsonl"
    r = npi("compile", str(program_path("sorting")), "-l", "2", "-o", str(traces))
    assert r.exit_code == 0, r.output
    r = npi("train", ADDITION, str(traces), "-o", str(tmp_path / "run"), "--epochs", "1")
    assert (r.exit_code, r.stderr) == (2, "error: no traces of task add\n")


def test_corrupt_run_directory(tmp_path: Path) -> None:
    run = tmp_path / "[x]run"  # markup-looking names are printed as they are
    run.mkdir()
    r = npi("verify", str(run), ADDITION, "-l", "2", "-n", "1")
    assert (r.exit_code, r.stderr) == (2, f"error: {run}/manifest.json is missing\n")
    (run / "manifest.json").write_text("{")
    r = npi("verify", str(run), ADDITION, "-l", "2", "-n", "1")
    assert r.exit_code == 2
    assert r.stderr == (f"error: {run}/manifest.json is corrupt (not valid JSON: Expecting "
                        "property name enclosed in double quotes: line 1 column 2 (char 1))\n")
    (run / "manifest.json").write_text(json.dumps({"format": "npi-checkpoint/1"}))
    r = npi("verify", str(run), ADDITION, "-l", "2", "-n", "1")
    assert (r.exit_code, r.stderr) == (2, f"error: {run}/manifest.json is corrupt: no "
                                          "'programs'\n")


def test_demo_refuses_a_corrupt_earlier_run(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "manifest.json").write_text("{")
    r = npi("demo", "--out", str(tmp_path))
    assert r.exit_code == 2
    assert r.stderr == (f"error: {tmp_path}/model/manifest.json is corrupt (not valid JSON: "
                        "Expecting property name enclosed in double quotes: line 1 column 2 "
                        "(char 1))\n")
