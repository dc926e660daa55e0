"""Neural versus symbolic: run the network in closed loop beside the reference program.

For each input the reference (the symbolic interpreter) gives the trace and the result; the
network runs on a fresh environment where only its own decisions act. Per length:

* `result_exact`: the fraction of inputs whose final result is right;
* `trace_exact`: the fraction whose closed-loop trace equals the reference decision for
  decision (the executor compares on the fly and records the first difference);
* `step_accuracy`: teacher-forced, the fraction of the reference's steps on which every head
  (end, program, arguments) picks the reference's decision (the pass runs on the inputs
  whose closed loop diverged; on the others every step is right, see `evaluate_inputs`);
* `failures`: `{input, result, expected, divergence}` for every input with a wrong result or a
  diverging trace.

The reference side is compact decision rows (`references.py`), so memory does not grow with
the number of inputs. Training's validation uses the same code with few inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from npi_dsl.interpreter import TaskRunner
from npi_dsl.trace import ACT
from npi_runtime.data import build_frameset
from npi_runtime.executor import Decision, NeuralExecutor
from npi_runtime.model import NPI
from npi_runtime.objective import npi_loss
from npi_runtime.references import ReferenceSide

#: how many instances the executor runs at once while verifying, on the CPU and on a device
#: (a GPU's step costs about the same for any batch up to thousands: docs/scaling.md)
DEFAULT_BATCH = 64
DEVICE_BATCH = 256


def default_batch(device: Any = None) -> int:
    """The executor's batch for verifying on `device` (None: the CPU)."""
    return DEFAULT_BATCH if device is None or str(device) == "cpu" else DEVICE_BATCH


@dataclass
class LengthReport:
    """The comparison over one length's inputs, or over one named input set (`group`: the
    camera's seen and unseen cars, every start pose each; `length` is then 0)."""

    length: int
    count: int
    result_exact: float
    trace_exact: float
    step_accuracy: float
    failures: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    outputs: list[dict] = field(default_factory=list)  # every input with the network's result
    group: str | None = None
    #: per grid cell (`Environment.verification_grid`, e.g. the start pose "azimuth,elevation"):
    #: [inputs, inputs whose result and trace are both exact]
    cells: dict[str, list[int]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.group if self.group is not None else str(self.length)

    def to_json(self) -> dict:
        d = {"length": self.length, "count": self.count, "result_exact": self.result_exact,
             "trace_exact": self.trace_exact, "step_accuracy": self.step_accuracy,
             "failures": self.failures}
        if self.group is not None:
            d["group"] = self.group
        if self.cells:
            d["cells"] = self.cells
        return d


@dataclass
class VerifyReport:
    task: str
    lengths: list[LengthReport]

    def to_json(self) -> dict:
        return {"task": self.task, "lengths": [r.to_json() for r in self.lengths]}

    def passed(self, require: float = 1.0) -> bool:
        return all(r.result_exact >= require for r in self.lengths)


def reference_decisions(record: dict, memory: Sequence[str]) -> list[Decision]:
    """A trace's decisions in execution order, as the executor compares them."""
    index = {ACT: memory.index(ACT)}
    for q in record["programs"]:
        index[q.rsplit(".", 1)[-1]] = memory.index(q)
    out: list[Decision] = []
    for s in record["steps"]:
        if s["end"]:
            out.append((True, -1, (0, 0, 0)))
        else:
            a = s["call_args"]
            out.append((False, index[s["call"]], (a[0], a[1], a[2])))
    return out


@torch.no_grad()
def teacher_forced_accuracy(model: NPI, records: Sequence[dict], env_name: str,
                            max_frames: int = 4096) -> tuple[int, int]:
    """(steps right, steps) over the records' steps, every head teacher-forced."""
    model.eval()
    frames = build_frameset(records, model.memory.names, model.encoders[env_name], env_name)
    device = next(model.parameters()).device
    on_device = frames.to(device)
    right = total = 0
    order = torch.arange(frames.n_frames)
    for batch in frames.batches(order, max_frames):
        _, stats = npi_loss(model, on_device, batch.to(device))
        assert stats is not None
        right += stats.all_right
        total += stats.steps
    return right, total


#: the teacher-forced pass takes the records of this many reference steps at a time
FORCED_STEPS = 50_000


def forced_accuracy(model: NPI, runner: TaskRunner, inputs: Sequence[tuple[int | None, Any]]
                    ) -> tuple[int, int]:
    """(steps right, steps) teacher-forced over `inputs`' reference traces, their records
    made a group of about FORCED_STEPS steps at a time (memory stays bounded)."""
    env_name = runner.checked.env_name
    right = total = 0
    group: list[dict] = []
    size = 0
    for k, (seed, value) in enumerate(inputs):
        rec = runner.run(value, seed)
        group.append(rec)
        size += len(rec["steps"])
        if size >= FORCED_STEPS or k == len(inputs) - 1:
            r, t = teacher_forced_accuracy(model, group, env_name)
            right += r
            total += t
            group, size = [], 0
    return right, total


def evaluate_inputs(model: NPI, runner: TaskRunner, length: int,
                    inputs: Sequence[tuple[int | None, Any]], *, batch: int | None = None,
                    keep_outputs: bool = False, max_failures: int = 50,
                    threads: int = 1, group: str | None = None, jobs: int = 1,
                    forced: str = "diverged", device: Any = None) -> LengthReport:
    """Run the reference and the network on `inputs` ((seed, normalised input) pairs).

    The reference side is compact decision rows (`references.ReferenceSide`; `jobs` worker
    processes compute them ahead of the network), so memory does not grow with the number
    of inputs. The teacher-forced pass (`step_accuracy`) runs only on inputs whose closed-loop
    trace diverged (`forced="diverged"`): where the network made every reference decision in
    closed loop, it was fed exactly the reference's inputs, so every teacher-forced step is
    right. `forced="all"` runs it on every input (what earlier versions did; for checking).
    `device` is where the network's closed-loop steps run (NeuralExecutor); the
    teacher-forced pass runs on the model where it is."""
    if forced not in ("diverged", "all"):
        raise ValueError(f"forced must be 'diverged' or 'all', not {forced!r}")
    t0 = time.perf_counter()
    batch = batch or default_batch(device)
    grid = runner.env.verification_grid
    cells: dict[str, list[int]] = {}
    env_name = runner.checked.env_name
    entry = runner.task.entry
    entry_args = runner.task.entry_args
    n = len(inputs)
    result_ok = trace_ok = 0
    right = steps = 0
    failures: list[dict] = []
    outputs: list[dict] = []
    batches = [inputs[lo : lo + batch] for lo in range(0, n, batch)]
    with ReferenceSide(runner, model.memory.names, jobs) as side:
        computed = side.chunks([value for _, value in chunk] for chunk in batches)
        for chunk, refs in zip(batches, computed, strict=True):
            executor = NeuralExecutor(model, env_name, threads=threads, device=device,
                                      max_steps=2 * max(r.steps for r in refs) + 64,
                                      max_depth=2 * max(r.depth for r in refs) + 8)
            envs = [runner.new_env(value) for _, value in chunk]
            outcomes = executor.run(envs, entry, entry_args,
                                    references=[r.decisions for r in refs])
            to_force = []
            for (seed, value), ref, env, o in zip(chunk, refs, envs, outcomes, strict=True):
                try:
                    result = runner.result(env) if o.ok else None
                except Exception:  # the network left a state the result expression cannot read
                    result = None
                expected = ref.result
                good = o.ok and result == expected
                same = o.divergence is None
                result_ok += good
                trace_ok += same
                if same and forced == "diverged":
                    right += ref.steps
                    steps += ref.steps
                else:
                    to_force.append((seed, value))
                if grid is not None:
                    cell = cells.setdefault(",".join(str(value[k]) for k in grid), [0, 0])
                    cell[0] += 1
                    cell[1] += good and same
                if keep_outputs:
                    output = {"length": length, "seed": seed, "input": value,
                              "result": result, "expected": expected, "correct": good,
                              "status": o.status}
                    if group is not None:
                        output["group"] = group
                        output["trace_exact"] = same
                    outputs.append(output)
                if (not good or not same) and len(failures) < max_failures:
                    fail = {"input": value, "result": result, "expected": expected,
                            "divergence": o.divergence}
                    if not o.ok:
                        fail["status"] = o.status
                        fail["message"] = o.message
                    failures.append(fail)
            del envs, outcomes, refs
            if to_force:
                r, s = forced_accuracy(model, runner, to_force)
                right += r
                steps += s
    return LengthReport(
        length=length, count=n,
        result_exact=result_ok / n if n else 0.0,
        trace_exact=trace_ok / n if n else 0.0,
        step_accuracy=right / steps if steps else 0.0,
        failures=failures, seconds=time.perf_counter() - t0, outputs=outputs, group=group,
        cells=dict(sorted(cells.items(), key=lambda kv: [int(x) for x in kv[0].split(",")])),
    )


def sample_inputs(runner: TaskRunner, length: int, count: int, seed: int) -> list[tuple[int, Any]]:
    """`count` inputs of one length, each with its own seed derived from (seed, length, i)."""
    from npi_dsl.sampling import iter_inputs

    return list(iter_inputs(runner, [length], count, seed))


def verify(model: NPI, runner: TaskRunner, lengths: Sequence[int], count: int, seed: int, *,
           batch: int | None = None, keep_outputs: bool = False,
           progress: Callable[[LengthReport], None] | None = None,
           threads: int = 1, jobs: int = 1, device: Any = None) -> VerifyReport:
    """Closed-loop and teacher-forced comparison at every length (`count` inputs each);
    `threads` > 1 steps big batches on that many cores (NeuralExecutor), `jobs` > 1 runs
    the reference in that many processes (the report is the same for any `jobs`)."""
    reports = []
    for length in lengths:
        inputs = sample_inputs(runner, length, count, seed)
        rep = evaluate_inputs(model, runner, length, inputs, batch=batch,
                              keep_outputs=keep_outputs, threads=threads, jobs=jobs,
                              device=device)
        reports.append(rep)
        if progress is not None:
            progress(rep)
    return VerifyReport(task=runner.task.name, lengths=reports)


def verify_sets(model: NPI, runner: TaskRunner, count: int, seed: int, *,
                batch: int | None = None, keep_outputs: bool = False,
                progress: Callable[[LengthReport], None] | None = None,
                threads: int = 1, jobs: int = 1, device: Any = None) -> VerifyReport:
    """Closed-loop comparison on the environment's named input sets
    (`Environment.verification_sets`: for the camera, every start pose of `count` seen and
    `count` unseen cars under random lighting), one report per set."""
    sets = runner.env.verification_sets(count, seed)
    if sets is None:
        raise ValueError(f"env {runner.checked.env_name} has no verification sets: give "
                         "lengths instead")
    reports = []
    for name, values in sets.items():
        inputs = [(None, runner.parse_input(v)) for v in values]
        rep = evaluate_inputs(model, runner, 0, inputs, batch=batch, keep_outputs=keep_outputs,
                              threads=threads, group=name, jobs=jobs, device=device)
        reports.append(rep)
        if progress is not None:
            progress(rep)
    return VerifyReport(task=runner.task.name, lengths=reports)


def _figure_png(fig: Any, path: Path) -> None:
    """Write a matplotlib figure to `path` as a PNG, atomically (a kill leaves the old image,
    never half a new one), and close it."""
    import io

    import matplotlib.pyplot as plt

    from npi_runtime.checkpoint import write_atomic

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(path), buf.getvalue())


def plot_cells(report: VerifyReport, path: Path, axes: Sequence[str],
               title: str | None = None) -> None:
    """Per-sequence accuracy on a grid of cells (the camera's azimuth x elevation start poses),
    one panel per input set (seen, unseen cars), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = [r for r in report.lengths if r.cells]
    fig, axs = plt.subplots(1, max(len(panels), 1), figsize=(4.6 * max(len(panels), 1), 3.6),
                            dpi=120, squeeze=False)
    for ax, r in zip(axs[0], panels, strict=False):
        keys = [tuple(int(x) for x in k.split(",")) for k in r.cells]
        xs = sorted({k[0] for k in keys})
        ys = sorted({k[1] for k in keys})
        grid = np.full((len(ys), len(xs)), np.nan)
        for k, (n, right) in zip(keys, r.cells.values(), strict=True):
            grid[ys.index(k[1]), xs.index(k[0])] = 100.0 * right / n
        im = ax.imshow(grid, origin="lower", vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for (yi, xi), v in np.ndenumerate(grid):
            if not np.isnan(v):
                ax.text(xi, yi, f"{v:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 60 else "black")
        ax.set_xticks(range(len(xs)), [str(x) for x in xs], fontsize=7)
        ax.set_yticks(range(len(ys)), [str(y) for y in ys], fontsize=7)
        ax.set_xlabel(axes[0])
        ax.set_ylabel(axes[1])
        exact = sum(c[1] for c in r.cells.values()) / max(sum(c[0] for c in r.cells.values()), 1)
        ax.set_title(f"{r.label}: {100 * exact:.2f}% of {r.count}", fontsize=9)
        fig.colorbar(im, ax=ax, label="per-sequence accuracy (%)")
    fig.suptitle(title or f"NPI per start cell: task {report.task}", fontsize=10)
    fig.tight_layout()
    _figure_png(fig, path)


def plot_report(report: VerifyReport, path: Path, title: str | None = None,
                trained: tuple[int, int] | None = None) -> None:
    """Accuracy against length (log scale), in the style of the paper's generalisation plots,
    written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r.length for r in report.lengths]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    if trained is not None:
        ax.axvspan(trained[0], trained[1], color="0.9", label="training lengths")
    ax.plot(xs, [100 * r.result_exact for r in report.lengths], "o-", label="result exact")
    ax.plot(xs, [100 * r.trace_exact for r in report.lengths], "s--", label="trace exact",
            alpha=0.8)
    ax.set_xscale("log")
    ax.set_ylim(-5, 105)
    ax.set_xlabel("input length")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or f"NPI generalisation: task {report.task}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    _figure_png(fig, path)


