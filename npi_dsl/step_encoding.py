"""How generated code spells a step: JSON text fragments for the file writer, or structured
values for in-process consumers. The same code generator emits either (`Codegen(encoding=)`).

A run appends three fragments per step to one flat list, after a placeholder at index 0:
the frame's prefix, the observation, the call's suffix. An encoding says how each is built in
generated code and how the list becomes the steps:

* `TEXT`: the fragments are pieces of the record's JSON line (templates from
  `npi_dsl.trace_schema`), so a whole record is one `"".join`. This is `npi compile`'s path.
* `STRUCTURED`: the fragments are tuples (`(frame, depth, program, args)`, the observation,
  `(call, call_args, end)`) and `steps(out)` turns them into step dicts with
  `trace_schema.step_dict`. No JSON text is built, so nothing is parsed back: `TaskRunner.run`,
  `run_from` and the steps of runtime errors take this path.

Both give the same steps: `json.loads` of the text equals the structured dicts (tested).
"""

from __future__ import annotations

from typing import Any

from npi_dsl.trace_schema import (
    RETURN_SUFFIX,
    call_suffix_template,
    frame_prefix_template,
    step_dict,
)


class StepEncoding:
    """The interface; see `TEXT` and `STRUCTURED`."""

    name = ""
    #: the fragment of a return step after the observation (a constant)
    ret: Any = None

    def prefix(self, program: str, nparams: int, codes: list[str]) -> str:
        """Python code of a frame's prefix; `codes`: frame id, depth, then its parameters."""
        raise NotImplementedError

    def call(self, name: str, args: tuple[int, int, int]) -> Any:
        """The suffix of a step calling `name` with constant `args` (a constant)."""
        raise NotImplementedError

    def call_code(self, name: str, slots: list[str]) -> str:
        """Python code of the suffix of a call whose arguments are code (literals or locals)."""
        raise NotImplementedError

    def observe(self, code: str) -> str:
        """Python code of the observation fragment, given code giving the observation tuple."""
        raise NotImplementedError

    def steps(self, out: list[Any]) -> list[dict[str, Any]] | None:
        """The step dicts of a run's fragment list (None: this encoding does not make them)."""
        return None


class _Text(StepEncoding):
    name = "text"
    ret = RETURN_SUFFIX

    def prefix(self, program: str, nparams: int, codes: list[str]) -> str:
        return f"{frame_prefix_template(program, nparams)!r} % ({', '.join(codes)})"

    def call(self, name: str, args: tuple[int, int, int]) -> str:
        return call_suffix_template(name) % args

    def call_code(self, name: str, slots: list[str]) -> str:
        dyn = [s for s in slots if not is_literal(s)]
        fmt = call_suffix_template(name) % tuple(s if is_literal(s) else "%d" for s in slots)
        return f"({fmt!r} % ({', '.join(dyn)},))"

    def observe(self, code: str) -> str:
        return f"oc[{code}]"  # the observation cache: tuple -> its values as JSON text


class _Structured(StepEncoding):
    name = "structured"
    ret = (None, (0, 0, 0), True)

    def prefix(self, program: str, nparams: int, codes: list[str]) -> str:
        args = codes[2:] + ["0"] * (3 - nparams)
        return f"({codes[0]}, {codes[1]}, {program!r}, ({', '.join(args)}))"

    def call(self, name: str, args: tuple[int, int, int]) -> tuple[Any, ...]:
        return (name, args, False)

    def call_code(self, name: str, slots: list[str]) -> str:
        return f"({name!r}, ({', '.join(slots)}), False)"

    def observe(self, code: str) -> str:
        return code

    def steps(self, out: list[Any]) -> list[dict[str, Any]]:
        return [step_dict(out[i], out[i + 1], out[i + 2]) for i in range(1, len(out), 3)]


TEXT: StepEncoding = _Text()
STRUCTURED: StepEncoding = _Structured()


def is_literal(code: str) -> bool:
    """Whether a piece of generated code is an int literal."""
    return code.lstrip("-").isdigit()
