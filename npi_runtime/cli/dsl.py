"""`npi check` and `npi graph`: the language's commands (no torch imported)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from npi_runtime.cli.common import (
    err,
    existing_files,
    load_or_exit,
    out,
    print_diagnostics,
    unreadable,
)

if TYPE_CHECKING:
    from rich.tree import Tree


class GraphFormat(str, Enum):
    tree = "tree"
    dot = "dot"
    json = "json"


def check(
    files: Annotated[list[Path], typer.Argument(
        help="The .npi files to check.", callback=existing_files, dir_okay=False,
        show_default=False)],
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print every diagnostic as one JSON list on stdout.")] = False,
) -> None:
    """Check .npi files: syntax, names, arity, argument ranges, types, tasks, reachability.

    Exit 0 when no file has an error, 1 when any has (warnings too with --strict), 2 on
    usage errors or a file that cannot be read (missing, a FIFO, too large, not UTF-8).
    """
    from dataclasses import replace

    from npi_dsl.checker import check_file

    all_diags = []
    failed = 0
    bad_input = False
    for path in files:
        report = check_file(path)
        diags = report.diagnostics
        bad_input = bad_input or unreadable(diags, path)
        if strict:
            diags = [replace(d, severity="error") for d in diags]
        all_diags += diags
        if any(d.severity == "error" for d in diags):
            failed += 1
        if not as_json:
            print_diagnostics(diags, report.sources)
    n_err = sum(d.severity == "error" for d in all_diags)
    n_warn = len(all_diags) - n_err
    if as_json:
        print(json.dumps([d.to_json() for d in all_diags], indent=2))
    else:
        files_word = "file" if len(files) == 1 else "files"
        status = "[bold red]failed[/]" if failed else "[bold green]ok[/]"
        err.print(f"{status}: checked {len(files)} {files_word}: {n_err} error"
                  f"{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}")
    if bad_input:
        raise typer.Exit(2)
    if failed:
        raise typer.Exit(1)


def graph(
    file: Annotated[Path, typer.Argument(
        help="A .npi file.", callback=existing_files, dir_okay=False,
        show_default=False)],
    fmt: Annotated[GraphFormat, typer.Option(
        "--format", "-f", help="tree: the hierarchy from each task's entry; dot: Graphviz; "
        "json: networkx node-link data.")] = GraphFormat.tree,
) -> None:
    """Show the call graph: which program calls which, levels and recursion."""
    from rich.tree import Tree

    from npi_dsl.callgraph import graph_dot, graph_json

    checked = load_or_exit(file)
    g = checked.graph
    if fmt is GraphFormat.json:
        print(json.dumps(graph_json(g), indent=2, default=str))
        return
    if fmt is GraphFormat.dot:
        print(graph_dot(g, checked.root.stem), end="")
        return
    roots = [(t.name, t.entry) for t in checked.tasks.values()]
    if not roots:  # a library file: show every program nobody in the file calls
        roots = [(None, q) for q in checked.program_order if g.in_degree(q) == 0]
    for task, entry in roots:
        label = f"task [bold]{task}[/]" if task else f"[bold]{checked.root.stem}[/]"
        tree = Tree(label)
        _grow(tree, g, entry, (), set())
        out.print(tree)


def _grow(parent: Tree, g, q: str, path: tuple[str, ...], expanded: set[str]) -> None:
    """Add program `q` and, below it, what it calls.

    A program that calls other programs is expanded once per tree and marked "(see above)"
    where it recurs: shared callees would otherwise repeat whole subtrees, exponentially
    many for a chain of diamonds. Programs that only act are short and always shown.
    """
    d = g.nodes[q]
    name = d["name"]
    params = f"({', '.join(d['params'])})"
    rec = f" [magenta]{d['recursion']} recursion[/]" if d["recursion"] != "none" else ""
    if q in path:
        parent.add(f"[bold]{name}[/]{params} [magenta]↻ recursive call[/]")
        return
    label = f"[bold]{name}[/]{params} [dim]level {d['level']}[/]{rec}"
    calls_programs = any(c != "ACT" for c in g.successors(q))
    if calls_programs and q in expanded:
        parent.add(f"{label} [dim](see above)[/]")
        return
    expanded.add(q)
    node = parent.add(label)
    for callee in g.successors(q):
        if callee == "ACT":
            actions = ", ".join(g[q][callee].get("actions", ()))
            node.add(f"ACT [dim]{actions}[/]")
        else:
            _grow(node, g, callee, path + (q,), expanded)


def register(app: typer.Typer) -> None:
    app.command()(check)
    app.command()(graph)
