"""The reference interpreter: what a run of an `.npi` program means, written the obvious way.

This is the definition of the language's execution semantics (docs/tasks.md, DESIGN.md): a
tree-walking interpreter over the checked AST, with Python recursion for frames, dict steps
and no caching. The compiled engine (npi_dsl/interpreter.py) must produce the same traces
byte for byte; tests/interp/test_engines.py checks that on every bundled program and on
generated programs. Select it with `npi run --engine reference` or
`compile_task(..., engine="reference")`.

* A frame runs its body; each call (a program, or an action as `ACT`) is one step with the
  observation before the call; the frame ends with one return step (`call = null`).
* Arguments are evaluated left to right, each checked to be in [0, arg_range) (booleans are
  1 and 0): R002. Division and remainder round towards minus infinity (Python's `//`, `%`);
  by zero: R001. Anything the environment raises: R003.
* A call from a frame at depth `max_depth` fails (R005). The step budget (R004) is checked at
  every loop iteration (`max_steps` iterations of all loops of a run at most), at every
  program call and at the end of the run.

Differences from the compiled engine, by design: the compiled engine checks the step budget
at loop iterations and recursive calls only, so the two may word an R004 differently (same
code); frames nest in Python's recursion here, so very deep recursion ends in R005 ("Python
recursion limit reached") where the compiled engine goes on to its depth budget.
"""

from __future__ import annotations

from typing import Any

from npi_dsl import ast
from npi_dsl import runtime_errors as rt
from npi_dsl.checker import Checked, FileInfo, TaskInfo
from npi_dsl.envs.base import JSON, Environment
from npi_dsl.parser import MAX_INT, MIN_INT
from npi_dsl.runner_base import RunnerBase
from npi_dsl.trace_schema import ACT, dumps, make_step

_COMPARE = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


class _Return(Exception):
    """`return`: ends the frame's body."""


class _Stop(Exception):
    """A runtime error found by the interpreter itself."""

    def __init__(self, failure: rt.Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class _Frame:
    """A running frame: what it runs and the statement it is at."""

    __slots__ = ("program", "name", "frame", "depth", "args", "path", "span", "arity")

    def __init__(self, program: str, checked: Checked, frame: int, depth: int,
                 args: list[int]) -> None:
        info = checked.programs[program]
        self.program, self.name, self.frame, self.depth = program, info.name, frame, depth
        self.args, self.path, self.span = args, info.file.path, info.node.name_span
        self.arity = len(info.params)

    def entry(self) -> rt.StackEntry:
        return rt.StackEntry(self.program, (self.args[0], self.args[1], self.args[2]),
                          self.frame, self.depth, self.path, self.span, self.arity)


class ReferenceRunner(RunnerBase):
    """A task run by the reference interpreter; the methods of `TaskRunner`."""

    engine = "reference"

    def __init__(self, checked: Checked, task: TaskInfo, max_steps: int,
                 max_depth: int) -> None:
        super().__init__(checked, task, max_steps, max_depth)
        self.env = self.new_env()
        self._env: Environment = self.env
        self._steps: list[dict[str, Any]] = []
        self._stack: list[_Frame] = []
        self._frames = 0
        self._iterations = 0

    # ---- running
    def run(self, input: JSON, seed: int | None = None) -> dict[str, Any]:
        """Run the task on an input; the npi-trace/1 record (keys in schema order)."""
        value = self.parse_input(input)
        result, steps = self._execute(value)
        return self.record(seed, value, result, steps)

    def run_line(self, input: JSON, seed: int | None = None, *,
                 normalized: bool = False) -> str:
        """The record of `run` as one line of JSON text (no newline)."""
        value = input if normalized else self.parse_input(input)
        result, steps = self._execute(value)
        self.last_steps = len(steps)
        return dumps(self.record(seed, value, result, steps))

    def run_result(self, input: JSON) -> tuple[JSON, int]:
        """Run and check the task: (result, number of steps)."""
        result, steps = self._execute(self.parse_input(input))
        return result, len(steps)

    def run_from(self, env: Environment, program: str,
                 args: tuple[int, ...] | list[int] = (0, 0, 0)) -> list[dict[str, Any]]:
        """Run one program from the environment's current state; its steps (no result check)."""
        program, a = self.resolve_program(program, args)
        return self._go(env, program, list(a))

    def result(self, env: Environment) -> JSON:
        """The task's result read from an environment state (`result EXPR` or env.result())."""
        self._steps = []
        return self._result(env)

    def _result(self, env: Environment) -> JSON:
        if self.task.result is None:
            return env.result()
        self._env, self._stack = env, []
        try:
            return self.expr(self.task.result, self.task.file, [])
        except Exception as e:
            raise self._error(e, []) from None

    def _execute(self, value: JSON) -> tuple[JSON, list[dict[str, Any]]]:
        env = self.env
        env.reset(value)
        steps = self._go(env, self.task.entry, list(self.task.entry_args))
        result = self._result(env)
        expected_fn = self.expected_fn()
        if expected_fn is not None:
            expected = expected_fn(value)
            if result != expected:
                keep = len(steps) <= rt.KEEP_PARTIAL_STEPS
                record = self.record(None, value, result, steps) if keep else None
                raise rt.wrong_result(self.task, value, result, expected, self.sources, record,
                                   len(steps))
        return result, steps

    def _go(self, env: Environment, program: str, args: list[int]) -> list[dict[str, Any]]:
        self._env, self._steps, self._stack = env, [], []
        self._frames = self._iterations = 0
        try:
            self.frame(program, args + [0] * (3 - len(args)), 0)
        except _Stop as s:
            raise self._error(s, [f.entry() for f in self._stack]) from None
        except Exception as e:
            raise self._error(e, [f.entry() for f in self._stack]) from None
        steps = self._steps
        if len(steps) > self.max_steps:
            raise rt.over_budget(len(steps), self.max_steps, self.task).error(
                [], self.sources, self._kept(steps), len(steps))
        return steps

    # ---- errors
    def _kept(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        return steps if 0 < len(steps) <= rt.KEEP_PARTIAL_STEPS else None

    def _error(self, exc: BaseException, stack: list[rt.StackEntry]) -> Exception:
        if isinstance(exc, _Stop):
            f = exc.failure
        else:
            top = stack[-1] if stack else None
            t = self.task
            span = top.span if top else (t.result.span if t.result is not None
                                         else t.node.name_span)
            f = rt.exception_failure(exc, rt.where(top, t), top.path if top else t.file.path, span)
        return f.error(stack, self.sources, self._kept(self._steps), len(self._steps))

    def _here(self) -> tuple[str, str, ast.Span]:
        top = self._stack[-1]
        return rt.where(top.entry(), self.task), top.path, top.span

    # ---- the language
    def step(self, me: _Frame, call: str | None, call_args: list[int]) -> None:
        self._steps.append(make_step(me.frame, me.depth, me.name, me.args,
                                     list(self._env.observe()), call, call_args))

    def frame(self, q: str, args: list[int], depth: int) -> None:
        info = self.checked.programs[q]
        me = _Frame(q, self.checked, self._frames, depth, args)
        self._frames += 1
        self._stack.append(me)
        try:
            self.block(info.node.body, info.file, [dict(zip(info.params, args, strict=False))],
                       me)
        except _Return:
            pass
        self.step(me, None, [0, 0, 0])
        self._stack.pop()

    def block(self, b: ast.Block, file: FileInfo, scopes: list[dict[str, Any]],
              me: _Frame) -> None:
        scopes.append({})
        try:
            for s in b.stmts:
                self.stmt(s, file, scopes, me)
        finally:
            scopes.pop()

    def stmt(self, s: ast.Stmt, file: FileInfo, scopes: list[dict[str, Any]],
             me: _Frame) -> None:
        me.span = s.span
        match s:
            case ast.Let(name=n, value=v):
                scopes[-1][n] = self._bounded(n, self.expr(v, file, scopes))
            case ast.Assign(name=n, value=v):
                value = self._bounded(n, self.expr(v, file, scopes))
                for sc in reversed(scopes):
                    if n in sc:
                        sc[n] = value
                        break
            case ast.If(branches=brs, orelse=orelse):
                for br in brs:
                    me.span = br.cond.span
                    if self.expr(br.cond, file, scopes):
                        self.block(br.body, file, scopes, me)
                        break
                else:
                    if orelse is not None:
                        self.block(orelse, file, scopes, me)
            case ast.While(cond=c, body=body):
                while True:
                    me.span = c.span
                    if not self.expr(c, file, scopes):
                        break
                    self._iterations += 1
                    over = len(self._steps) > self.max_steps
                    if self._iterations > self.max_steps or over:
                        raise _Stop(rt.too_many_steps(self.max_steps, *self._here(), loop=not over))
                    self.block(body, file, scopes, me)
            case ast.Return():
                raise _Return()
            case ast.CallStmt(name=n, args=args):
                self.call(s, n, args, file, scopes, me)

    def _bounded(self, name: str, value: Any) -> Any:
        """`value`, or R007 when it is an integer outside the 64-bit range."""
        if not isinstance(value, bool) and not MIN_INT <= value <= MAX_INT:
            raise _Stop(rt.overflow(name, *self._here()))
        return value

    def call(self, s: ast.CallStmt, name: str, args: tuple[ast.Expr, ...], file: FileInfo,
             scopes: list[dict[str, Any]], me: _Frame) -> None:
        values = []
        for k, a in enumerate(args):
            v = int(self.expr(a, file, scopes))
            if not 0 <= v < self.vocab.arg_range:
                raise _Stop(rt.bad_argument(name, k, v, self.vocab, *self._here()))
            values.append(v)
        kind, target = self.checked.resolve_call(file, name)
        if kind == "program":
            callee = self.checked.programs[str(target)]
            if me.depth >= self.max_depth:
                place, path, span = self._here()
                raise _Stop(rt.too_deep(place, callee.name, me.depth, self.max_depth, path, span))
            if len(self._steps) > self.max_steps:
                raise _Stop(rt.too_many_steps(self.max_steps, *self._here(), loop=False))
            padded = values + [0] * (3 - len(values))
            self.step(me, callee.name, padded)
            self.frame(str(target), padded, me.depth + 1)
            me.span = s.span
        else:
            padded = [int(target)] + values + [0] * (2 - len(values))
            self.step(me, ACT, padded)
            self._env.act(*padded)

    def expr(self, e: ast.Expr, file: FileInfo, scopes: list[dict[str, Any]]) -> Any:
        match e:
            case ast.IntLit(value=v) | ast.BoolLit(value=v):
                return v
            case ast.Name(name=n):
                for sc in reversed(scopes):
                    if n in sc:
                        return sc[n]
                if n in file.consts:
                    return file.consts[n]
                return self.vocab.names[n]
            case ast.QueryCall(name=n, args=args):
                values = [self.expr(a, file, scopes) for a in args]
                return self._env.query_fn(n)(*values)
            case ast.Unary(op=op, operand=o):
                v = self.expr(o, file, scopes)
                return (not v) if op == "not" else -v
            case ast.Binary(op="and", left=lft, right=rgt):
                return self.expr(lft, file, scopes) and self.expr(rgt, file, scopes)
            case ast.Binary(op="or", left=lft, right=rgt):
                return self.expr(lft, file, scopes) or self.expr(rgt, file, scopes)
            case ast.Binary(op=op, left=lft, right=rgt):
                a, b = self.expr(lft, file, scopes), self.expr(rgt, file, scopes)
                if op in ("/", "%"):
                    if b == 0:
                        place = rt.where(self._stack[-1].entry(), self.task) if self._stack \
                            else rt.where(None, self.task)
                        raise _Stop(rt.division_by_zero(op, place, file.path, e.span))
                    return a // b if op == "/" else a % b
                return _COMPARE[op](a, b)
        raise AssertionError(f"unexpected expression {e!r}")  # pragma: no cover
