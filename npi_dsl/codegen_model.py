"""What the code generator knows about the code it makes, apart from making it: the npi frames
and statement a generated line runs (`Level`, `Site`), the generated module (`Generated`),
and the static analyses that choose how a program is compiled (`generator_programs`,
`measure`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from npi_dsl import ast
from npi_dsl.checker import Checked
from npi_dsl.digraph import component_heights, reachable, strongly_connected_components


@dataclass(frozen=True)
class Level:
    """One npi frame run by a Python frame: the function's own program or an inlined callee."""

    program: str  # qualified name
    frame: str  # Python name (in the function's locals) of its frame id
    depth: int  # added to the function's `d`
    args: tuple[str, ...]  # its three arguments: int literals or names of locals
    path: str
    call_span: ast.Span | None = None  # where it calls the next level (None for the last)


@dataclass(frozen=True)
class Site:
    """What a generated line executes: the npi frames (outermost first) and the statement."""

    levels: tuple[Level, ...]
    path: str
    span: ast.Span


@dataclass
class Generated:
    source: str
    linemap: dict[int, Site]
    sites: list[Site]  # for helpers that name their site (division by zero)
    tables: dict[str, Any]
    queries: list[str]
    actions: list[int]
    generators: set[str]


def generator_programs(checked: Checked, order: list[str], max_plain_height: int) -> set[str]:
    """Programs that can reach a recursive cycle (or all, when a chain of calls is more than
    `max_plain_height` programs high)."""
    inside = set(order)
    graph = checked.call_graph

    def calls(q: str) -> list[str]:  # the call graph restricted to `order`
        return [c for c in graph.successors(q) if c in inside]

    components = strongly_connected_components(order, calls)
    # a chain of calls is as many programs high as the longest path of components
    if order and max(component_heights(components, calls)) > max_plain_height:
        return set(order)
    cyclic = {m for c in components for m in c if len(c) > 1 or graph.has_edge(m, m)}
    # everything with a path into a cycle (the cycles' programs too)
    callers: dict[str, list[str]] = {}
    for q in order:
        for c in calls(q):
            callers.setdefault(c, []).append(q)
    reaching = cyclic | reachable(cyclic, lambda q: callers.get(q, ()))
    return {q for q in order if q in reaching}


def closing(span: ast.Span) -> ast.Span:
    """The span of a block's closing brace."""
    return ast.Span(span.end_line, max(1, span.end_column - 1), span.end_line, span.end_column)


def measure(stmts: tuple[ast.Stmt, ...], top: bool) -> tuple[int, bool]:
    """(number of statements, whether a `return` occurs anywhere but last at the top)."""
    count = 0
    early = False
    for i, s in enumerate(stmts):
        count += 1
        match s:
            case ast.Return():
                if not (top and i == len(stmts) - 1):
                    early = True
            case ast.If(branches=branches, orelse=orelse):
                for br in branches:
                    c, e = measure(br.body.stmts, False)
                    count, early = count + c, early or e
                if orelse is not None:
                    c, e = measure(orelse.stmts, False)
                    count, early = count + c, early or e
            case ast.While(body=body):
                c, e = measure(body.stmts, False)
                count, early = count + c, early or e
    return count, early
