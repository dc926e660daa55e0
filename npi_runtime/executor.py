"""The neural executor: runs a trained NPI on environments, like Algorithm 1, batched.

Each instance has a stack of frames (program, args, LSTM state). At every step the top frames
of all running instances go through the network in one call; then, per instance, a return pops
the frame (resuming the caller's saved state), ACT applies the action to the instance's
environment, and any other program pushes a new frame with a zero LSTM state. Instances finish
independently (their entry frame returns, an action fails, or a budget runs out) and leave the
batch. The callers' saved LSTM states live in one pooled array, so the pushes and pops of a
whole step are a few array operations rather than one per instance.

Budgets: `max_steps` decisions and `max_depth` nested frames per instance. A network that loops
is stopped and reported (`status`), it never hangs.

Optionally, each instance is compared on the fly with a reference: a list of decisions
`(end, program, call_args)` in execution order. The first decision that differs is recorded as
the instance's `divergence` (step index, call stack, observation, expected and chosen decision
with the network's probabilities for both).

The step itself runs in numpy (`StepKernel`), with the model's linear maps folded together:
one instance's step costs about twenty small array operations, where torch's per-operation
overhead would dominate (docs/results.md has the measurements).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from npi_dsl.envs.base import EnvError, Environment
from npi_runtime.model import ACT, LEAK, NPI

OK = "ok"
STEP_BUDGET = "step_budget"
DEPTH_BUDGET = "depth_budget"
ENV_ERROR = "env_error"

Decision = tuple[bool, int, tuple[int, int, int]]  # (end, program index or -1, call args)


@dataclass
class Outcome:
    """How one instance's run ended."""

    status: str  # ok | step_budget | depth_budget | env_error
    steps: int  # decisions taken
    max_depth: int  # deepest frame reached (the entry frame is depth 0)
    message: str = ""
    divergence: dict | None = None  # the first step that differs from the reference
    decisions: list[Decision] | None = None  # every decision, when asked for

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(slots=True)
class _Instance:
    env: Environment
    program: int
    args: tuple[int, int, int]
    stack: list[tuple[int, tuple[int, int, int], int]] = field(default_factory=list)
    steps: int = 0
    deepest: int = 0
    reference: Sequence[Decision] | None = None
    divergence: dict | None = None
    decisions: list[Decision] | None = None
    outcome: Outcome | None = None


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


class StepKernel:
    """One step of the model for a batch of top frames, in numpy, linear maps folded.

    Folding (exact up to rounding): the encoder's output layer and the state part of the
    core's first layer are one matrix; the program embedding's part is one bias row per
    program; the core's LayerNorm gain and bias go into the first LSTM layer, and each LSTM
    layer is one matmul over `[input, h]`; the key head and `M_key` are
    one matrix giving the program scores directly; sigmoids are computed as tanh of halved
    pre-activations, so each LSTM layer needs one tanh over its four gates. Built from the
    current weights at the start of every run.
    """

    def __init__(self, model: NPI, env_name: str) -> None:
        c = model.config
        self.layers, self.hidden = c.layers, c.hidden
        self.arg_range = c.arg_range
        enc = model.encoders[env_name]
        self.encoder = enc
        core0, core2 = model.core[0], model.core[2]
        w0 = core0.weight.detach()
        ws, wp = w0[:, : c.state_dim], w0[:, c.state_dim :]
        prog_bias = model.memory.progs.detach() @ wp.t() + core0.bias.detach()
        parts = enc.numpy_parts() if hasattr(enc, "numpy_parts") else None
        self.parts = parts
        if parts is not None:  # fold the encoder's output layer into the core
            w_out, b_out = parts["out"]
            self.w_x = _np((ws @ w_out).t())
            prog_bias = prog_bias + ws @ b_out
        else:
            self.w_x = _np(ws.t())
        self.prog_bias = _np(prog_bias)
        lstm = model.lstm
        # sigmoid for every gate; the g gate's rows doubled, since tanh(x) = 2 sigmoid(2x) - 1
        scale = torch.ones(4 * c.hidden, 1)
        scale[2 * c.hidden : 3 * c.hidden] = 2.0
        w_ih0 = lstm.weight_ih_l0.detach()
        # the core's output layer, then its LayerNorm (gain and bias folded into layer 0)
        self.w_core2 = _np(core2.weight.t())
        self.b_core2 = _np(core2.bias)
        norm = model.core[3]
        self.eps = float(norm.eps)
        gain, shift = norm.weight.detach(), norm.bias.detach()
        # layer 0 takes [normalised core output, h]: one matmul for input and recurrence
        self.w_in = _np((scale * torch.cat([w_ih0 * gain, lstm.weight_hh_l0.detach()],
                                           dim=1)).t())
        self.b_in = _np(scale[:, 0] * (w_ih0 @ shift + lstm.bias_ih_l0.detach()
                                       + lstm.bias_hh_l0.detach()))
        self.w_cat, self.b_cat = [], []
        for layer in range(1, c.layers):
            w = torch.cat([getattr(lstm, f"weight_ih_l{layer}").detach(),
                           getattr(lstm, f"weight_hh_l{layer}").detach()], dim=1)
            b = (getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")).detach()
            self.w_cat.append(_np((scale * w).t()))
            self.b_cat.append(_np(scale[:, 0] * b))
        hid, out = model.heads[0], model.heads[2]
        self.w_head, self.b_head = _np(hid.weight.t()), _np(hid.bias)
        w, b = out.weight.detach(), out.bias.detach()
        k = c.key_dim
        keys = model.memory.keys.detach()
        self.n_programs = keys.shape[0]
        self.w_out = _np(torch.cat([w[:1], keys @ w[1 : 1 + k], w[1 + k :]]).t())
        self.b_out = _np(torch.cat([b[:1], keys @ b[1 : 1 + k], b[1 + k :]]))

    def zero_state(self, batch: int) -> np.ndarray:
        """h and c of every layer, [2 * layers, B, H]: rows 2l and 2l + 1 are layer l's h, c."""
        return np.zeros((2 * self.layers, batch, self.hidden), dtype=np.float32)

    def features(self, observations: list, args: np.ndarray) -> np.ndarray:
        """The encoder's last hidden layer (or its output, for encoders without numpy parts)."""
        p = self.parts
        if p is None:
            enc = self.encoder
            with torch.inference_mode():
                s = enc(enc.tensorize(observations), torch.from_numpy(args))
            return s.numpy()
        idx = np.concatenate([np.asarray(observations, dtype=np.int64), args], axis=1)
        idx += p["offsets"]
        if idx.shape[0] < 32:  # a sum of embedding rows
            h = p["table"][idx].sum(axis=1)
        else:  # torch's embedding_bag: several times faster than numpy's gather and sum
            h = torch.nn.functional.embedding_bag(
                torch.from_numpy(idx), torch.from_numpy(p["table"]), mode="sum").numpy()
        h += p["bias"]
        _leaky_(h)
        for w, b in p["deeper"]:
            h = h @ w
            h += b
            _leaky_(h)
        return h

    def _cell(self, gates: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hid = self.hidden
        s = _sigmoid_(gates)
        g = s[:, 2 * hid : 3 * hid] * 2.0
        g -= 1.0
        g *= s[:, :hid]
        c = s[:, hid : 2 * hid] * c
        c += g
        t = _sigmoid_(c * 2.0)
        t *= 2.0
        t -= 1.0
        t *= s[:, 3 * hid :]
        return t, c

    def __call__(self, feats: np.ndarray, programs: np.ndarray,
                 hc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step: the outputs [B, 1 + N + 3R] (end logit, program scores, arg logits) and
        the new state."""
        x = feats @ self.w_x
        x += self.prog_bias[programs]
        _leaky_(x)
        y = x @ self.w_core2
        y += self.b_core2
        y -= y.mean(axis=1, keepdims=True)
        y /= np.sqrt((y * y).mean(axis=1, keepdims=True) + self.eps)
        gates = np.concatenate([y, hc[0]], axis=1) @ self.w_in
        gates += self.b_in
        h, c = self._cell(gates, hc[1])
        new = [h, c]
        for layer in range(1, self.layers):
            gates = np.concatenate([h, hc[2 * layer]], axis=1) @ self.w_cat[layer - 1]
            gates += self.b_cat[layer - 1]
            h, c = self._cell(gates, hc[2 * layer + 1])
            new += [h, c]
        top = h @ self.w_head
        top += self.b_head
        _leaky_(top)
        out = top @ self.w_out
        out += self.b_out
        return out, np.stack(new)

    def decide(self, out: np.ndarray) -> list[list[int]]:
        """Per row: [end (0/1), program index, three arguments]."""
        n = self.n_programs
        dec = np.empty((out.shape[0], 5), dtype=np.int64)
        dec[:, 0] = out[:, 0] > 0
        dec[:, 1] = out[:, 1 : 1 + n].argmax(1)
        dec[:, 2:] = out[:, 1 + n :].reshape(-1, 3, self.arg_range).argmax(2)
        return dec.tolist()

    def probabilities(self, row: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """(p_end, p over programs, p over each argument [3, R]) from one row of outputs."""
        n = self.n_programs
        p_end = float(1.0 / (1.0 + np.exp(-float(row[0]))))
        scores = row[1 : 1 + n].astype(np.float64)
        p_prog = np.exp(scores - scores.max())
        p_prog /= p_prog.sum()
        logits = row[1 + n :].reshape(3, self.arg_range).astype(np.float64)
        p_args = np.exp(logits - logits.max(1, keepdims=True))
        p_args /= p_args.sum(1, keepdims=True)
        return p_end, p_prog, p_args


def _leaky_(x: np.ndarray) -> np.ndarray:
    """The model's leaky ReLU, in place."""
    np.maximum(x, x * LEAK, out=x)
    return x


def _sigmoid_(x: np.ndarray) -> np.ndarray:
    """Sigmoid in place. torch's vectorised kernel on a shared view for big arrays (numpy's
    transcendental functions are several times slower here); numpy for small ones, where
    the call overhead dominates."""
    if x.size >= 2048:
        torch.sigmoid(torch.from_numpy(x), out=torch.from_numpy(x))
        return x
    np.negative(x, out=x)
    np.minimum(x, 80.0, out=x)  # exp(80) is finite in float32: no overflow warning
    np.exp(x, out=x)
    x += 1.0
    np.reciprocal(x, out=x)
    return x


class _StatePool:
    """Saved LSTM states of callers, [2 * layers, capacity, H], with a free list of slots."""

    def __init__(self, rows: int, hidden: int, capacity: int = 64) -> None:
        self.hc = np.zeros((rows, capacity, hidden), dtype=np.float32)
        self.free = list(range(capacity - 1, -1, -1))

    def alloc(self, n: int) -> list[int]:
        if len(self.free) < n:
            cap = self.hc.shape[1]
            new = max(cap, n)
            rows, _, hidden = self.hc.shape
            grown = np.zeros((rows, cap + new, hidden), dtype=np.float32)
            grown[:, :cap] = self.hc
            self.hc = grown
            self.free.extend(range(cap + new - 1, cap - 1, -1))
        free = self.free
        return [free.pop() for _ in range(n)]

    def release(self, slots: list[int]) -> None:
        self.free.extend(slots)


class NeuralExecutor:
    """Runs an NPI model in closed loop on many environments at once."""

    def __init__(self, model: NPI, env_name: str, max_steps: int = 1_000_000,
                 max_depth: int = 256) -> None:
        self.model = model
        self.env_name = env_name
        self.max_steps = max_steps
        self.max_depth = max_depth
        self.act = model.memory.index(ACT)
        self.names = model.memory.names

    def run(self, envs: Sequence[Environment], entry: str, args: Sequence[int] = (0, 0, 0),
            references: Sequence[Sequence[Decision] | None] | None = None,
            record: bool = False) -> list[Outcome]:
        """Run program `entry` (a qualified name) on every environment, already reset."""
        model = self.model
        model.eval()
        entry_index = model.memory.index(entry)
        entry_args = tuple(int(a) for a in args) + (0,) * (3 - len(args))
        inst = [
            _Instance(env=e, program=entry_index, args=entry_args,  # type: ignore[arg-type]
                      reference=references[i] if references else None,
                      decisions=[] if record else None)
            for i, e in enumerate(envs)
        ]
        kernel = StepKernel(model, self.env_name)
        running = list(inst)
        hc = kernel.zero_state(len(running))
        pool = _StatePool(hc.shape[0], model.config.hidden)
        names, act = self.names, self.act
        max_steps, max_depth = self.max_steps, self.max_depth
        track = references is not None or record
        while running:
            obs_raw = [r.env.observe() for r in running]
            fargs = np.array([r.args for r in running], dtype=np.int64)
            progs = np.array([r.program for r in running], dtype=np.int64)
            out, hc = kernel(kernel.features(obs_raw, fargs), progs, hc)
            chosen = kernel.decide(out)
            push_rows: list[int] = []
            pop_rows: list[int] = []
            pop_slots: list[int] = []
            finished = False
            for row, r in enumerate(running):
                end, prog, a0, a1, a2 = chosen[row]
                if track:
                    decision: Decision = (True, -1, (0, 0, 0)) if end else (False, prog,
                                                                            (a0, a1, a2))
                    if r.decisions is not None:
                        r.decisions.append(decision)
                    if r.reference is not None and r.divergence is None:
                        ref = r.reference
                        if r.steps >= len(ref) or ref[r.steps] != decision:
                            self._diverged(r, decision, obs_raw[row], kernel, out[row])
                r.steps += 1
                if end:
                    if not r.stack:
                        r.outcome = Outcome(OK, r.steps, r.deepest)
                        finished = True
                        continue
                    r.program, r.args, slot = r.stack.pop()
                    pop_rows.append(row)
                    pop_slots.append(slot)
                elif prog == act:
                    try:
                        r.env.act(a0, a1, a2)
                    except EnvError as e:
                        r.outcome = Outcome(ENV_ERROR, r.steps, r.deepest,
                                            f"ACT{[a0, a1, a2]} failed in {self._stack(r)}: {e}")
                        finished = True
                        continue
                else:
                    depth = len(r.stack) + 1
                    if depth > max_depth:
                        r.outcome = Outcome(
                            DEPTH_BUDGET, r.steps, r.deepest,
                            f"depth budget {max_depth} exceeded: {self._stack(r)} calls "
                            f"{names[prog].rsplit('.', 1)[-1]}")
                        finished = True
                        continue
                    r.stack.append((r.program, r.args, row))  # slot filled in below
                    r.program, r.args = prog, (a0, a1, a2)
                    if depth > r.deepest:
                        r.deepest = depth
                    push_rows.append(row)
                if r.steps >= max_steps:
                    r.outcome = Outcome(STEP_BUDGET, r.steps, r.deepest,
                                        f"step budget {max_steps} exhausted in {self._stack(r)}")
                    finished = True
            if push_rows:
                slots = pool.alloc(len(push_rows))
                pool.hc[:, slots] = hc[:, push_rows]
                hc[:, push_rows] = 0.0
                for row, slot in zip(push_rows, slots, strict=True):
                    stack = running[row].stack
                    p, pa, _ = stack[-1]
                    stack[-1] = (p, pa, slot)
            if pop_rows:
                hc[:, pop_rows] = pool.hc[:, pop_slots]
                pool.release(pop_slots)
            if finished:
                keep = [row for row, r in enumerate(running) if r.outcome is None]
                for r in running:
                    if r.outcome is not None:
                        pool.release([s for _, _, s in r.stack])
                        r.stack.clear()
                hc = hc[:, keep]
                running = [running[row] for row in keep]
        outcomes = []
        for r in inst:
            o = r.outcome
            assert o is not None
            o.divergence = r.divergence
            o.decisions = r.decisions
            if r.reference is not None and r.divergence is None and o.steps < len(r.reference):
                o.divergence = {"step": o.steps, "stack": [],
                                "reason": f"the network stopped ({o.status}) where the "
                                          "reference goes on"}
            outcomes.append(o)
        return outcomes

    def _stack(self, r: _Instance) -> str:
        names = [self.names[p].rsplit(".", 1)[-1] for p, _, _ in r.stack]
        return " > ".join([*names, self.names[r.program].rsplit(".", 1)[-1]])

    def _diverged(self, r: _Instance, decision: Decision, obs: Any, kernel: StepKernel,
                  row: np.ndarray) -> None:
        ref = r.reference
        assert ref is not None
        expected = ref[r.steps] if r.steps < len(ref) else None
        probs = kernel.probabilities(row)
        r.divergence = {
            "step": r.steps,
            "stack": [self.names[p].rsplit(".", 1)[-1] for p, _, _ in r.stack]
            + [self.names[r.program].rsplit(".", 1)[-1]],
            "obs": [int(x) for x in obs] if isinstance(obs, (tuple, list)) else None,
            "expected": None if expected is None else self._describe(expected, probs),
            "chosen": self._describe(decision, probs),
        }

    def _describe(self, d: Decision, probs: tuple[float, np.ndarray, np.ndarray]) -> dict:
        """A decision with the network's probability for each of its parts."""
        end, prog, a = d
        p_end, p_prog, p_args = probs
        out: dict[str, Any] = {"end": bool(end), "p_end": p_end if end else 1.0 - p_end}
        if not end:
            out.update({
                "call": self.names[prog].rsplit(".", 1)[-1],
                "call_args": list(a),
                "p_call": float(p_prog[prog]),
                "p_args": [float(p_args[i, a[i]]) for i in range(3)],
            })
        return out
