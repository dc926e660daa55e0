"""The call graph: program -> callee (ACT for actions), with levels and recursion classes.

Levels follow the paper's hierarchy: ACT is level 0; a program is one more than the highest
level of what it calls, strongly connected components (mutual recursion) condensed first.
Recursion is classified per program (Cai et al. 2017 depend on tail recursion):

* ``none``: the program is in no cycle of calls;
* ``tail``: every call it makes back into its cycle is the last thing it does;
* ``general``: some call back into its cycle has work after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import networkx as nx

from npi_dsl.trace import ACT

if TYPE_CHECKING:
    from npi_dsl import ast
    from npi_dsl.checked import ProgramInfo


def build_call_graph(programs: Mapping[str, ProgramInfo],
                     calls: Mapping[str, Sequence[tuple[str, ast.CallStmt, bool]]]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_node(ACT, kind="act", name=ACT, params=[], recursion="none", level=0, file=None)
    for q, info in sorted(programs.items()):
        g.add_node(q, kind="program", name=info.name, params=list(info.params),
                   file=info.file.path, recursion="none", level=1)
    for q, sites in calls.items():
        for callee, node, _tail in sites:
            if not g.has_edge(q, callee):
                g.add_edge(q, callee, calls=0, actions=[])
            edge = g[q][callee]
            edge["calls"] += 1
            if callee == ACT and node.name not in edge["actions"]:
                edge["actions"].append(node.name)
    # recursion classes
    for scc in nx.strongly_connected_components(g):
        cyclic = len(scc) > 1 or any(g.has_edge(n, n) for n in scc)
        if not cyclic:
            continue
        for q in scc:
            back = [tail for callee, _n, tail in calls.get(q, ()) if callee in scc]
            if back:
                g.nodes[q]["recursion"] = "tail" if all(back) else "general"
            else:
                g.nodes[q]["recursion"] = "tail"  # in a cycle only through others' calls
    # levels on the condensation
    cond = nx.condensation(g)
    level: dict[int, int] = {}
    for c in reversed(list(nx.topological_sort(cond))):
        members = cond.nodes[c]["members"]
        if members == {ACT}:
            level[c] = 0
            continue
        level[c] = 1 + max((level[s] for s in cond.successors(c)), default=0)
    for c, data in cond.nodes(data=True):
        for q in data["members"]:
            g.nodes[q]["level"] = level[c]
    return g


def graph_json(g: nx.DiGraph) -> dict[str, Any]:
    """networkx node-link data with the key `edges` (readable by `node_link_graph`)."""
    return nx.node_link_data(g, edges="edges")


def graph_dot(g: nx.DiGraph, title: str = "npi") -> str:
    """Graphviz text: one box per program labelled with its bare name, level and recursion."""
    lines = [f'digraph "{_dot_escape(title)}" {{', "  rankdir=TB;",
             "  node [shape=box, fontname=Helvetica];"]
    for q, d in sorted(g.nodes(data=True), key=lambda kv: (-kv[1]["level"], kv[0])):
        label = d["name"] if d["kind"] == "act" else f"{d['name']}({', '.join(d['params'])})"
        extra = f"\\nlevel {d['level']}"
        if d["recursion"] != "none":
            extra += f", {d['recursion']} recursion"
        shape = ', shape=ellipse' if d["kind"] == "act" else ""
        lines.append(f'  "{_dot_escape(q)}" [label="{label}{extra}"{shape}];')
    for a, b in sorted(g.edges()):
        lines.append(f'  "{_dot_escape(a)}" -> "{_dot_escape(b)}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_escape(s: str) -> str:
    """Quote-safe text for a Graphviz string: file stems (titles, qualified names) may hold
    quotes and backslashes."""
    return s.replace("\\", "\\\\").replace('"', '\\"')
