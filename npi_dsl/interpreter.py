"""Fast symbolic execution of checked `.npi` programs, producing `npi-trace/1` records: the
compiled engine. The reference interpreter (npi_dsl/reference.py) defines what a run means;
this engine is tested equal to it, trace for trace, byte for byte.

Semantics (DESIGN.md, docs/tasks.md): execution is a stack of frames, one per program call.
Each call a frame makes (a program, or an environment action as `ACT`) is one step of that
frame with `end = false`, recorded with the observation *before* the call takes effect; when
the program's body finishes (or runs `return`), the frame takes one return step (`end = true`,
`call = null`). Actions get no frame: the caller's step applies them.

Speed. `compile_task` turns every program into Python source once (npi_dsl/codegen.py),
`exec`s it, and binds it to an environment instance: a program becomes a plain Python
function, or, if it can reach a recursive cycle, a generator function driven by an explicit
frame stack (so that a 100,000-deep recursion never touches Python's recursion limit). The
generated code writes each step as three fragments into one flat list. For the file writer
(`run_line`) they are pre-serialised JSON text (`step_encoding.TEXT`), so a whole record is
one `"".join`; for in-process consumers (`run`, `run_from`, the steps of an error) they are
tuples (`step_encoding.STRUCTURED`) made into dicts directly: no JSON is built to be parsed.
A runner compiles the structured variant only when it is first asked for.

Budgets cost almost nothing: the step budget is checked at every loop iteration and every
recursive frame (a run cannot make unbounded progress without either), and once more at the
end; the depth budget is one integer comparison per call. Errors are located afterwards, from
the traceback and the driver's frame stack (`codegen_contract.RunState`), so the hot path
keeps no call stack of its own. An error of a text run short enough to keep its steps is run
again structured, from the same input, for those steps.
"""

from __future__ import annotations

import json
import linecache
from collections import OrderedDict
from types import CodeType, TracebackType
from typing import Any

from npi_dsl.checker import Checked, TaskInfo
from npi_dsl.codegen import Codegen
from npi_dsl.codegen_contract import LAYOUT, Abort, RunState
from npi_dsl.envs.base import JSON, Environment
from npi_dsl.inline import InlineSpec, spec_for
from npi_dsl.runner_base import DEFAULT_MAX_DEPTH, DEFAULT_MAX_STEPS, RunnerBase
from npi_dsl.runtime_errors import (
    KEEP_PARTIAL_STEPS,
    Failure,
    NpiRuntimeError,
    StackEntry,
    bad_argument,
    division_by_zero,
    exception_failure,
    over_budget,
    overflow,
    too_deep,
    too_many_steps,
    where,
    wrong_result,
)
from npi_dsl.step_encoding import STRUCTURED, TEXT, StepEncoding
from npi_dsl.trace_schema import RUN_FIELDS_TEMPLATE, header_values, record_head

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_STEPS", "ENGINES", "NpiRuntimeError",
           "StackEntry", "TaskRunner", "compile_task"]

#: `compile_task(engine=)`, `npi run --engine`: the compiled engine and the reference
ENGINES = ("compiled", "reference")
#: environments a runner keeps bound (run_from on a few environments in turn stays cheap)
_BINDINGS_KEPT = 16

_dumps = json.JSONEncoder(separators=(",", ":")).encode


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


class _Compiled:
    """One generated factory (an encoding, inlining an env spec or not), with what errors
    need."""

    def __init__(self, checked: Checked, task: TaskInfo, spec: InlineSpec | None,
                 encoding: StepEncoding) -> None:
        gen = Codegen(checked, task, spec, encoding).generate()
        self.spec = spec
        self.encoding = encoding
        self.source = gen.source
        variant = ("" if spec else " (plain)") + ("" if encoding is TEXT else
                                                 f" ({encoding.name})")
        filename = f"<npi {checked.root.stem}.{task.name}{variant}>"
        linecache.cache[filename] = (len(gen.source), None, gen.source.splitlines(True),
                                     filename)
        namespace: dict[str, Any] = {**LAYOUT.helpers, **gen.tables}
        exec(compile(gen.source, filename, "exec"), namespace)  # noqa: S102 - generated here
        self.factory = namespace[LAYOUT.factory]
        self.linemap = gen.linemap
        self.sites = gen.sites
        self.generators = gen.generators
        self.queries = gen.queries
        self.actions = gen.actions
        self.codes: dict[CodeType, str] = {}  # function code -> qualified program


class _Binding:
    """The compiled programs bound to one environment instance."""

    __slots__ = ("env", "out", "programs", "start", "result_fn", "compiled", "run")

    def __init__(self, compiled: _Compiled, env: Environment, state: dict[str, Any],
                 max_steps: int, max_depth: int) -> None:
        self.env = env
        self.compiled = compiled
        self.out: list[Any] = []
        self.run = RunState()
        observe = env.observe
        if type(observe()) is not tuple:
            raw = observe

            def observe() -> tuple[int, ...]:
                return tuple(raw())

        qfns = {name: env.query_fn(name) for name in compiled.queries}
        afns = {i: env.action_fn(i) for i in compiled.actions}
        self.programs, self.start, self.result_fn = compiled.factory(
            observe, _OBS_TEXT, self.out, qfns, afns, state, max_depth, 3 * max_steps + 1,
            max_steps, self.run)
        if not compiled.codes:
            for q, fn in self.programs.items():
                compiled.codes[fn.__code__] = q


class TaskRunner(RunnerBase):
    """A task compiled for fast symbolic execution; see `compile_task`.

    `env` is the runner's own environment instance (reused by `run`); `new_env()` makes a
    fresh one. Every method that runs raises NpiRuntimeError on a runtime error, a budget
    exceeded or (for `run`, `run_line`, `run_result`) a wrong result.
    """

    engine = "compiled"

    def __init__(self, checked: Checked, task: TaskInfo, max_steps: int,
                 max_depth: int, inline_env: bool = True) -> None:
        super().__init__(checked, task, max_steps, max_depth)
        self._spec = spec_for(checked.env_class) if inline_env else None
        # (inlined?, encoding) -> compiled factory, made when first needed
        self._compiled: dict[tuple[bool, str], _Compiled] = {}
        # the most recently bound environments ((id, encoding) -> binding), a few at most;
        # the runner's own environment's bindings are pinned
        self._bindings: OrderedDict[tuple[int, str], _Binding] = OrderedDict()
        self._pinned: dict[tuple[int, str], _Binding] = {}
        self.env = self.new_env()
        self._main = self._pin(TEXT)
        #: the generated Python source the runner's own environment runs
        self.python_source = self._main.compiled.source
        self._entry = task.entry
        self._entry_args = task.entry_args[:len(checked.programs[task.entry].params)]
        self._limit = 3 * max_steps + 1  # the trace list holds 3 fragments a step, plus 1
        self._has_result = task.result is not None
        self._env_result = self.env.result
        self._expected = self.expected_fn()
        self._input_length = self.env.input_length
        self._head = record_head(header_values(task.name, self.vocab, task.programs,
                                               checked.source_hash))

    # ---- environments
    def _pin(self, encoding: StepEncoding) -> _Binding:
        b = self._pinned.get((id(self.env), encoding.name))
        if b is None:
            b = self._pinned[(id(self.env), encoding.name)] = self._new_binding(self.env,
                                                                                encoding)
        return b

    def bind(self, env: Environment, encoding: StepEncoding = TEXT) -> _Binding:
        """The compiled programs bound to `env` (cached for the last few environments).

        A binding resolves the environment's observe, query and action functions once, so an
        environment must not replace them afterwards.
        """
        key = (id(env), encoding.name)
        b = self._pinned.get(key) or self._bindings.get(key)
        if b is not None and b.env is env:
            if key in self._bindings:
                self._bindings.move_to_end(key)
            return b
        b = self._new_binding(env, encoding)
        self._bindings[key] = b
        if len(self._bindings) > _BINDINGS_KEPT:
            del self._bindings[next(iter(self._bindings))]
        return b

    def _new_binding(self, env: Environment, encoding: StepEncoding) -> _Binding:
        state = None
        if self._spec is not None and type(env) is self.checked.env_class:
            state = self._spec.state(env)
        inlined = state is not None  # else: no spec, or this instance does not fit the spec
        key = (inlined, encoding.name)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.checked, self.task,
                                                       self._spec if inlined else None,
                                                       encoding)
        return _Binding(compiled, env, state or {}, self.max_steps, self.max_depth)

    # ---- the task's result
    def result(self, env: Environment) -> JSON:
        """The task's result read from an environment state (`result EXPR` or env.result())."""
        if self.task.result is None:
            return env.result()
        b = self.bind(env)
        try:
            return b.result_fn()
        except Exception as e:
            raise self._error(e, b) from None

    # ---- running
    def run(self, input: JSON, seed: int | None = None) -> dict[str, Any]:
        """Run the task on an input; the npi-trace/1 record (keys in schema order), built
        without JSON text and equal to `json.loads(run_line(input, seed))`."""
        value = self.parse_input(input)
        b = self._pin(STRUCTURED)
        result, out = self._execute(value, b)
        steps = STRUCTURED.steps(out)
        out.clear()
        return self.record(seed, value, result, steps)  # type: ignore[arg-type]

    def run_calls(self, value: JSON) -> tuple[JSON, list[tuple[Any, Any, bool]], int]:
        """`RunnerBase.run_calls` from the structured fragments: the call suffixes are the
        run's own tuples, nothing else of a step is kept."""
        b = self._pin(STRUCTURED)
        result, out = self._execute(value, b)
        calls = out[3::3]
        depth = max((p[1] for p in out[1::3]), default=0)
        out.clear()
        return result, calls, depth

    def run_line(self, input: JSON, seed: int | None = None, *,
                 normalized: bool = False) -> str:
        """Run the task on an input; the trace record as one line of JSON text (no newline).

        The text is exactly `json.dumps(record, separators=(",", ":"))`.
        """
        value = input if normalized else self.parse_input(input)
        try:
            result, out = self._execute(value, self._main)
        except NpiRuntimeError as e:
            raise self._with_steps(e, value) from None
        out[0] = (f'{self._head}{"null" if seed is None else int(seed)}'
                  + RUN_FIELDS_TEMPLATE % (self._input_length(value), _json(value),
                                           _json(result)))
        out[1] = out[1][1:]
        out.append("]}")
        text = "".join(out)
        self.last_steps = (len(out) - 2) // 3
        out.clear()
        return text

    def run_result(self, input: JSON) -> tuple[JSON, int]:
        """Run and check the task without building a trace: (result, number of steps)."""
        value = self.parse_input(input)
        try:
            result, out = self._execute(value, self._main)
        except NpiRuntimeError as e:
            raise self._with_steps(e, value) from None
        n = (len(out) - 1) // 3
        out.clear()
        return result, n

    def _execute(self, value: JSON, b: _Binding) -> tuple[JSON, list[Any]]:
        b.env.reset(value)
        try:
            b.start(b.programs[self._entry], self._entry in b.compiled.generators,
                    self._entry_args)
            result = self._env_result() if not self._has_result else b.result_fn()
        except Exception as e:
            raise self._error(e, b) from None
        out = b.out
        if len(out) > self._limit:
            raise self._over_budget(b)
        if self._expected is not None:
            expected = self._expected(value)
            if result != expected:
                n = (len(out) - 1) // 3
                steps = b.compiled.encoding.steps(out) if n <= KEEP_PARTIAL_STEPS else None
                out.clear()
                record = (None if steps is None else
                          self.record(None, value, result, steps))
                raise wrong_result(self.task, value, result, expected, self.sources, record, n)
        return result, out

    def _with_steps(self, e: NpiRuntimeError, value: JSON) -> NpiRuntimeError:
        """A text run's error, with its steps when short enough (from a structured rerun)."""
        if e.steps is not None or not 0 < e.steps_done <= KEEP_PARTIAL_STEPS:
            return e
        try:
            self._execute(value, self._pin(STRUCTURED))
        except NpiRuntimeError as again:
            return again
        return e  # pragma: no cover - runs are deterministic

    def run_from(self, env: Environment, program: str,
                 args: tuple[int, ...] | list[int] = (0, 0, 0)) -> list[dict[str, Any]]:
        """Run one program (qualified name) from the environment's current state.

        Returns the steps (frames numbered from 0, the program's own frame at depth 0) and
        leaves `env` in its final state. No result check: any state and program are allowed.
        """
        program, a = self.resolve_program(program, args)
        b = self.bind(env, STRUCTURED)
        try:
            b.start(b.programs[program], program in b.compiled.generators,
                    a[:len(self.checked.programs[program].params)])
        except Exception as e:
            raise self._error(e, b) from None
        if len(b.out) > self._limit:
            raise self._over_budget(b)
        steps = STRUCTURED.steps(b.out)
        b.out.clear()
        return steps

    def _over_budget(self, b: _Binding) -> NpiRuntimeError:
        return self._fail(over_budget((len(b.out) - 1) // 3, self.max_steps, self.task), [], b)

    # ---- error reporting
    def _fail(self, f: Failure, stack: list[StackEntry], b: _Binding) -> NpiRuntimeError:
        out = b.out
        n = max(0, (len(out) - 1) // 3)
        steps = b.compiled.encoding.steps(out) if 0 < n <= KEEP_PARTIAL_STEPS else None
        out.clear()
        return f.error(stack, self.sources, steps, n)

    def _error(self, exc: BaseException, b: _Binding) -> NpiRuntimeError:
        """Turn an exception of a run into NpiRuntimeError with location and call stack."""
        stack = self._call_stack(exc, b)
        top = stack[-1] if stack else None
        path = top.path if top else self.task.file.path
        span = top.span if top else (self.task.result.span if self.task.result is not None
                                     else self.task.node.name_span)
        place = where(top, self.task)
        if isinstance(exc, Abort):
            kind, data = exc.kind, exc.data
            if kind == "loop":
                f = too_many_steps(self.max_steps, place, path, span,
                                   loop=data[1] <= self._limit)
            elif kind == "depth":
                f = too_deep(place, data[1], data[0], self.max_depth, path, span)
            elif kind == "arg":
                f = bad_argument(data[0], data[1], data[2], self.vocab, place, path, span)
            elif kind == "int":
                f = overflow(data[0], place, path, span)
            elif kind == "zero":
                s = b.compiled.sites[data[0]]
                f = division_by_zero(data[1], place, s.path, s.span)
            else:  # pragma: no cover
                raise AssertionError(kind)
        else:
            f = exception_failure(exc, place, path, span)
        return self._fail(f, stack, b)

    def _call_stack(self, exc: BaseException, b: _Binding) -> list[StackEntry]:
        entries: list[StackEntry] = []
        for g in b.run.stack:  # the driver's suspended generator frames
            fr = g.gi_frame
            if fr is not None and g.gi_suspended:
                entries += self._entries(fr, fr.f_lineno, b.compiled)
        b.run.stack = []
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            entries += self._entries(tb.tb_frame, tb.tb_lineno, b.compiled)
            tb = tb.tb_next
        return entries

    def _entries(self, frame: Any, lineno: int, compiled: _Compiled) -> list[StackEntry]:
        """The npi frames a Python frame of generated code runs (several when inlined)."""
        q = compiled.codes.get(frame.f_code)
        if q is None:
            return []
        loc = frame.f_locals
        args, fid, d = LAYOUT.frame_of(loc)
        site = compiled.linemap.get(lineno)
        if site is None or not site.levels:
            prog = self.checked.programs[q]
            return [StackEntry(q, args, fid, d, prog.file.path, prog.node.name_span,
                               len(prog.params))]

        def value(code: str) -> int:
            return int(code) if code.lstrip("-").isdigit() else int(loc.get(code, 0))

        out = []
        last = len(site.levels) - 1
        for k, lv in enumerate(site.levels):
            span = site.span if k == last else (lv.call_span or site.span)
            path = site.path if k == last else lv.path
            out.append(StackEntry(lv.program, (value(lv.args[0]), value(lv.args[1]),
                                               value(lv.args[2])),
                                  value(lv.frame), int(d) + lv.depth, path, span,
                                  len(self.checked.programs[lv.program].params)))
        return out


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


def compile_task(checked: Checked, task_name: str | None = None, *,
                 max_steps: int = DEFAULT_MAX_STEPS, max_depth: int = DEFAULT_MAX_DEPTH,
                 inline_env: bool = True, engine: str = "compiled") -> RunnerBase:
    """A runner for a task of a checked file (ValueError for an unknown task or engine).

    `engine="compiled"` (the default) compiles the task for speed (a `TaskRunner`);
    `engine="reference"` gives the tree-walking interpreter that defines the language's
    meaning (npi_dsl/reference.py), with the same methods, traces and errors, only slower.
    `inline_env=False` never inlines the environment's operations (npi_dsl/inline.py): the
    traces are the same, only slower; tests compare the two.
    """
    task = checked.task(task_name)
    if engine == "compiled":
        return TaskRunner(checked, task, max_steps, max_depth, inline_env)
    if engine == "reference":
        from npi_dsl.reference import ReferenceRunner

        return ReferenceRunner(checked, task, max_steps, max_depth)
    raise ValueError(f"unknown engine {engine!r} (engines: {', '.join(ENGINES)})")
