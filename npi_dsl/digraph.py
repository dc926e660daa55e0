"""The few directed-graph algorithms the checker and the code generator need, on plain
successor functions: strongly connected components, reachability, heights of components.

networkx has them all, but importing it costs more CPU than checking a program (about 0.3 s
against a few milliseconds), so `npi check` and `npi compile` use these; the call graph's
networkx `DiGraph` (npi_dsl.callgraph) is built only for who asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TypeVar

N = TypeVar("N", bound=Hashable)


def strongly_connected_components(nodes: Iterable[N],
                                  successors: Callable[[N], Iterable[N]]) -> list[list[N]]:
    """Tarjan's algorithm, iterative (no recursion limit): the components in reverse
    topological order, each after every component it reaches."""
    index: dict[N, int] = {}
    low: dict[N, int] = {}
    stack: list[N] = []
    on_stack: set[N] = set()
    found: list[list[N]] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[N, Iterator[N]]] = [(root, iter(successors(root)))]
        while work:
            v, todo = work[-1]
            for w in todo:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(successors(w))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    u = work[-1][0]
                    low[u] = min(low[u], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    found.append(component)
    return found


def reachable(starts: Iterable[N], successors: Callable[[N], Iterable[N]]) -> set[N]:
    """Every node on a path of one or more edges from a node of `starts` (a start itself
    only when it lies on a cycle or another start reaches it)."""
    seen: set[N] = set()
    todo = [w for s in starts for w in successors(s)]
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo.extend(successors(v))
    return seen


def component_heights(components: list[list[N]],
                      successors: Callable[[N], Iterable[N]]) -> list[int]:
    """For components in reverse topological order (`strongly_connected_components`), the
    number of components on the longest path of the condensation that starts at each."""
    where = {v: i for i, c in enumerate(components) for v in c}
    heights: list[int] = []
    for i, component in enumerate(components):
        below = (heights[where[w]] for v in component for w in successors(v) if where[w] != i)
        heights.append(1 + max(below, default=0))
    return heights
