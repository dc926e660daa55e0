"""The `npi` command line: one typer app; each group of commands lives in its own module.

Commands that need torch import it inside their bodies, so `npi check` stays fast. Every
command reports an `NpiError` it raises in one way (`cli.common.reporting_errors`).
"""

from __future__ import annotations

import typer

from npi_runtime.cli import dsl, lint, neural, reproduce, trace
from npi_runtime.cli.common import reporting_errors

app = typer.Typer(
    name="npi",
    help="Neural Programmer-Interpreters: write reference programs, compile traces, train, verify.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

dsl.register(app)
lint.register(app)
trace.register(app)
neural.register(app)
reproduce.register(app)
for _command in app.registered_commands + [
        c for group in app.registered_groups if group.typer_instance is not None
        for c in group.typer_instance.registered_commands]:
    _command.callback = reporting_errors(_command.callback)


def main() -> None:
    import sys

    from npi_runtime.cli.common import ClosedStdout

    if sys.stdout is None:  # started with stdout closed (>&-)
        sys.stdout = ClosedStdout()
    app()
