"""`api.run_network`'s `correct` on a task without `expect`: the reference's result decides."""

from __future__ import annotations

from pathlib import Path

from npi_runtime import api


def test_correct_without_expect_compares_with_the_reference(trained, copy_file: Path) -> None:
    checked = api.load_program(copy_file)
    assert checked.task(None).expect is None  # copy.npi has no `expect`
    inputs = [["908172635412", "1"], ["5", "77"]]
    runner = api.task_runner(checked, None)
    outs = api.run_network(trained.model, checked, inputs)
    for x, o in zip(inputs, outs, strict=True):
        reference, _steps = runner.run_result(x)
        assert o["status"] == "ok"
        assert o["correct"] is (o["result"] == reference)
