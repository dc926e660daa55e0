"""Checkpoints: round trip, refusal of mismatched programs, corrupt files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from npi_dsl.trace import ACT
from npi_runtime import api
from npi_runtime import checkpoint as ckpt


def test_round_trip(trained) -> None:
    model, manifest = ckpt.load_model(trained.run_dir)
    saved = trained.model.state_dict()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert manifest["programs"] == [ACT, "copy.COPY", "copy.LEFT1", "copy.STEP"]
    assert manifest["model"]["hidden"] == 64
    assert manifest["environments"]["scratchpad"]["encoder"]["kind"] == "symbol"
    assert manifest["source_hash"].startswith("sha256:")
    assert manifest["training"]["seed"] == 0 and manifest["npi_version"]
    assert (trained.run_dir / "metrics.jsonl").exists()
    # nothing in the run directory is a pickle
    for f in trained.run_dir.rglob("*"):
        if f.is_file():
            assert not f.read_bytes().startswith(b"\x80"), f


def test_refuses_another_environment(trained, programs_dir: Path) -> None:
    with pytest.raises(ckpt.CheckpointError, match="env"):
        api.load_model(trained.run_dir, api.load_program(programs_dir / "sorting.npi"))


def test_refuses_other_programs(trained, copy_file: Path) -> None:
    other = api.load_program(copy_file.parent / "other.npi")
    with pytest.raises(ckpt.CheckpointError, match="copy.LEFT1"):
        api.load_model(trained.run_dir, other)


def test_accepts_a_file_that_adds_programs(trained, copy_file: Path) -> None:
    plus = api.load_program(copy_file.parent / "copy_plus.npi")
    # copy_plus.npi has stem copy_plus: give it the checkpoint's stem to add one program
    d = copy_file.parent / "plus"
    d.mkdir(exist_ok=True)
    (d / "copy.npi").write_text((copy_file.parent / "copy_plus.npi").read_text())
    plus = api.load_program(d / "copy.npi")
    with pytest.warns(UserWarning, match="source hash"):  # another file than it was trained on
        model = api.load_model(trained.run_dir, plus)
    assert model.memory.names[-1] == "copy.RIGHT1"
    assert model.memory.keys.shape[0] == 5


def test_corrupt_weights_are_a_clear_error(trained, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained.run_dir, run)
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte
    weights.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match="corrupt"):
        ckpt.load_model(run)
    weights.write_bytes(bytes(data[:100]))  # truncated, no hash to compare against
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["weights"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ckpt.CheckpointError, match="corrupt"):
        ckpt.load_model(run)
    (run / "manifest.json").write_text("{not json")
    with pytest.raises(ckpt.CheckpointError, match="corrupt"):
        ckpt.load_model(run)


def test_missing_run_dir(tmp_path: Path) -> None:
    with pytest.raises(ckpt.CheckpointError, match="not a run directory"):
        ckpt.load_model(tmp_path / "nope")
