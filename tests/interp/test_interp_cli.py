"""`npi run` and `npi compile` through typer's CliRunner."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from interp_helpers import PROGRAMS, TEST_PROGRAMS, write_program
from typer.testing import CliRunner

from npi_dsl.trace import read_traces
from npi_runtime.cli import app

ADDITION = str(PROGRAMS / "addition.npi")
SORTING = str(PROGRAMS / "sorting.npi")


def npi(*args: str, input: str | None = None):  # noqa: ANN201
    return CliRunner().invoke(app, list(args), input=input)


# ---------------------------------------------------------------- npi run


def test_run_prints_the_figure3_tree() -> None:
    r = npi("run", ADDITION, "--input", '["96", "125"]')
    assert r.exit_code == 0, r.output
    out = r.stdout
    for line in ("ADD", "├── ADD1", "│   ├── ACT WRITE out 1", "│   └── CARRY",
                 "│       ├── ACT MOVE carry LEFT", "│       ├── ACT WRITE carry 1",
                 "│       └── ACT MOVE carry RIGHT", "├── LSHIFT", "│   ├── ACT MOVE in1 LEFT"):
        assert line in out.splitlines(), line
    assert 'result "221"' in out and "correct (expect sum)" in out and "38 steps" in out


def test_run_json_is_the_record_and_nothing_else() -> None:
    r = npi("run", ADDITION, "--input", "[96, 125]", "--json")
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    assert record["schema"] == "npi-trace/1" and record["result"] == "221"
    assert record["input"] == ["96", "125"] and record["seed"] is None
    assert r.stdout.count("\n") == 1


def test_run_input_from_a_file_and_from_stdin(tmp_path: Path) -> None:
    big = "9" * 5000  # past Python's int/str limit as a JSON integer
    path = tmp_path / "input.json"
    path.write_text(f"[{big}, 1]")
    r = npi("run", ADDITION, "--input", f"@{path}", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["result"] == "1" + "0" * 5000
    r = npi("run", SORTING, "--input", "-", "--json", input="[5, 2, 8]\n")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["result"] == [2, 5, 8]


def test_run_show_env() -> None:
    r = npi("run", SORTING, "--input", "[2, 1]", "--show-env")
    assert r.exit_code == 0, r.output
    assert "p1" in r.stdout and "final state" in r.stdout
    assert "ACT SWAP p1 p2" in r.stdout


def test_run_limit_cuts_the_tree() -> None:
    r = npi("run", SORTING, "--input", "[9, 8, 7, 6, 5, 4]", "--limit", "10")
    assert r.exit_code == 0, r.output
    assert "more calls not shown" in r.stdout


@pytest.mark.parametrize("args,message", [
    (["--input", "[1,"], "not valid JSON"),
    (["--input", "[1]"], "bad --input"),
    (["--input", '["x", "1"]'], "bad --input"),
    (["--input", "@/nonexistent/input.json"], "cannot read --input file"),
])
def test_run_bad_input_is_a_usage_error(args: list[str], message: str) -> None:
    r = npi("run", ADDITION, *args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and r.stdout == ""


def test_run_needs_task_when_the_file_has_several(tmp_path: Path) -> None:
    text = (PROGRAMS / "addition.npi").read_text().replace(
        "task add {", "task other {\n    entry ADD()\n}\n\ntask add {")
    path = write_program(tmp_path, text, "two")
    r = npi("run", str(path), "--input", "[1, 2]")
    assert r.exit_code == 2
    assert "--task" in r.stderr and "add" in r.stderr and "other" in r.stderr
    r = npi("run", str(path), "--task", "other", "--input", "[1, 2]", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["task"] == "other"


def test_run_runtime_error_is_exit_1_with_the_partial_tree(tmp_path: Path) -> None:
    path = write_program(tmp_path, """\
env scratchpad
task t {
    entry MAIN()
}
program MAIN() {
    while true {
        MOVE(in1, LEFT)
    }
}
""")
    r = npi("run", str(path), "--input", "[1, 2]")
    assert r.exit_code == 1
    assert "stopped by an error" in r.stdout and "ACT MOVE in1 LEFT" in r.stdout
    assert "error[R003]" in r.stderr and f"{path}:7:9" in r.stderr
    assert "call stack (innermost first)" in r.stderr and "Traceback" not in r.output
    r = npi("run", str(path), "--input", "[1, 2]", "--json")
    assert r.exit_code == 1 and r.stdout == ""


def test_run_budgets_from_the_command_line(tmp_path: Path) -> None:
    path = write_program(tmp_path, "env scratchpad\ntask t {\n    entry R()\n}\n"
                         "program R() {\n    R()\n}\n")
    r = npi("run", str(path), "--input", "[1, 2]", "--max-depth", "50")
    assert r.exit_code == 1
    assert "error[R005]" in r.stderr and "past the budget of 50" in r.stderr
    r = npi("run", ADDITION, "--input", "[1, 2]", "--max-steps", "5")
    assert r.exit_code == 1 and "error[R004]" in r.stderr


def test_run_wrong_result_is_exit_1(tmp_path: Path) -> None:
    path = write_program(tmp_path, "env scratchpad\ntask t {\n    entry M()\n    expect sum\n}\n"
                         "program M() {\n    WRITE(out, 3)\n}\n")
    r = npi("run", str(path), "--input", "[1, 1]")
    assert r.exit_code == 1
    assert "ACT WRITE out 3" in r.stdout  # the tree of the wrong run is shown
    assert "error[R006]" in r.stderr and 'gives "3", expected "2"' in r.stderr


# ---------------------------------------------------------------- npi compile


def test_compile_writes_valid_traces_and_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "add.jsonl"
    r = npi("compile", ADDITION, "--count", "3", "--length", "1..4", "--seed", "5",
            "-o", str(out))
    assert r.exit_code == 0, r.output
    records = list(read_traces(out))  # the validating reader of npi_dsl.trace
    assert len(records) == 12
    assert [rec["length"] for rec in records] == [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3
    steps = sum(len(rec["steps"]) for rec in records)
    assert r.stderr.startswith(f"wrote 12 traces ({steps:,} steps) of task add to {out} in ")
    assert r.stdout == ""


def test_compile_same_seed_same_bytes_gzip_included(tmp_path: Path) -> None:
    paths = [tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz", tmp_path / "c.jsonl.gz"]
    for path, seed in zip(paths, ("1", "1", "2"), strict=True):
        r = npi("compile", SORTING, "-n", "4", "-l", "2,5,9", "-s", seed, "-o", str(path))
        assert r.exit_code == 0, r.output
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    lines = gzip.decompress(paths[0].read_bytes()).decode().splitlines()
    assert [json.loads(x)["length"] for x in lines] == [2] * 4 + [5] * 4 + [9] * 4


def test_compile_to_stdout() -> None:
    r = npi("compile", ADDITION, "--length", "2", "--count", "2")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) == 2
    assert "to stdout" in r.stderr


def test_compile_stats(tmp_path: Path) -> None:
    r = npi("compile", ADDITION, "-n", "8", "-l", "1..5", "-o", str(tmp_path / "t.jsonl"),
            "--stats")
    assert r.exit_code == 0, r.output
    for word in ("program", "steps/frame", "distinct obs", "LSHIFT", "CARRY", "ACT"):
        assert word in r.stderr
    lshift = next(line for line in r.stderr.splitlines() if "LSHIFT" in line)
    assert "5.0" in lshift  # every LSHIFT frame has 5 steps


@pytest.mark.parametrize("length", ["3..1", "a..b", "1,,2", "0"])
def test_compile_bad_length_is_a_usage_error(length: str) -> None:
    r = npi("compile", ADDITION, "--length", length)
    assert r.exit_code == 2
    assert "--length" in r.stderr


def test_compile_error_writes_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = write_program(tmp_path, """\
env scratchpad
task t {
    entry M()
    expect sum
}
program M() {
    if digit(in1) == 7 {
        WRITE(out, 0)
    } else {
        ADD1()
    }
}
program ADD1() {
    let s = digit(in1) + digit(in2)
    WRITE(out, s % 10)
    if s >= 10 {
        MOVE(out, LEFT)
        WRITE(out, 1)
    }
}
""")
    out = tmp_path / "t.jsonl"
    out.write_text("old\n")
    r = npi("compile", str(path), "-n", "50", "-l", "1", "-o", str(out))
    assert r.exit_code == 1
    assert "error[R006]" in r.stderr and "nothing was written" in r.stderr
    assert out.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["prog.npi", "t.jsonl"]  # no temporary file left


def test_compile_a_runtime_error_names_the_input(tmp_path: Path) -> None:
    r = npi("compile", str(TEST_PROGRAMS / "features.npi"), "-l", "1..3", "--max-steps", "10",
            "-o", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 1
    assert "error[R004]" in r.stderr and "while running input [" in r.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_compile_output_must_be_a_file_in_an_existing_directory(tmp_path: Path) -> None:
    r = npi("compile", ADDITION, "-l", "1", "-o", str(tmp_path))
    assert r.exit_code == 2 and "is a directory" in r.stderr
    r = npi("compile", ADDITION, "-l", "1", "-o", str(tmp_path / "no" / "x.jsonl"))
    assert r.exit_code == 2 and "does not exist" in r.stderr
    assert os.listdir(tmp_path) == []


def test_compile_draws_progress_only_on_a_terminal(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from npi_runtime.cli import common as cli_common

    out = tmp_path / "t.jsonl"
    monkeypatch.setattr(cli_common.err, "_force_terminal", True)
    r = npi("compile", ADDITION, "-n", "40", "-l", "1..3", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert len(out.read_text().splitlines()) == 120
    assert "wrote 120 traces" in r.stderr
    assert "\x1b[?25l" in r.stderr  # rich's live display ran (it hides the cursor)
    monkeypatch.setattr(cli_common.err, "_force_terminal", False)
    r = npi("compile", ADDITION, "-n", "40", "-l", "1..3", "-o", str(out))
    assert "\x1b" not in r.stderr


def test_an_unknown_task_name_is_a_usage_error() -> None:
    r = npi("run", ADDITION, "--task", "addd", "--input", "[1, 2]")
    assert r.exit_code == 2, r.output
    assert "no task `addd`" in r.stderr and "add" in r.stderr
