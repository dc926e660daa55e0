"""Bad run directories: each is refused by `npi verify` / `npi train --resume` with a clear
message and exit 2, never a traceback, never accepted silently. They are made from one run
trained by the CLI (`good`), copied with its links (`_copy`) and edited (`_edit_manifest`)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npi_runtime import checkpoint as ckpt
from npi_runtime.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def good(copy_file: Path, copy_traces: list[dict], tmp_path_factory: pytest.TempPathFactory):
    """(program file, trace file, a run of 2 epochs killed after the first one, a finished
    run) made by the CLI."""
    from npi_dsl.trace import write_traces

    d = tmp_path_factory.mktemp("rundirs")
    traces = d / "t.jsonl.gz"
    write_traces(traces, copy_traces[:16])
    finished = d / "finished"
    res = runner.invoke(app, ["train", str(copy_file), str(traces), "-o", str(finished),
                              "--epochs", "2", "--hidden", "16", "--val-lengths", "5",
                              "--val-count", "2", "--patience", "9"])
    assert res.exit_code == 0, res.output
    return copy_file, traces, finished


def _verify(run: Path, program: Path, *extra: str):
    return runner.invoke(app, ["verify", str(run), str(program), "-l", "3", "-n", "2",
                               "--require", "0", *extra])


def _resume(run: Path, program: Path, traces: Path, *extra: str):
    return runner.invoke(app, ["train", str(program), str(traces), "--resume", str(run),
                               *extra])


def _refused(res, *words: str) -> None:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    for w in words:
        assert w in res.output, (w, res.output)
    MESSAGES.append(res.output.strip())


MESSAGES: list[str] = []  # every refusal's message (printed with pytest -s, for the docs)


@pytest.fixture(scope="module", autouse=True)
def _print_messages():
    yield
    if os.environ.get("NPI_PRINT_REFUSALS"):
        print("\n".join(MESSAGES))


def _copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, symlinks=True)
    return dest


def _edit_manifest(run: Path, change: Callable[[dict], None]) -> None:
    path = run / "manifest.json"  # a link into checkpoints/current: the committed manifest
    m = json.loads(path.read_text())
    change(m)
    path.write_text(json.dumps(m))


# -------------------------------------------------------------------- the manifest's fields


@pytest.mark.parametrize("change, words", [
    (lambda m: m["model"].update(hidden=10**7), ["model.hidden is 10000000", "1..16384"]),
    (lambda m: m["model"].update(hidden="64"), ["model.hidden is '64'"]),
    (lambda m: m["model"].update(layers=True), ["model.layers is True"]),
    (lambda m: m.update(programs="copy.COPY"), ["'programs' is not a list"]),
    (lambda m: m.update(programs=["copy.COPY", "ACT"]), ["must start with ACT"]),
    (lambda m: m.update(environments=[]), ["'environments'"]),
    (lambda m: m["environments"]["scratchpad"]["encoder"].update(slots=7), ["'slots'"]),
    (lambda m: m["environments"]["scratchpad"]["encoder"].update(hidden=-1),
     ["encoder 'hidden' is -1"]),
    (lambda m: m["training"].update(batch_frames="x"), ["training.batch_frames is 'x'"]),
    (lambda m: m["training"].update(lr=None), ["training.lr is None"]),
    (lambda m: m.update(data={"lengths": "1-4"}), ["data.lengths"]),
    (lambda m: m.pop("weights"), ["no SHA-256 of model.safetensors"]),
    (lambda m: m["weights"].update(sha256="sha256:00"), ["model.safetensors is corrupt",
                                                         "SHA-256 differs"]),
    (lambda m: m.update(format="npi-checkpoint/9"), ["is not an npi-checkpoint/1 manifest"]),
], ids=["huge-hidden", "hidden-str", "layers-bool", "programs-str", "programs-order-act",
        "envs-list", "slots-int", "encoder-hidden-neg", "training-type", "training-none",
        "data-lengths", "no-weights-hash", "wrong-weights-hash", "format"])
def test_bad_manifest_fields(good, tmp_path: Path, change, words) -> None:
    program, traces, finished = good
    run = _copy(finished, tmp_path / "run")
    _edit_manifest(run, change)
    _refused(_verify(run, program), *words)
    _refused(_resume(run, program, traces), *words)


def test_swapped_program_order_is_refused(good, tmp_path: Path) -> None:
    program, traces, finished = good
    run = _copy(finished, tmp_path / "run")

    def swap(m: dict) -> None:
        m["programs"][1], m["programs"][2] = m["programs"][2], m["programs"][1]

    _edit_manifest(run, swap)
    _refused(_verify(run, program), "in the order copy.LEFT1, copy.COPY, copy.STEP")
    _refused(_resume(run, program, traces), "order")


def test_a_program_whose_arity_changed_is_refused(good, tmp_path: Path) -> None:
    program, traces, finished = good
    d = tmp_path / "arity"
    d.mkdir()
    changed = d / "copy.npi"
    changed.write_text(program.read_text().replace("LEFT1()", "LEFT1(1)")
                       .replace("program LEFT1(1)", "program LEFT1(n)"))
    _refused(_verify(finished, changed), "copy.LEFT1 (0 -> 1)")


def test_another_source_hash_warns_and_strict_refuses(good, tmp_path: Path) -> None:
    program, traces, finished = good
    d = tmp_path / "edited"
    d.mkdir()
    edited = d / "copy.npi"
    edited.write_text("# a comment changes the source hash\n" + program.read_text())
    res = _verify(finished, edited)
    assert res.exit_code == 0 and "warning" in res.output and "source hash" in res.output
    _refused(_verify(finished, edited, "--strict"), "source hash", "--strict")
    run = _copy(finished, tmp_path / "run")
    # the traces' own source_hash is checked first (docs/cli.md): either check refuses it
    _refused(_resume(run, edited, traces, "--strict"), "source", "--strict")


def test_resuming_with_other_traces_names_the_file_it_was_started_with(
        good, copy_traces: list[dict], tmp_path: Path) -> None:
    from npi_dsl.trace import write_traces

    program, traces, finished = good
    other = tmp_path / "other.jsonl"
    write_traces(other, copy_traces[16:40])
    run = _copy(finished, tmp_path / "run")
    _refused(_resume(run, program, other), f"was started with trace file {traces}",
             "resume with the traces it was started with")


def test_hand_edited_resume_state_is_refused(good, tmp_path: Path) -> None:
    program, traces, finished = good
    run = _copy(finished, tmp_path / "run")
    state = run / "checkpoints" / "current" / "state.json"
    s = json.loads(state.read_text())
    s["step"] = "many"
    state.write_text(json.dumps(s))
    _refused(_resume(run, program, traces), "state.json is corrupt", "SHA-256")


def _old_layout(finished: Path, run: Path) -> dict:
    """`finished` in the layout of earlier versions, one epoch in; returns its state."""
    run.mkdir()
    cur = finished / "checkpoints" / "current"
    shutil.copy(cur / "model.safetensors", run / "model.safetensors")
    m = json.loads((cur / "manifest.json").read_text())
    for key in ("files", "signatures"):  # what earlier versions did not write
        del m[key]
    del m["data"]["traces_sha256"]
    (run / "manifest.json").write_text(json.dumps(m))
    (run / "resume").mkdir()
    shutil.copy(cur / "model.safetensors", run / "resume" / "model-1.safetensors")
    shutil.copy(cur / "optim.safetensors", run / "resume" / "optim-1.safetensors")
    shutil.copy(cur / "extra.safetensors", run / "resume" / "extra-1.safetensors")
    s = json.loads((cur / "state.json").read_text())
    s["files"] = {"weights": "model-1.safetensors", "optimizer": "optim-1.safetensors",
                  "extra": "extra-1.safetensors"}
    s["stopped"] = None
    s["epoch"], s["batch_in_epoch"] = 1, 0
    (run / "resume" / "state.json").write_text(json.dumps(s))
    return s


def test_old_layout_is_resumed_and_converted(good, tmp_path: Path) -> None:
    program, traces, finished = good
    run = tmp_path / "old"
    _old_layout(finished, run)
    (run / ".model.safetensors.99.0123abcd.tmp").write_bytes(b"half")  # an old kill's
    assert _verify(run, program).exit_code == 0
    res = _resume(run, program, traces)
    assert res.exit_code == 0, res.output
    assert (run / "manifest.json").is_symlink() and (run / "model.safetensors").is_symlink()
    assert not (run / "resume").exists() and not list(run.glob(".*.tmp"))
    assert _verify(run, program).exit_code == 0


def test_old_layout_killed_between_its_last_two_renames_is_repaired(good,
                                                                  tmp_path: Path) -> None:
    """The earlier layout renamed model.safetensors, then manifest.json: killed between the
    two at the last checkpoint, the weights did not match the manifest's hash for ever."""
    program, traces, finished = good
    run = tmp_path / "old"
    s = _old_layout(finished, run)
    s["stopped"] = "reached 2 epochs"
    (run / "resume" / "state.json").write_text(json.dumps(s))
    (run / "model.safetensors").write_bytes(
        (finished / "checkpoints" / "current" / "optim.safetensors").read_bytes())
    _refused(_verify(run, program), "SHA-256 differs")
    res = _resume(run, program, traces)
    assert res.exit_code == 0, res.output
    assert (run / "model.safetensors").is_symlink() and not (run / "resume").exists()
    assert (run / "model.safetensors").read_bytes() == \
        (finished / "model.safetensors").read_bytes()
    assert _verify(run, program).exit_code == 0


def test_old_layout_resume_state_with_wrong_types_is_refused(good, tmp_path: Path) -> None:
    """A run directory of the earlier layout (no hashes for the resume state) is type-checked
    field by field."""
    program, traces, finished = good
    run = tmp_path / "old"
    s = _old_layout(finished, run)
    for key, value in (("epoch_stats", {"steps": "x"}), ("history", [3]),
                       ("perfect_streak", -1), ("optimizer_groups", "adam")):
        bad = dict(s, **{key: value})
        (run / "resume" / "state.json").write_text(json.dumps(bad))
        _refused(_resume(run, program, traces), "resume state")


def test_a_link_to_nowhere_and_an_uncommitted_run(good, tmp_path: Path) -> None:
    program, traces, finished = good
    run = _copy(finished, tmp_path / "run")
    current = run / "checkpoints" / "current"
    current.unlink()
    os.symlink("../../elsewhere", current)
    _refused(_verify(run, program), "checkpoints/current is corrupt")
    current.unlink()  # as if killed before the first commit
    _refused(_resume(run, program, traces), "no committed checkpoint", f"-o {run}")
    _refused(_verify(run, program), "no committed checkpoint")


def test_a_second_writer_is_refused_by_the_cli(good, tmp_path: Path) -> None:
    program, traces, _ = good
    run = tmp_path / "run"
    with ckpt.run_lock(run):
        res = runner.invoke(app, ["train", str(program), str(traces), "-o", str(run),
                                  "--epochs", "1", "--hidden", "16"])
    _refused(res, "being written by another npi train", f"process {os.getpid()}")


def test_a_failed_verification_still_exits_1(good, tmp_path: Path) -> None:
    """Exit 1 stays the verdict "the network failed", apart from the 2 of a bad run dir."""
    from npi_runtime import api
    from npi_runtime.model import NPIConfig

    program, _, _ = good
    checked = api.load_program(program)
    model = api.new_model(checked, NPIConfig.sized(16), seed=1)  # untrained
    ckpt.save_model(tmp_path / "untrained", model,
                    api.base_manifest(checked, model, "copy", [{"length": 3}]))
    res = runner.invoke(app, ["verify", str(tmp_path / "untrained"), str(program), "-l", "3",
                              "-n", "4"])
    assert res.exit_code == 1, res.output
    assert "error" not in res.output and "result exact" in res.output
