"""`npi compile --stats`: steps per frame, calls and distinct observations per program."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from npi_dsl.trace import ACT


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
            if call == ACT:
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
