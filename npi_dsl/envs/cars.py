"""Procedural car-like models for the camera environment, each made from an integer id.

A car is a handful of axis-aligned boxes in the car's frame (x to its left, y up, z forward;
the ground is y = 0, the car centred on the origin): a body, a cabin, four wheels, head and
tail lights, and, by style and chance, a spoiler, a roof rack, a pickup's open bed or a van's
tall box. Everything (style, proportions, colours, details) comes from `random.Random` seeded
by the id, so a car id is the whole model and any image can be rendered again.

These are procedural cars, not the paper's CAD models (which cannot be shipped): the point is
the same task (move the camera to a canonical pose from pixels alone) with shapes that vary as
much as a network needs not to memorise one. Front and back differ (a hood in front, lights
white-yellow in front and red behind), so a view from the left is not a view from the right.
"""

from __future__ import annotations

import colorsys
import random
from dataclasses import dataclass

import numpy as np

STYLES = ("sedan", "hatchback", "suv", "pickup", "van", "sports")


@dataclass(frozen=True)
class CarModel:
    """Boxes [N, 2, 3] (min and max corner), their colours [N, 3] in 0..1, and which glow
    (lights: drawn at their colour whatever the lighting)."""

    car: int
    style: str
    boxes: np.ndarray
    colours: np.ndarray
    emissive: np.ndarray  # [N] bool

    @property
    def extent(self) -> float:
        """Half the car's length: the renderer frames the camera on it."""
        return float(np.abs(self.boxes[:, :, 2]).max())


def _colour(rng: random.Random) -> tuple[float, float, float]:
    """A car paint: any hue, from pastel to deep, sometimes near black, white or silver."""
    kind = rng.random()
    if kind < 0.15:
        v = rng.choice((0.12, 0.85, 0.6))
        return (v, v, v * 1.02)
    h = rng.random()
    s = rng.uniform(0.45, 0.95)
    v = rng.uniform(0.45, 0.95)
    return colorsys.hsv_to_rgb(h, s, v)


def car_model(car: int) -> CarModel:
    """The model of car `car` (any int; the camera uses two disjoint ranges of ids)."""
    rng = random.Random(f"npi-car/{car}")
    style = STYLES[rng.randrange(len(STYLES))]
    length = rng.uniform(3.8, 5.0) * {"sports": 0.95, "van": 1.02, "hatchback": 0.88}.get(
        style, 1.0)
    width = rng.uniform(1.65, 2.0)
    clearance = rng.uniform(0.15, 0.3) * (1.4 if style in ("suv", "pickup") else 1.0)
    body_h = rng.uniform(0.45, 0.65) * (0.8 if style == "sports" else 1.0)
    wheel_r = rng.uniform(0.3, 0.42) * (1.15 if style in ("suv", "pickup") else 1.0)
    paint = _colour(rng)
    glass = (0.1, 0.13, 0.18) if rng.random() < 0.7 else (0.25, 0.3, 0.38)
    dark = (0.05, 0.05, 0.05)
    hx, hz = width / 2, length / 2
    y0 = clearance
    y1 = y0 + body_h
    boxes: list[tuple[tuple[float, float, float], tuple[float, float, float]]] = []
    colours: list[tuple[float, float, float]] = []
    glow: list[bool] = []

    def box(lo: tuple[float, float, float], hi: tuple[float, float, float],
            colour: tuple[float, float, float], emissive: bool = False) -> None:
        boxes.append((lo, hi))
        colours.append(colour)
        glow.append(emissive)

    box((-hx, y0, -hz), (hx, y1, hz), paint)  # the body
    # the cabin: where it sits and how tall, by style (its front is nearer the middle than
    # its back, so that the hood is longer than the trunk)
    cabin_h = rng.uniform(0.42, 0.6) * {"sports": 0.75, "suv": 1.25, "van": 1.5}.get(style, 1.0)
    inset = rng.uniform(0.08, 0.16)
    if style == "van":
        front, back = hz * rng.uniform(0.35, 0.55), -hz
    elif style == "pickup":
        front, back = hz * rng.uniform(0.15, 0.35), -hz * rng.uniform(0.05, 0.2)
    elif style in ("hatchback", "suv"):
        front, back = hz * rng.uniform(0.1, 0.3), -hz * rng.uniform(0.8, 0.95)
    else:  # sedan, sports
        front, back = hz * rng.uniform(0.05, 0.25), -hz * rng.uniform(0.45, 0.65)
    box((-hx + inset, y1, back), (hx - inset, y1 + cabin_h, front), glass)
    roof_t = 0.06
    box((-hx + inset, y1 + cabin_h, back), (hx - inset, y1 + cabin_h + roof_t, front), paint)
    top = y1 + cabin_h + roof_t
    if style == "pickup":  # the open bed: a dark floor between the body's side walls
        box((-hx + 0.08, y1 - 0.25, -hz + 0.08), (hx - 0.08, y1 + 0.005, back - 0.05), dark)
    # wheels, a little outside the body
    axle = hz * rng.uniform(0.6, 0.75)
    tread = rng.uniform(0.22, 0.3)
    for zc in (axle, -axle):
        for side in (-1, 1):
            x_in, x_out = side * (hx - tread * 0.6), side * (hx + tread * 0.4)
            box((min(x_in, x_out), 0.0, zc - wheel_r), (max(x_in, x_out), 2 * wheel_r,
                                                         zc + wheel_r), dark)
    # lights: head lights (white-yellow) in front, tail lights (red) behind
    lw = width * rng.uniform(0.14, 0.22)
    lh = body_h * rng.uniform(0.22, 0.35)
    ly = y1 - lh - body_h * 0.15
    head = (1.0, 0.95, rng.uniform(0.55, 0.8))
    tail = (0.95, rng.uniform(0.02, 0.15), 0.05)
    wrap = rng.uniform(0.2, 0.35)  # how far the lights wrap around the corners
    for side in (-1, 1):  # the lights wrap around the corners: seen from the side too
        x_a, x_b = side * (hx + 0.03), side * (hx - lw)
        box((min(x_a, x_b), ly, hz - wrap), (max(x_a, x_b), ly + lh, hz + 0.04), head, True)
        box((min(x_a, x_b), ly, -hz - 0.04), (max(x_a, x_b), ly + lh, -hz + wrap), tail, True)
    # a dark grille between the head lights: the front from far off
    box((-hx + lw + 0.1, ly - lh * 0.5, hz), (hx - lw - 0.1, ly + lh, hz + 0.03), dark)
    # details
    if style in ("sports", "sedan") and rng.random() < 0.5:  # a spoiler over the trunk
        sy = y1 + rng.uniform(0.15, 0.3)
        box((-hx + 0.1, sy, -hz), (hx - 0.1, sy + 0.06, -hz + 0.35), paint)
        box((-hx + 0.3, y1, -hz + 0.1), (-hx + 0.4, sy, -hz + 0.25), dark)
        box((hx - 0.4, y1, -hz + 0.1), (hx - 0.3, sy, -hz + 0.25), dark)
    if style in ("suv", "van", "hatchback") and rng.random() < 0.5:  # a roof rack
        rh = rng.uniform(0.08, 0.15)
        for side in (-1, 1):
            x_a, x_b = side * (hx - inset - 0.05), side * (hx - inset - 0.15)
            box((min(x_a, x_b), top, back + 0.1), (max(x_a, x_b), top + rh, front - 0.1), dark)
        if rng.random() < 0.5:  # luggage
            bag = _colour(rng)
            box((-hx + inset + 0.2, top, back * 0.6), (hx - inset - 0.2, top + rh * 2.5,
                                                      front * 0.3), bag)
    if rng.random() < 0.4:  # a contrasting stripe along the body's sides
        stripe = _colour(rng)
        sy = y0 + body_h * rng.uniform(0.35, 0.6)
        box((-hx - 0.01, sy, -hz + 0.2), (hx + 0.01, sy + 0.08, hz - 0.2), stripe)
    return CarModel(
        car=car, style=style,
        boxes=np.asarray(boxes, dtype=np.float64),
        colours=np.asarray(colours, dtype=np.float64),
        emissive=np.asarray(glow, dtype=bool),
    )
