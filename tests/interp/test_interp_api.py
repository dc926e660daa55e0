"""The TaskRunner API others build on: run, run_from, result, expected, correct, sampling."""

from __future__ import annotations

import json
import random

import pytest
from interp_helpers import checked, replay, runner

from npi_dsl.interpreter import compile_task
from npi_dsl.sampling import compile_lines, iter_inputs, parse_lengths, trace_seed
from npi_dsl.trace import RECORD_KEYS, STEP_KEYS


def test_record_keys_are_in_schema_order() -> None:
    record = runner("addition").run(["6", "7"], seed=3)
    assert tuple(record) == RECORD_KEYS
    assert all(tuple(s) == STEP_KEYS for s in record["steps"])
    assert record["seed"] == 3 and record["length"] == 1 and record["task"] == "add"
    assert record["env"]["name"] == "scratchpad"
    assert record["source_hash"] == checked("addition").source_hash


def test_inputs_are_normalised_as_run_takes_them() -> None:
    r = runner("addition")
    assert r.run([96, 125])["input"] == ["96", "125"]
    assert r.run(["0096", "125"])["input"] == ["96", "125"]


def test_run_from_any_state() -> None:
    """LSHIFT from the state after ADD1 of 96 + 125: what the verification of a frame needs."""
    r = runner("addition")
    env = r.new_env()
    env.reset(["96", "125"])
    env.act(1, 3, 1)  # WRITE out 1
    before = env.snapshot()
    steps = r.run_from(env, "addition.LSHIFT")
    assert [s["call_args"] for s in steps] == [[0, 0, 0], [0, 1, 0], [0, 2, 0], [0, 3, 0],
                                               [0, 0, 0]]
    assert steps[0]["frame"] == 0 and steps[0]["depth"] == 0 and steps[-1]["end"]
    assert steps[0]["obs"] == [6, 5, 10, 1]
    check = r.new_env()
    check.restore(before)
    replay(check, steps)
    assert check.snapshot() == env.snapshot()
    # bare names work too, and a program runs from the state the previous run left
    assert r.run_from(env, "ADD1")[0]["call_args"] == [1, 3, 1]  # 9 + 2 = 11 -> 1


def test_run_from_checks_its_arguments() -> None:
    r = runner("features")
    env = r.new_env()
    env.reset([1, 2, 3])
    steps = r.run_from(env, "HOP", (2, 1))
    assert steps[0]["args"] == [2, 1, 0]
    with pytest.raises(ValueError, match="takes 2 arguments"):
        r.run_from(env, "HOP", (2, 1, 5))
    with pytest.raises(ValueError, match="in \\[0, 10\\)"):
        r.run_from(env, "HOP", (12,))
    with pytest.raises(KeyError, match="no program"):
        r.run_from(env, "NOPE")


def test_result_expected_correct() -> None:
    r = runner("max")
    env = r.new_env()
    env.reset([3, 9, 4])
    r.run_from(env, "MAX")
    assert r.result(env) == 9  # the task's `result value(p1)`
    assert r.expected([3, 9, 4]) == 9
    assert r.correct([3, 9, 4], 9) and not r.correct([3, 9, 4], 4)
    assert runner("features").expected([1]) is None  # no expect: nothing to check
    # no expect: correct means "equals the reference program's result" (issue 9)
    features = runner("features")
    reference = features.run_result([1])[0]
    assert features.correct([1], reference)
    assert not features.correct([1], [reference, 1])


def test_sample_input_and_envs() -> None:
    r = runner("sorting")
    value = r.sample_input(random.Random(1), 7)
    assert len(value) == 7 and r.input_length(value) == 7
    assert r.new_env() is not r.env


def test_run_result_does_not_build_a_trace() -> None:
    result, steps = runner("addition").run_result(["96", "125"])
    assert result == "221" and steps == 38


def test_same_seed_same_bytes_and_prefix_stable_counts() -> None:
    r = runner("addition")
    a = list(compile_lines(r, [1, 5, 20], 4, seed=11))
    b = list(compile_lines(compile_task(checked("addition")), [1, 5, 20], 4, seed=11))
    assert a == b
    c = list(compile_lines(r, [1, 5, 20], 4, seed=12))
    assert a != c
    more = list(compile_lines(r, [5], 8, seed=11))
    assert more[:4] == a[4:8]  # --count 8 extends --count 4; lengths are independent
    for line in a:
        rec = json.loads(line)
        assert rec["length"] == max(len(x) for x in rec["input"])
        # the trace's own seed regenerates its input
        again = r.parse_input(r.sample_input(random.Random(rec["seed"]), rec["length"]))
        assert again == rec["input"]


def test_trace_seeds_and_inputs() -> None:
    assert trace_seed(0, 1, 0) != trace_seed(0, 1, 1) != trace_seed(1, 1, 0)
    assert 0 <= trace_seed(2**40, 99, 7) < 2**63
    inputs = list(iter_inputs(runner("sorting"), [3, 4], 2, 0))
    assert [len(v) for _, v in inputs] == [3, 3, 4, 4]


@pytest.mark.parametrize("text,lengths", [("1..3", [1, 2, 3]), ("5,10,20", [5, 10, 20]),
                                          ("7", [7]), (" 2 .. 2 ", [2])])
def test_parse_lengths(text: str, lengths: list[int]) -> None:
    assert parse_lengths(text) == lengths


@pytest.mark.parametrize("text", ["", "3..1", "0..2", "a..b", "1,,2", "1-3", "0", "-1"])
def test_parse_lengths_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_lengths(text)


def test_bindings_are_reused_and_bounded() -> None:
    r = compile_task(checked("addition"))
    env = r.new_env()
    env.reset(["1", "2"])
    assert r.bind(env) is r.bind(env)
    for _ in range(50):
        other = r.new_env()
        other.reset(["5", "6"])
        assert r.run_from(other, "ADD")[-1]["end"]
    assert len(r._bindings) <= 16
    assert r.run(["96", "125"])["result"] == "221"  # the runner's own binding survives
    assert r.bind(r.env) is r._main
