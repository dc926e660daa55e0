"""The reference side of verification: what the symbolic reference decides, compactly.

Verification compares the network's decisions with the reference's, step by step. The
reference's side of that comparison is a `Reference`: the result, one row of five integers
per step (`end`, program index in the model's memory or -1 on a return, three arguments) and
the deepest frame. That is 20 bytes a step, where a trace record with its step dicts and
observations is several kilobytes a step (a 10,000-digit addition has 100,000 steps), and it is
built from the runner's call tuples (`run_calls`), with no step dicts and no JSON.

`ReferenceSide` computes the references of inputs in order, chunk by chunk, in this process
or, with `jobs` > 1, in that many forked worker processes that run ahead of the network by a
bounded number of chunks (so memory stays bounded however many inputs there are). The result
is the same for any `jobs`: each input's reference depends on the input alone.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from npi_dsl.runner_base import RunnerBase
from npi_dsl.trace import ACT

#: the columns of a reference's decision rows
END, PROGRAM, ARGS = 0, 1, slice(2, 5)


@dataclass(slots=True)
class Reference:
    """One input's reference run, as verification needs it."""

    result: Any
    decisions: np.ndarray  # [steps, 5] int32: end, program (-1 on a return), 3 arguments
    depth: int  # the deepest frame (the entry's is 0)

    @property
    def steps(self) -> int:
        return int(self.decisions.shape[0])


def call_index(runner: RunnerBase, memory: Sequence[str]) -> dict[str, int]:
    """The memory index of each bare program name a trace of `runner`'s task calls."""
    index = {ACT: list(memory).index(ACT)}
    for q in runner.task.programs:
        index[q.rsplit(".", 1)[-1]] = list(memory).index(q)
    return index


def decision_rows(calls: Sequence[tuple[Any, Any, bool]], index: Mapping[str, int]
                  ) -> np.ndarray:
    """[steps, 5] int32 rows from `(call, call_args, end)` tuples."""
    rows = np.zeros((len(calls), 5), dtype=np.int32)
    if calls:
        ends = np.fromiter((e for _, _, e in calls), dtype=bool, count=len(calls))
        rows[:, END] = ends
        rows[:, PROGRAM] = np.fromiter((-1 if e else index[c] for c, _, e in calls),
                                       dtype=np.int32, count=len(calls))
        rows[~ends, 2:] = np.array([a for _, a, e in calls if not e], dtype=np.int32
                                   ).reshape(-1, 3)
    return rows


def reference_of(runner: RunnerBase, value: Any, index: Mapping[str, int]) -> Reference:
    """The reference of one normalised input."""
    result, calls, depth = runner.run_calls(value)
    return Reference(result, decision_rows(calls, index), depth)


def as_decisions(rows: np.ndarray) -> list[tuple[bool, int, tuple[int, int, int]]]:
    """Rows back as the executor's `Decision` tuples (for messages and tests)."""
    from npi_runtime.executor import as_decision

    return [as_decision(*r) for r in rows.tolist()]


# ---- worker processes (fork: they inherit the runner; nothing of it is pickled)

_WORKER: tuple[RunnerBase, Mapping[str, int]] | None = None


def _work(values: list[Any]) -> bytes | int:
    """A worker's chunk: its references pickled for the pipe back to the parent (our own
    processes; nothing a user gives is unpickled), or the position of the first input whose
    run failed: the parent runs that one again itself, which raises the very error that
    `jobs` 1 raises (errors carry sources and call stacks that do not all pickle)."""
    assert _WORKER is not None
    runner, index = _WORKER
    refs = []
    for i, v in enumerate(values):
        try:
            refs.append(reference_of(runner, v, index))
        except BaseException:  # noqa: BLE001 - raised again by the parent
            return i
    return pickle.dumps(refs, protocol=pickle.HIGHEST_PROTOCOL)


class ReferenceSide:
    """References of inputs in order, in this process (`jobs` 1) or in `jobs` forked
    worker processes; use as a context manager (the workers stop at its end)."""

    def __init__(self, runner: RunnerBase, memory: Sequence[str], jobs: int = 1) -> None:
        self.runner = runner
        self.index = call_index(runner, memory)
        self.jobs = max(1, int(jobs))
        if "fork" not in multiprocessing.get_all_start_methods():
            self.jobs = 1  # the workers inherit the runner by forking
        self._pool: Any = None

    def __enter__(self) -> ReferenceSide:
        if self.jobs > 1:
            global _WORKER
            _WORKER = (self.runner, self.index)
            try:
                self._pool = multiprocessing.get_context("fork").Pool(self.jobs)
            finally:
                _WORKER = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def chunks(self, batches: Iterable[Sequence[Any]]) -> Iterator[list[Reference]]:
        """For each batch of normalised inputs, its references. With workers, each batch
        is cut into `jobs` pieces and up to two batches are computed ahead."""
        if self._pool is None:
            for values in batches:
                yield [reference_of(self.runner, v, self.index) for v in values]
            return
        pending: deque[list[Any]] = deque()
        batches = iter(batches)

        def submit() -> bool:
            values = next(batches, None)
            if values is None:
                return False
            values = list(values)
            size = max(1, -(-len(values) // self.jobs))
            pending.append([(values[lo : lo + size],
                             self._pool.apply_async(_work, (values[lo : lo + size],)))
                            for lo in range(0, len(values), size)])
            return True

        for _ in range(2):
            submit()
        while pending:
            parts = pending.popleft()
            submit()
            out: list[Reference] = []
            for values, part in parts:
                got = part.get()
                if isinstance(got, int):  # raises as in this process
                    reference_of(self.runner, values[got], self.index)
                    raise RuntimeError("a reference run failed in a worker process and not "
                                       "when run again")
                out += pickle.loads(got)
            yield out
