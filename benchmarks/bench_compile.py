"""`npi compile` throughput against hand-written Python trace generators (not a test).

    python benchmarks/bench_compile.py [--repeat 25]

Workloads: the paper's addition training set (32 inputs for each length 1..20, 640 traces) and
one 1000-digit addition. Each implementation samples the same inputs (per-trace seeds, see
npi_dsl/sampling.py), runs addition and writes the same JSON Lines to a file; the benchmark
checks that the files are byte-identical. Times are in-process, after imports, parsing and
each implementation's one-time setup, best of --repeat interleaved runs (the machine is
shared); "generate" includes serialisation, "+write" also writing the file, every
implementation through npi's TraceWriter (temporary file, fsync, rename).

* `npi compile`: compile_lines (sample, run, check against the oracle, serialise) on a task
  compiled once beforehand (compile_task's time is printed apart), the path
  `npi compile -o FILE` takes.
* `hand-written, env API`: ADD, ADD1, CARRY, LSHIFT written by hand in Python against the same
  scratchpad environment (its observe/action/query closures), steps pre-serialised the same way.
* `hand-written, inlined`: the fastest plain Python we could write: its own pad as four lists,
  every action and observation inlined, the column structure of addition exploited,
  pre-serialised steps. It knows nothing but addition.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npi_dsl.checker import load  # noqa: E402
from npi_dsl.envs.scratchpad import ScratchpadEnv  # noqa: E402
from npi_dsl.interpreter import compile_task  # noqa: E402
from npi_dsl.sampling import compile_lines, trace_seed  # noqa: E402
from npi_dsl.trace import TraceWriter, env_header  # noqa: E402

_dumps = json.JSONEncoder(separators=(",", ":")).encode
RET = '],"call":null,"call_args":[0,0,0],"end":true}'
BLANK = 10


def _call(name: str, args: tuple[int, int, int]) -> str:
    return f'],"call":"{name}","call_args":[{args[0]},{args[1]},{args[2]}],"end":false}}'


def _pre(name: str) -> str:
    return ',{"frame":%d,"depth":%d,"program":"' + name + '","args":[0,0,0],"obs":['


class ObsCache(dict):
    def __missing__(self, key: tuple[int, ...]) -> str:
        text = ",".join(map(str, key))
        self[key] = text
        return text


#: one cache per process, as npi keeps one
OBS_TEXT = ObsCache()


def _sample_number(rng: random.Random, digits: int) -> str:
    if digits == 1:
        return str(rng.randrange(10))
    return str(rng.randrange(1, 10)) + "".join(rng.choices("0123456789", k=digits - 1))


def sample(seed: int, length: int) -> tuple[str, str]:
    """The scratchpad sampler, by hand: the same inputs as `npi compile`."""
    rng = random.Random(seed)
    first = _sample_number(rng, length)
    second = _sample_number(rng, rng.randint(1, length))
    if rng.random() < 0.5:
        first, second = second, first
    return first, second


def header(checked) -> str:  # noqa: ANN001
    """The constant start of every record (computed once, outside the timings)."""
    return ('{"schema":"npi-trace/1","task":"add","env":'
            + _dumps(env_header(checked.vocabulary))
            + ',"programs":' + _dumps(["addition.ADD", "addition.ADD1", "addition.CARRY",
                                       "addition.LSHIFT"])
            + ',"source_hash":' + _dumps(checked.source_hash) + ',"seed":')


# ------------------------------------------------------------------ baseline 1: the env's API


def make_env_api_generator(head: str) -> Callable[[str, str, int], str]:
    env = ScratchpadEnv()
    ob = env.observe
    move = env.action_fn(0)
    write = env.action_fn(1)
    read = env.query_fn("read")
    digit = env.query_fn("digit")
    oc = OBS_TEXT
    out: list[str] = []
    ext = out.extend
    P_ADD, P_ADD1, P_CARRY, P_LSHIFT = (_pre(n) for n in ("ADD", "ADD1", "CARRY", "LSHIFT"))
    C_ADD1, C_CARRY, C_LSHIFT = _call("ADD1", (0, 0, 0)), _call("CARRY", (0, 0, 0)), \
        _call("LSHIFT", (0, 0, 0))
    M = [[_call("ACT", (0, r, d)) for d in (0, 1)] for r in range(4)]
    W_OUT = [_call("ACT", (1, 3, v)) for v in range(10)]
    W_CARRY1 = _call("ACT", (1, 2, 1))
    frame = [0]

    def carry(d: int) -> None:
        frame[0] += 1
        pre = P_CARRY % (frame[0], d)
        ext((pre, oc[ob()], M[2][0]))
        move(2, 0)
        ext((pre, oc[ob()], W_CARRY1))
        write(2, 1)
        ext((pre, oc[ob()], M[2][1]))
        move(2, 1)
        ext((pre, oc[ob()], RET))

    def add1(d: int) -> None:
        frame[0] += 1
        pre = P_ADD1 % (frame[0], d)
        s = digit(0) + digit(1) + digit(2)
        ext((pre, oc[ob()], W_OUT[s % 10]))
        write(3, s % 10)
        if s >= 10:
            ext((pre, oc[ob()], C_CARRY))
            carry(d + 1)
        ext((pre, oc[ob()], RET))

    def lshift(d: int) -> None:
        frame[0] += 1
        pre = P_LSHIFT % (frame[0], d)
        for r in range(4):
            ext((pre, oc[ob()], M[r][0]))
            move(r, 0)
        ext((pre, oc[ob()], RET))

    def trace(a: str, b: str, seed: int) -> str:
        env.reset([a, b])
        out.clear()
        out.append("")
        frame[0] = 0
        pre = P_ADD % (0, 0)
        while read(0) != BLANK or read(1) != BLANK or read(2) != BLANK:
            ext((pre, oc[ob()], C_ADD1))
            add1(1)
            ext((pre, oc[ob()], C_LSHIFT))
            lshift(1)
        ext((pre, oc[ob()], RET))
        out[1] = out[1][1:]
        n = max(len(a), len(b))
        out[0] = (f'{head}{seed},"length":{n},"input":["{a}","{b}"],"result":"'
                  f'{env.result()}","steps":[')
        out.append("]}")
        return "".join(out)

    return trace


# ------------------------------------------------------------------ baseline 2: all inlined


def make_inlined_generator(head: str) -> Callable[[str, str, int], str]:
    oc = OBS_TEXT
    P_ADD, P_ADD1, P_CARRY, P_LSHIFT = (_pre(n) for n in ("ADD", "ADD1", "CARRY", "LSHIFT"))
    C_ADD1, C_CARRY, C_LSHIFT = _call("ADD1", (0, 0, 0)), _call("CARRY", (0, 0, 0)), \
        _call("LSHIFT", (0, 0, 0))
    ML = [_call("ACT", (0, r, 0)) for r in range(4)]
    MR_CARRY = _call("ACT", (0, 2, 1))
    W_OUT = [_call("ACT", (1, 3, v)) for v in range(10)]
    W_CARRY1 = _call("ACT", (1, 2, 1))
    DIG = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0)
    CHARS = bytes.maketrans(bytes(range(11)), b"01234567890")
    ML0, ML1, ML2, ML3 = ML

    def trace(a: str, b: str, seed: int) -> str:
        n = max(len(a), len(b)) + 2
        r0 = [BLANK] * (n - len(a)) + [c - 48 for c in a.encode()]
        r1 = [BLANK] * (n - len(b)) + [c - 48 for c in b.encode()]
        r2 = [BLANK] * n
        r3 = [BLANK] * n
        out = [""]
        ext = out.extend
        frame = 0
        i = n - 1
        pre0 = P_ADD % (0, 0)
        x0, x1, x2, x3 = r0[i], r1[i], r2[i], r3[i]
        while x0 != BLANK or x1 != BLANK or x2 != BLANK:
            o = oc[(x0, x1, x2, x3)]
            ext((pre0, o, C_ADD1))
            frame += 1
            pre = P_ADD1 % (frame, 1)
            s = DIG[x0] + DIG[x1] + DIG[x2]
            v = s % 10
            ext((pre, o, W_OUT[v]))
            r3[i] = x3 = v
            o = oc[(x0, x1, x2, v)]
            if s >= 10:
                ext((pre, o, C_CARRY))
                frame += 1
                pre2 = P_CARRY % (frame, 2)
                ext((pre2, o, ML2))
                ext((pre2, oc[(x0, x1, r2[i - 1], v)], W_CARRY1))
                r2[i - 1] = 1
                ext((pre2, oc[(x0, x1, 1, v)], MR_CARRY))
                ext((pre2, o, RET))
            ext((pre, o, RET))
            ext((pre0, o, C_LSHIFT))
            frame += 1
            pre = P_LSHIFT % (frame, 1)
            j = i - 1
            ext((pre, o, ML0))
            y0 = r0[j]
            ext((pre, oc[(y0, x1, x2, v)], ML1))
            y1 = r1[j]
            ext((pre, oc[(y0, y1, x2, v)], ML2))
            y2 = r2[j]
            ext((pre, oc[(y0, y1, y2, v)], ML3))
            x3 = r3[j]
            x0, x1, x2 = y0, y1, y2
            ext((pre, oc[(x0, x1, x2, x3)], RET))
            i = j
        ext((pre0, oc[(x0, x1, x2, x3)], RET))
        out[1] = out[1][1:]
        result = bytes(r3).translate(CHARS).decode().lstrip("0") or "0"
        out[0] = (f'{head}{seed},"length":{max(len(a), len(b))},"input":["{a}","{b}"],'
                  f'"result":"{result}","steps":[')
        out.append("]}")
        return "".join(out)

    return trace


# ------------------------------------------------------------------ timing


def npi_lines(runner, lengths: list[int], count: int) -> Iterator[str]:  # noqa: ANN001
    """What `npi compile` does once the task is compiled: sample, run, check, serialise."""
    yield from compile_lines(runner, lengths, count, 0)


def baseline_lines(trace: Callable[[str, str, int], str],
                   jobs: list[tuple[int, int]]) -> Iterator[str]:
    for seed, length in jobs:
        a, b = sample(seed, length)
        yield trace(a, b, seed)


def write_all(lines: Iterator[str], path: str) -> None:
    """Every implementation writes through npi's TraceWriter (atomic: temp file, fsync, rename)."""
    with TraceWriter(path) as w:
        for line in lines:
            w.write(line)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def count_steps(path: str) -> tuple[int, int]:
    traces = steps = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            traces += 1
            steps += len(json.loads(line)["steps"])
    return traces, steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=25)
    args = ap.parse_args()
    checked = load(ROOT / "programs" / "addition.npi")
    head = header(checked)
    setup = min(_timed(lambda: compile_task(checked, "add")) for _ in range(args.repeat))
    runner = compile_task(checked, "add")
    env_api = make_env_api_generator(head)
    inlined = make_inlined_generator(head)
    workloads = [
        ("640 traces, lengths 1..20 x 32", list(range(1, 21)), 32),
        ("1 trace, 1000 digits", [1000], 1),
    ]
    tmp = tempfile.mkdtemp(prefix="npi-bench-")
    rows = []
    try:
        for title, lengths, count in workloads:
            jobs = [(trace_seed(0, n, k), n) for n in lengths for k in range(count)]
            impls: dict[str, Callable[[], Iterator[str]]] = {
                "npi compile": lambda L=lengths, c=count: npi_lines(runner, L, c),
                "hand-written, env API": lambda j=jobs: baseline_lines(env_api, j),
                "hand-written, inlined": lambda j=jobs: baseline_lines(inlined, j),
            }
            paths = {name: os.path.join(tmp, f"{k}.jsonl") for k, name in enumerate(impls)}
            gen_t: dict[str, float] = {}
            all_t: dict[str, float] = {}
            for name, lines in impls.items():
                write_all(lines(), paths[name])  # warm up, and the file to compare
            for _ in range(args.repeat):  # interleaved, so that load changes hit all alike
                for name, lines in impls.items():
                    t = time.perf_counter()
                    for _line in lines():
                        pass
                    dt = time.perf_counter() - t
                    gen_t[name] = min(gen_t.get(name, dt), dt)
                    t = time.perf_counter()
                    write_all(lines(), paths[name])
                    dt = time.perf_counter() - t
                    all_t[name] = min(all_t.get(name, dt), dt)
            ref = digest(paths["npi compile"])
            for name, path in paths.items():
                if digest(path) != ref:
                    raise SystemExit(f"{name} wrote different bytes than npi compile")
            traces, steps = count_steps(paths["npi compile"])
            size = os.path.getsize(paths["npi compile"])
            for name in impls:
                rows.append((title, name, gen_t[name], all_t[name], traces, steps, size,
                             gen_t["npi compile"] / gen_t[name],
                             all_t["npi compile"] / all_t[name]))
    finally:
        for p in Path(tmp).iterdir():
            p.unlink()
        os.rmdir(tmp)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, wall time, best of "
          f"{args.repeat}; all implementations wrote byte-identical files")
    print("generate: sample, run, serialise every trace; +write: and write the file through "
          "TraceWriter (atomic, fsync'd)")
    hdr = (f"{'workload':<31} {'implementation':<22} {'generate':>9} {'+write':>8} "
           f"{'traces/s':>9} {'steps/s':>10} {'npi/this':>9} {'(+write)':>9}")
    print(hdr)
    print("-" * len(hdr))
    for title, name, g, a, traces, steps, _size, r_gen, r_all in rows:
        print(f"{title:<31} {name:<22} {g:8.4f}s {a:7.4f}s {traces / a:9,.0f} "
              f"{steps / a:10,.0f} {r_gen:8.2f}x {r_all:8.2f}x")
    print(f"(the 640-trace file: {rows[0][5]:,} steps, {rows[0][6] / 1e6:.1f} MB)")
    print(f"setup, once per task and not in the times above: compile_task (code generation "
          f"and Python's compile) {setup * 1000:.1f} ms")


if __name__ == "__main__":
    main()
