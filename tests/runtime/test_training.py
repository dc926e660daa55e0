"""Real learning, determinism, and resume after an interruption."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from npi_runtime import api
from npi_runtime import checkpoint as ckpt


def test_tiny_model_learns_copy_to_exact_match(trained, copy_file: Path,
                                               val_lengths: tuple[int, ...]) -> None:
    """What training guarantees on any CPU: it stops only once validation is perfect, and a
    network perfect on 16 inputs of each validation length copies fresh inputs of those
    lengths exactly. No golden float outcome: nothing beyond the validated lengths."""
    assert trained.summary["stopped"].startswith("validation perfect"), trained.summary
    checked = api.load_program(copy_file)
    report = api.verify(trained.model, checked, list(val_lengths), count=8, seed=123)
    for r in report.lengths:
        assert r.result_exact == 1.0 and r.trace_exact == 1.0 and r.step_accuracy == 1.0, r
    outs = api.run_network(trained.model, checked, [["908172635412", "1"]])
    assert outs[0]["result"] == "908172635412" and outs[0]["status"] == "ok"


def _train(configs, copy_file: Path, traces: list[dict], run_dir: Path, epochs: int, **kw):
    model_config, train_config = configs(epochs=epochs)
    # patience 99: run every epoch, the comparisons need the same length
    train_config = replace(train_config, **kw, patience=99)
    return api.train(api.load_program(copy_file), traces, run_dir, model_config=model_config,
                     train_config=train_config)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    model, _ = ckpt.load_model(run_dir)
    return model.state_dict()


def test_same_seed_same_weights(configs, copy_file: Path, copy_traces: list[dict],
                                tmp_path: Path) -> None:
    _train(configs, copy_file, copy_traces, tmp_path / "a", epochs=2)
    _train(configs, copy_file, copy_traces, tmp_path / "b", epochs=2)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    _train(configs, copy_file, copy_traces, tmp_path / "c", epochs=2, seed=1)
    c = _weights(tmp_path / "c")
    assert not all(torch.equal(a[k], c[k]) for k in a)


class _Interrupt(Exception):
    pass


def test_resume_continues_where_it_stopped(configs, copy_file: Path, copy_traces: list[dict],
                                           tmp_path: Path) -> None:
    """Kill training mid-epoch (after a checkpoint), resume, and end with the weights of an
    uninterrupted run: step count, data order, optimizer state and loss history carry on."""
    full = _train(configs, copy_file, copy_traces, tmp_path / "full", epochs=3)
    checked = api.load_program(copy_file)
    model_config, train_config = configs(epochs=3)
    train_config.patience = 99
    train_config.checkpoint_seconds = 0.0  # a checkpoint after every batch
    seen = []

    def stop(kind: str, data: dict) -> None:
        if kind == "batch":
            seen.append(data)
            if data["epoch"] == 1 and data["batch"] == 5:
                raise _Interrupt

    run = tmp_path / "run"
    with pytest.raises(_Interrupt):
        api.train(checked, copy_traces, run, model_config=model_config,
                  train_config=train_config, on_event=stop)
    state = ckpt.load_resume(run).state
    assert state["epoch"] == 1 and state["batch_in_epoch"] == 4  # the last checkpoint
    metrics_before = (run / "metrics.jsonl").read_text().splitlines()
    assert len(metrics_before) == 1  # epoch 1 was validated and logged
    resumed = api.train(checked, copy_traces, run, resume=True)
    assert resumed.summary["step"] == full.summary["step"]
    assert resumed.summary["epochs"] == 3
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and lines[0] == metrics_before[0]
    a, b = _weights(tmp_path / "full"), _weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)
    full_lines = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    import json

    losses = [json.loads(x)["train"]["loss"] for x in lines]
    full_losses = [json.loads(x)["train"]["loss"] for x in full_lines]
    assert losses == pytest.approx(full_losses, rel=1e-6)


def test_validation_inside_long_epochs_and_resume(configs, copy_file: Path,
                                                  copy_traces: list[dict], tmp_path: Path) -> None:
    """`eval_steps` validates inside an epoch (a fractional `epoch` in metrics.jsonl); a run
    killed after such a validation resumes to the weights and metrics of an unbroken run."""
    import json

    full = _train(configs, copy_file, copy_traces, tmp_path / "full", epochs=2, eval_steps=4)
    records = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text()
               .splitlines()]
    inside = [r for r in records if isinstance(r["epoch"], float)]
    assert inside and all(r["step"] % 4 == 0 for r in inside)
    assert [r["epoch"] for r in records] == sorted(r["epoch"] for r in records)
    assert records[-1]["epoch"] == 2 and records[-1]["step"] == full.summary["step"]

    checked = api.load_program(copy_file)
    model_config, train_config = configs(epochs=2)
    train_config.patience = 99
    train_config.eval_steps = 4

    def stop(kind: str, data: dict) -> None:
        if kind == "batch" and data["epoch"] == 1 and data["batch"] == 6:
            raise _Interrupt

    run = tmp_path / "run"
    with pytest.raises(_Interrupt):
        api.train(checked, copy_traces, run, model_config=model_config,
                  train_config=train_config, on_event=stop)
    api.train(checked, copy_traces, run, resume=True)

    def untimed(path: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(x).items() if k != "seconds"}
                for x in path.read_text().splitlines()]

    assert untimed(run / "metrics.jsonl") == untimed(tmp_path / "full" / "metrics.jsonl")
    a, b = _weights(tmp_path / "full"), _weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)
