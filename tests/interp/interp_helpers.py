"""Shared helpers for the interpreter tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from npi_dsl.checker import Checked, load
from npi_dsl.envs.base import Environment
from npi_dsl.interpreter import TaskRunner, compile_task

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE.parent.parent / "programs"
TEST_PROGRAMS = HERE / "programs"


@cache
def checked(name: str) -> Checked:
    """A bundled program (`addition`) or a test program (`tests/interp/programs/NAME.npi`)."""
    path = PROGRAMS / f"{name}.npi"
    if not path.exists():
        path = TEST_PROGRAMS / f"{name}.npi"
    return load(path)


@cache
def runner(name: str) -> TaskRunner:
    return compile_task(checked(name))


def write_program(tmp_path: Path, text: str, name: str = "prog") -> Path:
    path = tmp_path / f"{name}.npi"
    path.write_text(text, encoding="utf-8")
    return path


def replay(env: Environment, steps: list[dict[str, Any]]) -> None:
    """Apply a trace's ACT steps to `env`, checking every step's observation on the way."""
    for i, s in enumerate(steps):
        assert list(env.observe()) == s["obs"], f"step {i}: obs differs from observe()"
        if s["call"] == "ACT":
            env.act(*s["call_args"])
