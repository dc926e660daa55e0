"""How much CPU a fresh `npi` process spends: `npi check` and `npi compile` on addition.npi.

    python benchmarks/bench_startup.py [--runs 7] [--json]

Each command runs --runs times in a fresh process, after one run that is not counted (it
writes the bytecode caches a normal installation has); a run's CPU time is the user + system
time of the child (os.wait4), so other load on a shared machine inflates it little. The table
gives the median and the best, against the target of issue 12: each command under 0.25 s of
CPU, with `python -c pass` as the baseline (the interpreter's own start).

The commands are the installed `npi` script of this interpreter's environment:

* `npi check programs/addition.npi`
* `npi compile programs/addition.npi -n 1 -l 1 -o TMP` (a temporary file)
* `npi compile programs/addition.npi -n 1 -l 1` (to stdout, discarded)

Children run with PYTHONDONTWRITEBYTECODE unset, so that the warm-up run caches the bytecode of
the project's modules as an installed package has it (pip compiles at install): a shell that
sets it and has never written the caches compiles every module from source at each start,
about 0.05-0.1 s more.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDITION = ROOT / "programs" / "addition.npi"
TARGET_S = 0.25


def _npi() -> str:
    script = Path(sys.executable).parent / "npi"
    found = str(script) if script.exists() else shutil.which("npi")
    if found is None:
        raise SystemExit("no `npi` script: pip install -e . first")
    return found


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """The user + system CPU seconds of one run of `argv` (its output discarded)."""
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {stderr.decode()}")
    return usage.ru_utime + usage.ru_stime


def measure(runs: int) -> list[dict[str, object]]:
    npi = _npi()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "traces.jsonl")
        commands = [
            ("python -c pass", [sys.executable, "-c", "pass"], False),
            ("npi check programs/addition.npi", [npi, "check", str(ADDITION)], True),
            ("npi compile programs/addition.npi -n 1 -l 1 -o TMP",
             [npi, "compile", str(ADDITION), "-n", "1", "-l", "1", "-o", out], True),
            ("npi compile programs/addition.npi -n 1 -l 1 (stdout)",
             [npi, "compile", str(ADDITION), "-n", "1", "-l", "1"], True),
        ]
        for name, argv, targeted in commands:
            cpu_seconds(argv, env)  # warm-up: bytecode caches, the page cache
            times = [cpu_seconds(argv, env) for _ in range(runs)]
            median = statistics.median(times)
            rows.append({"command": name, "median_cpu_s": median, "best_cpu_s": min(times),
                         "target_s": TARGET_S if targeted else None,
                         "ok": median < TARGET_S if targeted else None})
    return rows


def _versions() -> str:
    """What the time depends on most: the interpreter, typer (0.29 coerces every parameter
    through pydantic) and lark."""
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {sys.version.split()[0]}"]
    for name in ("typer", "lark"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"no {name}")
    return ", ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args()
    rows = measure(args.runs)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"CPU seconds (user + sys) of a fresh process, median / best of {args.runs} "
              f"({_versions()})")
        print(f"{'command':<56}{'median':>8}{'best':>8}{'target':>8}  result")
        for r in rows:
            target = f"{r['target_s']:.2f}" if r["target_s"] is not None else "-"
            result = "baseline" if r["ok"] is None else ("pass" if r["ok"] else "FAIL")
            print(f"{r['command']:<56}{r['median_cpu_s']:>8.3f}{r['best_cpu_s']:>8.3f}"
                  f"{target:>8}  {result}")
    return 0 if all(r["ok"] is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
