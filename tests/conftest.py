"""Shared fixtures: the bundled programs and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"


#: fixtures that train a network: a test that uses one is marked `trains`
TRAINING_FIXTURES = frozenset({"trained", "configs"})


@pytest.fixture
def programs_dir() -> Path:
    return PROGRAMS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that trains (through a training fixture) as `trains`.

    Learned outcomes depend on floating-point arithmetic, which differs between CPUs and
    torch's kernels (`ATEN_CPU_CAPABILITY=default|avx2|avx512`) and thread counts, so such a
    test may assert only what training guarantees (docs/training.md, "Determinism"); .ci/run
    runs the marked tests a second time under other kernels and threads to catch one that
    asserts a golden outcome.
    """
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.trains)
