"""Training on a device and in several processes: `npi train --device/--precision/--nproc`.

DDP runs here with 2 CPU processes and gloo, started by `npi train --nproc 2` through
torchrun; a run killed after its first checkpoint resumes (in 2 processes) to the very
weights of the run that was not killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from npi_runtime import api
from npi_runtime.cli import app
from tests.runtime.conftest import COPY_NPI

cli = CliRunner()
NPI = str(Path(sys.executable).with_name("npi"))
TRAIN = ["--hidden", "32", "--val-lengths", "5", "--val-count", "4", "--seed", "1"]
#: long enough to be killed in the middle: a checkpoint at every epoch end
LONG = ["--epochs", "12"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("ddp")
    program = d / "copy.npi"
    program.write_text(COPY_NPI)
    traces = d / "copy.jsonl"
    api.compile_traces(api.load_program(program), lengths=range(1, 6), count=48, seed=3,
                       path=traces)
    return program, traces


def _train(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([NPI, "train", *args], capture_output=True, text=True, env=env,
                       timeout=600)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def _wait_unlocked(run: Path) -> None:
    """Until the killed run's processes (which die with their launcher) let go of its lock."""
    import fcntl

    deadline = time.monotonic() + 60
    with open(run / ".lock", "a") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                assert time.monotonic() < deadline, "a process of the killed run lives on"
                time.sleep(0.1)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.trains
def test_two_processes_train_and_a_killed_run_resumes_to_the_same_weights(
        files: tuple[Path, Path], tmp_path: Path) -> None:
    program, traces = files
    whole = tmp_path / "whole"
    p = _train(str(program), str(traces), "-o", str(whole), *LONG, "--nproc", "2", *TRAIN)
    records = _metrics(whole)
    assert [r["step"] for r in records] == sorted({r["step"] for r in records})  # rank 0 only
    assert len(records) == 12 and p.stderr.count("trained task copy") == 1

    # the same run, killed (every process, at once) after its first checkpoint
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([NPI, "train", str(program), str(traces), "-o", str(killed),
                             *LONG, "--nproc", "2", *TRAIN],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not (killed / "metrics.jsonl").exists() or not (killed / "model.safetensors").exists():
        assert proc.poll() is None or proc.returncode == 0, "training failed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_unlocked(killed)
    assert len(_metrics(killed)) < 12, "killed too late to test a resume"
    _train("--resume", str(killed), str(program), str(traces), "--nproc", "2")
    a, b = _weights(whole), _weights(killed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in _metrics(killed)] == [r["step"] for r in records]


@pytest.mark.trains
def test_one_process_of_the_same_batches_learns_the_same_thing(files: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    """Two processes train on exactly the batches one process trains on (each takes half of
    every batch's frames; the gradients are summed): the losses agree to rounding."""
    program, traces = files
    _train(str(program), str(traces), "-o", str(tmp_path / "one"), "--epochs", "2", *TRAIN)
    _train(str(program), str(traces), "-o", str(tmp_path / "two"), "--epochs", "2",
           "--nproc", "2", *TRAIN)
    one, two = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two]
    for r1, r2 in zip(one, two, strict=True):
        assert r1["train"]["loss"] == pytest.approx(r2["train"]["loss"], rel=1e-3)


@pytest.mark.trains
def test_bf16_autocast_trains_on_the_cpu(files: tuple[Path, Path], tmp_path: Path) -> None:
    program, traces = files
    run = tmp_path / "bf16"
    r = cli.invoke(app, ["train", str(program), str(traces), "-o", str(run), "--epochs", "2",
                         "--precision", "bf16", "--device", "cpu", *TRAIN])
    assert r.exit_code == 0, r.output
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["training"]["precision"] == "bf16"
    first, last = _metrics(run)[0], _metrics(run)[-1]
    assert last["train"]["loss"] < first["train"]["loss"]
    # a run trained in bf16 resumes and verifies as any other
    assert api.load_model(run, api.load_program(program)).memory.names


@pytest.mark.parametrize("args, says", [
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--nproc", "0"], "--nproc"),
    (["--precision", "fp8"], "--precision"),
])
def test_bad_training_options_are_exit_2(files: tuple[Path, Path], tmp_path: Path,
                                         args: list[str], says: str) -> None:
    program, traces = files
    run = tmp_path / "run"
    r = cli.invoke(app, ["train", str(program), str(traces), "-o", str(run), *args])
    assert r.exit_code == 2, r.output
    assert says in r.output and "Traceback" not in r.output
    assert not run.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_exit_2_for_one_and_several_processes(
        files: tuple[Path, Path], tmp_path: Path) -> None:
    program, traces = files
    for extra in ([], ["--nproc", "2"]):
        run = tmp_path / f"run{len(extra)}"
        p = _train(str(program), str(traces), "-o", str(run), "--device", "cuda", *extra,
                   check=False)
        assert p.returncode == 2, p.stderr
        assert "no CUDA GPU" in p.stderr and "Traceback" not in p.stderr
        assert not run.exists()


def test_precision_is_the_runs_own_on_resume(files: tuple[Path, Path], tmp_path: Path) -> None:
    program, traces = files
    r = cli.invoke(app, ["train", "--resume", str(tmp_path), str(program), str(traces),
                         "--precision", "bf16"])
    assert r.exit_code == 2 and "--precision" in r.output


class _Rank:
    """A process of a group of two as `distributed.clean` sees it (no process group needed):
    its rank and a barrier that records it was reached."""

    def __init__(self, rank: int) -> None:
        self.is_main = rank == 0
        self.waited = False

    def barrier(self) -> None:
        self.waited = True


def test_only_the_writing_process_cleans_a_resumed_run(tmp_path: Path) -> None:
    """Cleaning a resumed run removes every temporary file, the live writer's included (it
    holds the lock): a process that does not write must not clean, or it removes process 0's
    metrics.jsonl as process 0 rewrites it (seen in CI: `.metrics.jsonl.PID.HEX.tmp: does
    not exist`)."""
    from npi_dsl.trace_files import temporary_name
    from npi_runtime import distributed

    run = tmp_path / "run"
    run.mkdir()
    tmp = Path(temporary_name(run / "metrics.jsonl"))
    tmp.write_text("being written\n")
    other = _Rank(1)
    distributed.clean(run, other)
    assert other.waited and tmp.exists()
    main = _Rank(0)
    distributed.clean(run, main)
    assert main.waited and not tmp.exists()
    tmp.write_text("again\n")
    distributed.clean(run, None)  # one process alone
    assert not tmp.exists()
