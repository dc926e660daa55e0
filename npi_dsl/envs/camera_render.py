"""The camera environment's renderer: ray casting in numpy, no display, no GPU.

A view is fixed by four integers: the car id, the light id, the camera's azimuth and its
elevation (degrees). The camera orbits the car at a distance that follows the car's length and
looks at a point above its centre; azimuth 0 looks at the car's front, positive azimuths move
the camera to the car's left. Each pixel's ray is tested against every box of the car (the
slab method, all boxes and pixels at once) and the ground plane; the nearest hit is shaded
with the episode's light (Lambert diffuse plus ambient; lights glow at their own colour), the
ground gets a soft shadow under the car, rays that hit nothing see a sky gradient. Images are
rendered at twice the size and averaged down (anti-aliasing), all in float64, then rounded to
uint8: the same key gives the same bytes wherever numpy's float arithmetic is IEEE.

Lighting (direction, strength, ambient, sky and ground tints) comes from the light id alone,
so one car under two light ids looks different, as the issue asks ("vary lighting per
episode": a network trained under one light fails under another).
"""

from __future__ import annotations

import math
import random
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from npi_dsl.envs.cars import CarModel, car_model

#: field of view (vertical and horizontal, degrees)
FOV = 36.0
#: the point the camera looks at, above the car's centre (metres)
LOOK_AT = (0.0, 0.75, 0.0)
#: how many rendered frames the cache keeps (about 3 KB each at 32 px)
CACHE_FRAMES = 60_000
#: supersampling factor per axis
SUPERSAMPLE = 2


@dataclass(frozen=True)
class Lighting:
    direction: tuple[float, float, float]  # towards the light, unit
    diffuse: float
    ambient: float
    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    ground: tuple[float, float, float]


@lru_cache(maxsize=4096)
def lighting(light: int) -> Lighting:
    """The lighting of light id `light`."""
    rng = random.Random(f"npi-light/{light}")
    az = math.radians(rng.uniform(0.0, 360.0))
    el = math.radians(rng.uniform(25.0, 75.0))
    direction = (math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az))
    tint = [rng.uniform(-0.08, 0.08) for _ in range(3)]
    sky = rng.uniform(0.55, 0.9)
    ground = rng.uniform(0.22, 0.5)
    return Lighting(
        direction=direction,
        diffuse=rng.uniform(0.55, 1.0),
        ambient=rng.uniform(0.25, 0.45),
        sky_top=tuple(min(1.0, max(0.0, sky * c + t)) for c, t in zip(
            (0.55, 0.7, 1.0), tint, strict=True)),
        sky_horizon=tuple(min(1.0, max(0.0, sky + 0.1 + t)) for t in tint),
        ground=tuple(min(1.0, max(0.0, ground * c + t)) for c, t in zip(
            (1.0, 0.97, 0.9), tint, strict=True)),
    )


@lru_cache(maxsize=2048)
def _model(car: int) -> CarModel:
    return car_model(car)


@lru_cache(maxsize=256)
def _rays(azimuth: int, elevation: int, extent: float, side: int) -> tuple[np.ndarray,
                                                                         np.ndarray]:
    """Camera position [3] and unit ray directions [side * side, 3] for one pose."""
    a, e = math.radians(azimuth), math.radians(elevation)
    distance = 2.9 * extent + 1.5
    target = np.asarray(LOOK_AT)
    pos = target + distance * np.asarray(
        [math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])
    forward = target - pos
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    half = math.tan(math.radians(FOV) / 2)
    coords = (np.arange(side) + 0.5) / side * 2.0 - 1.0
    x = coords[None, :] * half
    y = -coords[:, None] * half
    d = forward[None, None, :] + x[..., None] * right + y[..., None] * up
    d = d.reshape(-1, 3)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return pos, d


def _slabs(boxes: np.ndarray, pos: np.ndarray,
           inv: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Rays (from `pos`, inverse directions `inv` [3, rays]) against boxes [N, 2, 3]: the t of
    entering (inf where missed) and leaving [N, rays], and the entering t per axis."""
    near = far = None
    entry = []
    for k in range(3):
        ta = (boxes[:, 0, k, None] - pos[k]) * inv[k]
        tb = (boxes[:, 1, k, None] - pos[k]) * inv[k]
        lo, hi = np.minimum(ta, tb), np.maximum(ta, tb)
        entry.append(lo)
        near = lo if near is None else np.maximum(near, lo)
        far = hi if far is None else np.minimum(far, hi)
    assert near is not None and far is not None
    near = np.where((far >= near) & (near > 1e-6), near, np.inf)
    return near, far, entry


def render_view(car: int, light: int, azimuth: int, elevation: int, size: int) -> np.ndarray:
    """One view as uint8 [3, size, size]."""
    model = _model(car)
    lit = lighting(light)
    side = size * SUPERSAMPLE
    pos, d = _rays(azimuth, elevation, model.extent, side)
    # rays against every box (slab method), only for the rays that hit the car's bounding box
    safe = np.where(np.abs(d) < 1e-12, 1e-12, d)
    inv = (1.0 / safe).T  # [3, pixels]
    bound = np.stack([model.boxes[:, 0].min(axis=0), model.boxes[:, 1].max(axis=0)])[None]
    near, _, _ = _slabs(bound, pos, inv)
    rays = np.flatnonzero(np.isfinite(near[0]))
    near, far, entry = _slabs(model.boxes, pos, inv[:, rays])
    t = near
    nearest = t.argmin(axis=0)
    cols = np.arange(rays.size)
    which = np.zeros(d.shape[0], dtype=np.int64)
    which[rays] = nearest
    t_box = np.full(d.shape[0], np.inf)
    t_box[rays] = t[nearest, cols]
    # the face a ray enters by: the axis whose plane it crosses last
    axis = np.zeros(d.shape[0], dtype=np.int64)
    axis[rays[entry[1][nearest, cols] == t_box[rays]]] = 1
    axis[rays[entry[2][nearest, cols] == t_box[rays]]] = 2
    pixels = np.arange(d.shape[0])
    normal = np.zeros_like(d)
    normal[pixels, axis] = -np.sign(safe[pixels, axis])
    light_dir = np.asarray(lit.direction)
    lambert = np.clip(normal @ light_dir, 0.0, None)
    shade = lit.ambient + lit.diffuse * lambert
    colour = model.colours[which] * shade[:, None]
    glow = model.emissive[which]
    colour[glow] = model.colours[which][glow]
    # the ground plane y = 0 with a soft shadow of the car, and the sky
    down = d[:, 1] < -1e-9
    t_ground = np.where(down, -pos[1] / np.where(down, d[:, 1], -1.0), np.inf)
    gx = pos[0] + t_ground * d[:, 0]
    gz = pos[2] + t_ground * d[:, 2]
    lift = 0.6 / max(light_dir[1], 0.2)
    sx = gx + light_dir[0] * lift
    sz = gz + light_dir[2] * lift
    half_w = np.abs(model.boxes[:, :, 0]).max()
    half_l = model.extent
    inside = np.clip(1.0 - np.maximum(np.abs(sx) - half_w, np.abs(sz) - half_l) / 0.5, 0, 1)
    ground = np.asarray(lit.ground)[None, :] * (
        lit.ambient + lit.diffuse * light_dir[1] * (1.0 - 0.75 * inside))[:, None]
    fade = np.clip(np.exp(-np.where(np.isfinite(t_ground), t_ground, 0.0) / 60.0), 0, 1)
    horizon = np.asarray(lit.sky_horizon)
    ground = ground * fade[:, None] + horizon * (1 - fade[:, None])
    up_amount = np.clip(d[:, 1] * 3.0, 0.0, 1.0)[:, None]
    sky = horizon * (1 - up_amount) + np.asarray(lit.sky_top) * up_amount
    background = np.where((t_ground < np.inf)[:, None], ground, sky)
    on_car = (t_box < t_ground)[:, None]
    image = np.where(on_car, colour, background)
    image = image.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean(axis=(1, 3))
    out = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


class FrameCache:
    """The last CACHE_FRAMES rendered views, by (key, size)."""

    def __init__(self, capacity: int = CACHE_FRAMES) -> None:
        self.capacity = capacity
        self._frames: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.render_seconds = 0.0  # spent rendering the misses

    def get(self, key: tuple[int, int]) -> np.ndarray | None:
        frame = self._frames.get(key)
        if frame is not None:
            self._frames.move_to_end(key)
            self.hits += 1
        return frame

    def put(self, key: tuple[int, int], frame: np.ndarray) -> None:
        self.misses += 1
        self._frames[key] = frame
        if len(self._frames) > self.capacity:
            self._frames.popitem(last=False)

    def clear(self) -> None:
        self._frames.clear()
        self.hits = self.misses = 0
        self.render_seconds = 0.0


CACHE = FrameCache()


def render_cached(views: Sequence[tuple[int, tuple[int, int, int, int]]],
                  size: int) -> np.ndarray:
    """uint8 [N, 3, size, size] for (frame key, (car, light, azimuth, elevation)) pairs."""
    out = np.empty((len(views), 3, size, size), dtype=np.uint8)
    for i, (key, (car, light, az, el)) in enumerate(views):
        frame = CACHE.get((key, size))
        if frame is None:
            t = time.perf_counter()
            frame = render_view(car, light, az, el, size)
            CACHE.render_seconds += time.perf_counter() - t
            frame.setflags(write=False)
            CACHE.put((key, size), frame)
        out[i] = frame
    return out
