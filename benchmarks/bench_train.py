"""Training throughput: decisions (steps) per second, teacher-forced, on the paper's addition
training set (32 traces of each length 1-20), with the default model and batch size.

    python benchmarks/bench_train.py [--seconds S] [--hidden H] [--threads T]

Also times the same batches through torch's own nn.LSTM over a PackedSequence, which the
runtime replaces with its hand-written packed LSTM (npi_runtime.model.packed_lstm).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn.utils.rnn import PackedSequence

from npi_dsl.bundled import program_path
from npi_runtime import api
from npi_runtime.data import build_frameset
from npi_runtime.model import NPIConfig
from npi_runtime.objective import npi_loss
from npi_runtime.train import TrainConfig


def run(model, frames, batch_frames: int, seconds: float, native: bool) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(frames.n_frames, generator=g)
    if native:  # swap in torch's packed LSTM for the comparison
        import npi_runtime.model as m

        saved = m.packed_lstm
        m.packed_lstm = lambda lstm, x, bs: lstm(PackedSequence(x, bs))[0].data
    steps = 0
    t = time.perf_counter()
    try:
        for batch in frames.batches(order, batch_frames):
            loss, _ = npi_loss(model, frames, batch, with_stats=False)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += batch.steps.numel()
            if time.perf_counter() - t > seconds:
                break
    finally:
        if native:
            m.packed_lstm = saved
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--hidden", type=int, default=NPIConfig().hidden)
    ap.add_argument("--threads", type=int, default=TrainConfig().threads)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    checked = api.load_program(program_path("addition"))
    t = time.perf_counter()
    traces = api.compile_traces(checked, lengths=range(1, 21), count=32, seed=1)
    t_compile = time.perf_counter() - t
    h = a.hidden
    config = NPIConfig.sized(h)
    model = api.new_model(checked, config)
    t = time.perf_counter()
    frames = build_frameset(traces, model.memory.names, model.encoders["scratchpad"])
    t_tensorize = time.perf_counter() - t
    print(f"{len(traces)} traces, {frames.n_frames:,} frames, {frames.n_steps:,} steps; "
          f"compiled in {t_compile:.2f} s, tensorized in {t_tensorize:.2f} s; "
          f"2x{h} LSTM, {a.threads} thread(s), {TrainConfig().batch_frames} frames a batch")
    ours = run(model, frames, TrainConfig().batch_frames, a.seconds, native=False)
    native = run(model, frames, TrainConfig().batch_frames, a.seconds, native=True)
    print(f"{'packed LSTM':<28} | {'decisions/s':>12} | {'s/epoch (all frames)':>20}")
    for name, rate in (("npi packed_lstm", ours), ("torch nn.LSTM PackedSequence", native)):
        print(f"{name:<28} | {rate:>12,.0f} | {frames.n_steps / rate:>20.1f}")


if __name__ == "__main__":
    main()
