"""How fast the language front end is: parse and check per program, and `npi check`'s startup.

    python benchmarks/bench_check.py [--repeat 30]

Per bundled program, in-process with the parser already built: `parse` is parse_text on the
file's text; `check` is check_file (read, parse, check the file and its imports, build the
call graph), the whole of what `npi check` does per file. Times are the median and the best
of --repeat runs (the machine may be shared). Target: under 20 ms each.

Then, in fresh subprocesses (median of 5): the time to import `npi_runtime.cli` (what the
`npi` script imports before any command runs); the time of import + one `check` of
addition.npi through the typer app, and within it the time to load the LALR parser from its
generated tables (npi_dsl/grammar_tables.json; timed apart: the first check of every process
pays it); the end-to-end wall time of the installed `npi check` on all bundled programs; the
largest imports (`python -X importtime`); and whether torch, numpy or networkx got imported
on that path. Target: none of them is. benchmarks/bench_startup.py measures the CPU time of
whole `npi check` and `npi compile` processes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npi_dsl.checker import check_file  # noqa: E402
from npi_dsl.parser import _parser, parse_text  # noqa: E402

PROGRAMS = sorted((ROOT / "programs").glob("*.npi"))

FRESH = """
import json, sys, time
t0 = time.perf_counter()
import npi_runtime.cli
t1 = time.perf_counter()
from npi_dsl.parser import _parser
_parser()
t2 = time.perf_counter()
from typer.testing import CliRunner
r = CliRunner().invoke(npi_runtime.cli.app, ["check", sys.argv[1]])
t3 = time.perf_counter()
assert r.exit_code == 0, r.output
print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1, "import_and_check_s": t3 - t0,
                  "torch": "torch" in sys.modules, "numpy": "numpy" in sys.modules,
                  "networkx": "networkx" in sys.modules}))
"""


def _times(fn, repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), min(runs)


def per_program(repeat: int) -> list[dict[str, object]]:
    _parser()  # build the parser once, as a long-running process would have
    check_file(PROGRAMS[0])  # and warm the environment registry
    rows = []
    for path in PROGRAMS:
        text = path.read_text("utf-8")
        parse_med, parse_min = _times(lambda t=text, p=path: parse_text(t, str(p)), repeat)
        report = check_file(path)
        assert report.ok, f"{path} does not check"
        check_med, check_min = _times(lambda p=path: check_file(p), repeat)
        rows.append({"program": path.name, "bytes": len(text.encode()),
                     "parse_ms": parse_med * 1e3, "parse_best_ms": parse_min * 1e3,
                     "check_ms": check_med * 1e3, "check_best_ms": check_min * 1e3})
    return rows


def startup(runs: int = 5) -> dict[str, object]:
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", FRESH, str(ROOT / "programs" / "addition.npi")],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        results.append(json.loads(out.stdout))
    script = Path(sys.executable).parent / "npi"
    npi = str(script) if script.exists() else shutil.which("npi")
    e2e = []
    if npi:
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run([npi, "check", "--strict", *map(str, PROGRAMS)], check=True,
                           capture_output=True, cwd=ROOT)
            e2e.append(time.perf_counter() - t)
    imp = subprocess.run([sys.executable, "-X", "importtime", "-c", "import npi_runtime.cli"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    top = []
    for line in imp.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            if len(name) - len(name.lstrip()) <= 3:  # top-level and direct children
                top.append((int(parts[1]), name.strip()))
    top.sort(reverse=True)
    return {
        "import_ms": statistics.median(r["import_s"] for r in results) * 1e3,
        "import_and_check_ms": statistics.median(r["import_and_check_s"] for r in results) * 1e3,
        "parser_build_ms": statistics.median(r["build_s"] for r in results) * 1e3,
        "npi_check_all_wall_ms": statistics.median(e2e) * 1e3 if e2e else None,
        "torch_imported": any(r["torch"] for r in results),
        "numpy_imported": any(r["numpy"] for r in results),
        "networkx_imported": any(r["networkx"] for r in results),
        "largest_imports_ms": [(name, us / 1e3) for us, name in top[:6]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args()
    rows = per_program(args.repeat)
    start = startup()
    if args.json:
        print(json.dumps({"programs": rows, "startup": start}, indent=2))
        return
    print(f"parse + check per bundled program (parser built; median / best of {args.repeat})")
    print(f"{'program':<26}{'bytes':>7}{'parse ms':>16}{'check ms':>16}")
    for r in rows:
        print(f"{r['program']:<26}{r['bytes']:>7}"
              f"{r['parse_ms']:>9.2f} / {r['parse_best_ms']:<5.2f}"
              f"{r['check_ms']:>9.2f} / {r['check_best_ms']:<5.2f}")
    worst = max(r["check_ms"] for r in rows)
    print(f"target < 20 ms per program: {'met' if worst < 20 else 'MISSED'} "
          f"(slowest check {worst:.2f} ms)")
    print()
    print("`npi check` startup, fresh interpreter (median of 5)")
    print(f"  import npi_runtime.cli            {start['import_ms']:8.0f} ms")
    print(f"  import + check addition.npi       {start['import_and_check_ms']:8.0f} ms")
    print(f"    of which loading the LALR parser {start['parser_build_ms']:7.0f} ms"
          " (once per process, from npi_dsl/grammar_tables.json)")
    if start["npi_check_all_wall_ms"] is not None:
        print(f"  `npi check --strict programs/*`   {start['npi_check_all_wall_ms']:8.0f} ms"
              " (installed script, wall)")
    print(f"  torch imported: {'YES' if start['torch_imported'] else 'no'}"
          f"   numpy imported: {'YES' if start['numpy_imported'] else 'no'}"
          f"   networkx imported: {'YES' if start['networkx_imported'] else 'no'}")
    print("  largest imports (cumulative, -X importtime):")
    for name, ms in start["largest_imports_ms"]:
        print(f"    {name:<32}{ms:8.1f} ms")


if __name__ == "__main__":
    main()
