"""`api.compile_traces(cover=True)` gives exactly what `npi compile --cover` writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npi_dsl.bundled import program_path
from npi_dsl.trace import read_traces
from npi_runtime import api
from npi_runtime.cli import app


@pytest.mark.parametrize("score", ["count", "rarity"])
def test_api_cover_matches_the_cli(tmp_path: Path, score: str) -> None:
    path = program_path("addition_recursive")
    out = tmp_path / "cli.jsonl"
    res = CliRunner().invoke(app, ["compile", str(path), "-l", "2..3", "-n", "4", "-s", "9",
                                   "--cover", "--pool", "8", "--cover-programs", "ADD1",
                                   "--cover-score", score, "-o", str(out)])
    assert res.exit_code == 0, res.output
    checked = api.load_program(path)
    records = api.compile_traces(checked, lengths=range(2, 4), count=4, seed=9, cover=True,
                                 pool=8, cover_programs=["ADD1"], cover_score=score,
                                 path=tmp_path / "api.jsonl")
    from_cli = list(read_traces(out))
    assert [r["seed"] for r in records] == [r["seed"] for r in from_cli]
    assert json.dumps(records) == json.dumps(from_cli)
    assert (tmp_path / "api.jsonl").read_bytes() == out.read_bytes()
    plain = api.compile_traces(checked, lengths=range(2, 4), count=4, seed=9)
    assert [r["seed"] for r in plain] != [r["seed"] for r in records]


def test_api_cover_refuses_unknown_programs_and_stray_options() -> None:
    checked = api.load_program(program_path("addition_recursive"))
    with pytest.raises(ValueError, match="NOPE"):
        api.compile_traces(checked, lengths=[2], count=2, cover=True, cover_programs=["NOPE"])
    with pytest.raises(ValueError, match="cover=True"):
        api.compile_traces(checked, lengths=[2], count=2, pool=4)
