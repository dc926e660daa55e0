"""`npi verify` finds where a damaged network departs from its reference; the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from npi_runtime import api
from npi_runtime.cli import app

runner = CliRunner()


def _damage(model) -> None:
    """Bias the third argument head towards 7: the first call (COPY calls STEP with
    [0, 0, 0]) now goes out as STEP[0, 0, 7]."""
    c = model.config
    with torch.no_grad():
        model.heads[2].bias[1 + c.key_dim + 2 * c.arg_range + 7] += 100.0


def test_verify_reports_the_first_divergence(trained, copy_file: Path) -> None:
    checked = api.load_program(copy_file)
    model = copy.deepcopy(trained.model)
    _damage(model)
    report = api.verify(model, checked, [5], count=4, seed=9)
    (r,) = report.lengths
    assert r.trace_exact == 0.0 and r.step_accuracy < 1.0
    assert len(r.failures) == 4
    d = r.failures[0]["divergence"]
    assert d["step"] == 0 and d["stack"] == ["COPY"]
    assert d["expected"]["call"] == "STEP" and d["expected"]["call_args"] == [0, 0, 0]
    assert d["chosen"]["call"] == "STEP" and d["chosen"]["call_args"] == [0, 0, 7]
    assert d["chosen"]["p_args"][2] > 0.99 and d["expected"]["p_args"][2] < 0.01
    assert r.failures[0]["expected"] == r.failures[0]["input"][0]


def test_cli_verify_json_and_exit_codes(trained, copy_file: Path, tmp_path: Path,
                                        val_lengths: tuple[int, ...]) -> None:
    lengths = ",".join(map(str, val_lengths))  # where training guarantees exact results
    res = runner.invoke(app, ["verify", str(trained.run_dir), str(copy_file), "--lengths",
                              lengths, "--count", "4", "--json", "--outputs",
                              str(tmp_path / "o.jsonl"), "--plot", str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["task"] == "copy"
    assert [x["length"] for x in data["lengths"]] == list(val_lengths)
    for x in data["lengths"]:
        assert set(x) == {"length", "count", "result_exact", "trace_exact", "step_accuracy",
                          "failures"}
        assert x["result_exact"] == 1.0
    lines = (tmp_path / "o.jsonl").read_text().splitlines()
    assert len(lines) == 8 and json.loads(lines[0])["correct"] is True
    assert (tmp_path / "p.png").read_bytes().startswith(b"\x89PNG")


def test_cli_verify_fails_on_a_damaged_model(trained, copy_file: Path, tmp_path: Path) -> None:
    model = copy.deepcopy(trained.model)
    _damage(model)
    from npi_runtime import checkpoint as ckpt

    manifest = json.loads((trained.run_dir / "manifest.json").read_text())
    ckpt.save_model(tmp_path / "bad", model, manifest)
    res = runner.invoke(app, ["verify", str(tmp_path / "bad"), str(copy_file), "--lengths",
                              "4", "--count", "2", "--require", "0.0", "--json"])
    assert res.exit_code == 0  # --require 0 accepts anything
    res = runner.invoke(app, ["verify", str(tmp_path / "bad"), str(copy_file), "--lengths",
                              "4", "--count", "2"])
    assert res.exit_code in (0, 1)  # the result may still come out right by chance
    out = json.loads(runner.invoke(app, ["verify", str(tmp_path / "bad"), str(copy_file),
                                         "-l", "4", "-n", "2", "--json",
                                         "--require", "0"]).stdout)
    assert out["lengths"][0]["trace_exact"] == 0.0


def test_cli_errors_are_messages_not_tracebacks(trained, copy_file: Path, programs_dir: Path,
                                                tmp_path: Path) -> None:
    res = runner.invoke(app, ["verify", str(trained.run_dir), str(programs_dir / "sorting.npi")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "env" in res.output
    res = runner.invoke(app, ["verify", str(trained.run_dir), str(copy_file), "--lengths", "x"])
    assert res.exit_code == 2
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{")
    res = runner.invoke(app, ["verify", str(bad), str(copy_file)])
    assert res.exit_code == 2 and "corrupt" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["train", str(copy_file), str(tmp_path / "missing.jsonl")])
    assert res.exit_code == 2
    traces = tmp_path / "t.jsonl"
    traces.write_text("not json\n")
    res = runner.invoke(app, ["train", str(copy_file), str(traces), "-o", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Traceback" not in res.output  # a corrupt trace file
    res = runner.invoke(app, ["train", str(copy_file), str(traces)])
    assert res.exit_code == 2  # neither -o nor --resume


def test_cli_train_and_resume(copy_file: Path, copy_traces: list[dict], tmp_path: Path) -> None:
    from npi_dsl.trace import write_traces

    traces = tmp_path / "t.jsonl.gz"
    write_traces(traces, copy_traces[:16])
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", str(copy_file), str(traces), "-o", str(run), "--epochs",
                              "1", "--hidden", "16", "--val-lengths", "5"])
    assert res.exit_code == 0, res.output
    assert (run / "model.safetensors").exists() and (run / "manifest.json").exists()
    res = runner.invoke(app, ["train", str(copy_file), str(traces), "-o", str(run)])
    assert res.exit_code == 2 and "--resume" in res.output
    res = runner.invoke(app, ["train", str(copy_file), str(traces), "--resume", str(run)])
    assert res.exit_code == 0, res.output  # already finished: nothing to do
    res = runner.invoke(app, ["train", str(copy_file), str(traces), "--resume", str(run),
                              "--patience", "5", "--hidden", "32"])
    assert res.exit_code == 2 and "leave out --hidden, --patience" in res.output
    import json

    run2 = tmp_path / "run2"
    res = runner.invoke(app, ["train", str(copy_file), str(traces), "-o", str(run2), "--epochs",
                              "1", "--hidden", "16", "--val-lengths", "5", "--val-count", "3",
                              "--patience", "1"])
    assert res.exit_code == 0, res.output
    training = json.loads((run2 / "manifest.json").read_text())["training"]
    assert training["val_count"] == 3 and training["patience"] == 1
    assert list(json.loads((run2 / "metrics.jsonl").read_text().splitlines()[0])["val"]
                ["lengths"]) == ["5"]


def test_cli_verify_threads_give_the_same_report(trained, copy_file: Path, tmp_path: Path) -> None:
    """--threads 2 cuts a big batch (120 inputs) across two threads: the same report, failures
    included (a damaged model, so that there are divergences to compare)."""
    model = copy.deepcopy(trained.model)
    _damage(model)
    from npi_runtime import checkpoint as ckpt

    manifest = json.loads((trained.run_dir / "manifest.json").read_text())
    ckpt.save_model(tmp_path / "bad", model, manifest)
    reports = []
    for threads in ("1", "2"):
        res = runner.invoke(app, ["verify", str(tmp_path / "bad"), str(copy_file), "-l", "5,7",
                                  "-n", "120", "--json", "--require", "0", "--threads", threads])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        for r in out["lengths"]:
            r.pop("seconds", None)
        reports.append(out)
    assert reports[0] == reports[1]
    assert reports[0]["lengths"][0]["trace_exact"] < 1.0
    res = runner.invoke(app, ["verify", str(trained.run_dir), str(copy_file), "--threads", "0"])
    assert res.exit_code == 2
