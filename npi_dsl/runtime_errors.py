"""Runtime errors of symbolic execution (codes R001-R007), shared by both engines.

`NpiRuntimeError` is what every run raises on a runtime error, a budget exceeded or a wrong
result; the functions below word each kind of failure once, so that the compiled engine
(`npi_dsl/interpreter.py`) and the reference interpreter (`npi_dsl/reference.py`) report the
same codes with the same messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from npi_dsl import ast
from npi_dsl.checker import Checked, TaskInfo
from npi_dsl.diagnostics import Diagnostic
from npi_dsl.envs.base import JSON, EnvError, Vocabulary
from npi_dsl.errors import NpiError

#: errors keep the executed steps for display when the run was at most this long
KEEP_PARTIAL_STEPS = 20_000
#: call-stack entries shown at each end of a long call stack
_STACK_SHOWN = 8

STEPS_HINT = "an infinite loop? if the run is legitimately long, raise --max-steps"

_dumps = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True)
class StackEntry:
    """One frame of the call stack at an error: what it runs and where it is."""

    program: str  # qualified name
    args: tuple[int, int, int]
    frame: int
    depth: int
    path: str
    span: ast.Span  # the statement the frame is executing (a call, for every frame but the top)
    arity: int = 3  # how many of `args` are the program's parameters

    @property
    def name(self) -> str:
        return Checked.bare(self.program)

    def describe(self) -> str:
        args = ", ".join(str(a) for a in self.args[: self.arity])
        return (f"{self.name}({args}) frame {self.frame}, depth {self.depth}, at "
                f"{self.path}:{self.span.line}:{self.span.column}")


class NpiRuntimeError(NpiError):
    """A run of a reference program went wrong: a runtime error, a budget, a wrong result.

    `diagnostic` locates it in the `.npi` source (codes R001-R007); `call_stack` lists the
    frames at the moment of the error, outermost first (empty for a wrong result).
    `steps` holds the steps executed before the error as dicts when the run was short
    (None otherwise); for a wrong result (R006), `record` is the whole trace record.
    """

    def __init__(self, diagnostic: Diagnostic, call_stack: list[StackEntry],
                 sources: dict[str, str] | None = None, *,
                 steps: list[dict[str, Any]] | None = None,
                 record: dict[str, Any] | None = None, steps_done: int = 0) -> None:
        self.diagnostic = diagnostic
        self.call_stack = call_stack
        self.sources = sources or {}
        self.steps = steps
        self.record = record
        self.steps_done = steps_done
        super().__init__(diagnostic.headline())

    @property
    def code(self) -> str:
        return self.diagnostic.code

    def render_stack(self) -> str:
        """The call stack, innermost frame first; long stacks keep both ends."""
        if not self.call_stack:
            return ""
        entries = list(reversed(self.call_stack))
        lines = ["  call stack (innermost first):"]
        if len(entries) > 2 * _STACK_SHOWN + 1:
            shown = entries[:_STACK_SHOWN]
            lines += [f"    {e.describe()}" for e in shown]
            lines.append(f"    ... {len(entries) - 2 * _STACK_SHOWN:,} more frames ...")
            lines += [f"    {e.describe()}" for e in entries[-_STACK_SHOWN:]]
        else:
            lines += [f"    {e.describe()}" for e in entries]
        return "\n".join(lines)

    def render(self) -> str:
        text = self.diagnostic.render(self.sources.get(self.diagnostic.path))
        stack = self.render_stack()
        return f"{text}\n{stack}" if stack else text


@dataclass(frozen=True)
class Failure:
    """What went wrong and where, before it becomes a Diagnostic."""

    code: str
    message: str
    hint: str | None
    path: str
    span: ast.Span

    def error(self, stack: list[StackEntry], sources: dict[str, str],
              steps: list[dict[str, Any]] | None, steps_done: int) -> NpiRuntimeError:
        diag = Diagnostic(self.path, self.span, "error", self.code, self.message, self.hint)
        return NpiRuntimeError(diag, stack, sources, steps=steps, steps_done=steps_done)


def where(top: StackEntry | None, task: TaskInfo) -> str:
    """How messages name the place of an error: the innermost frame, or the task."""
    return f"{top.name} at depth {top.depth}" if top else f"task `{task.name}`"


def too_many_steps(max_steps: int, place: str, path: str, span: ast.Span, *,
                   loop: bool) -> Failure:
    """R004 found while running: too many steps, or (`loop`) loop iterations without calls."""
    if loop:
        text = (f"more than {max_steps:,} loop iterations (in {place}); the loop makes "
                "no calls")
    else:
        text = f"more than {max_steps:,} steps (in {place})"
    return Failure("R004", f"step budget exceeded: {text}", STEPS_HINT, path, span)


def over_budget(steps: int, max_steps: int, task: TaskInfo) -> Failure:
    """R004 found at the end of a run."""
    return Failure("R004", f"step budget exceeded: the run took {steps:,} steps, more than "
                   f"the budget of {max_steps:,}", STEPS_HINT, task.file.path,
                   task.node.name_span)


def too_deep(place: str, callee: str, depth: int, max_depth: int, path: str,
             span: ast.Span) -> Failure:
    """R005: a frame at `depth` calls `callee` past the depth budget."""
    return Failure("R005", f"depth budget exceeded: {place} calls {callee}, whose frame would "
                   f"be at depth {depth + 1}, past the budget of {max_depth:,}",
                   "runaway recursion? if it is legitimate, raise --max-depth", path, span)


def bad_argument(callee: str, index: int, value: Any, vocab: Vocabulary, place: str,
                 path: str, span: ast.Span) -> Failure:
    """R002: argument `index` (from 0) of a call is outside [0, arg_range)."""
    return Failure("R002", f"argument {index + 1} of {callee} is {short(value)}, outside "
                   f"[0, {vocab.arg_range}) (in {place})",
                   f"NPI arguments are integers from 0 to {vocab.arg_range - 1} "
                   f"(env {vocab.env} arg_range)", path, span)


def overflow(name: str, place: str, path: str, span: ast.Span) -> Failure:
    """R007: a store makes `name` an integer outside the language's 64-bit range."""
    return Failure("R007", f"integer overflow: the new value of `{name}` is outside the 64-bit "
                   f"range -2^63 .. 2^63 - 1 (in {place})",
                   "npi integers are 64-bit; a value that keeps growing (`x = x * x` in a "
                   "loop) overflows", path, span)


def division_by_zero(op: str | None, place: str, path: str, span: ast.Span) -> Failure:
    """R001: the right side of `op` is 0 (op None: a ZeroDivisionError from elsewhere)."""
    if op is None:
        return Failure("R001", f"division by zero (in {place})", None, path, span)
    return Failure("R001", f"division by zero: the right side of `{op}` is 0 (in {place})",
                   None, path, span)


def exception_failure(exc: BaseException, place: str, path: str, span: ast.Span) -> Failure:
    """The failure of an exception raised by the environment (or Python) during a run."""
    if isinstance(exc, EnvError):
        return Failure("R003", f"environment error in {place}: {exc}", None, path, span)
    if isinstance(exc, ZeroDivisionError):
        return division_by_zero(None, place, path, span)
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        # an environment formatting a huge argument (one computed within an expression)
        return Failure("R003", f"environment error in {place}: an argument of a query or "
                       "action is an integer too large to show (over 4,300 digits)",
                       "npi integers are 64-bit: keep the values of expressions in range",
                       path, span)
    if isinstance(exc, RecursionError):
        return Failure("R005", f"Python recursion limit reached (in {place})", None, path,
                       span)
    return Failure("R003", f"environment error in {place}: {type(exc).__name__}: {exc}",
                   "the environment raised an unexpected exception", path, span)


def wrong_result(task: TaskInfo, value: JSON, result: JSON, expected: JSON,
                 sources: dict[str, str], record: dict[str, Any] | None,
                 steps_done: int) -> NpiRuntimeError:
    """R006: the task's result differs from its oracle's (`record`: the run, when short)."""
    field = task.node.field("expect") or task.node
    diag = Diagnostic(
        task.file.path, field.span, "error", "R006",
        f"wrong result: for input {short(value)} the task `{task.name}` gives "
        f"{short(result)}, expected {short(expected)} (expect {task.expect})",
        "the reference program is wrong for this input: run it with `npi run "
        "--input ...` to see its execution")
    return NpiRuntimeError(diag, [], sources, steps=record["steps"] if record else None,
                           record=record, steps_done=steps_done)


def short(value: JSON, limit: int = 80) -> str:
    """A value's JSON text, shortened in the middle past `limit` characters."""
    try:
        text = _dumps(value)
    except ValueError:  # an integer past Python's limit on digits converted to text
        text = "an integer too large to show"
    if len(text) > limit:
        return f"{text[: limit // 2]}...{text[-limit // 4:]} ({len(text):,} characters)"
    return text
