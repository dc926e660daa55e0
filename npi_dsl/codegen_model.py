"""What the code generator knows about the code it makes, apart from making it: the npi frames
and statement a generated line runs (`Level`, `Site`), the generated module (`Generated`),
and the static analyses that choose how a program is compiled (`generator_programs`,
`measure`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from npi_dsl import ast
from npi_dsl.checker import Checked


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
    index = set(order)
    g = nx.DiGraph()
    g.add_nodes_from(order)
    for a, b in checked.graph.edges():
        if a in index and b in index:
            g.add_edge(a, b)
    cond = nx.condensation(g)
    reaches: dict[int, bool] = {}
    height: dict[int, int] = {}
    for c in reversed(list(nx.topological_sort(cond))):
        members = cond.nodes[c]["members"]
        cyclic = len(members) > 1 or any(g.has_edge(m, m) for m in members)
        succ = list(cond.successors(c))
        reaches[c] = cyclic or any(reaches[s] for s in succ)
        height[c] = 1 + max((height[s] for s in succ), default=0)
    if max(height.values(), default=0) > max_plain_height:
        return set(order)
    mapping = cond.graph["mapping"]
    return {q for q in order if reaches[mapping[q]]}


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
