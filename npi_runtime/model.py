"""The NPI model (Reed & de Freitas 2016): domain encoders, program memory, core, heads.

One step of a frame: `s = f_enc(obs, args)`; the core MLP maps `[s, p]` (p: the frame's program
embedding, a row of `M_prog`) to the input of a 2-layer LSTM; from the top LSTM state the heads
read the end bit, the key `k` of the next program (next program = argmax of `M_key . k`) and the
three next arguments. The LSTM state is zero at the start of every frame (Algorithm 1), so frames
are independent sequences: training runs thousands of them at once as one packed sequence
(`forward_packed`), the executor steps the top frame of many instances at once (`step`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from npi_dsl.trace import ACT
from npi_runtime.encoders import LEAK, Encoder

__all__ = ["ACT", "LEAK", "NPI", "NPIConfig", "ProgramMemory", "packed_lstm"]


@dataclass
class NPIConfig:
    """Model sizes; the defaults are the paper's: a 2-layer LSTM of 256 units.

    The paper does not give K, P or the encoder's and MLPs' widths; P and the core's and
    heads' hidden layers follow the LSTM (256), K is 32 ("much smaller than P"), the encoder
    outputs 128 (docs/training.md).
    """

    hidden: int = 256  # LSTM units per layer
    layers: int = 2
    state_dim: int = 128  # the encoder's output s
    encoder_hidden: int = 128
    program_dim: int = 256  # P, the program embedding
    key_dim: int = 32  # K, "much smaller than P"
    core_hidden: int = 256  # the core MLP's hidden layer
    head_hidden: int = 256  # the heads' shared hidden layer
    arg_range: int = 10

    @classmethod
    def paper(cls) -> NPIConfig:
        """The paper's core: 2 layers of 256 units (P = 256); the same as the defaults."""
        return cls()

    @classmethod
    def sized(cls, hidden: int) -> NPIConfig:
        """The defaults with the LSTM, P, and the core's and heads' hidden layers at `hidden`."""
        return cls(hidden=hidden, program_dim=hidden, core_hidden=hidden, head_hidden=hidden)

    @classmethod
    def from_dict(cls, d: Mapping) -> NPIConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)


class ProgramMemory(nn.Module):
    """M_key (N x K) and M_prog (N x P), one row per program, keyed by qualified name."""

    def __init__(self, names: Sequence[str], key_dim: int, program_dim: int) -> None:
        super().__init__()
        self.names: list[str] = list(names)
        self.key_dim, self.program_dim = key_dim, program_dim
        n = len(self.names)
        self.keys = nn.Parameter(torch.randn(n, key_dim) / key_dim**0.5)
        self.progs = nn.Parameter(torch.randn(n, program_dim))

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def add_program(self, name: str) -> int:
        """Append a new program's rows (randomly initialised) and return its index."""
        if name in self.names:
            raise ValueError(f"program {name} is already in the program memory")
        with torch.no_grad():
            key = torch.randn(1, self.key_dim) / self.key_dim**0.5
            prog = torch.randn(1, self.program_dim)
            self.keys = nn.Parameter(torch.cat([self.keys.detach(), key]))
            self.progs = nn.Parameter(torch.cat([self.progs.detach(), prog]))
        self.names.append(name)
        return len(self.names) - 1


class MemoryView(nn.Module):
    """Some rows of a program memory (in the memory's order), read when the view is made."""

    def __init__(self, memory: ProgramMemory, names: Sequence[str]) -> None:
        super().__init__()
        rows = torch.tensor([memory.index(n) for n in names], dtype=torch.long)
        self.names = list(names)
        self.key_dim, self.program_dim = memory.key_dim, memory.program_dim
        self.keys = memory.keys.detach()[rows]
        self.progs = memory.progs.detach()[rows]

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)


def packed_lstm(lstm: nn.LSTM, x: torch.Tensor, batch_sizes: torch.Tensor) -> torch.Tensor:
    """`lstm` over a packed sequence from zero states; returns the top layer's outputs [S, H].

    Equal to `lstm(PackedSequence(x, batch_sizes))[0].data`; written to train faster on a
    CPU: at the default 2x256 training runs 1.35x faster than with `nn.LSTM` over a
    `PackedSequence`, equal at 2x128 (benchmarks/bench_train.py; docs/results.md). Each
    layer's input projection is one matmul over all steps, and the per-time-step pieces come
    from `split` (whose gradient is one `cat`) instead of slices (whose gradients each fill a
    zero tensor the size of the whole input).
    """
    sizes = batch_sizes.tolist()
    inp = x
    for layer in range(lstm.num_layers):
        w_ih = getattr(lstm, f"weight_ih_l{layer}")
        w_hh = getattr(lstm, f"weight_hh_l{layer}")
        bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
        projected = torch.addmm(bias, inp, w_ih.t()).split(sizes)
        outs = []
        h = c = inp  # placeholders: the first step has zero state
        for t, n in enumerate(sizes):
            gates = projected[t] if t == 0 else torch.addmm(projected[t], h[:n], w_hh.t())
            i, f, g, o = gates.chunk(4, 1)
            if t == 0:
                c = torch.sigmoid(i) * torch.tanh(g)
            else:
                c = torch.sigmoid(f) * c[:n] + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        inp = torch.cat(outs)
    return inp


class NPI(nn.Module):
    """Encoders (one per environment), program memory, core MLP + LSTM, and heads."""

    def __init__(self, config: NPIConfig, encoders: Mapping[str, Encoder],
                 programs: Sequence[str]) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoders = nn.ModuleDict(dict(encoders))
        for name, enc in self.encoders.items():
            if enc.state_dim != c.state_dim:
                raise ValueError(f"encoder {name} emits {enc.state_dim} numbers, not {c.state_dim}")
        #: (env name, configuration, vocabulary) -> encoder key, as in the run's manifest
        #: (npi_runtime.multitask.env_identity); empty for a network built by hand
        self.env_keys: dict[tuple[str, str, str], str] = {}
        names = list(programs)
        if ACT not in names:
            names = [ACT, *names]
        self.memory = ProgramMemory(names, c.key_dim, c.program_dim)
        self.core = nn.Sequential(
            nn.Linear(c.state_dim + c.program_dim, c.core_hidden),
            nn.LeakyReLU(LEAK),
            nn.Linear(c.core_hidden, c.hidden),
            # keeps the LSTM's input at unit scale: without it Adam sometimes grows the input
            # weights until every gate saturates at the frame's first step, and the network
            # stalls, blind to its program and observation
            nn.LayerNorm(c.hidden),
        )
        self.lstm = nn.LSTM(c.hidden, c.hidden, num_layers=c.layers)
        # the three heads share one hidden layer; outputs [end | key | arg1 | arg2 | arg3]
        self.heads = nn.Sequential(
            nn.Linear(c.hidden, c.head_hidden),
            nn.LeakyReLU(LEAK),
            nn.Linear(c.head_hidden, 1 + c.key_dim + 3 * c.arg_range),
        )

    def view(self, programs: Sequence[str], encoders: Mapping[str, str]) -> NPI:
        """This network as one task runs it: choosing among `programs` only (ACT and the
        programs of the task's file; other rows belong to other environments and cannot run
        in this one), with `encoders` mapping environment names to this network's encoder
        keys. The view shares every module but reads the memory's rows when made: make it
        again after training. Returns the network itself when nothing is left out."""
        keep = {ACT, *programs}
        names = [n for n in self.memory.names if n in keep]
        if names == self.memory.names and all(k == v for k, v in encoders.items()):
            return self
        view = NPI.__new__(NPI)
        nn.Module.__init__(view)
        view.config = self.config
        view.encoders = nn.ModuleDict({env: self.encoders[key] for env, key in encoders.items()})
        view.memory = MemoryView(self.memory, names)  # type: ignore[assignment]
        view.core, view.lstm, view.heads = self.core, self.lstm, self.heads
        view.env_keys = {}
        return view

    # ---- pieces shared by training and execution
    def core_input(self, states: torch.Tensor, programs: torch.Tensor) -> torch.Tensor:
        return self.core(torch.cat([states, self.memory.progs[programs]], dim=1))

    def read_heads(self, top: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top LSTM states [B, H] -> end logit [B], program scores [B, N], arg logits [B, 3, R]."""
        c = self.config
        out = self.heads(top)
        end = out[:, 0]
        key = out[:, 1 : 1 + c.key_dim]
        scores = key @ self.memory.keys.t()
        args = out[:, 1 + c.key_dim :].reshape(-1, 3, c.arg_range)
        return end, scores, args

    def encode(self, env: str, obs: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
        return self.encoders[env](obs, args)

    # ---- training: many frames as one packed sequence
    def forward_packed(self, states: torch.Tensor, programs: torch.Tensor,
                       batch_sizes: torch.Tensor):
        """Teacher-forced pass over frames packed time-major (PackedSequence order).

        `states` [S, state_dim] are the encoder outputs of every step, `programs` [S] the
        memory index of each step's frame program, `batch_sizes` as in `PackedSequence`.
        """
        x = self.core_input(states, programs)
        return self.read_heads(packed_lstm(self.lstm, x, batch_sizes))

    # ---- execution: one step for a batch of top frames
    def zero_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.zeros(self.config.layers, batch, self.config.hidden)
        return z, z.clone()

    def step(self, states: torch.Tensor, programs: torch.Tensor,
             hc: tuple[torch.Tensor, torch.Tensor]):
        """One step of B frames: returns (end logit, program scores, arg logits, new (h, c))."""
        x = self.core_input(states, programs)
        out, hc = self.lstm(x.unsqueeze(0), hc)
        return (*self.read_heads(out[0]), hc)
