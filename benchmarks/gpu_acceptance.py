"""Issue 12's GPU acceptance, measured in one run: the one script to take to a GPU machine.

    python benchmarks/gpu_acceptance.py [--device cuda] [--out DIR] [--quick]
        [--train-args "--precision bf16"] [--cpu-baseline]

In order, each through the installed `npi` (so it measures what a user runs):

1. compile the paper's addition set (32 traces of each length 1-20);
2. `npi train ... --device D`: the training seconds the run records (target: exact at 1000
   digits in under 20 s of training), then `npi verify -l 1000 -n 20 --device D`;
3. `npi verify -l 10000 -n 256 --device D --jobs auto` (target: under 60 s, exact);
4. `benchmarks/bench_executor.py RUN --device D --batches 256,4096`: the executor's
   throughput on the device as a fraction of a bare LSTM step (with head, argmax and feedback)
   under a CUDA graph, measured in the same run (goal: at least half).

`--cpu-baseline` also trains on the CPU in the same run (the ratio is printed). `--quick`
shrinks every size (a few minutes on a laptop CPU with `--device cpu`: how the script itself
is checked without a GPU). Everything is printed as one table at the end, and written to
DIR/gpu_acceptance.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDITION = ROOT / "programs" / "addition.npi"


def npi(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("npi")), *args]


def timed(cmd: list[str], log: Path) -> tuple[float, int, str]:
    """(wall seconds, exit status, stdout) of `cmd`, its stderr appended to `log`."""
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    with open(log, "a") as err:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, cwd=ROOT, text=True)
    return time.perf_counter() - t0, p.returncode, p.stdout


def exact(stdout: str) -> bool | None:
    try:
        report = json.loads(stdout)
    except ValueError:
        return None
    return all(r["result_exact"] == 1.0 and r["trace_exact"] == 1.0
               for r in report["lengths"])


def train(out: Path, name: str, device: str, count: int, extra: list[str], log: Path,
          rows: list[dict], target: float | None) -> Path:
    run = out / name
    wall, status, _ = timed(npi("train", str(ADDITION), str(out / "add.jsonl.gz"), "-o",
                                str(run), "--device", device, *extra), log)
    seconds = None
    if status == 0:
        seconds = json.loads((run / "manifest.json").read_text())["progress"]["seconds"]
    rows.append({"what": f"train addition on {device} (training s)", "value": seconds,
                 "wall": wall, "status": status, "target": target,
                 "ok": status == 0 and (target is None or seconds < target)})
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="gpu-acceptance")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--train-args", default="", help="more `npi train` options, one string")
    ap.add_argument("--cpu-baseline", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "stderr.log"
    per_length, long_len, long_n, batches = (32, 10_000, 256, "256,4096") if not a.quick \
        else (8, 300, 16, "16,64")
    rows: list[dict] = []
    print(f"{os.cpu_count()} CPUs; device {a.device}; out {out}", flush=True)
    wall, status, _ = timed(npi("compile", str(ADDITION), "--count", str(per_length),
                                "--length", "1..20", "--seed", "0", "-o",
                                str(out / "add.jsonl.gz")), log)
    rows.append({"what": "compile the training set", "value": wall, "wall": wall,
                 "status": status, "target": None, "ok": status == 0})
    extra = a.train_args.split()
    run = train(out, "run", a.device, per_length, extra, log, rows, None if a.quick else 20.0)
    if a.cpu_baseline:
        train(out, "run-cpu", "cpu", per_length, [x for x in extra if x != "--precision"],
              log, rows, None)
    wall, status, stdout = timed(npi("verify", str(run), str(ADDITION), "-l", "1000", "-n",
                                     "20", "--device", a.device, "--json", "--require", "0"),
                                 log)
    rows.append({"what": "verify 20 x 1000 digits: exact", "value": exact(stdout),
                 "wall": wall, "status": status, "target": True,
                 "ok": status == 0 and exact(stdout) is True})
    wall, status, stdout = timed(npi("verify", str(run), str(ADDITION), "-l", str(long_len),
                                     "-n", str(long_n), "--device", a.device, "--jobs", "auto",
                                     "--json", "--require", "0"), log)
    rows.append({"what": f"verify {long_n} x {long_len} digits (wall s)", "value": wall,
                 "wall": wall, "status": status, "target": None if a.quick else 60.0,
                 "ok": status == 0 and exact(stdout) is True
                 and (a.quick or wall < 60.0)})
    wall, status, stdout = timed([sys.executable, str(ROOT / "benchmarks" / "bench_executor.py"),
                                  str(run), "--threads", "1", "--steps",
                                  "400" if a.quick else "2000", "--device", a.device,
                                  "--batches", batches], log)
    print(stdout)
    fractions = [line.split("|")[-1].strip() for line in stdout.splitlines()
                 if line.strip()[:1].isdigit() and line.count("|") == 6]
    rows.append({"what": "executor on the device, of a CUDA-graph LSTM step "
                 f"({batches} instances)", "value": fractions, "wall": wall,
                 "status": status, "target": ">= 0.5x", "ok": status == 0})
    print(f"\n{'measurement':<62} {'value':>16} {'wall s':>8} {'target':>8}  ok")
    for r in rows:
        v = r["value"]
        shown = f"{v:.1f}" if isinstance(v, float) else str(v)
        print(f"{r['what']:<62} {shown:>16} {r['wall']:>8.1f} {str(r['target']):>8}  "
              f"{'yes' if r['ok'] else 'NO'}")
    (out / "gpu_acceptance.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
