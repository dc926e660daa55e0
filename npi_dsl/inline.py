"""Environment operations the interpreter may inline into generated code (an optimisation).

A Python call costs about as much as the work of a scratch-pad action, and a run makes one
per action, query and observation. An `InlineSpec` lends the code generator Python source for
those operations over the environment's state, bound once per instance: `MOVE(in1, LEFT)`
becomes four lines on the pad's lists instead of a call into the environment.

The contract is strict, because the inlined code must do exactly what the environment does:

* `state(env)` returns the objects the snippets name (mutable containers the environment
  changes only in place), or None when this instance does not look as the spec expects (the
  interpreter then calls the environment as usual);
* a snippet may handle only the legal case and must call `fail` (the environment's own action
  with the same arguments) otherwise, so that errors are the environment's own;
* queries must not change the state, and actions must change nothing but what the
  environment's action changes: the observation, the result, `snapshot()` must agree.

An environment class offers its spec with a classmethod `npi_inline() -> InlineSpec | None`
(docs/environments.md, "Speed"); the built-in scratch pad's is in npi_dsl/envs/scratchpad.py,
so that only the environment's own module knows its private state. Return None from a
subclass whose actions differ. tests/interp/test_interp_properties.py checks inlined and plain
execution byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from npi_dsl.envs.base import Environment

#: (arguments as Python code: int literals or local names, a fresh local name, the fallback
#: call as code) -> the lines of the operation, or None to call the environment instead
ActionSnippet = Callable[[tuple[str, str], str, str], list[str] | None]
QuerySnippet = Callable[[tuple[str, ...]], str | None]


@dataclass(frozen=True)
class InlineSpec:
    names: tuple[str, ...]  # the names `state` binds, which the snippets use
    state: Callable[[Environment], dict[str, Any] | None]
    observe: str | None = None  # an expression of the observation tuple
    queries: dict[str, QuerySnippet] = field(default_factory=dict)
    actions: dict[int, ActionSnippet] = field(default_factory=dict)


def literal(code: str) -> int | None:
    """The value of a snippet argument that is an int literal; None for a local's name."""
    return int(code) if code.lstrip("-").isdigit() else None


def spec_for(env_class: type[Environment]) -> InlineSpec | None:
    """The inline spec of an environment class: what its `npi_inline()` returns, if any."""
    own = getattr(env_class, "npi_inline", None)
    if callable(own):
        spec = own()
        return spec if isinstance(spec, InlineSpec) else None
    return None
