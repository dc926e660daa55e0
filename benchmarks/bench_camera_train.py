"""Where canonicalisation training's time goes: rendering views against everything else.

Compiles `--count` traces per length 1..9 of programs/canonicalize.npi, trains with the
documented settings for at most `--epochs` epochs (or to the stopping rule), and prints the
seconds spent rendering views (the frame cache's misses: the training set once, then each
validation's new views) beside the whole run, and their ratio.

    python benchmarks/bench_camera_train.py [--count 500] [--epochs 40] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from npi_dsl.bundled import program_path
from npi_dsl.envs.camera_render import CACHE
from npi_runtime import api
from npi_runtime.model import NPIConfig
from npi_runtime.train import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    a = parser.parse_args()
    checked = api.load_program(program_path("canonicalize"))
    t0 = time.perf_counter()
    traces = api.compile_traces(checked, lengths=range(1, 10), count=a.count, seed=1)
    compile_s = time.perf_counter() - t0
    CACHE.clear()
    with tempfile.TemporaryDirectory() as d:
        t1 = time.perf_counter()
        result = api.train(checked, traces, Path(d) / "run", model_config=NPIConfig.sized(128),
                           train_config=TrainConfig(max_epochs=a.epochs, threads=a.threads,
                                                    val_count=16))
        train_s = time.perf_counter() - t1
    s = result.summary
    print(f"{len(traces):,} traces; stopped: {s.get('stopped')}, {s.get('epochs')} epochs")
    print(f"{'part':<34} {'seconds':>9} {'share':>7}")
    print(f"{'compile traces':<34} {compile_s:>9.1f}")
    print(f"{f'rendering ({CACHE.misses:,} views)':<34} {CACHE.render_seconds:>9.1f} "
          f"{CACHE.render_seconds / train_s:>7.1%}")
    print(f"{'training run (all of api.train)':<34} {train_s:>9.1f} {1:>7.0%}")


if __name__ == "__main__":
    main()
