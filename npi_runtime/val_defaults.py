"""Default validation lengths that follow the task (docs/training.md, "Default validation").

Validation runs the network in closed loop on `val_count` inputs at each validation length,
so its cost grows with the task's steps per input: 8 inputs at 43 and 103 cells of bubble
sort are about 1.2 M steps (190 s on 2 cores), the addition lengths about 11,600 steps. The
rule here:

* the steps per input are measured on the training traces and fitted as `steps ~ c * n^k`
  (least squares on log steps against log length, over the longer half of the training
  lengths, where the growth is the task's own and not a constant overhead);
* a validation may cost `budget` reference steps: the larger of `MIN_BUDGET` and
  `EPOCH_SHARE` of an epoch's steps (every training trace once);
* the targets are the earlier fixed defaults 2L+3 and 5L+3 (L the longest training
  length); the shorter one may cost a third of the budget, the longer one two thirds; a
  length that costs more is shortened to the longest that fits, never below L+1
  (validation must still probe inputs longer than any training input). Lengths that come
  out equal are kept once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: a validation may always cost this many reference steps (8 inputs at addition's 43 and
#: 103 digits are about 11,600)
MIN_BUDGET = 16_000
#: ... or this share of an epoch's steps, when that is more
EPOCH_SHARE = 0.05


@dataclass(frozen=True)
class ValidationPlan:
    """The derived validation lengths and how they were chosen (recorded in the manifest)."""

    lengths: tuple[int, ...]
    count: int
    budget: int  # reference steps a validation may cost
    c: float  # steps ~ c * n^k, fitted on the training traces
    k: float
    cost: int  # the predicted reference steps of one validation at `lengths`

    def to_json(self) -> dict:
        return {"lengths": list(self.lengths), "count": self.count, "budget": self.budget,
                "steps_fit": {"c": round(self.c, 4), "k": round(self.k, 4)},
                "predicted_steps": self.cost}

    def describe(self) -> str:
        return (f"validation at lengths {', '.join(map(str, self.lengths))}, {self.count} "
                f"inputs each (derived: steps ~ {self.c:.3g} * n^{self.k:.2f} on the "
                f"training traces, about {self.cost:,} steps per validation, budget "
                f"{self.budget:,}; --val-lengths overrides)")


def fit_growth(steps_by_length: dict[int, float]) -> tuple[float, float]:
    """`(c, k)` of `steps ~ c * n^k` over the longer half of the lengths (n >= 1)."""
    points = sorted((n, s) for n, s in steps_by_length.items() if n >= 1 and s > 0)
    if not points:
        return 1.0, 1.0
    longest = points[-1][0]
    upper = [(n, s) for n, s in points if n >= longest / 2]
    if len(upper) < 2:
        upper = points
    if len(upper) < 2 or upper[0][0] == upper[-1][0]:
        n, s = upper[-1]
        return s / n, 1.0  # one length: assume linear growth
    xs = [math.log(n) for n, _ in upper]
    ys = [math.log(s) for _, s in upper]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    k = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / \
        sum((x - mx) ** 2 for x in xs)
    k = min(max(k, 0.5), 4.0)  # a sane growth, whatever noise the traces have
    c = math.exp(my - k * mx)
    return c, k


def plan_validation(records: Sequence[dict], count: int,
                    max_length: int | None = None) -> ValidationPlan:
    """The default validation of a training set of trace records, `count` inputs a length.

    Where the environment's lengths end at `max_length` (the camera's 9 views), no input is
    longer than the training ones can be: validation takes every length from the shortest
    trained one to `max_length`, on fresh inputs."""
    total: dict[int, int] = {}
    runs: dict[int, int] = {}
    epoch = 0
    for rec in records:
        n, s = int(rec["length"]), len(rec["steps"])
        total[n] = total.get(n, 0) + s
        runs[n] = runs.get(n, 0) + 1
        epoch += s
    c, k = fit_growth({n: total[n] / runs[n] for n in total})
    longest = max(total, default=1)
    budget = max(MIN_BUDGET, round(EPOCH_SHARE * epoch))

    def steps(n: int) -> float:
        return c * n ** k

    def fit(target: int, share: float) -> int:
        most = share / max(count, 1)  # steps one input may take
        if steps(target) <= most:
            return target
        n = math.floor((most / c) ** (1 / k))
        return max(longest + 1, min(target, n))

    if max_length is not None:
        lengths = list(range(min(min(total, default=1), max_length), max_length + 1))
    else:
        lengths = sorted({fit(2 * longest + 3, budget / 3),
                          fit(5 * longest + 3, budget * 2 / 3)})
    cost = round(sum(count * steps(n) for n in lengths))
    return ValidationPlan(tuple(lengths), count, budget, c, k, cost)
