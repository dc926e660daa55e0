"""`npi reproduce table1`: the paper's Table 1, compiled, trained and verified from nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from npi_runtime.cli.common import err, out

reproduce = typer.Typer(name="reproduce", no_args_is_help=True,
                        help="Reproduce a result of the paper from the bundled programs.")


@reproduce.command()
def table1(
    quick: Annotated[bool, typer.Option(
        "--quick", help="A smaller, faster variant (small networks, few traces and inputs) "
        "that still runs every row; its numbers are not the paper's settings.")] = False,
    out_dir: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where traces, runs, reports and table1.md/.json go "
        "(default table1/ or table1-quick/). Run again, it reuses what is finished there.",
        file_okay=False, show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, help="Seed of every network's "
                                      "weights and data order.")] = 0,
) -> None:
    """Table 1: single-task networks, one network for addition, sorting and
    canonicalisation, and MAX learned with the core frozen, against the paper's numbers.

    Prints the table and writes DIR/table1.md and DIR/table1.json (docs/results.md has the
    full run's numbers and time)."""
    from npi_runtime.cli.neural import _quiet_threads, _TrainDisplay
    from npi_runtime.reproduce import FULL, QUICK, Reproduction

    _quiet_threads()
    plan = QUICK if quick else FULL
    directory = out_dir or Path("table1-quick" if quick else "table1")
    err.print(f"npi reproduce table1 ({plan.name} plan) into {directory}/: expected about "
              f"{plan.minutes:.0f} minutes on 2 CPU cores", markup=False, highlight=False)
    with _TrainDisplay() as display:
        result = Reproduction(directory, plan, seed=seed, on_event=display,
                              say=lambda m: err.print(m, markup=False, highlight=False)).run()
    _print_table(result)
    err.print(f"wrote {directory}/table1.md and {directory}/table1.json "
              f"({result['seconds'] / 60:.1f} minutes)", markup=False, highlight=False)


def _print_table(result: dict) -> None:
    from rich.table import Table

    from npi_runtime.reproduce import NETWORKS

    table = Table(title="Table 1: per-sequence accuracy, %", title_justify="left")
    for col in ("network", "task", "setting", "inputs", "paper", "ours", "trace exact"):
        table.add_column(col, justify="left" if col in ("network", "task", "setting")
                         else "right")
    for r in result["rows"]:
        paper = "" if r["paper"] is None else f"{r['paper']:.1f}"
        style = "green" if r["paper"] is None or r["ours"] >= r["paper"] - 0.5 else "red"
        table.add_row(NETWORKS[r["network"]], r["task"], r["setting"], str(r["inputs"]),
                      paper, f"[{style}]{r['ours']:.2f}[/]", f"{r['trace_exact']:.2f}")
    out.print(table)
    after = result["after_max"]
    same = ", ".join(f"{k}: {'identical' if v else 'CHANGED'}"
                     for k, v in after["reports_identical"].items())
    out.print(f"after learning MAX, earlier reports: {same}; other weights "
              f"{'bit-identical' if after['other_weights_bit_identical'] else 'CHANGED'}",
              markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(reproduce)
