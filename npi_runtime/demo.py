"""`npi demo`: the paper's addition experiment end to end, from the bundled program."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from npi_dsl.bundled import program_path
from npi_runtime import api
from npi_runtime.checkpoint import CheckpointError, holds_run, read_manifest, write_atomic
from npi_runtime.model import NPIConfig
from npi_runtime.train import TrainConfig
from npi_runtime.verify import VerifyReport, plot_report

TRAIN_LENGTHS = range(1, 21)
TRAIN_COUNT = 32
TRAIN_SEED = 2016  # the trace set's seed (the verification seed differs)
VERIFY_LENGTHS = (1, 10, 100, 1000)
VERIFY_COUNT = 20
VERIFY_SEED = 1511


def earlier_run(out_dir: Path, seed: int) -> dict | None:
    """The manifest of an earlier demo run in `out_dir` (finished or interrupted) to
    continue, or None.

    Raises CheckpointError when it holds a run that `npi demo --seed seed` cannot continue:
    another seed, or a corrupt checkpoint."""
    model_dir = Path(out_dir) / "model"
    if not holds_run(model_dir):
        return None  # nothing, or a run killed before its first checkpoint: start it again
    manifest = read_manifest(model_dir)
    earlier = manifest.get("training", {}).get("seed")
    if earlier != seed:
        raise CheckpointError(f"{model_dir} holds a demo run with seed {earlier}, not {seed}: "
                              "choose another --out, or remove it to start over")
    return manifest


def run_demo(out_dir: Path, seed: int = 0, on_event: Callable[[str, dict], None] | None = None,
             say: Callable[[str], None] = print, *, model_config: NPIConfig | None = None,
             train_config: TrainConfig | None = None,
             verify_lengths: tuple[int, ...] = VERIFY_LENGTHS,
             verify_count: int = VERIFY_COUNT, device: str = "auto") -> VerifyReport:
    """Compile, train, verify and plot into `out_dir`; returns the verification report.

    When `out_dir` already holds a demo run of the same seed, training continues from its
    last checkpoint (a finished run is not trained again) and verification runs anew. The
    keyword arguments exist for tests and experiments; the demo is their defaults, and
    `device` is where it trains and verifies (`--device`).
    """
    out_dir = Path(out_dir)
    earlier = earlier_run(out_dir, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    checked = api.load_program(program_path("addition"))
    t0 = time.perf_counter()
    traces = api.compile_traces(checked, "add", lengths=TRAIN_LENGTHS, count=TRAIN_COUNT,
                                seed=TRAIN_SEED, path=out_dir / "traces.jsonl.gz")
    say(f"compiled {len(traces)} traces (32 per length, 1-20 digits) in "
        f"{time.perf_counter() - t0:.1f} s")
    if earlier is not None:
        finished = earlier.get("progress", {}).get("stopped")
        say(f"{'reusing the finished' if finished else 'continuing the interrupted'} run in "
            f"{out_dir / 'model'} (remove it to start over)")
    result = api.train(checked, traces, out_dir / "model", "add", model_config=model_config,
                       train_config=train_config or TrainConfig(seed=seed),
                       resume=earlier is not None,
                       on_event=on_event, device=device)
    s = result.summary
    say(f"trained in {s['seconds']:.1f} s ({s['epochs']} epochs; {s['stopped']})")
    report = api.verify(result.model, checked, verify_lengths, verify_count, VERIFY_SEED,
                        "add", device=device, progress=lambda r: say(
                            f"verified {r.count} inputs of {r.length} digits: result exact "
                            f"{r.result_exact:.2f} ({r.seconds:.1f} s)"))
    write_atomic(out_dir / "verify.json", (json.dumps(report.to_json(), indent=2) + "\n")
                 .encode())
    plot_report(report, out_dir / "generalization.png",
                title="NPI addition: trained on 1-20 digits", trained=(1, 20))
    return report
