"""The `npi` command line: one typer app; each group of commands lives in its own module.

Commands that need torch import it inside their bodies, so `npi check` stays fast.
"""

from __future__ import annotations

import typer

from npi_runtime.cli import dsl, neural, trace

app = typer.Typer(
    name="npi",
    help="Neural Programmer-Interpreters: write reference programs, compile traces, train, verify.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

dsl.register(app)
trace.register(app)
neural.register(app)


def main() -> None:
    app()
