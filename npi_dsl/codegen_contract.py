"""The contract between the code generator (`npi_dsl/codegen.py`) and the runner that
executes its output (`npi_dsl/interpreter.py`): one object, `LAYOUT`, that both import.

It names everything that crosses from one to the other:

* the factory the generated module defines and its parameters, in order (`factory`,
  `factory_params`): the runner calls it once per environment binding;
* the helpers the generated code calls (`helpers`: name -> function), all of which raise
  `Abort` (a budget, a bad argument, a division by zero) for the runner to turn into an
  `NpiRuntimeError`; the runner puts exactly these into the module's namespace;
* the locals of a program function the runner reads back to locate an error (`frame`,
  `depth`, `params`; `frame_of` reads them from a Python frame);
* `RunState`: the driver of recursive frames keeps its stack of suspended generator frames on
  it (`state.stack`), where the runner finds them when a run fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Abort(Exception):
    """Raised by the generated code's helpers; the runner turns it into NpiRuntimeError.

    `kind` is one of "loop" (iterations, fragments), "depth" (depth, callee), "arg" (callee,
    index, value), "int" (the local whose new value is outside the 64-bit range), "zero" (site
    index, operator); `data` holds the values named.
    """

    def __init__(self, kind: str, *data: Any) -> None:
        super().__init__(kind, *data)
        self.kind = kind
        self.data = data


def _loop_budget(iterations: int, pieces: int) -> None:
    raise Abort("loop", iterations, pieces)


def _too_deep(depth: int, callee: str) -> None:
    raise Abort("depth", depth, callee)


def _bad_arg(callee: str, index: int, value: Any) -> None:
    raise Abort("arg", callee, index, value)


def _overflow(name: str) -> None:
    raise Abort("int", name)


def _div(a: int, b: int, site: int) -> int:
    if b == 0:
        raise Abort("zero", site, "/")
    return a // b


def _mod(a: int, b: int, site: int) -> int:
    if b == 0:
        raise Abort("zero", site, "%")
    return a % b


def _act_fail(_: object) -> None:
    """After an inlined action found its arguments illegal, the env's action must raise."""
    raise AssertionError("an inline spec disagrees with its environment: the environment "
                         "accepted an action the spec rejected")


class RunState:
    """What the generated driver leaves for the runner: the suspended generator frames of the
    current run (`stack`, empty for a run of plain functions)."""

    __slots__ = ("stack",)

    def __init__(self) -> None:
        self.stack: list[Any] = []


@dataclass(frozen=True)
class Layout:
    """Names shared by the generated code and the runner (see the module docstring)."""

    frame: str = "f"  # a program function's frame id parameter
    depth: str = "d"  # ... and its depth parameter
    params: tuple[str, str, str] = ("a0", "a1", "a2")  # ... then the program's parameters
    factory: str = "_make"
    #: observe(), observation cache, the fragment list, queries by name, actions by id,
    #: the inline spec's state, depth budget, fragment budget, loop budget, the RunState
    factory_params: tuple[str, ...] = ("ob", "oc", "out", "QUERIES", "ACTIONS", "STATE",
                                       "MAXD", "LIM", "MAXIT", "RUN")
    loop_budget: str = "_loop_budget"
    too_deep: str = "_too_deep"
    bad_arg: str = "_bad_arg"
    overflow: str = "_overflow"
    div: str = "_div"
    mod: str = "_mod"
    act_fail: str = "_act_fail"
    functions: dict[str, Callable[..., Any]] = field(default_factory=lambda: {
        "loop_budget": _loop_budget, "too_deep": _too_deep, "bad_arg": _bad_arg,
        "overflow": _overflow, "div": _div, "mod": _mod, "act_fail": _act_fail})

    @property
    def helpers(self) -> dict[str, Callable[..., Any]]:
        """The generated module's namespace of helpers: generated name -> function."""
        return {getattr(self, role): fn for role, fn in self.functions.items()}

    def frame_of(self, f_locals: dict[str, Any]) -> tuple[tuple[int, int, int], int, int]:
        """(args, frame id, depth) of a program function's Python frame."""
        a0, a1, a2 = self.params
        return ((f_locals.get(a0, 0), f_locals.get(a1, 0), f_locals.get(a2, 0)),
                f_locals.get(self.frame, 0), f_locals.get(self.depth, 0))


LAYOUT = Layout()
