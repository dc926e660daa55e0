"""The `npi-trace/1` schema: the one place that says which fields a record and a step have, in
which order, and how they are spelled as JSON text.

Everything that writes or builds traces takes the layout from here:

* `make_record` / `make_step` build dicts in schema order (tests, docs, hand-made traces);
* the compiled engine (`npi_dsl/codegen.py`, `npi_dsl/interpreter.py`) writes a step as three
  pre-serialised fragments, frame prefix + observation + call suffix, and a record as a head,
  the run fields and the steps. Those text templates are derived here, at import, from
  `FRAME_FIELDS`, `OBS_FIELD`, `CALL_FIELDS` and `RECORD_KEYS` (`frame_prefix_template`,
  `call_suffix_template`, `RETURN_SUFFIX`, `record_head`, `run_fields_text`);
* in-process consumers get the same steps as dicts without any JSON text:
  `step_dict(prefix, obs, suffix)` joins structured fragments (tuples of the same fields).

Adding a step field is an edit here: put it in its group (frame-constant before the
observation, per-call after it) and give the fragment builders its value.

The structured fragments are what `STRUCTURED` encodes (see `npi_dsl.step_encoding`): a frame
prefix is `(frame, depth, program, args)`, an observation a tuple of ints, a call suffix
`(call, call_args, end)`. `step_dict` turns the three into the dict that parsing the text
gives (fresh lists, keys in `STEP_KEYS` order).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from npi_dsl.envs.base import Vocabulary
from npi_dsl.errors import NpiError

SCHEMA = "npi-trace/1"
#: the record fields fixed by the task (the same in every record of a runner)
HEADER_KEYS = ("schema", "task", "env", "programs", "source_hash")
#: the record fields of one run, before its steps
RUN_KEYS = ("seed", "length", "input", "result")
#: the keys of a record, in the order the writer emits them
RECORD_KEYS = (*HEADER_KEYS, *RUN_KEYS, "steps")
#: step fields fixed for a frame (its prefix), the observation, and the fields of the call
FRAME_FIELDS = ("frame", "depth", "program", "args")
OBS_FIELD = "obs"
CALL_FIELDS = ("call", "call_args", "end")
#: the keys of a step, in the order the writer emits them
STEP_KEYS = (*FRAME_FIELDS, OBS_FIELD, *CALL_FIELDS)
#: the program name of a primitive action in `call`
ACT = "ACT"

dumps = json.JSONEncoder(separators=(",", ":")).encode
"""Compact JSON text, as the writer spells every value."""


class TraceFormatError(NpiError, ValueError):
    """A trace file is not valid `npi-trace/1`. `str()` is `PATH:LINE: message` (`PATH:
    message` for line 0, the file as a whole). Exit 2: a corrupt input file."""

    exit_code = 2

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(path, line, message)
        self.path = path
        self.line = line
        self.message = message

    def __str__(self) -> str:
        if not self.line:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


# ------------------------------------------------------------------------------ building


def env_header(vocab: Vocabulary) -> dict[str, Any]:
    """The `env` object of a record: the environment's name, configuration and vocabulary."""
    observation = []
    for slot in vocab.observation:
        entry: dict[str, Any] = {"name": slot.name, "symbols": slot.symbols}
        if slot.kind != "symbol":
            entry["kind"] = slot.kind
            entry["shape"] = list(slot.shape)
        observation.append(entry)
    return {
        "name": vocab.env,
        "config": dict(vocab.config),
        "vocabulary": {
            "actions": [
                {"name": a.name, "id": i, "params": list(a.params)}
                for i, a in enumerate(vocab.actions)
            ],
            "names": dict(vocab.names),
            "kinds": {kind: list(members) for kind, members in vocab.kinds.items()},
            "observation": observation,
            "blank": vocab.blank,
            "arg_range": vocab.arg_range,
            # only when the file declares `observe`: absent, the default observation
            **({"observe": [vocab.query_text(n, a) for n, a in vocab.observed]}
               if vocab.observed else {}),
        },
    }


def make_record(
    *,
    task: str,
    env: Vocabulary | dict[str, Any],
    programs: Iterable[str],
    source_hash: str,
    seed: int | None,
    length: int,
    input: Any,
    result: Any,
    steps: list[dict[str, Any]],
) -> dict[str, Any]:
    """A trace record with its keys in schema order (`env` may be a Vocabulary or a header)."""
    header = header_values(task, env, programs, source_hash)
    return dict(zip(RECORD_KEYS, (*header, seed, length, input, result, steps), strict=True))


def header_values(task: str, env: Vocabulary | dict[str, Any], programs: Iterable[str],
                  source_hash: str) -> tuple[Any, ...]:
    """The values of `HEADER_KEYS` for a task."""
    return (SCHEMA, task, env_header(env) if isinstance(env, Vocabulary) else env,
            list(programs), source_hash)


def make_step(
    frame: int,
    depth: int,
    program: str,
    args: list[int],
    obs: list[int],
    call: str | None,
    call_args: list[int],
) -> dict[str, Any]:
    """One step with its keys in schema order; `end` is true exactly when `call` is None."""
    return step_dict((frame, depth, program, args), obs, (call, call_args, call is None))


def step_dict(prefix: tuple[Any, ...], obs: Iterable[int], suffix: tuple[Any, ...]
              ) -> dict[str, Any]:
    """A step from its structured fragments: `prefix` holds the values of `FRAME_FIELDS`,
    `suffix` those of `CALL_FIELDS`; sequences become fresh lists (as JSON parsing gives)."""
    frame, depth, program, args = prefix
    call, call_args, end = suffix
    return {"frame": frame, "depth": depth, "program": program, "args": list(args),
            "obs": list(obs), "call": call, "call_args": list(call_args), "end": end}


def source_hash(*sources: str | bytes) -> str:
    """`sha256:<hex>` over the given sources (e.g. the .npi texts a task was built from)."""
    h = hashlib.sha256()
    for src in sources:
        data = src.encode("utf-8") if isinstance(src, str) else src
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return "sha256:" + h.hexdigest()


# ------------------------------------------------------------------- text templates


def _members(keys: tuple[str, ...], values: Iterable[str]) -> str:
    """`"k1":v1,"k2":v2` for JSON texts `values` of `keys`."""
    return ",".join(f"{dumps(k)}:{v}" for k, v in zip(keys, values, strict=True))


def frame_prefix_template(program: str, nparams: int) -> str:
    """The %-template of a frame's step prefix, up to the observation's values: `%d` for the
    frame id, the depth and each of the program's `nparams` parameters (the others are 0).

    Every step but a record's first starts with `,` (the separator of the steps array).
    """
    args = "[" + ",".join(["%d"] * nparams + ["0"] * (3 - nparams)) + "]"
    return ",{" + _members(FRAME_FIELDS, ("%d", "%d", dumps(program), args)) + \
        f",{dumps(OBS_FIELD)}:["


def _call_suffix(call: str | None, args_text: str) -> str:
    return "]," + _members(CALL_FIELDS, (dumps(call), args_text,
                                         dumps(call is None))) + "}"


def call_suffix_template(call: str) -> str:
    """The text after a calling step's observation values, with `%s` for its 3 call_args."""
    return _call_suffix(call, "[%s,%s,%s]")


#: the text after a return step's observation values
RETURN_SUFFIX = _call_suffix(None, "[0,0,0]")


def record_head(header: tuple[Any, ...]) -> str:
    """A record's text up to the first run field's value: `{"schema":...,"seed":`."""
    return "{" + _members(HEADER_KEYS, map(dumps, header)) + f",{dumps(RUN_KEYS[0])}:"


def run_fields_text(length: str, input: str, result: str) -> str:
    """The text from after the seed's value to the opening of the steps array."""
    rest = _members(RUN_KEYS[1:] + ("steps",), (length, input, result, "["))
    return "," + rest


#: `run_fields_text` as one %-template (length, input, result)
RUN_FIELDS_TEMPLATE = run_fields_text("%s", "%s", "%s")
