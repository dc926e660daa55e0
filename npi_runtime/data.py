"""Traces -> frames -> packed batches.

Every frame starts from a zero LSTM state, so a frame is an independent sequence of steps. The
whole trace set is tensorized once (`FrameSet`): the steps of each frame lie contiguous in flat
tensors, and a batch is only a list of frame ids. `FrameSet.pack` turns it into the flat step
indices in `PackedSequence` order (time-major, frames sorted by length) plus `batch_sizes`, so
no padding is ever built and the few long frames don't make the short ones pay for padding.
Batches draw frames of all programs at random (DESIGN.md: batches bucketed by length hold one
program each and training stalls).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

import torch

from npi_dsl.errors import NpiError
from npi_dsl.trace import ACT
from npi_runtime.encoders import Encoder

IGNORE = -100


class TraceError(NpiError, ValueError):
    """A trace that does not fit the model or the program file (unknown program, another
    environment or vocabulary, a wrong result). Exit 2: bad input."""

    exit_code = 2


@dataclass
class Packed:
    """One batch of frames in packed (time-major) order."""

    steps: torch.Tensor  # [S] flat step indices into the FrameSet
    batch_sizes: torch.Tensor  # [T] as in PackedSequence
    frames: torch.Tensor  # [B] frame ids, sorted by decreasing length
    step_frames: torch.Tensor  # [S] the frame id of each step

    def to(self, device: torch.device) -> Packed:
        """The batch's index tensors on `device` (`batch_sizes` stays on the CPU, where the
        packed LSTM reads it); the batch itself on the CPU."""
        if device.type == "cpu":
            return self
        return Packed(steps=self.steps.to(device), batch_sizes=self.batch_sizes,
                      frames=self.frames.to(device), step_frames=self.step_frames.to(device))


@dataclass
class FrameSet:
    """All steps of a trace set, grouped by frame, as flat tensors.

    One environment (`build_frameset`): `obs` holds every step's observation. Several tasks
    (`merge_framesets`): `env` is empty, and each step's observation is row `obs_row[i]` of
    `env_obs[step_env[i]]`, the observations of encoder `envs[step_env[i]]`; `frame_task`
    says which of `tasks` each frame comes from.
    """

    env: str
    obs: torch.Tensor  # [S, ...] what the encoder's tensorize made of the observations
    program: torch.Tensor  # [S] memory index of the frame's program
    args: torch.Tensor  # [S, 3] the frame's arguments
    end: torch.Tensor  # [S] float, 1.0 on return steps
    call: torch.Tensor  # [S] memory index of the called program, IGNORE on returns
    call_args: torch.Tensor  # [S, 3] the call's arguments, IGNORE on returns
    frame_start: torch.Tensor  # [F]
    frame_len: torch.Tensor  # [F]
    frame_trace: torch.Tensor  # [F] index of the trace the frame comes from
    envs: tuple[str, ...] = ()
    env_obs: tuple[torch.Tensor, ...] = ()
    step_env: torch.Tensor | None = None  # [S]
    obs_row: torch.Tensor | None = None  # [S]
    tasks: tuple[str, ...] = ()
    frame_task: torch.Tensor | None = None  # [F]

    @property
    def n_frames(self) -> int:
        return int(self.frame_start.numel())

    def to(self, device: torch.device) -> FrameSet:
        """Every tensor on `device` (tensorised once: training then indexes it there); the
        FrameSet itself on the CPU."""
        if device.type == "cpu":
            return self
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in kw.items():
            if isinstance(value, torch.Tensor):
                kw[name] = value.to(device)
        kw["env_obs"] = tuple(t.to(device) for t in self.env_obs)
        return FrameSet(**kw)

    @property
    def n_steps(self) -> int:
        return int(self.program.numel())

    def pack(self, frame_ids: torch.Tensor) -> Packed:
        lengths = self.frame_len[frame_ids]
        order = torch.argsort(lengths, descending=True, stable=True)
        frames = frame_ids[order]
        lengths = lengths[order]
        t = torch.arange(int(lengths[0]))
        mask = t[None, :] < lengths[:, None]  # [B, T]
        idx = self.frame_start[frames][:, None] + t[None, :]
        steps = idx.t()[mask.t()]
        step_frames = frames[:, None].expand_as(idx).t()[mask.t()]
        return Packed(steps=steps, batch_sizes=mask.sum(0), frames=frames,
                      step_frames=step_frames)

    def batches(self, frame_ids: torch.Tensor, batch_frames: int) -> Iterator[Packed]:
        for i in range(0, frame_ids.numel(), batch_frames):
            yield self.pack(frame_ids[i : i + batch_frames])


def merge_framesets(parts: Sequence[tuple[str, FrameSet]]) -> FrameSet:
    """One FrameSet of several tasks' (`(task label, its FrameSet)`, each built against the
    same program memory); frames, steps and traces keep their order, task after task. Tasks
    of the same encoder (`FrameSet.env`) share its observation tensor."""
    envs: list[str] = []
    for _, fs in parts:
        if fs.env not in envs:
            envs.append(fs.env)
    env_obs: dict[str, list[torch.Tensor]] = {e: [] for e in envs}
    rows_so_far = dict.fromkeys(envs, 0)
    step_env, obs_row, frame_task, frame_start, frame_trace = [], [], [], [], []
    steps = traces = 0
    for t, (_, fs) in enumerate(parts):
        e = envs.index(fs.env)
        env_obs[fs.env].append(fs.obs)
        step_env.append(torch.full((fs.n_steps,), e, dtype=torch.long))
        obs_row.append(torch.arange(fs.n_steps) + rows_so_far[fs.env])
        rows_so_far[fs.env] += fs.n_steps
        frame_task.append(torch.full((fs.n_frames,), t, dtype=torch.long))
        frame_start.append(fs.frame_start + steps)
        frame_trace.append(fs.frame_trace + traces)
        steps += fs.n_steps
        traces += int(fs.frame_trace.max()) + 1 if fs.n_frames else 0

    def cat(name: str) -> torch.Tensor:
        return torch.cat([getattr(fs, name) for _, fs in parts])

    return FrameSet(
        env="", obs=torch.empty(0), program=cat("program"), args=cat("args"), end=cat("end"),
        call=cat("call"), call_args=cat("call_args"), frame_start=torch.cat(frame_start),
        frame_len=cat("frame_len"), frame_trace=torch.cat(frame_trace), envs=tuple(envs),
        env_obs=tuple(torch.cat(env_obs[e]) for e in envs), step_env=torch.cat(step_env),
        obs_row=torch.cat(obs_row), tasks=tuple(label for label, _ in parts),
        frame_task=torch.cat(frame_task))


def build_frameset(records: Iterable[dict], memory: Sequence[str], encoder: Encoder,
                   env_name: str | None = None) -> FrameSet:
    """Tensorize npi-trace/1 records for a model whose program memory lists `memory`.

    Programs are resolved through each record's `programs` list (qualified names), so that two
    files' programs with the same bare name stay distinct.
    """
    index = {name: i for i, name in enumerate(memory)}
    obs: list = []
    program: list[int] = []
    args: list = []
    end: list[float] = []
    call: list[int] = []
    call_args: list = []
    frame_start: list[int] = []
    frame_len: list[int] = []
    frame_trace: list[int] = []
    arg_range = getattr(encoder, "arg_range", None)
    for t, rec in enumerate(records):
        name = rec["env"]["name"]
        if env_name is None:
            env_name = name
        elif name != env_name:
            raise TraceError(f"trace {t} uses env {name}, expected {env_name}")
        bare = {ACT: index[ACT]}
        for q in rec["programs"]:
            if q not in index:
                raise TraceError(f"trace {t} uses program {q}, which the model does not know")
            bare[q.rsplit(".", 1)[-1]] = index[q]
        steps = rec["steps"]
        order = sorted(range(len(steps)), key=lambda i: steps[i]["frame"])
        current = None
        try:
            for i in order:
                s = steps[i]
                if s["frame"] != current:
                    current = s["frame"]
                    frame_start.append(len(program))
                    frame_len.append(0)
                    frame_trace.append(t)
                frame_len[-1] += 1
                obs.append(s["obs"])
                program.append(bare[s["program"]])
                args.append(s["args"])
                if s["end"]:
                    end.append(1.0)
                    call.append(IGNORE)
                    call_args.append((IGNORE, IGNORE, IGNORE))
                else:
                    end.append(0.0)
                    call.append(bare[s["call"]])
                    call_args.append(s["call_args"])
        except KeyError as e:
            raise TraceError(f"trace {t}: unknown program or missing field {e}") from None
    if not program:
        raise TraceError("no steps in the traces")
    ca = torch.tensor(call_args, dtype=torch.long)
    if arg_range is not None and int(ca.max()) >= arg_range:
        raise TraceError(f"an argument is {int(ca.max())}, beyond the model's range {arg_range}")
    return FrameSet(
        env=env_name or "",
        obs=encoder.tensorize(obs),
        program=torch.tensor(program, dtype=torch.long),
        args=torch.tensor(args, dtype=torch.long),
        end=torch.tensor(end),
        call=torch.tensor(call, dtype=torch.long),
        call_args=ca,
        frame_start=torch.tensor(frame_start, dtype=torch.long),
        frame_len=torch.tensor(frame_len, dtype=torch.long),
        frame_trace=torch.tensor(frame_trace, dtype=torch.long),
    )
