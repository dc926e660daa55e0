"""The camera of canonicalisation (Reed & de Freitas 2016, section 4.3), with procedural cars.

A camera looks at a car from an azimuth in -75..75 and an elevation in 0..60 degrees, in
15-degree steps (11 x 5 = 55 poses). The task: move it, one step at a time, to the canonical
pose (azimuth 0, elevation 15), deciding from the image alone. A read-only target pad holds
the target's azimuth and elevation, as in the paper (24 values each: the angle / 15 mod 24).

* Actions: `MOVE(LEFT|RIGHT|UP|DOWN)`, the paper's ACT(LEFT) ...: LEFT lowers the azimuth by
  15 degrees, RIGHT raises it, UP raises the elevation, DOWN lowers it. Past the grid is an
  EnvError, like a pointer past an edge.
* Queries, for reference programs only, privileged (never in the observation):
  `azimuth()`, `elevation()`, `target_azimuth()`, `target_elevation()`, in degrees.
* Observation: (view, target_azimuth, target_elevation). The view slot is an image of
  [3, size, size] (`env camera(size = 32)`, 16..128); in an observation and in traces it is a
  *frame key*, the integer from which `render_images` draws the view again (traces stay
  small; DESIGN.md: images are never stored). The network's encoder renders the key and sees
  only pixels (npi_runtime.image_encoder).
* Inputs: `{"car": 17, "azimuth": -45, "elevation": 30, "light": 5}`. Cars 0..9999 are the
  seen set (what `npi compile` samples: training), 10000..19999 the unseen set (testing).
  `light` (0..2**31-1) fixes the episode's lighting. An input's length is the number of views
  on its way to the canonical pose: 1 + the 15-degree moves needed (1..9).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from npi_dsl.envs.base import (
    JSON,
    ActionSpec,
    BoundOperations,
    EnvError,
    Environment,
    ObsSlot,
    QuerySpec,
    Vocabulary,
    describe_value,
)

AZIMUTHS = tuple(range(-75, 76, 15))
ELEVATIONS = tuple(range(0, 61, 15))
TARGET = (0, 15)
STEP = 15
SEEN_CARS = range(0, 10_000)
UNSEEN_CARS = range(10_000, 20_000)
LIGHTS = 2**31
#: symbols of a target-pad slot: angle / 15 mod 24, as in the paper
PAD_SYMBOLS = 24
DIRECTIONS = ("LEFT", "RIGHT", "UP", "DOWN")
LEFT, RIGHT, UP, DOWN = range(4)
KEYS = ("car", "azimuth", "elevation", "light")
GRID = (AZIMUTHS, ELEVATIONS)
#: per direction: (0 azimuth or 1 elevation, the step along it)
STEPS = ((0, -1), (0, 1), (1, 1), (1, -1))
MIN_SIZE, MAX_SIZE = 16, 128


def frame_key(car: int, light: int, azimuth: int, elevation: int) -> int:
    """The integer that stands for one view in observations and traces."""
    return _key(car, light, AZIMUTHS.index(azimuth), ELEVATIONS.index(elevation))


def _key(car: int, light: int, az_index: int, el_index: int) -> int:
    """The frame key of a view given by its grid indices (`decode_frame_key` inverts it)."""
    return ((car * LIGHTS + light) * len(AZIMUTHS) + az_index) * len(ELEVATIONS) + el_index


def decode_frame_key(key: int) -> tuple[int, int, int, int]:
    """(car, light, azimuth, elevation) of a frame key; ValueError for a key of no view."""
    if type(key) is not int or key < 0:
        raise ValueError(f"a frame key is a non-negative integer, got {key!r}")
    rest, el = divmod(key, len(ELEVATIONS))
    rest, az = divmod(rest, len(AZIMUTHS))
    car, light = divmod(rest, LIGHTS)
    if not (car in SEEN_CARS or car in UNSEEN_CARS):
        raise ValueError(f"frame key {key} names car {car}, which is in neither car set")
    return car, light, AZIMUTHS[az], ELEVATIONS[el]


def render_frames(keys: Sequence[int], size: int) -> Any:
    """uint8 numpy array [len(keys), 3, size, size] of the views of frame keys (cached)."""
    from npi_dsl.envs.camera_render import render_cached

    return render_cached([(int(k), decode_frame_key(int(k))) for k in keys], size)


def moves_to_target(azimuth: int, elevation: int) -> int:
    return (abs(azimuth - TARGET[0]) + abs(elevation - TARGET[1])) // STEP


def all_start_poses() -> list[tuple[int, int]]:
    """Every start pose (azimuth, elevation), azimuth-major."""
    return [(a, e) for a in AZIMUTHS for e in ELEVATIONS]


def _pad(angle: int) -> int:
    return (angle // STEP) % PAD_SYMBOLS


class CameraEnv(BoundOperations, Environment):
    """A camera around a procedural car; the observation is the rendered view."""

    name = "camera"
    config_defaults = {"arg_range": 10, "size": 32}
    MIN_ARG_RANGE = 4
    MIN_ARG_RANGE_REASON = "directions are 0..3"
    verification_grid = ("azimuth", "elevation")
    max_length = 9  # 1 + the 8 moves from azimuth +-75, elevation 60

    @classmethod
    def resolve_config(cls, config: Mapping[str, Any]) -> dict[str, int]:
        resolved = super().resolve_config(config)
        if not MIN_SIZE <= resolved["size"] <= MAX_SIZE:
            raise EnvError(f"env camera: size must be {MIN_SIZE}..{MAX_SIZE} pixels, got "
                           f"{resolved['size']}")
        return resolved

    @classmethod
    def vocabulary(cls, **config: int) -> Vocabulary:
        resolved = cls.resolve_config(config)
        size = resolved["size"]
        return Vocabulary(
            env=cls.name,
            names={d: i for i, d in enumerate(DIRECTIONS)},
            kinds={"dir": DIRECTIONS},
            actions=(ActionSpec("MOVE", ("dir",), "move the camera 15 degrees: LEFT/RIGHT "
                                "change the azimuth, UP/DOWN the elevation"),),
            queries={
                "azimuth": QuerySpec("azimuth", (), "int",
                                     "the camera's azimuth in degrees (privileged)"),
                "elevation": QuerySpec("elevation", (), "int",
                                       "the camera's elevation in degrees (privileged)"),
                "target_azimuth": QuerySpec("target_azimuth", (), "int",
                                            "the target azimuth in degrees (privileged)"),
                "target_elevation": QuerySpec("target_elevation", (), "int",
                                              "the target elevation in degrees (privileged)"),
            },
            observation=(
                ObsSlot("view", 0, kind="image", shape=(3, size, size)),
                ObsSlot("target_azimuth", PAD_SYMBOLS),
                ObsSlot("target_elevation", PAD_SYMBOLS),
            ),
            arg_range=resolved["arg_range"],
            blank=0,
            oracles={"canonical": "the camera at the target pose (azimuth 0, elevation 15)"},
            config=resolved,
        )

    def __init__(self, **config: int) -> None:
        super().__init__(**config)
        pose = [0, 0]  # indices into AZIMUTHS and ELEVATIONS
        scene = [0, 0]  # car, light
        pad = (_pad(TARGET[0]), _pad(TARGET[1]))
        self._pose = pose
        self._scene = scene

        def observe() -> tuple[int, ...]:
            return (_key(scene[0], scene[1], pose[0], pose[1]), *pad)

        def move(direction: int, _unused: int = 0) -> None:
            if not 0 <= direction < len(STEPS):
                raise EnvError(f"MOVE: direction must be 0..3 (LEFT, RIGHT, UP, DOWN), got "
                               f"{direction}")
            axis, delta = STEPS[direction]
            angles = GRID[axis]
            i = pose[axis] + delta
            if not 0 <= i < len(angles):
                raise EnvError(f"MOVE({DIRECTIONS[direction]}): the camera is at "
                               f"{('azimuth', 'elevation')[axis]} {angles[pose[axis]]}, the "
                               f"edge of {angles[0]}..{angles[-1]}")
            pose[axis] = i

        self.bind_operations(observe, (move,), {
            "azimuth": lambda: AZIMUTHS[pose[0]],
            "elevation": lambda: ELEVATIONS[pose[1]],
            "target_azimuth": lambda: TARGET[0],
            "target_elevation": lambda: TARGET[1],
        })
        self.reset({"car": 0, "azimuth": TARGET[0], "elevation": TARGET[1], "light": 0})

    # ---- images
    @classmethod
    def render_images(cls, slot: str, keys: Sequence[int], shape: tuple[int, ...]) -> Any:
        if slot != "view" or len(shape) != 3 or shape[0] != 3 or shape[1] != shape[2]:
            raise EnvError(f"env camera has no image slot {slot!r} of shape {list(shape)}")
        return render_frames(keys, shape[1])

    def frame(self) -> Any:
        """The current view, uint8 [3, size, size]."""
        return render_frames([self.observe()[0]], self.config["size"])[0]

    # ---- inputs and oracles
    def parse_input(self, value: JSON) -> JSON:
        example = '{"car": 17, "azimuth": -45, "elevation": 30, "light": 5}'
        if not isinstance(value, dict):
            raise EnvError(f"camera input must be a JSON object such as {example}; got "
                           f"{describe_value(value)}")
        missing = [k for k in KEYS if k not in value]
        extra = sorted(set(value) - set(KEYS))
        if missing or extra:
            what = "; ".join(p for p in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(map(str, extra))}" if extra else "") if p)
            raise EnvError(f"camera input needs exactly the keys car, azimuth, elevation and "
                           f"light ({what}), e.g. {example}")
        for k in KEYS:
            if type(value[k]) is not int:
                raise EnvError(f"camera input {k} must be an integer, got "
                               f"{describe_value(value[k])}")
        car, az, el, light = (value[k] for k in KEYS)
        if car not in SEEN_CARS and car not in UNSEEN_CARS:
            raise EnvError(f"camera input car {car} is outside both car sets: seen "
                           f"{SEEN_CARS.start}..{SEEN_CARS.stop - 1}, unseen "
                           f"{UNSEEN_CARS.start}..{UNSEEN_CARS.stop - 1}")
        if az not in AZIMUTHS:
            raise EnvError(f"camera input azimuth {az} is not on the grid: "
                           f"{AZIMUTHS[0]}..{AZIMUTHS[-1]} in steps of {STEP}")
        if el not in ELEVATIONS:
            raise EnvError(f"camera input elevation {el} is not on the grid: "
                           f"{ELEVATIONS[0]}..{ELEVATIONS[-1]} in steps of {STEP}")
        if not 0 <= light < LIGHTS:
            raise EnvError(f"camera input light {light} must be 0..{LIGHTS - 1}")
        return {"car": car, "azimuth": az, "elevation": el, "light": light}

    def input_length(self, value: JSON) -> int:
        return 1 + moves_to_target(value["azimuth"], value["elevation"])

    def sample_input(self, rng: random.Random, length: int) -> JSON:
        poses = [p for p in all_start_poses() if 1 + moves_to_target(*p) == length]
        if not poses:
            longest = max(1 + moves_to_target(*p) for p in all_start_poses())
            raise EnvError(f"camera input length {length} is impossible: lengths are 1 + the "
                           f"moves to the target pose, 1..{longest}")
        car = SEEN_CARS.start + rng.randrange(len(SEEN_CARS))
        az, el = poses[rng.randrange(len(poses))]
        return {"car": car, "azimuth": az, "elevation": el, "light": rng.randrange(LIGHTS)}

    def verification_sets(self, count: int, seed: int) -> dict[str, list[JSON]]:
        """Every start pose of `count` seen and `count` unseen cars, a random light each."""
        rng = random.Random(f"npi-camera-verify/{seed}")
        sets: dict[str, list[JSON]] = {}
        for name, cars in (("seen", SEEN_CARS), ("unseen", UNSEEN_CARS)):
            chosen = rng.sample(cars, count) if count <= len(cars) else list(cars)
            sets[name] = [{"car": car, "azimuth": a, "elevation": e,
                           "light": rng.randrange(LIGHTS)}
                          for car in chosen for a, e in all_start_poses()]
        return sets

    def expected(self, oracle: str, input: JSON) -> JSON:
        self.parse_input(input)
        if oracle == "canonical":
            return {"azimuth": TARGET[0], "elevation": TARGET[1]}
        raise EnvError(f"env camera has no oracle {oracle!r} (it has: canonical)")

    # ---- running
    def reset(self, input: JSON) -> None:
        value = self.parse_input(input)
        self._scene[:] = [value["car"], value["light"]]
        self._pose[:] = [AZIMUTHS.index(value["azimuth"]), ELEVATIONS.index(value["elevation"])]

    def result(self) -> JSON:
        """The final pose."""
        return {"azimuth": AZIMUTHS[self._pose[0]], "elevation": ELEVATIONS[self._pose[1]]}

    def render(self) -> str:
        from npi_dsl.envs.cars import car_model

        car, light = self._scene
        az, el = AZIMUTHS[self._pose[0]], ELEVATIONS[self._pose[1]]
        return (f"car {car} ({car_model(car).style}), light {light}: camera at azimuth "
                f"{az:+d}, elevation {el} (target {TARGET[0]:+d}, {TARGET[1]})")

    def snapshot(self) -> Any:
        return (tuple(self._scene), tuple(self._pose))

    def restore(self, state: Any) -> None:
        scene, pose = state
        self._scene[:] = scene
        self._pose[:] = pose
