"""`npi lint`: the learnability lint through the CLI (typer's CliRunner) on real files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from npi_runtime.cli import app

ROOT = Path(__file__).resolve().parent.parent.parent
PROGRAMS = ROOT / "programs"
UNLEARNABLE = ROOT / "docs" / "examples" / "reverse_unlearnable.npi"

runner = CliRunner()


def npi(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_reversal_through_length_is_reported_naming_the_query() -> None:
    r = npi("lint", UNLEARNABLE, "--lengths", "1..8", "--count", "20")
    assert r.exit_code == 1, r.output
    assert "length()" in r.output and "decided by what the network does not observe" in r.output
    assert "n > 0" in r.output and "call stack: REVERSE()" in r.output
    assert "not learnable" in r.output


def test_json_finding_has_both_inputs_stack_step_decisions_and_condition() -> None:
    r = npi("lint", UNLEARNABLE, "--lengths", "1..8", "--count", "20", "--json")
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert report["clean"] is False and report["task"] == "reverse"
    assert report["observation"] == ["at_start(p1)", "at_end(p2)"]
    (f,) = report["findings"]
    assert f["program"] == "reverse_unlearnable.REVERSE" and f["unobserved"] == ["length()"]
    a, b = f["first"], f["second"]
    assert a["obs"] == b["obs"] and a["step"] == b["step"]  # the same network input ...
    assert {a["decision"], b["decision"]} == {"return", "RSTEP(0, 0, 0)"}  # ... two decisions
    assert len(a["input"]) != len(b["input"]) and a["stack"] == ["REVERSE()"]
    (cond,) = a["conditions"]
    assert (cond["line"], cond["text"], cond["queries"]) == (18, "n > 0", ["length()"])
    # the first input, rerun by itself, makes the decision the report says
    assert {c["value"] for c in (cond, b["conditions"][0])} == {True, False}


def test_a_query_read_through_a_local_is_named(tmp_path: Path) -> None:
    p = tmp_path / "peek.npi"
    p.write_text("""env array
observe at_end(p1)

task peek {
    entry PEEK()
}

program PEEK() {                 # decides on value(p1), which the network does not see
    let v = value(p1)
    let big = v > 4
    if big {
        MOVE(p1, RIGHT)
    }
}
""")
    r = npi("lint", p, "--lengths", "2..4", "--count", "10", "--json")
    assert r.exit_code == 1, r.output
    (f,) = json.loads(r.stdout)["findings"]
    assert f["unobserved"] == ["value(p1)"]
    assert f["first"]["conditions"][0]["text"] == "big"


def test_the_version_with_same_and_the_bundled_programs_are_clean() -> None:
    for name in ("reverse", "selection_sort", "addition"):
        r = npi("lint", PROGRAMS / f"{name}.npi", "--lengths", "1..6", "--count", "10")
        assert r.exit_code == 0, r.output
        assert "clean" in r.output


def test_usage_errors_exit_2() -> None:
    assert npi("lint", ROOT / "nope.npi").exit_code == 2
    r = npi("lint", PROGRAMS / "reverse.npi", "--lengths", "5..1")
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = npi("lint", PROGRAMS / "reverse.npi", "--task", "nosuch")
    assert r.exit_code == 2 and "nosuch" in r.output
