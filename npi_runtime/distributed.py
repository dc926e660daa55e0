"""Training in several processes with torch.distributed: data parallel, as DDP does it.

`npi train --nproc N ...` starts `torchrun --standalone --nproc-per-node N -m npi_runtime
train ...` (torch's own launcher); `torchrun` with its standard rendezvous runs the same
command on several machines (docs/training.md, "Several processes"). Each process finds its
rank in torchrun's environment (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, ...) and
joins the process group: NCCL between GPUs (process `LOCAL_RANK` on GPU `LOCAL_RANK`), gloo
between CPU processes, so the same code spreads CPU training over cores.

What each process does (`Group`):

* every process draws the same epoch order (same seed, same curriculum statistics) and takes
  its share of each batch's frames (frame i of the batch, sorted by length, goes to process
  i mod N), so the N processes together train on exactly the batches one process would;
* after backward, the gradients are summed over the processes with one `all_reduce` and
  divided by the batch's steps of all processes: the gradient of the whole batch's mean loss,
  as one process computes it (summed in another order, so not bit for bit);
* the step statistics (losses per program, wrong frames: what the curriculum and the
  hard-frame repeats use) are gathered from every process, so every process keeps the same
  state and draws the same next epoch;
* process 0 alone validates (and sends the result to the others), writes metrics.jsonl and
  commits checkpoints; `--resume` loads the checkpoint in every process.

The gradient is reduced by hand rather than by the `DistributedDataParallel` wrapper: the
loss is computed from the model's parts (`objective.npi_loss`), not its `forward`, a process
may hold no frame of a small batch, and a frozen core leaves most weights without gradients;
one all_reduce of the flattened gradients handles all three, with DDP's arithmetic.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from npi_dsl.parallel import die_with
from npi_runtime.data import FrameSet, Packed
from npi_runtime.objective import StepStats

#: torchrun's environment variables that say a process is one of several
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def in_torchrun() -> bool:
    """Whether this process was started by torchrun as one of several."""
    return all(k in os.environ for k in _ENV) and int(os.environ["WORLD_SIZE"]) > 1


def process_device(device: torch.device) -> torch.device:
    """This process's device: on CUDA, GPU `LOCAL_RANK` of the machine."""
    if device.type == "cuda" and in_torchrun():
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


class Group:
    """This process's part in training with several (see the module's docstring)."""

    def __init__(self, device: torch.device) -> None:
        if not dist.is_initialized():
            # a process killed with its launcher, not left holding the run directory's lock
            die_with(os.getppid())
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        self.rank = dist.get_rank()
        self.size = dist.get_world_size()
        self.device = device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, frames: FrameSet, batch: Packed) -> Packed | None:
        """This process's frames of the batch (None when it has none)."""
        mine = batch.frames[self.rank :: self.size]
        return frames.pack(mine) if mine.numel() else None

    def reduce(self, params: Sequence[torch.nn.Parameter], stats: StepStats) -> StepStats:
        """Sum the gradients (of each process's summed loss) over the processes and divide
        them by all processes' steps; returns the statistics of the whole batch."""
        gathered: list[Any] = [None] * self.size
        dist.all_gather_object(gathered, _portable(stats))
        merged = StepStats()
        wrong = []
        for s in gathered:
            merged.add(s)
            if s.wrong_frames is not None:
                wrong.append(s.wrong_frames)
        merged.wrong_frames = torch.unique(torch.cat(wrong)) if wrong else None
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= max(merged.steps, 1)
        at = 0
        for p, g in zip(params, grads, strict=True):
            n = g.numel()
            p.grad = flat[at : at + n].view_as(p).clone()
            at += n
        return merged

    def broadcast(self, value: Any) -> Any:
        """Process 0's `value`, in every process."""
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait until every process of the group gets here."""
        dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def _portable(stats: StepStats) -> StepStats:
    """The statistics with their tensor on the CPU (what is sent between processes)."""
    if stats.wrong_frames is not None:
        stats.wrong_frames = stats.wrong_frames.cpu()
    return stats


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run `npi ARGV` in `nproc` processes on this machine through torchrun; its exit code."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", "-m", "npi_runtime", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.call(cmd, env=env)


def placement(device: Any = "auto") -> tuple[torch.device, Group | None]:
    """Where this process trains, and its `Group` when torchrun started several."""
    from npi_runtime.device import resolve_device

    where = process_device(resolve_device(device))
    if where.type == "cuda":
        torch.cuda.set_device(where)
    return where, (Group(where) if in_torchrun() else None)


def writes(group: Group | None) -> bool:
    """Whether this process writes the run directory: alone, or process 0 of several."""
    return group is None or group.is_main


@contextlib.contextmanager
def run_lock(run_dir: Path, group: Group | None) -> Iterator[None]:
    """The run directory's lock, held by the process that writes it (`checkpoint.run_lock`);
    the other processes of a group only read it."""
    from npi_runtime import checkpoint as ckpt

    if not writes(group):
        yield
        return
    with ckpt.run_lock(run_dir):
        yield


def clean(run_dir: Path, group: Group | None) -> None:
    """`checkpoint.clean` of a run directory being resumed, by the process that writes it
    and only once every process has read its resume state: it removes every temporary file
    and uncommitted checkpoint, and another process cleaning would remove the writer's files
    as it writes them (its metrics.jsonl being cut to the committed step)."""
    from npi_runtime import checkpoint as ckpt

    if group is not None:
        group.barrier()
    if writes(group):
        ckpt.clean(run_dir)


def start_fresh(run_dir: Path, earlier_attempt: bool, group: Group | None) -> None:
    from npi_runtime import checkpoint as ckpt

    if writes(group):
        ckpt.start_fresh(run_dir, earlier_attempt)
