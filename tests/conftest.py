"""Shared fixtures: the bundled programs and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"


@pytest.fixture
def programs_dir() -> Path:
    return PROGRAMS
