"""Rebuilding frames (per-frame step sequences) and the call tree from a trace's steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Frame:
    """One program call: its steps in order (the last is its return step)."""

    id: int
    parent: int | None  # the caller's frame id; None for the entry's frame
    call_step: int | None  # index in the parent's `steps` of the step that made this call
    depth: int
    program: str
    args: list[int]
    steps: list[dict[str, Any]]
    children: list[int] = field(default_factory=list)  # frame ids this frame called, in order


def iter_frames(steps: list[dict[str, Any]]) -> list[Frame]:
    """The frames of a (valid) trace's steps, indexed by frame id.

    `frames[i].steps` is frame i's step sequence (what a network is trained on, one
    independent sequence per frame); `parent`, `call_step` and `children` give the call tree.
    """
    frames: list[Frame] = []
    append = frames.append
    current: Frame | None = None
    for step in steps:
        f = step["frame"]
        if current is not None and f == current.id:
            current.steps.append(step)
            continue
        if f == len(frames):
            if current is None:
                frame = Frame(f, None, None, step["depth"], step["program"], step["args"], [step])
            else:
                frame = Frame(
                    f,
                    current.id,
                    len(current.steps) - 1,
                    step["depth"],
                    step["program"],
                    step["args"],
                    [step],
                )
                current.children.append(f)
            append(frame)
            current = frame
        elif 0 <= f < len(frames):
            current = frames[f]
            current.steps.append(step)
        else:
            raise ValueError(
                f"step of frame {f} before frame {len(frames)} started: "
                "frame ids must be assigned in the order frames start"
            )
    return frames
