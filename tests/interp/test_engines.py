"""The compiled engine equals the reference interpreter (npi_dsl/reference.py), the definition
of the language's meaning: the same trace lines byte for byte, or the same runtime error, on
every bundled program and on generated programs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interp_helpers import PROGRAMS, write_program

from npi_dsl.checker import load
from npi_dsl.diagnostics import DiagnosticError
from npi_dsl.interpreter import NpiRuntimeError, compile_task

BUNDLED = sorted(p.stem for p in PROGRAMS.glob("*.npi"))


def _outcome(runner, value, seed):  # noqa: ANN001, ANN202
    try:
        return "ok", runner.run_line(value, seed, normalized=True)
    except NpiRuntimeError as e:
        # R004 may be found at different points (docs in npi_dsl/reference.py)
        return e.code, (None if e.code == "R004" else (e.render(), e.steps, e.record))


def _same(checked, values, **budgets) -> None:  # noqa: ANN001
    compiled = compile_task(checked, **budgets)
    reference = compile_task(checked, engine="reference", **budgets)
    for seed, value in values:
        got = _outcome(compiled, value, seed)
        assert got == _outcome(reference, value, seed), value
        if got[0] == "ok":  # the structured record is what parsing the line gives
            assert compiled.run(value, seed) == json.loads(got[1])
            assert reference.run(value, seed) == json.loads(got[1])


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_programs_run_the_same_on_both_engines(name: str) -> None:
    checked = load(PROGRAMS / f"{name}.npi")
    runner = compile_task(checked)
    lengths = range(1, 25) if "addition" in name else range(1, 12)
    if runner.env.max_length is not None:  # the camera: 1..9 views
        lengths = range(1, runner.env.max_length + 1)
    values = []
    for length in lengths:
        for i in range(6):
            s = length * 1000 + i
            values.append((s, runner.parse_input(runner.sample_input(random.Random(s),
                                                                      length))))
    _same(checked, values)


def test_run_from_and_result_agree() -> None:
    checked = load(PROGRAMS / "sorting.npi")
    compiled, reference = compile_task(checked), compile_task(checked, engine="reference")
    for program in checked.program_order:
        nparams = len(checked.programs[program].params)
        a, b = compiled.new_env([5, 2, 8, 1]), reference.new_env([5, 2, 8, 1])
        try:
            got = ("ok", compiled.run_from(a, program, (1,) * nparams), a.snapshot())
        except NpiRuntimeError as e:
            got = (e.code, e.render(), e.steps)
        try:
            want = ("ok", reference.run_from(b, program, (1,) * nparams), b.snapshot())
        except NpiRuntimeError as e:
            want = (e.code, e.render(), e.steps)
        assert got == want, program
        assert compiled.result(a) == reference.result(b)


# ---------------------------------------------------------------- generated programs

_PTR = ("p1", "p2", "p3")


@st.composite
def _int_expr(draw, names: list[str], depth: int = 0) -> str:  # noqa: ANN001
    choices = ["lit", "query"] + (["name"] * 3 if names else [])
    if depth < 2:
        choices += ["bin", "bin"]
    kind = draw(st.sampled_from(choices))
    if kind == "lit":
        return str(draw(st.integers(0, 12)))
    if kind == "name":
        return draw(st.sampled_from(names))
    if kind == "query":
        return draw(st.sampled_from(["length()", f"value({draw(st.sampled_from(_PTR))})"]))
    op = draw(st.sampled_from(["+", "-", "*", "/", "%"]))
    left = draw(_int_expr(names, depth + 1))
    right = draw(_int_expr(names, depth + 1))
    return f"({left} {op} {right})"


@st.composite
def _bool_expr(draw, names: list[str]) -> str:  # noqa: ANN001
    kind = draw(st.sampled_from(["cmp", "cmp", "query", "and", "not"]))
    if kind == "query":
        return f"{draw(st.sampled_from(['at_end', 'at_start']))}({draw(st.sampled_from(_PTR))})"
    if kind == "and":
        return (f"{draw(_bool_expr(names))} {draw(st.sampled_from(['and', 'or']))} "
                f"{draw(_bool_expr(names))}")
    if kind == "not":
        return f"not {draw(_bool_expr(names))}"
    op = draw(st.sampled_from(["<", "<=", "==", "!=", ">", ">="]))
    return f"{draw(_int_expr(names))} {op} {draw(_int_expr(names))}"


@st.composite
def _block(draw, me: int, n: int, arity: list[int], names: list[str], ind: int,  # noqa: ANN001
           depth: int = 0) -> list[str]:
    pad = "    " * ind
    names = list(names)
    lines: list[str] = []
    for _ in range(draw(st.integers(0 if depth else 1, 4))):
        kind = draw(st.sampled_from(["act", "act", "call", "let", "if", "while", "return"]
                                    if depth < 2 else ["act", "call", "let", "return"]))
        if kind == "act":
            if draw(st.booleans()):
                lines.append(f"{pad}MOVE({draw(st.sampled_from(_PTR))}, "
                             f"{draw(st.sampled_from(['LEFT', 'RIGHT']))})")
            else:
                lines.append(f"{pad}SWAP({draw(st.sampled_from(_PTR))}, "
                             f"{draw(st.sampled_from(_PTR))})")
        elif kind == "call":
            callee = draw(st.integers(me, n - 1))
            args = [f"{draw(_int_expr(names))} % 10" if draw(st.booleans())
                    else draw(_int_expr(names)) for _ in range(arity[callee])]
            if callee == me:  # recursion: guarded by a decreasing first argument
                if not arity[me]:
                    continue
                args[0] = f"{names[0]} - 1"
                lines.append(f"{pad}if {names[0]} > 0 {{")
                lines.append(f"{pad}    P{callee}({', '.join(args)})")
                lines.append(f"{pad}}}")
            else:
                lines.append(f"{pad}P{callee}({', '.join(args)})")
        elif kind == "let":
            v = f"v{len(names)}_{ind}"
            lines.append(f"{pad}let {v} = {draw(_int_expr(names))}")
            names.append(v)
        elif kind == "if":
            lines.append(f"{pad}if {draw(_bool_expr(names))} {{")
            lines += draw(_block(me, n, arity, names, ind + 1, depth + 1))
            if draw(st.booleans()):
                lines.append(f"{pad}}} elif {draw(_bool_expr(names))} {{")
                lines += draw(_block(me, n, arity, names, ind + 1, depth + 1))
            if draw(st.booleans()):
                lines.append(f"{pad}}} else {{")
                lines += draw(_block(me, n, arity, names, ind + 1, depth + 1))
            lines.append(f"{pad}}}")
        elif kind == "while":
            k = f"k{len(names)}_{ind}"
            lines.append(f"{pad}let {k} = 0")
            lines.append(f"{pad}while {k} < {draw(st.integers(0, 4))} "
                         f"{draw(st.sampled_from(['and', 'or']))} {draw(_bool_expr(names))} {{")
            lines.append(f"{pad}    {k} = {k} + 1")
            lines += draw(_block(me, n, arity, names + [k], ind + 1, depth + 1))
            lines.append(f"{pad}}}")
            names.append(k)
        elif kind == "return" and draw(st.integers(0, 3)) == 0:
            lines.append(f"{pad}if {draw(_bool_expr(names))} {{")
            lines.append(f"{pad}    return")
            lines.append(f"{pad}}}")
    return lines


@st.composite
def _program_file(draw) -> str:  # noqa: ANN001
    n = draw(st.integers(1, 4))
    arity = [0] + [draw(st.integers(0, 3)) for _ in range(n - 1)]
    parts = ["env array", "", "task go {", "    entry P0()", "}"]
    for i in range(n):
        params = [f"x{i}_{k}" for k in range(arity[i])]
        parts.append(f"program P{i}({', '.join(params)}) {{")
        parts += draw(_block(i, n, arity, params, 1))
        parts.append("}")
    return "\n".join(parts) + "\n"


@settings(max_examples=220, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(text=_program_file(), inputs=st.lists(st.lists(st.integers(0, 9), min_size=1,
                                                       max_size=6), min_size=1, max_size=3))
def test_generated_programs_run_the_same_on_both_engines(tmp_path_factory, text: str,  # noqa: ANN001
                                                         inputs: list[list[int]]) -> None:
    path: Path = write_program(tmp_path_factory.mktemp("gen"), text)
    try:
        checked = load(path)
    except DiagnosticError:  # e.g. an unused program or a constant division by zero
        return
    _same(checked, list(enumerate(inputs)), max_steps=400, max_depth=12)


def test_errors_carry_structured_steps_on_both_engines(tmp_path: Path) -> None:
    path = write_program(tmp_path, "env array\ntask go {\n    entry P0()\n}\n"
                         "program P0() {\n    MOVE(p1, RIGHT)\n    MOVE(p1, LEFT)\n"
                         "    MOVE(p1, LEFT)\n    MOVE(p1, LEFT)\n}\n")
    checked = load(path)
    for engine in ("compiled", "reference"):
        runner = compile_task(checked, engine=engine)
        for run in (runner.run, runner.run_line, runner.run_result):
            with pytest.raises(NpiRuntimeError) as e:
                run([1, 2])
            assert e.value.code == "R003"
            assert [s["call_args"] for s in e.value.steps] == [[0, 0, 1]] + [[0, 0, 0]] * 3


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        compile_task(load(PROGRAMS / "max.npi"), engine="fast")
