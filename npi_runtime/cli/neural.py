"""`npi train`, `npi verify`, `npi demo`: the neural commands (torch is imported inside them).

Their errors (a bad trace file, a corrupt or mismatched checkpoint, a failing reference run)
are NpiErrors, reported by the app's one handler (cli.common.reporting_errors) with the
error's exit code (docs/cli.md): 2 for bad input (a corrupt or mismatched trace file or run
directory, a usage error); `npi verify` exits 1 when the network fails the check.
"""

from __future__ import annotations

import json
import os
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from npi_runtime.cli.common import (
    check_jobs,
    check_lengths,
    check_writable,
    err,
    fail,
    load_or_exit,
    out,
    task_or_exit,
)

_FILE = Annotated[Path, typer.Argument(help="The .npi program file.", exists=True,
                                       dir_okay=False, show_default=False)]
_TASK = Annotated[str | None, typer.Option(
    "--task", "-t", help="The task; may be left out when the file defines one task.",
    show_default=False)]
_STRICT = Annotated[bool, typer.Option(
    "--strict", help="Refuse (exit 2) a run directory trained on another version of the "
    "program file (its source hash differs); without it that is a warning.")]
_DEVICE = Annotated[str, typer.Option(
    "--device", help="Where the network runs: auto (a GPU when torch sees one, else the "
    "CPU), cpu, cuda, cuda:N or mps; a device that is not there is exit 2.")]


def _warning(message: str) -> None:
    err.print(f"[bold yellow]warning[/]: {escape(message)}")



class Precision(str, Enum):
    """`npi train --precision`."""

    fp32 = "fp32"
    bf16 = "bf16"


def _quiet_threads() -> None:
    """Keep OpenMP from spinning on a shared machine (must precede importing torch)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# ---------------------------------------------------------------------------- npi train


class _TrainDisplay:
    """A progress bar per epoch (only on a terminal) and one line per validation; a context
    manager that takes the bar away however training ends."""

    def __init__(self, quiet: bool = False) -> None:
        self.progress: Any = None
        self.bar: Any = None
        self.quiet = quiet  # another process of several shows it
        if err.is_terminal and not quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                     console=err, transient=True)
            self.progress.start()

    def __call__(self, kind: str, data: dict) -> None:
        if self.quiet:
            return
        if kind == "batch" and self.progress is not None:
            desc = f"epoch {data['epoch'] + 1}"
            info = f"loss {data['loss']:.4f}  lr {data['lr']:.2g}"
            if self.bar is None:
                self.bar = self.progress.add_task(desc, total=data["batches"], info=info)
            self.progress.update(self.bar, description=desc, total=data["batches"],
                                 completed=data["batch"], info=info)
        elif kind == "validation":
            err.print(data["message"], markup=False, highlight=False)
        elif kind == "epoch":
            t, v = data["train"], data["val"]
            if "tasks" in v:  # several tasks: each one's share, loss and validation
                lengths = "  ".join(
                    f"{label} ({t['tasks'][label]['share']:.0%} of frames, loss "
                    f"{t['tasks'][label]['loss']:.3f}) " + " ".join(
                        f"{n}: {x['result_exact']:.2f}/{x['trace_exact']:.2f}"
                        for n, x in tv["lengths"].items())
                    for label, tv in v["tasks"].items())
            else:
                lengths = "  ".join(f"{n}: {x['result_exact']:.2f}/{x['trace_exact']:.2f}"
                                    for n, x in v["lengths"].items())
            epoch = data["epoch"]
            epoch = f"{epoch:>5.2f}" if isinstance(epoch, float) else f"{epoch:>5}"
            err.print(f"epoch {epoch}  step {data['step']:>6}  "
                      f"{data['seconds']:>6.1f} s  loss {t['loss']:.4f}  "
                      f"acc end {t['end_acc']:.3f} prog {t['prog_acc']:.3f} "
                      f"args {t['args_acc']:.3f}  | val step {v['step_accuracy']:.4f}  "
                      f"exact result/trace {lengths}", markup=False, highlight=False)

    def __enter__(self) -> _TrainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def train(
    paths: Annotated[list[Path], typer.Argument(
        help="The .npi program file, then the trace files (npi-trace/1 JSON Lines, .gz or "
        "not) made by npi compile. Several program files (each path ending in .npi) train "
        "one network for all their tasks. With --add: the trace files only.",
        exists=True, dir_okay=False, show_default=False, metavar="PATHS")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="The run directory to create (weights, manifest, metrics, "
        "resume state).", file_okay=False, show_default=False)] = None,
    resume: Annotated[Path | None, typer.Option(
        "--resume", help="Continue the interrupted run in this directory (with the "
        "configuration it was started with).", exists=True, file_okay=False,
        show_default=False)] = None,
    traces_opt: Annotated[list[Path] | None, typer.Option(
        "--traces", help="A trace file (may be given several times), besides those among "
        "the paths.", exists=True, dir_okay=False, show_default=False)] = None,
    from_run: Annotated[Path | None, typer.Option(
        "--from", help="A trained run directory to start from: with --add its network "
        "learns the program file's new programs (the run itself is only read).",
        exists=True, file_okay=False, show_default=False)] = None,
    add: Annotated[Path | None, typer.Option(
        "--add", help="With --from: the program file whose new programs get new rows in "
        "the program memory (and its environment an encoder, if the run has none).",
        exists=True, dir_okay=False, show_default=False)] = None,
    freeze_core: Annotated[bool, typer.Option(
        "--freeze-core", help="With --from/--add: train only the new programs' rows (and a "
        "new environment's encoder); every other weight is copied bit for bit.")] = False,
    task: _TASK = None,
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, help="Seed of the weights "
                                      "and the data order.")] = 0,
    epochs: Annotated[int | None, typer.Option(
        "--epochs", min=1, help="At most this many epochs (default 400; training also "
        "stops after 5000 optimizer steps).",
        show_default=False)] = None,
    hidden: Annotated[int | None, typer.Option(
        "--hidden", min=8, help="LSTM units per layer (default 256, the paper's). "
        "Also sizes the core, program embeddings and heads.", show_default=False)] = None,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, help="torch threads (default 1; see docs/training.md).",
        show_default=False)] = None,
    val_lengths: Annotated[str | None, typer.Option(
        "--val-lengths", help="Validation lengths, A..B or a comma list (default: derived "
        "from the training traces: 2L+3 and 5L+3 for the longest training length L, "
        "shortened to fit a step budget; docs/training.md).", callback=lambda v: v if v is None
        else check_lengths(v), show_default=False)] = None,
    val_count: Annotated[int | None, typer.Option(
        "--val-count", min=1, help="Validation inputs per length (default 8; more make "
        "'perfect' mean more, at the cost of time).", show_default=False)] = None,
    patience: Annotated[int | None, typer.Option(
        "--patience", min=1, help="Stop after validation is perfect this many times in a "
        "row (default 3).", show_default=False)] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Re-run every trace through the reference, and refuse (exit 2) "
        "traces or a run directory made from another version of the program file (their "
        "source hash differs); without it 8 traces are re-run and a differing source hash "
        "is a warning.")] = False,
    device: _DEVICE = "auto",
    precision: Annotated[Precision | None, typer.Option(
        "--precision", help="fp32, or bf16: the forward pass under bfloat16 autocast "
        "(default fp32; docs/training.md).", show_default=False)] = None,
    nproc: Annotated[int | None, typer.Option(
        "--nproc", min=1, help="Train in this many processes on this machine, through "
        "torchrun (DDP: gloo on CPUs, NCCL on GPUs, one GPU each; docs/training.md).",
        show_default=False)] = None,
) -> None:
    """Train an NPI on traces of a task (teacher-forced, batched frames, resumable).

    Writes RUN_DIR/model.safetensors, manifest.json, metrics.jsonl and checkpoints/, each
    checkpoint committed as one (docs/training.md); a second writer of RUN_DIR is refused.
    Exit 2 for a missing, corrupt or mismatched run directory. Stops once
    closed-loop validation on longer inputs is perfect --patience times in a row (3), or
    after --epochs. Several program files: one network for all their tasks (docs/training.md,
    "One network for every task"); --from RUN --add FILE [--freeze-core]: RUN's network
    learns FILE's new programs.
    """
    if (output is None) == (resume is None):
        fail("give either -o RUN_DIR (a new run) or --resume RUN_DIR (an interrupted one)",
             code=2)
    files, trace_files = _split_paths(paths, traces_opt or [], add)
    for flag, value in (("--add", add), ("--freeze-core", freeze_core or None)):
        if value is not None and from_run is None:
            fail(f"{flag} needs --from RUN_DIR, the trained run to start from", code=2)
    if from_run is not None:
        if add is None:
            fail("--from needs --add FILE, the program file whose programs to learn", code=2)
        if resume is not None:
            fail("--from starts a new run; continue an interrupted one with --resume RUN_DIR "
                 f"{add} TRACES... alone", code=2)
        if task is not None:
            fail("--task chooses among a single file's tasks; with --add every task of the "
                 "file that has traces trains", code=2)
    elif len(files) > 1 and task is not None:
        fail("--task chooses among a single file's tasks; with several program files every "
             "task that has traces trains", code=2)
    if not trace_files:
        fail("no trace files given: name them after the program file(s), or with --traces",
             code=2)
    from npi_dsl.sampling import parse_lengths

    # the configuration options: flag -> (the TrainConfig field it sets or None, its value)
    options = {"--epochs": ("max_epochs", epochs), "--hidden": (None, hidden),
               "--threads": ("threads", threads),
               "--val-lengths": ("val_lengths", None if val_lengths is None
                                 else tuple(parse_lengths(val_lengths))),
               "--val-count": ("val_count", val_count), "--patience": ("patience", patience),
               "--precision": ("precision", None if precision is None else precision.value)}
    if resume is not None:
        given = [flag for flag, (_, value) in options.items() if value is not None]
        if given:
            fail(f"--resume continues with the run's own configuration (its manifest.json); "
                 f"leave out {', '.join(given)}", code=2)
    if from_run is not None and hidden is not None:
        fail("--hidden sizes a new network; with --from the network is the run's", code=2)
    _quiet_threads()
    from npi_runtime import distributed
    from npi_runtime.checkpoint import holds_run
    from npi_runtime.device import resolve_device

    where = resolve_device(device)  # a device that is not there: exit 2 before any work
    if output is not None and holds_run(output):
        fail(f"{output} already holds a run; continue it with --resume {output}, or choose "
             "another directory", code=2)
    checkeds = [load_or_exit(f) for f in files]
    if nproc is not None and nproc > 1 and not distributed.in_torchrun():
        _launch(nproc, where)
    quiet = distributed.in_torchrun() and int(os.environ["RANK"]) != 0
    from npi_runtime import api
    from npi_runtime.model import NPIConfig
    from npi_runtime.train import TrainConfig
    from npi_runtime.train_tasks import several_tasks_config

    several = len(checkeds) > 1 or from_run is not None
    tc = TrainConfig(seed=seed, **{name: value for name, value in options.values()
                                   if name is not None and value is not None})
    if len(checkeds) > 1:
        tc = several_tasks_config(tc, len(checkeds))
    mc = NPIConfig() if hidden is None else NPIConfig.sized(hidden)
    run_dir = resume if resume is not None else output
    assert run_dir is not None
    what = ("tasks of " + ", ".join(f.name for f in files)) if several else None
    if not several:
        what = f"task {task_or_exit(checkeds[0], task).name}"
    t0 = time.perf_counter()
    common = {"on_event": None, "strict": strict, "warn": _warning, "device": device}
    try:
        with _TrainDisplay(quiet) as display:
            common["on_event"] = display
            traces = [str(p) for p in trace_files]
            if from_run is not None:
                result = api.learn_programs(from_run, checkeds[0], traces, run_dir,
                                            freeze_core=freeze_core, train_config=tc, **common)
            elif len(checkeds) > 1:
                result = api.train_tasks(checkeds, traces, run_dir, model_config=mc,
                                         train_config=tc, resume=resume is not None, **common)
            else:
                info = task_or_exit(checkeds[0], task)
                result = api.train(checkeds[0], traces, run_dir, info.name, model_config=mc,
                                   train_config=tc, resume=resume is not None, **common)
    except KeyboardInterrupt:
        if holds_run(run_dir):
            err.print(f"interrupted; continue with --resume {run_dir}", markup=False,
                      highlight=False)
        else:
            err.print(f"interrupted before the first checkpoint; start again with -o {run_dir}",
                      markup=False, highlight=False)
        raise typer.Exit(130) from None
    if quiet:
        return
    s = result.summary
    added = (f" (learned {', '.join(result.added_programs)})" if result.added_programs else "")
    err.print(f"trained {what}{added}: {s['epochs']} epochs, {s['step']} steps, "
              f"{s['seconds']:.1f} s of training ({time.perf_counter() - t0:.1f} s in this "
              f"session); {s['stopped']}", markup=False, highlight=False)
    err.print(f"wrote {run_dir}/ (model.safetensors, manifest.json, metrics.jsonl, "
              "checkpoints/)",
              markup=False, highlight=False)


def _launch(nproc: int, device: Any) -> None:
    """`npi train --nproc N`: this command again in N processes through torchrun, without
    `--nproc`; exits with torchrun's status."""
    import sys

    import torch

    from npi_runtime import distributed

    if device.type == "cuda" and nproc > torch.cuda.device_count():
        fail(f"--nproc {nproc} on CUDA needs {nproc} GPUs; this machine has "
             f"{torch.cuda.device_count()}", code=2)
    if device.type == "mps":
        fail("--nproc runs one process per GPU or CPU core; Apple's MPS has no process group "
             "backend: use --device cpu", code=2)
    if sys.argv[1:2] != ["train"]:
        fail("--nproc relaunches the npi command line (npi train ... or python -m npi_runtime "
             "train ...); from Python, start the script with torchrun", code=2)
    argv, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            argv.append(arg)
    raise typer.Exit(distributed.launch(nproc, argv))


def _split_paths(paths: list[Path], traces: list[Path],
                 add: Path | None) -> tuple[list[Path], list[Path]]:
    """(program files, trace files) of `npi train`'s paths: the first path is a program file
    (unless --add names it), so are later ones ending in .npi; the rest are traces."""
    if add is not None:
        programs = [p for p in paths if p.suffix == ".npi"]
        if programs:
            fail(f"{programs[0]}: with --add the paths are trace files; the program file is "
                 "the one --add names", code=2)
        return [add], [*paths, *traces]
    files = [paths[0], *[p for p in paths[1:] if p.suffix == ".npi"]]
    return files, [*[p for p in paths[1:] if p.suffix != ".npi"], *traces]


# --------------------------------------------------------------------------- npi verify


def _print_verify_table(report: Any, title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    grouped = any(r.group is not None for r in report.lengths)
    for col in ("set" if grouped else "length", "inputs", "result exact", "trace exact",
                "step accuracy", "failures", "seconds"):
        table.add_column(col, justify="right")
    for r in report.lengths:
        style = "green" if r.result_exact == 1.0 else "red"
        table.add_row(r.label, str(r.count), f"[{style}]{r.result_exact:.3f}[/]",
                      f"{r.trace_exact:.3f}", f"{r.step_accuracy:.5f}", str(len(r.failures)),
                      f"{r.seconds:.1f}")
    out.print(table)
    for r in report.lengths:
        for f in r.failures[:2]:
            d = f.get("divergence") or {}
            where = (f"step {d.get('step')} in {' > '.join(d.get('stack', []))}, obs "
                     f"{d.get('obs')}: expected {_decision(d.get('expected'))}, chose "
                     f"{_decision(d.get('chosen'))}") if d else f.get("message", "")
            out.print(f"  {'set' if grouped else 'length'} {r.label}: {_short(f['input'])} -> "
                      f"{_short(f['result'])} "
                      f"(expected {_short(f['expected'])}); first divergence: {where}",
                      markup=False, highlight=False)


def _decision(d: dict | None) -> str:
    if not d:
        return "nothing (the reference had ended)"
    if d["end"]:
        return f"return (p={d['p_end']:.3f})"
    return (f"{d['call']}{d['call_args']} (p_end={d['p_end']:.3f}, p_call={d['p_call']:.3f}, "
            f"p_args={[round(p, 3) for p in d['p_args']]})")


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 4:]}"


def verify(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made by npi train.",
                                            exists=True, file_okay=False, show_default=False)],
    file: _FILE,
    lengths: Annotated[str | None, typer.Option(
        "--lengths", "-l", help="Input lengths: A..B or a comma list such as 10,100,1000 "
        "(default 10,100,1000; for the camera: every start pose of --count seen and unseen "
        "cars).", callback=lambda v: None if v is None else check_lengths(v),
        show_default=False)] = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Inputs per length "
                                       "(camera: cars per set).")] = 20,
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, help="Seed of the inputs.")] = 0,
    task: _TASK = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the report as JSON on stdout, and nothing else.")] = False,
    outputs: Annotated[Path | None, typer.Option(
        "--outputs", help="Write every input with the network's result as JSON Lines.",
        dir_okay=False, show_default=False)] = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="Draw accuracy against length to this PNG file.", dir_okay=False,
        show_default=False)] = None,
    require: Annotated[float, typer.Option(
        "--require", min=0.0, max=1.0, help="Exit 1 unless result_exact reaches this at "
        "every length.")] = 1.0,
    threads: Annotated[int, typer.Option(
        "--threads", min=1, help="Cores for the network's big batches (1: fastest when "
        "another job is running; 2 about 1.5x faster on an idle 2-core machine).")] = 1,
    strict: _STRICT = False,
    jobs: Annotated[str, typer.Option(
        "--jobs", "-j", help="Processes for the reference side: a number or auto (the usable "
        "CPUs); the report is the same for any value.", callback=check_jobs)] = "1",
    device: _DEVICE = "auto",
    batch: Annotated[int | None, typer.Option(
        "--batch", min=1, help="Inputs the network runs at once (default 64 on the CPU, 256 "
        "on a GPU).", show_default=False)] = None,
) -> None:
    """Run the network in closed loop beside the reference program and compare.

    Per length: result_exact, trace_exact, step_accuracy (teacher-forced) and, for each
    failing input, the first step where the network departs from the reference.
    Exit 0 when every length reaches --require on result_exact, else 1; 2 for a missing,
    corrupt or mismatched run directory. --outputs and --plot are written atomically.
    """
    for path, option in ((outputs, "--outputs"), (plot, "--plot")):
        if path is not None:  # before the work, not after it
            check_writable(path, option)
    _quiet_threads()
    checked = load_or_exit(file)
    info = task_or_exit(checked, task)
    from npi_dsl.parallel import parse_jobs
    from npi_dsl.sampling import parse_lengths
    from npi_runtime import api
    from npi_runtime.device import resolve_device
    from npi_runtime.verify import plot_cells, plot_report

    where = resolve_device(device)

    env = checked.create_env()
    grid = env.verification_grid
    wanted: list[int] | None = None
    if lengths is not None or env.verification_sets(1, 0) is None:
        wanted = parse_lengths(lengths or "10,100,1000")
    import torch

    torch.set_num_threads(1)
    model = api.load_model(run_dir, checked, strict=strict, warn=_warning)

    def progress(rep: Any) -> None:
        if not as_json:
            what = "length" if rep.group is None else "set"
            err.print(f"{what} {rep.label}: result exact {rep.result_exact:.3f} "
                      f"({rep.seconds:.1f} s)", markup=False, highlight=False)

    report = api.verify(model, checked, wanted, count, seed, info.name,
                        keep_outputs=outputs is not None, progress=progress, threads=threads,
                        jobs=parse_jobs(jobs), device=where, batch=batch)
    from npi_runtime.checkpoint import write_atomic

    for path, write in (
            (outputs, lambda p: write_atomic(p, "".join(
                json.dumps(o) + "\n" for r in report.lengths for o in r.outputs).encode())),
            (plot, lambda p: plot_cells(report, p, grid) if grid and wanted is None
             else plot_report(report, p))):
        if path is not None:
            try:
                write(path)
            except OSError as e:
                fail(f"cannot write {path}: {e.strerror or e}", code=2)
    if as_json:
        print(json.dumps(report.to_json()))
    else:
        _print_verify_table(report, f"{run_dir} on task {info.name} of {file.name} "
                                    f"(seed {seed})")
        for path, what in ((outputs, "outputs"), (plot, "plot")):
            if path is not None:
                err.print(f"wrote {what} to {path}", markup=False, highlight=False)
    if not report.passed(require):
        raise typer.Exit(1)


# ----------------------------------------------------------------------------- npi demo


def demo(
    out_dir: Annotated[Path, typer.Option(
        "--out", "-o", help="Where to write traces, model, report and plot.",
        file_okay=False)] = Path("npi-demo"),
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, help="Training seed.")] = 0,
    device: _DEVICE = "auto",
) -> None:
    """The main job from nothing: compile the paper's addition training set, train, verify.

    32 traces of each length 1-20, the default training configuration, then closed-loop
    verification at 1, 10, 100 and 1000 digits (20 inputs each). Writes DIR/traces.jsonl.gz,
    DIR/model/ (a run directory npi verify accepts), DIR/verify.json and
    DIR/generalization.png. Run again on the same DIR, it continues an interrupted training
    (or reuses a finished one) and verifies anew.
    """
    _quiet_threads()
    from npi_runtime.checkpoint import CheckpointError
    from npi_runtime.demo import earlier_run, run_demo
    from npi_runtime.device import resolve_device

    resolve_device(device)  # a device that is not there: exit 2 before any work
    try:
        earlier_run(out_dir, seed)
    except CheckpointError as e:
        fail(str(e), code=2)
    try:
        with _TrainDisplay() as display:
            report = run_demo(out_dir, seed=seed, on_event=display, device=device,
                              say=lambda m: err.print(m, markup=False, highlight=False))
    except KeyboardInterrupt:
        again = "npi demo" + ("" if out_dir == Path("npi-demo") else f" --out {out_dir}") \
            + ("" if seed == 0 else f" --seed {seed}")
        err.print(f"interrupted; run {again} again to continue", markup=False, highlight=False)
        raise typer.Exit(130) from None
    _print_verify_table(report, "NPI on addition, trained on 1-20 digits")
    from npi_dsl.bundled import program_path

    err.print(f"wrote {out_dir}/traces.jsonl.gz, {out_dir}/model/, {out_dir}/verify.json and "
              f"{out_dir}/generalization.png; check the model yourself with: npi verify "
              f"{out_dir}/model {program_path('addition')} --lengths 1000 --count 20",
              markup=False, highlight=False)
    if not report.passed(1.0):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `npi train`, `npi verify` and `npi demo` to the app."""
    app.command()(train)
    app.command()(verify)
    app.command()(demo)
