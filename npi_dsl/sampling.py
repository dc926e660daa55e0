"""Which inputs `npi compile` runs: lengths, per-trace seeds, and the inputs they draw.

Every trace has its own seed, derived from the compile seed, the length and the trace's index
within its length. Its input is `env.sample_input(random.Random(seed), length)`, so the `seed`
field of a record regenerates that record alone, `--count 64` extends `--count 32` (the first
32 traces of each length are the same), and adding a length leaves the other lengths' traces
as they were. Coverage-driven compiles (`--cover`) choose among candidate inputs instead:
npi_dsl/coverage.py.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator

from npi_dsl.envs.base import JSON
from npi_dsl.interpreter import TaskRunner

#: the longest input length a --length may ask for (a sanity limit against typos)
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
