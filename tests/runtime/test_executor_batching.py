"""The executor's batching: a run of many instances at once, cut across threads or not, takes
the same decisions per instance as runs of one instance; finished instances leave the batch
in any order (returns, calls, actions, failed actions and both budgets all happen here)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import torch
from forcing_helpers import force_calls

from npi_runtime import api
from npi_runtime.executor import NeuralExecutor, blas_threads


def _noisy_model(checked, seed: int):
    """An untrained model with large random weights: it calls, returns, acts and fails."""
    model = api.new_model(checked, seed=seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model


def _envs(runner, n: int, seed: int):
    return [runner.new_env(runner.sample_input(random.Random(seed * 1000 + i), 1 + i % 7))
            for i in range(n)]


def _key(o):
    return (o.status, o.steps, o.max_depth, o.message, o.decisions)


def test_many_at_once_equals_one_by_one(programs_dir: Path) -> None:
    checked = api.load_program(programs_dir / "addition.npi")
    runner = api.task_runner(checked)
    statuses: Counter[str] = Counter()
    for seed in (0, 1):
        model = _noisy_model(checked, seed)
        n = 100  # enough rows for the step to be cut in two with threads=2
        kw = {"max_steps": 120, "max_depth": 6 + seed}
        envs = _envs(runner, n, seed)
        together = NeuralExecutor(model, "scratchpad", **kw).run(envs, "addition.ADD",
                                                                  record=True)
        threaded = NeuralExecutor(model, "scratchpad", threads=2, **kw).run(
            _envs(runner, n, seed), "addition.ADD", record=True)
        ex = NeuralExecutor(model, "scratchpad", **kw)
        for i in range(0, n, 9):
            single = _envs(runner, n, seed)[i]
            (alone,) = ex.run([single], "addition.ADD", record=True)
            assert _key(alone) == _key(together[i])
            assert runner.result(single) == runner.result(envs[i])
        assert [_key(o) for o in threaded] == [_key(o) for o in together]
        statuses.update(o.status for o in together)
    assert len(statuses) >= 3, statuses  # the run exercised several ways to finish


def test_blas_threads_are_restored(programs_dir: Path) -> None:
    checked = api.load_program(programs_dir / "addition.npi")
    runner = api.task_runner(checked)
    before = blas_threads()
    torch_before = torch.get_num_threads()
    NeuralExecutor(_noisy_model(checked, 0), "scratchpad", max_steps=5).run(
        _envs(runner, 2, 0), "addition.ADD")
    assert blas_threads() == before
    assert torch.get_num_threads() == torch_before


def test_a_changed_model_is_run_with_its_new_weights(programs_dir: Path) -> None:
    """The executor keeps its folded kernel between runs only while the weights stay."""
    checked = api.load_program(programs_dir / "addition.npi")
    runner = api.task_runner(checked)
    model = _noisy_model(checked, 0)
    ex = NeuralExecutor(model, "scratchpad", max_steps=50)
    first = ex.run(_envs(runner, 4, 0), "addition.ADD", record=True)
    assert ex.run(_envs(runner, 4, 0), "addition.ADD", record=True) == first
    force_calls(model, "ACT", (1, 3, 7))  # in place: always ACT WRITE(out, 7), never return
    after = ex.run(_envs(runner, 4, 0), "addition.ADD", record=True)
    assert all(o.status == "step_budget" and o.steps == 50 for o in after)
    assert all(d == (False, model.memory.index("ACT"), (1, 3, 7)) for d in after[0].decisions)
