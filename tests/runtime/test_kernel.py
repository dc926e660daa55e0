"""The executor's numpy step (npi_runtime.kernel) against the torch model's `NPI.step`.

Random weights (seeded), for every bundled environment's encoder and for an encoder without a
numpy form; the default 2x256 model and small ones of unequal widths; several steps with the
LSTM state carried; batches on numpy's elementwise path (< 32 rows) and torch's (>= 32).
Logits, probabilities and state are compared with `np.allclose`, decisions exactly. A model
with a layer the kernel does not know must fail when the kernel is made, not run differently.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from npi_runtime import api
from npi_runtime.encoders import Encoder, SymbolEncoder, make_encoder
from npi_runtime.executor import NeuralExecutor
from npi_runtime.kernel import BIG, KernelError, StepKernel
from npi_runtime.model import NPI, NPIConfig

PROGRAMS = Path(__file__).resolve().parents[2] / "programs"
#: one bundled program file per environment the bundled programs use
#: (not the issue-9 gallery, whose constraints, e.g. subtraction's `a >= b`, the inputs of
#: the executor tests below do not meet)
GALLERY = {"subtraction.npi", "multiply_digit.npi"}
BY_ENV = {api.load_program(p).env_name: p for p in sorted(PROGRAMS.glob("*.npi"))
          if p.name not in GALLERY}
#: the environments whose observations are symbols only (the camera's has an image)
SYMBOL_ENVS = sorted(e for e, p in BY_ENV.items()
                     if all(s.kind == "symbol" for s in api.load_program(p).vocabulary.observation))

SMALL = NPIConfig(hidden=16, layers=2, state_dim=20, encoder_hidden=12, program_dim=12,
                  key_dim=4, core_hidden=24, head_hidden=20)
THREE = replace(SMALL, layers=3, hidden=8)  # three LSTM layers, the LSTM narrower than the rest

# tolerances: float32 against float32 with the maps folded in float64
OUT_TOL = {"rtol": 1e-4, "atol": 2e-4}
STATE_TOL = {"rtol": 1e-4, "atol": 5e-5}
PROB_TOL = {"rtol": 0, "atol": 1e-4}


class TorchOnlyEncoder(Encoder):
    """An encoder without a numpy form (and with a layer the kernel does not know): the
    kernel runs it in torch."""

    def __init__(self, slots: list[int], arg_range: int, state_dim: int) -> None:
        super().__init__()
        self.slots, self.arg_range, self.state_dim = slots, arg_range, state_dim
        self.net = nn.Sequential(nn.Linear(len(slots) + 3, 32), nn.Tanh(),
                                 nn.Linear(32, state_dim))

    def tensorize(self, observations):
        return torch.as_tensor(observations, dtype=torch.long).reshape(-1, len(self.slots))

    def forward(self, obs: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, args], 1).float() / 10.0)


def _model(env: str, config: NPIConfig, seed: int, encoder: str = "bundled",
           encoder_layers: int = 2) -> NPI:
    """A model for `env`'s bundled program with random weights: a fresh model's plus noise,
    so that biases, LayerNorm gains and shifts are not their initial 0 and 1."""
    checked = api.load_program(BY_ENV[env])
    vocab = checked.vocabulary
    config = replace(config, arg_range=vocab.arg_range)
    torch.manual_seed(seed)
    if encoder == "bundled":
        enc = make_encoder(env, vocab.observation, vocab.arg_range, config.encoder_hidden,
                           config.state_dim, layers=encoder_layers)
    else:
        enc = TorchOnlyEncoder([max(s.symbols, 1) for s in vocab.observation], vocab.arg_range,
                               config.state_dim)
    model = NPI(config, {env: enc}, api.memory_order(checked))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


def _inputs(model: NPI, env: str, rows: int, rng: np.random.Generator):
    """Random observations (valid symbols per slot), arguments (some outside 0 .. R-1, which
    both sides clamp) and programs for `rows` rows."""
    checked = api.load_program(BY_ENV[env])
    slots = checked.vocabulary.observation
    world = checked.create_env()

    def observation() -> tuple[int, ...]:
        if any(s.kind == "image" for s in slots):  # a real view's frame key (the camera)
            world.reset(world.sample_input(random.Random(int(rng.integers(2**31))), 3))
            seen = world.observe()
        return tuple(seen[i] if s.kind == "image" else int(rng.integers(s.symbols))
                     for i, s in enumerate(slots))

    obs = [observation() for _ in range(rows)]
    args = rng.integers(-2, model.config.arg_range + 3, size=(rows, 3)).astype(np.int64)
    progs = rng.integers(len(model.memory), size=rows).astype(np.int64)
    return obs, args, progs


def _compare(model: NPI, env: str, rows: int, steps: int = 3, seed: int = 0,
             pool: ThreadPoolExecutor | None = None) -> None:
    """`steps` consecutive steps of the kernel and of `NPI.step` from the same random state."""
    rng = np.random.default_rng(seed)
    c = model.config
    k = StepKernel(model, env)
    h0 = rng.normal(size=(c.layers, rows, c.hidden)).astype(np.float32)
    c0 = rng.normal(size=h0.shape).astype(np.float32)
    state = k.zero_state(rows)
    for layer in range(c.layers):
        k.h(state, layer)[:] = h0[layer]
        k.c(state, layer)[:] = c0[layer]
    hc = (torch.from_numpy(h0.copy()), torch.from_numpy(c0.copy()))
    enc = model.encoders[env]
    for _ in range(steps):
        obs, args, progs = _inputs(model, env, rows, rng)
        out = k(obs, args, progs, state, pool, threads=2 if pool else 1)
        with torch.no_grad():
            s = model.encode(env, enc.tensorize(obs), torch.from_numpy(args))
            end, scores, arg_logits, hc = model.step(s, torch.from_numpy(progs), hc)
        ref = torch.cat([end[:, None], scores, arg_logits.reshape(rows, -1)], 1).numpy()
        assert out.shape == ref.shape
        assert np.allclose(out, ref, **OUT_TOL), np.abs(out - ref).max()
        for layer in range(c.layers):
            assert np.allclose(k.h(state, layer), hc[0][layer].numpy(), **STATE_TOL)
            assert np.allclose(k.c(state, layer), hc[1][layer].numpy(), **STATE_TOL)
        dec = k.decide(out)
        assert (dec[:, 0] == (end > 0).numpy()).all()
        assert (dec[:, 1] == scores.argmax(1).numpy()).all()
        assert (dec[:, 2:] == arg_logits.argmax(2).numpy()).all()
        for row in (0, rows - 1):
            p_end, p_prog, p_args = k.probabilities(out[row])
            assert np.isclose(p_end, torch.sigmoid(end[row]).item(), **PROB_TOL)
            assert np.allclose(p_prog, torch.softmax(scores[row].double(), 0).numpy(),
                               **PROB_TOL)
            assert np.allclose(p_args, torch.softmax(arg_logits[row].double(), 1).numpy(),
                               **PROB_TOL)


def test_every_bundled_environment_is_covered() -> None:
    assert {"scratchpad", "array", "camera"} <= set(BY_ENV)


@pytest.mark.parametrize("rows", [1, 5, BIG + 8])  # numpy's elementwise path, then torch's
@pytest.mark.parametrize("env", sorted(BY_ENV))
def test_default_model_matches_the_torch_step(env: str, rows: int) -> None:
    _compare(_model(env, NPIConfig(), seed=1), env, rows)


@pytest.mark.parametrize("rows", [1, BIG + 8])
@pytest.mark.parametrize("config", [SMALL, THREE], ids=["small", "three-layers"])
@pytest.mark.parametrize("env", sorted(BY_ENV))
def test_small_models_match_the_torch_step(env: str, config: NPIConfig, rows: int) -> None:
    _compare(_model(env, config, seed=2), env, rows, steps=4)


@pytest.mark.parametrize("encoder_layers", [1, 3])
@pytest.mark.parametrize("env", SYMBOL_ENVS)
def test_symbol_encoders_of_other_depths(env: str, encoder_layers: int) -> None:
    model = _model(env, SMALL, seed=3, encoder_layers=encoder_layers)
    assert isinstance(model.encoders[env], SymbolEncoder)
    for rows in (3, BIG + 1):
        _compare(model, env, rows)


@pytest.mark.parametrize("rows", [2, BIG + 8])
def test_an_encoder_without_a_numpy_form_runs_in_torch(rows: int) -> None:
    model = _model("scratchpad", SMALL, seed=4, encoder="torch")
    assert model.encoders["scratchpad"].numpy_export() is None
    _compare(model, "scratchpad", rows)


def test_a_batch_cut_across_threads_matches() -> None:
    model = _model("scratchpad", SMALL, seed=5)
    with ThreadPoolExecutor(1) as pool:
        _compare(model, "scratchpad", 300, pool=pool)


def test_other_known_layers_just_work() -> None:
    """Layers the kernel knows, in another arrangement: more head layers, ReLU, Identity, a
    slope above 1, a LayerNorm without gain, a core without one, heads that begin with an
    activation."""
    model = _model("array", SMALL, seed=6)
    c = model.config
    n_out = 1 + c.key_dim + 3 * c.arg_range
    model.heads = nn.Sequential(nn.Linear(c.hidden, 20), nn.ReLU(), nn.Identity(),
                                nn.Linear(20, 18), nn.LeakyReLU(1.5), nn.Linear(18, n_out))
    model.core[3] = nn.LayerNorm(c.hidden, elementwise_affine=False)
    _compare(model, "array", 5)
    model.core = nn.Sequential(nn.Linear(c.state_dim + c.program_dim, 24), nn.ReLU(),
                               nn.Linear(24, c.hidden), nn.LeakyReLU(0.3))
    _compare(model, "array", BIG + 2)
    # heads that begin with an activation must not change the LSTM state they read
    model.heads.insert(0, nn.LeakyReLU(0.05))
    _compare(model, "array", 3)


@pytest.mark.parametrize("part", ["core", "heads", "encoder"])
def test_an_unknown_layer_fails_loudly(part: str) -> None:
    model = _model("scratchpad", SMALL, seed=7)
    if part == "core":
        model.core.insert(2, nn.GELU())
    elif part == "heads":
        model.heads.insert(1, nn.Tanh())
    else:
        model.encoders["scratchpad"].deeper.append(nn.Sigmoid())
    with pytest.raises(KernelError, match="has no form"):
        StepKernel(model, "scratchpad")
    checked = api.load_program(BY_ENV["scratchpad"])
    runner = api.task_runner(checked)
    with pytest.raises(KernelError):
        NeuralExecutor(model, "scratchpad").run([runner.new_env(runner.parse_input(["1", "2"]))],
                                                checked.task(None).entry)


def test_a_layernorm_the_kernel_cannot_fold_fails_loudly() -> None:
    model = _model("scratchpad", SMALL, seed=8)
    model.core.insert(2, nn.LayerNorm(model.config.core_hidden))  # after the activation
    with pytest.raises(KernelError, match="LayerNorm"):
        StepKernel(model, "scratchpad")
