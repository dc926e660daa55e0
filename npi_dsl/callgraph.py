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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from npi_dsl.digraph import component_heights, reachable, strongly_connected_components
from npi_dsl.trace_schema import ACT

if TYPE_CHECKING:
    import networkx as nx

    from npi_dsl import ast
    from npi_dsl.checked import ProgramInfo


@dataclass(frozen=True)
class CallGraph:
    """The call graph in plain dicts, what the checker and the code generator use (without
    importing networkx); `to_networkx` gives the `DiGraph` of `Checked.graph` and `npi graph`.

    `nodes` maps each node (ACT first, then the qualified program names, sorted) to its
    attributes: kind, name, params, file, recursion, level. `edges` maps a caller to its
    callees, in the order of their first call site, each with the number of call sites
    (`calls`) and, into ACT, the actions called (`actions`).
    """

    nodes: dict[str, dict[str, Any]]
    edges: dict[str, dict[str, dict[str, Any]]]

    def successors(self, q: str) -> list[str]:
        return list(self.edges.get(q, ()))

    def descendants(self, q: str) -> set[str]:
        """Every node `q` reaches by one or more calls (networkx's `descendants`)."""
        return reachable([q], self.successors) - {q}

    def has_edge(self, a: str, b: str) -> bool:
        return b in self.edges.get(a, ())

    def to_networkx(self) -> nx.DiGraph:
        """The same graph as a networkx `DiGraph`, attributes copied."""
        import networkx as nx

        g = nx.DiGraph()
        for q, attrs in self.nodes.items():
            g.add_node(q, **{k: list(v) if isinstance(v, list) else v
                             for k, v in attrs.items()})
        for q, callees in self.edges.items():
            for callee, attrs in callees.items():
                g.add_edge(q, callee, calls=attrs["calls"], actions=list(attrs["actions"]))
        return g


def call_graph(programs: Mapping[str, ProgramInfo],
               calls: Mapping[str, Sequence[tuple[str, ast.CallStmt, bool]]]) -> CallGraph:
    """The call graph of the checked programs and their call sites (callee, call, tail)."""
    nodes: dict[str, dict[str, Any]] = {
        ACT: {"kind": "act", "name": ACT, "params": [], "recursion": "none", "level": 0,
              "file": None}}
    for q, info in sorted(programs.items()):
        nodes[q] = {"kind": "program", "name": info.name, "params": list(info.params),
                    "file": info.file.path, "recursion": "none", "level": 1}
    edges: dict[str, dict[str, dict[str, Any]]] = {}
    for q, sites in calls.items():
        for callee, node, _tail in sites:
            edge = edges.setdefault(q, {}).setdefault(callee, {"calls": 0, "actions": []})
            edge["calls"] += 1
            if callee == ACT and node.name not in edge["actions"]:
                edge["actions"].append(node.name)
    graph = CallGraph(nodes, edges)
    components = strongly_connected_components(list(nodes), graph.successors)
    # recursion classes
    for scc in components:
        members = set(scc)
        if len(scc) == 1 and not graph.has_edge(scc[0], scc[0]):
            continue
        for q in scc:
            back = [tail for callee, _n, tail in calls.get(q, ()) if callee in members]
            if back:
                nodes[q]["recursion"] = "tail" if all(back) else "general"
            else:
                nodes[q]["recursion"] = "tail"  # in a cycle only through others' calls
    # levels on the condensation: ACT is 0, a program one more than the highest program it
    # calls (the height of its component with ACT left out)
    def program_calls(q: str) -> list[str]:
        return [c for c in graph.successors(q) if c != ACT]

    for scc, height in zip(components, component_heights(components, program_calls),
                           strict=True):
        if scc != [ACT]:
            for q in scc:
                nodes[q]["level"] = height
    return graph


def build_call_graph(programs: Mapping[str, ProgramInfo],
                     calls: Mapping[str, Sequence[tuple[str, ast.CallStmt, bool]]]
                     ) -> nx.DiGraph:
    """The call graph as a networkx `DiGraph` (`call_graph(...).to_networkx()`)."""
    return call_graph(programs, calls).to_networkx()


def graph_json(g: nx.DiGraph) -> dict[str, Any]:
    """networkx node-link data with the key `edges` (readable by `node_link_graph`)."""
    import networkx as nx

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
