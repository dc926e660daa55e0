"""Stale artifacts (traces or a run made from another version of the program file) and the
default validation lengths, through the `npi` CLI with real files (docs/training.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npi_runtime.cli import app
from tests.runtime.conftest import COPY_NPI

runner = CliRunner()

# copy.npi with a comment inside STEP: the same behaviour, another text of STEP
EDITED_STEP = COPY_NPI.replace("    WRITE(out, digit(in1))\n",
                               "    WRITE(out, digit(in1))   # edited\n")
# copy.npi whose COPY calls a new program: other traces
NEW_PROGRAM = COPY_NPI.replace("        STEP()\n", "        STEP2()\n") + """
program STEP2() {
    STEP()
}
"""
# copy.npi with a comment outside every program
EDITED_COMMENT = "# a new first line\n" + COPY_NPI


def _program(tmp: Path, version: str, text: str) -> Path:
    """`tmp/version/copy.npi` (the same stem, so the qualified names are `copy.*`)."""
    d = tmp / version
    d.mkdir(parents=True, exist_ok=True)
    (d / "copy.npi").write_text(text)
    return d / "copy.npi"


def _traces(program: Path, out: Path, lengths: str = "1..4") -> Path:
    res = runner.invoke(app, ["compile", str(program), "-n", "4", "-l", lengths, "--seed", "3",
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


def _train(program: Path, traces: Path, run: Path, *extra: str):
    return runner.invoke(app, ["train", str(program), str(traces), "-o", str(run),
                               "--epochs", "1", "--hidden", "16", "--patience", "9", *extra])


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("versions")
    old = _program(tmp, "old", COPY_NPI)
    return tmp, old, _traces(old, tmp / "old.jsonl")


@pytest.mark.trains
def test_train_on_traces_of_the_same_version_warns_nothing(versions, tmp_path: Path) -> None:
    _, old, traces = versions
    res = _train(old, traces, tmp_path / "run", "--val-lengths", "5")
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output


@pytest.mark.trains
def test_train_on_traces_of_another_version_warns_what_differs(versions, tmp_path: Path
                                                               ) -> None:
    tmp, _, traces = versions
    edited = _program(tmp, "edited", EDITED_STEP)
    res = _train(edited, traces, tmp_path / "run", "--val-lengths", "5")
    assert res.exit_code == 0, res.output
    assert "warning" in res.output and "another version of the program" in res.output
    assert "the program file differs" in res.output
    assert (tmp_path / "run" / "manifest.json").exists()


def test_train_strict_on_stale_traces_exits_2_and_writes_nothing(versions, tmp_path: Path
                                                                 ) -> None:
    tmp, _, traces = versions
    edited = _program(tmp, "edited", EDITED_STEP)
    res = _train(edited, traces, tmp_path / "run", "--val-lengths", "5", "--strict")
    assert res.exit_code == 2, res.output
    assert "error" in res.output and "the program file differs" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "run").exists()


def test_train_on_traces_of_a_program_that_changed_behaviour_names_it(versions,
                                                                       tmp_path: Path) -> None:
    """Traces the new version computes differently are refused; the message names the
    programs added and the frame's program where the trace departs."""
    tmp, _, traces = versions
    changed = _program(tmp, "changed", NEW_PROGRAM)
    res = _train(changed, traces, tmp_path / "run", "--val-lengths", "5")
    assert res.exit_code == 2, res.output
    assert "in a frame of program COPY" in res.output
    assert not (tmp_path / "run").exists()


def test_train_on_fewer_programs_names_the_removed_and_added(versions, tmp_path: Path) -> None:
    """New traces of NEW_PROGRAM trained with the old file: programs the traces use that the
    file lacks are an error (exit 2) naming them."""
    tmp, old, _ = versions
    changed = _program(tmp, "changed", NEW_PROGRAM)
    traces = _traces(changed, tmp / "changed.jsonl")
    res = _train(old, traces, tmp_path / "run", "--val-lengths", "5")
    assert res.exit_code == 2 and "copy.STEP2" in res.output, res.output


@pytest.fixture(scope="module")
def old_run(versions, tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, old, traces = versions
    run = tmp_path_factory.mktemp("oldrun") / "run"
    res = _train(old, traces, run, "--val-lengths", "5")
    assert res.exit_code == 0, res.output
    return run


def _verify(run: Path, program: Path, *extra: str):
    return runner.invoke(app, ["verify", str(run), str(program), "-l", "3", "-n", "2",
                               "--require", "0", *extra])


@pytest.mark.trains
def test_verify_names_the_changed_program(versions, old_run: Path) -> None:
    tmp, old, _ = versions
    same = _verify(old_run, old)
    assert same.exit_code == 0 and "warning" not in same.output, same.output
    edited = _program(tmp, "edited", EDITED_STEP)
    res = _verify(old_run, edited)
    assert res.exit_code == 0, res.output
    assert "warning" in res.output and "programs changed: copy.STEP" in res.output
    assert "copy.COPY" not in res.output and "copy.LEFT1" not in res.output
    strict = _verify(old_run, edited, "--strict")
    assert strict.exit_code == 2 and "programs changed: copy.STEP" in strict.output
    assert "--strict" in strict.output and "Traceback" not in strict.output


@pytest.mark.trains
def test_verify_of_an_edit_outside_programs_says_no_program_changed(versions, old_run: Path
                                                                     ) -> None:
    tmp, _, _ = versions
    res = _verify(old_run, _program(tmp, "comment", EDITED_COMMENT))
    assert res.exit_code == 0 and "no program's text changed" in res.output, res.output


@pytest.mark.trains
def test_verify_with_added_programs_names_them(versions, old_run: Path) -> None:
    tmp, _, _ = versions
    plus = COPY_NPI + "\nprogram RIGHT1() {\n    MOVE(in1, RIGHT)\n}\n"
    res = _verify(old_run, _program(tmp, "plus", plus))
    assert "programs added: copy.RIGHT1" in res.output, res.output


@pytest.mark.trains
def test_a_manifest_without_program_hashes_still_loads_and_says_the_file_differs(
        versions, old_run: Path) -> None:
    """A checkpoint of an earlier npi (no `program_hashes`): loadable, and the warning
    recovers added programs from the manifest's `signatures`."""
    from npi_runtime import api
    from npi_runtime import checkpoint as ckpt

    tmp, _, _ = versions
    model, manifest = ckpt.load_model(old_run)
    del manifest["program_hashes"]
    plus = _program(tmp, "plus2", EDITED_STEP + "\nprogram RIGHT1() {\n    MOVE(in1, RIGHT)\n}\n")
    messages: list[str] = []
    api.fit_checkpoint(model, manifest, api.load_program(plus), warn=messages.append)
    assert len(messages) == 1
    assert "the program file differs" in messages[0]
    assert "programs added: copy.RIGHT1" in messages[0]


# ------------------------------------------------------------------ default validation


@pytest.mark.trains
def test_default_validation_of_a_linear_task_is_2L_plus_3_and_5L_plus_3(versions,
                                                                       tmp_path: Path) -> None:
    _, old, traces = versions  # copy on 1..4 digits: a few steps per digit
    run = tmp_path / "run"
    res = _train(old, traces, run)
    assert res.exit_code == 0, res.output
    assert "validation at lengths 11, 23, 8 inputs each (derived" in res.output
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["training"]["val_lengths"] == [11, 23]
    assert manifest["validation_plan"]["lengths"] == [11, 23]
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert sorted(record["val"]["lengths"]) == ["11", "23"]


@pytest.mark.trains
def test_default_validation_of_bubble_sort_is_shorter_but_beyond_training(tmp_path: Path
                                                                          ) -> None:
    from npi_dsl.bundled import program_path

    sorting = Path(program_path("sorting"))
    traces = _traces(sorting, tmp_path / "sort.jsonl", "2..6")
    run = tmp_path / "run"
    res = _train(sorting, traces, run)
    assert res.exit_code == 0, res.output
    manifest = json.loads((run / "manifest.json").read_text())
    lengths = manifest["training"]["val_lengths"]
    # the addition rule would give 2L+3 = 15 and 5L+3 = 33: a quadratic task gets shorter ones
    assert lengths and all(6 < n < 15 for n in lengths) and lengths[-1] < 33
    plan = manifest["validation_plan"]
    assert plan["predicted_steps"] <= plan["budget"]
    assert 1.5 < plan["steps_fit"]["k"] < 3.0
    assert f"validation at lengths {', '.join(map(str, lengths))}" in res.output


@pytest.mark.trains
def test_explicit_val_lengths_win(versions, tmp_path: Path) -> None:
    _, old, traces = versions
    run = tmp_path / "run"
    res = _train(old, traces, run, "--val-lengths", "7", "--val-count", "3")
    assert res.exit_code == 0, res.output
    assert "validation at lengths 7, 3 inputs each (given)" in res.output
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["training"]["val_lengths"] == [7]
    assert "validation_plan" not in manifest


def test_addition_keeps_its_validation_lengths() -> None:
    """Addition trained on 1..20 digits (as npi demo does) is validated at 43 and 103."""
    from npi_runtime import api
    from npi_runtime.val_defaults import plan_validation

    checked = api.load_program(Path(__file__).parents[2] / "programs" / "addition.npi")
    records = api.compile_traces(checked, lengths=range(1, 21), count=8, seed=7)
    plan = plan_validation(records, 8)
    assert plan.lengths == (43, 103) and plan.count == 8
    assert 0.8 < plan.k < 1.2
