"""The executor: budgets stop a looping network; batched runs equal one-by-one runs. (Its
numpy step against the model's: tests/runtime/test_kernel.py.)"""

from __future__ import annotations

from pathlib import Path

from forcing_helpers import force_calls

from npi_runtime import api
from npi_runtime.executor import (
    DEPTH_BUDGET,
    ENV_ERROR,
    OK,
    STEP_BUDGET,
    NeuralExecutor,
)


def _envs(checked, runner, values):
    return [runner.new_env(runner.parse_input(v)) for v in values]


def test_step_budget_stops_a_network_that_loops(programs_dir: Path) -> None:
    checked = api.load_program(programs_dir / "addition.npi")
    runner = api.task_runner(checked)
    model = api.new_model(checked)
    force_calls(model, "ACT", (1, 3, 7))  # WRITE(out, 7) forever
    ex = NeuralExecutor(model, "scratchpad", max_steps=500, max_depth=10)
    outs = ex.run(_envs(checked, runner, [["12", "34"], ["5", "6"]]), "addition.ADD")
    assert [o.status for o in outs] == [STEP_BUDGET, STEP_BUDGET]
    assert all(o.steps == 500 for o in outs)
    assert "step budget 500" in outs[0].message and "ADD" in outs[0].message


def test_depth_budget_stops_runaway_calls(programs_dir: Path) -> None:
    checked = api.load_program(programs_dir / "addition.npi")
    runner = api.task_runner(checked)
    model = api.new_model(checked)
    force_calls(model, "addition.ADD", (0, 0, 0))  # ADD calls ADD calls ADD ...
    ex = NeuralExecutor(model, "scratchpad", max_steps=10_000, max_depth=40)
    (o,) = ex.run(_envs(checked, runner, [["1", "2"]]), "addition.ADD")
    assert o.status == DEPTH_BUDGET and o.max_depth == 40 and o.steps == 41


def test_illegal_action_is_reported(programs_dir: Path) -> None:
    checked = api.load_program(programs_dir / "addition.npi")
    runner = api.task_runner(checked)
    model = api.new_model(checked)
    force_calls(model, "ACT", (0, 0, 0))  # MOVE(in1, LEFT) until it falls off the pad
    (o,) = NeuralExecutor(model, "scratchpad").run(_envs(checked, runner, [["1", "2"]]),
                                                     "addition.ADD")
    assert o.status == ENV_ERROR and "ACT[0, 0, 0]" in o.message


def test_batched_equals_one_by_one(trained, copy_file: Path) -> None:
    checked = api.load_program(copy_file)
    runner = api.task_runner(checked)
    values = [["1", "0"], ["987", "1"], ["55555", "2"], ["120034", "3"]]
    ex = NeuralExecutor(trained.model, "scratchpad")
    together = _envs(checked, runner, values)
    outs = ex.run(together, "copy.COPY", record=True)
    for v, env, o in zip(values, together, outs, strict=True):
        (alone,) = ex.run(single := _envs(checked, runner, [v]), "copy.COPY", record=True)
        assert o.status == alone.status == OK
        assert o.decisions == alone.decisions
        assert runner.result(env) == runner.result(single[0])
