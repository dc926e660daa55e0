"""docs/language.md stays true: every code documented, its examples check as it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from npi_dsl.checker import check_file
from npi_dsl.diagnostics import CODES

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = (ROOT / "docs" / "language.md").read_text("utf-8")


def test_every_checker_code_has_a_row() -> None:
    for code in CODES:
        if code[0] in "EW":
            assert re.search(rf"^\| {code} \|", DOC, re.M), f"{code} is not documented"


def test_runtime_codes_point_to_tasks_md() -> None:
    assert "(tasks.md#runtime-errors)" in DOC
    assert "## Runtime errors" in (ROOT / "docs" / "tasks.md").read_text("utf-8")


def test_the_opening_example_is_the_bundled_addition() -> None:
    first = DOC.split("```\n", 2)[1]
    assert first == (ROOT / "programs" / "addition.npi").read_text("utf-8")


def _programs() -> list[str]:
    """The doc's fenced blocks that are whole files: an env, a task and programs."""
    blocks = re.findall(r"^```\n(.*?)^```", DOC, re.M | re.S)
    return [b for b in blocks if re.match(r"(#[^\n]*\n)*env ", b) and "\ntask " in b
            and "\nprogram " in b]


@pytest.mark.parametrize("text", _programs())
def test_whole_file_examples_check_clean(tmp_path: Path, text: str) -> None:
    p = tmp_path / "example.npi"
    p.write_text(text, "utf-8")
    report = check_file(p)
    assert report.diagnostics == []


def test_the_diagnostic_example_is_verbatim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    block = DOC.split("printed on stderr:\n\n```\n", 1)[1].split("```", 1)[0]
    path = "tests/dsl/err/e203_unknown_name.npi"
    report = check_file(path)
    (d,) = report.diagnostics
    assert d.render(report.sources[path]) + "\n" == block
