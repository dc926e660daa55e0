"""Task inputs in the language: `input NAMES where EXPR` and `expect EXPR` (docs/language.md,
"Task inputs"), through the `npi` CLI and the package API, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npi_dsl.checker import load
from npi_dsl.interpreter import TaskRunner
from npi_runtime.cli import app

ROOT = Path(__file__).resolve().parents[2]
SUBTRACTION = ROOT / "programs" / "subtraction.npi"
MULTIPLY = ROOT / "programs" / "multiply_digit.npi"


def npi(*args: str):
    return CliRunner().invoke(app, list(args))


def _task(tmp_path: Path, fields: str, body: str = "MOVE(in1, LEFT)",
          env: str = "scratchpad") -> str:
    p = tmp_path / "t.npi"
    p.write_text(f"env {env}\ntask t {{\n{fields}\n    entry P()\n}}\n"
                 f"program P() {{\n    {body}\n}}\n")
    return str(p)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("program", [SUBTRACTION, MULTIPLY], ids=["sub", "mul"])
def test_gallery_programs_check_strict_and_compile(program: Path, tmp_path: Path) -> None:
    assert npi("check", "--strict", str(program)).exit_code == 0
    out = tmp_path / "t.jsonl"
    r = npi("compile", str(program), "-l", "1..6", "-n", "8", "--seed", "5", "-o", str(out))
    assert r.exit_code == 0, r.output
    recs = _records(out)
    assert len(recs) == 48
    for rec in recs:
        a, b = (int(x) for x in rec["input"])
        if program == SUBTRACTION:
            assert a >= b and rec["result"] == str(a - b)
        else:
            assert b < 10 and rec["result"] == str(a * b)
        assert rec["length"] == max(len(x) for x in rec["input"])


def test_sampling_under_a_constraint_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (a, b):
        r = npi("compile", str(SUBTRACTION), "-l", "3..5", "-n", "6", "--seed", "9",
                "-o", str(out))
        assert r.exit_code == 0, r.output
    assert a.read_bytes() == b.read_bytes()


def test_run_refuses_an_input_that_breaks_the_constraint() -> None:
    r = npi("run", str(SUBTRACTION), "--input", '["5", "70"]')
    assert r.exit_code == 2
    assert "where a >= b" in r.output
    assert "Traceback" not in r.output
    ok = npi("run", str(SUBTRACTION), "--input", '["1000", "1"]')
    assert ok.exit_code == 0, ok.output
    assert "999" in ok.output


def test_a_constraint_no_input_satisfies_stops_the_compile(tmp_path: Path) -> None:
    f = _task(tmp_path, "    input a, b where a > b and b > a")
    r = npi("compile", f, "-l", "4", "-n", "2", "-o", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 1
    assert "where a > b and b > a" in r.output and "length 4" in r.output
    assert "1,000" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "x.jsonl").exists()


def test_a_wrong_expect_expression_is_the_wrong_result_failure(tmp_path: Path) -> None:
    f = _task(tmp_path, "    input a, b\n    expect a + b + 1")
    r = npi("compile", f, "-l", "2", "-n", "2", "-o", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 1
    assert "R006" in r.output and "expect a + b + 1" in r.output


def test_expect_over_a_list_uses_the_default_name(tmp_path: Path) -> None:
    f = _task(tmp_path, "    expect reversed(reversed(xs))", body="MOVE(p1, RIGHT)",
              env="array")
    r = npi("run", f, "--input", "[3, 1, 2]")
    assert r.exit_code == 0, r.output
    assert "correct" in r.output


@pytest.mark.parametrize(("fields", "code"), [
    ("    input a, b\n    expect xs", "E504"),
    ("    input a, b\n    expect len(a)", "E515"),
    ("    input a, b where sorted(a, b)", "E514"),
    ("    expect median(a)", "E513"),
    ("    input x\n", "E511"),
])
def test_task_expression_errors_are_diagnostics(tmp_path: Path, fields: str,
                                                code: str) -> None:
    r = npi("check", _task(tmp_path, fields))
    assert r.exit_code == 1
    assert f"error[{code}]" in r.output
    assert "Traceback" not in r.output


def test_numbers_of_any_size_in_an_expect(tmp_path: Path) -> None:
    runner = TaskRunner(load(str(SUBTRACTION)), load(str(SUBTRACTION)).task(None),
                        max_steps=5_000_000, max_depth=100)
    a, b = "9" * 5000, "1" * 5000
    assert runner.expected([a, b]) == "8" * 5000 == runner.run_result([a, b])[0]


def test_correct_without_expect_compares_with_the_reference(tmp_path: Path) -> None:
    """The issue: a task without `expect` answered correct: True for a wrong result."""
    f = _task(tmp_path, "", body="WRITE(out, 1)")
    checked = load(f)
    runner = TaskRunner(checked, checked.task(None), max_steps=1000, max_depth=10)
    assert runner.correct(["1", "2"], "1") is True
    assert runner.correct(["1", "2"], "2") is False
