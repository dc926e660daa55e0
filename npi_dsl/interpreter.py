"""Symbolic execution of checked `.npi` programs, producing `npi-trace/1` records.

Semantics (DESIGN.md, docs/tasks.md): execution is a stack of frames, one per program call.
Each call a frame makes (a program, or an environment action as `ACT`) is one step of that
frame with `end = false`, recorded with the observation *before* the call takes effect; when
the program's body finishes (or runs `return`), the frame takes one return step (`end = true`,
`call = null`). Actions get no frame: the caller's step applies them.

Speed. `compile_task` turns every program into Python source once, `exec`s it, and binds it
to an environment instance: a program becomes a plain Python function, or, if it can reach a
recursive cycle, a generator function driven by an explicit frame stack (so that a 100,000-deep
recursion never touches Python's recursion limit). The generated code writes each step as
three pre-serialised JSON fragments (the frame's prefix, the observation, the call) into one
flat list, so that a whole trace record is one `"".join`: serialisation costs a few list
appends per step, and the strings are shared, not copied.

Budgets cost almost nothing: the step budget is checked at every loop iteration and every
recursive frame (a run cannot make unbounded progress without either), and once more at the
end; the depth budget is one integer comparison per call. Errors are located afterwards, from
the traceback and the frame stack, so the hot path keeps no call stack of its own.
"""

from __future__ import annotations

import json
import linecache
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, TracebackType
from typing import Any

from npi_dsl import ast
from npi_dsl.checker import Checked, TaskInfo
from npi_dsl.codegen import Codegen
from npi_dsl.diagnostics import Diagnostic
from npi_dsl.envs.base import JSON, EnvError, Environment
from npi_dsl.errors import NpiError
from npi_dsl.inline import InlineSpec, spec_for
from npi_dsl.trace import SCHEMA, env_header

#: defaults: addition runs at 10,000 digits (about 140,000 steps) and bubble sort at 300
#: elements (about 1.2 million steps); recursive addition to about 20,000 digits.
DEFAULT_MAX_STEPS = 5_000_000
DEFAULT_MAX_DEPTH = 20_000

#: errors keep the executed steps for display when the run was at most this long
_KEEP_PARTIAL_STEPS = 20_000
#: environments a runner keeps bound (run_from on a few environments in turn stays cheap)
_BINDINGS_KEPT = 16
#: call-stack entries shown at each end of a long call stack
_STACK_SHOWN = 8

_dumps = json.JSONEncoder(separators=(",", ":")).encode

_UNSET: Any = object()  # new_env(): no input given


# ---------------------------------------------------------------------------- errors


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

    `diagnostic` locates it in the `.npi` source (codes R001-R006); `call_stack` lists the
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


class _Abort(Exception):
    """Raised by the generated code's helpers; the runner turns it into NpiRuntimeError."""

    def __init__(self, kind: str, *data: Any) -> None:
        super().__init__(kind, *data)
        self.kind = kind
        self.data = data


def _loop_budget(iterations: int, pieces: int) -> None:
    raise _Abort("loop", iterations, pieces)


def _too_deep(depth: int, callee: str) -> None:
    raise _Abort("depth", depth, callee)


def _bad_arg(callee: str, index: int, value: Any) -> None:
    raise _Abort("arg", callee, index, value)


def _div(a: int, b: int, site: int) -> int:
    if b == 0:
        raise _Abort("zero", site, "/")
    return a // b


def _mod(a: int, b: int, site: int) -> int:
    if b == 0:
        raise _Abort("zero", site, "%")
    return a % b


class _ObsCache(dict):  # type: ignore[type-arg]
    """observation tuple -> its JSON text without brackets (`"5,6,10,10"`)."""

    __slots__ = ()

    def __missing__(self, key: tuple[int, ...]) -> str:
        if len(self) >= 1 << 16:
            self.clear()
        text = ",".join([str(int(v)) for v in key])
        self[key] = text
        return text


#: shared by every runner: an observation's text does not depend on the task or environment
_OBS_TEXT = _ObsCache()


# ---------------------------------------------------------------------------- binding


def _act_fail(_: object) -> None:
    """After an inlined action found its arguments illegal, the env's action must raise."""
    raise AssertionError("an inline spec disagrees with its environment: the environment "
                         "accepted an action the spec rejected")


class _Compiled:
    """One generated factory (inlining an env spec or not), with what errors need."""

    def __init__(self, checked: Checked, task: TaskInfo, spec: InlineSpec | None) -> None:
        gen = Codegen(checked, task, spec).generate()
        self.spec = spec
        self.source = gen.source
        filename = f"<npi {checked.root.stem}.{task.name}{'' if spec else ' (plain)'}>"
        linecache.cache[filename] = (len(gen.source), None, gen.source.splitlines(True),
                                     filename)
        namespace: dict[str, Any] = {
            "_loop_budget": _loop_budget, "_too_deep": _too_deep, "_bad_arg": _bad_arg,
            "_div": _div, "_mod": _mod, "_act_fail": _act_fail, **gen.tables,
        }
        exec(compile(gen.source, filename, "exec"), namespace)  # noqa: S102 - generated here
        self.factory = namespace["_make"]
        self.linemap = gen.linemap
        self.sites = gen.sites
        self.generators = gen.generators
        self.queries = gen.queries
        self.actions = gen.actions
        self.codes: dict[CodeType, str] = {}  # function code -> qualified program


class _Binding:
    """The compiled programs bound to one environment instance."""

    __slots__ = ("env", "out", "programs", "start", "result_fn", "compiled")

    def __init__(self, compiled: _Compiled, env: Environment, state: dict[str, Any],
                 oc: _ObsCache, max_steps: int, max_depth: int) -> None:
        self.env = env
        self.compiled = compiled
        self.out: list[str] = []
        observe = env.observe
        if type(observe()) is not tuple:
            raw = observe

            def observe() -> tuple[int, ...]:
                return tuple(raw())

        qfns = {name: env.query_fn(name) for name in compiled.queries}
        afns = {i: env.action_fn(i) for i in compiled.actions}
        self.programs, self.start, self.result_fn = compiled.factory(
            observe, oc, self.out, qfns, afns, state, max_depth, 3 * max_steps + 1, max_steps)
        if not compiled.codes:
            for q, fn in self.programs.items():
                compiled.codes[fn.__code__] = q


@dataclass(frozen=True)
class _Fail:
    code: str
    message: str
    hint: str | None
    path: str
    span: ast.Span


class TaskRunner:
    """A task compiled for fast symbolic execution; see `compile_task`.

    `env` is the runner's own environment instance (reused by `run`); `new_env()` makes a
    fresh one. Every method that runs raises NpiRuntimeError on a runtime error, a budget
    exceeded or (for `run`, `run_line`, `run_result`) a wrong result.
    """

    def __init__(self, checked: Checked, task: TaskInfo, max_steps: int,
                 max_depth: int, inline_env: bool = True) -> None:
        if max_steps < 1 or max_depth < 0:
            raise ValueError("max_steps must be >= 1 and max_depth >= 0")
        self.checked = checked
        self.task = task
        self.max_steps = max_steps
        self.max_depth = max_depth
        self.vocab = checked.vocabulary
        self.sources = {f.path: f.source for f in checked.files.values()}
        spec = spec_for(checked.env_class) if inline_env else None
        self._inlined = _Compiled(checked, task, spec) if spec is not None else None
        self._plain_compiled: _Compiled | None = None
        self._oc = _OBS_TEXT
        # the most recently bound environments (id -> binding), strongly held, a few at most
        self._bindings: OrderedDict[int, _Binding] = OrderedDict()
        self.env = self.new_env()
        self._main = self.bind(self.env)
        #: the generated Python source the runner's own environment runs
        self.python_source = self._main.compiled.source
        self._entry_fn = self._main.programs[task.entry]
        self._entry_gen = task.entry in self._main.compiled.generators
        self._entry_args = task.entry_args[:len(checked.programs[task.entry].params)]
        self._limit = 3 * max_steps + 1  # the trace list holds 3 fragments a step, plus 1
        self._result_fn = None if task.result is None else self._main.result_fn
        self._env_result = self.env.result
        self._expected = None if task.expect is None else self.env.expected
        self._oracle = task.expect
        self._input_length = self.env.input_length
        self._header = self._make_header()
        #: the number of steps of the last trace `run_line` returned
        self.last_steps = 0

    # ---- environments
    def new_env(self, value: JSON = _UNSET) -> Environment:
        """A fresh instance of the task's environment (with the file's configuration), reset
        to the normalised input `value` when one is given."""
        env = self.checked.create_env()
        if value is not _UNSET:
            env.reset(value)
        return env

    def bind(self, env: Environment) -> _Binding:
        """The compiled programs bound to `env` (cached for the last few environments).

        A binding resolves the environment's observe, query and action functions once, so an
        environment must not replace them afterwards.
        """
        b = self._bindings.get(id(env))
        if b is not None and b.env is env:
            self._bindings.move_to_end(id(env))
            return b
        state = None
        if self._inlined is not None and type(env) is self.checked.env_class:
            assert self._inlined.spec is not None
            state = self._inlined.spec.state(env)
        if state is not None:
            compiled = self._inlined
        else:  # no spec, or this instance does not look as the spec expects
            if self._plain_compiled is None:
                self._plain_compiled = _Compiled(self.checked, self.task, None)
            compiled = self._plain_compiled
            state = {}
        assert compiled is not None
        b = _Binding(compiled, env, state, self._oc, self.max_steps, self.max_depth)
        self._bindings[id(env)] = b
        if len(self._bindings) > _BINDINGS_KEPT:
            first = next(iter(self._bindings))
            if self._bindings[first] is not self._main:
                del self._bindings[first]
            else:
                self._bindings.move_to_end(first)
                del self._bindings[next(iter(self._bindings))]
        return b

    # ---- the task's inputs, result and oracle
    def parse_input(self, value: JSON) -> JSON:
        """Validate and normalise an input (raises EnvError with a clear message)."""
        return self.env.parse_input(value)

    def sample_input(self, rng: random.Random, length: int) -> JSON:
        return self.env.sample_input(rng, length)

    def input_length(self, value: JSON) -> int:
        return self.env.input_length(value)

    def result(self, env: Environment) -> JSON:
        """The task's result read from an environment state (`result EXPR` or env.result())."""
        if self.task.result is None:
            return env.result()
        b = self.bind(env)
        try:
            return b.result_fn()
        except Exception as e:
            raise self._error(e, None, b) from None

    def expected(self, input: JSON) -> JSON:
        """The correct result for an input (`expect ORACLE`); None if the task has no oracle."""
        if self.task.expect is None:
            return None
        return self.env.expected(self.task.expect, input)

    def correct(self, input: JSON, result: JSON) -> bool:
        """Whether `result` is right for `input`; always true for a task without `expect`."""
        if self.task.expect is None:
            return True
        return bool(result == self.expected(input))

    # ---- running
    def run(self, input: JSON, seed: int | None = None) -> dict[str, Any]:
        """Run the task on an input; the npi-trace/1 record (keys in schema order)."""
        return json.loads(self.run_line(input, seed))

    def run_line(self, input: JSON, seed: int | None = None, *,
                 normalized: bool = False) -> str:
        """Run the task on an input; the trace record as one line of JSON text (no newline).

        The text is exactly `json.dumps(record, separators=(",", ":"))`.
        """
        value = input if normalized else self.parse_input(input)
        result, out = self._execute(value)
        out[0] = (f'{self._header}{"null" if seed is None else int(seed)},"length":'
                  f'{self._input_length(value)},"input":{_json(value)},"result":'
                  f'{_json(result)},"steps":[')
        out[1] = out[1][1:]
        out.append("]}")
        text = "".join(out)
        self.last_steps = (len(out) - 2) // 3
        out.clear()
        return text

    def run_result(self, input: JSON) -> tuple[JSON, int]:
        """Run and check the task without building a trace: (result, number of steps)."""
        result, out = self._execute(self.parse_input(input))
        n = (len(out) - 1) // 3
        out.clear()
        return result, n

    def _execute(self, value: JSON) -> tuple[JSON, list[str]]:
        env = self.env
        b = self._main
        env.reset(value)
        try:
            b.start(self._entry_fn, self._entry_gen, self._entry_args)
            result = self._env_result() if self._result_fn is None else self._result_fn()
        except Exception as e:
            raise self._error(e, getattr(e, "npi_stack", None), b) from None
        out = b.out
        if len(out) > self._limit:
            raise self._over_budget(b)
        if self._expected is not None:
            expected = self._expected(self._oracle, value)
            if result != expected:
                raise self._wrong(value, result, expected, out)
        return result, out

    def run_from(self, env: Environment, program: str,
                 args: tuple[int, ...] | list[int] = (0, 0, 0)) -> list[dict[str, Any]]:
        """Run one program (qualified name) from the environment's current state.

        Returns the steps (frames numbered from 0, the program's own frame at depth 0) and
        leaves `env` in its final state. No result check: any state and program are allowed.
        """
        if program not in self.checked.programs:
            bare = {Checked.bare(q): q for q in self.checked.programs}
            if program in bare:
                program = bare[program]
            else:
                raise KeyError(f"no program {program!r} (programs: "
                               f"{', '.join(self.checked.program_order)})")
        a = tuple(int(x) for x in args) + (0,) * (3 - len(args))
        if len(a) != 3 or not all(0 <= x < self.vocab.arg_range for x in a):
            raise ValueError(f"args must be up to 3 integers in [0, {self.vocab.arg_range}), "
                             f"got {list(args)}")
        nparams = len(self.checked.programs[program].params)
        if any(a[nparams:]):
            raise ValueError(f"{Checked.bare(program)} takes {nparams} argument"
                             f"{'s' * (nparams != 1)}: the others must be 0, got {list(args)}")
        b = self.bind(env)
        self._go(b, b.programs[program], program, a)
        out = b.out
        out[1] = out[1][1:]
        text = "[" + "".join(out[1:]) + "]"
        out.clear()
        return json.loads(text)

    def _go(self, b: _Binding, fn: Callable[..., Any], program: str,
            args: tuple[int, ...]) -> None:
        try:
            b.start(fn, program in b.compiled.generators,
                    args[:len(self.checked.programs[program].params)])
        except Exception as e:
            # the driver of recursive frames attaches its stack of suspended frames
            raise self._error(e, getattr(e, "npi_stack", None), b) from None
        if len(b.out) > self._limit:
            raise self._over_budget(b)

    def _over_budget(self, b: _Binding) -> NpiRuntimeError:
        n = (len(b.out) - 1) // 3
        return self._fail(_Fail(
            "R004", f"step budget exceeded: the run took {n:,} steps, more than the "
            f"budget of {self.max_steps:,}", _STEPS_HINT, self.task.file.path,
            self.task.node.name_span), [], b)

    # ---- error reporting
    def _make_header(self) -> str:
        t = self.task
        return ('{"schema":' + _dumps(SCHEMA) + ',"task":' + _dumps(t.name)
                + ',"env":' + _dumps(env_header(self.vocab))
                + ',"programs":' + _dumps(list(t.programs))
                + ',"source_hash":' + _dumps(self.checked.source_hash) + ',"seed":')

    def _wrong(self, value: JSON, result: JSON, expected: JSON,
               out: list[str]) -> NpiRuntimeError:
        t = self.task
        field = t.node.field("expect") or t.node
        span = field.span
        record = None
        if len(out) <= 3 * _KEEP_PARTIAL_STEPS + 1:
            out[0] = (self._header + 'null,"length":' + str(self.env.input_length(value))
                      + ',"input":' + _dumps(value) + ',"result":' + _dumps(result)
                      + ',"steps":[')
            out[1] = out[1][1:]
            record = json.loads("".join(out) + "]}")
        n = (len(out) - 1) // 3
        out.clear()
        diag = Diagnostic(
            t.file.path, span, "error", "R006",
            f"wrong result: for input {_short(value)} the task `{t.name}` gives "
            f"{_short(result)}, expected {_short(expected)} (expect {t.expect})",
            "the reference program is wrong for this input: run it with `npi run "
            "--input ...` to see its execution")
        return NpiRuntimeError(diag, [], self.sources,
                               steps=record["steps"] if record else None, record=record,
                               steps_done=n)

    def _fail(self, f: _Fail, stack: list[StackEntry], b: _Binding) -> NpiRuntimeError:
        out = b.out
        n = max(0, (len(out) - 1) // 3)
        steps = None
        if 0 < n <= _KEEP_PARTIAL_STEPS:
            out[1] = out[1][1:]
            steps = json.loads("[" + "".join(out[1:]) + "]")
        out.clear()
        diag = Diagnostic(f.path, f.span, "error", f.code, f.message, f.hint)
        return NpiRuntimeError(diag, stack, self.sources, steps=steps, steps_done=n)

    def _error(self, exc: BaseException, driver_stack: list[Any] | None,
               b: _Binding) -> NpiRuntimeError:
        """Turn an exception of a run into NpiRuntimeError with location and call stack."""
        stack = self._call_stack(exc, driver_stack, b.compiled)
        top = stack[-1] if stack else None
        path = top.path if top else self.task.file.path
        span = top.span if top else (self.task.result.span if self.task.result is not None
                                     else self.task.node.name_span)
        where = f"{top.name} at depth {top.depth}" if top else f"task `{self.task.name}`"
        if isinstance(exc, _Abort):
            kind, data = exc.kind, exc.data
            if kind == "loop":
                iterations, pieces = data
                if pieces > 3 * self.max_steps + 1:
                    f = _Fail("R004", f"step budget exceeded: more than {self.max_steps:,} "
                              f"steps (in {where})", _STEPS_HINT, path, span)
                else:
                    f = _Fail("R004", f"step budget exceeded: more than {self.max_steps:,} "
                              f"loop iterations (in {where}); the loop makes no calls",
                              _STEPS_HINT, path, span)
            elif kind == "depth":
                depth, callee = data
                f = _Fail("R005", f"depth budget exceeded: {where} calls {callee}, whose "
                          f"frame would be at depth {depth + 1}, past the budget of "
                          f"{self.max_depth:,}",
                          "runaway recursion? if it is legitimate, raise --max-depth",
                          path, span)
            elif kind == "arg":
                callee, index, value = data
                f = _Fail("R002", f"argument {index + 1} of {callee} is {value}, outside "
                          f"[0, {self.vocab.arg_range}) (in {where})",
                          "NPI arguments are integers from 0 to "
                          f"{self.vocab.arg_range - 1} (env {self.vocab.env} arg_range)",
                          path, span)
            elif kind == "zero":
                site, op = data
                s = b.compiled.sites[site]
                f = _Fail("R001", f"division by zero: the right side of `{op}` is 0 "
                          f"(in {where})", None, s.path, s.span)
            else:  # pragma: no cover
                raise AssertionError(kind)
        elif isinstance(exc, EnvError):
            f = _Fail("R003", f"environment error in {where}: {exc}", None, path, span)
        elif isinstance(exc, ZeroDivisionError):
            f = _Fail("R001", f"division by zero (in {where})", None, path, span)
        elif isinstance(exc, RecursionError):  # pragma: no cover - the design prevents it
            f = _Fail("R005", f"Python recursion limit reached (in {where})", None, path, span)
        else:
            f = _Fail("R003", f"environment error in {where}: {type(exc).__name__}: {exc}",
                      "the environment raised an unexpected exception", path, span)
        return self._fail(f, stack, b)

    def _call_stack(self, exc: BaseException, driver_stack: list[Any] | None,
                    compiled: _Compiled) -> list[StackEntry]:
        entries: list[StackEntry] = []
        for g in driver_stack or ():
            fr = g.gi_frame
            if fr is not None and g.gi_suspended:
                entries += self._entries(fr, fr.f_lineno, compiled)
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            entries += self._entries(tb.tb_frame, tb.tb_lineno, compiled)
            tb = tb.tb_next
        return entries

    def _entries(self, frame: Any, lineno: int, compiled: _Compiled) -> list[StackEntry]:
        """The npi frames a Python frame of generated code runs (several when inlined)."""
        q = compiled.codes.get(frame.f_code)
        if q is None:
            return []
        loc = frame.f_locals
        site = compiled.linemap.get(lineno)
        if site is None or not site.levels:
            prog = self.checked.programs[q]
            return [StackEntry(q, (loc.get("a0", 0), loc.get("a1", 0), loc.get("a2", 0)),
                               loc.get("f", 0), loc.get("d", 0), prog.file.path,
                               prog.node.name_span, len(prog.params))]

        def value(code: str) -> int:
            return int(code) if code.lstrip("-").isdigit() else int(loc.get(code, 0))

        d = int(loc.get("d", 0))
        out = []
        last = len(site.levels) - 1
        for k, lv in enumerate(site.levels):
            span = site.span if k == last else (lv.call_span or site.span)
            path = site.path if k == last else lv.path
            out.append(StackEntry(lv.program, (value(lv.args[0]), value(lv.args[1]),
                                               value(lv.args[2])),
                                  value(lv.frame), d + lv.depth, path, span,
                                  len(self.checked.programs[lv.program].params)))
        return out


_STEPS_HINT = ("an infinite loop? if the run is legitimately long, raise --max-steps")


_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps uses for str


def _json(value: JSON) -> str:
    """`json.dumps(value, separators=(",", ":"))`, with fast paths for inputs and results."""
    t = type(value)
    if t is str:
        return _encode_str(value)
    if t is int:
        return str(value)
    if t is list:
        if all(type(v) is str for v in value):
            return "[" + ",".join(map(_encode_str, value)) + "]"
        if all(type(v) is int for v in value):
            return "[" + ",".join(map(str, value)) + "]"
    return _dumps(value)


def _short(value: JSON, limit: int = 80) -> str:
    text = _dumps(value)
    if len(text) > limit:
        return f"{text[: limit // 2]}...{text[-limit // 4:]} ({len(text):,} characters)"
    return text


def compile_task(checked: Checked, task_name: str | None = None, *,
                 max_steps: int = DEFAULT_MAX_STEPS, max_depth: int = DEFAULT_MAX_DEPTH,
                 inline_env: bool = True) -> TaskRunner:
    """Compile a task of a checked file for execution (ValueError for an unknown task).

    `inline_env=False` never inlines the environment's operations (npi_dsl/inline.py): the
    traces are the same, only slower; tests compare the two.
    """
    return TaskRunner(checked, checked.task(task_name), max_steps, max_depth, inline_env)
