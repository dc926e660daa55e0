"""The checkpoint commit protocol under fault injection: training is killed at every file
operation of the first, a middle and the last checkpoint, then continued the way a user
would (`--resume`, or `-o` again when nothing was committed); the run must end with the
weights of an uninterrupted one, byte for byte, no temporary files, each step once in
metrics.jsonl."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from npi_runtime import api
from npi_runtime import checkpoint as ckpt
from npi_runtime.model import NPIConfig

EPOCHS = 3  # one checkpoint per epoch: the first, a middle and the last


class _Kill(BaseException):
    """A simulated kill: a BaseException, so no `except Exception` cleanup runs."""


@pytest.fixture(scope="module")
def setup(copy_file: Path, configs):
    checked = api.load_program(copy_file)
    traces = api.compile_traces(checked, lengths=range(1, 4), count=6, seed=3)
    model_config = NPIConfig(hidden=16, core_hidden=16, program_dim=16, head_hidden=16,
                             state_dim=16, encoder_hidden=16, key_dim=4)
    _, train_config = configs(epochs=EPOCHS)
    train_config.patience = 99
    train_config.val_lengths = (4,)
    train_config.val_count = 2
    return checked, traces, model_config, train_config


def _train(setup, run: Path, resume: bool = False):
    checked, traces, model_config, train_config = setup
    return api.train(checked, traces, run, model_config=model_config,
                     train_config=train_config, resume=resume)


def _steps(run: Path) -> list[int]:
    return [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def _leftovers(run: Path) -> list[str]:
    """Anything uncommitted: temporary names, checkpoints `current` does not name."""
    bad = [str(p) for p in run.rglob("*") if p.name.endswith(".tmp")]
    cdir = run / ckpt.CHECKPOINTS_DIR
    current = os.readlink(cdir / ckpt.CURRENT)
    bad += [p.name for p in cdir.iterdir() if p.name not in (ckpt.CURRENT, current)]
    return bad


@pytest.fixture(scope="module")
def reference(setup, tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted run and the labels of its file operations, per checkpoint."""
    run = tmp_path_factory.mktemp("full") / "run"
    ops: list[str] = []
    ckpt.FAULT_HOOK = ops.append
    try:
        _train(setup, run)
    finally:
        ckpt.FAULT_HOOK = None
    return run, ops


def _kill_points(ops: list[str]) -> dict[int, list[int]]:
    """The indices of the operations of each checkpoint: from the validation's metrics line
    that precedes it to the last operation before the next one."""
    starts = [i for i, op in enumerate(ops) if op == "append metrics.jsonl"]
    assert len(starts) == EPOCHS
    ends = [*starts[1:], len(ops)]
    return {n + 1: list(range(a, b)) for n, (a, b) in enumerate(zip(starts, ends, strict=True))}


def test_reference_run_layout(reference) -> None:
    run, ops = reference
    assert (run / "model.safetensors").is_symlink() and (run / "manifest.json").is_symlink()
    assert os.readlink(run / ckpt.CHECKPOINTS_DIR / ckpt.CURRENT) == f"ckpt-{EPOCHS:06d}"
    assert _leftovers(run) == []
    points = _kill_points(ops)
    # every file operation of a checkpoint is a kill point: mkdir, 5 files written and
    # fsynced, the directory fsynced and renamed, the link made and committed, the pruning
    assert all(len(p) >= 18 for p in points.values()), points
    manifest = json.loads((run / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.safetensors", "optim.safetensors",
                                      "extra.safetensors", "state.json"}


@pytest.mark.parametrize("which", [1, 2, EPOCHS], ids=["first", "middle", "last"])
def test_killed_at_every_file_operation(setup, reference, which: int, tmp_path: Path) -> None:
    full, ops = reference
    want = (full / "model.safetensors").read_bytes()
    want_steps = _steps(full)
    points = _kill_points(ops)[which]
    for k in points:
        run = tmp_path / f"kill-{k}"
        seen = 0

        def kill(label: str, k: int = k) -> None:
            nonlocal seen
            if seen == k:
                raise _Kill(label)
            seen += 1

        ckpt.FAULT_HOOK = kill
        try:
            with pytest.raises(_Kill):
                _train(setup, run)
        finally:
            ckpt.FAULT_HOOK = None
        label = ops[k]
        if ckpt.holds_run(run):
            _train(setup, run, resume=True)
        else:  # killed before the first commit: --resume says so, -o starts it again
            with pytest.raises(ckpt.CheckpointError, match="no committed checkpoint|-o"):
                _train(setup, run, resume=True)
            _train(setup, run)
        assert (run / "model.safetensors").read_bytes() == want, (k, label)
        assert _steps(run) == want_steps, (k, label)
        assert _leftovers(run) == [], (k, label)
        model, _ = ckpt.load_model(run)  # what npi verify reads
    assert len(points) >= 18


def test_a_second_writer_is_refused(setup, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ckpt.run_lock(run), pytest.raises(ckpt.CheckpointError, match="another npi train"):
        _train(setup, run)
    assert not ckpt.holds_run(run)
    _train(setup, run)  # the lock is released with its holder
    with pytest.raises(ckpt.CheckpointError, match="already holds a run"):
        _train(setup, run)


def test_leftovers_of_a_kill_are_removed(setup, reference, tmp_path: Path) -> None:
    """Temporary files of earlier kills anywhere in the run directory go on the next run."""
    run = tmp_path / "run"
    _train(setup, run)
    stray = [run / ".metrics.jsonl.123.0123abcd.tmp",
             run / ckpt.CHECKPOINTS_DIR / ".ckpt-000009.123.0123abcd.tmp",
             run / ckpt.CHECKPOINTS_DIR / "ckpt-000009"]
    stray[0].write_text("x")
    stray[1].mkdir()
    stray[2].mkdir()
    mine = run / ckpt.CHECKPOINTS_DIR / "notes.txt"  # not a name npi writes: kept
    mine.write_text("mine")
    _train(setup, run, resume=True)
    assert not any(p.exists() for p in stray)
    assert mine.read_text() == "mine"
    assert (run / "model.safetensors").read_bytes() == \
        (reference[0] / "model.safetensors").read_bytes()
