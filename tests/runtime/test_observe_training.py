"""A program with `observe` trains through the public API: the encoder and the checkpoint
follow the declared observation, and the executor observes it the same way."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from npi_runtime import api
from npi_runtime import checkpoint as ckpt

REVERSE = Path(__file__).resolve().parents[2] / "programs" / "reverse.npi"
OBSERVED = ["value(p1)", "value(p2)", "at_start(p1)", "at_end(p2)", "same(p1, p2)"]


def test_reverse_with_observe_trains_and_verifies(configs, tmp_path: Path) -> None:
    checked = api.load_program(REVERSE)
    traces = api.compile_traces(checked, lengths=range(1, 7), count=16, seed=3)
    model_config, train_config = configs(epochs=30)
    train_config = replace(train_config, val_lengths=(8, 12), val_count=8)
    result = api.train(checked, traces, tmp_path / "run", model_config=model_config,
                       train_config=train_config)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    vocab = manifest["environments"]["array"]["vocabulary"]
    assert vocab["observe"] == OBSERVED
    assert [s["name"] for s in vocab["observation"]] == OBSERVED
    # the network runs in closed loop on the declared observation, beside the reference
    report = api.verify(result.model, checked, [8], count=4, seed=11)
    (r,) = report.lengths
    if result.summary["stopped"].startswith("validation perfect"):  # what training guarantees
        assert r.result_exact == 1.0 and r.step_accuracy == 1.0, r
    outs = api.run_network(result.model, checked, [[1, 2, 3]])
    assert outs[0]["status"] in {"ok", "step_budget", "depth_budget", "env_error"}


def test_a_checkpoint_refuses_the_program_observed_another_way(configs, tmp_path: Path) -> None:
    checked = api.load_program(REVERSE)
    traces = api.compile_traces(checked, lengths=range(1, 4), count=4, seed=3)
    model_config, train_config = configs(epochs=1)
    api.train(checked, traces, tmp_path / "run", model_config=model_config,
              train_config=replace(train_config, val_lengths=(3,), val_count=2))
    other = tmp_path / "reverse.npi"
    other.write_text(REVERSE.read_text().replace(", same(p1, p2)\n", ", same(p1, p2), "
                                                 "at_end(p1)\n", 1))
    with pytest.raises(ckpt.CheckpointError, match="vocabulary"):
        api.verify(tmp_path / "run", api.load_program(other), [3], count=2)
