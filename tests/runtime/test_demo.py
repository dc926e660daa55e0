"""`npi demo`: the files it writes, continuing an earlier run, and refusing one it cannot."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from npi_runtime.cli import app
from npi_runtime.demo import run_demo


def _small_demo(out: Path, configs, seed: int = 0):
    model_config, train_config = configs(seed=seed, epochs=1)
    train_config.max_steps = 12
    return run_demo(out, seed=seed, say=lambda m: None, model_config=model_config,
                    train_config=train_config, verify_lengths=(1, 3), verify_count=4)


def test_demo_writes_its_files_and_continues_an_earlier_run(configs, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    report = _small_demo(out, configs)
    for name in ("traces.jsonl.gz", "verify.json", "generalization.png",
                 "model/model.safetensors", "model/manifest.json", "model/metrics.jsonl"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "verify.json").read_text())
    assert saved == report.to_json()
    assert [r["length"] for r in saved["lengths"]] == [1, 3]
    assert all(r["count"] == 4 for r in saved["lengths"])
    assert (out / "generalization.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the model directory is a run npi verify accepts (exit 0 or 1: a verdict, not an error)
    from npi_dsl.bundled import program_path

    res = CliRunner().invoke(app, ["verify", str(out / "model"), str(program_path("addition")),
                                   "--lengths", "2", "--count", "2", "--seed", "5"])
    assert res.exit_code in (0, 1), res.output
    # a second demo on the same directory reuses the finished training and verifies anew
    metrics = (out / "model" / "metrics.jsonl").read_text()
    weights = (out / "model" / "model.safetensors").read_bytes()
    again = _small_demo(out, configs)
    assert (out / "model" / "metrics.jsonl").read_text() == metrics
    assert (out / "model" / "model.safetensors").read_bytes() == weights
    assert again.to_json() == report.to_json()


def test_demo_refuses_a_directory_it_cannot_continue(configs, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    _small_demo(out, configs, seed=0)
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--seed", "1"])
    assert res.exit_code == 2
    assert "seed 0" in res.output and "--out" in res.output
    (out / "model" / "manifest.json").write_text("{not json")
    res = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 2 and "manifest.json" in res.output
    assert "Traceback" not in res.output
