"""`npi reproduce table1`: the paper's Table 1 from nothing, beside the paper's numbers.

Compiles the bundled programs' traces, trains a single-task network for addition, bubble
sort and canonicalisation, one network for all three, and MAX learned into that network with
the core frozen; verifies each at the paper's settings (10-digit addition, length-5 sorting,
every start pose of seen and unseen cars; MAX at 5, 20 and 60) and at the generalisation
lengths (1000 digits, length 60); checks that learning MAX left every earlier task's report
as it was; and writes the table as markdown and JSON. Every step's output stays in the
directory: run again, it reuses finished traces, runs and reports and continues an
interrupted training (a report is redone when its run changed).

The per-sequence accuracy here is `result_exact`: the share of inputs whose final result is
right (trace exactness is in the JSON beside it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from npi_dsl.bundled import program_path
from npi_runtime import api
from npi_runtime.checkpoint import holds_run, read_manifest, write_atomic
from npi_runtime.model import NPIConfig
from npi_runtime.train import TrainConfig
from npi_runtime.train_tasks import several_tasks_config

#: the paper's Table 1 (shared/PAPER.md): per-sequence accuracy, %
PAPER = {"single": {"addition": 100.0, "sorting": 100.0, "seen": 89.5, "unseen": 88.7},
         "one": {"addition": 97.0, "sorting": 100.0, "seen": 91.4, "unseen": 89.9},
         "max": 100.0}
TASKS = ("addition", "sorting", "canonicalize")
VERIFY_SEED = 4242


@dataclass(frozen=True)
class Traces:
    """`npi compile programs/NAME.npi -l A..B -n COUNT -s SEED`."""

    lengths: tuple[int, int]
    count: int
    seed: int


@dataclass(frozen=True)
class Plan:
    """What `npi reproduce table1` compiles, trains and verifies."""

    name: str
    traces: dict[str, Traces]  # addition, sorting, canonicalize, max
    hidden: int | None  # None: the paper's 2x256
    #: TrainConfig fields set for every network (the rest are npi train's defaults)
    train: dict[str, Any]
    #: verification: (lengths, inputs per length) per task at the paper's settings, then at
    #: the generalisation lengths; the cars: inputs = cars per set, every start pose each
    paper_settings: dict[str, tuple[tuple[int, ...], int]]
    generalisation: dict[str, tuple[tuple[int, ...], int]]
    minutes: float  # the expected time on a 2-core CPU (docs/results.md)

    def to_json(self) -> dict:
        d = asdict(self)
        d["traces"] = {k: asdict(v) for k, v in self.traces.items()}
        return d


FULL = Plan(
    name="full",
    traces={"addition": Traces((1, 20), 32, 11), "sorting": Traces((2, 20), 64, 7),
            "canonicalize": Traces((1, 9), 500, 1), "max": Traces((2, 20), 16, 5)},
    hidden=None, train={},
    paper_settings={"addition": ((10,), 1000), "sorting": ((5,), 1000),
                    "canonicalize": ((), 50), "max": ((5, 20, 60), 100)},
    generalisation={"addition": ((1000,), 20), "sorting": ((60,), 100)},
    minutes=55.0,
)

QUICK = Plan(
    name="quick",
    traces={"addition": Traces((1, 10), 32, 11), "sorting": Traces((2, 6), 16, 7),
            "canonicalize": Traces((1, 9), 40, 1), "max": Traces((2, 6), 8, 5)},
    hidden=64, train={"max_epochs": 40, "warmup_steps": 100, "val_count": 4},
    paper_settings={"addition": ((10,), 50), "sorting": ((5,), 50),
                    "canonicalize": ((), 2), "max": ((5, 20, 60), 5)},
    generalisation={"addition": ((100,), 5), "sorting": ((20,), 5)},
    minutes=8.0,
)


Say = Callable[[str], None]


class Reproduction:
    """One reproduction in `out_dir` following `plan`."""

    def __init__(self, out_dir: Path, plan: Plan, *, seed: int = 0, say: Say = print,
                 on_event: Callable[[str, dict], None] | None = None) -> None:
        self.out = Path(out_dir)
        self.plan = plan
        self.seed = seed
        self.say = say
        self.on_event = on_event
        self.checked = {name: api.load_program(program_path(name))
                        for name in (*TASKS, "max")}
        self.timings: dict[str, float] = {}

    # ---------------------------------------------------------------- steps
    def _timed(self, label: str, work: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = work()
        self.timings[label] = round(time.perf_counter() - t0, 1)
        return value

    def traces(self, name: str) -> Path:
        path = self.out / "traces" / f"{name}.jsonl.gz"
        if not path.exists():
            t = self.plan.traces[name]
            path.parent.mkdir(parents=True, exist_ok=True)
            records = self._timed(f"compile {name}", lambda: api.compile_traces(
                self.checked[name], lengths=range(t.lengths[0], t.lengths[1] + 1),
                count=t.count, seed=t.seed, path=path))
            self.say(f"compiled {len(records)} traces of {name} "
                     f"({t.lengths[0]}..{t.lengths[1]}, {t.count} each) to {path}")
        return path

    def _configs(self, tasks: int = 1) -> tuple[NPIConfig, TrainConfig]:
        mc = NPIConfig() if self.plan.hidden is None else NPIConfig.sized(self.plan.hidden)
        tc = replace(TrainConfig(seed=self.seed), **self.plan.train)
        return mc, several_tasks_config(tc, tasks) if tasks > 1 else tc

    def _announce(self, run: Path, what: str) -> bool:
        earlier = holds_run(run)
        if earlier:
            stopped = (read_manifest(run).get("progress") or {}).get("stopped")
            self.say(f"{'reusing the finished' if stopped else 'continuing the interrupted'} "
                     f"{what} in {run}")
        else:
            self.say(f"training {what} into {run}")
        return earlier

    def single(self, name: str) -> Path:
        run = self.out / "runs" / name
        earlier = self._announce(run, f"the single-task network of {name}")
        mc, tc = self._configs()
        self._timed(f"train {name}", lambda: api.train(
            self.checked[name], [str(self.traces(name))], run, model_config=mc,
            train_config=tc, resume=earlier, on_event=self.on_event))
        return run

    def one(self) -> Path:
        run = self.out / "runs" / "one"
        earlier = self._announce(run, "one network for " + ", ".join(TASKS))
        mc, tc = self._configs(len(TASKS))
        files = [self.checked[n] for n in TASKS]
        paths = [str(self.traces(n)) for n in TASKS]
        self._timed("train one network", lambda: api.train_tasks(
            files, paths, run, model_config=mc, train_config=tc, resume=earlier,
            on_event=self.on_event))
        return run

    def max(self, base: Path) -> Path:
        run = self.out / "runs" / "max"
        earlier = self._announce(run, "MAX with the core frozen")
        _, tc = self._configs()
        paths = [str(self.traces("max"))]
        def work() -> Any:
            if earlier:
                return api.train_tasks([self.checked["max"]], paths, run, resume=True,
                                       on_event=self.on_event)
            return api.learn_programs(base, self.checked["max"], paths, run, freeze_core=True,
                                      train_config=tc, on_event=self.on_event)

        self._timed("learn MAX", work)
        return run

    def report(self, run: Path, name: str, lengths: tuple[int, ...], count: int,
               tag: str) -> dict:
        """`npi verify RUN programs/NAME.npi` as JSON, kept in reports/ with the weights'
        hash (redone when the run's weights change)."""
        weights = read_manifest(run)["weights"]["sha256"]
        path = self.out / "reports" / f"{tag}.json"
        if path.exists():
            kept = json.loads(path.read_text())
            if kept.get("weights_sha256") == weights:
                return kept["report"]
        checked = self.checked[name]
        model = api.load_model(run, checked)
        rep = self._timed(f"verify {tag}", lambda: api.verify(
            model, checked, list(lengths) or None, count, VERIFY_SEED))
        data = rep.to_json()
        for r in data["lengths"]:
            r.pop("failures", None)  # the failing inputs: npi verify shows them
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps({"run": str(run), "weights_sha256": weights,
                                        "report": data}, indent=1) + "\n").encode())
        where = ", ".join(f"{r.get('group') or r['length']}: {r['result_exact']:.4f}"
                          for r in data["lengths"])
        self.say(f"verified {tag}: {where}")
        return data

    # ---------------------------------------------------------------- the table
    def run(self) -> dict:
        t0 = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        p = self.plan
        single = {n: self.single(n) for n in TASKS}
        one = self.one()
        learned = self.max(one)
        rows: list[dict] = []
        reports: dict[str, dict] = {}
        for network, runs in (("single", single), ("one", dict.fromkeys(TASKS, one))):
            for name in TASKS:
                lengths, count = p.paper_settings[name]
                rep = self.report(runs[name], name, lengths, count, f"{network}-{name}")
                reports[f"{network}-{name}"] = rep
                rows += _rows(network, name, rep, paper=True)
                if name in p.generalisation:
                    lengths, count = p.generalisation[name]
                    rep = self.report(runs[name], name, lengths, count,
                                      f"{network}-{name}-long")
                    rows += _rows(network, name, rep, paper=False)
        lengths, count = p.paper_settings["max"]
        rows += _rows("max", "max", self.report(learned, "max", lengths, count, "max-max"),
                      paper=True)
        # learning MAX must not change an earlier task's runs
        unchanged = {}
        for name in TASKS:
            lengths, count = p.paper_settings[name]
            after = self.report(learned, name, lengths, count, f"max-{name}")
            unchanged[name] = after["lengths"] == reports[f"one-{name}"]["lengths"]
        bits = _other_weights_identical(one, learned)
        result = {"plan": p.to_json(), "seed": self.seed, "rows": rows,
                  "after_max": {"reports_identical": unchanged,
                                "other_weights_bit_identical": bits},
                  "seconds": round(time.perf_counter() - t0, 1), "timings": self.timings}
        write_atomic(self.out / "table1.json", (json.dumps(result, indent=1) + "\n").encode())
        write_atomic(self.out / "table1.md", markdown(result).encode())
        return result


def _rows(network: str, name: str, rep: dict, paper: bool) -> list[dict]:
    out = []
    for r in rep["lengths"]:
        key = r.get("group") or name
        setting = (f"{r['group']} cars, every start pose" if r.get("group")
                   else f"length {r['length']}")
        expected = (PAPER["max"] if network == "max" else PAPER[network].get(key)) \
            if paper else None
        out.append({"network": network, "task": name, "setting": setting,
                    "inputs": r["count"], "paper": expected,
                    "ours": round(100 * r["result_exact"], 2),
                    "trace_exact": round(100 * r["trace_exact"], 2)})
    return out


def _other_weights_identical(before: Path, after: Path) -> bool:
    """Every weight of `after` but the rows it added equals `before`'s, bit for bit."""
    from safetensors.torch import load_file

    a, b = load_file(before / "model.safetensors"), load_file(after / "model.safetensors")
    for key, old in a.items():
        new = b.get(key)
        if new is None or not new[: old.shape[0]].equal(old) or (
                key not in ("memory.keys", "memory.progs") and new.shape != old.shape):
            return False
    return True


NETWORKS = {"single": "single task", "one": "one network, all tasks",
            "max": "MAX added, core frozen"}


def markdown(result: dict) -> str:
    lines = [f"# Table 1, reproduced ({result['plan']['name']} plan, seed {result['seed']})",
             "", "Per-sequence accuracy (% of inputs whose result is exact).", "",
             "| network | task | setting | inputs | paper | ours | trace exact |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        paper = "" if r["paper"] is None else f"{r['paper']:.1f}"
        lines.append(f"| {NETWORKS[r['network']]} | {r['task']} | {r['setting']} | "
                     f"{r['inputs']} | {paper} | {r['ours']:.2f} | {r['trace_exact']:.2f} |")
    after = result["after_max"]
    same = ", ".join(f"{k} {'identical' if v else 'CHANGED'}"
                     for k, v in after["reports_identical"].items())
    lines += ["", f"After learning MAX: earlier reports {same}; every other weight "
              f"{'bit-identical' if after['other_weights_bit_identical'] else 'CHANGED'}.",
              "", f"Total time: {result['seconds'] / 60:.1f} minutes.", ""]
    return "\n".join(lines)
