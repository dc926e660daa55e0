"""What every command shares: consoles, loading a program file with diagnostics, errors.

Data goes to stdout, messages to stderr. An `NpiError` raised by a command (a bad program,
trace file or run directory, a failing reference run, or a `CommandError` from `fail`) is
printed here, by `print_error`, and ends the command with its exit code, never with a
traceback: `reporting_errors` wraps every command of the app (npi_runtime/cli.py).
"""

from __future__ import annotations

import errno
import functools
import io
import os
import re
import sys
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
            try:
                return command(*args, **kwargs)
            finally:  # what a command printed reaches stdout now, or fails here
                if sys.stdout is not None:
                    sys.stdout.flush()
        except NpiError as e:
            print_error(e.render())
            raise typer.Exit(e.exit_code) from None
        except OSError as e:  # stdout closed or full, a file that cannot be written or read
            _silence_stdout()
            print_error(f"error: {os_error_message(e)}")
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def os_error_message(e: OSError) -> str:
    """An OSError as one line: the file and the reason (stdout when it names no file)."""
    from npi_dsl.inputs import describe_oserror

    reason = describe_oserror(e)
    if e.filename is not None:
        return f"{e.filename}: {reason}"
    if e.errno in (errno.EPIPE, errno.ENOSPC, errno.EBADF, errno.EIO):
        return f"cannot write to standard output: {reason}"
    return reason


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit does not fail a second time."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(fd, sys.stdout.fileno())
        finally:
            os.close(fd)
    except (OSError, AttributeError, ValueError):
        pass


class ClosedStdout(io.TextIOBase):
    """`sys.stdout` when the process was started with stdout closed: writing fails with
    EBADF (reported by `reporting_errors`, exit 2); a command that prints nothing runs."""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")

    def isatty(self) -> bool:
        return False


def existing_files(value: Any) -> Any:
    """A callback of file arguments (a Path or a list of them): a usage error (exit 2) for a
    path that cannot be stat'ed, saying why (missing, a loop of symbolic links...); click's
    own `exists=True` calls a symlink loop a missing file."""
    from npi_dsl.inputs import describe_oserror

    for p in value if isinstance(value, list) else [value]:
        if p is None:
            continue
        try:
            os.stat(p)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise typer.BadParameter(f"file {str(p)!r} does not exist.") from None
            raise typer.BadParameter(f"{str(p)!r}: {describe_oserror(e)}") from None
    return value


def check_writable(path: str | os.PathLike[str], option: str) -> None:
    """Refuse (exit 2) an output file that cannot be written: a directory, a missing or
    unwritable parent directory. Call it before the work whose result goes there."""
    p = Path(path)
    if p.is_dir():
        fail(f"{option} {p}: is a directory; name the file to write", code=2)
    parent = p.parent
    if not parent.is_dir():
        fail(f"{option} {p}: the directory {str(parent)!r} does not exist", code=2)
    if not os.access(parent, os.W_OK | os.X_OK):
        fail(f"{option} {p}: the directory {str(parent)!r} is not writable", code=2)


def print_diagnostics(diagnostics: list[Diagnostic], sources: dict[str, str]) -> None:
    if diagnostics:
        print_error(DiagnosticError(diagnostics, sources).render())


def load_or_exit(path: Path) -> Checked:
    """Check a program file; raise DiagnosticError (every diagnostic, warnings too) if it has
    errors."""
    report = check_file(path)
    if not report.ok or report.checked is None:
        error = DiagnosticError(report.diagnostics, report.sources)
        if unreadable(report.diagnostics, path):
            error.exit_code = 2
        raise error
    return report.checked


#: what E005 says of a file that could not be read at all (npi_dsl.parser.read_source):
#: missing, a directory, a FIFO or device, an OS error. With E006 (past the size limit) it is
#: bad input, exit 2; a file that was read but is binary or not UTF-8 has errors (exit 1).
_CANNOT_READ = ("does not exist", "is a directory", "not a regular file", "cannot be read")


def unreadable(diagnostics: list[Diagnostic], path: Path | str) -> bool:
    """Whether the file `path` itself (not one it imports) could not be read."""
    return any(Path(d.path) == Path(path) and (
        d.code == "E006" and d.span.line == 1 and "too large" in d.message
        or d.code == "E005" and any(s in d.message for s in _CANNOT_READ))
        for d in diagnostics)


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


def check_jobs(value: str) -> str:
    """`--jobs` of npi compile and npi verify: a whole number >= 1 or `auto` (a usage error,
    exit 2, otherwise)."""
    from npi_dsl.parallel import parse_jobs

    try:
        parse_jobs(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return value
