"""`npi compile --jobs N`: the traces of a compile made by N processes.

The output must be the bytes a one-process compile writes, whatever N, so the work is split
into chunks of consecutive inputs (trace indices `start..stop` of the compile, in output
order). Every input is drawn from its own seed (npi_dsl/sampling.py), so a worker draws the
inputs of its chunk itself: nothing but the chunk's bounds goes to a worker. A worker writes
its chunk's lines, uncompressed, to a file of its own next to the output (or in a private
temporary directory for stdout) and returns only counts; the parent takes the chunks in
order and appends each file to the output through its `TraceWriter` (`append_file`: copied
in the kernel for a plain file, fed to the one gzip stream for `.gz`, so a `.gz` written
with any N is byte for byte the file of one process: one deflate stream, compressed in the
parent while the workers go on with the later chunks).

Errors: a run that fails in a worker comes back as `ChunkFailure` (the rendered error, its
code, the input and its seed, and the chunk's lines before it: on stdout a one-process
compile has written those). Chunks are consumed in order, so the first failure the parent
meets is the failure of the first failing input, the one a one-process compile stops at.
Any other exception of a worker is raised in the parent as it is, and a worker that dies
(killed, out of memory) as `concurrent.futures.process.BrokenProcessPool`. Whatever ends the work
(an error, Ctrl-C), the pool is terminated and every chunk file is removed; a chunk file is
named as `trace_files.temporary_name` names temporaries (with the parent's pid), so one left
by a killed compile is removed by the next writer of the same output.

Workers are forked (the compiled task is inherited, never pickled). Where fork is not
available, `worker_count` gives 1 and the compile runs in one process.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from types import TracebackType
from typing import Any

from npi_dsl.envs.base import JSON
from npi_dsl.interpreter import NpiRuntimeError, TaskRunner
from npi_dsl.sampling import trace_seed
from npi_dsl.trace_files import temporary_name

# multiprocessing and concurrent.futures are imported where workers start: a compile in one
# process does not pay for them

#: `--jobs auto`: one worker per usable CPU
AUTO = "auto"

#: chunks per worker: enough that the parent can append (and compress) early chunks while
#: the workers run later ones, and that uneven chunks even out
CHUNKS_PER_JOB = 8

#: at most this many input units (an input of length L weighs L + 1) in a chunk, so that a
#: big compile is cut finer than CHUNKS_PER_JOB (a chunk's file waits on disk, uncompressed)
MAX_CHUNK_UNITS = 50_000

#: chunks submitted per worker ahead of the one the parent appends
AHEAD_PER_JOB = 2

#: the first chunk runs in the parent; workers start only when the rest is estimated (from
#: the first chunk's time) to take at least this long in one process: starting them costs
#: more than they save on less (docs/cli.md, "npi compile --jobs"; docs/results.md)
MIN_PARALLEL_SECONDS = 0.5


#: the niceness workers add to theirs when the parent compresses (.gz): enough that the
#: parent, the one compression stream, keeps a whole CPU beside two busy workers
WORKER_NICE = 3


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parse_jobs(text: str) -> int:
    """`--jobs`: an integer >= 1 or `auto` (the usable CPUs); ValueError otherwise."""
    value = text.strip().lower()
    if value == AUTO:
        return usable_cpus()
    try:
        jobs = int(value)
    except ValueError:
        raise ValueError(f"{text!r}: expected a number of processes (1, 2, ...) or "
                         f"{AUTO}") from None
    if jobs < 1:
        raise ValueError(f"{text!r}: expected at least 1 process (or {AUTO})")
    return jobs


def can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def plan_chunks(lengths: list[int], count: int, jobs: int) -> list[tuple[int, int]]:
    """Consecutive (start, stop) trace indices covering the compile, about `CHUNKS_PER_JOB`
    per job (more where chunks would exceed `MAX_CHUNK_UNITS`), of about equal work (an
    input of length L weighs L + 1)."""
    total = len(lengths) * count
    weights = [length + 1 for length in lengths]  # per trace of each length
    whole = sum(weights) * count
    wanted = max(1, min(total, max(jobs * CHUNKS_PER_JOB, -(-whole // MAX_CHUNK_UNITS))))
    chunks: list[tuple[int, int]] = []
    start = 0
    done = 0  # the weight of the traces before `i`
    for i in range(total):
        done += weights[i // count]
        # close a chunk when the work done reaches the next multiple of whole / wanted
        if done * wanted >= (len(chunks) + 1) * whole or i + 1 == total:
            chunks.append((start, i + 1))
            start = i + 1
    return chunks


def worker_count(jobs: int) -> int:
    """The worker processes of a compile with `--jobs jobs` (0: none, run in one process,
    as where fork is unavailable)."""
    if jobs <= 1 or not can_fork():
        return 0
    return jobs


def worth_workers(first_seconds: float, rest: list[tuple[int, int]]) -> bool:
    """Whether the chunks `rest` are worth workers, the first chunk having taken
    `first_seconds` in the parent (chunks are of about equal work)."""
    return bool(rest) and first_seconds * len(rest) >= MIN_PARALLEL_SECONDS


def inputs_between(runner: TaskRunner, lengths: list[int], count: int, seed: int,
                   start: int, stop: int) -> Iterator[tuple[int, JSON]]:
    """(trace seed, normalised input) of traces `start..stop` of a compile: the items
    `start..stop` of `sampling.iter_inputs`, drawn without the ones before."""
    sample = runner.sample_input
    parse = runner.parse_input
    for i in range(start, stop):
        length = lengths[i // count]
        s = trace_seed(seed, length, i % count)
        yield s, parse(sample(random.Random(s), length))


@dataclass(frozen=True)
class ChunkDone:
    """A chunk written: `lines` traces, `steps` steps, in the file `path`."""

    index: int
    path: str
    lines: int
    steps: int


@dataclass(frozen=True)
class ChunkFailure:
    """A run failed in a worker: its rendered error, the error's code, the input, its seed;
    `path` holds the `lines` lines of the chunk before it."""

    index: int
    rendered: str
    code: str
    seed: int
    value: Any
    path: str
    lines: int


class ChunkFailed(Exception):
    """The first failing input of a parallel compile (`failure` says which, and why)."""

    def __init__(self, failure: ChunkFailure) -> None:
        super().__init__(failure.rendered)
        self.failure = failure


# What the workers run, set in the parent before the fork (inherited, never pickled).
_WORK: dict[str, Any] = {}


def _init_worker(nice: int, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    die_with(parent)
    if nice:
        try:
            os.nice(nice)
        except OSError:  # pragma: no cover - a nice past the limit: run at the parent's
            pass


def die_with(parent: int) -> None:
    """End this worker when `parent` ends, killed included (else it would wait for work
    for ever): the kernel's parent-death signal on Linux, elsewhere a thread that looks."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # PR_SET_PDEATHSIG
                if os.getppid() != parent:  # it ended before the call
                    os._exit(1)
                return
        except (OSError, AttributeError):  # pragma: no cover - no prctl in this libc
            pass
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _run_chunk(task: tuple[int, int, int, str]) -> ChunkDone | ChunkFailure:
    index, start, stop, path = task
    runner: TaskRunner = _WORK["runner"]
    lengths: list[int] = _WORK["lengths"]
    count: int = _WORK["count"]
    seed: int = _WORK["seed"]
    run_line = runner.run_line
    steps = done = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "wb", buffering=1 << 20) as f:
        write = f.write
        try:
            for s, value in inputs_between(runner, lengths, count, seed, start, stop):
                try:
                    line = run_line(value, s, normalized=True)
                except NpiRuntimeError as e:  # the lines before it stay (for stdout)
                    return ChunkFailure(index, e.render(), e.code, s, value, path,
                                        done)
                write(line.encode("utf-8"))
                write(b"\n")
                steps += runner.last_steps
                done += 1
        except BaseException:
            f.close()
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
    return ChunkDone(index, path, stop - start, steps)


class ParallelCompile:
    """The chunks `plan` of a compile run by `workers` forked workers, consumed in order.

    `output` is the destination ("-" for stdout): chunk files go next to it. Use as a
    context manager; `chunks()` yields every `ChunkDone` in output order (the caller appends
    the file, then calls `release`), and raises `ChunkFailed` at the first failing input.
    Leaving the block terminates the workers and removes every chunk file.
    """

    def __init__(self, runner: TaskRunner, lengths: list[int], count: int, seed: int,
                 workers: int, output: str, plan: list[tuple[int, int]]) -> None:
        # writing a .gz, the parent compresses the one stream the chunks go through: the
        # stage nothing runs beside, given the CPU first (the workers a little nicer)
        self.nice = WORKER_NICE if output.endswith(".gz") else 0
        if not can_fork():  # pragma: no cover - Linux and macOS have fork
            raise RuntimeError("parallel compiles need the fork start method")
        self.plan = plan
        self.jobs = max(1, min(workers, len(self.plan)))
        self._work = {"runner": runner, "lengths": lengths, "count": count, "seed": seed}
        self._scratch: str | None = None
        if output == "-":
            import tempfile

            self._scratch = tempfile.mkdtemp(prefix="npi-compile-")
            self.paths = [os.path.join(self._scratch, f"chunk-{k}.jsonl")
                          for k in range(len(self.plan))]
        else:
            self.paths = self._names(output, len(self.plan))
        self._pool: Any = None

    @staticmethod
    def _names(output: str, n: int) -> list[str]:
        names: set[str] = set()
        while len(names) < n:
            names.add(temporary_name(output))
        return sorted(names)

    def __enter__(self) -> ParallelCompile:
        _WORK.clear()
        _WORK.update(self._work)
        # a forked worker flushes the standard streams it inherits when it ends: empty them
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("fork")
        # an executor, not a Pool: a worker that dies (killed, out of memory) breaks it
        # (BrokenProcessPool) where a Pool would wait for its result for ever
        self._pool = ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_init_worker,
                                         initargs=(self.nice, os.getpid()))
        return self

    def chunks(self) -> Iterator[ChunkDone]:
        from collections import deque

        tasks = iter([(k, a, b, self.paths[k]) for k, (a, b) in enumerate(self.plan)])
        # at most AHEAD_PER_JOB chunks per worker are done or under way beyond the one the
        # parent appends: the chunk files waiting for a slow parent (compressing) stay few
        pending = deque(self._pool.submit(_run_chunk, task)
                        for task in islice(tasks, AHEAD_PER_JOB * self.jobs))
        while pending:
            result = pending.popleft().result()
            task = next(tasks, None)
            if task is not None:
                pending.append(self._pool.submit(_run_chunk, task))
            if isinstance(result, ChunkFailure):
                if result.lines:  # written before the failure, as one process writes them
                    yield ChunkDone(result.index, result.path, result.lines, 0)
                raise ChunkFailed(result)
            yield result

    def release(self, done: ChunkDone) -> None:
        """Remove a chunk's file once it is appended."""
        try:
            os.unlink(done.path)
        except OSError:
            pass

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            if exc_type is None:
                pool.shutdown(wait=True)
            else:  # stop the chunks still running now, not when they are done
                processes = list((getattr(pool, "_processes", None) or {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.join()
        _WORK.clear()
        for path in self.paths:
            try:
                os.unlink(path)
            except OSError:
                pass
        if self._scratch is not None:
            import shutil

            shutil.rmtree(self._scratch, ignore_errors=True)
