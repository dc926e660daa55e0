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

The step itself runs in numpy (`StepKernel`), with the model's linear maps folded together:
one instance's step costs a few dozen small array operations, where torch's per-operation
overhead would dominate. numpy's BLAS is held at one thread while the executor runs: a
threaded matrix-vector product waits for a second core, which on a shared machine is often
busy (at one instance that made a step several times slower). With `threads` > 1, big batches
are cut into that many slices of rows, each stepped by its own Python thread (numpy and torch
release the GIL in their kernels), which uses several cores without a BLAS thread pool.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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

#: below this many rows the kernel uses numpy's elementwise functions (a call costs about a
#: microsecond); from it on torch's vectorised sigmoid (several times faster per element)
_BIG = 32
#: up to this many rows, the executor sorts a step's decisions in Python, not numpy
_FEW = 8
#: the fewest rows per slice when a step is cut across threads, and the usual size of one
_MIN_SLICE = 48
_SLICE = 128


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
    reference: Sequence[Decision] | None = None
    divergence: dict | None = None
    decisions: list[Decision] | None = None
    outcome: Outcome | None = None


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


# ---- numpy's BLAS thread count (OpenBLAS, found among the loaded libraries)

_BLAS_NAMES = ("scipy_openblas_{}_num_threads64_", "scipy_openblas_{}_num_threads",
               "openblas_{}_num_threads64_", "openblas_{}_num_threads")
_blas_lookup: list[tuple[Any, Any] | None] = []


def _openblas() -> tuple[Any, Any] | None:
    """The (get, set) thread-count functions of the OpenBLAS that numpy loaded, or None."""
    if not _blas_lookup:
        found = None
        try:
            with open("/proc/self/maps") as f:
                paths = {line.split()[-1] for line in f
                         if "openblas" in line.lower() and ".so" in line}
        except OSError:
            paths = set()
        for path in sorted(paths, key=lambda p: "numpy" not in p):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for name in _BLAS_NAMES:
                get, put = name.format("get"), name.format("set")
                if hasattr(lib, get) and hasattr(lib, put):
                    getter, setter = getattr(lib, get), getattr(lib, put)
                    getter.restype, getter.argtypes = ctypes.c_int, []
                    setter.restype, setter.argtypes = None, [ctypes.c_int]
                    found = (getter, setter)
                    break
            if found:
                break
        _blas_lookup.append(found)
    return _blas_lookup[0]


def blas_threads() -> int | None:
    """numpy's BLAS thread count, or None where it is not an OpenBLAS found at run time."""
    b = _openblas()
    return b[0]() if b else None


@contextlib.contextmanager
def compute_threads(blas: int, torch_threads: int) -> Iterator[None]:
    """numpy's BLAS (where it is an OpenBLAS found at run time) and torch at the given thread
    counts for the duration; the previous counts are restored after."""
    b = _openblas()
    old_blas = b[0]() if b else None
    old_torch = torch.get_num_threads()
    if b and old_blas != blas:
        b[1](blas)
    if old_torch != torch_threads:
        torch.set_num_threads(torch_threads)
    try:
        yield
    finally:
        if b and old_blas != blas:
            b[1](old_blas)
        if old_torch != torch_threads:
            torch.set_num_threads(old_torch)


class StepKernel:
    """One step of the model for a batch of top frames, in numpy, linear maps folded.

    Folding (exact up to rounding): the encoder's output layer and the state part of the
    core's first layer are one matrix; the program embedding's part is one bias row per
    program; the LayerNorm's centring goes into the core's output layer and its gain and bias
    into the first LSTM layer; each LSTM layer is one matmul over `[input, h]`; the key head
    and `M_key` are one matrix giving the program scores directly; the g gate's rows are
    doubled, so one sigmoid over the four gates gives tanh(g) as 2 sigmoid(2g) - 1. Built from
    the model's weights when made (`NeuralExecutor.kernel` makes a new one when they change).

    The state of a batch is one array [B, H * (1 + 2 * layers)] per row laid out
    `[y | h_0 .. h_{L-1} | c_0 .. c_{L-1}]` (y: the LSTM's input this step), so that layer l's
    input `[input, h_l]` is the contiguous column range l*H .. (l+2)*H: each layer writes its
    new h over the old one, which is next layer's input; nothing is concatenated or copied.
    Columns H.. (`state_cols`) are the frame's LSTM state, saved and restored by calls.
    """

    def __init__(self, model: NPI, env_name: str) -> None:
        c = model.config
        self.layers, self.hidden = c.layers, c.hidden
        hid = c.hidden
        self.width = hid * (1 + 2 * c.layers)
        self.state_cols = slice(hid, self.width)
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
        # the core's output layer with the LayerNorm's centring folded in:
        # y - mean(y) = x (W - mean_j W_j) + (b - mean b)
        w2, b2 = core2.weight.detach().double(), core2.bias.detach().double()
        self.w_core2 = _np((w2 - w2.mean(0, keepdim=True)).t())
        self.b_core2 = _np(b2 - b2.mean())
        norm = model.core[3]
        self.eps = float(norm.eps)
        gain, shift = norm.weight.detach(), norm.bias.detach()
        lstm = model.lstm
        # sigmoid for every gate; the g gate's rows doubled, since tanh(x) = 2 sigmoid(2x) - 1
        scale = torch.ones(4 * hid, 1)
        scale[2 * hid : 3 * hid] = 2.0
        self.w_gates: list[np.ndarray] = []
        self.b_gates: list[np.ndarray] = []
        for layer in range(c.layers):
            w_ih = getattr(lstm, f"weight_ih_l{layer}").detach()
            w_hh = getattr(lstm, f"weight_hh_l{layer}").detach()
            b = (getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")).detach()
            if layer == 0:  # the LayerNorm's gain and bias
                w_ih, b = w_ih * gain, b + w_ih @ shift
            self.w_gates.append(_np((scale * torch.cat([w_ih, w_hh], dim=1)).t()))
            self.b_gates.append(_np(scale[:, 0] * b))
        self.nb_gates = [-b for b in self.b_gates]  # small batches: -(x + b) in one operation
        hid_layer, out = model.heads[0], model.heads[2]
        self.w_head, self.b_head = _np(hid_layer.weight.t()), _np(hid_layer.bias)
        w, b = out.weight.detach(), out.bias.detach()
        k = c.key_dim
        keys = model.memory.keys.detach()
        self.n_programs = keys.shape[0]
        self.w_out = _np(torch.cat([w[:1], keys @ w[1 : 1 + k], w[1 + k :]]).t())
        self.b_out = _np(torch.cat([b[:1], keys @ b[1 : 1 + k], b[1 + k :]]))

    def zero_state(self, batch: int) -> np.ndarray:
        """A batch's state, [B, width], all zero."""
        return np.zeros((batch, self.width), dtype=np.float32)

    def h(self, state: np.ndarray, layer: int) -> np.ndarray:
        """Layer `layer`'s h, a view [B, H] of `state`."""
        return state[:, (1 + layer) * self.hidden : (2 + layer) * self.hidden]

    def c(self, state: np.ndarray, layer: int) -> np.ndarray:
        """Layer `layer`'s c, a view [B, H] of `state`."""
        first = (1 + self.layers + layer) * self.hidden
        return state[:, first : first + self.hidden]

    def inputs(self, observations: list, args: np.ndarray) -> np.ndarray:
        """What `rows` takes from the observations: embedding rows to sum (an encoder with
        numpy parts) or the encoder's output (any other encoder)."""
        p = self.parts
        if p is None:
            enc = self.encoder
            with torch.inference_mode():
                s = enc(enc.tensorize(observations), torch.from_numpy(args))
            return s.numpy()
        slots = p["offsets"].shape[0] - 3
        idx = np.empty((len(observations), slots + 3), dtype=np.int64)
        idx[:, :slots] = observations
        a = idx[:, slots:]
        a[:] = args
        np.minimum(a, self.arg_range - 1, out=a)  # clamped as the encoder does (np.clip
        np.maximum(a, 0, out=a)  # costs 30 us a call here, these two ufuncs 2)
        idx += p["offsets"]
        return idx

    def _encode(self, idx: np.ndarray) -> np.ndarray:
        """The encoder's last hidden layer for embedding rows `idx`."""
        p = self.parts
        assert p is not None
        if idx.shape[0] < _BIG:  # a sum of embedding rows
            h = np.add.reduce(p["table"][idx], axis=1)
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

    def rows(self, inputs: np.ndarray, programs: np.ndarray, state: np.ndarray) -> np.ndarray:
        """One step of B rows: the outputs [B, 1 + N + 3R] (end logit, program scores, arg
        logits); `state` [B, width] is updated in place. Rows are independent: slices of a
        batch can be stepped separately (and concurrently)."""
        hid = self.hidden
        small = state.shape[0] < _BIG
        x = (self._encode(inputs) if self.parts is not None else inputs) @ self.w_x
        x += self.prog_bias[programs]
        _leaky_(x)
        y = x @ self.w_core2  # centred
        y += self.b_core2
        ss = np.add.reduce(np.square(y, out=x), axis=1)
        ss *= 1.0 / hid
        ss += self.eps
        np.sqrt(ss, out=ss)
        np.divide(y, ss[:, None], out=state[:, :hid])  # the LSTM's input, in place
        for layer in range(self.layers):
            g = state[:, layer * hid : (layer + 2) * hid] @ self.w_gates[layer]
            if small:  # sigmoid: 1 / (1 + exp(-(g + b))); exp's overflow to inf gives 0
                np.subtract(self.nb_gates[layer], g, out=g)
                np.exp(g, out=g)
                g += 1.0
                np.reciprocal(g, out=g)
            else:
                g += self.b_gates[layer]
                t = torch.from_numpy(g)
                torch.sigmoid(t, out=t)
            c = self.c(state, layer)
            if small:
                i, f, gg, o = (g[:, j * hid : (j + 1) * hid] for j in range(4))
                gg *= 2.0  # tanh(g) = 2 sigmoid(2g) - 1
                gg -= 1.0
                gg *= i
                c *= f
                c += gg
                np.tanh(c, out=i)
                np.multiply(i, o, out=self.h(state, layer))
            else:  # torch's in-place kernels: fewer passes over the rows than numpy's
                i, f, gg, o = torch.from_numpy(g).split(hid, 1)
                tc = torch.from_numpy(c)
                tc.mul_(f)
                tc.addcmul_(i, gg, value=2.0)  # c = f c + i (2 sigmoid(2g) - 1)
                tc.sub_(i)
                torch.mul(tc, 2.0, out=i)
                i.sigmoid_()  # tanh(c) = 2 sigmoid(2c) - 1, torch's sigmoid being fast
                o.neg_()  # h = o (2 sigmoid(2c) - 1) = -o - 2 sigmoid(2c) (-o)
                torch.addcmul(o, i, o, value=-2.0, out=torch.from_numpy(self.h(state, layer)))
        top = self.h(state, self.layers - 1) @ self.w_head
        top += self.b_head
        _leaky_(top)
        out = top @ self.w_out
        out += self.b_out
        return out

    def __call__(self, observations: list, args: np.ndarray, programs: np.ndarray,
                 state: np.ndarray, pool: ThreadPoolExecutor | None = None,
                 threads: int = 1) -> np.ndarray:
        """One step of the whole batch (see `rows`). With a pool, a batch of at least
        2 x _MIN_SLICE rows is cut into slices of about _SLICE rows (at least one per thread)
        that `threads` threads take in turn, so a thread the OS holds back takes fewer."""
        inputs = self.inputs(observations, args)
        n = state.shape[0]
        with np.errstate(over="ignore"):
            if pool is None or threads < 2 or n < 2 * _MIN_SLICE:
                return self.rows(inputs, programs, state)
            parts = max(min(threads, n // _MIN_SLICE), n // _SLICE)
            cut = [n * j // parts for j in range(parts + 1)]
            out = np.empty((n, self.w_out.shape[1]), dtype=np.float32)
            counter = itertools.count()

            def work() -> None:
                with np.errstate(over="ignore"):
                    while (j := next(counter)) < parts:
                        a, b = cut[j], cut[j + 1]
                        out[a:b] = self.rows(inputs[a:b], programs[a:b], state[a:b])

            futures = [pool.submit(work) for _ in range(min(threads, parts) - 1)]
            work()
            for f in futures:
                f.result()
            return out

    def decide(self, out: np.ndarray) -> np.ndarray:
        """Per row [end (0/1), program index, three arguments], an int64 array [B, 5]."""
        n = self.n_programs
        dec = np.empty((out.shape[0], 5), dtype=np.int64)
        dec[:, 0] = out[:, 0] > 0
        dec[:, 1] = out[:, 1 : 1 + n].argmax(1)
        dec[:, 2:] = out[:, 1 + n :].reshape(-1, 3, self.arg_range).argmax(2)
        return dec

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


class _StatePool:
    """Saved LSTM states of callers, [capacity, columns], with a free list of slots."""

    def __init__(self, columns: int, capacity: int = 64) -> None:
        self.hc = np.zeros((capacity, columns), dtype=np.float32)
        self.free = list(range(capacity - 1, -1, -1))

    def alloc(self, n: int) -> list[int]:
        if len(self.free) < n:
            cap, columns = self.hc.shape
            new = max(cap, n)
            grown = np.zeros((cap + new, columns), dtype=np.float32)
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
                 max_depth: int = 256, threads: int = 1) -> None:
        self.model = model
        self.env_name = env_name
        self.max_steps = max_steps
        self.max_depth = max_depth
        self.threads = max(1, int(threads))
        self.act = model.memory.index(ACT)
        self.names = model.memory.names
        self.bare = [n.rsplit(".", 1)[-1] for n in self.names]  # for messages
        self._kernel: tuple[tuple, StepKernel] | None = None

    def kernel(self) -> StepKernel:
        """The step kernel of the model's current weights: built again only when a parameter
        was replaced or changed in place since the last run (torch counts in-place changes)."""
        key = tuple((id(p), p._version) for p in self.model.parameters())
        if self._kernel is None or self._kernel[0] != key:
            self._kernel = (key, StepKernel(self.model, self.env_name))
        return self._kernel[1]

    def run(self, envs: Sequence[Environment], entry: str, args: Sequence[int] = (0, 0, 0),
            references: Sequence[Sequence[Decision] | None] | None = None,
            record: bool = False) -> list[Outcome]:
        """Run program `entry` (a qualified name) on every environment, already reset."""
        model = self.model
        model.eval()
        entry_index = model.memory.index(entry)
        entry_args = tuple(int(a) for a in args) + (0,) * (3 - len(args))
        inst = [
            _Instance(env=e, reference=references[i] if references else None,
                      decisions=[] if record else None)
            for i, e in enumerate(envs)
        ]
        if inst:
            kernel = self.kernel()
            parallel = self.threads > 1 and len(inst) >= 2 * _MIN_SLICE
            with contextlib.ExitStack() as stack:
                stack.enter_context(compute_threads(1, 1))
                pool = (stack.enter_context(ThreadPoolExecutor(self.threads - 1))
                        if parallel else None)
                self._loop(inst, kernel, entry_index, entry_args,
                           references is not None or record, pool)
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

    def _loop(self, inst: list[_Instance], kernel: StepKernel, entry_index: int,
              entry_args: tuple[int, int, int], track: bool,
              pool: ThreadPoolExecutor | None) -> None:
        """Step every instance until it finishes; sets each instance's outcome."""
        n = len(inst)
        act, max_steps, max_depth, threads = self.act, self.max_steps, self.max_depth, self.threads
        cols = kernel.state_cols
        running = list(inst)
        observe = [r.env.observe for r in inst]
        act_fns = [r.env.act for r in inst]
        state = kernel.zero_state(n)
        saved = _StatePool(state.shape[1] - cols.start)
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
                self._track(running, dec, step, obs, out, kernel, frames)
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
                state, progs, fargs, depth, deepest = (
                    a[keep] for a in (state, progs, fargs, depth, deepest))
                stk_prog, stk_args, stk_slot = (a[keep] for a in (stk_prog, stk_args, stk_slot))

    def _track(self, running: list[_Instance], dec: np.ndarray, step: int, obs: list,
               out: np.ndarray, kernel: StepKernel, frames: Any) -> None:
        """Log each row's decision and compare it with the reference."""
        for row, (end, prog, a0, a1, a2) in enumerate(dec.tolist()):
            r = running[row]
            decision: Decision = (True, -1, (0, 0, 0)) if end else (False, prog, (a0, a1, a2))
            if r.decisions is not None:
                r.decisions.append(decision)
            if r.reference is not None and r.divergence is None:
                ref = r.reference
                if step >= len(ref) or ref[step] != decision:
                    self._diverged(r, step, frames(row), decision, obs[row], kernel, out[row])

    def _stack(self, frames: list[int]) -> str:
        return " > ".join(self.bare[p] for p in frames)

    def _diverged(self, r: _Instance, step: int, frames: list[int], decision: Decision,
                  obs: Any, kernel: StepKernel, row: np.ndarray) -> None:
        ref = r.reference
        assert ref is not None
        expected = ref[step] if step < len(ref) else None
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
