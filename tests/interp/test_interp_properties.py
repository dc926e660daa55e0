"""Property tests: random inputs give the true result; traces replay; obs is observe()."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from interp_helpers import checked, replay, runner

from npi_dsl import codegen
from npi_dsl.interpreter import compile_task
from npi_dsl.trace import validate_record

digits = st.text(alphabet="0123456789", min_size=1, max_size=60)
arrays = st.lists(st.integers(0, 9), min_size=1, max_size=30)


def _check_trace(name: str, value: object) -> dict:
    r = runner(name)
    record = r.run(value)
    validate_record(record)
    # replaying the ACT steps on a fresh environment gives every step's obs and the end state
    env = r.new_env()
    env.reset(r.parse_input(value))
    replay(env, record["steps"])
    assert env.snapshot() == r.env.snapshot()
    assert r.result(env) == record["result"]
    return record


@settings(max_examples=60, deadline=None)
@given(digits, digits)
def test_addition_gives_the_sum(a: str, b: str) -> None:
    record = _check_trace("addition", [a, b])
    assert record["result"] == str(int(a) + int(b))


@settings(max_examples=30, deadline=None)
@given(digits, digits)
def test_recursive_addition_gives_the_sum(a: str, b: str) -> None:
    record = _check_trace("addition_recursive", [a, b])
    assert record["result"] == str(int(a) + int(b))


@settings(max_examples=40, deadline=None)
@given(arrays)
def test_bubble_sort_sorts(values: list[int]) -> None:
    record = _check_trace("sorting", values)
    assert record["result"] == sorted(values)


@settings(max_examples=40, deadline=None)
@given(arrays)
def test_max_finds_the_largest(values: list[int]) -> None:
    record = _check_trace("max", values)
    assert record["result"] == max(values)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=12))
def test_compiled_features_match_the_reference_interpreter(values: list[int]) -> None:
    c = checked("features")
    record = _check_trace("features", values)
    env = c.create_env()
    env.reset(values)
    assert record["steps"] == compile_task(c, engine="reference").run_from(env, "features.MAIN")


@pytest.mark.parametrize("mode", ["no inlining", "all generator frames", "no env inlining"])
@pytest.mark.parametrize("name,inputs", [
    ("addition", [["96", "125"], ["99999", "1"], ["0", "0"]]),
    ("addition_recursive", [["96", "125"], ["5", "123456"]]),
    ("sorting", [[5, 2, 8], [9, 8, 7, 6, 5, 4, 3, 2, 1]]),
    ("max", [[3, 9, 4], [1]]),
    ("features", [[3, 1, 2, 5], [9, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8]]),
])
def test_compilation_strategies_give_the_same_bytes(monkeypatch, mode, name, inputs) -> None:  # noqa: ANN001
    """Inlining and plain-versus-generator frames are optimisations: the bytes never change."""
    default = runner(name)
    if mode == "no inlining":
        monkeypatch.setattr(codegen, "INLINE_MAX_LEVELS", 0)
    elif mode == "all generator frames":
        monkeypatch.setattr(codegen, "MAX_PLAIN_HEIGHT", 0)
    other = compile_task(checked(name), inline_env=mode != "no env inlining")
    if mode == "no inlining":
        assert " = _nf" not in other.python_source  # no inlined frame ids
    elif mode == "all generator frames":
        assert "yield" in other.python_source
    else:
        assert "STATE[" not in other.python_source
    for value in inputs:
        assert other.run_line(value, 7) == default.run_line(value, 7)


@settings(max_examples=30, deadline=None)
@given(digits, digits, st.integers(0, 2**63 - 1) | st.none())
def test_line_is_exactly_json_dumps(a: str, b: str, seed: int | None) -> None:
    line = runner("addition").run_line([a, b], seed)
    assert json.dumps(json.loads(line), separators=(",", ":")) == line


_PAD_PROGRAM = """\
env scratchpad(arg_range = 12)
task t {
    entry MAIN(K)
}
const K = 3
program MAIN(k) {
    let i = 0
    while i < k {
        WRITE(out, digit(in1) + digit(in2) % 3)
        MOVE(out, LEFT)
        if read(in1) == BLANK {
            MOVE(in1, RIGHT)
        } else {
            MOVE(in1, LEFT)
        }
        i = i + 1
    }
    MOVE(carry, RIGHT)
}
"""


@settings(max_examples=60, deadline=None)
@given(digits, digits)
def test_inlined_env_operations_fail_exactly_like_the_environment(tmp_path_factory, a, b) -> None:  # noqa: ANN001
    """Moves off the pad and digits past 9, inlined or not: the same steps and diagnostics."""
    from interp_helpers import write_program

    from npi_dsl.checker import load
    from npi_dsl.interpreter import NpiRuntimeError

    c = load(write_program(tmp_path_factory.mktemp("pad"), _PAD_PROGRAM))
    outcomes = []
    for inline in (True, False):
        r = compile_task(c, inline_env=inline)
        assert ("STATE[" in r.python_source) is inline
        try:
            outcomes.append(("ok", r.run_line([a, b])))
        except NpiRuntimeError as e:
            outcomes.append((e.render(), e.steps))
    assert outcomes[0] == outcomes[1]


def test_an_env_that_does_not_look_as_the_spec_expects_runs_plain() -> None:
    r = compile_task(checked("addition"))
    env = r.new_env()
    env._cur.append(0)  # not the layout the scratch-pad spec knows: fall back to calls
    env._cur.pop()
    odd = r.new_env()
    odd._pos = list(odd._pos) + [0]
    assert r.bind(env).compiled is r.bind(r.env).compiled
    assert r.bind(odd).compiled is not r.bind(r.env).compiled
    assert "STATE[" not in r.bind(odd).compiled.source
