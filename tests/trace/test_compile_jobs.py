"""`npi compile --jobs N`: the same bytes for any N, errors as one process reports them."""

from __future__ import annotations

import gzip
import os
import re
import tempfile
from itertools import islice
from pathlib import Path

import pytest
from typer.testing import CliRunner

import npi_dsl.parallel as parallel
from npi_dsl.bundled import program_path
from npi_dsl.checker import load
from npi_dsl.interpreter import compile_task
from npi_dsl.sampling import iter_inputs
from npi_runtime.cli import app

ADDITION = str(program_path("addition"))
SORTING = str(program_path("sorting"))


def npi(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Workers for every compile with --jobs > 1, however small; the list records the
    worker count of every ParallelCompile started."""
    started: list[int] = []
    monkeypatch.setattr(parallel, "MIN_PARALLEL_SECONDS", 0.0)
    enter = parallel.ParallelCompile.__enter__

    def spy(self: parallel.ParallelCompile) -> parallel.ParallelCompile:
        started.append(self.jobs)
        return enter(self)

    monkeypatch.setattr(parallel.ParallelCompile, "__enter__", spy)
    return started


def _without_timing(stderr: str) -> str:
    return re.sub(r" in \d+\.\d\d s$", "", stderr, flags=re.M)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_the_same_bytes_for_any_number_of_jobs(tmp_path: Path, forced: list[int],
                                               suffix: str) -> None:
    files = []
    for jobs in ("1", "2", "3", "auto"):
        out = tmp_path / f"j{jobs}{suffix}"
        r = npi("compile", ADDITION, "-l", "1..12", "-n", "5", "-s", "7", "-o", str(out),
                "--jobs", jobs)
        assert r.exit_code == 0, r.output
        files.append(out.read_bytes())
    assert all(f == files[0] for f in files)
    assert forced[:2] == [2, 3]
    text = gzip.decompress(files[0]) if suffix.endswith(".gz") else files[0]
    assert text.count(b"\n") == 60
    assert sorted(os.listdir(tmp_path)) == sorted(f"j{j}{suffix}" for j in ("1", "2", "3",
                                                                             "auto"))


def test_stdout_and_stats_are_the_same(forced: list[int]) -> None:
    runs = [npi("compile", SORTING, "-l", "2..9", "-n", "4", "--stats", "-j", jobs)
            for jobs in ("1", "2", "3")]
    assert all(r.exit_code == 0 for r in runs), runs[0].output
    assert len(forced) == 2
    assert runs[0].stdout.count("\n") == 32
    for r in runs[1:]:
        assert r.stdout == runs[0].stdout
        assert _without_timing(r.stderr) == _without_timing(runs[0].stderr)


def test_cover_runs_in_one_process_with_the_same_bytes(tmp_path: Path,
                                                       forced: list[int]) -> None:
    files = []
    for jobs in ("1", "2"):
        out = tmp_path / f"c{jobs}.jsonl.gz"
        r = npi("compile", ADDITION, "-l", "1..6", "-n", "3", "--cover", "--pool", "8",
                "-o", str(out), "-j", jobs)
        assert r.exit_code == 0, r.output
        files.append(out.read_bytes())
    assert files[0] == files[1]
    assert forced == []


@pytest.mark.parametrize("output", ["t.jsonl", "t.jsonl.gz", "-"])
def test_a_failure_in_a_worker_is_reported_as_one_process_reports_it(
        tmp_path: Path, forced: list[int], output: str) -> None:
    # the step budget fails an input of about 10 digits, in a later chunk (in a worker),
    # and inputs in every chunk after it
    dest = str(tmp_path / output) if output != "-" else "-"
    if output != "-":
        Path(dest).write_text("old\n")
    scratch = _stdout_scratch()
    runs = [npi("compile", ADDITION, "-l", "1..30", "-n", "3", "--max-steps", "120",
                "-o", dest, "-j", jobs) for jobs in ("1", "2", "3")]
    assert forced  # workers ran
    first = runs[0]
    assert first.exit_code == 1
    # on stdout one process has written the traces before the failing input; so do N
    before = first.stdout.count("\n")
    if output != "-":
        assert before == 0
    else:  # past the first chunk (the parent's): in a worker's chunk
        assert before > max(parallel.plan_chunks(list(range(1, 31)), 3, j)[0][1]
                            for j in (2, 3))
    assert "error[R004]: step budget exceeded" in first.stderr
    assert "while running input" in first.stderr
    assert first.stderr.endswith("nothing was written\n")
    for r in runs[1:]:
        assert r.exit_code == 1
        assert r.stdout == first.stdout
        assert r.stderr == first.stderr
    if output != "-":
        assert Path(dest).read_text() == "old\n"
        assert os.listdir(tmp_path) == [output]  # no temporary or chunk file left
    assert _stdout_scratch() == scratch  # nor a chunk directory of stdout


def _stdout_scratch() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("npi-compile-")}


def test_a_failure_in_the_first_chunk(tmp_path: Path, forced: list[int]) -> None:
    runs = [npi("compile", ADDITION, "-l", "1..30", "-n", "3", "--max-steps", "10",
                "-o", str(tmp_path / "t.jsonl"), "-j", jobs) for jobs in ("1", "2")]
    assert runs[0].exit_code == runs[1].exit_code == 1
    assert runs[0].stderr == runs[1].stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("bad", ["0", "-1", "x", "1.5", ""])
def test_a_bad_jobs_value_is_a_usage_error(bad: str) -> None:
    r = npi("compile", ADDITION, "-l", "3", "--jobs", bad)
    assert r.exit_code == 2
    assert "--jobs" in r.stderr and "auto" in r.stderr
    assert r.stdout == ""


def test_parse_jobs() -> None:
    assert parallel.parse_jobs("1") == 1
    assert parallel.parse_jobs(" 4 ") == 4
    assert parallel.parse_jobs("auto") == parallel.parse_jobs("AUTO") >= 1
    assert parallel.parse_jobs("auto") == len(os.sched_getaffinity(0))
    for bad in ("0", "-2", "two", "2.0"):
        with pytest.raises(ValueError):
            parallel.parse_jobs(bad)


def test_a_small_compile_stays_in_one_process(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("a worker pool for a tiny compile")

    monkeypatch.setattr(parallel.ParallelCompile, "__enter__", refuse)
    r = npi("compile", ADDITION, "-l", "1..3", "-n", "2", "-j", "2")
    assert r.exit_code == 0 and r.stdout.count("\n") == 6


def test_without_fork_the_compile_runs_in_one_process(tmp_path: Path, forced: list[int],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "can_fork", lambda: False)
    assert parallel.worker_count(4) == 0
    r = npi("compile", ADDITION, "-l", "1..5", "-n", "3", "-j", "4")
    assert r.exit_code == 0 and r.stdout == npi("compile", ADDITION, "-l", "1..5", "-n",
                                                "3").stdout
    assert forced == []


@pytest.mark.parametrize("lengths,count,jobs", [([1, 2, 3], 1, 2), (list(range(1, 21)), 32, 2),
                                                 ([1000], 64, 3), ([5], 1, 8), ([4, 9], 7, 1)])
def test_plan_chunks_cover_every_trace_once_in_order(lengths: list[int], count: int,
                                                     jobs: int) -> None:
    plan = parallel.plan_chunks(lengths, count, jobs)
    total = len(lengths) * count
    assert plan[0][0] == 0 and plan[-1][1] == total
    assert all(a < b for a, b in plan)
    assert all(plan[k][1] == plan[k + 1][0] for k in range(len(plan) - 1))
    assert len(plan) <= max(1, jobs * parallel.CHUNKS_PER_JOB)
    big = parallel.plan_chunks([100_000], 20, 2)  # 2,000,020 units: cut finer than 16
    assert len(big) == 20 and big[-1][1] == 20


def test_inputs_between_is_a_slice_of_iter_inputs() -> None:
    runner = compile_task(load(ADDITION), "add")
    lengths = [3, 1, 7]
    every = list(iter_inputs(runner, lengths, 4, 5))
    for start, stop in ((0, 12), (3, 9), (11, 12), (4, 4)):
        assert list(parallel.inputs_between(runner, lengths, 4, 5, start, stop)) == \
            list(islice(every, start, stop))


def _die_in_chunk_2(task: tuple[int, int, int, str]) -> object:
    if task[0] == 2:
        os._exit(9)  # as a worker killed by the OOM killer or `kill -9`
    return _run_chunk(task)


_run_chunk = parallel._run_chunk


def test_a_worker_that_dies_ends_the_compile_cleanly(tmp_path: Path, forced: list[int],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "_run_chunk", _die_in_chunk_2)
    out = tmp_path / "t.jsonl.gz"
    r = npi("compile", ADDITION, "-l", "1..30", "-n", "3", "-o", str(out), "-j", "2")
    assert r.exit_code == 1
    assert "worker process of --jobs ended abruptly" in r.stderr
    assert "Traceback" not in r.output
    assert os.listdir(tmp_path) == []
