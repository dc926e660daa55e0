"""`npi compile --jobs 1` against `--jobs 2` (and more), end to end (not a test).

    python benchmarks/bench_compile_jobs.py [--repeat 7] [--jobs 2] [--forced]

Every run is a fresh `npi compile` process (imports, parsing and the fork of the workers
included: what a user waits for), timed by wall clock, beside the time the command
reports itself (from after its imports and the program's compilation); the runs of the different job
counts are interleaved, so that load changes on a shared machine hit them alike, and the
best and the median of --repeat are printed. Each case checks that every job count wrote
the bytes of --jobs 1.

Cases: the issue's two acceptance workloads (640 addition traces of lengths 1..20 and 64
traces of 1,000 digits, both to .jsonl.gz), the 1,000-digit one also to plain .jsonl, and
64 sorting traces of 50 elements. `--forced` also runs the small case with the small-work
threshold (`npi_dsl.parallel.MIN_PARALLEL_SECONDS`) set to 0, to show why it exists.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: runs the CLI; with FORCE, every --jobs N > 1 uses workers, however small the compile
DRIVER = ("import sys, npi_dsl.parallel as p\n"
          "if sys.argv[1] == 'force': p.MIN_PARALLEL_SECONDS = 0\n"
          "del sys.argv[1]\n"
          "from npi_runtime.cli import main\n"
          "main()\n")

CASES = [
    ("addition 640 (1..20 x 32) .gz", "addition.npi", ["--count", "32", "--length", "1..20"],
     ".jsonl.gz", False),
    ("addition 64 x 1000 digits .gz", "addition.npi", ["--count", "64", "--length", "1000"],
     ".jsonl.gz", False),
    ("addition 64 x 1000 digits", "addition.npi", ["--count", "64", "--length", "1000"],
     ".jsonl", False),
    ("sorting 64 x 50 .gz", "sorting.npi", ["--count", "64", "--length", "50"],
     ".jsonl.gz", False),
]
FORCED = ("addition 640 .gz, forced", "addition.npi", ["--count", "32", "--length", "1..20"],
          ".jsonl.gz", True)


def run(program: str, args: list[str], out: str, jobs: int, force: bool) -> tuple[float, float]:
    """(wall seconds of the process, the seconds `npi compile` reports: after its start)."""
    cmd = [sys.executable, "-c", DRIVER, "force" if force else "-", "compile",
           str(ROOT / "programs" / program), *args, "--seed", "0", "-o", out,
           "--jobs", str(jobs)]
    t = time.perf_counter()
    done = subprocess.run(cmd, check=True, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    m = re.search(r" in (\d+\.\d+) s$", done.stderr, flags=re.M)
    return wall, float(m.group(1)) if m else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--jobs", type=int, nargs="+", default=[2])
    ap.add_argument("--forced", action="store_true")
    args = ap.parse_args()
    counts = [1, *[j for j in args.jobs if j != 1]]
    cases = CASES + ([FORCED] if args.forced else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="npi-bench-jobs-") as tmp:
        for title, program, cargs, suffix, force in cases:
            paths = {j: os.path.join(tmp, f"jobs{j}{suffix}") for j in counts}
            times: dict[int, list[float]] = {j: [] for j in counts}
            inner: dict[int, list[float]] = {j: [] for j in counts}
            for j in counts:  # warm up (page cache, .pyc)
                run(program, cargs, paths[j], j, force)
            for _ in range(args.repeat):
                for j in counts:
                    wall, reported = run(program, cargs, paths[j], j, force)
                    times[j].append(wall)
                    inner[j].append(reported)
            same = all(filecmp.cmp(paths[1], paths[j], shallow=False) for j in counts)
            rows.append((title, {j: (min(t), statistics.median(t)) for j, t in times.items()},
                         same, {j: statistics.median(t) for j, t in inner.items()}))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs "
          f"({len(os.sched_getaffinity(0))} usable), wall time of a whole `npi compile` "
          f"process, best / median of {args.repeat} interleaved runs")
    head = f"{'case':<32}" + "".join(f" {'jobs ' + str(j) + ' best/median':>23}"
                                     for j in counts)
    head += "".join(f" {'ratio 1/' + str(j):>9}" for j in counts[1:])
    head += "".join(f" {'inner ' + str(j):>8}" for j in counts)
    head += "".join(f" {'ratio':>6}" for j in counts[1:]) + "  identical"
    print(head)
    print("-" * len(head))
    for title, t, same, inner in rows:
        line = f"{title:<32}" + "".join(f" {t[j][0]:10.3f}s /{t[j][1]:7.3f}s" for j in counts)
        line += "".join(f" {t[1][1] / t[j][1]:8.2f}x" for j in counts[1:])
        line += "".join(f" {inner[j]:7.2f}s" for j in counts)
        line += "".join(f" {inner[1] / inner[j]:5.2f}x" for j in counts[1:])
        print(line + f"  {'yes' if same else 'NO'}")
    print("ratio: median of jobs 1 / median of jobs N (above 1: N processes are faster); "
          "inner: the median of the time npi compile reports (after its imports and the "
          "program's compilation), 10 ms resolution")


if __name__ == "__main__":
    main()
