"""`observe`: the declared observation is what every step's `obs` holds, in both engines, and
what the trace header records; without it nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from npi_dsl.checker import load
from npi_dsl.interpreter import compile_task
from npi_dsl.trace_files import read_traces
from npi_dsl.trace_validate import validate_record
from npi_runtime import api
from npi_runtime.cli import app

ROOT = Path(__file__).resolve().parents[2]
REVERSE = ROOT / "programs" / "reverse.npi"
SORTING = ROOT / "programs" / "sorting.npi"


def _npi(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _replay_obs(record: dict) -> list[list[int]]:
    """What the declared queries answer before each step, replayed from the input."""
    checked = load(REVERSE)
    env = checked.env_class(**checked.env_config)  # the default observation: query directly
    env.reset(record["input"])
    same, value = env.query_fn("same"), env.query_fn("value")
    at_start, at_end = env.query_fn("at_start"), env.query_fn("at_end")
    seen = []
    for step in record["steps"]:
        seen.append([value(0), value(1), int(at_start(0)), int(at_end(1)), int(same(0, 1))])
        if step["call"] == "ACT":
            env.act(*step["call_args"])
    return seen


def test_compiled_traces_observe_the_declaration(tmp_path: Path) -> None:
    out = tmp_path / "rev.jsonl"
    r = _npi("compile", str(REVERSE), "-n", "8", "-l", "1..9", "--seed", "5", "-o", str(out))
    assert r.exit_code == 0, r.output
    records = list(read_traces(out))  # validating reader
    assert records
    for rec in records:
        vocab = rec["env"]["vocabulary"]
        assert vocab["observe"] == ["value(p1)", "value(p2)", "at_start(p1)", "at_end(p2)",
                                    "same(p1, p2)"]
        assert [s["name"] for s in vocab["observation"]] == vocab["observe"]
        assert [s["symbols"] for s in vocab["observation"]] == [11, 11, 2, 2, 2]
        assert [s["obs"] for s in rec["steps"]] == _replay_obs(rec)
        assert rec["result"] == rec["input"][::-1]
    assert api.check_traces(load(REVERSE), records, rerun=len(records)) == []


def test_validation_refuses_an_observe_field_that_does_not_fit_the_slots() -> None:
    rec = compile_task(load(REVERSE)).run([1, 2, 3], 0)
    validate_record(rec)
    rec["env"]["vocabulary"]["observe"] = rec["env"]["vocabulary"]["observe"][:2]
    with pytest.raises(Exception, match="one slot per observed query"):
        validate_record(rec)


def test_both_engines_agree_on_a_declared_observation() -> None:
    checked = load(REVERSE)
    compiled = compile_task(checked)
    reference = compile_task(checked, engine="reference")
    for seed, value in enumerate([[3], [1, 2], [5, 0, 7], [9, 8, 7, 6, 5, 4, 3, 2]]):
        assert compiled.run_line(value, seed) == reference.run_line(value, seed)


def test_without_observe_the_default_observation_and_no_header_field() -> None:
    checked = load(SORTING)
    assert checked.vocabulary.observed == ()
    rec = compile_task(checked).run([3, 1, 2], 0)
    assert "observe" not in rec["env"]["vocabulary"]
    assert len(rec["steps"][0]["obs"]) == 8  # the paper's: 2 values + 3 pointers x 2 ends


def test_traces_of_another_observation_do_not_fit(tmp_path: Path) -> None:
    other = tmp_path / "reverse.npi"
    other.write_text(REVERSE.read_text().replace(", same(p1, p2)\n", ", same(p1, p2), "
                                                 "at_end(p1)\n", 1))
    records = [compile_task(load(REVERSE)).run([4, 5, 6], 0)]
    with pytest.raises(api.TraceError, match="observe"):
        api.check_traces(load(other), records)


def test_observe_of_length_is_a_clear_diagnostic(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npi"
    bad.write_text(REVERSE.read_text().replace("same(p1, p2)\n", "same(p1, p2), length()\n", 1))
    r = _npi("check", str(bad))
    assert r.exit_code == 1
    assert "error[E121]" in r.output and "privileged" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
