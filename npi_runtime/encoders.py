"""Domain encoders f_enc(environment, args) -> s: one per environment, selected by env name.

An encoder turns what the environment shows (its observation) plus the current program's three
arguments into a state vector of `state_dim` numbers. Two methods make up the interface:

* `tensorize(observations)` turns raw observations (tuples as `Environment.observe()` returns
  them, or the `obs` lists of trace steps) into one batch tensor. Training calls it once for the
  whole trace set; the executor calls it once per step for the whole batch.
* `forward(obs, args)` maps that tensor and a `[B, 3]` long tensor of arguments to `[B, state]`.

Symbol observations are one-hot encoded; a linear layer over concatenated one-hots is a sum of
embedding rows, which is how `SymbolEncoder` computes it (one gather and one sum instead of a
wide sparse matmul). An environment with an image slot (the camera, a later issue) registers its
own encoder class, e.g. a CNN over the image concatenated with the symbol slots' embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from npi_dsl.envs.base import ObsSlot

LEAK = 0.1  # the hidden layers' leaky ReLU slope (see npi_runtime.model.LEAK)


class Encoder(nn.Module):
    """Base class: the interface every domain encoder implements."""

    state_dim: int

    def tensorize(self, observations: Sequence[Sequence[Any]]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, obs: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> dict:
        """JSON description stored in the manifest (enough to rebuild the encoder)."""
        raise NotImplementedError


class SymbolEncoder(Encoder):
    """An MLP over the one-hot symbols of every observation slot and the three arguments."""

    def __init__(self, slots: Sequence[int], arg_range: int, hidden: int, state_dim: int,
                 layers: int = 2) -> None:
        super().__init__()
        self.layers = int(layers)
        self.slots = [int(s) for s in slots]
        self.arg_range = int(arg_range)
        self.hidden = int(hidden)
        self.state_dim = int(state_dim)
        sizes = self.slots + [self.arg_range] * 3
        offsets = torch.tensor([0] + sizes[:-1]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.n_obs = len(self.slots)
        # first layer of the MLP: one row per (slot, symbol), summed, plus a bias
        self.first = nn.Embedding(sum(sizes), self.hidden)
        self.bias = nn.Parameter(torch.zeros(self.hidden))
        deeper: list[nn.Module] = []
        for _ in range(self.layers - 1):
            deeper += [nn.Linear(self.hidden, self.hidden), nn.LeakyReLU(LEAK)]
        self.deeper = nn.Sequential(*deeper)
        self.out = nn.Linear(self.hidden, self.state_dim)
        nn.init.normal_(self.first.weight, std=(1.0 / len(sizes)) ** 0.5)

    def tensorize(self, observations: Sequence[Sequence[Any]]) -> torch.Tensor:
        t = torch.as_tensor(observations, dtype=torch.long)
        return t.reshape(-1, self.n_obs)

    def forward(self, obs: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
        idx = torch.cat([obs, args.clamp(0, self.arg_range - 1)], dim=1) + self.offsets
        h = F.leaky_relu(self.first(idx).sum(1) + self.bias, LEAK)
        return self.out(self.deeper(h))

    def numpy_parts(self) -> dict:
        """The weights for the executor's numpy step (npi_runtime.executor.StepKernel):
        embedding table, offsets, bias, hidden layers as (W^T, b), and the output layer as
        torch (W, b) for the kernel to fold into the core."""
        def arr(t: torch.Tensor):
            return t.detach().cpu().float().numpy().copy()

        deeper = [(arr(m.weight.t()), arr(m.bias)) for m in self.deeper
                  if isinstance(m, nn.Linear)]
        return {
            "table": arr(self.first.weight),
            "offsets": self.offsets.cpu().numpy().copy(),
            "bias": arr(self.bias),
            "deeper": deeper,
            "out": (self.out.weight.detach(), self.out.bias.detach()),
        }

    def describe(self) -> dict:
        return {
            "kind": "symbol",
            "slots": self.slots,
            "arg_range": self.arg_range,
            "hidden": self.hidden,
            "state_dim": self.state_dim,
            "layers": self.layers,
        }


EncoderFactory = Callable[[Sequence[ObsSlot], int, int, int, int], Encoder]
_FACTORIES: dict[str, EncoderFactory] = {}


def register_encoder(env_name: str, factory: EncoderFactory) -> None:
    """Use `factory(slots, arg_range, hidden, state_dim, layers)` for environment `env_name`."""
    _FACTORIES[env_name] = factory


def _symbol_factory(slots: Sequence[ObsSlot], arg_range: int, hidden: int, state: int,
                    layers: int) -> Encoder:
    bad = [s.name for s in slots if s.kind != "symbol"]
    if bad:
        raise ValueError(f"observation slots {bad} are not symbols: this environment needs its "
                         "own encoder (npi_runtime.encoders.register_encoder)")
    return SymbolEncoder([s.symbols for s in slots], arg_range, hidden, state, layers)


def make_encoder(env_name: str, slots: Sequence[ObsSlot], arg_range: int, hidden: int,
                 state_dim: int, layers: int = 2) -> Encoder:
    """The encoder for `env_name` (symbol environments share `SymbolEncoder`)."""
    factory = _FACTORIES.get(env_name, _symbol_factory)
    return factory(slots, arg_range, hidden, state_dim, layers)


def encoder_from_description(desc: dict) -> Encoder:
    if desc.get("kind") != "symbol":
        raise ValueError(f"unknown encoder kind {desc.get('kind')!r}")
    return SymbolEncoder(desc["slots"], desc["arg_range"], desc["hidden"], desc["state_dim"],
                         desc.get("layers", 1))
