"""The generated parser tables (npi_dsl/grammar_tables.json): up to date with grammar.lark,
independent of string hashing, loaded losslessly, and parsing exactly as the parser built
from the grammar does: the same ASTs, the same syntax diagnostics."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lark import Lark

from npi_dsl import parser, parser_tables
from npi_dsl.diagnostics import DiagnosticError
from npi_dsl.transform import ToAst

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SOURCES = sorted((ROOT / "programs").glob("*.npi")) + sorted(HERE.glob("*/**/*.npi"))


@pytest.fixture(scope="module")
def built() -> Lark:
    """The parser built from grammar.lark, as npi_dsl.parser would without the tables."""
    return parser_tables.build(ToAst())


def test_grammar_tables_are_up_to_date() -> None:
    current = parser_tables.DATA_FILE.read_text("utf-8")
    assert current == parser_tables.render(), (
        f"{parser_tables.DATA_FILE.name} is out of date with grammar.lark: run "
        f"`{parser_tables.REGENERATE}` and commit the file")


def test_the_tables_do_not_depend_on_string_hashing() -> None:
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    r = subprocess.run([sys.executable, "-m", "npi_dsl.parser_tables", "--check"],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_the_stored_tables_load_losslessly() -> None:
    """JSON has no integer keys or tuples: what is loaded is exactly lark's serialization."""
    assert parser_tables.stored() == parser_tables.serialized()


def test_the_parser_is_loaded_from_the_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_build(*_args: object) -> Lark:
        raise AssertionError("the parser was built from the grammar")

    monkeypatch.setattr(parser_tables, "build", no_build)
    assert isinstance(parser_tables.load(ToAst()), Lark)


def test_stale_tables_fall_back_to_the_grammar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parser_tables, "grammar_sha256", lambda text=None: "edited")
    assert parser_tables.stored() is None
    calls = []
    monkeypatch.setattr(parser_tables, "build", lambda t=None: calls.append(t) or "built")
    assert parser_tables.load(None) == "built" and calls == [None]


def _texts() -> Iterator[tuple[str, str]]:
    """Every corpus and bundled program, and prefixes of a few (mostly syntax errors)."""
    for path in SOURCES:
        try:
            text = parser.read_source(path)
        except DiagnosticError:
            continue  # binary, not UTF-8: never reaches the parser
        yield path.relative_to(ROOT).as_posix(), text
    for name in ("addition.npi", "sorting.npi", "max.npi"):
        text = (ROOT / "programs" / name).read_text("utf-8")
        for cut in range(0, len(text), max(1, len(text) // 40)):
            yield f"{name}[:{cut}]", text[:cut]


def _outcome(text: str, name: str) -> object:
    try:
        return parser.parse_text(text, name)
    except DiagnosticError as e:
        return [d.render(text) for d in e.diagnostics]


def test_loaded_and_built_parsers_agree(built: Lark, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = parser_tables.load(ToAst())
    cases = list(_texts())
    assert len(cases) > 150
    with_tables = []
    for name, text in cases:
        monkeypatch.setattr(parser, "_parser", lambda: loaded)
        with_tables.append(_outcome(text, name))
    for (name, text), expected in zip(cases, with_tables, strict=True):
        monkeypatch.setattr(parser, "_parser", lambda: built)
        assert _outcome(text, name) == expected, name
    errors = sum(isinstance(o, list) for o in with_tables)
    assert 40 < errors < len(cases) - 40  # both ASTs and syntax errors were compared

