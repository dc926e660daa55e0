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

An environment class may offer its own spec with a classmethod `npi_inline() -> InlineSpec`;
the built-in scratch pad's is here. tests/interp/test_interp_properties.py checks inlined and
plain execution byte for byte.
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


def _literal(code: str) -> int | None:
    return int(code) if code.lstrip("-").isdigit() else None


# ------------------------------------------------------------------ the scratch pad

_DIGIT = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0)


def _scratchpad_state(env: Environment) -> dict[str, Any] | None:
    """The pad's lists, if this instance is laid out as the spec assumes (else None)."""
    try:
        rows, pos, cur, ncols = env._rows, env._pos, env._cur, env._ncols  # type: ignore[attr-defined]
        ok = (
            type(rows) is tuple and len(rows) == 4 and all(type(r) is list for r in rows)
            and type(pos) is list and len(pos) == 4 and type(cur) is list and len(cur) == 4
            and type(ncols) is list and len(ncols) == 1
            and all(len(r) == ncols[0] for r in rows)
            and all(cur[k] == rows[k][pos[k]] for k in range(4))
            and tuple(env.observe()) == tuple(cur)
        )
    except (AttributeError, IndexError, TypeError):
        return None
    if not ok:
        return None
    return {"R0": rows[0], "R1": rows[1], "R2": rows[2], "R3": rows[3], "POS": pos,
            "CUR": cur, "NC": ncols, "DIG": _DIGIT}


def _row(code: str) -> int | None:
    r = _literal(code)
    return r if r is not None and 0 <= r <= 3 else None


def _read(args: tuple[str, ...]) -> str | None:
    r = _row(args[0])
    return None if r is None else f"CUR[{r}]"


def _digit(args: tuple[str, ...]) -> str | None:
    r = _row(args[0])
    return None if r is None else f"DIG[CUR[{r}]]"


def _move(args: tuple[str, str], t: str, fail: str) -> list[str] | None:
    r, direction = _row(args[0]), _literal(args[1])
    if r is None or direction not in (0, 1):
        return None
    if direction == 0:
        head = [f"{t} = POS[{r}] - 1", f"if {t} < 0:"]
    else:
        head = [f"{t} = POS[{r}] + 1", f"if {t} >= NC[0]:"]
    return head + [f"    {fail}", f"POS[{r}] = {t}", f"CUR[{r}] = R{r}[{t}]"]


def _write(args: tuple[str, str], t: str, fail: str) -> list[str] | None:
    r, value = _row(args[0]), args[1]
    if r is None:
        return None
    lit = _literal(value)
    if lit is not None:
        if not 0 <= lit <= 9:
            return None
        check: list[str] = []
    else:  # a local already checked to be in [0, arg_range): only the top can be wrong
        check = [f"if {value} > 9:", f"    {fail}"]
    return check + [f"R{r}[POS[{r}]] = {value}", f"CUR[{r}] = {value}"]


SCRATCHPAD = InlineSpec(
    names=("R0", "R1", "R2", "R3", "POS", "CUR", "NC", "DIG"),
    state=_scratchpad_state,
    observe="(CUR[0], CUR[1], CUR[2], CUR[3])",
    queries={"read": _read, "digit": _digit},
    actions={0: _move, 1: _write},
)


def spec_for(env_class: type[Environment]) -> InlineSpec | None:
    """The inline spec of an environment class: its own `npi_inline()`, or a built-in one."""
    own = getattr(env_class, "npi_inline", None)
    if callable(own):
        spec = own()
        return spec if isinstance(spec, InlineSpec) else None
    from npi_dsl.envs.scratchpad import ScratchpadEnv

    if env_class is ScratchpadEnv:  # exactly: a subclass may change what an action does
        return SCRATCHPAD
    return None
