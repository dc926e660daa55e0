"""The training objective: log-likelihood of the reference's decisions, teacher-forced.

Per step: the end bit (binary cross-entropy), the next program (cross-entropy over the program
memory) and the three arguments (cross-entropy each over `arg_range`); the program and argument
terms are masked on return steps, where nothing is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from npi_runtime.data import IGNORE, FrameSet, Packed
from npi_runtime.model import NPI


@dataclass
class StepStats:
    """Sums over a batch's steps (so that batches add up exactly)."""

    steps: int = 0
    calls: int = 0  # steps that call something (not returns)
    loss: float = 0.0  # summed per-step loss
    end_right: int = 0
    prog_right: int = 0  # among calls
    args_right: int = 0  # among calls: all three arguments right
    all_right: int = 0  # every head right
    #: per program memory row: summed loss and number of steps of frames running it
    program_loss: dict[int, float] = field(default_factory=dict)
    program_steps: dict[int, int] = field(default_factory=dict)
    #: per task of a several-task FrameSet: summed loss, steps, steps with every head right
    task_loss: dict[int, float] = field(default_factory=dict)
    task_steps: dict[int, int] = field(default_factory=dict)
    task_right: dict[int, int] = field(default_factory=dict)
    #: frames of the batch with at least one wrong step (not summed by `add`)
    wrong_frames: torch.Tensor | None = None

    def add(self, other: StepStats) -> StepStats:
        for k in ("steps", "calls", "loss", "end_right", "prog_right", "args_right", "all_right"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for p, v in other.program_loss.items():
            self.program_loss[p] = self.program_loss.get(p, 0.0) + v
            self.program_steps[p] = self.program_steps.get(p, 0) + other.program_steps[p]
        for t, v in other.task_loss.items():
            self.task_loss[t] = self.task_loss.get(t, 0.0) + v
            self.task_steps[t] = self.task_steps.get(t, 0) + other.task_steps[t]
            self.task_right[t] = self.task_right.get(t, 0) + other.task_right[t]
        return self

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in
             ("steps", "calls", "loss", "end_right", "prog_right", "args_right", "all_right")}
        d["program_loss"] = {str(k): v for k, v in self.program_loss.items()}
        d["program_steps"] = {str(k): v for k, v in self.program_steps.items()}
        if self.task_loss:
            for name in ("task_loss", "task_steps", "task_right"):
                d[name] = {str(k): v for k, v in getattr(self, name).items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> StepStats:
        s = cls(**{k: d[k] for k in
                   ("steps", "calls", "loss", "end_right", "prog_right", "args_right",
                    "all_right")})
        s.program_loss = {int(k): v for k, v in d.get("program_loss", {}).items()}
        s.program_steps = {int(k): v for k, v in d.get("program_steps", {}).items()}
        for name in ("task_loss", "task_steps", "task_right"):
            setattr(s, name, {int(k): v for k, v in d.get(name, {}).items()})
        return s

    def summary(self) -> dict[str, float]:
        n, c = max(self.steps, 1), max(self.calls, 1)
        return {
            "loss": self.loss / n,
            "end_acc": self.end_right / n,
            "prog_acc": self.prog_right / c,
            "args_acc": self.args_right / c,
            "step_acc": self.all_right / n,
        }


def forward_frames(model: NPI, frames: FrameSet, batch: Packed):
    """Teacher-forced logits for every step of the batch, in packed order."""
    s = batch.steps
    if frames.step_env is None:
        states = model.encode(frames.env, frames.obs[s], frames.args[s])
    else:  # several tasks: each step through its own environment's encoder
        assert frames.obs_row is not None
        states = torch.empty(s.numel(), model.config.state_dim, device=s.device)
        env_of = frames.step_env[s]
        for e, name in enumerate(frames.envs):
            at = torch.nonzero(env_of == e).flatten()
            if at.numel():
                steps = s[at]
                states = states.index_put(
                    (at,), model.encode(name, frames.env_obs[e][frames.obs_row[steps]],
                                        frames.args[steps]))
    return model.forward_packed(states, frames.program[s], batch.batch_sizes)


def step_correct(frames: FrameSet, batch: Packed, end_logit: torch.Tensor, scores: torch.Tensor,
                 arg_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per step (packed order): end right, program right, all args right (calls only matter)."""
    s = batch.steps
    target_end = frames.end[s] > 0.5
    end_ok = (end_logit > 0) == target_end
    prog_ok = scores.argmax(1) == frames.call[s]
    args_ok = (arg_logits.argmax(2) == frames.call_args[s]).all(1)
    return end_ok, prog_ok, args_ok


def npi_loss(model: NPI, frames: FrameSet, batch: Packed,
             with_stats: bool = True) -> tuple[torch.Tensor, StepStats | None]:
    """Mean per-step loss over the batch, and its statistics."""
    end_logit, scores, arg_logits = forward_frames(model, frames, batch)
    s = batch.steps
    n = s.numel()
    target_end = frames.end[s]
    call = frames.call[s]
    call_args = frames.call_args[s]
    loss_end = F.binary_cross_entropy_with_logits(end_logit, target_end, reduction="none")
    loss_prog = F.cross_entropy(scores, call, ignore_index=IGNORE, reduction="none")
    loss_args = F.cross_entropy(arg_logits.reshape(-1, arg_logits.shape[-1]),
                                call_args.reshape(-1), ignore_index=IGNORE, reduction="none")
    per_step = loss_end + loss_prog + loss_args.reshape(n, -1).sum(1)
    loss = per_step.sum() / n
    if not with_stats:
        return loss, None
    with torch.no_grad():
        program = frames.program[s]
        n_prog = scores.shape[1]
        p_loss = torch.bincount(program, weights=per_step.detach().double(), minlength=n_prog)
        p_steps = torch.bincount(program, minlength=n_prog)
        present = torch.nonzero(p_steps).flatten().tolist()
        is_call = target_end < 0.5
        end_ok, prog_ok, args_ok = step_correct(frames, batch, end_logit, scores, arg_logits)
        all_ok = end_ok & (~is_call | (prog_ok & args_ok))
        stats = StepStats(
            steps=n,
            calls=int(is_call.sum()),
            loss=float(loss) * n,
            end_right=int(end_ok.sum()),
            prog_right=int((prog_ok & is_call).sum()),
            args_right=int((args_ok & is_call).sum()),
            all_right=int(all_ok.sum()),
            program_loss={p: float(p_loss[p]) for p in present},
            program_steps={p: int(p_steps[p]) for p in present},
            wrong_frames=torch.unique(batch.step_frames[~all_ok]),
        )
        if frames.frame_task is not None:
            task = frames.frame_task[batch.step_frames]
            n_tasks = len(frames.tasks)
            t_loss = torch.bincount(task, weights=per_step.detach().double(), minlength=n_tasks)
            t_steps = torch.bincount(task, minlength=n_tasks)
            t_right = torch.bincount(task[all_ok], minlength=n_tasks)
            for t in torch.nonzero(t_steps).flatten().tolist():
                stats.task_loss[t] = float(t_loss[t])
                stats.task_steps[t] = int(t_steps[t])
                stats.task_right[t] = int(t_right[t])
    return loss, stats
