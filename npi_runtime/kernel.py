"""The numpy step of a model: one step of `NPI.step` for a batch of top frames, in numpy.

`model.py` is the definition of the network; this module derives its numpy form from a
model's modules when a `StepKernel` is made. The torch layers of the encoder's tail, the core
(`model.core`) and the heads (`model.heads`) are read one by one (`layer_ops`) and each becomes
a numpy operation; a layer type without a numpy form here is a `KernelError`, so a change to
the model either runs here unchanged or fails loudly (tests/runtime/test_kernel.py compares
this step with `NPI.step` on random weights). The LSTM is torch's `nn.LSTM` (its equations are
fixed), read from its weights.

Why numpy: one instance's step costs a few dozen small array operations, where torch's
per-operation overhead would dominate. The linear maps are folded together (exact up to
rounding; folded in float64):

* consecutive Linear layers are one matrix (`_fold`); the encoder's output layer and the
  state part of the core's first layer are one matrix; the program embedding's part of that
  layer is one bias row per program;
* a LayerNorm's centring goes into the Linear before it, its gain and bias into the linear
  map after it (the next Linear, or the first LSTM layer's input weights);
* each LSTM layer is one matmul over `[input, h]`, the g gate's rows doubled, so one sigmoid
  over the four gates gives tanh(g) as 2 sigmoid(2g) - 1;
* the key head and `M_key` are one matrix giving the program scores directly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from npi_runtime.model import NPI

#: below this many rows the kernel uses numpy's elementwise functions (a call costs about a
#: microsecond); from it on torch's vectorised sigmoid (several times faster per element)
BIG = 32
#: the fewest rows per slice when a step is cut across threads, and the usual size of one
MIN_SLICE = 48
SLICE = 128


class KernelError(TypeError):
    """The model has a layer (or a layout) the numpy kernel has no form for."""


# ---- torch layers -> operations (float64 torch tensors while folding)

@dataclass
class _Linear:
    w: torch.Tensor  # [out, in]
    b: torch.Tensor  # [out]


@dataclass
class _Leaky:
    slope: float  # 0 for a ReLU


@dataclass
class _Norm:
    eps: float  # x / sqrt(mean(x^2) + eps); the centring is in the Linear before it


@dataclass
class _Affine:
    gain: torch.Tensor
    shift: torch.Tensor


_Op = _Linear | _Leaky | _Norm | _Affine


def _f64(t: torch.Tensor | None, n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.float64) if t is None else t.detach().double()


def layer_ops(layers: Iterable[nn.Module], where: str) -> list[_Op]:
    """The operations of torch layers applied in order, folded (see `_fold`). Known: Linear,
    LeakyReLU, ReLU, Identity, and a LayerNorm over the last axis right after a Linear."""
    ops: list[_Op] = []
    for i, m in enumerate(layers):
        if isinstance(m, nn.Linear):
            ops.append(_Linear(m.weight.detach().double(), _f64(m.bias, m.out_features)))
        elif isinstance(m, nn.LeakyReLU):
            ops.append(_Leaky(float(m.negative_slope)))
        elif isinstance(m, nn.ReLU):
            ops.append(_Leaky(0.0))
        elif isinstance(m, nn.Identity):
            continue
        elif isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
            prev = ops[-1] if ops else None
            if not isinstance(prev, _Linear):
                raise KernelError(f"{where}[{i}]: the numpy kernel takes a LayerNorm only "
                                  "right after a Linear (whose output it centres)")
            # y - mean(y) = x (W - mean_j W_j) + (b - mean b)
            ops[-1] = _Linear(prev.w - prev.w.mean(0, keepdim=True), prev.b - prev.b.mean())
            ops.append(_Norm(float(m.eps)))
            if m.elementwise_affine:
                n = m.normalized_shape[0]
                ops.append(_Affine(_f64(m.weight, n), _f64(getattr(m, "bias", None), n)))
        else:
            raise KernelError(f"{where}[{i}] is a {type(m).__name__}: the numpy kernel "
                              "(npi_runtime.kernel.layer_ops) has no form for it")
    return _fold(ops)


def _fold(ops: list[_Op]) -> list[_Op]:
    """Linear after Linear, and Linear after an Affine, become one Linear."""
    out: list[_Op] = []
    for op in ops:
        out.append(op)
        while len(out) > 1 and isinstance(out[-1], _Linear):
            second, first = out[-1], out[-2]
            if isinstance(first, _Linear):
                merged = _Linear(second.w @ first.w, second.w @ first.b + second.b)
            elif isinstance(first, _Affine):
                merged = _Linear(second.w * first.gain, second.b + second.w @ first.shift)
            else:
                break
            out[-2:] = [merged]
    return out


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def _numpy_ops(ops: list[_Op]) -> list[tuple]:
    """The operations as the tuples `_run` takes; a Linear's weight transposed."""
    out: list[tuple] = []
    for op in ops:
        if isinstance(op, _Linear):
            out.append((_Linear, _np(op.w.t()), _np(op.b)))
        elif isinstance(op, _Leaky):  # max(x, a x) for a slope a <= 1, min(x, a x) above
            out.append((_Leaky, np.float32(op.slope),
                        np.maximum if op.slope <= 1.0 else np.minimum))
        elif isinstance(op, _Norm):
            out.append((_Norm, op.eps))
        else:
            out.append((_Affine, _np(op.gain), _np(op.shift)))
    return out


def _run(ops: list[tuple], x: np.ndarray, own: bool = True) -> np.ndarray:
    """Apply numpy operations to rows `x`, in place where an operation allows it (`own`
    False: `x` is only read)."""
    if not own and ops and ops[0][0] is not _Linear:
        x = x.copy()
    for op in ops:
        kind = op[0]
        if kind is _Linear:
            x = x @ op[1]
            x += op[2]
        elif kind is _Leaky:
            op[2](x, x * op[1], out=x)
        elif kind is _Norm:
            _norm(x, op[1], x)
        else:
            x *= op[1]
            x += op[2]
    return x


def _norm(x: np.ndarray, eps: float, out: np.ndarray) -> None:
    """`out` = x / sqrt(mean(x^2) + eps) per row (`out` may be `x`)."""
    ss = np.add.reduce(np.square(x), axis=1)
    ss *= 1.0 / x.shape[1]
    ss += eps
    np.sqrt(ss, out=ss)
    np.divide(x, ss[:, None], out=out)


# ---- the step

class StepKernel:
    """One step of the model for a batch of top frames, in numpy, linear maps folded (see the
    module's docstring). Built from the model's weights when made (`NeuralExecutor.kernel`
    makes a new one when they change).

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
        with torch.no_grad():
            self._encoder_and_core(model, env_name)
            self._lstm(model.lstm, hid)
            self._heads(model)

    def _encoder_and_core(self, model: NPI, env_name: str) -> None:
        """The encoder's first layer (`rows_in`) or the torch encoder (`encoder`), the layers
        up to the core's first Linear (`pre`) with that Linear's state part (`w_x`) and its
        program part (`prog_bias`), and the rest of the core (`mid`, then `mid_eps`: its
        normalisation, if it ends in one)."""
        c = model.config
        enc = model.encoders[env_name]
        self.encoder = enc
        export = enc.numpy_export()
        self.rows_in = export[0] if export is not None else None
        tail = layer_ops(export[1], f"encoder {env_name}") if export is not None else []
        core = list(model.core)
        first = core[0] if core else None
        if not (isinstance(first, nn.Linear)
                and first.in_features == c.state_dim + c.program_dim):
            raise KernelError("model.core[0] must be a Linear over [state, program] for the "
                              "numpy kernel")
        w0 = _Linear(first.weight.detach().double(), _f64(first.bias, first.out_features))
        ws, wp = w0.w[:, : c.state_dim], w0.w[:, c.state_dim :]
        # the encoder's layers and the state part of the core's first Linear (folded)
        to_x = _fold([*tail, _Linear(ws, torch.zeros(ws.shape[0], dtype=torch.float64))])
        x = to_x.pop()
        assert isinstance(x, _Linear)
        self.pre = _numpy_ops(to_x)
        self.w_x = _np(x.w.t())
        self.prog_bias = _np(model.memory.progs.detach().double() @ wp.t() + w0.b + x.b)
        mid = layer_ops(core[1:], "model.core")
        # a trailing gain and bias (the LayerNorm's) go into the first LSTM layer
        self._into_lstm = mid.pop() if mid and isinstance(mid[-1], _Affine) else None
        # a last normalisation writes the LSTM's input in place
        self.mid_eps = mid.pop().eps if mid and isinstance(mid[-1], _Norm) else None
        self.mid = _numpy_ops(mid)

    def _lstm(self, lstm: nn.Module, hid: int) -> None:
        """Per layer, the gates' weights over `[input, h]` and bias (the g gate's doubled)."""
        if not (isinstance(lstm, nn.LSTM) and lstm.bias and not lstm.bidirectional
                and lstm.proj_size == 0 and not lstm.batch_first
                and lstm.num_layers == self.layers and lstm.hidden_size == hid):
            raise KernelError(f"the numpy kernel steps a plain {self.layers}-layer nn.LSTM of "
                              f"{hid} units, not {lstm}")
        # sigmoid for every gate; the g gate's rows doubled, since tanh(x) = 2 sigmoid(2x) - 1
        scale = torch.ones(4 * hid, 1, dtype=torch.float64)
        scale[2 * hid : 3 * hid] = 2.0
        self.w_gates: list[np.ndarray] = []
        self.b_gates: list[np.ndarray] = []
        for layer in range(self.layers):
            w_ih = getattr(lstm, f"weight_ih_l{layer}").detach().double()
            w_hh = getattr(lstm, f"weight_hh_l{layer}").detach().double()
            b = (getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}"))
            b = b.detach().double()
            if layer == 0 and self._into_lstm is not None:
                a = self._into_lstm
                w_ih, b = w_ih * a.gain, b + w_ih @ a.shift
            self.w_gates.append(_np((scale * torch.cat([w_ih, w_hh], dim=1)).t()))
            self.b_gates.append(_np(scale[:, 0] * b))
        self.nb_gates = [-b for b in self.b_gates]  # small batches: -(x + b) in one operation

    def _heads(self, model: NPI) -> None:
        """The heads' layers (`top`) and their last Linear folded with `M_key` (`w_out`)."""
        c = model.config
        ops = layer_ops(model.heads, "model.heads")
        last = ops.pop() if ops else None
        if not (isinstance(last, _Linear) and last.w.shape[0] == 1 + c.key_dim + 3 * c.arg_range):
            raise KernelError("model.heads must end in a Linear to [end | key | 3 args] for the "
                              "numpy kernel")
        self.top = _numpy_ops(ops)
        w, b, k = last.w, last.b, c.key_dim
        keys = model.memory.keys.detach().double()
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
        """What `rows` takes from the observations: the indices of the encoder's rows to sum
        (an encoder with a numpy form) or the encoder's output (any other encoder)."""
        if self.rows_in is None:
            enc = self.encoder
            where = next(enc.parameters()).device
            with torch.inference_mode():
                s = enc(enc.tensorize(observations).to(where), torch.from_numpy(args).to(where))
            return s.cpu().numpy()
        return self.rows_in.indices(observations, args)

    def _encode(self, idx: np.ndarray) -> np.ndarray:
        """The sum of the encoder's rows `idx` [B, k], through the encoder's layers (`pre`)."""
        assert self.rows_in is not None
        table = self.rows_in.table
        if idx.shape[0] < BIG:  # a sum of embedding rows
            h = np.add.reduce(table[idx], axis=1)
        else:  # torch's embedding_bag: several times faster than numpy's gather and sum
            h = torch.nn.functional.embedding_bag(
                torch.from_numpy(idx), torch.from_numpy(table), mode="sum").numpy()
        return _run(self.pre, h)

    def rows(self, inputs: np.ndarray, programs: np.ndarray, state: np.ndarray) -> np.ndarray:
        """One step of B rows: the outputs [B, 1 + N + 3R] (end logit, program scores, arg
        logits); `state` [B, width] is updated in place. Rows are independent: slices of a
        batch can be stepped separately (and concurrently)."""
        hid = self.hidden
        small = state.shape[0] < BIG
        x = (self._encode(inputs) if self.rows_in is not None else inputs) @ self.w_x
        x += self.prog_bias[programs]
        x = _run(self.mid, x)
        if self.mid_eps is not None:  # the LSTM's input, in place
            _norm(x, self.mid_eps, state[:, :hid])
        else:
            state[:, :hid] = x
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
        out = _run(self.top, self.h(state, self.layers - 1), own=False) @ self.w_out
        out += self.b_out
        return out

    def __call__(self, observations: list, args: np.ndarray, programs: np.ndarray,
                 state: np.ndarray, pool: ThreadPoolExecutor | None = None,
                 threads: int = 1) -> np.ndarray:
        """One step of the whole batch (see `rows`). With a pool, a batch of at least
        2 x MIN_SLICE rows is cut into slices of about SLICE rows (at least one per thread)
        that `threads` threads take in turn, so a thread the OS holds back takes fewer."""
        inputs = self.inputs(observations, args)
        n = state.shape[0]
        with np.errstate(over="ignore"):
            if pool is None or threads < 2 or n < 2 * MIN_SLICE:
                return self.rows(inputs, programs, state)
            parts = max(min(threads, n // MIN_SLICE), n // SLICE)
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
        return probabilities_of(row, self.n_programs, self.arg_range)

    def zeros(self, rows: int, columns: int) -> np.ndarray:
        """An all-zero array for saved states (the executor's pool)."""
        return np.zeros((rows, columns), dtype=np.float32)


def probabilities_of(row: np.ndarray, n: int, arg_range: int
                     ) -> tuple[float, np.ndarray, np.ndarray]:
    """(p_end, p over the `n` programs, p over each argument [3, R]) from one row of a
    kernel's outputs [1 + n + 3R]."""
    p_end = float(1.0 / (1.0 + np.exp(-float(row[0]))))
    scores = row[1 : 1 + n].astype(np.float64)
    p_prog = np.exp(scores - scores.max())
    p_prog /= p_prog.sum()
    logits = row[1 + n :].reshape(3, arg_range).astype(np.float64)
    p_args = np.exp(logits - logits.max(1, keepdims=True))
    p_args /= p_args.sum(1, keepdims=True)
    return p_end, p_prog, p_args
