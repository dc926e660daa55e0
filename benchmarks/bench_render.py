"""Camera rendering throughput on one core, against the CNN encoder that consumes the images.

Prints a table: views per second rendered cold (a new car, light and pose each time),
served from the frame cache, and, as the baseline measured in the same run, the images per
second the camera's CNN encoder takes in training (forward and backward, batches of 512), at
the default 32 px and at 64 px. The ratio says whether rendering can dominate training: above
1, the renderer makes views faster than the encoder learns from them.

    python benchmarks/bench_render.py [--views 400]
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from threadpoolctl import threadpool_limits

from npi_dsl.envs import camera
from npi_dsl.envs.camera_render import CACHE, render_view
from npi_dsl.envs.registry import vocabulary
from npi_runtime.encoders import make_encoder


def _keys(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [camera.frame_key(rng.randrange(20_000), rng.randrange(camera.LIGHTS),
                             rng.choice(camera.AZIMUTHS), rng.choice(camera.ELEVATIONS))
            for _ in range(n)]


def cold(size: int, views: int) -> float:
    keys = _keys(views, size)
    t = time.perf_counter()
    for k in keys:
        render_view(*camera.decode_frame_key(k), size)
    return views / (time.perf_counter() - t)


def cached(size: int, views: int) -> float:
    keys = _keys(64, size + 1)
    CACHE.clear()
    camera.render_frames(keys, size)
    t = time.perf_counter()
    for _ in range(views // 64):
        camera.render_frames(keys, size)
    return (views // 64) * 64 / (time.perf_counter() - t)


def cnn(size: int, batches: int = 4, batch: int = 512) -> float:
    vocab = vocabulary("camera", size=size)
    torch.manual_seed(0)
    enc = make_encoder("camera", vocab.observation, vocab.arg_range, 128, 128)
    pixels = 3 * size * size
    obs = torch.randint(0, 256, (batch, pixels + 2), dtype=torch.uint8)
    obs[:, pixels:] = 0
    args = torch.zeros(batch, 3, dtype=torch.long)
    enc(obs, args).sum().backward()  # warm up
    t = time.perf_counter()
    for _ in range(batches):
        enc.zero_grad()
        enc(obs, args).sum().backward()
    return batches * batch / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=400)
    a = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with threadpool_limits(1):
        for size in (32, 64):
            rows.append((size, cold(size, a.views), cached(size, a.views * 10), cnn(size)))
    print("one core; views/s (higher is faster)")
    print(f"{'size':>5} {'render cold':>12} {'from cache':>12} {'CNN train (baseline)':>21} "
          f"{'cold / CNN':>11} {'ms per view':>12}")
    for size, c, h, n in rows:
        print(f"{size:>5} {c:>12,.0f} {h:>12,.0f} {n:>21,.0f} {c / n:>11.2f} {1000 / c:>12.2f}")


if __name__ == "__main__":
    main()
