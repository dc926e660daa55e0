"""The neural executor: runs a trained NPI on environments, like Algorithm 1, batched.

Each instance has a stack of frames (program, args, LSTM state). At every step the top frames
of all running instances go through the network in one call; then, per instance, a return pops
the frame (resuming the caller's saved state), ACT applies the action to the instance's
environment, and any other program pushes a new frame with a zero LSTM state. Instances finish
independently (their entry frame returns, an action fails, or a budget runs out) and leave the
batch. The caller's saved LSTM states live in one pooled tensor, so pushes and pops of a whole
step are a few tensor operations rather than one per instance.

Budgets: `max_steps` decisions and `max_depth` nested frames per instance. A network that loops
is stopped and reported (`status`), it never hangs.

Optionally, each instance is compared on the fly with a reference: a list of decisions
`(end, program, call_args)` in execution order. The first decision that differs is recorded as
the instance's `divergence` (step index, call stack, observation, expected and chosen decision
with the chosen one's probabilities).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from npi_dsl.envs.base import EnvError, Environment
from npi_runtime.model import ACT, NPI

OK = "ok"
STEP_BUDGET = "step_budget"
DEPTH_BUDGET = "depth_budget"
ENV_ERROR = "env_error"

Decision = tuple[bool, int, tuple[int, int, int]]  # (end, program index, call args)


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


@dataclass
class _Instance:
    env: Environment
    stack: list[tuple[int, tuple[int, int, int], int]] = field(default_factory=list)
    program: int = 0
    args: tuple[int, int, int] = (0, 0, 0)
    steps: int = 0
    deepest: int = 0
    reference: Sequence[Decision] | None = None
    divergence: dict | None = None
    decisions: list[Decision] | None = None
    outcome: Outcome | None = None


class _StatePool:
    """Saved LSTM states of callers, [2 * layers, capacity, H], with a free list of slots."""

    def __init__(self, rows: int, hidden: int, capacity: int = 64) -> None:
        self.hc = torch.zeros(rows, capacity, hidden)
        self.free = list(range(capacity - 1, -1, -1))

    def alloc(self, n: int) -> list[int]:
        if len(self.free) < n:
            cap = self.hc.shape[1]
            new = max(cap, n)
            self.hc = torch.cat([self.hc, torch.zeros_like(self.hc[:, :new])], dim=1)
            self.free.extend(range(cap + new - 1, cap - 1, -1))
        return [self.free.pop() for _ in range(n)]

    def release(self, slots: list[int]) -> None:
        self.free.extend(slots)


class StepKernel:
    """The model's step for inference, with its linear maps folded together.

    Folding (exact up to rounding): the program embedding's part of the core's first layer is
    one bias row per program; the core's output layer and the LSTM's input projection are one
    matrix; each upper LSTM layer is one matmul over `[input, h]`; the key head and `M_key`
    are one matrix giving the program scores directly. About a dozen small tensor operations
    per step, which is what one-instance latency is made of. Built from the current weights at
    the start of every run.
    """

    def __init__(self, model: NPI) -> None:
        c = model.config
        core0, core2 = model.core[0], model.core[2]
        w0 = core0.weight.detach()
        self.ws_t = w0[:, : c.state_dim].t().contiguous()
        self.prog_bias = (model.memory.progs.detach() @ w0[:, c.state_dim :].t()
                          + core0.bias.detach())
        lstm = model.lstm
        self.layers = c.layers
        self.hidden = c.hidden
        w_ih0 = lstm.weight_ih_l0.detach()
        self.w_in_t = (w_ih0 @ core2.weight.detach()).t().contiguous()
        self.b_in = w_ih0 @ core2.bias.detach() + lstm.bias_ih_l0.detach() \
            + lstm.bias_hh_l0.detach()
        self.w_hh0_t = lstm.weight_hh_l0.detach().t().contiguous()
        self.w_cat_t = []
        self.b_cat = []
        for layer in range(1, c.layers):
            w_ih = getattr(lstm, f"weight_ih_l{layer}").detach()
            w_hh = getattr(lstm, f"weight_hh_l{layer}").detach()
            self.w_cat_t.append(torch.cat([w_ih, w_hh], dim=1).t().contiguous())
            self.b_cat.append((getattr(lstm, f"bias_ih_l{layer}")
                               + getattr(lstm, f"bias_hh_l{layer}")).detach())
        hid, out = model.heads[0], model.heads[2]
        self.head_w_t = hid.weight.detach().t().contiguous()
        self.head_b = hid.bias.detach()
        w, b = out.weight.detach(), out.bias.detach()
        k = c.key_dim
        keys = model.memory.keys.detach()
        self.n_programs = keys.shape[0]
        self.arg_range = c.arg_range
        self.out_w_t = torch.cat([w[:1], keys @ w[1 : 1 + k], w[1 + k :]]).t().contiguous()
        self.out_b = torch.cat([b[:1], keys @ b[1 : 1 + k], b[1 + k :]])

    def zero_state(self, batch: int) -> torch.Tensor:
        """h and c of every layer, [2 * layers, B, H]: rows 2l and 2l + 1 are layer l's h, c."""
        return torch.zeros(2 * self.layers, batch, self.hidden)

    def _cell(self, gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hid = self.hidden
        sig = torch.sigmoid(gates)
        g = torch.tanh(gates[:, 2 * hid : 3 * hid])
        c = sig[:, hid : 2 * hid] * c + sig[:, :hid] * g
        h = sig[:, 3 * hid :] * torch.tanh(c)
        return h, c

    def __call__(self, states: torch.Tensor, programs: torch.Tensor,
                 hc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: returns the outputs [B, 1 + N + 3R] (end logit, program scores, arg
        logits) and the new state."""
        x = torch.relu(torch.addmm(self.prog_bias[programs], states, self.ws_t))
        gates = torch.addmm(torch.addmm(self.b_in, x, self.w_in_t), hc[0], self.w_hh0_t)
        h, c = self._cell(gates, hc[1])
        new = [h, c]
        for layer in range(1, self.layers):
            gates = torch.addmm(self.b_cat[layer - 1], torch.cat([h, hc[2 * layer]], dim=1),
                                self.w_cat_t[layer - 1])
            h, c = self._cell(gates, hc[2 * layer + 1])
            new += [h, c]
        top = torch.relu(torch.addmm(self.head_b, h, self.head_w_t))
        return torch.addmm(self.out_b, top, self.out_w_t), torch.stack(new)

    def decide(self, out: torch.Tensor) -> torch.Tensor:
        """[B, 5]: end (0/1), program index, three arguments."""
        n = self.n_programs
        return torch.cat([
            (out[:, :1] > 0).long(),
            out[:, 1 : 1 + n].argmax(1, keepdim=True),
            out[:, 1 + n :].reshape(-1, 3, self.arg_range).argmax(2),
        ], dim=1)

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = self.n_programs
        return out[:, 0], out[:, 1 : 1 + n], out[:, 1 + n :].reshape(-1, 3, self.arg_range)


class NeuralExecutor:
    """Runs an NPI model in closed loop on many environments at once."""

    def __init__(self, model: NPI, env_name: str, max_steps: int = 1_000_000,
                 max_depth: int = 256) -> None:
        self.model = model
        self.env_name = env_name
        self.encoder = model.encoders[env_name]
        self.max_steps = max_steps
        self.max_depth = max_depth
        self.act = model.memory.index(ACT)
        self.names = model.memory.names

    @torch.inference_mode()
    def run(self, envs: Sequence[Environment], entry: str, args: Sequence[int] = (0, 0, 0),
            references: Sequence[Sequence[Decision] | None] | None = None,
            record: bool = False) -> list[Outcome]:
        """Run program `entry` (a qualified name) on every environment, already reset."""
        model = self.model
        model.eval()
        entry_index = model.memory.index(entry)
        entry_args = tuple(int(a) for a in args)
        inst = [
            _Instance(env=e, program=entry_index, args=entry_args,
                      reference=references[i] if references else None,
                      decisions=[] if record else None)
            for i, e in enumerate(envs)
        ]
        active = list(range(len(inst)))
        kernel = StepKernel(model)
        hc = kernel.zero_state(len(active))
        pool = _StatePool(hc.shape[0], model.config.hidden)
        encoder, names, act = self.encoder, self.names, self.act
        max_steps, max_depth = self.max_steps, self.max_depth
        while active:
            running = [inst[i] for i in active]
            obs_raw = [r.env.observe() for r in running]
            obs = encoder.tensorize(obs_raw)
            fargs = torch.tensor([r.args for r in running], dtype=torch.long)
            progs = torch.tensor([r.program for r in running], dtype=torch.long)
            out, hc = kernel(encoder(obs, fargs), progs, hc)
            chosen = kernel.decide(out).tolist()
            push_rows: list[int] = []
            pop_rows: list[int] = []
            pop_slots: list[int] = []
            finished = False
            for row, (r, d) in enumerate(zip(running, chosen, strict=True)):
                end, prog, a = bool(d[0]), d[1], (d[2], d[3], d[4])
                decision: Decision = (True, -1, (0, 0, 0)) if end else (False, prog, a)
                if r.decisions is not None:
                    r.decisions.append(decision)
                if r.reference is not None and r.divergence is None:
                    self._compare(r, row, decision, obs_raw[row], *kernel.split(out))
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
                        r.env.act(*a)
                    except EnvError as e:
                        r.outcome = Outcome(ENV_ERROR, r.steps, r.deepest,
                                            f"ACT{list(a)} failed in {self._stack(r)}: {e}")
                        finished = True
                        continue
                else:
                    depth = len(r.stack) + 1
                    if depth > max_depth:
                        r.outcome = Outcome(
                            DEPTH_BUDGET, r.steps, r.deepest,
                            f"depth budget {max_depth} exceeded calling {names[prog]} "
                            f"from {self._stack(r)}")
                        finished = True
                        continue
                    r.stack.append((r.program, r.args, -1))
                    r.program, r.args = prog, a
                    r.deepest = max(r.deepest, depth)
                    push_rows.append(row)
                if r.steps >= max_steps and r.outcome is None:
                    r.outcome = Outcome(STEP_BUDGET, r.steps, r.deepest,
                                        f"step budget {max_steps} exhausted in {self._stack(r)}")
                    finished = True
            if push_rows:
                slots = pool.alloc(len(push_rows))
                rows_t = torch.tensor(push_rows)
                pool.hc[:, torch.tensor(slots)] = hc[:, rows_t]
                hc[:, rows_t] = 0.0
                for row, slot in zip(push_rows, slots, strict=True):
                    r = running[row]
                    p, pa, _ = r.stack[-1]
                    r.stack[-1] = (p, pa, slot)
            if pop_rows:
                hc[:, torch.tensor(pop_rows)] = pool.hc[:, torch.tensor(pop_slots)]
                pool.release(pop_slots)
            if finished:
                keep = [row for row, r in enumerate(running) if r.outcome is None]
                for r in running:
                    if r.outcome is not None:
                        pool.release([s for _, _, s in r.stack if s >= 0])
                hc = hc[:, torch.tensor(keep, dtype=torch.long)]
                active = [active[row] for row in keep]
        outcomes = []
        for r in inst:
            o = r.outcome
            assert o is not None
            o.divergence = r.divergence
            o.decisions = r.decisions
            if r.reference is not None and r.divergence is None and o.ok \
                    and o.steps != len(r.reference):
                o.divergence = {"step": o.steps, "reason": "the reference continues"}
            outcomes.append(o)
        return outcomes

    def _stack(self, r: _Instance) -> str:
        return " > ".join(self.names[p].rsplit(".", 1)[-1] for p, _, _ in r.stack) + (
            " > " if r.stack else "") + self.names[r.program].rsplit(".", 1)[-1]

    def _compare(self, r: _Instance, row: int, decision: Decision, obs: Any,
                 end_logit: torch.Tensor, scores: torch.Tensor, arg_logits: torch.Tensor) -> None:
        k = r.steps
        ref = r.reference
        assert ref is not None
        expected = ref[k] if k < len(ref) else None
        if expected is not None and tuple(expected) == decision:
            return
        r.divergence = {
            "step": k,
            "stack": [self.names[p].rsplit(".", 1)[-1] for p, _, _ in r.stack]
            + [self.names[r.program].rsplit(".", 1)[-1]],
            "obs": list(obs),
            "expected": None if expected is None else self._describe(
                expected, row, end_logit, scores, arg_logits),
            "chosen": self._describe(decision, row, end_logit, scores, arg_logits),
        }

    def _describe(self, d: Decision, row: int, end_logit: torch.Tensor, scores: torch.Tensor,
                  arg_logits: torch.Tensor) -> dict:
        """A decision with the network's probabilities for each of its parts."""
        end, prog, a = d
        p_end = float(torch.sigmoid(end_logit[row]))
        out: dict[str, Any] = {"end": bool(end), "p_end": p_end if end else 1.0 - p_end}
        if not end:
            p_prog = torch.softmax(scores[row], 0)
            p_args = torch.softmax(arg_logits[row], 1)
            out.update({
                "call": self.names[prog].rsplit(".", 1)[-1],
                "call_args": list(a),
                "p_call": float(p_prog[prog]),
                "p_args": [float(p_args[i, a[i]]) for i in range(3)],
            })
        return out
