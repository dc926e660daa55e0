"""Training and verifying on the camera: the CNN encoder through the public API and CLI.

A tiny run (16-pixel views, a few epochs): nothing here asserts a learned accuracy, only what
the pipeline guarantees: images rendered from frame keys reach the network, a run directory
with an image encoder loads again, verification covers every start pose of seen and unseen
cars, and the per-pose report and plot are written.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from npi_dsl.envs import camera
from npi_runtime import api
from npi_runtime.cli import app
from npi_runtime.image_encoder import ImageEncoder

PROGRAM = Path(__file__).parents[2] / "programs" / "canonicalize.npi"


@pytest.fixture(scope="module")
def small_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("camera") / "canonicalize.npi"
    path.write_text(PROGRAM.read_text().replace("env camera", "env camera(size = 16)"))
    return path


@pytest.fixture(scope="module")
def camera_run(small_program: Path, configs, tmp_path_factory: pytest.TempPathFactory):
    checked = api.load_program(small_program)
    traces = api.compile_traces(checked, lengths=range(1, 10), count=6, seed=1)
    model_config, train_config = configs(epochs=2)
    train_config = replace(train_config, val_lengths=(3,), val_count=2)
    run_dir = tmp_path_factory.mktemp("runs") / "camera"
    return api.train(checked, traces, run_dir, model_config=model_config,
                     train_config=train_config)


def test_a_camera_run_has_an_image_encoder_and_loads_again(camera_run, small_program) -> None:
    assert camera_run.summary["epochs"] == 2
    manifest = json.loads((camera_run.run_dir / "manifest.json").read_text())
    encoder = manifest["environments"]["camera"]["encoder"]
    assert encoder["kind"] == "image"
    assert encoder["image_shape"] == [3, 16, 16]
    model = api.load_model(camera_run.run_dir, api.load_program(small_program))
    assert isinstance(model.encoders["camera"], ImageEncoder)
    out = api.run_network(model, api.load_program(small_program),
                          [{"car": 12_345, "azimuth": 30, "elevation": 0, "light": 7}])
    assert out[0]["status"] in ("ok", "step_budget", "depth_budget", "env_error")


def test_verify_covers_every_start_pose_of_seen_and_unseen_cars(camera_run,
                                                                small_program) -> None:
    checked = api.load_program(small_program)
    report = api.verify(camera_run.run_dir, checked, None, count=2, seed=4, keep_outputs=True)
    assert [r.group for r in report.lengths] == ["seen", "unseen"]
    poses = {f"{a},{e}" for a, e in camera.all_start_poses()}
    for r in report.lengths:
        assert r.count == 2 * 55
        assert set(r.cells) == poses
        assert all(n == 2 for n, _ in r.cells.values())
        assert sum(right for _, right in r.cells.values()) == round(r.trace_exact * r.count)
        cars = {o["input"]["car"] for o in r.outputs}
        assert cars <= set(camera.SEEN_CARS if r.group == "seen" else camera.UNSEEN_CARS)
    data = report.to_json()
    assert data["lengths"][1]["group"] == "unseen" and len(data["lengths"][1]["cells"]) == 55


def test_the_cli_verifies_by_pose_and_plots_the_grid(camera_run, small_program,
                                                     tmp_path: Path) -> None:
    plot = tmp_path / "poses.png"
    result = CliRunner().invoke(app, ["verify", str(camera_run.run_dir), str(small_program),
                                      "-n", "1", "--require", "0", "--plot", str(plot),
                                      "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["group"] for r in data["lengths"]] == ["seen", "unseen"]
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.width > im.height
    # explicit lengths still verify by length (seen cars)
    result = CliRunner().invoke(app, ["verify", str(camera_run.run_dir), str(small_program),
                                      "-l", "2,9", "-n", "2", "--require", "0", "--json"])
    assert result.exit_code == 0, result.output
    assert [r["length"] for r in json.loads(result.stdout)["lengths"]] == [2, 9]
