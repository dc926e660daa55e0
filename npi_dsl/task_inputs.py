"""Task inputs: `input a, b where EXPR` and `expect EXPR` (docs/language.md, "Task inputs").

* `TaskInputs` is what the checker makes of a task's `input`, `where` and `expect` fields:
  the names of the environment's input parts, the constraint, the expected-result expression.
* `check_expr` types a task expression (E512-E515); `evaluate` computes one.
* `shape_of` finds the conjuncts of a `where` the environment can build in (`b < 10`,
  `a >= b`); `sample` draws inputs under the constraint by rejection with the per-trace rng
  (deterministic), giving up after `MAX_REJECTIONS` draws in a row (ConstraintError).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from npi_dsl import ast
from npi_dsl.builtins import BUILTINS, ValueType
from npi_dsl.envs.base import JSON, EnvError, Environment, InputShape

#: draws a constraint may reject in a row before a compile gives up
MAX_REJECTIONS = 1000

_INT_OPS = {"+", "-", "*", "/", "%"}
_ORDER = {"<", "<=", ">", ">="}


class ConstraintError(EnvError):
    """No input of a length satisfies a task's `where` (exit 1: the program file is wrong)."""


@dataclass(frozen=True)
class TaskInputs:
    """A task's input names (one per input part), its constraint and its expected result."""

    names: tuple[str, ...]
    where: ast.Expr | None
    where_text: str | None
    expect: ast.Expr | None  # None: the task's expect is an oracle (or absent)
    consts: dict[str, int | bool]


Problem = tuple[ast.Span, str, str, str | None]  # span, code, message, hint


def check_expr(e: ast.Expr, names: dict[str, ValueType], consts: dict[str, int | bool],
               problems: list[Problem]) -> ValueType | None:
    """The type of a task expression; its problems are appended (None: unknown type)."""
    match e:
        case ast.IntLit():
            return "int"
        case ast.BoolLit():
            return "bool"
        case ast.Name(name=n, span=span):
            if n in names:
                return names[n]
            if n in consts:
                return "bool" if type(consts[n]) is bool else "int"
            known = ", ".join(names) or "none"
            problems.append((span, "E512", f"unknown name `{n}` in a task expression",
                             f"booleans are lower case: did you mean `{n.lower()}`?"
                             if n in ("True", "False") else f"the input names are: {known}"))
            return None
        case ast.QueryCall(name=n, args=args, name_span=ns, span=span):
            types = [check_expr(a, names, consts, problems) for a in args]
            b = BUILTINS.get(n)
            if b is None:
                problems.append((ns, "E513", f"unknown function `{n}` in a task expression",
                                 f"built-ins: {', '.join(BUILTINS)}"))
                return None
            if len(args) != len(b.params):
                problems.append((span, "E514", f"`{n}` takes {len(b.params)} argument"
                                 f"{'s' * (len(b.params) != 1)}, got {len(args)}",
                                 f"{n}({', '.join(b.params)})"))
                return b.returns
            for a, t, want in zip(args, types, b.params, strict=True):
                if t is not None and t != want:
                    problems.append((a.span, "E515", f"`{n}` needs {_an(want)} here, got "
                                     f"{_an(t)}", f"{n}({', '.join(b.params)})"))
            return b.returns
        case ast.Unary(op=op, operand=o):
            t = check_expr(o, names, consts, problems)
            want: ValueType = "bool" if op == "not" else "int"
            if t is not None and t != want:
                problems.append((o.span, "E515", f"`{op}` needs {_an(want)}, got {_an(t)}",
                                 None))
            return want
        case ast.Binary(op=op, left=lft, right=rgt):
            a = check_expr(lft, names, consts, problems)
            b2 = check_expr(rgt, names, consts, problems)
            if op in ("and", "or"):
                want, out = "bool", "bool"
            elif op in _INT_OPS or op in _ORDER:
                want, out = "int", ("int" if op in _INT_OPS else "bool")
            else:  # == and != compare any two values of the same type
                if a is not None and b2 is not None and a != b2:
                    problems.append((e.span, "E515", f"`{op}` compares {_an(a)} with "
                                     f"{_an(b2)}", "compare values of the same type"))
                return "bool"
            for side, t in ((lft, a), (rgt, b2)):
                if t is not None and t != want:
                    problems.append((side.span, "E515", f"`{op}` needs {_an(want)}, got "
                                     f"{_an(t)}", None))
            return out
    return None  # pragma: no cover


def _an(t: str) -> str:
    return {"int": "a number", "bool": "a boolean", "list": "a list"}.get(t, t)


def evaluate(e: ast.Expr, env: dict[str, Any]) -> Any:
    """The value of a checked task expression; EnvError on division by zero or an empty
    list's min/max."""
    match e:
        case ast.IntLit(value=v) | ast.BoolLit(value=v):
            return v
        case ast.Name(name=n):
            return env[n]
        case ast.QueryCall(name=n, args=args):
            values = [evaluate(a, env) for a in args]
            try:
                return BUILTINS[n].fn(*values)
            except ValueError as err:
                raise EnvError(f"`{n}` failed: {err}") from None
        case ast.Unary(op=op, operand=o):
            v = evaluate(o, env)
            return (not v) if op == "not" else -v
        case ast.Binary(op="and", left=lft, right=rgt):
            return evaluate(lft, env) and evaluate(rgt, env)
        case ast.Binary(op="or", left=lft, right=rgt):
            return evaluate(lft, env) or evaluate(rgt, env)
        case ast.Binary(op=op, left=lft, right=rgt):
            a, b = evaluate(lft, env), evaluate(rgt, env)
            return _OPS[op](a, b)
    raise AssertionError(f"unexpected expression {e!r}")  # pragma: no cover


def _div(a: int, b: int) -> int:
    if b == 0:
        raise EnvError("division by zero in a task expression")
    return a // b


def _mod(a: int, b: int) -> int:
    if b == 0:
        raise EnvError("division by zero (`%`) in a task expression")
    return a % b


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": _div, "%": _mod,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


# ---------------------------------------------------------------- running a task's inputs


def bindings(spec: TaskInputs, env: Environment, value: JSON) -> dict[str, Any]:
    """The names a task expression sees for a normalised input."""
    return {**spec.consts, **dict(zip(spec.names, env.input_values(value), strict=True))}


def satisfies(spec: TaskInputs, env: Environment, value: JSON) -> bool:
    return spec.where is None or bool(evaluate(spec.where, bindings(spec, env, value)))


def check_input(spec: TaskInputs, env: Environment, value: JSON) -> None:
    """EnvError naming the constraint when a given input breaks the task's `where`."""
    if not satisfies(spec, env, value):
        raise EnvError(f"the input breaks the task's constraint `where {spec.where_text}`")


def expected(spec: TaskInputs, env: Environment, value: JSON) -> JSON:
    """The value of `expect EXPR` for an input, in the environment's result form."""
    assert spec.expect is not None
    return env.result_form(evaluate(spec.expect, bindings(spec, env, value)))


def sample(spec: TaskInputs, env: Environment, rng: random.Random, length: int) -> JSON:
    """An input of `length` that satisfies the constraint: shaped draws (`shape_of`), then
    rejection with the same rng; ConstraintError after MAX_REJECTIONS draws in a row."""
    shape = shape_of(spec)
    for _ in range(MAX_REJECTIONS):
        value = env.parse_input(env.sample_shaped(rng, length, shape))
        if satisfies(spec, env, value):
            return value
    raise ConstraintError(f"the constraint `where {spec.where_text}` rejected "
                          f"{MAX_REJECTIONS:,} inputs of length {length} in a row: no input of "
                          "that length may satisfy it; loosen it or choose other lengths")


def shape_of(spec: TaskInputs) -> InputShape:
    """The conjuncts of `where` an environment can build in: `NAME < INT`, `NAME <= INT`,
    `INT > NAME`, `INT >= NAME` (a bound) and `NAME >= NAME`, `NAME > NAME` (an order)."""
    below: dict[int, int] = {}
    ordered: list[tuple[int, int]] = []
    index = {n: i for i, n in enumerate(spec.names)}
    stack = [] if spec.where is None else [spec.where]
    while stack:
        e = stack.pop()
        if isinstance(e, ast.Binary) and e.op == "and":
            stack += [e.left, e.right]
            continue
        if not isinstance(e, ast.Binary) or e.op not in _ORDER:
            continue
        op, lft, rgt = e.op, e.left, e.right
        if op in (">", ">="):  # flip to < / <=
            op, lft, rgt = ("<" if op == ">" else "<="), rgt, lft
        if isinstance(lft, ast.Name) and lft.name in index and isinstance(rgt, ast.IntLit):
            bound = rgt.value + (op == "<=")
            i = index[lft.name]
            below[i] = min(bound, below.get(i, bound))
        elif isinstance(lft, ast.Name) and isinstance(rgt, ast.Name) and \
                lft.name in index and rgt.name in index:
            ordered.append((index[rgt.name], index[lft.name]))  # rgt >= lft
    return InputShape(below, tuple(ordered))
