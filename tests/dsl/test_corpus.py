"""The compliance corpus, in the manner of jmespath's: one test runs every case.

* `ok/*.npi` must check clean, warnings included (what `npi check --strict` demands).
* `err/*.npi` state their expected diagnostics in comments, one line each:

      # expect: CODE LINE:COL [PATH]

  PATH (relative to the case file) is given only when the diagnostic belongs to another
  file, e.g. an imported one. The checker must report exactly that set of
  (path, code, line, column), nothing more and nothing less.

Helper files that cases import live in `lib/` subfolders, which the runner does not treat as
cases. Comments are read from the raw bytes, so cases that are not valid UTF-8 work too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from npi_dsl.checker import check_file
from npi_dsl.diagnostics import CODES

HERE = Path(__file__).parent
OK = sorted((HERE / "ok").glob("*.npi"))
OK_LIBS = sorted((HERE / "ok").glob("lib/*.npi"))
ERR = sorted((HERE / "err").glob("*.npi"))

EXPECT = re.compile(rb"^#\s*expect:\s*([EW]\d{3})\s+(\d+):(\d+)(?:\s+(\S+))?\s*$", re.M)

Key = tuple[str, str, int, int]  # (path, code, line, column)


def expected(case: Path) -> set[Key]:
    found = set()
    for m in EXPECT.finditer(case.read_bytes()):
        code, line, col, rel = m.groups()
        path = str(case.parent / rel.decode()) if rel else str(case)
        found.add((path, code.decode(), int(line), int(col)))
    return found


def actual(case: Path) -> set[Key]:
    report = check_file(str(case))
    return {(str(Path(d.path)), d.code, d.span.line, d.span.column)
            for d in report.diagnostics}


def _norm(keys: set[Key]) -> set[Key]:
    """Compare paths resolved, so `lib/../x.npi` and `x.npi` are the same file."""
    return {(str(Path(p).resolve()), c, ln, col) for p, c, ln, col in keys}


@pytest.mark.parametrize("case", OK + OK_LIBS, ids=lambda p: p.relative_to(HERE).as_posix())
def test_ok_case_checks_clean(case: Path) -> None:
    report = check_file(str(case))
    rendered = "\n".join(d.render(report.sources.get(d.path)) for d in report.diagnostics)
    assert report.diagnostics == [], rendered
    assert report.checked is not None


@pytest.mark.parametrize("case", ERR, ids=lambda p: p.name)
def test_err_case_reports_exactly_the_expected_diagnostics(case: Path) -> None:
    want = expected(case)
    assert want, f"{case.name} states no `# expect:` line"
    got = actual(case)
    assert _norm(got) == _norm(want), (
        f"\nmissing:    {sorted(_norm(want) - _norm(got))}"
        f"\nunexpected: {sorted(_norm(got) - _norm(want))}")


def test_corpus_is_large_enough_and_covers_every_code() -> None:
    assert len(ERR) >= 40
    assert len(OK) >= 15
    covered = {code for case in ERR for _p, code, _l, _c in expected(case)}
    wanted = {c for c in CODES if c[0] in "EW"}
    assert wanted - covered == set(), f"codes without an err case: {sorted(wanted - covered)}"
    # and no case expects a code that does not exist
    assert covered - set(CODES) == set()


def test_case_names_start_with_their_main_code() -> None:
    """`e203_...npi` expects at least one E203: keeps the corpus navigable by code."""
    for case in ERR:
        m = re.match(r"([ew]\d{3})_", case.name)
        if m:
            codes = {code for _p, code, _l, _c in expected(case)}
            assert m.group(1).upper() in codes, case.name


def test_an_elif_condition_is_called_elif() -> None:
    (d,) = check_file(str(HERE / "err" / "e404_elif_integer.npi")).diagnostics
    assert d.message == "the condition of `elif` is an integer, not a boolean"


def test_a_constant_divided_by_zero_says_so() -> None:
    (d,) = check_file(str(HERE / "err" / "e406_const_division_by_zero.npi")).diagnostics
    assert "division by zero" in (d.hint or "")
