"""Property: whatever the text, checking it ends in diagnostics, never in an exception.

Random and mutated variants of the bundled programs (tokens and characters deleted,
duplicated, swapped, inserted) go through the checker and through `npi check --json`:

* nothing is raised but our diagnostics;
* every diagnostic has a known code, and its line and column lie inside its file;
* every diagnostic renders with its excerpt;
* the exit code is 0 or 1, and 1 exactly when an error was reported.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from npi_dsl.checker import check_file
from npi_dsl.diagnostics import CODES
from npi_runtime.cli import app

PROGRAMS = Path(__file__).resolve().parent.parent.parent / "programs"
SOURCES = {p.name: p.read_text("utf-8") for p in sorted(PROGRAMS.glob("*.npi"))}
TOKEN = re.compile(r'\s+|#[^\n]*|"[^"\n]*"|\w+|==|!=|<=|>=|.', re.S)
VOCABULARY = sorted({t for s in SOURCES.values() for t in TOKEN.findall(s)} | {
    "{", "}", "(", ")", ",", "=", "-", "+", "*", "/", "%", "<", "if", "elif", "else", "let",
    "return", "while", "not", "and", "or", "true", "false", "const", "import", '"max.npi"',
    '"sorting.npi"', '"nope.npi"', "task", "entry", "result", "expect", "program", "env",
    "array", "scratchpad", "\n", " ", "\t", "9", "10", "-1", "x"})

SETTINGS = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """A folder with pristine copies of the bundled programs, so that imports resolve."""
    with tempfile.TemporaryDirectory() as d:
        for name, text in SOURCES.items():
            (Path(d) / name).write_text(text, "utf-8")
        yield Path(d)


def _mutate(text: str, ops: list[tuple[str, int, int, str]]) -> str:
    for kind, i, j, extra in ops:
        if kind.startswith("tok"):
            toks = TOKEN.findall(text)
            if not toks:
                continue
            i, j = i % len(toks), j % len(toks)
            if kind == "tok_delete":
                del toks[i]
            elif kind == "tok_duplicate":
                toks.insert(i, toks[i])
            elif kind == "tok_swap":
                toks[i], toks[j] = toks[j], toks[i]
            else:  # tok_insert
                toks.insert(i, extra)
            text = "".join(toks)
        else:
            if not text:
                continue
            i, j = i % len(text), j % len(text)
            if kind == "chr_delete":
                text = text[:i] + text[i + 1:]
            elif kind == "chr_duplicate":
                text = text[:i] + text[i] + text[i:]
            elif kind == "chr_swap":
                chars = list(text)
                chars[i], chars[j] = chars[j], chars[i]
                text = "".join(chars)
            else:  # chr_insert
                text = text[:i] + extra[:1] + text[i:]
    return text


OPS = st.tuples(
    st.sampled_from(["tok_delete", "tok_duplicate", "tok_swap", "tok_insert", "chr_delete",
                     "chr_duplicate", "chr_swap", "chr_insert"]),
    st.integers(0, 10_000), st.integers(0, 10_000),
    st.one_of(st.sampled_from(VOCABULARY), st.characters(codec="utf-8", exclude_characters="\0")),
)
MUTANTS = st.builds(lambda name, ops: (name, _mutate(SOURCES[name], ops)),
                    st.sampled_from(sorted(SOURCES)), st.lists(OPS, min_size=1, max_size=6))
SOUP = st.lists(st.sampled_from(VOCABULARY), max_size=60).map(lambda ts: ("soup.npi", "".join(ts)))


def _check_properties(workdir: Path, name: str, text: str) -> None:
    path = workdir / f"mutant_{name}"
    path.write_text(text, "utf-8")
    report = check_file(path)  # raises nothing
    files = {str(path): text, **report.sources}
    for d in report.diagnostics:
        assert d.code in CODES, d
        assert d.severity in ("error", "warning"), d
        source = files.get(d.path)
        if source is None:  # an unreadable import: reported at 1:1
            assert (d.span.line, d.span.column) == (1, 1), d
            continue
        lines = source.split("\n")
        assert 1 <= d.span.line <= len(lines), (d, text)
        assert 1 <= d.span.column <= len(lines[d.span.line - 1]) + 1, (d, text)
        assert 1 <= d.span.end_line <= len(lines), (d, text)
        rendered = d.render(source)
        assert rendered.startswith(f"{d.path}:{d.span.line}:{d.span.column}: {d.severity}[")

    result = CliRunner().invoke(app, ["check", "--json", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1), result.output
    listed = json.loads(result.stdout)
    assert (result.exit_code == 1) == any(d["severity"] == "error" for d in listed)
    assert len(listed) == len(report.diagnostics)


@SETTINGS
@given(case=MUTANTS)
def test_mutated_programs_only_ever_produce_diagnostics(workdir: Path, case) -> None:
    _check_properties(workdir, *case)


@settings(SETTINGS, max_examples=100)
@given(case=SOUP)
def test_random_token_soup_only_ever_produces_diagnostics(workdir: Path, case) -> None:
    _check_properties(workdir, *case)


def test_unmutated_programs_pass(workdir: Path) -> None:
    for name, text in SOURCES.items():
        path = workdir / f"copy_{name}"
        path.write_text(text, "utf-8")
        assert check_file(path).diagnostics == []
