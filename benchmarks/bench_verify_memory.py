"""Peak memory and time of `npi verify` against input length: the streaming verify beside
the previous one, measured in the same run.

    python benchmarks/bench_verify_memory.py RUN_DIR [--lengths 100,1000,10000] [--count 20]
        [--baseline-max 1000] [--jobs 1]

RUN_DIR is an addition run (`npi demo` leaves one in npi-demo/model). Each measurement is a
fresh process (peak RSS from `os.wait4`, so one measurement's memory never counts in the next):

* `streaming`: `npi verify RUN_DIR programs/addition.npi -l L -n COUNT --json` as it is now
  (compact reference rows, teacher-forced pass on diverged inputs only);
* `previous`: the verification as npi did it before (every input's trace record with its step
  dicts held per batch of 64, the reference decisions as Python tuples, the teacher-forced
  pass over every input), reimplemented below from the package's public pieces, up to
  `--baseline-max` digits (at 10,000 digits it needs about 0.7 GB a input).

The table gives both peaks, their ratio, both times, and whether the two reports are
identical (they must be).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDITION = ROOT / "programs" / "addition.npi"


def previous_verify(run_dir: str, length: int, count: int, seed: int) -> dict:
    """The report of the verification before streaming (same inputs, same comparisons)."""
    import time as _time

    from npi_runtime import api
    from npi_runtime.executor import NeuralExecutor
    from npi_runtime.multitask import task_view
    from npi_runtime.verify import (
        DEFAULT_BATCH,
        LengthReport,
        reference_decisions,
        sample_inputs,
        teacher_forced_accuracy,
    )

    checked = api.load_program(ADDITION)
    model = task_view(api.load_model(run_dir, checked), checked)
    runner = api.task_runner(checked)
    inputs = sample_inputs(runner, length, count, seed)
    t0 = _time.perf_counter()
    result_ok = trace_ok = right = steps = 0
    failures = []
    for lo in range(0, len(inputs), DEFAULT_BATCH):
        chunk = inputs[lo : lo + DEFAULT_BATCH]
        records = [runner.run(value, s) for s, value in chunk]
        r, s = teacher_forced_accuracy(model, records, checked.env_name)
        right, steps = right + r, steps + s
        refs = [reference_decisions(rec, model.memory.names) for rec in records]
        depth = max(max(st["depth"] for st in rec["steps"]) for rec in records)
        executor = NeuralExecutor(model, checked.env_name, max_steps=2 * max(map(len, refs)) + 64,
                                  max_depth=2 * depth + 8)
        envs = [runner.new_env(value) for _, value in chunk]
        outcomes = executor.run(envs, runner.task.entry, runner.task.entry_args,
                                references=refs)
        for (_, value), rec, env, o in zip(chunk, records, envs, outcomes, strict=True):
            result = runner.result(env) if o.ok else None
            good = o.ok and result == rec["result"]
            result_ok += good
            trace_ok += o.divergence is None
            if (not good or o.divergence is not None) and len(failures) < 50:
                fail = {"input": value, "result": result, "expected": rec["result"],
                        "divergence": o.divergence}
                if not o.ok:
                    fail["status"], fail["message"] = o.status, o.message
                failures.append(fail)
    n = len(inputs)
    rep = LengthReport(length=length, count=n, result_exact=result_ok / n,
                       trace_exact=trace_ok / n, step_accuracy=right / steps if steps else 0.0,
                       failures=failures, seconds=_time.perf_counter() - t0)
    return {"task": runner.task.name, "lengths": [rep.to_json()]}


def measure(cmd: list[str], out: Path) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit status) of `cmd` run with stdout to `out`."""
    t0 = time.perf_counter()
    with open(out, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss / 1024, time.perf_counter() - t0, os.waitstatus_to_exitcode(status)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--lengths", default="100,1000,10000")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline-max", type=int, default=1000)
    p.add_argument("--jobs", default="1")
    p.add_argument("--previous", nargs=2, metavar=("LENGTH", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.previous:  # the baseline's own process
        rep = previous_verify(a.run_dir, int(a.previous[0]), a.count, a.seed)
        Path(a.previous[1]).write_text(json.dumps(rep))
        return
    npi = str(Path(sys.executable).with_name("npi"))
    print(f"verify of {a.count} inputs per length, {a.run_dir}; peak RSS of a fresh process")
    print(f"{'length':>7} {'streaming MB':>13} {'s':>7} {'previous MB':>12} {'s':>7} "
          f"{'ratio':>6}  same report")
    with tempfile.TemporaryDirectory() as tmp:
        for length in (int(x) for x in a.lengths.split(",")):
            new_out = Path(tmp) / f"new-{length}.json"
            mb, sec, status = measure([npi, "verify", a.run_dir, str(ADDITION), "-l",
                                       str(length), "-n", str(a.count), "-s", str(a.seed),
                                       "--json", "--require", "0", "--jobs", a.jobs,
                                       "--device", "cpu"], new_out)
            row = f"{length:>7} {mb:>13.0f} {sec:>7.1f}"
            if status != 0:
                print(f"{row}  npi verify exited {status}")
                continue
            if length > a.baseline_max:
                print(f"{row} {'-':>12} {'-':>7} {'-':>6}  (previous not run: "
                      f"--baseline-max {a.baseline_max})")
                continue
            old_out = Path(tmp) / f"old-{length}.json"
            mb0, sec0, status0 = measure(
                [sys.executable, __file__, a.run_dir, "--count", str(a.count), "--seed",
                 str(a.seed), "--previous", str(length), str(old_out)], Path(os.devnull))
            if status0 != 0:
                print(f"{row}  the previous verify exited {status0}")
                continue
            new = json.loads(new_out.read_text())
            old = json.loads(old_out.read_text())
            same = new == old
            print(f"{row} {mb0:>12.0f} {sec0:>7.1f} {mb0 / mb:>5.1f}x  "
                  f"{'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
