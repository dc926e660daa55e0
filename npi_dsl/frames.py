"""The views of a rollout as pictures: `npi run --frames FILE.png|FILE.gif`.

For an environment with an image slot (the camera), each step of a trace records the frame
key of the view it saw. The rollout's frames are the distinct views in the order the steps saw
them (a view repeated by consecutive steps, e.g. a call and the return after it, is drawn
once). They are drawn again from the keys (`Environment.render_images`), scaled up with
nearest-neighbour sampling to at least `MIN_SIDE` pixels so that a 32-pixel view can be seen,
and encoded as one PNG strip (left to right) or an animated GIF (`GIF_MS` per frame).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from npi_dsl.envs.base import Environment, Vocabulary
from npi_dsl.errors import NpiError

SUFFIXES = (".png", ".gif")
MIN_SIDE = 128
GIF_MS = 500


class FramesError(NpiError):
    """No frames can be written (no image slot, an unknown suffix). Exit 2: bad usage."""

    exit_code = 2


def check_frames_target(path: Path, vocabulary: Vocabulary) -> int:
    """The index of the image slot to draw; FramesError for a suffix or env without images."""
    if path.suffix.lower() not in SUFFIXES:
        raise FramesError(f"--frames {path}: the file must end in .png (a strip of the views) "
                          f"or .gif (an animation), not {path.suffix or 'no suffix'!r}")
    slots = [i for i, s in enumerate(vocabulary.observation) if s.kind == "image"]
    if not slots:
        raise FramesError(f"--frames: env {vocabulary.env} has no images to draw (its "
                          "observation has no image slot)")
    return slots[0]


def rollout_keys(steps: Sequence[dict[str, Any]], slot: int) -> list[int]:
    """The frame keys of the views the steps saw, consecutive repeats dropped."""
    keys: list[int] = []
    for step in steps:
        key = step["obs"][slot]
        if not keys or keys[-1] != key:
            keys.append(key)
    return keys


def frames_bytes(env_class: type[Environment], vocabulary: Vocabulary,
                 steps: Sequence[dict[str, Any]], path: Path) -> tuple[bytes, int]:
    """(the encoded file, the number of frames) for the rollout's views."""
    from PIL import Image

    slot = check_frames_target(path, vocabulary)
    spec = vocabulary.observation[slot]
    keys = rollout_keys(steps, slot)
    images = np.asarray(env_class.render_images(spec.name, keys, tuple(spec.shape)))
    scale = max(1, -(-MIN_SIDE // images.shape[-1]))
    pictures = [Image.fromarray(np.kron(im.transpose(1, 2, 0),
                                        np.ones((scale, scale, 1), dtype=np.uint8)))
                for im in images]
    buf = io.BytesIO()
    if path.suffix.lower() == ".gif":
        pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:],
                         duration=GIF_MS, loop=0)
    else:
        strip = Image.new("RGB", (sum(p.width for p in pictures) + 2 * (len(pictures) - 1),
                                  pictures[0].height), (255, 255, 255))
        x = 0
        for p in pictures:
            strip.paste(p, (x, 0))
            x += p.width + 2
        strip.save(buf, format="PNG")
    return buf.getvalue(), len(pictures)
