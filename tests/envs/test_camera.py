"""The camera environment: poses, inputs, rendering, canonicalize.npi, --frames."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from npi_dsl.checker import load
from npi_dsl.envs import camera
from npi_dsl.envs.base import EnvError
from npi_dsl.envs.camera_render import render_view
from npi_dsl.envs.registry import create_env, vocabulary
from npi_runtime import api
from npi_runtime.cli import app

PROGRAM = Path(__file__).parents[2] / "programs" / "canonicalize.npi"
runner = CliRunner()


def start(**pose: int) -> dict:
    return {"car": 17, "azimuth": 0, "elevation": 15, "light": 5, **pose}


def test_vocabulary_observes_an_image_and_the_target_pad_never_the_pose() -> None:
    vocab = vocabulary("camera", size=48)
    view, taz, tel = vocab.observation
    assert (view.kind, view.shape) == ("image", (3, 48, 48))
    assert (taz.symbols, tel.symbols) == (24, 24)
    assert set(vocab.queries) == {"azimuth", "elevation", "target_azimuth", "target_elevation"}
    assert [a.name for a in vocab.actions] == ["MOVE"]
    assert vocab.kinds["dir"] == ("LEFT", "RIGHT", "UP", "DOWN")


@pytest.mark.parametrize("size", [8, 200])
def test_a_size_off_the_range_is_refused(size: int) -> None:
    with pytest.raises(EnvError, match="size must be 16..128"):
        vocabulary("camera", size=size)


def test_moves_change_the_pose_one_step_and_stop_at_the_edges() -> None:
    env = create_env("camera")
    env.reset(start(azimuth=-75, elevation=0))
    q = {name: env.query_fn(name) for name in ("azimuth", "elevation")}
    env.act(0, camera.RIGHT)
    env.act(0, camera.UP)
    assert (q["azimuth"](), q["elevation"]()) == (-60, 15)
    env.act(0, camera.LEFT)
    with pytest.raises(EnvError, match="edge"):
        env.act(0, camera.LEFT)  # past -75
    env.act(0, camera.DOWN)
    with pytest.raises(EnvError, match="edge"):
        env.act(0, camera.DOWN)  # below 0
    with pytest.raises(EnvError, match="direction"):
        env.act(0, 9)
    assert env.result() == {"azimuth": -75, "elevation": 0}


def test_the_observation_is_a_frame_key_and_the_target_pad() -> None:
    env = create_env("camera")
    env.reset(start(azimuth=45, elevation=30))
    key, taz, tel = env.observe()
    assert camera.decode_frame_key(key) == (17, 5, 45, 30)
    assert camera.frame_key(17, 5, 45, 30) == key
    assert (taz, tel) == (0, 1)  # 0 / 15 and 15 / 15 degrees


@pytest.mark.parametrize("bad, words", [
    ({"car": 17, "azimuth": -40, "elevation": 30, "light": 5}, "azimuth -40 is not on the grid"),
    ({"car": 17, "azimuth": 90, "elevation": 30, "light": 5}, "azimuth 90 is not on the grid"),
    ({"car": 17, "azimuth": 0, "elevation": 75, "light": 5}, "elevation 75"),
    ({"car": 20_000, "azimuth": 0, "elevation": 15, "light": 5}, "outside both car sets"),
    ({"car": -1, "azimuth": 0, "elevation": 15, "light": 5}, "outside both car sets"),
    ({"car": 1, "azimuth": 0, "elevation": 15}, "missing light"),
    ({"car": 1, "azimuth": 0, "elevation": 15, "light": 1, "zoom": 2}, "unknown zoom"),
    ({"car": "1", "azimuth": 0, "elevation": 15, "light": 1}, "car must be an integer"),
    ({"car": 1, "azimuth": 0, "elevation": 15, "light": -3}, "light -3"),
    ([1, 2], "JSON object"),
])
def test_bad_inputs_are_a_clear_error_and_exit_2(bad: object, words: str) -> None:
    result = runner.invoke(app, ["run", str(PROGRAM), "--input", json.dumps(bad)])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_sampled_inputs_have_the_asked_length_and_seen_cars() -> None:
    env = create_env("camera")
    rng = random.Random(0)
    for length in range(1, 10):
        for _ in range(20):
            value = env.sample_input(rng, length)
            assert env.input_length(env.parse_input(value)) == length
            assert value["car"] in camera.SEEN_CARS
    with pytest.raises(EnvError, match="1..9"):
        env.sample_input(rng, 10)


def test_verification_sets_hold_every_start_pose_of_seen_and_unseen_cars() -> None:
    sets = create_env("camera").verification_sets(3, seed=0)
    assert set(sets) == {"seen", "unseen"}
    for name, cars in (("seen", camera.SEEN_CARS), ("unseen", camera.UNSEEN_CARS)):
        values = sets[name]
        assert len(values) == 3 * 55
        assert {v["car"] for v in values} <= set(cars) and len({v["car"] for v in values}) == 3
        assert {(v["azimuth"], v["elevation"]) for v in values} == set(camera.all_start_poses())


def test_renders_are_deterministic_images_that_differ_by_car_light_and_side() -> None:
    key = camera.frame_key(3, 9, -45, 30)
    a = camera.render_frames([key], 32)
    fresh = render_view(3, 9, -45, 30, 32)  # not from the cache
    assert a.dtype == np.uint8 and a.shape == (1, 3, 32, 32)
    assert np.array_equal(a[0], fresh)
    assert camera.render_frames([key], 64).shape == (1, 3, 64, 64)

    def differ(*keys: int) -> float:
        x, y = camera.render_frames(list(keys), 32).astype(int)
        return float(np.abs(x - y).mean())

    assert differ(key, camera.frame_key(4, 9, -45, 30)) > 2  # another car
    assert differ(key, camera.frame_key(3, 10, -45, 30)) > 2  # another light
    assert differ(key, camera.frame_key(3, 9, 45, 30)) > 2  # the other side
    assert differ(key, camera.frame_key(3, 9, -45, 45)) > 2  # higher


def test_a_view_is_not_the_mirror_of_the_view_from_the_other_side() -> None:
    """Cars are left-right symmetric, so the view from +45 would be the mirror image of the
    view from -45 under a light from straight above; a network tells the two sides apart by
    where the front is, so the two views must differ, mirrored or not."""
    left = camera_render_view(5, 2, -45, 15).astype(int)
    right = camera_render_view(5, 2, 45, 15).astype(int)
    assert np.abs(left - right).mean() > 2
    assert np.abs(left - right[:, :, ::-1]).mean() > 0.5


def camera_render_view(car: int, light: int, az: int, el: int) -> np.ndarray:
    return camera.render_frames([camera.frame_key(car, light, az, el)], 32)[0]


def test_canonicalize_compiles_and_every_trace_ends_at_the_target(tmp_path: Path) -> None:
    out = tmp_path / "c.jsonl"
    result = runner.invoke(app, ["compile", str(PROGRAM), "-l", "1..9", "-n", "12", "-o",
                                 str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 9 * 12
    for rec in records:
        assert rec["result"] == {"azimuth": 0, "elevation": 15}
        moves = sum(1 for s in rec["steps"] if s["call"] == "ACT")
        assert moves == rec["length"] - 1
        for s in rec["steps"]:
            assert all(type(x) is int for x in s["obs"])  # keys and symbols, never pixels
    assert out.stat().st_size < 400 * sum(len(r["steps"]) for r in records)


def test_check_strict_is_clean() -> None:
    result = runner.invoke(app, ["check", "--strict", str(PROGRAM)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_frames_draws_every_view_of_the_rollout(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"roll{suffix}"
    value = start(azimuth=-45, elevation=60)
    result = runner.invoke(app, ["run", str(PROGRAM), "--input", json.dumps(value),
                                 "--frames", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 7 frames" in result.output  # 3 moves right, 3 down: 7 views
    with Image.open(out) as im:
        if suffix == ".gif":
            assert im.n_frames == 7
        else:
            assert im.width > 6 * im.height


@pytest.mark.parametrize("args, words", [
    (["programs/sorting.npi", "--input", "[3, 1]", "--frames", "{tmp}/x.png"], "no images"),
    (["programs/canonicalize.npi", "--input", json.dumps(start()), "--frames", "{tmp}/x.jpg"],
     ".png"),
    (["programs/canonicalize.npi", "--input", json.dumps(start()), "--frames",
      "{tmp}/missing/x.png"], "does not exist"),
])
def test_frames_refuses_what_it_cannot_write(tmp_path: Path, args: list[str], words: str) -> None:
    root = PROGRAM.parents[1]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    args[0] = str(root / args[0])
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert not list(tmp_path.rglob("x.*"))


def test_the_network_sees_pixels_not_the_pose(monkeypatch: pytest.MonkeyPatch) -> None:
    """Change the pose but not the image: the network's input does not change."""
    checked = load(PROGRAM)
    model = api.new_model(checked)
    encoder = model.encoders["camera"]
    env = create_env("camera")
    env.reset(start(azimuth=-45, elevation=30))
    seen = env.observe()
    picture = encoder.render([seen[0]])
    env.reset(start(azimuth=60, elevation=0))  # another pose, so another frame key...
    other = env.observe()
    assert other[0] != seen[0] and env.query_fn("azimuth")() == 60
    monkeypatch.setattr(encoder, "_render", lambda keys: np.repeat(picture, len(keys), 0))
    a, b = encoder.tensorize([seen]), encoder.tensorize([other])  # ... drawn as the same image
    assert a.shape == (1, 3 * 32 * 32 + 2)  # pixels and the target pad: nothing else
    assert np.array_equal(a.numpy(), b.numpy())
    import torch

    args = torch.zeros(1, 3, dtype=torch.long)
    assert torch.equal(encoder(a, args), encoder(b, args))


def test_the_lint_runs_the_camera_at_its_own_lengths() -> None:
    result = runner.invoke(app, ["lint", str(PROGRAM), "--count", "5"])
    assert result.exit_code == 0, result.output
    assert "clean" in result.output and "45 inputs" in result.output  # lengths 1..9


def test_the_lint_refuses_lengths_the_camera_has_not() -> None:
    result = runner.invoke(app, ["lint", str(PROGRAM), "--lengths", "5..12"])
    assert result.exit_code == 2, result.output
    assert "lengths 1..9" in result.output and "Traceback" not in result.output
