"""`npi run` and `npi compile`: symbolic execution of reference programs (no torch imported)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from npi_runtime.cli.common import (
    check_jobs,
    check_lengths,
    check_writable,
    err,
    existing_files,
    fail,
    load_or_exit,
    out,
    print_error,
    task_or_exit,
)

_BIG_INT_DIGITS = 4000  # JSON integers longer than this are kept as digit strings


def _parse_json_input(text: str, where: str) -> Any:
    """JSON, with integers of any size kept exact (long ones as digit strings)."""
    def parse_int(digits: str) -> int | str:
        if len(digits.lstrip("-")) > _BIG_INT_DIGITS:
            return digits  # past Python's int/str conversion limit; the env parses strings
        return int(digits)

    try:
        return json.loads(text, parse_int=parse_int)
    except RecursionError:
        fail(f"--input {where} is not valid JSON: arrays or objects nested too deeply",
             code=2)
    except ValueError as e:
        shown = text.strip()
        if len(shown) > 60:
            shown = shown[:57] + "..."
        fail(f"--input {where} is not valid JSON ({e}): {shown!r}; e.g. --input "
             "'[\"96\", \"125\"]' or --input '[5, 2, 8]'", code=2)


def _read_input(spec: str) -> Any:
    """`--input`: JSON text, `@PATH` (a regular file holding the JSON) or `-` (standard
    input); a file or stdin is read up to `MAX_INPUT_BYTES` (64 MiB), never further."""
    from npi_dsl.inputs import (
        MAX_INPUT_BYTES,
        NotRegularFile,
        describe_oserror,
        mib,
        open_regular,
        read_limited,
    )

    if spec == "-":
        if sys.stdin is None:
            fail("--input -: standard input is closed; give the input as JSON or @FILE",
                 code=2)
        try:
            data = read_limited(sys.stdin.buffer, MAX_INPUT_BYTES)
        except (OSError, ValueError) as e:
            fail(f"--input -: cannot read standard input: {e}", code=2)
        where = "from standard input"
        if data is None:
            fail(f"--input -: standard input holds more than {mib(MAX_INPUT_BYTES)}, the "
                 "limit of an input (docs/cli.md, Limits)", code=2)
    elif spec.startswith("@"):
        path = spec[1:]
        where = f"file {path!r}"
        try:
            with open_regular(path) as f:
                data = read_limited(f, MAX_INPUT_BYTES)
        except NotRegularFile as e:
            fail(f"cannot read --input file {path!r}: it {e.strerror}; save the input to a "
                 "file first", code=2)
        except OSError as e:
            fail(f"cannot read --input file {path!r}: {describe_oserror(e)}", code=2)
        if data is None:
            fail(f"--input file {path!r} is larger than {mib(MAX_INPUT_BYTES)}, the limit "
                 "of an input (docs/cli.md, Limits)", code=2)
    else:
        return _parse_json_input(spec, "value")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"--input {where} is not UTF-8 text ({e})", code=2)
    return _parse_json_input(text, where)


def _compile_runner(checked: Any, task: str, max_steps: int, max_depth: int,
                    engine: str = "compiled") -> Any:
    from npi_dsl.interpreter import compile_task

    return compile_task(checked, task, max_steps=max_steps, max_depth=max_depth,
                        engine=engine)


def _check_engine(name: str) -> str:
    """--engine: a usage error (exit 2) unless it names an engine."""
    from npi_dsl.interpreter import ENGINES

    if name not in ENGINES:
        raise typer.BadParameter(f"{name!r}: expected one of {', '.join(ENGINES)}")
    return name


_FILE = Annotated[Path, typer.Argument(help="A .npi file.", callback=existing_files,
                                       dir_okay=False,
                                       show_default=False)]
_TASK = Annotated[str | None, typer.Option(
    "--task", "-t", help="The task to run; may be left out when the file defines one task.",
    show_default=False)]
_MAX_STEPS = Annotated[int, typer.Option(
    "--max-steps", min=1, help="Stop a run after this many steps (error, exit 1).")]
_MAX_DEPTH = Annotated[int, typer.Option(
    "--max-depth", min=0, help="Stop a run whose frames nest deeper than this (the entry "
    "frame is depth 0).")]


def run(
    file: _FILE,
    input_: Annotated[str, typer.Option(
        "--input", "-i", help="The task's input as JSON (['96', '125'] or [96, 125] for "
        "addition, [5, 2, 8] for sorting), @PATH to read it from a file, or - for stdin.",
        show_default=False)],
    task: _TASK = None,
    show_env: Annotated[bool, typer.Option(
        "--show-env", help="Show the environment at the start of every frame.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the npi-trace/1 record on stdout, and nothing else.")] = False,
    limit: Annotated[int, typer.Option(
        "--limit", min=1,
        help="Draw at most this many nodes (calls and actions) in the tree.")] = 1000,
    max_steps: _MAX_STEPS = 5_000_000,
    max_depth: _MAX_DEPTH = 20_000,
    engine: Annotated[str, typer.Option(
        "--engine", help="compiled (fast) or reference (the tree-walking interpreter that "
        "defines the language's meaning; the same trace, slower).",
        callback=_check_engine)] = "compiled",
    frames: Annotated[Path | None, typer.Option(
        "--frames", help="Write the rollout's views (environments with images: the camera) "
        "to FILE.png (a strip) or FILE.gif (an animation).", dir_okay=False,
        show_default=False)] = None,
) -> None:
    """Run a task on one input and show its execution as a tree (the paper's Figure 3).

    Exit 0: the run succeeded and its result is correct.

    Exit 1: a runtime error, a budget exceeded or a wrong result (the tree of what ran is shown).

    Exit 2: usage errors (no --task in a file with several tasks, bad --input).
    """
    from rich.text import Text

    from npi_dsl.envs.base import EnvError
    from npi_dsl.interpreter import NpiRuntimeError
    from npi_dsl.render import execution_tree

    checked = load_or_exit(file)
    info = task_or_exit(checked, task)
    if frames is not None:  # before the work, not after it
        from npi_dsl.frames import check_frames_target

        check_frames_target(frames, checked.vocabulary)
        check_writable(frames, "--frames")
    raw = _read_input(input_)
    runner = _compile_runner(checked, info.name, max_steps, max_depth, engine)
    try:
        value = runner.parse_input(raw)
    except EnvError as e:
        fail(f"bad --input for task `{info.name}` (env {checked.env_name}): {e}", code=2)
    error: NpiRuntimeError | None = None
    record: dict[str, Any] | None = None
    try:
        record = runner.run(value)
    except NpiRuntimeError as e:
        error = e
    if as_json:
        if error is not None:
            raise error
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
        return
    if record is None and error is not None:
        record = error.record
    steps = record["steps"] if record is not None else (error.steps if error else None)
    if frames is not None and steps:
        _write_frames(frames, checked, steps)
    if steps:
        env = None
        if show_env:
            env = runner.new_env(value)
        arity = {checked.bare(q): len(p.params) for q, p in checked.programs.items()}
        title = Text.from_markup(f"task [bold]{info.name}[/] on {_short(value)}"
                                 + (" [red](stopped by an error)[/]"
                                    if record is None else ""))
        out.print(execution_tree(steps, checked.vocabulary, arity=arity, env=env,
                                 limit=limit, title=title))
        if env is not None and record is not None:
            out.print(Text("final state", style="bold"))
            out.print(Text(env.render(), style="dim"))
    if error is not None:
        raise error
    assert record is not None
    result = record["result"]
    n = len(record["steps"])
    if info.expect is not None:
        verdict = f"[green]correct[/] (expect {info.expect})"
    else:
        verdict = "[dim]not checked: the task has no expect[/]"
    out.print(Text.from_markup(f"result [bold]{_escape(_short(result))}[/]  {verdict}  "
                               f"[dim]{n:,} steps[/]"))


def _write_frames(path: Path, checked: Any, steps: list[dict[str, Any]]) -> None:
    from npi_dsl.frames import frames_bytes
    from npi_runtime.checkpoint import write_atomic

    data, n = frames_bytes(checked.env_class, checked.vocabulary, steps, path)
    try:
        write_atomic(path, data)
    except OSError as e:
        fail(f"cannot write {path}: {e.strerror or e}", code=2)
    err.print(f"wrote {n} frames to {path}", markup=False, highlight=False)


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value)
    if len(text) > limit:
        return f"{text[: limit // 2]}...{text[-limit // 4:]} ({len(text):,} characters)"
    return text



def compile_traces(
    file: _FILE,
    length: Annotated[str, typer.Option(
        "--length", "-l", help="Input lengths: A..B (inclusive) or a comma list such as "
        "5,10,20.", show_default=False, callback=check_lengths)],
    task: _TASK = None,
    count: Annotated[int, typer.Option(
        "--count", "-n", min=1, help="Traces per length.")] = 1,
    seed: Annotated[int, typer.Option(
        "--seed", "-s", min=0, help="Seed of the inputs: the same seed gives the same bytes.")
    ] = 0,
    output: Annotated[str, typer.Option(
        "--output", "-o", help="The JSON Lines file to write (atomically; .gz compresses); "
        "- for stdout.")] = "-",
    stats: Annotated[bool, typer.Option(
        "--stats", help="Print per-program statistics (steps per frame, calls, distinct "
        "observations) on stderr.")] = False,
    cover: Annotated[bool, typer.Option(
        "--cover", help="Coverage-driven inputs: for each trace draw --pool candidate inputs, "
        "run them all and keep the one whose trace adds the most decision contexts "
        "(program, arguments, observation) that no earlier trace covered; ties go to the "
        "first candidate.")] = False,
    pool: Annotated[int | None, typer.Option(
        "--pool", min=1, help="With --cover: candidate inputs per trace (default 64; 1 "
        "gives the traces of a compile without --cover).", show_default=False)] = None,
    cover_programs: Annotated[str | None, typer.Option(
        "--cover-programs", help="With --cover: count only the decision contexts of these "
        "programs (a comma list of names, e.g. ADD1,CARRY; default: every program).",
        show_default=False)] = None,
    cover_score: Annotated[str | None, typer.Option(
        "--cover-score", help="With --cover: how a candidate is scored. count (the default): "
        "the number of new decision contexts; rarity: each new context weighs 1 / the number "
        "of candidates, in every trace's pool, that have it (rare contexts first; runs every "
        "candidate before choosing).", show_default=False)] = None,
    max_steps: _MAX_STEPS = 5_000_000,
    max_depth: _MAX_DEPTH = 20_000,
    jobs: Annotated[str, typer.Option(
        "--jobs", "-j", metavar="N|auto", help="Processes that run the inputs: a number, or "
        "auto (one per usable CPU). The output is the same bytes for any number. A small "
        "compile (its first inputs predict under 0.5 s for the rest) and --cover run in "
        "one process.", callback=check_jobs)] = "1",
) -> None:
    """Compile execution traces (npi-trace/1, JSON Lines): --count random inputs per length.

    Every run is checked: a runtime error or a wrong result stops the compile with exit 1.

    Nothing is written then, and an existing output file is left as it was.
    """
    from npi_dsl.coverage import COVER_SCORES, DEFAULT_POOL, Coverage, cover_picks
    from npi_dsl.interpreter import NpiRuntimeError
    from npi_dsl.parallel import (
        ChunkFailed,
        ParallelCompile,
        inputs_between,
        parse_jobs,
        plan_chunks,
        worker_count,
        worth_workers,
    )
    from npi_dsl.sampling import parse_lengths
    from npi_dsl.trace import TraceWriter
    from npi_dsl.trace_stats import TraceStats

    if not cover:
        for given, value in (("--pool", pool), ("--cover-programs", cover_programs),
                             ("--cover-score", cover_score)):
            if value is not None:
                fail(f"{given} chooses among candidate inputs and needs --cover", code=2)
    if cover_score is not None and cover_score not in COVER_SCORES:
        fail(f"--cover-score {cover_score!r}: expected one of {', '.join(COVER_SCORES)}",
             code=2)
    lengths = parse_lengths(length)
    if output != "-":
        check_writable(output, "-o")
    checked = load_or_exit(file)
    info = task_or_exit(checked, task)
    focus = _cover_programs_or_exit(checked, info, cover_programs) if cover else None
    runner = _compile_runner(checked, info.name, max_steps, max_depth)
    total = len(lengths) * count
    n_jobs = parse_jobs(jobs)
    # --cover chooses every trace knowing the ones before it: one process
    workers = 0 if cover else worker_count(n_jobs)
    collector = TraceStats() if stats else None
    coverage = Coverage() if cover else None
    last_new = 0
    progress = None
    if err.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        progress = Progress("[progress.description]{task.description}", BarColumn(),
                            MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                            transient=True)
    t0 = time.perf_counter()
    steps = 0
    current: tuple[int, Any] | None = None
    try:
        writer = TraceWriter(output)
    except OSError as e:
        fail(f"cannot write {output!r}: {e}", code=2)
    try:
        with writer:
            n_pool = DEFAULT_POOL if pool is None else pool
            # with --cover the bar counts candidate runs (rarity runs them all before writing)
            units = total * n_pool if cover else total
            bar = progress.add_task(
                f"{'choosing inputs for' if cover else 'compiling'} {info.name}",
                total=units) if progress else None
            tried = 0
            if progress is not None:
                progress.start()
            run_line = runner.run_line

            def plain(start: int, stop: int) -> Iterator[tuple[str, int, int]]:
                nonlocal current
                for s, value in inputs_between(runner, lengths, count, seed, start, stop):
                    current = (s, value)
                    yield run_line(value, s, normalized=True), runner.last_steps, 0

            def covered() -> Iterator[tuple[str, int, int]]:
                def trying(s: int, value: Any) -> None:
                    nonlocal current, tried
                    current = (s, value)
                    tried += 1
                    if progress is not None and tried & 31 == 0:
                        progress.update(bar, completed=tried)

                for p in cover_picks(runner, lengths, count, seed, n_pool, coverage, focus,
                                     on_candidate=trying, score=cover_score or "count"):
                    yield p.line, p.steps, p.new

            def emit(lines: Iterator[tuple[str, int, int]], first: int = 0) -> None:
                nonlocal steps, last_new
                for k, (line, n_steps, new) in enumerate(lines, first):
                    steps += n_steps
                    last_new = new
                    writer.write(line)
                    if collector is not None:
                        collector.add(line)
                    if progress is not None and not cover and (k & 15 == 15 or k + 1 == total):
                        progress.update(bar, completed=k + 1)

            if coverage is not None:
                emit(covered())
            elif workers == 0:
                emit(plain(0, total))
            else:  # the first chunk here, the rest in workers if it is worth them
                plan = plan_chunks(lengths, count, n_jobs)
                (a, b), rest = plan[0], plan[1:]
                t1 = time.perf_counter()
                emit(plain(a, b))
                if not worth_workers(time.perf_counter() - t1, rest):
                    emit(plain(b, total), b)
                else:
                    work = ParallelCompile(runner, lengths, count, seed, workers, output, rest)
                    steps += _append_chunks(work, writer, collector, progress, bar, b)
    except (NpiRuntimeError, ChunkFailed) as e:
        if progress is not None:
            progress.stop()
        if isinstance(e, ChunkFailed):  # a worker's run: the first failing input
            f = e.failure
            rendered, code, current = f.rendered, f.code, (f.seed, f.value)
        else:
            rendered, code = e.render(), e.code
        print_error(rendered)  # with what compile was doing, below
        if current is not None and code != "R006":
            s, value = current
            err.print(f"  while running input {_short(value)} (trace seed {s})",
                      markup=False)
        err.print("nothing was written", style="red")
        raise typer.Exit(1) from None
    except OSError as e:
        if progress is not None:
            progress.stop()
        fail(f"cannot write {output!r}: {e}", code=2)
    finally:
        if progress is not None:
            progress.stop()
    seconds = time.perf_counter() - t0
    where = "stdout" if output == "-" else output
    err.print(f"wrote {total:,} traces ({steps:,} steps) of task {info.name} to {where} "
              f"in {seconds:.2f} s", markup=False, highlight=False)
    if collector is not None:
        _print_stats(collector)
    if coverage is not None:
        _print_coverage(coverage, last_new, full=stats)


def _append_chunks(work: Any, writer: Any, collector: Any, progress: Any, bar: Any,
                   written: int) -> int:
    """The chunks of a parallel compile (`npi_dsl.parallel.ParallelCompile`), appended to
    `writer` in order; returns their steps. Raises `ChunkFailed` at the first failing input."""
    from concurrent.futures.process import BrokenProcessPool

    steps = 0
    try:
        with work:
            for done in work.chunks():
                writer.append_file(done.path, done.lines)
                if collector is not None:
                    _collect(collector, done.path)
                work.release(done)
                steps += done.steps
                written += done.lines
                if progress is not None:
                    progress.update(bar, completed=written)
    except BrokenProcessPool:
        if progress is not None:
            progress.stop()
        fail("a worker process of --jobs ended abruptly (killed, or out of memory); "
             "nothing was written", code=1)
    return steps


def _collect(collector: Any, path: str) -> None:
    """--stats over a chunk file of a parallel compile (its lines, as `write` got them)."""
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f:
            collector.add(line[:-1])


def _cover_programs_or_exit(checked: Any, info: Any, names: str | None) -> frozenset[str] | None:
    """--cover-programs: the qualified names it picks among the task's programs (exit 2 on an
    unknown name); None for every program."""
    from npi_dsl.coverage import cover_programs

    if names is None:
        return None
    listed = [n.strip() for n in names.split(",")]
    if not all(listed):
        fail(f"--cover-programs {names!r}: expected a comma list of program names, "
             "e.g. ADD1,CARRY", code=2)
    try:
        return cover_programs(checked, info.name, listed)
    except ValueError as e:
        fail(f"--cover-programs: {e}", code=2)


def _print_coverage(coverage: Any, last_new: int, full: bool) -> None:
    err.print(f"covered {len(coverage):,} decision contexts; the last trace added "
              f"{last_new:,}", markup=False, highlight=False)
    if not full:
        return
    from rich.table import Table

    table = Table(title="decision contexts covered (--cover)", title_justify="left")
    table.add_column("program", justify="left")
    table.add_column("contexts", justify="right")
    for program, n in sorted(coverage.per_program.items()):
        table.add_row(program, f"{n:,}")
    err.print(table)


def _print_stats(collector: Any) -> None:
    from rich.table import Table

    table = Table(title=f"{collector.traces:,} traces, {collector.steps:,} steps",
                  title_justify="left")
    for col in ("program", "frames", "calls", "steps/frame mean", "min", "max",
                "distinct obs"):
        table.add_column(col, justify="left" if col == "program" else "right")
    for row in collector.rows():
        def cell(v: Any) -> str:
            return "-" if v is None else f"{v:,}" if isinstance(v, int) else str(v)

        table.add_row(row["program"], cell(row["frames"]), cell(row["calls"]),
                      cell(row["steps_per_frame_mean"]), cell(row["steps_per_frame_min"]),
                      cell(row["steps_per_frame_max"]), cell(row["distinct_observations"]))
    err.print(table)


def register(app: typer.Typer) -> None:
    """Add `npi run` and `npi compile` to the app."""
    app.command()(run)
    app.command(name="compile")(compile_traces)
