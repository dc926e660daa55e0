"""The step of a model in torch, on any device: the executor's kernel off the CPU.

`StepKernel` (kernel.py) is the CPU's: numpy, linear maps folded, tuned for a few dozen small
operations per step. On a GPU the whole batch's step is a handful of kernels and the state
should never leave the device, so `TorchStepKernel` keeps the batch's state and the callers'
saved states as tensors on the device and runs the model's own modules (copied there once):
the encoder, the core, each LSTM layer's cell, the heads and the key lookup. Only the
observations go to the device each step and only the decisions (B x 5 integers) come back,
since the environments are Python on the host.

It has `StepKernel`'s interface (`zero_state`, `zeros`, `state_cols`, `__call__`, `decide`,
`probabilities`), so `NeuralExecutor` runs either unchanged; on the CPU it gives the same
decisions as `StepKernel` up to float rounding (tests/runtime/test_streaming_verify.py).
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from npi_runtime.kernel import probabilities_of
from npi_runtime.model import NPI


class TorchStepKernel:
    """One step of the model for a batch of top frames, in torch on `device`.

    The state of a batch is one tensor [B, H * (1 + 2 * layers)] laid out as `StepKernel`'s
    (`[y | h_0 .. h_{L-1} | c_0 .. c_{L-1}]`), so the executor saves and restores columns
    `state_cols` the same way."""

    def __init__(self, model: NPI, env_name: str, device: torch.device | str) -> None:
        c = model.config
        self.device = torch.device(device)
        self.layers, self.hidden = c.layers, c.hidden
        self.width = c.hidden * (1 + 2 * c.layers)
        self.state_cols = slice(c.hidden, self.width)
        self.arg_range = c.arg_range
        self.key_dim = c.key_dim
        dev = self.device
        with torch.no_grad():
            self.encoder = copy.deepcopy(model.encoders[env_name]).to(dev).eval()
            self.core = copy.deepcopy(model.core).to(dev).eval()
            self.heads = copy.deepcopy(model.heads).to(dev).eval()
            self.progs = model.memory.progs.detach().to(dev)
            self.keys_t = model.memory.keys.detach().to(dev).t().contiguous()
            lstm = model.lstm
            self.w_ih = [getattr(lstm, f"weight_ih_l{k}").detach().t().contiguous().to(dev)
                         for k in range(self.layers)]
            self.w_hh = [getattr(lstm, f"weight_hh_l{k}").detach().t().contiguous().to(dev)
                         for k in range(self.layers)]
            self.b = [(getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}"))
                      .detach().to(dev) for k in range(self.layers)]
        self.n_programs = int(self.keys_t.shape[1])

    def zeros(self, rows: int, columns: int) -> torch.Tensor:
        return torch.zeros((rows, columns), dtype=torch.float32, device=self.device)

    def zero_state(self, batch: int) -> torch.Tensor:
        """A batch's state, [B, width], all zero, on the device."""
        return self.zeros(batch, self.width)

    def __call__(self, observations: list, args: np.ndarray, programs: np.ndarray,
                 state: torch.Tensor, pool: ThreadPoolExecutor | None = None,
                 threads: int = 1) -> torch.Tensor:
        """One step of the whole batch: the outputs [B, 1 + N + 3R] (end logit, program
        scores, argument logits) on the device; `state` is updated in place."""
        dev, hid = self.device, self.hidden
        with torch.no_grad():
            obs = self.encoder.tensorize(observations).to(dev, non_blocking=True)
            a = torch.from_numpy(np.ascontiguousarray(args)).to(dev, non_blocking=True)
            p = torch.from_numpy(np.ascontiguousarray(programs)).to(dev, non_blocking=True)
            x = self.core(torch.cat([self.encoder(obs, a), self.progs[p]], dim=1))
            for k in range(self.layers):
                hs = slice((1 + k) * hid, (2 + k) * hid)
                cs = slice((1 + self.layers + k) * hid, (2 + self.layers + k) * hid)
                gates = torch.addmm(self.b[k], x, self.w_ih[k])
                gates.addmm_(state[:, hs], self.w_hh[k])
                i, f, g, o = gates.chunk(4, 1)
                c = torch.sigmoid(f) * state[:, cs] + torch.sigmoid(i) * torch.tanh(g)
                x = torch.sigmoid(o) * torch.tanh(c)
                state[:, cs] = c
                state[:, hs] = x
            out = self.heads(x)
            k = self.key_dim
            return torch.cat([out[:, :1], out[:, 1 : 1 + k] @ self.keys_t, out[:, 1 + k :]],
                             dim=1)

    def decide(self, out: torch.Tensor) -> np.ndarray:
        """Per row [end (0/1), program index, three arguments], an int64 array [B, 5] on the
        host (the step's one transfer back)."""
        n = self.n_programs
        with torch.no_grad():
            dec = torch.cat([(out[:, :1] > 0).long(), out[:, 1 : 1 + n].argmax(1, keepdim=True),
                             out[:, 1 + n :].reshape(-1, 3, self.arg_range).argmax(2)], dim=1)
        return dec.cpu().numpy()

    def probabilities(self, row: Any) -> tuple[float, np.ndarray, np.ndarray]:
        """(p_end, p over programs, p over each argument [3, R]) from one row of outputs."""
        return probabilities_of(row.detach().float().cpu().numpy(), self.n_programs,
                                self.arg_range)
