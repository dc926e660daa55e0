"""Trace sets: which inputs `npi compile` runs, and statistics over the traces it writes.

Every trace has its own seed, derived from the compile seed, the length and the trace's index
within its length. Its input is `env.sample_input(random.Random(seed), length)`, so the `seed`
field of a record regenerates that record alone, `--count 64` extends `--count 32` (the first
32 traces of each length are the same), and adding a length leaves the other lengths' traces
as they were.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from npi_dsl.envs.base import JSON
from npi_dsl.interpreter import TaskRunner

#: the most traces one length may ask for, and the longest length (sanity limits for typos)
MAX_LENGTH = 10_000_000

_RANGE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")


def parse_lengths(text: str) -> list[int]:
    """`A..B` (inclusive), a comma list `5,10,20`, or one length; ValueError when malformed."""
    text = text.strip()
    m = _RANGE.match(text)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        if a < 1:
            raise ValueError(f"lengths start at 1, got {text!r}")
        if b < a:
            raise ValueError(f"empty range {text!r}: write A..B with A <= B")
        if b > MAX_LENGTH:
            raise ValueError(f"length {b} is past the limit of {MAX_LENGTH}")
        return list(range(a, b + 1))
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(not p.isdigit() for p in parts):
        raise ValueError(f"expected A..B (e.g. 1..20) or a comma list (e.g. 5,10,20), "
                         f"got {text!r}")
    lengths = [int(p) for p in parts]
    if any(n < 1 for n in lengths):
        raise ValueError(f"lengths start at 1, got {text!r}")
    if any(n > MAX_LENGTH for n in lengths):
        raise ValueError(f"a length is past the limit of {MAX_LENGTH}: {text!r}")
    return lengths


def trace_seed(seed: int, length: int, index: int) -> int:
    """The seed of trace `index` of length `length` in a compile seeded with `seed` (63 bits)."""
    digest = hashlib.blake2b(f"npi-trace/{seed}/{length}/{index}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def iter_inputs(runner: TaskRunner, lengths: list[int], count: int,
                seed: int) -> Iterator[tuple[int, JSON]]:
    """(trace seed, normalised input) for every trace of a compile, in output order."""
    sample = runner.sample_input
    parse = runner.parse_input
    for length in lengths:
        for index in range(count):
            s = trace_seed(seed, length, index)
            yield s, parse(sample(random.Random(s), length))


def compile_lines(runner: TaskRunner, lengths: list[int], count: int,
                  seed: int) -> Iterator[str]:
    """The JSON lines (without newline) of a compile; raises NpiRuntimeError on a bad run."""
    run_line = runner.run_line
    for s, value in iter_inputs(runner, lengths, count, seed):
        yield run_line(value, s, normalized=True)


@dataclass
class _ProgramStats:
    frames: int = 0
    steps: int = 0
    min_steps: int | None = None
    max_steps: int = 0
    calls: int = 0
    observations: set[tuple[int, ...]] = field(default_factory=set)


class TraceStats:
    """`npi compile --stats`: steps per frame, calls and distinct observations per program."""

    def __init__(self) -> None:
        self.traces = 0
        self.steps = 0
        self.programs: dict[str, _ProgramStats] = defaultdict(_ProgramStats)
        self.actions: dict[int, int] = defaultdict(int)

    def add(self, record: dict[str, Any] | str) -> None:
        if isinstance(record, str):
            record = json.loads(record)
        steps = record["steps"]
        self.traces += 1
        self.steps += len(steps)
        per_frame: dict[int, int] = defaultdict(int)
        program_of: dict[int, str] = {}
        progs = self.programs
        for s in steps:
            f = s["frame"]
            per_frame[f] += 1
            p = s["program"]
            program_of[f] = p
            st = progs[p]
            st.observations.add(tuple(s["obs"]))
            call = s["call"]
            if call == "ACT":
                self.actions[s["call_args"][0]] += 1
            if call is not None:
                progs[call].calls += 1
        for f, n in per_frame.items():
            st = progs[program_of[f]]
            st.frames += 1
            st.steps += n
            st.max_steps = max(st.max_steps, n)
            st.min_steps = n if st.min_steps is None else min(st.min_steps, n)

    def rows(self) -> list[dict[str, Any]]:
        """One row per program (ACT included), in order of first appearance."""
        rows = []
        for name, st in self.programs.items():
            rows.append({
                "program": name,
                "frames": st.frames,
                "calls": st.calls,
                "steps_per_frame_mean": round(st.steps / st.frames, 3) if st.frames else None,
                "steps_per_frame_min": st.min_steps,
                "steps_per_frame_max": st.max_steps if st.frames else None,
                "distinct_observations": len(st.observations) if st.frames else None,
            })
        return rows
