"""Execution traces: the `npi-trace/1` schema, its writer and its validating reader.

A trace file is JSON Lines: one trace (one run of a task on one input) per line, optionally
gzip-compressed (`.gz`). docs/trace-format.md is the reference; in short, a record is

    {"schema": "npi-trace/1", "task": ..., "env": {...}, "programs": [...],
     "source_hash": ..., "seed": ..., "length": ..., "input": ..., "result": ..., "steps": [...]}

and each step is `{frame, depth, program, args, obs, call, call_args, end}`, in execution order.

This module is the public face of four others, by concern:

* `npi_dsl.trace_schema`: the fields of a record and of a step and their order (the one
  owner of the format), `env_header`, `make_record`, `make_step`, `source_hash`, and the text
  templates the compiled engine's fast writer is built from;
* `npi_dsl.trace_files`: `TraceWriter` / `write_traces` (atomic, reproducible, gzip) and
  `read_traces` (validating; defects are `TraceFormatError`, str `PATH:LINE: message`);
* `npi_dsl.trace_validate`: `validate_record`;
* `npi_dsl.trace_frames`: `iter_frames(steps)` rebuilds the frames and the call tree.

These modules depend on nothing but the standard library and `npi_dsl.envs.base`.
"""

from __future__ import annotations

from npi_dsl.trace_files import TraceWriter, read_traces, write_traces
from npi_dsl.trace_frames import Frame, iter_frames
from npi_dsl.trace_schema import (
    ACT,
    RECORD_KEYS,
    SCHEMA,
    STEP_KEYS,
    TraceFormatError,
    env_header,
    make_record,
    make_step,
    source_hash,
)
from npi_dsl.trace_validate import validate_record

__all__ = [
    "ACT", "RECORD_KEYS", "SCHEMA", "STEP_KEYS", "Frame", "TraceFormatError", "TraceWriter",
    "env_header", "iter_frames", "make_record", "make_step", "read_traces", "source_hash",
    "validate_record", "write_traces",
]
