"""`npi lint`: the learnability lint (npi_dsl/lint.py); no torch imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from npi_dsl.lint_defaults import DEFAULT_COUNT, DEFAULT_LENGTHS
from npi_runtime.cli.common import (
    check_lengths,
    err,
    existing_files,
    fail,
    load_or_exit,
    out,
    task_or_exit,
)

if TYPE_CHECKING:
    from npi_dsl.lint import Decision, Finding, LintReport


def lint(
    file: Annotated[Path, typer.Argument(
        help="A .npi file.", callback=existing_files, dir_okay=False, show_default=False)],
    task: Annotated[str | None, typer.Option(
        "--task", "-t", help="The task to lint; may be left out when the file defines one task.",
        show_default=False)] = None,
    count: Annotated[int, typer.Option(
        "--count", "-n", min=1, help="Inputs per length.")] = DEFAULT_COUNT,
    lengths: Annotated[str | None, typer.Option(
        "--lengths", "-l", help=f"Input lengths: A..B (inclusive) or a comma list (default "
        f"{DEFAULT_LENGTHS}, up to the environment's longest: the camera's 9).",
        callback=lambda v: None if v is None else check_lengths(v),
        show_default=False)] = None,
    seed: Annotated[int, typer.Option(
        "--seed", "-s", min=0, help="Seed of the inputs (as npi compile draws them).")] = 0,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the report as JSON on stdout (schema in docs/cli.md).")] = False,
) -> None:
    """The learnability lint: run the reference on sampled inputs and report steps whose
    network inputs are identical but whose decisions differ.

    Exit 0: clean. Exit 1: findings (or the reference fails on an input). Exit 2: usage
    errors, an unreadable file.
    """
    from npi_dsl.lint import lint as run_lint
    from npi_dsl.sampling import parse_lengths

    checked = load_or_exit(file)
    info = task_or_exit(checked, task)
    wanted = parse_lengths(lengths or DEFAULT_LENGTHS)
    bound = checked.env_class.max_length
    if lengths is None and bound is not None:  # the camera's inputs have 1..9 views
        wanted = [n for n in wanted if n <= bound]
    elif bound is not None and max(wanted) > bound:
        fail(f"--lengths {lengths}: env {checked.env_name}'s inputs have lengths 1..{bound}",
             code=2)
    report = run_lint(checked, info.name, wanted, count, seed)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _show(report)
    if not report.clean:
        raise typer.Exit(1)


def _show(report: LintReport) -> None:
    seen = ", ".join(report.observation)
    for k, f in enumerate(report.findings, 1):
        _show_finding(k, f)
    n = len(report.findings)
    status = "[bold green]clean[/]" if report.clean else "[bold red]not learnable[/]"
    err.print(f"{status}: task {report.task} of {escape(report.path)}: {report.inputs} inputs, "
              f"{report.steps:,} steps, {n} finding{'s' * (n != 1)}; the network observes "
              f"{escape(seen)}")


def _show_finding(k: int, f: Finding) -> None:
    a, b = f.first, f.second
    out.print(f"[bold]finding {k}[/]: {escape(f.program)}{tuple(f.args)} at step {a.step} "
              f"of its frame: the same network input, two decisions "
              f"([cyan]{escape(a.shown())}[/] and [cyan]{escape(b.shown())}[/]); "
              f"{f.pairs} pair{'s' * (f.pairs != 1)} like it")
    if f.unobserved:
        out.print(f"  decided by what the network does not observe: "
                  f"[bold red]{escape(', '.join(f.unobserved))}[/]")
    for label, d in (("first ", a), ("second", b)):
        _show_decision(label, d)
    out.print()


def _show_decision(label: str, d: Decision) -> None:
    out.print(f"  {label} input {escape(json.dumps(d.input))} (seed {d.seed}): "
              f"{escape(d.shown())}")
    out.print(f"    call stack: {escape(' > '.join(d.stack))}")
    out.print(f"    observations in the frame: {escape(' '.join(str(list(o)) for o in d.obs))}")
    for c in d.conditions:
        reads = ", ".join([*c.queries, *(f"local {n}" for n in c.locals)]) or "constants"
        out.print(f"    {escape(c.path)}:{c.line}:{c.column}: `{escape(c.text)}` was "
                  f"{str(c.value).lower()} (reads {escape(reads)})")
    if not d.conditions:
        out.print("    (no condition: the program always decides this here)")


def register(app: typer.Typer) -> None:
    app.command()(lint)
