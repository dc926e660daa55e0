"""The training loop: teacher-forced, batched over frames, resumable, deterministic.

The trainer knows the model only through the objective (`npi_loss`), the checkpoint functions
and the validation (`verify.evaluate_inputs`). It reports through a callback (`on_event`), so
the CLI draws a rich progress display and a notebook can do what it likes.

* Data: one `FrameSet` (the whole trace set tensorized once). An epoch draws frames of every
  program, shuffled together, in batches of `batch_frames` frames packed without padding.
* Curriculum (the paper's "adaptive curriculum", simplified): an epoch takes every frame of
  the program with the highest recent loss and, of every other program, a share proportional
  to its loss relative to that one, at least `curriculum_floor`. Programs the network already
  executes perfectly stop taking most of the time. Frames the network got wrong at their
  last pass come `hard_repeat` extra times, so the last rare mistakes (a digit sum seen a
  few dozen times in 80,000 steps) get fixed before the learning rate has decayed away.
* Adam; a linear warm-up, then the learning rate decays by `lr_decay` every `decay_steps`
  optimizer steps down to `min_lr` (by steps, not epochs, so that a set of 100 traces and
  one of 5,000 get the same schedule); gradient norm clipping.
* Validation after every epoch: closed-loop exact match (result and trace) and
  teacher-forced step accuracy on inputs longer than the training ones, drawn with their own
  seed. Training stops once validation has been perfect `patience` times in a row, or after
  `max_epochs` epochs or `max_steps` optimizer steps.
* Several tasks (`tasks`, a FrameSet from `data.merge_framesets`): batches mix every task's
  frames; the curriculum runs over the program rows of all tasks, then each task's chosen
  frames are scaled to the mean task's size (`_balance_tasks`); every task validates on its
  own view of the network (`ValTask.view`), and training stops when all are perfect. With a
  `freeze.FrozenCore` only its weights train.
* Checkpoints at every epoch end and every `checkpoint_seconds` within an epoch; `--resume`
  continues from the last one exactly as the uninterrupted run would have (same weights).
* Determinism: same seed, same data, same thread count -> same weights.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from npi_dsl.interpreter import TaskRunner
from npi_runtime import checkpoint as ckpt
from npi_runtime import distributed
from npi_runtime.data import FrameSet
from npi_runtime.freeze import FrozenCore
from npi_runtime.model import NPI
from npi_runtime.objective import StepStats, npi_loss
from npi_runtime.verify import evaluate_inputs, sample_inputs

METRICS_FILE = "metrics.jsonl"
#: `TrainConfig.precision`'s values
PRECISIONS = ("fp32", "bf16")


@dataclass
class TrainConfig:
    """How `npi train` trains. The defaults are what `npi train` and `npi demo` use."""

    seed: int = 0
    max_epochs: int = 400
    max_steps: int = 5000  # optimizer steps; training stops at whichever limit comes first
    batch_frames: int = 128  # frames per batch (a few hundred steps)
    lr: float = 3e-3
    lr_decay: float = 0.85  # per `decay_steps` optimizer steps (about an epoch of addition)
    decay_steps: int = 100
    warmup_steps: int = 400  # linear warm-up of the learning rate
    min_lr: float = 1e-4
    clip: float = 1.0  # gradient norm
    curriculum_floor: float = 0.2
    hard_repeat: int = 3  # extra copies per epoch of frames the network last got wrong
    threads: int = 1  # torch threads; 1 is fastest on a shared 2-core machine (docs/training.md)
    val_lengths: tuple[int, ...] = ()  # empty: derived by api.train (val_defaults.py)
    val_count: int = 8
    val_seed: int = 9_999_991
    patience: int = 3
    eval_steps: int = 500  # also validate every this many optimizer steps inside long epochs
    checkpoint_seconds: float = 60.0
    #: fp32, or bf16: the teacher-forced forward pass under torch.autocast to bfloat16 (the
    #: weights, the optimizer and the loss stay float32; docs/training.md "Devices")
    precision: str = "fp32"

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "val_lengths" in kw:
            kw["val_lengths"] = tuple(kw["val_lengths"])
        return cls(**kw)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["val_lengths"] = list(self.val_lengths)
        return d


def default_val_lengths(train_lengths: Sequence[int]) -> tuple[int, ...]:
    """2L+3 and 5L+3: what a resumed run of an earlier npi that recorded no validation
    lengths validates at (new runs record the lengths api.train derives, val_defaults.py)."""
    longest = max(train_lengths)
    return (2 * longest + 3, 5 * longest + 3)


Event = Callable[[str, dict], None]


@dataclass
class ValTask:
    """One task of a run of several (or of a run learning a new program): what validating it
    needs. The network runs it as `NPI.view(programs, {env: encoder})` does."""

    label: str  # the task's name in the run: FILESTEM.TASK
    runner: TaskRunner
    programs: tuple[str, ...]  # the qualified programs of its file
    encoder: str  # the key of its environment's encoder
    val_lengths: tuple[int, ...]

    def view(self, model: NPI) -> NPI:
        return model.view(self.programs, {self.runner.checked.env_name: self.encoder})


class Trainer:
    """Trains `model` on `frames`, validating against the reference `runner`."""

    def __init__(self, model: NPI, frames: FrameSet, runner: TaskRunner | None,
                 config: TrainConfig, run_dir: Path, manifest: dict,
                 on_event: Event | None = None, *, tasks: Sequence[ValTask] = (),
                 freeze: FrozenCore | None = None, device: torch.device | None = None,
                 group: Any = None) -> None:
        """One task (`runner`), or several (`tasks`, with `runner` None and `frames` merged
        by `data.merge_framesets` in the same order); `freeze` trains only its weights.

        `device`: where the model and the frames' tensors live while training (the CPU by
        default; the bookkeeping, epoch orders and checkpoints stay on the CPU).
        `group`: a `distributed.Group` when this is one process of several (DDP)."""
        if config.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not "
                             f"{config.precision!r}")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        model.to(self.device)
        self.model = model
        self.frames = frames
        self.data = frames.to(self.device)  # what the loss indexes: on the device
        self.group = group
        self.runner = runner
        self.config = config
        self.run_dir = Path(run_dir)
        self.manifest = manifest
        self.on_event = on_event or (lambda kind, data: None)
        self.freeze = freeze
        self.trainable = freeze.parameters() if freeze else list(model.parameters())
        self.optimizer = torch.optim.Adam(self.trainable, lr=config.lr)
        self.tasks = list(tasks)
        # counters (all saved in the resume state)
        self.step = 0  # optimizer steps
        self.epoch = 0
        self.batch_in_epoch = 0
        self.order: torch.Tensor | None = None  # this epoch's frame order
        self.epoch_stats = StepStats()
        self.program_loss: dict[int, float] = {}  # curriculum: last epoch's mean loss per program
        self.frame_wrong = torch.zeros(frames.n_frames, dtype=torch.bool)  # at its last pass
        self.perfect_streak = 0
        self.seconds = 0.0  # training wall time, summed over resumed sessions
        self.stopped: str | None = None
        self.history: list[dict] = []
        self.task_share: dict[str, float] = {}  # this epoch's share of frames per task
        if runner is not None:
            lengths = sorted({int(x) for x in frames_lengths(manifest)}) or [1]
            self.val_lengths = tuple(config.val_lengths) or default_val_lengths(lengths)
            self.val_inputs = {
                n: sample_inputs(runner, n, config.val_count, config.val_seed)
                for n in self.val_lengths
            }
        else:
            self.val_lengths = ()
            self.task_inputs = {
                t.label: {n: sample_inputs(t.runner, n, config.val_count, config.val_seed)
                          for n in t.val_lengths} for t in self.tasks}

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict:
        torch.set_num_threads(self.config.threads)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        c = self.config
        start = time.perf_counter() - self.seconds
        last_ckpt = time.perf_counter()
        if self.stopped is not None:
            return self.summary()
        while self.epoch < c.max_epochs:
            if self.order is None:
                self.order = self._epoch_order()
                self.batch_in_epoch = 0
                self.epoch_stats = StepStats()
            self.model.train()
            lr = max(c.lr * c.lr_decay ** (self.step / c.decay_steps), c.min_lr)
            n_batches = (self.order.numel() + c.batch_frames - 1) // c.batch_frames
            while self.batch_in_epoch < n_batches and self.step < c.max_steps:
                lo = self.batch_in_epoch * c.batch_frames
                batch = self.frames.pack(self.order[lo : lo + c.batch_frames])
                warm = min(1.0, (self.step + 1) / c.warmup_steps) if c.warmup_steps else 1.0
                lr = max(c.lr * c.lr_decay ** (self.step / c.decay_steps), c.min_lr)
                for g in self.optimizer.param_groups:
                    g["lr"] = lr * warm
                loss, stats = self._loss(batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.group is not None:
                    stats = self.group.reduce(self.trainable, stats)
                if self.freeze is not None:
                    self.freeze.before_step()
                if c.clip:
                    torch.nn.utils.clip_grad_norm_(self.trainable, c.clip)
                self.optimizer.step()
                if self.freeze is not None:
                    self.freeze.after_step()
                assert stats is not None
                self.epoch_stats.add(stats)
                self.frame_wrong[batch.frames] = False
                if stats.wrong_frames is not None:
                    self.frame_wrong[stats.wrong_frames.cpu()] = True
                self.step += 1
                self.batch_in_epoch += 1
                self.seconds = time.perf_counter() - start
                self.on_event("batch", {"epoch": self.epoch, "batch": self.batch_in_epoch,
                                        "batches": n_batches, "loss": stats.loss / stats.steps
                                        if self.group is not None else float(loss.detach()),
                                        "lr": lr})
                if c.eval_steps and self.step % c.eval_steps == 0 \
                        and self.batch_in_epoch < n_batches:
                    # inside a long epoch (bubble sort's first is 5,000 batches): validate
                    self._evaluate(start, lr, self.epoch + self.batch_in_epoch / n_batches)
                    last_ckpt = time.perf_counter()
                    if self.stopped:
                        return self.summary()
                elif time.perf_counter() - last_ckpt > c.checkpoint_seconds \
                        and self.batch_in_epoch < n_batches:
                    self.save()
                    last_ckpt = time.perf_counter()
            # end of epoch: curriculum statistics, validation, checkpoint
            es = self.epoch_stats
            self.program_loss = {p: es.program_loss[p] / es.program_steps[p]
                                 for p in es.program_loss}
            self.epoch += 1
            self.order = None
            self._evaluate(start, lr, self.epoch)
            last_ckpt = time.perf_counter()
            if self.stopped:
                break
        return self.summary()

    def _loss(self, batch: Any) -> tuple[torch.Tensor, StepStats]:
        """The batch's loss and statistics: on the device, under bf16 autocast if asked;
        one process of several takes its share of the batch's frames."""
        device = self.device
        if self.group is not None:
            batch = self.group.share(self.frames, batch)
            if batch is None:  # no frame of this batch here: gradients of zero
                return sum(p.sum() * 0.0 for p in self.trainable), StepStats()
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=self.config.precision == "bf16"):
            loss, stats = npi_loss(self.model, self.data, batch.to(device))
        assert stats is not None
        if self.group is not None:  # the summed loss: Group.reduce divides by all steps
            loss = loss * stats.steps
        return loss, stats

    def _evaluate(self, start: float, lr: float, epoch: float) -> None:
        """Validate, log a metrics record, update the early-stopping streak, checkpoint."""
        c = self.config
        self.seconds = time.perf_counter() - start
        if self.group is None:
            val = self.validate()
        else:  # process 0 validates for all
            val = self.group.broadcast(self.validate() if self.group.is_main else None)
        self.seconds = time.perf_counter() - start
        record = {"step": self.step, "epoch": round(epoch, 3) if epoch % 1 else int(epoch),
                  "seconds": round(self.seconds, 3), "lr": lr,
                  "train": self.epoch_stats.summary(), "val": val}
        if self.tasks:
            record["train"]["tasks"] = self._task_summary()
        self.history.append(record)
        self._append_metrics(record)
        self.perfect_streak = self.perfect_streak + 1 if val["perfect"] else 0
        if self.perfect_streak >= c.patience:
            self.stopped = f"validation perfect {c.patience} times in a row"
        elif self.epoch >= c.max_epochs or self.step >= c.max_steps:
            self.stopped = (f"reached {c.max_steps} steps" if self.step >= c.max_steps
                            else f"reached {c.max_epochs} epochs")
        self.on_event("epoch", record)
        self.save()

    def summary(self) -> dict:
        # epochs trained: fractional when training stopped inside an epoch (bubble sort)
        epochs = self.history[-1]["epoch"] if self.history and self.stopped else self.epoch
        return {"step": self.step, "epochs": epochs, "seconds": self.seconds,
                "stopped": self.stopped, "last": self.history[-1] if self.history else None}

    # ------------------------------------------------------------------ pieces
    def _epoch_order(self) -> torch.Tensor:
        """This epoch's frames: the curriculum's share of each program, shuffled together."""
        c = self.config
        g = torch.Generator().manual_seed(c.seed * 1_000_003 + self.epoch)
        fprog = self.frames.program[self.frames.frame_start]
        chosen = []
        top = max(self.program_loss.values(), default=0.0)
        for p in torch.unique(fprog).tolist():
            ids = torch.nonzero(fprog == p).flatten()
            share = 1.0
            if top > 0 and p in self.program_loss:
                share = min(1.0, max(c.curriculum_floor, self.program_loss[p] / top))
            k = max(1, round(share * ids.numel()))
            chosen.append(ids[torch.randperm(ids.numel(), generator=g)[:k]])
        if self.frames.frame_task is not None and len(self.frames.tasks) > 1:
            chosen = self._balance_tasks(torch.cat(chosen), g)
        hard = torch.nonzero(self.frame_wrong).flatten()
        frames = torch.cat([*chosen, *([hard] * c.hard_repeat)])
        order = frames[torch.randperm(frames.numel(), generator=g)]
        self._count_shares(order)
        return order

    def _balance_tasks(self, chosen: torch.Tensor, g: torch.Generator) -> list[torch.Tensor]:
        """Several tasks: scale each task's chosen frames by (the mean task's frames / the
        task's frames), so that every task weighs as much as the mean task whatever the size
        of its trace set (bubble sort's traces have 20 times addition's frames), and the
        curriculum's shares within and across tasks stay as they were. A task scaled up
        repeats its frames (whole copies, then a random part)."""
        task = self.frames.frame_task
        assert task is not None
        sizes = torch.bincount(task, minlength=len(self.frames.tasks)).double()
        mean = sizes[sizes > 0].mean()
        of_chosen = task[chosen]
        out = []
        for t in range(len(self.frames.tasks)):
            ids = chosen[of_chosen == t]
            if not ids.numel():
                continue
            want = max(1, round(float(ids.numel() * mean / sizes[t])))
            whole, part = divmod(want, ids.numel())
            out += [ids] * whole + [ids[torch.randperm(ids.numel(), generator=g)[:part]]]
        return out

    def _count_shares(self, order: torch.Tensor) -> None:
        if self.frames.frame_task is not None:
            counts = torch.bincount(self.frames.frame_task[order],
                                    minlength=len(self.frames.tasks)).tolist()
            self.task_share = {t: round(k / max(order.numel(), 1), 4)
                               for t, k in zip(self.frames.tasks, counts, strict=True)}

    def _task_summary(self) -> dict:
        """Per task: its share of the epoch's frames (the curriculum's choice), and the
        training loss and step accuracy on its steps so far in the epoch."""
        es = self.epoch_stats
        out = {}
        for i, label in enumerate(self.frames.tasks):
            n = es.task_steps.get(i, 0)
            out[label] = {"share": self.task_share.get(label, 0.0),
                          "loss": es.task_loss.get(i, 0.0) / max(n, 1),
                          "step_acc": es.task_right.get(i, 0) / max(n, 1)}
        return out

    def validate(self) -> dict:
        """Closed loop and teacher forcing at the validation lengths (of every task)."""
        if not self.tasks:
            return self._validate(self.model, self.runner, self.val_inputs)
        tasks = {t.label: self._validate(t.view(self.model), t.runner,
                                         self.task_inputs[t.label]) for t in self.tasks}
        right = sum(v["step_accuracy"] * v["inputs"] for v in tasks.values())
        total = sum(v["inputs"] for v in tasks.values())
        return {"tasks": tasks, "step_accuracy": right / total if total else 0.0,
                "result_exact": min(v["result_exact"] for v in tasks.values()),
                "perfect": all(v["perfect"] for v in tasks.values())}

    def _validate(self, model: NPI, runner: Any, val_inputs: dict) -> dict:
        out: dict[str, Any] = {"lengths": {}}
        perfect = True
        right = total = 0.0
        for n, inputs in val_inputs.items():
            rep = evaluate_inputs(model, runner, n, inputs, max_failures=1)
            out["lengths"][str(n)] = {"result_exact": rep.result_exact,
                                      "trace_exact": rep.trace_exact,
                                      "step_accuracy": rep.step_accuracy}
            perfect &= rep.result_exact == 1.0 and rep.trace_exact == 1.0 \
                and rep.step_accuracy == 1.0
            right += rep.step_accuracy * rep.count
            total += rep.count
        out["step_accuracy"] = right / total if total else 0.0
        out["result_exact"] = min(v["result_exact"] for v in out["lengths"].values())
        out["perfect"] = perfect
        if self.tasks:
            out["inputs"] = int(total)
        return out

    def _append_metrics(self, record: dict) -> None:
        """One line per validation, before its checkpoint: `--resume` cuts the lines after
        the committed step away."""
        if not self.writes:
            return
        ckpt.fault_point(f"append {METRICS_FILE}")
        with open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "epoch_stats": self.epoch_stats.to_json(),
            "program_loss": {str(k): v for k, v in self.program_loss.items()},
            "perfect_streak": self.perfect_streak, "seconds": self.seconds,
            "stopped": self.stopped, "history": self.history[-3:],
            "val_lengths": list(self.val_lengths),
        }

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory (one of several: process 0)."""
        return distributed.writes(self.group)

    def save(self) -> None:
        """Commit a checkpoint: weights, optimizer, state and manifest, as one."""
        if not self.writes:
            return
        extra = {"torch_rng": torch.get_rng_state(), "frame_wrong": self.frame_wrong}
        if self.order is not None:
            extra["order"] = self.order
        manifest = {**self.manifest, "training": self.config.to_dict(),
                    "progress": {"step": self.step, "epochs": self.epoch,
                                 "seconds": round(self.seconds, 3), "stopped": self.stopped,
                                 "validation": self.history[-1]["val"] if self.history
                                 else None}}
        ckpt.save_checkpoint(self.run_dir, self.state(), self.model, self.optimizer, extra,
                             manifest)

    def restore(self, resume: ckpt.ResumeState) -> None:
        """Continue from a saved resume state (weights, optimizer, counters, RNG, data order)."""
        ckpt.restore_weights(self.model, resume, self.run_dir)
        ckpt.restore_optimizer(self.model, self.optimizer, resume)
        s = resume.state
        n = self.frames.n_frames
        try:
            self.step = _count(s["step"])
            self.epoch = _count(s["epoch"])
            self.batch_in_epoch = _count(s["batch_in_epoch"])
            self.epoch_stats = StepStats.from_json(s["epoch_stats"])
            es = self.epoch_stats
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (
                    es.steps, es.calls, es.loss, es.end_right, es.prog_right, es.args_right,
                    es.all_right, *es.program_loss.values(), *es.program_steps.values())):
                raise TypeError("epoch_stats holds a value that is not a number")
            self.program_loss = {int(k): float(v) for k, v in s["program_loss"].items()}
            self.perfect_streak = _count(s["perfect_streak"])
            self.seconds = float(s["seconds"])
            self.stopped = s.get("stopped")
            if self.stopped is not None and not isinstance(self.stopped, str):
                raise TypeError("stopped is not a string")
            self.history = list(s.get("history", []))
            if not all(isinstance(h, dict) and "val" in h for h in self.history):
                raise TypeError("history is not a list of metrics records")
        except KeyError as e:
            raise ckpt.CheckpointError(f"the resume state is corrupt: no field {e}") from None
        except (TypeError, ValueError, AttributeError, IndexError) as e:
            raise ckpt.CheckpointError(f"the resume state is corrupt: {e}") from None
        order = resume.extra.get("order")
        if order is not None and (order.dtype != torch.int64 or order.dim() != 1 or (
                order.numel() and (int(order.min()) < 0 or int(order.max()) >= n))):
            raise ckpt.CheckpointError(
                f"the resume state's frame order does not fit the {n} frames of the traces "
                "given: resume with the trace files the run was started with")
        self.order = order
        if order is not None:
            self._count_shares(order)
        if "frame_wrong" in resume.extra:
            wrong = resume.extra["frame_wrong"]
            if wrong.dtype != torch.bool or tuple(wrong.shape) != (n,):
                raise ckpt.CheckpointError(
                    f"the resume state describes {wrong.numel()} frames, the traces given "
                    f"have {n}: resume with the trace files the run was started with")
            self.frame_wrong = wrong.clone()
        if "torch_rng" in resume.extra:
            try:
                torch.set_rng_state(resume.extra["torch_rng"])
            except (RuntimeError, TypeError) as e:
                raise ckpt.CheckpointError(f"the resume state's RNG state is corrupt: "
                                           f"{e}") from None
        self._truncate_metrics()

    def _truncate_metrics(self) -> None:
        """Drop metrics lines written after the checkpoint we resume from."""
        if not self.writes:
            return
        path = self.run_dir / METRICS_FILE
        if not path.exists():
            return
        keep = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                if json.loads(line)["step"] <= self.step:
                    keep.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        ckpt.write_atomic(path, ("\n".join(keep) + "\n").encode() if keep else b"")


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def frames_lengths(manifest: dict) -> list[int]:
    return list(manifest.get("data", {}).get("lengths", []))
