"""The neural executor: runs a trained NPI on environments, like Algorithm 1, batched.

Each instance has a stack of frames (program, args, LSTM state). At every step the top frames
of all running instances go through the network in one call; then a return pops the frame
(resuming the caller's saved state), ACT applies the action to the instance's environment, and
any other program pushes a new frame with a zero LSTM state. Instances finish independently
(their entry frame returns, an action fails, or a budget runs out) and leave the batch.

The bookkeeping of a step is array operations over the whole batch: the top frames' programs,
arguments and stack depths are arrays, the stacks are arrays [instance, depth], and the
callers' saved LSTM states live in one pooled array, so the pushes and pops of a step are a
few array operations. The only per-instance Python of a step is `observe` and, for ACT rows,
`act` (the environments are Python), plus the decision log when a reference or a record is
asked for.

Budgets: `max_steps` decisions and `max_depth` nested frames per instance. A network that loops
is stopped and reported (`status`), it never hangs.

Optionally, each instance is compared on the fly with a reference: a list of decisions
`(end, program, call_args)` in execution order. The first decision that differs is recorded as
the instance's `divergence` (step index, call stack, observation, expected and chosen decision
with the network's probabilities for both).

The step itself runs in numpy (`npi_runtime.kernel.StepKernel`, derived from the model's
weights and made again when they change). numpy's BLAS is held at one thread while the
executor runs (threadpoolctl): a threaded matrix-vector product waits for a second core, which
on a shared machine is often busy (at one instance that made a step several times slower).
With `threads` > 1, big batches are cut into that many slices of rows, each stepped by its own
Python thread (numpy and torch release the GIL in their kernels), which uses several cores
without a BLAS thread pool.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from npi_dsl.envs.base import EnvError, Environment
from npi_dsl.trace import ACT
from npi_runtime.kernel import MIN_SLICE, StepKernel
from npi_runtime.model import NPI
from npi_runtime.torch_kernel import TorchStepKernel

#: the executor's step: numpy on the CPU, torch on a device
Kernel = StepKernel | TorchStepKernel

OK = "ok"
STEP_BUDGET = "step_budget"
DEPTH_BUDGET = "depth_budget"
ENV_ERROR = "env_error"

Decision = tuple[bool, int, tuple[int, int, int]]  # (end, program index or -1, call args)
#: a reference: Decision tuples, or rows [steps, 5] of (end, program or -1, 3 args)
ReferenceLike = Sequence[Decision] | np.ndarray


def as_decision(end: int, prog: int, a0: int, a1: int, a2: int) -> Decision:
    """A decision row's five integers (end 0/1, program index, three arguments) as a
    `Decision` (a return has program -1 and arguments 0)."""
    return (True, -1, (0, 0, 0)) if end else (False, prog, (a0, a1, a2))

#: up to this many rows, the executor sorts a step's decisions in Python, not numpy
_FEW = 8


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
    divergence: dict | None = None
    decisions: list[Decision] | None = None
    outcome: Outcome | None = None


# ---- thread counts: numpy's BLAS through threadpoolctl, torch's own

@functools.cache
def _controller() -> ThreadpoolController:
    """The thread pools of the libraries loaded (numpy's BLAS among them), found once."""
    return ThreadpoolController()


def blas_library() -> dict | None:
    """threadpoolctl's description of numpy's BLAS (`internal_api` its kind, `num_threads`
    its thread count now), or None where it finds no BLAS."""
    found = [p for p in _controller().info() if p["user_api"] == "blas"]
    found.sort(key=lambda p: "numpy" not in p["filepath"])  # numpy's own first
    return found[0] if found else None


def blas_threads() -> int | None:
    """numpy's BLAS thread count, or None where threadpoolctl finds no BLAS."""
    lib = blas_library()
    return lib["num_threads"] if lib else None


@contextlib.contextmanager
def compute_threads(blas: int, torch_threads: int) -> Iterator[None]:
    """The BLAS libraries (threadpoolctl) and torch at the given thread counts for the
    duration; the previous counts are restored after."""
    old_torch = torch.get_num_threads()
    if old_torch != torch_threads:
        torch.set_num_threads(torch_threads)
    try:
        with _controller().limit(limits=blas, user_api="blas"):
            yield
    finally:
        if old_torch != torch_threads:
            torch.set_num_threads(old_torch)


class _StatePool:
    """Saved LSTM states of callers, [capacity, columns], with a free list of slots; the
    array is the kernel's kind (`zeros`: numpy on the CPU, a tensor on a device)."""

    def __init__(self, columns: int, zeros: Any, capacity: int = 64) -> None:
        self.zeros = zeros
        self.hc = zeros(capacity, columns)
        self.free = list(range(capacity - 1, -1, -1))

    def alloc(self, n: int) -> list[int]:
        if len(self.free) < n:
            cap, columns = self.hc.shape
            new = max(cap, n)
            grown = self.zeros(cap + new, columns)
            grown[:cap] = self.hc
            self.hc = grown
            self.free.extend(range(cap + new - 1, cap - 1, -1))
        free = self.free
        return [free.pop() for _ in range(n)]

    def release(self, slots: list[int]) -> None:
        self.free.extend(slots)


class NeuralExecutor:
    """Runs an NPI model in closed loop on many environments at once.

    `threads`: how many threads a run may step the network on. The step of a batch of at
    least 2 x 48 rows is cut into slices of about 128 rows, which that many threads take in
    turn; numpy's BLAS and torch run at one thread each during a run (their thread counts
    are restored after it). On a machine whose cores are busy with other work, more threads
    can be slower (benchmarks/bench_executor.py measures both)."""

    def __init__(self, model: NPI, env_name: str, max_steps: int = 1_000_000,
                 max_depth: int = 256, threads: int = 1,
                 device: torch.device | str | None = None, kernel: str = "auto") -> None:
        """`device`: where the step runs (None or the CPU: the numpy kernel; any other torch
        device: `TorchStepKernel` there); `kernel` "numpy" or "torch" forces one (the torch
        kernel runs on the CPU too, which is how the device path is tested without a GPU)."""
        if kernel not in ("auto", "numpy", "torch"):
            raise ValueError(f"kernel must be auto, numpy or torch, not {kernel!r}")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if kernel == "numpy" and self.device.type != "cpu":
            raise ValueError("the numpy kernel runs on the CPU only")
        self.use_torch = kernel == "torch" or self.device.type != "cpu"
        self.model = model
        self.env_name = env_name
        self.max_steps = max_steps
        self.max_depth = max_depth
        self.threads = max(1, int(threads))
        self.act = model.memory.index(ACT)
        self.names = model.memory.names
        self.bare = [n.rsplit(".", 1)[-1] for n in self.names]  # for messages
        self._kernel: tuple[tuple, Kernel] | None = None

    def kernel(self) -> Kernel:
        """The step kernel of the model's current weights: built again only when a parameter
        was replaced or changed in place since the last run (torch counts in-place changes)."""
        key = tuple((id(p), p._version) for p in self.model.parameters())
        if self._kernel is None or self._kernel[0] != key:
            made: Kernel = (TorchStepKernel(self.model, self.env_name, self.device)
                            if self.use_torch else StepKernel(self.model, self.env_name))
            self._kernel = (key, made)
        return self._kernel[1]

    def run(self, envs: Sequence[Environment], entry: str, args: Sequence[int] = (0, 0, 0),
            references: Sequence[ReferenceLike | None] | None = None,
            record: bool = False) -> list[Outcome]:
        """Run program `entry` (a qualified name) on every environment, already reset;
        `references` (one per environment, or None) as Decision lists or decision rows
        (`references.Reference.decisions`)."""
        model = self.model
        model.eval()
        entry_index = model.memory.index(entry)
        entry_args = tuple(int(a) for a in args) + (0,) * (3 - len(args))
        refs = _ReferenceTable(references) if references else None
        inst = [_Instance(env=e, decisions=[] if record else None) for e in envs]
        if inst:
            kernel = self.kernel()
            parallel = self.threads > 1 and len(inst) >= 2 * MIN_SLICE and not self.use_torch
            with contextlib.ExitStack() as stack:
                stack.enter_context(compute_threads(1, 1))
                pool = (stack.enter_context(ThreadPoolExecutor(self.threads - 1))
                        if parallel else None)
                self._loop(inst, kernel, entry_index, entry_args, refs,
                           references is not None or record, pool)
        outcomes = []
        for i, r in enumerate(inst):
            o = r.outcome
            assert o is not None
            o.divergence = r.divergence
            o.decisions = r.decisions
            if refs is not None and refs.open[i] and o.steps < refs.lengths[i]:
                o.divergence = {"step": o.steps, "stack": [],
                                "reason": f"the network stopped ({o.status}) where the "
                                          "reference goes on"}
            outcomes.append(o)
        return outcomes

    def _loop(self, inst: list[_Instance], kernel: Kernel, entry_index: int,
              entry_args: tuple[int, int, int], refs: _ReferenceTable | None, track: bool,
              pool: ThreadPoolExecutor | None) -> None:
        """Step every instance until it finishes; sets each instance's outcome (and, with
        `refs`, its divergence)."""
        n = len(inst)
        act, max_steps, max_depth, threads = self.act, self.max_steps, self.max_depth, self.threads
        cols = kernel.state_cols
        running = list(inst)
        ids = np.arange(n)  # each running row's instance
        observe = [r.env.observe for r in inst]
        act_fns = [r.env.act for r in inst]
        state = kernel.zero_state(n)
        saved = _StatePool(state.shape[1] - cols.start, kernel.zeros)
        # the top frame of each running row, its stack depth, the deepest it reached
        progs = np.full(n, entry_index, dtype=np.int64)
        fargs = np.tile(np.asarray(entry_args, dtype=np.int64), (n, 1))
        depth = np.zeros(n, dtype=np.int64)
        deepest = np.zeros(n, dtype=np.int64)
        # the callers' frames [row, depth]: program, args, slot of the saved state
        cap = 8
        stk_prog = np.zeros((n, cap), dtype=np.int64)
        stk_args = np.zeros((n, cap, 3), dtype=np.int64)
        stk_slot = np.zeros((n, cap), dtype=np.int64)

        def frames(row: int) -> list[int]:
            return [*stk_prog[row, : depth[row]].tolist(), int(progs[row])]

        step = 0
        while running:
            obs = [f() for f in observe]
            out = kernel(obs, fargs, progs, state, pool, threads)
            dec = kernel.decide(out)
            if track:
                self._track(running, ids, dec, step, obs, out, kernel, frames, refs)
            step += 1
            finished: dict[int, tuple[str, str]] = {}  # row -> (status, message)
            if len(running) <= _FEW:  # Python's scalars beat a dozen numpy calls
                listed = dec.tolist()
                acts = [(row, d[2], d[3], d[4]) for row, d in enumerate(listed)
                        if not d[0] and d[1] == act]
                ends = [row for row, d in enumerate(listed) if d[0]]
                calls = [row for row, d in enumerate(listed) if not d[0] and d[1] != act]
                end_rows = np.array(ends, dtype=np.int64) if ends else None
                call_rows = np.array(calls, dtype=np.int64) if calls else None
            else:
                end = dec[:, 0] == 1
                is_act = dec[:, 1] == act
                is_act &= ~end
                rows = np.flatnonzero(is_act)
                acts = [(row, *a) for row, a in zip(rows.tolist(), dec[rows, 2:].tolist(),
                                                    strict=True)]
                end_rows = np.flatnonzero(end) if end.any() else None
                is_act |= end
                call_rows = None if is_act.all() else np.flatnonzero(~is_act)
            for row, a0, a1, a2 in acts:
                try:
                    act_fns[row](a0, a1, a2)
                except EnvError as e:
                    finished[row] = (ENV_ERROR, f"ACT{[a0, a1, a2]} failed in "
                                                f"{self._stack(frames(row))}: {e}")
            if end_rows is not None:
                rows = end_rows
                d = depth[rows]
                for row in rows[d == 0].tolist():
                    finished[row] = (OK, "")
                rows = rows[d > 0]
                if rows.size:  # returns: pop the caller's frame and state
                    d = depth[rows] - 1
                    depth[rows] = d
                    progs[rows] = stk_prog[rows, d]
                    fargs[rows] = stk_args[rows, d]
                    slots = stk_slot[rows, d]
                    state[rows, cols] = saved.hc[slots]
                    saved.release(slots.tolist())
            if call_rows is not None:
                rows = call_rows
                d = depth[rows] + 1
                over = d > max_depth
                if over.any():
                    for row in rows[over].tolist():
                        name = self.bare[int(dec[row, 1])]
                        finished[row] = (DEPTH_BUDGET, f"depth budget {max_depth} exceeded: "
                                                       f"{self._stack(frames(row))} calls {name}")
                    rows, d = rows[~over], d[~over]
                if rows.size:  # calls: push the caller's frame and state, start a new frame
                    if int(d.max()) > cap:  # deeper stacks: widen the depth axis
                        grow = max(cap, int(d.max()) - cap)
                        stk_prog, stk_args, stk_slot = (
                            np.pad(a, [(0, 0), (0, grow)] + [(0, 0)] * (a.ndim - 2))
                            for a in (stk_prog, stk_args, stk_slot))
                        cap += grow
                    stk_prog[rows, d - 1] = progs[rows]
                    stk_args[rows, d - 1] = fargs[rows]
                    slots = saved.alloc(len(rows))
                    stk_slot[rows, d - 1] = slots
                    saved.hc[slots] = state[rows, cols]
                    state[rows, cols] = 0.0
                    depth[rows] = d
                    np.maximum(deepest[rows], d, out=d)
                    deepest[rows] = d
                    progs[rows] = dec[rows, 1]
                    fargs[rows] = dec[rows, 2:]
            if step >= max_steps:
                for row in range(len(running)):
                    if row not in finished:
                        finished[row] = (STEP_BUDGET, f"step budget {max_steps} exhausted in "
                                                      f"{self._stack(frames(row))}")
            if finished:
                for row, (status, message) in finished.items():
                    running[row].outcome = Outcome(status, step, int(deepest[row]), message)
                    saved.release(stk_slot[row, : depth[row]].tolist())
                keep = [row for row in range(len(running)) if row not in finished]
                running = [running[row] for row in keep]
                observe = [observe[row] for row in keep]
                act_fns = [act_fns[row] for row in keep]
                state, progs, fargs, depth, deepest, ids = (
                    a[keep] for a in (state, progs, fargs, depth, deepest, ids))
                stk_prog, stk_args, stk_slot = (a[keep] for a in (stk_prog, stk_args, stk_slot))

    def _track(self, running: list[_Instance], ids: np.ndarray, dec: np.ndarray, step: int,
               obs: list, out: Any, kernel: Kernel, frames: Any,
               refs: _ReferenceTable | None) -> None:
        """Log each row's decision, and compare the step's decisions with the references
        (one array comparison for the whole batch; Python only where a row diverges)."""
        if any(r.decisions is not None for r in running):
            for row, values in enumerate(dec.tolist()):
                r = running[row]
                if r.decisions is not None:
                    r.decisions.append(as_decision(*values))
        if refs is None:
            return
        for row in refs.differing(ids, dec, step).tolist():
            i = int(ids[row])
            refs.open[i] = False  # compared no more: its first divergence is this one
            self._diverged(running[row], step, frames(row), as_decision(*dec[row].tolist()),
                           refs.decision(i, step), obs[row], kernel, out[row])

    def _stack(self, frames: list[int]) -> str:
        return " > ".join(self.bare[p] for p in frames)

    def _diverged(self, r: _Instance, step: int, frames: list[int], decision: Decision,
                  expected: Decision | None, obs: Any, kernel: Kernel, row: Any) -> None:
        probs = kernel.probabilities(row)
        r.divergence = {
            "step": step,
            "stack": [self.bare[p] for p in frames],
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
                "call": self.bare[prog],
                "call_args": list(a),
                "p_call": float(p_prog[prog]),
                "p_args": [float(p_args[i, a[i]]) for i in range(3)],
            })
        return out


class _ReferenceTable:
    """The references of a run as one array [instances, longest, 5] (rows as in
    `references.Reference.decisions`, padded) and their lengths, so that a step's decisions
    are compared with the references of all running rows in one operation."""

    def __init__(self, references: Sequence[ReferenceLike | None]) -> None:
        arrays = [_rows(r) for r in references]
        self.lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
        longest = int(self.lengths.max()) if arrays else 0
        self.table = np.zeros((len(arrays), max(longest, 1), 5), dtype=np.int32)
        for i, a in enumerate(arrays):
            self.table[i, : a.shape[0]] = a
        # rows still compared: a reference given, no divergence found yet
        self.open = np.array([r is not None for r in references], dtype=bool)

    def differing(self, ids: np.ndarray, dec: np.ndarray, step: int) -> np.ndarray:
        """The running rows (indices into `ids`) whose decision at `step` is not their
        reference's (or whose reference has ended)."""
        if step >= self.table.shape[1]:
            return np.flatnonzero(self.open[ids])
        want = self.table[ids, step]
        got = dec.astype(np.int32, copy=True)
        end = got[:, 0] == 1
        got[end, 1] = -1
        got[end, 2:] = 0
        bad = (want != got).any(axis=1) | (step >= self.lengths[ids])
        bad &= self.open[ids]
        return np.flatnonzero(bad)

    def decision(self, i: int, step: int) -> Decision | None:
        if step >= self.lengths[i]:
            return None
        return as_decision(*self.table[i, step].tolist())


def _rows(reference: ReferenceLike | None) -> np.ndarray:
    """A reference as rows [steps, 5] int32."""
    if reference is None:
        return np.zeros((0, 5), dtype=np.int32)
    if isinstance(reference, np.ndarray):
        return reference.astype(np.int32, copy=False).reshape(-1, 5)
    return np.array([(1, -1, 0, 0, 0) if end else (0, prog, *a) for end, prog, a in reference],
                    dtype=np.int32).reshape(-1, 5)
