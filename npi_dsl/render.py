"""The execution tree of `npi run`, in the style of the paper's Figure 3.

Nested program calls, ACT steps with decoded arguments (`WRITE out 1`, `MOVE carry LEFT`),
optionally the environment as it was when each frame started (replayed from the trace's ACT
steps on a fresh environment, so the tree shows exactly what the trace records). Return steps
are not drawn: a frame's children end where it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from npi_dsl.envs.base import Environment, Vocabulary
from npi_dsl.trace import ACT


def action_decoder(vocab: Vocabulary) -> Callable[[list[int]], str]:
    """`[action_id, a1, a2]` -> `WRITE out 1`: names for arguments of a named kind."""
    by_kind: dict[str, dict[int, str]] = {}
    for kind, members in vocab.kinds.items():
        by_kind[kind] = {vocab.names[m]: m for m in members if m in vocab.names}

    def decode(call_args: list[int]) -> str:
        aid, *args = call_args
        if not 0 <= aid < len(vocab.actions):
            return f"action {aid} {' '.join(map(str, args))}"
        spec = vocab.actions[aid]
        words = [spec.name]
        for kind, value in zip(spec.params, args, strict=False):
            words.append(by_kind.get(kind, {}).get(value, str(value)))
        return " ".join(words)

    return decode


def execution_tree(steps: list[dict[str, Any]], vocab: Vocabulary, *,
                   arity: dict[str, int] | None = None, env: Environment | None = None,
                   limit: int = 1000, title: RenderableType | None = None) -> Tree:
    """A rich Tree of the steps; at most `limit` nodes, then a note of what was left out.

    `arity` gives the number of parameters of each program (bare name), so that calls show
    `GO(3)` rather than `GO(3, 0, 0)`; `env`, already reset to the trace's input, adds the
    environment's rendering at the start of every frame (it is advanced by the ACT steps).
    """
    decode = action_decoder(vocab)
    arity = arity or {}

    def label(program: str, args: list[int], frame: int) -> RenderableType:
        n = arity.get(program, 3 if any(args) else 0)
        shown = f"({', '.join(map(str, args[:n]))})" if n else ""
        text = Text.from_markup(f"[bold]{escape(program)}[/]{escape(shown)}")
        if env is None:
            return text
        return Group(text, Text(env.render(), style="dim"))

    root: Tree | None = None
    stack: list[Tree] = []
    nodes = 0
    left_out = 0
    started = -1
    for step in steps:
        frame = step["frame"]
        if frame > started:  # the first step of a new frame
            started = frame
            node_label = label(step["program"], step["args"], frame)
            if root is None:
                root = Tree(Group(title, node_label) if title is not None else node_label,
                            guide_style="dim")
                stack.append(root)
            elif nodes < limit:
                stack.append(stack[-1].add(node_label))
                nodes += 1
            else:
                left_out += 1
                stack.append(stack[-1])
        call = step["call"]
        if call == ACT:
            if nodes < limit:
                stack[-1].add(Text.from_markup(f"[dim]ACT[/] {escape(decode(step['call_args']))}"))
                nodes += 1
            else:
                left_out += 1
            if env is not None:
                env.act(*step["call_args"])
        elif call is None:
            stack.pop()
    if root is None:
        return Tree("(no steps)")
    if left_out:
        root.add(Text(f"... {left_out:,} more calls not shown (raise --limit, or use --json)",
                      style="yellow"))
    return root
