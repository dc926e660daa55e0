"""How fast the learnability lint is, against the plain reference interpreter on the same inputs.

    python benchmarks/bench_lint.py [--repeat 3]

Per bundled program, the inputs of `npi lint --lengths 1..20 --count 100` (addition's
acceptance case; 1..10 x 50, the lint's defaults, for the O(n^2) array programs): `reference`
runs them through the reference interpreter alone (the baseline: what the lint must at least
do), `lint` runs the whole lint (the reference with its condition hook, per-frame history
hashing and the pair search). The ratio is lint / reference. Times are the best of --repeat
runs (the machine may be shared). Target: addition under 10 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npi_dsl.checker import load  # noqa: E402
from npi_dsl.interpreter import compile_task  # noqa: E402
from npi_dsl.lint import lint  # noqa: E402
from npi_dsl.sampling import iter_inputs  # noqa: E402

CASES = [("addition", range(1, 21), 100), ("reverse", range(1, 21), 100),
         ("sorting", range(1, 11), 50), ("selection_sort", range(1, 11), 50)]


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'program':<16}{'lengths':>9}{'count':>7}{'reference s':>13}{'lint s':>9}"
          f"{'ratio':>8}{'findings':>10}")
    for name, lengths, count in CASES:
        checked = load(ROOT / "programs" / f"{name}.npi")
        runner = compile_task(checked, engine="reference")
        ls = list(lengths)

        def reference() -> None:
            for _s, value in iter_inputs(runner, ls, count, 0):  # noqa: B023
                runner.run_result(value)  # noqa: B023

        found: list[int] = []

        def whole() -> None:
            found[:] = [len(lint(checked, None, ls, count).findings)]  # noqa: B023

        ref = _best(reference, args.repeat)
        lin = _best(whole, args.repeat)
        print(f"{name:<16}{f'{ls[0]}..{ls[-1]}':>9}{count:>7}{ref:>13.2f}{lin:>9.2f}"
              f"{lin / ref:>8.2f}{found[0]:>10}")


if __name__ == "__main__":
    main()
