"""The exit codes of docs/cli.md, a representative case for each command: 0 ok, 1 the check
ran and found failures, 2 bad input (usage, unreadable, corrupt or mismatched files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from inputs_helpers import (
    ADDITION,
    WRONG,
    corrupt_files,
    good_records,
    mismatched_file,
    write_records,
)
from typer.testing import CliRunner

from npi_runtime.cli import app

BROKEN = "env scratchpad\n\nprogram P() {\n    NOPE()\n}\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "wrong.npi").write_text(WRONG)
    (tmp_path / "broken.npi").write_text(BROKEN)
    corrupt = corrupt_files(tmp_path)
    return {
        "wrong": str(tmp_path / "wrong.npi"),
        "broken": str(tmp_path / "broken.npi"),
        "missing": str(tmp_path / "missing.npi"),
        "traces": str(write_records(tmp_path / "good.jsonl", good_records())),
        "corrupt": str(corrupt["deep"][0]),
        "mismatched": str(mismatched_file(tmp_path, "blank")),
        "tmp": str(tmp_path),
    }


CASES = [
    ("check", ["check", ADDITION], 0),
    ("check", ["check", "{broken}"], 1),
    ("check", ["check", "{missing}"], 2),
    ("check", ["check", "--no-such-option", ADDITION], 2),
    ("graph", ["graph", ADDITION], 0),
    ("graph", ["graph", "{broken}"], 1),
    ("graph", ["graph", ADDITION, "--format", "svg"], 2),
    ("run", ["run", ADDITION, "-i", '["96", "125"]'], 0),
    ("run", ["run", "{wrong}", "-i", '["96", "125"]'], 1),
    ("run", ["run", ADDITION, "-i", "[96"], 2),
    ("run", ["run", ADDITION, "-i", "@{missing}"], 2),
    ("compile", ["compile", ADDITION, "-l", "1..2", "-o", "{tmp}/t.jsonl"], 0),
    ("compile", ["compile", "{wrong}", "-l", "1..3", "-n", "4", "-o", "{tmp}/w.jsonl"], 1),
    ("compile", ["compile", ADDITION, "-l", "x"], 2),
    ("compile", ["compile", ADDITION, "-l", "1", "-o", "{tmp}/no/t.jsonl"], 2),
    ("train", ["train", "{broken}", "{traces}", "-o", "{tmp}/r1"], 1),
    ("train", ["train", ADDITION, "{corrupt}", "-o", "{tmp}/r2"], 2),
    ("train", ["train", ADDITION, "{mismatched}", "-o", "{tmp}/r3"], 2),
    ("train", ["train", ADDITION, "{traces}"], 2),
    ("verify", ["verify", "{tmp}", ADDITION, "--outputs", "{tmp}/no/o.jsonl"], 2),
    ("verify", ["verify", "{tmp}", ADDITION, "--lengths", "x"], 2),
    ("demo", ["demo", "--seed", "-1"], 2),
]


@pytest.mark.parametrize(("command", "args", "code"), CASES,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_exit_code(files: dict[str, str], command: str, args: list[str], code: int) -> None:
    r = CliRunner().invoke(app, [a.format(**files) for a in args])
    assert r.exit_code == code, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception


@pytest.mark.trains
def test_train_and_verify_exit_codes(files: dict[str, str]) -> None:
    """0 for a finished training; verify 0 at --require 0 and 1 for an untrained network."""
    run = f"{files['tmp']}/run"
    r = CliRunner().invoke(app, ["train", ADDITION, files["traces"], "-o", run,
                                 "--epochs", "1", "--hidden", "8", "--val-count", "1",
                                 "--val-lengths", "2"])
    assert r.exit_code == 0, r.output
    base = ["verify", run, ADDITION, "--lengths", "6", "--count", "2"]
    r = CliRunner().invoke(app, [*base, "--require", "0"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, base)
    assert r.exit_code == 1, r.output
