"""Hints for common slips from other languages (issue 9 item 6), through `npi check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from npi_runtime.cli import app

ERR = Path(__file__).parent / "err"


@pytest.mark.parametrize(("case", "hint"), [
    ("e001_assign_in_condition.npi", "did you mean `==`?"),
    ("e001_slash_comment.npi", "comments start with `#`"),
    ("e001_for_loop.npi", "npi has no `for` loop: count with `while`"),
    ("e203_capital_true.npi", "booleans are lowercase: write `true`"),
    ("e002_missing_brace_mid_file.npi", "never closed before `program` at line 9"),
])
def test_slip_gets_its_hint(case: str, hint: str) -> None:
    r = CliRunner().invoke(app, ["check", str(ERR / case)])
    assert r.exit_code == 1
    assert hint in " ".join(r.output.split())
