"""`NpiError`: the one base of every error npi reports to a user.

    NpiError
    ├── npi_dsl.diagnostics.DiagnosticError   a program file with errors (E001-E504)
    ├── npi_dsl.interpreter.NpiRuntimeError   a reference run failed (R001-R007)
    ├── npi_dsl.envs.base.EnvError            an environment refused an action or an input
    ├── npi_dsl.trace.TraceFormatError        a file that is not valid npi-trace/1 (a ValueError)
    ├── npi_dsl.inputs.InputError             a file or stream that cannot be read (a FIFO...)
    ├── npi_runtime.data.TraceError           traces that do not fit the model or the program
    └── npi_runtime.checkpoint.CheckpointError  a missing, corrupt or mismatched run directory

From Python, `except NpiError` catches every one of them; `err.render()` is the whole message
as `npi` prints it and `err.exit_code` the status `npi` exits with.
"""

from __future__ import annotations


class NpiError(Exception):
    """An error in what a user gave npi: a file, an input, a run directory.

    `render()` is the full message for a user. Its headlines start in the first column: a
    diagnostic's `PATH:LINE:COL: error[CODE]: message`, or `error: message` for the errors
    that have no source location; the lines under a headline that explain it (a source
    excerpt with a caret, a hint, a call stack) are indented. `exit_code` is the status the
    `npi` command exits with after printing it: 1, the thing examined is wrong; 2 (the
    trace and input errors), bad input (docs/cli.md, "Exit codes").
    """

    exit_code: int = 1

    def render(self) -> str:
        return f"error: {self}"
