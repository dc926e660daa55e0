"""Neural executor speed: time per step with one instance, throughput with 1, 16 and 256.

Beside it, the ceiling measured in the same run: a bare `torch.nn.LSTM` of the model's size
stepping the same batch (one call per step, state carried), as the issue defines it, at the
same thread count as the executor.

    python benchmarks/bench_executor.py [RUN_DIR] [--steps N] [--threads 1,2]
        [--device cuda [--batches 256,4096]]

Without RUN_DIR it trains nothing: it uses a model of the paper's size (`NPIConfig.paper()`,
a 2-layer LSTM of 256 units) whose weights are set to keep ADD1 -> WRITE looping, so every
instance runs exactly N steps (the cost of a step does not depend on what the weights are).
With RUN_DIR (an addition run), it runs the trained model on 1000-digit sums, cut at N steps.

Threads: one table per count in --threads. The executor gets `threads=T` (a batch of at least
96 rows is cut into T slices stepped by T Python threads; numpy's BLAS and torch are held at
one thread each inside a run, so 1 and 16 instances always run on one thread); the ceiling
runs with `torch.set_num_threads(T)`. OMP_WAIT_POLICY is PASSIVE (set before torch loads,
as the CLI does). The load average is printed before and after: on a shared machine the
numbers move with it.

With --device, one more table: the executor with its torch kernel on that device (the path
`npi verify --device` takes) against a bare LSTM step of the model's size with its head,
argmax and feedback, eager and, on a CUDA device, replayed as a CUDA graph (issue 12's
ceiling); `of graph` is the executor's throughput as a fraction of the graph's.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from npi_dsl.bundled import program_path  # noqa: E402
from npi_runtime import api  # noqa: E402
from npi_runtime.executor import NeuralExecutor, blas_library  # noqa: E402
from npi_runtime.model import NPIConfig  # noqa: E402

# the test helper that makes a looping network (tests/runtime/forcing_helpers.py)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "runtime"))
from forcing_helpers import force_calls  # noqa: E402


def looping_model(checked, config: NPIConfig | None = None):
    """A model that calls ACT WRITE(out, 7) forever (no return): a fixed-length workload."""
    return force_calls(api.new_model(checked, config or NPIConfig.paper()), "ACT", (1, 3, 7),
                       keep=0.01)


def bench_executor(model, checked, batch: int, steps: int, repeats: int = 3,
                   threads: int = 1, device: str = "cpu") -> tuple[float, float]:
    """Best wall-clock seconds per batched step over `repeats` runs of `steps` steps, and the
    process's CPU seconds per step in that run (all threads; on a busy machine the CPU time
    shows what a step costs, the wall time what it took)."""
    runner = api.task_runner(checked)
    ex = NeuralExecutor(model, checked.env_name, max_steps=steps, max_depth=10_000,
                        threads=threads, device=device)
    best, cpu = float("inf"), float("inf")
    for r in range(repeats):
        envs = [runner.new_env(runner.sample_input(random.Random(1000 * r + i), 1000))
                for i in range(batch)]
        t, c = time.perf_counter(), time.process_time()
        outs = ex.run(envs, runner.task.entry)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        n = max(o.steps for o in outs)
        if dt / n < best:
            best, cpu = dt / n, dc / n
    return best, cpu


@torch.inference_mode()
def bench_lstm(hidden: int, layers: int, batch: int, steps: int, repeats: int = 3,
               threads: int = 1) -> float:
    """Best seconds per step of a bare nn.LSTM on `threads` torch threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        lstm = torch.nn.LSTM(hidden, hidden, num_layers=layers)
        x = torch.randn(1, batch, hidden)
        best = float("inf")
        for _ in range(repeats):
            h = torch.zeros(layers, batch, hidden)
            c = torch.zeros(layers, batch, hidden)
            t = time.perf_counter()
            for _ in range(steps):
                _, (h, c) = lstm(x, (h, c))
            best = min(best, (time.perf_counter() - t) / steps)
    finally:
        torch.set_num_threads(old)
    return best


def bench_lstm_device(hidden: int, layers: int, outputs: int, batch: int, steps: int,
                      device: torch.device, graph: bool, repeats: int = 3) -> float:
    """Best seconds per step of a bare `layers` x `hidden` LSTM step with its head (a Linear
    to `outputs` scores), argmax and feedback (the argmax's embedding is the next input), on
    `device`; with `graph`, one step is captured as a CUDA graph and replayed (the issue's
    ceiling for the GPU executor)."""
    lstm = torch.nn.LSTM(hidden, hidden, num_layers=layers).to(device)
    head = torch.nn.Linear(hidden, outputs).to(device)
    embed = torch.nn.Embedding(outputs, hidden).to(device)
    x = torch.zeros(1, batch, hidden, device=device)
    h = torch.zeros(layers, batch, hidden, device=device)
    c = torch.zeros(layers, batch, hidden, device=device)

    def step() -> None:
        out, (h2, c2) = lstm(x, (h, c))
        h.copy_(h2)
        c.copy_(c2)
        x.copy_(embed(head(out[0]).argmax(1)).unsqueeze(0))

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        run = step
        if graph:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    step()
            torch.cuda.current_stream().wait_stream(side)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                step()
            run = g.replay
        best = float("inf")
        for _ in range(repeats):
            sync()
            t = time.perf_counter()
            for _ in range(steps):
                run()
            sync()
            best = min(best, (time.perf_counter() - t) / steps)
    return best


def device_table(model, checked, device: torch.device, batches: list[int], steps: int) -> None:
    """The executor on `device` against a bare LSTM step there (eager, and under a CUDA
    graph on a CUDA device), per batch size."""
    from npi_runtime.device import describe

    c = model.config
    outputs = 1 + len(model.memory.names) + 3 * c.arg_range
    graph = device.type == "cuda"
    print(f"\ndevice {describe(device)}: executor (torch kernel) against a bare "
          f"{c.layers}x{c.hidden} LSTM step with head, argmax and feedback"
          f"{' (eager and CUDA graph)' if graph else ' (eager)'}")
    print(f"{'instances':>9} | {'ms/step':>8} | {'inst-steps/s':>12} | {'LSTM eager ms':>13} | "
          f"{'LSTM graph ms':>13} | {'of eager':>8} | {'of graph':>8}")
    for batch in batches:
        t, _ = bench_executor(model, checked, batch, steps, device=str(device))
        eager = bench_lstm_device(c.hidden, c.layers, outputs, batch, min(steps, 500), device,
                                  graph=False)
        best = (bench_lstm_device(c.hidden, c.layers, outputs, batch, min(steps, 500), device,
                                  graph=True) if graph else None)
        print(f"{batch:>9} | {t * 1e3:>8.3f} | {batch / t:>12,.0f} | {eager * 1e3:>13.3f} | "
              f"{'-' if best is None else f'{best * 1e3:.3f}':>13} | {eager / t:>7.2f}x | "
              f"{'-' if best is None else f'{best / t:.2f}x':>8}", flush=True)


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?", help="a trained addition run (optional)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--threads", default="1,2",
                    help="comma-separated thread counts, one table each (default 1,2)")
    ap.add_argument("--device", default=None,
                    help="also run the executor's torch kernel on this device (cuda, mps, "
                    "cpu) against a bare LSTM step there; a CUDA device adds the CUDA-graph "
                    "ceiling")
    ap.add_argument("--batches", default="256,4096",
                    help="instances per batch of the --device table (default 256,4096)")
    a = ap.parse_args()
    counts = [int(t) for t in a.threads.split(",")]
    checked = api.load_program(program_path("addition"))
    model = api.load_model(a.run_dir, checked) if a.run_dir else looping_model(checked)
    c = model.config
    lib = blas_library()
    blas = (f"{lib['internal_api']}, {lib['num_threads']} threads outside a run, 1 inside"
            if lib else "none found by threadpoolctl")
    print(f"model: {c.layers}x{c.hidden} LSTM (program_dim {c.program_dim}, core_hidden "
          f"{c.core_hidden}, head_hidden {c.head_hidden}), "
          f"{'trained ' + a.run_dir if a.run_dir else 'looping'}; {os.cpu_count()} CPUs; "
          f"numpy BLAS: {blas}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print(f"before: {_load()}")
    for threads in counts:
        print(f"\nthreads {threads}: executor threads={threads}, numpy BLAS 1, torch 1 per "
              f"thread; nn.LSTM ceiling torch.set_num_threads({threads})")
        print(f"{'instances':>9} | {'ms/step':>8} | {'CPU ms/step':>11} | {'inst-steps/s':>12} | "
              f"{'x one':>6} | "
              f"{'nn.LSTM ms/step':>15} | {'nn.LSTM inst-steps/s':>20} | {'of ceiling':>10}")
        one = None
        for batch in (1, 16, 256):
            steps = a.steps if batch < 256 else max(200, a.steps // 4)
            t, cpu = bench_executor(model, checked, batch, steps, threads=threads)
            ceiling = bench_lstm(c.hidden, c.layers, batch, min(steps, 500), threads=threads)
            rate = batch / t
            one = one or rate
            print(f"{batch:>9} | {t * 1e3:>8.3f} | {cpu * 1e3:>11.3f} | {rate:>12,.0f} | "
                  f"{rate / one:>6.1f} | "
                  f"{ceiling * 1e3:>15.3f} | {batch / ceiling:>20,.0f} | "
                  f"{rate / (batch / ceiling):>9.2f}x", flush=True)
    if a.device:
        from npi_runtime.device import resolve_device

        device_table(model, checked, resolve_device(a.device),
                     [int(b) for b in a.batches.split(",")], max(200, a.steps // 4))
    print(f"\nafter: {_load()}")


if __name__ == "__main__":
    main()
