"""Coverage-driven inputs (`npi compile --cover`): traces chosen to cover decision contexts.

A decision context is what the network sees at one decision: the frame's program, its
arguments and the observation. For every trace slot a pool of candidate inputs is drawn and
run; the slot keeps the candidate that adds the most contexts not yet covered
(docs/tasks.md, "Coverage-driven inputs").
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from npi_dsl.envs.base import JSON
from npi_dsl.interpreter import TaskRunner
from npi_dsl.sampling import trace_seed

#: `npi compile --cover`: candidate inputs per trace when --pool is not given
DEFAULT_POOL = 64

#: a decision context: (qualified program, its 3 arguments, the observation)
Context = tuple[str, tuple[int, ...], tuple[int, ...]]


def cover_seed(seed: int, length: int, index: int, candidate: int) -> int:
    """The seed of candidate `candidate` for trace `index` of length `length` (63 bits).

    Candidate 0 is the plain compile's trace (`trace_seed`), so `--pool 1` writes the same
    traces as a compile without `--cover`.
    """
    if candidate == 0:
        return trace_seed(seed, length, index)
    digest = hashlib.blake2b(f"npi-cover/{seed}/{length}/{index}/{candidate}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def decision_contexts(record: dict[str, Any] | str,
                      programs: frozenset[str] | None = None) -> set[Context]:
    """What the network sees at each decision of a trace: the frame's program (qualified
    name), its arguments and the observation, one context per step (as a set).

    With `programs`, only the steps of frames running those programs (bare or qualified
    names) count.
    """
    if isinstance(record, str):
        record = json.loads(record)
    qualified: dict[str, str] = {}
    ambiguous: set[str] = set()
    for q in record["programs"]:
        bare = q.rpartition(".")[2]
        if bare in qualified:
            ambiguous.add(bare)
        qualified[bare] = q
    for bare in ambiguous:  # two files define the same bare name: keep what the step says
        qualified[bare] = bare
    contexts: set[Context] = set()
    add = contexts.add
    for s in record["steps"]:
        p = s["program"]
        q = qualified.get(p, p)
        if programs is None or p in programs or q in programs:
            add((q, tuple(s["args"]), tuple(s["obs"])))
    return contexts


@dataclass
class CoverPick:
    """One trace a coverage-driven compile chose: its line (or record) and what it added."""

    seed: int
    value: JSON
    line: str  # "" when `cover_picks(records=True)`
    steps: int
    candidate: int  # its index in the slot's pool (0 is the plain compile's input)
    new: int  # decision contexts it covered that no earlier trace had
    record: dict[str, Any] | None = None  # with `cover_picks(records=True)`


class Coverage:
    """The decision contexts covered so far, overall and per program."""

    def __init__(self) -> None:
        self.contexts: set[Context] = set()
        self.per_program: dict[str, int] = defaultdict(int)

    def __len__(self) -> int:
        return len(self.contexts)

    def new_in(self, contexts: set[Context]) -> int:
        return len(contexts - self.contexts)

    def add(self, contexts: set[Context]) -> int:
        """Mark contexts covered; returns how many were new."""
        fresh = contexts - self.contexts
        self.contexts |= fresh
        for program, _, _ in fresh:
            self.per_program[program] += 1
        return len(fresh)


#: `--cover-score`: how a candidate's new decision contexts are weighed
COVER_SCORES = ("count", "rarity")


def cover_programs(checked: Any, task: str, names: Iterable[str]) -> frozenset[str]:
    """The qualified names of `names` (bare or qualified) among the programs task `task`
    runs, for `cover_picks(programs=...)`; ValueError naming an unknown one."""
    info = checked.task(task)
    reachable = {checked.bare(q): q for q in info.programs}
    chosen = []
    for name in names:
        q = name if name in info.programs else reachable.get(name)
        if q is None:
            raise ValueError(f"task `{info.name}` runs no program {name!r} (it runs: "
                             f"{', '.join(sorted(reachable))})")
        chosen.append(q)
    return frozenset(chosen)


def _candidate(runner: TaskRunner, seed: int, length: int, index: int,
               j: int) -> tuple[int, JSON]:
    """Candidate j of trace slot (length, index): its seed and normalised input."""
    s = cover_seed(seed, length, index, j)
    return s, runner.parse_input(runner.sample_input(random.Random(s), length))


def cover_picks(runner: TaskRunner, lengths: list[int], count: int, seed: int, pool: int,
                coverage: Coverage | None = None,
                programs: frozenset[str] | None = None,
                on_candidate: Callable[[int, JSON], None] | None = None,
                score: str = "count", records: bool = False) -> Iterator[CoverPick]:
    """The traces of a coverage-driven compile, in output order (greedy, deterministic).

    For every trace slot (length, index) `pool` candidate inputs are drawn, candidate j from
    `cover_seed(seed, length, index, j)`, and the reference runs on each. The slot keeps the
    candidate whose trace adds the most decision contexts (`decision_contexts`) not covered
    by the traces kept before it; ties go to the lowest candidate index.

    `score="rarity"` weighs every new context by 1 / (the number of candidates, in the pools
    of all slots, whose trace has it), so rare contexts win over common ones that later
    slots will meet anyway. It runs every candidate of every slot before choosing (their
    contexts are kept as integer ids; the chosen candidates run again for their lines).

    Candidates run structured (`runner.run`: no JSON text is made for a candidate that is
    not kept); a chosen trace's line is made by running it again with `run_line`, or, with
    `records=True`, the pick carries its record instead of a line.

    Raises NpiRuntimeError on a bad run of any candidate.
    """
    if pool < 1:
        raise ValueError(f"the pool must hold at least 1 candidate, got {pool}")
    if score not in COVER_SCORES:
        raise ValueError(f"unknown cover score {score!r} (known: {', '.join(COVER_SCORES)})")
    if coverage is None:
        coverage = Coverage()
    if score == "rarity":
        yield from _rarity_picks(runner, lengths, count, seed, pool, coverage, programs,
                                 on_candidate, records)
        return
    run = runner.run
    for length in lengths:
        for index in range(count):
            best: tuple[int, int, int, JSON, dict[str, Any], set[Context]] | None = None
            for j in range(pool):
                s, value = _candidate(runner, seed, length, index, j)
                if on_candidate is not None:
                    on_candidate(s, value)
                record = run(value, s)
                contexts = decision_contexts(record, programs)
                new = coverage.new_in(contexts)
                if best is None or new > best[0]:
                    best = (new, j, s, value, record, contexts)
            assert best is not None
            new, j, s, value, record, contexts = best
            coverage.add(contexts)
            yield _pick(runner, s, value, j, new, record if records else None)


def _pick(runner: TaskRunner, s: int, value: JSON, j: int, new: int,
          record: dict[str, Any] | None) -> CoverPick:
    """The pick of candidate j: its record as given, or its line (run again as text)."""
    if record is not None:
        return CoverPick(seed=s, value=value, line="", steps=len(record["steps"]),
                         candidate=j, new=new, record=record)
    line = runner.run_line(value, s, normalized=True)
    return CoverPick(seed=s, value=value, line=line, steps=runner.last_steps, candidate=j,
                     new=new)


def _rarity_picks(runner: TaskRunner, lengths: list[int], count: int, seed: int, pool: int,
                  coverage: Coverage, programs: frozenset[str] | None,
                  on_candidate: Callable[[int, JSON], None] | None,
                  records: bool) -> Iterator[CoverPick]:
    run = runner.run
    ids: dict[Context, int] = {}
    frequency: list[int] = []  # by id: how many candidates have the context
    slots: list[tuple[int, int, list[tuple[int, ...]]]] = []
    for length in lengths:
        for index in range(count):
            candidates = []
            for j in range(pool):
                s, value = _candidate(runner, seed, length, index, j)
                if on_candidate is not None:
                    on_candidate(s, value)
                own = []
                for c in decision_contexts(run(value, s), programs):
                    k = ids.get(c)
                    if k is None:
                        k = ids[c] = len(frequency)
                        frequency.append(0)
                    frequency[k] += 1
                    own.append(k)
                own.sort()
                candidates.append(tuple(own))
            slots.append((length, index, candidates))
    weight = [1.0 / f for f in frequency]
    context_of = list(ids)
    covered = bytearray(len(frequency))
    for c in coverage.contexts:  # contexts covered before this compile (a caller's Coverage)
        k = ids.get(c)
        if k is not None:
            covered[k] = 1
    for length, index, candidates in slots:
        best_j, best_score = 0, -1.0
        for j, own in enumerate(candidates):
            total = 0.0
            for k in own:
                if not covered[k]:
                    total += weight[k]
            if total > best_score:
                best_j, best_score = j, total
        for k in candidates[best_j]:
            covered[k] = 1
        new = coverage.add({context_of[k] for k in candidates[best_j]})
        s, value = _candidate(runner, seed, length, index, best_j)
        yield _pick(runner, s, value, best_j, new, runner.run(value, s) if records else None)
