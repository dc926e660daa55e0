"""Whatever the input, checking ends quickly with diagnostics: no traceback, no hang.

The limits are decisions written down in docs/language.md: files over 1 MiB are refused
(E006) without being parsed; blocks nested deeper than 64 levels and expressions deeper than
100 are refused (E006), quickly and without a RecursionError.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from npi_dsl.checker import check_file
from npi_dsl.diagnostics import Diagnostic, DiagnosticError
from npi_dsl.parser import (
    MAX_BLOCK_DEPTH,
    MAX_EXPR_DEPTH,
    MAX_FILE_BYTES,
    MAX_LOOP_DEPTH,
    read_source,
)


def _codes(path: Path) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.column) for d in check_file(path).diagnostics]


def _write(tmp_path: Path, data: str | bytes, name: str = "t.npi") -> Path:
    p = tmp_path / name
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data, "utf-8")
    return p


def test_empty_file_is_a_missing_env(tmp_path: Path) -> None:
    assert _codes(_write(tmp_path, "")) == [("E101", 1, 1)]


def test_comment_only_file_is_a_missing_env(tmp_path: Path) -> None:
    assert _codes(_write(tmp_path, "# nothing here\n\n   \n")) == [("E101", 1, 1)]


def test_binary_file_is_e005(tmp_path: Path) -> None:
    p = _write(tmp_path, bytes(range(256)) * 8)
    assert _codes(p) == [("E005", 1, 1)]
    assert "binary" in check_file(p).diagnostics[0].message


def test_non_utf8_bytes_are_e005_at_their_position(tmp_path: Path) -> None:
    p = _write(tmp_path, b"env scratchpad\nconst X = 1 # caf\xe9\n")
    (d,) = check_file(p).diagnostics
    assert (d.code, d.span.line, d.span.column) == ("E005", 2, 18)
    assert "0xe9" in d.message


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    p = _write(tmp_path, "\ufeffenv scratchpad\n")
    assert _codes(p) == []


def test_directory_is_e005(tmp_path: Path) -> None:
    assert _codes(tmp_path) == [("E005", 1, 1)]


def test_missing_file_is_e005(tmp_path: Path) -> None:
    report = check_file(tmp_path / "nope.npi")
    assert [(d.code, d.message) for d in report.diagnostics] == [
        ("E005", f"{tmp_path / 'nope.npi'} does not exist")]


def test_ten_megabyte_file_is_refused_quickly(tmp_path: Path) -> None:
    p = _write(tmp_path, "env scratchpad\n" + ("# " + "x" * 1000 + "\n") * 10_500)
    assert p.stat().st_size > 10 * 2**20
    start = time.perf_counter()
    (d,) = check_file(p).diagnostics
    assert time.perf_counter() - start < 1.0
    assert (d.code, d.span.line, d.span.column) == ("E006", 1, 1)
    assert "10.0 MiB" in d.message and "the limit is 1 MiB" in d.message


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_special_file_is_read_only_up_to_the_limit() -> None:
    """/dev/zero reports size 0 and never ends: it is refused as a device, unread."""
    start = time.perf_counter()
    with pytest.raises(DiagnosticError) as e:
        read_source("/dev/zero")
    assert time.perf_counter() - start < 5.0
    assert e.value.diagnostics[0].code == "E005"
    assert "is a device, not a regular file" in e.value.diagnostics[0].message


def test_a_file_just_under_the_limit_is_read(tmp_path: Path) -> None:
    p = _write(tmp_path, "env scratchpad\n" + "#" * (MAX_FILE_BYTES - 100) + "\n")
    assert read_source(p).startswith("env scratchpad")


def _nested(n: int, cond: str = "read(in1) != BLANK", keyword: str = "while") -> str:
    return ("env scratchpad\ntask t { entry P() }\nprogram P() {\n"
            + f"{keyword} {cond} {{\n" * n + "MOVE(in1, LEFT)\n" + "}\n" * n + "}\n")


def test_blocks_at_the_limit_check_clean(tmp_path: Path) -> None:
    # the program's block is level 1: 63 nested ifs reach the limit of 64
    p = _write(tmp_path, _nested(MAX_BLOCK_DEPTH - 1, keyword="if"))
    assert _codes(p) == []
    p = _write(tmp_path, _nested(MAX_LOOP_DEPTH))
    assert _codes(p) == []


def test_six_thousand_nested_blocks_are_e006_quickly(tmp_path: Path) -> None:
    p = _write(tmp_path, _nested(6000))
    start = time.perf_counter()
    # the 17th while is past the loop limit
    assert _codes(p) == [("E006", 3 + MAX_LOOP_DEPTH + 1, 1)]
    assert time.perf_counter() - start < 10.0
    p = _write(tmp_path, _nested(6000, "true", "if"))
    # level 65 is the block of the 64th if, on line 3 + 64
    assert _codes(p) == [("E006", 3 + MAX_BLOCK_DEPTH, 9)]


def test_deep_expressions_are_e006(tmp_path: Path) -> None:
    p = _write(tmp_path, "env scratchpad\nconst X = " + "-" * 6000 + "1\n")
    assert _codes(p) == [("E006", 2, 11 + MAX_EXPR_DEPTH)]
    p = _write(tmp_path, "env scratchpad\nconst X = " + "-" * MAX_EXPR_DEPTH + "1\n")
    assert _codes(p) == []


def test_deep_parentheses_are_not_nesting(tmp_path: Path) -> None:
    """Parentheses make no AST node: `((((1))))` is the literal 1, however deep."""
    p = _write(tmp_path, "env scratchpad\nconst X = " + "(" * 10_000 + "1" + ")" * 10_000 + "\n")
    assert _codes(p) == []


def test_unclosed_block_at_the_end_points_at_its_opening_brace(tmp_path: Path) -> None:
    p = _write(tmp_path, "env scratchpad\ntask t { entry P() }\nprogram P() {\n"
                         "    if true {\n        MOVE(in1, LEFT)\n    }\n")
    (d,) = check_file(p).diagnostics
    assert (d.code, d.span.line, d.span.column) == ("E002", 3, 13)


def test_thousands_of_errors_render_in_linear_time(tmp_path: Path) -> None:
    """Each diagnostic's excerpt used to split the whole file again: quadratic."""
    n = 20_000
    source = "env scratchpad\n" + "# filler " * 50 + "\n" * n
    diags = [Diagnostic("t.npi", _span(i % n + 2), "error", "E203", "unknown name `zz`")
             for i in range(n)]
    start = time.perf_counter()
    rendered = [d.render(source) for d in diags]
    assert time.perf_counter() - start < 3.0
    assert rendered[0].splitlines()[1].startswith("  2 | # filler")


def _span(line: int):
    from npi_dsl.ast import Span

    return Span(line, 1, line, 2)


@pytest.mark.parametrize("sep", ["\f", "\r", "\v", "\x1c", "\u2028", "\x85"])
def test_excerpt_shows_the_line_lark_counted(sep: str) -> None:
    """Lines are counted at \\n only (as the parser counts them), not at every character
    that str.splitlines() treats as a line break."""
    source = f"env scratchpad{sep}# more\nconst X = 1\n"
    d = Diagnostic("t.npi", _span(2), "error", "E001", "m")
    assert d.render(source).splitlines()[1] == "  2 | const X = 1"


def test_form_feed_is_whitespace_and_lines_stay_aligned(tmp_path: Path) -> None:
    p = _write(tmp_path, "env scratchpad\f\ntask t { entry P() }\nprogram P() {\n"
                         "\fMOVE(in5, LEFT)\n}\n")
    report = check_file(p)
    (d,) = report.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("E203", 4, 7)
    assert "MOVE(in5, LEFT)" in d.render(report.sources[str(p)]).splitlines()[1]


def test_a_path_with_odd_characters_is_fine(tmp_path: Path) -> None:
    p = _write(tmp_path, "env scratchpad\n", name='we"ird [name] ü.npi')
    assert _codes(p) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unreadable_file_is_e005(tmp_path: Path) -> None:
    p = _write(tmp_path, "env scratchpad\n")
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as a user who can read anything")
        assert [c for c, _l, _c in _codes(p)] == ["E005"]
    finally:
        p.chmod(0o644)
