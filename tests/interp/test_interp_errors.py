"""Runtime errors: diagnostics with the .npi source location and the call stack."""

from __future__ import annotations

import pytest
from interp_helpers import write_program

from npi_dsl.checker import load
from npi_dsl.diagnostics import CODES
from npi_dsl.interpreter import NpiRuntimeError, compile_task

OFF_THE_PAD = """\
env scratchpad
task t {
    entry MAIN()
}
program MAIN() {
    GO(3)
}
program GO(n) {
    let k = 0
    while k < 10 {
        LEFT1()
        k = k + n
    }
}
program LEFT1() {
    MOVE(carry, LEFT)
}
"""


def _error(tmp_path, text: str, value: object = ("98", "5"), **kw) -> NpiRuntimeError:  # noqa: ANN001
    r = compile_task(load(write_program(tmp_path, text)), **kw)
    with pytest.raises(NpiRuntimeError) as info:
        r.run(list(value))
    return info.value


def test_codes_are_registered_and_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "tasks.md").read_text()
    for code in ("R001", "R002", "R003", "R004", "R005", "R006", "R007"):
        assert code in CODES
        assert f"| {code} |" in doc


def test_pointer_off_the_pad_names_the_action_and_the_call_stack(tmp_path) -> None:  # noqa: ANN001
    e = _error(tmp_path, OFF_THE_PAD)
    d = e.diagnostic
    assert d.code == "R003" and d.severity == "error"
    assert (d.span.line, d.span.column) == (16, 5)
    assert "pointer carry moved off the pad" in d.message and "LEFT1 at depth 2" in d.message
    stack = [(s.name, s.args[: s.arity], s.frame, s.depth, s.span.line) for s in e.call_stack]
    assert stack == [("MAIN", (), 0, 0, 6), ("GO", (3,), 1, 1, 11), ("LEFT1", (), 5, 2, 16)]
    # the frame ids are those of the trace: the steps before the error are kept
    assert e.steps is not None and e.steps[-1]["frame"] == 5
    assert e.steps[-1]["call"] == "ACT"  # the failing MOVE is the last step
    text = e.render()
    assert text.splitlines()[0].endswith(
        "error[R003]: environment error in LEFT1 at depth 2: pointer carry moved off the pad "
        "at column -1 (pad has 4 columns)")
    assert "  16 |     MOVE(carry, LEFT)" in text
    assert "    LEFT1() frame 5, depth 2, at " in text and "GO(3) frame 1, depth 1" in text


def test_errors_inside_recursive_frames_have_the_whole_stack(tmp_path) -> None:  # noqa: ANN001
    text = """\
env scratchpad
task t {
    entry R(0)
}
program R(k) {
    MOVE(in1, LEFT)
    if k < 9 {
        R(k + 1)
    }
}
"""
    e = _error(tmp_path, text, ("5", "5"))
    assert e.code == "R003"
    assert [(s.name, s.args[0], s.depth) for s in e.call_stack] == [("R", 0, 0), ("R", 1, 1),
                                                                     ("R", 2, 2)]
    assert [s.span.line for s in e.call_stack] == [8, 8, 6]


def test_division_by_zero_points_at_the_division(tmp_path) -> None:  # noqa: ANN001
    text = """\
env scratchpad
task t {
    entry MAIN()
}
program MAIN() {
    let z = digit(carry)
    WRITE(out, 7 % (z + 1) + 7 / z)
}
"""
    e = _error(tmp_path, text)
    assert e.code == "R001"
    assert (e.diagnostic.span.line, e.diagnostic.span.column) == (7, 30)  # `7 / z`
    assert "`/`" in e.diagnostic.message


def test_argument_out_of_range(tmp_path) -> None:  # noqa: ANN001
    text = """\
env scratchpad
task t {
    entry MAIN()
}
program MAIN() {
    let s = digit(in1) + digit(in2)
    W(s)
}
program W(v) {
    WRITE(out, v)
}
"""
    e = _error(tmp_path, text)
    assert e.code == "R002"
    assert "argument 1 of W is 13, outside [0, 10)" in e.diagnostic.message
    assert e.diagnostic.span.line == 7


def test_an_action_argument_the_env_rejects(tmp_path) -> None:  # noqa: ANN001
    text = """\
env scratchpad(arg_range = 12)
task t {
    entry MAIN()
}
program MAIN() {
    WRITE(out, digit(in1) + 2)
}
"""
    e = _error(tmp_path, text)
    assert e.code == "R003" and "WRITE: value must be a digit 0..9, got 10" in e.diagnostic.message


def test_wrong_result_shows_input_result_and_expected(tmp_path) -> None:  # noqa: ANN001
    text = """\
env scratchpad
task t {
    entry MAIN()
    expect sum
}
program MAIN() {
    WRITE(out, 7)
}
"""
    e = _error(tmp_path, text)
    assert e.code == "R006"
    assert e.diagnostic.message == ('wrong result: for input ["98","5"] the task `t` gives "7", '
                                    'expected "103" (expect sum)')
    assert e.diagnostic.span.line == 4
    assert e.call_stack == []
    assert e.record is not None and e.record["result"] == "7"  # the whole (wrong) trace


def test_a_failing_result_expression(tmp_path) -> None:  # noqa: ANN001
    text = """\
env array
task t {
    entry MAIN()
    result 10 / value(p1)
}
program MAIN() {
    MOVE(p1, RIGHT)
}
"""
    r = compile_task(load(write_program(tmp_path, text)))
    assert r.run([0, 5])["result"] == 2
    with pytest.raises(NpiRuntimeError) as info:
        r.run([5, 0])
    assert info.value.code == "R001"
    assert info.value.diagnostic.span.line == 4


def test_long_values_are_shortened_in_messages(tmp_path) -> None:  # noqa: ANN001
    text = "env scratchpad\ntask t {\n    entry M()\n    expect sum\n}\nprogram M() {\n}\n"
    e = _error(tmp_path, text, ("9" * 5000, "1"))
    assert len(e.diagnostic.message) < 400 and "characters" in e.diagnostic.message
