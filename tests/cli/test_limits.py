"""The language's limits (docs/language.md, "Limits"): programs past them are refused by
`npi check` with a diagnostic, programs within them run on both engines, and no traceback.

Each reproducer is a program that `npi check` once accepted and `npi run` crashed on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from npi_dsl.parser import MAX_BLOCK_DEPTH, MAX_EXPR_DEPTH, MAX_INT, MAX_LOOP_DEPTH
from npi_runtime.cli import app

HEAD = "env scratchpad\ntask t {\n    entry P()\n}\n"


def _program(body: str, head: str = HEAD) -> str:
    return head + "program P() {\n" + body + "\n}\n"


def _nested(n: int, keyword: str) -> str:
    cond = "true" if keyword == "if" else "x < 1"
    return ("let x = 0\n" + f"{keyword} {cond} {{\n" * n + "x = 1\n" + "}\n" * n)


def _npi(*args: str):  # noqa: ANN202
    return CliRunner().invoke(app, list(args))


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "case.npi"
    p.write_text(text, "utf-8")
    return str(p)


#: (name, program text, the diagnostic code `npi check` gives)
REFUSED = [
    ("97 nested if", _program(_nested(97, "if")), "E006"),
    ("97 nested while", _program(_nested(97, "while")), "E006"),
    ("17 nested while", _program(_nested(MAX_LOOP_DEPTH + 1, "while")), "E006"),
    ("202-term sum", _program("let x = " + " + ".join(["1"] * 202)), "E006"),
    ("201 unary minus", _program("let x = " + "-" * 201 + "1"), "E006"),
    ("1000-term sum", _program("let x = " + " + ".join(["1"] * 1000)), "E006"),
    ("4400-digit constant", _program("let x = " + "9" * 4400), "E007"),
    ("4400-digit const", "env scratchpad\nconst C = " + "9" * 4400 + "\n"
     "task t {\n    entry P()\n}\nprogram P() {\n}\n", "E007"),
    ("arg_range 10^20", _program("", "env scratchpad(arg_range = 99999999999999999999)\n"
                                 "task t {\n    entry P()\n}\n"), "E007"),
    ("arg_range 5000", _program("", "env scratchpad(arg_range = 5000)\n"
                                "task t {\n    entry P()\n}\n"), "E103"),
    ("folded constant overflow", "env scratchpad\nconst C = 4611686018427387904 * 2\n"
     "task t {\n    entry P()\n}\nprogram P() {\n}\n", "E407"),
    ("negated minimum", "env scratchpad\nconst C = -(-9223372036854775807 - 1)\n"
     "task t {\n    entry P()\n}\nprogram P() {\n}\n", "E407"),
]


@pytest.mark.parametrize(("name", "text", "code"), REFUSED, ids=[r[0] for r in REFUSED])
def test_past_a_limit_check_and_run_refuse_with_a_diagnostic(
        tmp_path: Path, name: str, text: str, code: str) -> None:
    path = _write(tmp_path, text)
    for args in (["check", path], ["run", path, "-i", "[1, 2]"],
                 ["run", path, "-i", "[1, 2]", "--engine", "reference"]):
        r = _npi(*args)
        assert "Traceback" not in r.output, r.output
        assert r.exit_code == 1, (args, r.output)
        assert f"error[{code}]" in r.output, r.output
        assert " | " in r.output and "^" in r.output  # the source line and the caret


#: programs at the limits: they check clean and run, with the same trace, on both engines
AT_LIMITS = [
    ("16 nested while", _program(_nested(MAX_LOOP_DEPTH, "while"))),
    ("63 nested if", _program(_nested(MAX_BLOCK_DEPTH - 1, "if"))),
    # each program within the limits, but inlining Q into P would pass Python's
    ("loops of a callee", _program(_nested(12, "while").replace("x = 1", "Q()\nx = 1"))
     + "program Q() {\n" + _nested(12, "while") + "}\n"),
    ("blocks of a callee", _program(_nested(60, "if").replace("x = 1", "Q()\nx = 1"))
     + "program Q() {\n" + _nested(60, "if") + "}\n"),
    ("101-term sum", _program("let x = " + " + ".join(["1"] * (MAX_EXPR_DEPTH + 1)))),
    ("100 unary minus", _program("let x = " + "-" * MAX_EXPR_DEPTH + "1")),
    ("100 nested products", _program("let y = 3\nlet x = " + "(y * " * 99 + "y" + ")" * 99
                                     + " % 7")),
    ("largest literal", _program(f"let x = {MAX_INT}\nlet y = -x - 1")),
    ("arg_range 1000", _program("WRITE(out, 9)", "env scratchpad(arg_range = 1000)\n"
                                "task t {\n    entry P()\n}\n")),
]


@pytest.mark.parametrize(("name", "text"), AT_LIMITS, ids=[r[0] for r in AT_LIMITS])
def test_at_the_limits_both_engines_run(tmp_path: Path, name: str, text: str) -> None:
    path = _write(tmp_path, text)
    r = _npi("check", path)
    assert r.exit_code == 0, r.output
    outputs = []
    for engine in ("compiled", "reference"):
        r = _npi("run", path, "-i", "[1, 2]", "--json", "--engine", engine)
        assert "Traceback" not in r.output, r.output
        assert r.exit_code == 0, r.output
        outputs.append(r.stdout)
    assert outputs[0] == outputs[1]


OVERFLOWS = [
    ("square in a loop", "let x = 2\nwhile true {\n    x = x * x\n}", "8:5"),
    ("increment past the top", f"let x = {MAX_INT}\nx = x + 1", "7:1"),
    ("negate the bottom", f"let x = -{MAX_INT} - 1\nlet y = -x", "7:1"),
    ("divide the bottom by -1", f"let x = -{MAX_INT} - 1\nlet y = x / -1", "7:1"),
    ("one big product", f"let x = {MAX_INT} * {MAX_INT} * {MAX_INT}", "6:1"),
]


@pytest.mark.parametrize(("name", "body", "line"), OVERFLOWS, ids=[o[0] for o in OVERFLOWS])
def test_integer_overflow_is_r007_at_the_statement_on_both_engines(
        tmp_path: Path, name: str, body: str, line: int) -> None:
    path = _write(tmp_path, _program(body))
    assert _npi("check", path).exit_code == 0
    outputs = []
    for engine in ("compiled", "reference"):
        r = _npi("run", path, "-i", "[1, 2]", "--engine", engine, "--max-steps", "100000")
        assert "Traceback" not in r.output, r.output
        assert r.exit_code == 1, r.output
        assert f"case.npi:{line}: error[R007]: integer overflow" in r.output, r.output
        outputs.append(r.output)
    assert outputs[0] == outputs[1]


def test_huge_transient_values_in_messages_do_not_crash(tmp_path: Path) -> None:
    """A value past Python's 4,300-digit str() limit, computed inside one expression and
    passed as an argument: R002 says so without formatting the value's digits."""
    big = "(a * 1000000000000000000)"  # a local: not a constant the checker folds
    for _ in range(10):  # 1,024 factors: about 18,000 digits, 11 levels deep
        big = f"({big} * {big})"
    text = _program(f"let a = 1\nWRITE(out, {big})")
    path = _write(tmp_path, text)
    for engine in ("compiled", "reference"):
        r = _npi("run", path, "-i", "[1, 2]", "--engine", engine)
        assert "Traceback" not in r.output, r.output
        assert r.exit_code == 1 and "error[R002]" in r.output, r.output
        assert "too large to show" in r.output


def test_excerpts_are_literal_no_emoji_no_markup(tmp_path: Path) -> None:
    path = _write(tmp_path, "env scratchpad\ntask t {\n    entry P()\n}\n"
                            "program P() { FOO() } # :x: :warning: [bold]b[/bold]\n")
    r = _npi("check", path)
    assert r.exit_code == 1
    assert "program P() { FOO() } # :x: :warning: [bold]b[/bold]" in r.output
    assert "\u274c" not in r.output and "\u26a0" not in r.output


@pytest.mark.skipif(not Path("/etc/passwd").exists(), reason="needs /etc/passwd")
def test_import_of_a_non_npi_file_does_not_show_its_contents(tmp_path: Path) -> None:
    first = Path("/etc/passwd").read_text(errors="replace").split("\n", 1)[0]
    path = _write(tmp_path, 'env scratchpad\nimport "/etc/passwd"\ntask t {\n    entry P()\n}\n'
                            "program P() {\n}\n")
    r = _npi("check", path)
    assert r.exit_code == 1 and "error[E111]" in r.output
    assert "only .npi files can be imported" in r.output
    assert first not in r.output


def test_huge_query_argument_is_r003_saying_so(tmp_path: Path) -> None:
    big = "(a * 1000000000000000000)"
    for _ in range(10):
        big = f"({big} * {big})"
    path = _write(tmp_path, _program(f"let a = 1\nlet q = read({big})"))
    outputs = []
    for engine in ("compiled", "reference"):
        r = _npi("run", path, "-i", "[1, 2]", "--engine", engine)
        assert "Traceback" not in r.output, r.output
        assert r.exit_code == 1 and "error[R003]" in r.output, r.output
        assert "integer too large to show" in r.output
        outputs.append(r.output)
    assert outputs[0] == outputs[1]


def test_entry_argument_overflow_is_e407_alone(tmp_path: Path) -> None:
    path = _write(tmp_path, "env scratchpad\ntask t {\n    entry P(9223372036854775807 + 1)\n}\n"
                            "program P(n) {\n}\n")
    r = _npi("check", path)
    assert r.exit_code == 1 and "error[E407]" in r.output and "E406" not in r.output
