"""Budgets: an infinite loop, a loop that makes no calls, runaway recursion, and the
legitimately deep recursion of recursive addition on 100,000-digit numbers."""

from __future__ import annotations

import random

import pytest
from interp_helpers import checked, write_program

from npi_dsl.checker import load
from npi_dsl.interpreter import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_STEPS,
    NpiRuntimeError,
    compile_task,
)

LOOP = """\
env scratchpad
task t {
    entry MAIN()
}
program MAIN() {
    while true {
        WIGGLE()
    }
}
program WIGGLE() {
    MOVE(in1, LEFT)
    MOVE(in1, RIGHT)
}
"""

SPIN = """\
env scratchpad
task t {
    entry MAIN()
}
program MAIN() {
    let x = 0
    while x >= 0 {
        x = x + 1
    }
}
"""

RUNAWAY = """\
env scratchpad
task t {
    entry DOWN()
}
program DOWN() {
    MOVE(in1, LEFT)
    MOVE(in1, RIGHT)
    DOWN()
}
"""


def _fail(tmp_path, text: str, **budgets) -> NpiRuntimeError:  # noqa: ANN001
    r = compile_task(load(write_program(tmp_path, text)), **budgets)
    with pytest.raises(NpiRuntimeError) as info:
        r.run(["12", "34"])
    return info.value


def test_infinite_loop_hits_the_step_budget(tmp_path) -> None:  # noqa: ANN001
    e = _fail(tmp_path, LOOP, max_steps=1000)
    assert e.code == "R004"
    msg = e.diagnostic.message
    assert "1,000 steps" in msg and "MAIN" in msg and "depth 0" in msg
    assert (e.diagnostic.span.line, e.diagnostic.span.column) == (6, 11)  # the loop
    assert [s.name for s in e.call_stack] == ["MAIN"]
    assert "raise --max-steps" in (e.diagnostic.hint or "")
    # the run stopped promptly: at most one loop iteration past the budget
    assert 1000 < e.steps_done <= 1000 + 7


def test_loop_without_calls_is_stopped_too(tmp_path) -> None:  # noqa: ANN001
    e = _fail(tmp_path, SPIN, max_steps=5000)
    assert e.code == "R004"
    assert "5,000 loop iterations" in e.diagnostic.message
    assert "makes no calls" in e.diagnostic.message


def test_runaway_recursion_hits_the_depth_budget(tmp_path) -> None:  # noqa: ANN001
    e = _fail(tmp_path, RUNAWAY, max_depth=300)
    assert e.code == "R005"
    msg = e.diagnostic.message
    assert "DOWN at depth 300 calls DOWN" in msg and "depth 301" in msg and "300" in msg
    assert (e.diagnostic.span.line, e.diagnostic.span.column) == (8, 5)  # the call DOWN()
    assert len(e.call_stack) == 301
    assert [s.depth for s in e.call_stack] == list(range(301))
    assert e.call_stack[-1].frame == 300
    text = e.render()
    assert "call stack (innermost first)" in text
    assert "DOWN() frame 300, depth 300" in text.splitlines()[5]  # the top comes first
    assert "more frames" in text  # long stacks are cut in the middle


def test_runaway_recursion_with_the_default_budget_is_an_error_not_a_crash(tmp_path) -> None:  # noqa: ANN001
    e = _fail(tmp_path, RUNAWAY)
    assert e.code == "R005"
    assert f"{DEFAULT_MAX_DEPTH:,}" in e.diagnostic.message


def test_a_run_over_budget_without_loops_is_reported_at_the_end(tmp_path) -> None:  # noqa: ANN001
    text = "env scratchpad\ntask t {\n    entry A()\n}\nprogram A() {\n" + \
        "    B()\n" * 6 + "}\nprogram B() {\n" + "    MOVE(out, LEFT)\n    MOVE(out, RIGHT)\n" * 3 \
        + "}\n"
    e = _fail(tmp_path, text, max_steps=20)
    assert e.code == "R004"
    assert "took 49 steps" in e.diagnostic.message


def test_legitimate_100000_deep_recursion() -> None:
    """Recursive addition of two 100,000-digit numbers: 100,002 nested ADD frames."""
    rng = random.Random(3)
    a = "".join(rng.choices("0123456789", k=100_000))
    b = "".join(rng.choices("0123456789", k=100_000))
    r = compile_task(checked("addition_recursive"), max_depth=100_010)
    result, steps = r.run_result([a, b])  # checked against the oracle inside
    assert len(result) in (100_000, 100_001)
    assert result == r.expected([a, b])
    assert steps > 1_300_000
    with pytest.raises(NpiRuntimeError) as info:  # and the default budget stops it cleanly
        compile_task(checked("addition_recursive")).run_result([a, b])
    assert info.value.code == "R005"


def test_defaults_run_addition_at_10000_digits_and_sorting_at_300() -> None:
    assert DEFAULT_MAX_STEPS >= 2_000_000
    rng = random.Random(5)
    a = "".join(rng.choices("0123456789", k=10_000))
    result, _ = compile_task(checked("addition")).run_result([a, a])
    assert result == compile_task(checked("addition")).expected([a, a])
    values = [rng.randrange(10) for _ in range(300)]
    result, steps = compile_task(checked("sorting")).run_result(values)
    assert result == sorted(values)
    assert steps < DEFAULT_MAX_STEPS
