"""What every task runner shares, whichever engine runs the programs: the task's inputs,
oracle and result, the record's fields, and the checks of `run_from`'s arguments.

`TaskRunner` (npi_dsl/interpreter.py, compiled) and `ReferenceRunner` (npi_dsl/reference.py,
tree-walking) derive from `RunnerBase` and offer the same methods: `run`, `run_line`,
`run_result`, `run_from`, `result`, `expected`, `correct`, `new_env`, `parse_input`,
`sample_input`, `input_length`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from npi_dsl import task_inputs
from npi_dsl.checker import Checked, TaskInfo
from npi_dsl.envs.base import JSON, Environment
from npi_dsl.trace_schema import RECORD_KEYS, header_values

#: defaults: addition runs at 10,000 digits (about 140,000 steps) and bubble sort at 300
#: elements (about 1.2 million steps); recursive addition to about 20,000 digits.
DEFAULT_MAX_STEPS = 5_000_000
DEFAULT_MAX_DEPTH = 20_000

_UNSET: Any = object()  # new_env(): no input given


class RunnerBase:
    """The engine-independent part of a task runner (see the module docstring)."""

    #: the engine's name, as `npi run --engine` spells it
    engine = ""

    def __init__(self, checked: Checked, task: TaskInfo, max_steps: int,
                 max_depth: int) -> None:
        if max_steps < 1 or max_depth < 0:
            raise ValueError("max_steps must be >= 1 and max_depth >= 0")
        self.checked = checked
        self.task = task
        self.max_steps = max_steps
        self.max_depth = max_depth
        self.vocab = checked.vocabulary
        self.sources = {f.path: f.source for f in checked.files.values()}
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

    # ---- the task's inputs, result and oracle
    def parse_input(self, value: JSON) -> JSON:
        """Validate and normalise an input (raises EnvError with a clear message, also when
        it breaks the task's `where` constraint)."""
        value = self.env.parse_input(value)  # type: ignore[attr-defined]
        spec = self.task.inputs
        if spec is not None and spec.where is not None:
            task_inputs.check_input(spec, self.env, value)  # type: ignore[attr-defined]
        return value

    def sample_input(self, rng: random.Random, length: int) -> JSON:
        """An input of `length` drawn with `rng`; under the task's `where` constraint,
        by shaped rejection sampling (npi_dsl/task_inputs.py; ConstraintError)."""
        spec = self.task.inputs
        if spec is not None and spec.where is not None:
            return task_inputs.sample(spec, self.env, rng, length)  # type: ignore[attr-defined]
        return self.env.sample_input(rng, length)  # type: ignore[attr-defined]

    def expected_fn(self) -> Callable[[JSON], JSON] | None:
        """The function giving the correct result of a normalised input (`expect NAME` or
        `expect EXPR`), None for a task without `expect`."""
        t = self.task
        env = self.env  # type: ignore[attr-defined]
        if t.inputs is not None and t.inputs.expect is not None:
            spec = t.inputs
            return lambda value: task_inputs.expected(spec, env, value)
        if t.expect is None:
            return None
        oracle, fn = t.expect, env.expected
        return lambda value: fn(oracle, value)

    def input_length(self, value: JSON) -> int:
        return self.env.input_length(value)  # type: ignore[attr-defined]

    def expected(self, input: JSON) -> JSON:
        """The correct result for an input (`expect NAME` or `expect EXPR`); None if the
        task has no expect."""
        fn = self.expected_fn()
        return None if fn is None else fn(input)

    def correct(self, input: JSON, result: JSON) -> bool:
        """Whether `result` is right for `input`: equal to the `expect`'s answer, or for a
        task without `expect`, equal to the reference program's result on that input."""
        fn = self.expected_fn()
        if fn is None:
            return bool(result == self.run_result(input)[0])  # type: ignore[attr-defined]
        return bool(result == fn(input))

    # ---- the decisions alone (verification's reference side)
    def run_calls(self, value: JSON) -> tuple[JSON, list[tuple[Any, Any, bool]], int]:
        """Run the task on a normalised input and keep only what a network is compared
        with: (result, each step's `(call, call_args, end)` in execution order, the deepest
        frame's depth). No step dicts and no JSON: the memory of a run is the list of calls.
        Raises as `run` does."""
        record = self.run(value)  # type: ignore[attr-defined]
        steps = record["steps"]
        calls = [(s["call"], s["call_args"], s["end"]) for s in steps]
        return record["result"], calls, max((s["depth"] for s in steps), default=0)

    # ---- records
    def record(self, seed: int | None, value: JSON, result: JSON,
               steps: list[dict[str, Any]]) -> dict[str, Any]:
        """The npi-trace/1 record of a run, equal to what parsing its JSON text gives."""
        t = self.task
        header = header_values(t.name, self.vocab, t.programs, self.checked.source_hash)
        return dict(zip(RECORD_KEYS, (*header, None if seed is None else int(seed),
                                      self.input_length(value), fresh(value), fresh(result),
                                      steps), strict=True))

    def resolve_program(self, program: str, args: tuple[int, ...] | list[int]
                        ) -> tuple[str, tuple[int, int, int]]:
        """`run_from`'s program (qualified or bare) and its 3 arguments, checked."""
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
        return program, (a[0], a[1], a[2])


def fresh(value: Any) -> Any:
    """A copy of a JSON value as parsing its text gives it (tuples become lists)."""
    t = type(value)
    if t is str or t is int or value is None or t is bool or t is float:
        return value
    if t is list or t is tuple:
        return [fresh(v) for v in value]
    if t is dict:
        return {k: fresh(v) for k, v in value.items()}
    return value  # pragma: no cover - no environment makes other values
