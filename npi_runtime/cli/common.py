"""What every command shares: consoles, loading a program file with diagnostics, errors.

Data goes to stdout, messages to stderr. Domain errors are printed here and end the command
with exit 1 (`typer.Exit`), never with a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from npi_dsl.checker import Checked, TaskInfo, check_file
from npi_dsl.diagnostics import Diagnostic

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (1: the thing examined is wrong)."""
    err.print(f"[bold red]error[/]: {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def print_diagnostics(diagnostics: list[Diagnostic], sources: dict[str, str]) -> None:
    for d in diagnostics:
        color = "red" if d.severity == "error" else "yellow"
        text = d.render(sources.get(d.path))
        head, _, rest = text.partition("\n")
        err.print(f"[bold {color}]{_escape(head)}[/]", markup=True)
        if rest:
            err.print(rest, markup=False)


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)


def load_or_exit(path: Path) -> Checked:
    """Check a program file; print its diagnostics; exit 1 if it has errors."""
    report = check_file(path)
    if not report.ok or report.checked is None:
        print_diagnostics(report.diagnostics, report.sources)
        raise typer.Exit(1)
    return report.checked


def task_or_exit(checked: Checked, task: str | None) -> TaskInfo:
    """The task named by --task, or the file's only task; a usage error (exit 2) otherwise."""
    try:
        return checked.task(task)
    except ValueError as e:
        fail(str(e), code=2)


def check_lengths(text: str) -> str:
    """A --length/--lengths callback: a malformed value is a usage error naming the option."""
    from npi_dsl.compile import parse_lengths

    try:
        parse_lengths(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return text

