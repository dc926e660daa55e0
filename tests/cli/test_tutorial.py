"""docs/tutorial.md stays true: its first program is rejected by the lint for `length()`,
its fixed program is lint-clean and is the bundled programs/reverse.npi."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from npi_runtime.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "tutorial.md"


def _programs() -> list[str]:
    blocks = re.findall(r"```\n(env array\n.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 2, "the tutorial shows two versions of reverse.npi"
    return blocks


def test_the_first_version_is_not_learnable_because_of_length(tmp_path: Path) -> None:
    path = tmp_path / "reverse.npi"
    path.write_text(_programs()[0])
    result = CliRunner().invoke(app, ["lint", str(path)])
    assert result.exit_code == 1, result.output
    assert "decided by what the network does not observe: length()" in result.output


def test_the_fixed_version_is_clean_and_bundled(tmp_path: Path) -> None:
    fixed = _programs()[1]
    path = tmp_path / "reverse.npi"
    path.write_text(fixed)
    result = CliRunner().invoke(app, ["lint", str(path)])
    assert result.exit_code == 0, result.output
    bundled = (ROOT / "programs" / "reverse.npi").read_text()
    assert bundled.endswith(fixed)
