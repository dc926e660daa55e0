"""Domain encoders f_enc(environment, args) -> s: one per environment, selected by env name.

An encoder turns what the environment shows (its observation) plus the current program's three
arguments into a state vector of `state_dim` numbers. Two methods make up the interface:

* `tensorize(observations)` turns raw observations (tuples as `Environment.observe()` returns
  them, or the `obs` lists of trace steps) into one batch tensor. Training calls it once for the
  whole trace set; the executor calls it once per step for the whole batch.
* `forward(obs, args)` maps that tensor and a `[B, 3]` long tensor of arguments to `[B, state]`.

Optionally, `numpy_export()` gives the encoder's form for the executor's numpy step
(npi_runtime.kernel): its first layer as rows of a table to sum (`SymbolRows`) and the torch
layers after it, which the kernel turns into numpy operations. An encoder without one (the
default) is run in torch at every step of the executor.

Symbol observations are one-hot encoded; a linear layer over concatenated one-hots is a sum of
embedding rows, which is how `SymbolEncoder` computes it (one gather and one sum instead of a
wide sparse matmul). An environment with an image slot (the camera) gets `ImageEncoder`
(npi_runtime.image_encoder), a CNN over the image beside the symbol slots' embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from npi_dsl.envs.base import ObsSlot

#: negative slope of every hidden layer's activation, the encoders' and the model's. The
#: paper's MLPs use ReLU; with Adam at a useful learning rate a whole ReLU layer sometimes dies
#: early in training (every unit negative on every input), after which the LSTM sees a
#: constant input and training stalls at a loss near 2. A leaky ReLU cannot die.
LEAK = 0.1


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

    def numpy_export(self) -> tuple[SymbolRows, list[nn.Module]] | None:
        """The encoder as (first layer, torch layers after it) for the numpy kernel, or None:
        the executor then runs `forward` at each step."""
        return None


@dataclass
class SymbolRows:
    """An encoder's first layer in numpy: for each row of observations and arguments, the sum
    of one row of `table` per observation slot and argument (`indices`)."""

    table: np.ndarray  # [rows, hidden] float32
    offsets: np.ndarray  # [slots + 3]: the first table row of each slot and argument
    arg_range: int

    def indices(self, observations: Sequence[Sequence[int]], args: np.ndarray) -> np.ndarray:
        """The table rows [B, slots + 3] of observations [B, slots] and arguments [B, 3];
        arguments are clamped to 0 .. arg_range - 1, as `SymbolEncoder.forward` does."""
        slots = self.offsets.shape[0] - 3
        idx = np.empty((len(observations), slots + 3), dtype=np.int64)
        idx[:, :slots] = observations
        a = idx[:, slots:]
        a[:] = args
        np.minimum(a, self.arg_range - 1, out=a)  # (np.clip costs 30 us a call here, these
        np.maximum(a, 0, out=a)  # two ufuncs 2)
        idx += self.offsets
        return idx


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
        self.act = nn.LeakyReLU(LEAK)  # of the first layer (no parameters)
        nn.init.normal_(self.first.weight, std=(1.0 / len(sizes)) ** 0.5)

    def tail(self) -> list[nn.Module]:
        """The layers after the first (the sum of embedding rows plus the bias)."""
        return [self.act, *self.deeper, self.out]

    def tensorize(self, observations: Sequence[Sequence[Any]]) -> torch.Tensor:
        t = torch.as_tensor(observations, dtype=torch.long)
        return t.reshape(-1, self.n_obs)

    def forward(self, obs: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
        idx = torch.cat([obs, args.clamp(0, self.arg_range - 1)], dim=1) + self.offsets
        h = self.first(idx).sum(1) + self.bias
        for layer in self.tail():
            h = layer(h)
        return h

    def numpy_export(self) -> tuple[SymbolRows, list[nn.Module]]:
        """The embedding table with the bias added to the first argument's rows (every row of
        indices takes exactly one of them, arguments being clamped), and `tail()`."""
        table = self.first.weight.detach().cpu().double().clone()
        first_arg = int(self.offsets[self.n_obs])
        table[first_arg : first_arg + self.arg_range] += self.bias.detach().cpu().double()
        rows = SymbolRows(table.float().numpy(), self.offsets.cpu().numpy().copy(),
                          self.arg_range)
        return rows, self.tail()

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
    """The encoder for `env_name`: a registered factory, else `ImageEncoder` when a slot is an
    image (npi_runtime.image_encoder), else `SymbolEncoder`."""
    factory = _FACTORIES.get(env_name)
    if factory is not None:
        return factory(slots, arg_range, hidden, state_dim, layers)
    if any(s.kind == "image" for s in slots):
        from npi_runtime.image_encoder import image_factory

        return image_factory(env_name, slots, arg_range, hidden, state_dim, layers)
    return _symbol_factory(slots, arg_range, hidden, state_dim, layers)


def encoder_from_description(desc: dict) -> Encoder:
    if desc.get("kind") == "image":
        from npi_runtime.image_encoder import ImageEncoder

        return ImageEncoder.from_description(desc)
    if desc.get("kind") != "symbol":
        raise ValueError(f"unknown encoder kind {desc.get('kind')!r}")
    return SymbolEncoder(desc["slots"], desc["arg_range"], desc["hidden"], desc["state_dim"],
                         desc.get("layers", 1))
