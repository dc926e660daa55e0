"""`npi reproduce table1`, on a plan small enough for the suite: every row is computed, the
paper's numbers stand beside ours, MAX leaves the earlier tasks as they were, and a second
run reuses every finished step."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npi_runtime.cli import app
from npi_runtime.reproduce import PAPER, QUICK, Reproduction, Traces

MICRO = replace(
    QUICK, name="micro",
    traces={"addition": Traces((1, 3), 4, 11), "sorting": Traces((2, 3), 4, 7),
            "canonicalize": Traces((1, 2), 4, 1), "max": Traces((2, 3), 2, 5)},
    hidden=16, train={"max_epochs": 2, "val_count": 1, "val_lengths": (3,),
                      "warmup_steps": 5},
    paper_settings={"addition": ((4,), 2), "sorting": ((4,), 2), "canonicalize": ((), 1),
                    "max": ((3, 5), 1)},
    generalisation={"addition": ((8,), 1), "sorting": ((6,), 1)}, minutes=1.0)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("table1")
    return out, Reproduction(out, MICRO, say=lambda m: None).run()


def test_every_row_of_table1(table: tuple[Path, dict]) -> None:
    out, result = table
    rows = {(r["network"], r["task"], r["setting"]): r for r in result["rows"]}
    for network in ("single", "one"):
        assert rows[(network, "addition", "length 4")]["paper"] == PAPER[network]["addition"]
        assert rows[(network, "sorting", "length 4")]["paper"] == PAPER[network]["sorting"]
        for group in ("seen", "unseen"):
            row = rows[(network, "canonicalize", f"{group} cars, every start pose")]
            assert row["paper"] == PAPER[network][group]
            assert row["inputs"] == 55  # every start pose of one car
        assert rows[(network, "addition", "length 8")]["paper"] is None  # generalisation
        assert rows[(network, "sorting", "length 6")]["inputs"] == 1
    assert rows[("max", "max", "length 3")]["paper"] == PAPER["max"]
    assert ("max", "max", "length 5") in rows
    assert all(0.0 <= r["ours"] <= 100.0 for r in result["rows"])
    after = result["after_max"]
    assert after["other_weights_bit_identical"]
    assert after["reports_identical"] == {"addition": True, "sorting": True,
                                          "canonicalize": True}
    assert json.loads((out / "table1.json").read_text())["rows"] == result["rows"]
    md = (out / "table1.md").read_text()
    assert "| one network, all tasks | sorting | length 4 | 2 | 100.0 |" in md
    assert "earlier reports addition identical" in md


def test_a_second_run_reuses_what_is_finished(table: tuple[Path, dict]) -> None:
    out, result = table
    said: list[str] = []
    again = Reproduction(out, MICRO, say=said.append).run()
    assert again["rows"] == result["rows"]
    assert any("reusing the finished one network" in m for m in said)
    assert not any(m.startswith(("compiled", "verified", "training")) for m in said)


def test_the_command_is_there() -> None:
    res = CliRunner().invoke(app, ["reproduce", "table1", "--help"])
    assert res.exit_code == 0 and "--quick" in res.output
    res = CliRunner().invoke(app, ["reproduce", "table2"])
    assert res.exit_code == 2
