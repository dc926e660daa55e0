"""The call graph without networkx (npi_dsl.callgraph, npi_dsl.digraph) gives what the networkx
algorithms gave: the same `DiGraph` (node-link data byte for byte), the same reachability,
the same generator programs of the compiled engine; and check imports no networkx."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

from npi_dsl.callgraph import graph_json
from npi_dsl.checker import Checked, check_file
from npi_dsl.codegen_model import generator_programs
from npi_dsl.digraph import component_heights, reachable, strongly_connected_components
from npi_dsl.trace_schema import ACT

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SOURCES = sorted((ROOT / "programs").glob("*.npi")) + sorted(HERE.glob("*/**/*.npi")) + \
    sorted((ROOT / "tests" / "interp" / "programs").glob("*.npi"))


def _checked() -> list[tuple[str, Checked]]:
    out = []
    for path in SOURCES:
        report = check_file(path)
        if report.checked is not None:
            out.append((path.relative_to(ROOT).as_posix(), report.checked))
    return out


CHECKED = _checked()


def _networkx_graph(checked: Checked) -> nx.DiGraph:
    """The call graph as npi_dsl.callgraph built it with networkx before (the reference)."""
    g = nx.DiGraph()
    g.add_node(ACT, kind="act", name=ACT, params=[], recursion="none", level=0, file=None)
    for q, info in sorted(checked.programs.items()):
        g.add_node(q, kind="program", name=info.name, params=list(info.params),
                   file=info.file.path, recursion="none", level=1)
    sites = _sites(checked)
    for q, calls in sites.items():
        for callee, name, _tail in calls:
            if not g.has_edge(q, callee):
                g.add_edge(q, callee, calls=0, actions=[])
            edge = g[q][callee]
            edge["calls"] += 1
            if callee == ACT and name not in edge["actions"]:
                edge["actions"].append(name)
    for scc in nx.strongly_connected_components(g):
        if not (len(scc) > 1 or any(g.has_edge(n, n) for n in scc)):
            continue
        for q in scc:
            back = [tail for callee, _n, tail in sites.get(q, ()) if callee in scc]
            g.nodes[q]["recursion"] = ("tail" if all(back) else "general") if back else "tail"
    cond = nx.condensation(g)
    level: dict[int, int] = {}
    for c in reversed(list(nx.topological_sort(cond))):
        if cond.nodes[c]["members"] == {ACT}:
            level[c] = 0
            continue
        level[c] = 1 + max((level[s] for s in cond.successors(c)), default=0)
    for c, data in cond.nodes(data=True):
        for q in data["members"]:
            g.nodes[q]["level"] = level[c]
    return g


def _sites(checked: Checked) -> dict[str, list[tuple[str, str, bool]]]:
    """The call sites (callee, call name, tail) the checker records, from a run of its own."""
    from npi_dsl.checker import _Checker

    c = _Checker(checked.root.path)
    c.run()
    return {q: [(callee, node.name, tail) for callee, node, tail in calls]
            for q, calls in c.calls.items()}


def _networkx_generators(checked: Checked, order: list[str], height: int) -> set[str]:
    g = _networkx_graph(checked).subgraph(order)
    cond = nx.condensation(g)
    if g and nx.dag_longest_path_length(cond) + 1 > height:
        return set(order)
    cyclic = {m for c in cond for m in cond.nodes[c]["members"]
              if len(cond.nodes[c]["members"]) > 1 or g.has_edge(m, m)}
    h = nx.DiGraph(g)
    h.add_edges_from((m, "<cycles>") for m in cyclic)
    reaching = nx.ancestors(h, "<cycles>") if cyclic else set()
    return {q for q in order if q in reaching}


def test_the_corpus_has_recursion_and_imports() -> None:
    assert len(CHECKED) >= 40
    kinds = {d["recursion"] for _n, c in CHECKED for _q, d in c.graph.nodes(data=True)}
    assert kinds == {"none", "tail", "general"}


@pytest.mark.parametrize("name,checked", CHECKED, ids=[n for n, _c in CHECKED])
def test_the_graph_is_the_networkx_one(name: str, checked: Checked) -> None:
    expected = json.dumps(graph_json(_networkx_graph(checked)), default=str)
    assert json.dumps(graph_json(checked.graph), default=str) == expected
    g = checked.graph
    for q in checked.programs:
        assert checked.call_graph.descendants(q) == nx.descendants(g, q)
        assert checked.call_graph.successors(q) == list(g.successors(q))


@pytest.mark.parametrize("name,checked", CHECKED, ids=[n for n, _c in CHECKED])
def test_generator_programs_are_the_networkx_ones(name: str, checked: Checked) -> None:
    order = list(checked.program_order)
    for height in (1, 2, 3, 4, 100):
        assert generator_programs(checked, order, height) == \
            _networkx_generators(checked, order, height), height


def _random_graph(rng: random.Random) -> nx.DiGraph:
    n = rng.randint(0, 12)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for a in range(n):
        for b in range(n):
            if rng.random() < 0.15:
                g.add_edge(a, b)
    return g


def test_digraph_algorithms_agree_with_networkx() -> None:
    rng = random.Random(7)
    for _ in range(400):
        g = _random_graph(rng)
        succ = lambda v, g=g: list(g.successors(v))  # noqa: E731
        comps = strongly_connected_components(list(g), succ)
        assert sorted(map(sorted, comps)) == sorted(map(sorted,
                                                        nx.strongly_connected_components(g)))
        where = {v: i for i, c in enumerate(comps) for v in c}
        for a, b in g.edges():  # reverse topological: a component after those it reaches
            assert where[a] >= where[b]
        for v in g:
            assert reachable([v], succ) - {v} == nx.descendants(g, v)
        if len(g):
            cond = nx.condensation(g)
            assert max(component_heights(comps, succ)) == nx.dag_longest_path_length(cond) + 1


def test_deep_chains_need_no_recursion() -> None:
    n = 50_000
    succ = lambda v: [v + 1] if v + 1 < n else [0]  # noqa: E731
    comps = strongly_connected_components(range(n), succ)
    assert len(comps) == 1 and len(comps[0]) == n


def test_check_and_compile_import_no_networkx() -> None:
    code = (
        "import sys\n"
        "from npi_dsl.checker import load\n"
        "from npi_dsl.interpreter import compile_task\n"
        f"c = load({str(ROOT / 'programs' / 'addition.npi')!r})\n"
        "compile_task(c, 'add')\n"
        "print(sorted(m for m in ('networkx', 'torch', 'numpy') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
