"""What every command shares: consoles, loading a program file with diagnostics, errors.

Data goes to stdout, messages to stderr. An `NpiError` raised by a command (a bad program,
trace file or run directory, a failing reference run, or a `CommandError` from `fail`) is
printed here, by `print_error`, and ends the command with its exit code, never with a
traceback: `reporting_errors` wraps every command of the app (npi_runtime/cli.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from npi_dsl.checker import Checked, TaskInfo, check_file
from npi_dsl.diagnostics import Diagnostic, DiagnosticError
from npi_dsl.errors import NpiError

# emoji=False: `:x:` in a printed source line stays `:x:` (markup is off at each print)
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

F = TypeVar("F", bound=Callable[..., Any])

#: a diagnostic's headline, `PATH:LINE:COL: SEVERITY[CODE]: ...`
_HEADLINE = re.compile(r".*?:\d+:\d+: (error|warning)\[")


class CommandError(NpiError):
    """What a command itself refuses: a bad option or input (exit 2), an unwritable output."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, code: int = 1) -> NoReturn:
    """End the command with `error: message` on stderr and exit `code` (1: the thing examined
    is wrong; 2: a usage error)."""
    raise CommandError(message, code)


def print_error(text: str) -> None:
    """Print a rendered error (`NpiError.render`) or diagnostics on stderr, as literal text.

    Headlines (lines that start in the first column) are bold: a diagnostic's in red, or
    yellow for a warning; of an `error: message` line only the word `error`. The indented
    lines under them are plain.
    """
    for line in text.split("\n"):
        if line.startswith(" "):
            err.print(line, markup=False)
        elif line.startswith("error: "):
            err.print(f"[bold red]error[/]: {escape(line[len('error: '):])}", markup=True)
        else:
            m = _HEADLINE.match(line)
            color = "yellow" if m and m.group(1) == "warning" else "red"
            err.print(f"[bold {color}]{escape(line)}[/]", markup=True)


def reporting_errors(command: F) -> F:
    """`command`, printing an NpiError it raises and exiting with the error's code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NpiError as e:
            print_error(e.render())
            raise typer.Exit(e.exit_code) from None

    return wrapper  # type: ignore[return-value]


def print_diagnostics(diagnostics: list[Diagnostic], sources: dict[str, str]) -> None:
    if diagnostics:
        print_error(DiagnosticError(diagnostics, sources).render())


def load_or_exit(path: Path) -> Checked:
    """Check a program file; raise DiagnosticError (every diagnostic, warnings too) if it has
    errors."""
    report = check_file(path)
    if not report.ok or report.checked is None:
        raise DiagnosticError(report.diagnostics, report.sources)
    return report.checked


def task_or_exit(checked: Checked, task: str | None) -> TaskInfo:
    """The task named by --task, or the file's only task; a usage error (exit 2) otherwise."""
    try:
        return checked.task(task)
    except ValueError as e:
        fail(str(e), code=2)


def check_lengths(text: str) -> str:
    """A --length/--lengths callback: a malformed value is a usage error naming the option."""
    from npi_dsl.sampling import parse_lengths

    try:
        parse_lengths(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return text

