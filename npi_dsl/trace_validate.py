"""Validation of one `npi-trace/1` record: types, ranges, and the frame structure of its steps.

What is checked is listed in docs/trace-format.md ("What the reader checks").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn

from npi_dsl.trace_schema import ACT, SCHEMA, STEP_KEYS

#: the longest input length a record may claim (npi_dsl.sampling.MAX_LENGTH, the limit of
#: --length; not imported from there, which would pull in the engines)
MAX_LENGTH = 10_000_000


class Invalid(Exception):
    """A validation failure of one record (the reader adds path and line)."""


def validate_record(record: Any) -> None:
    """Check one record against `npi-trace/1`; raises ValueError with the reason."""
    try:
        validate_fields(record)
    except Invalid as exc:
        raise ValueError(str(exc)) from None


_JSON_TYPES = ((bool, "a boolean"), (int, "an integer"), (float, "a number"),
               (str, "a string"), (list, "an array"), (dict, "an object"))


def json_type(value: Any) -> str:
    """How messages name a JSON value's type ("an integer", "null"...)."""
    if value is None:
        return "null"
    for t, name in _JSON_TYPES:  # bool before int: a bool is an int to isinstance
        if isinstance(value, t):
            return name
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return type(value) is int


def _need(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise Invalid(f"missing field {where}{key}")
    return obj[key]


def _need_type(
    obj: dict[str, Any], key: str, types: tuple[type, ...], what: str, where: str
) -> Any:
    value = _need(obj, key, where)
    if type(value) not in types:
        raise Invalid(f"field {where}{key} must be {what}, got {json_type(value)}")
    return value


def validate_fields(rec: Any) -> None:
    if type(rec) is not dict:
        raise Invalid(f"expected a JSON object (one trace per line), got {json_type(rec)}")
    if "schema" not in rec:
        raise Invalid("missing field schema: not an npi trace")
    schema = rec["schema"]
    if schema != SCHEMA:
        if isinstance(schema, str) and schema.startswith("npi-trace/"):
            raise Invalid(
                f"unsupported trace schema version {schema!r}: this npi reads {SCHEMA!r}"
            )
        raise Invalid(f"not an npi trace: schema is {schema!r}, expected {SCHEMA!r}")
    _need_type(rec, "task", (str,), "a string", "")
    env = _need_type(rec, "env", (dict,), "an object", "")
    programs = _need_type(rec, "programs", (list,), "an array of strings", "")
    _need_type(rec, "source_hash", (str,), "a string", "")
    _need_type(rec, "seed", (int, type(None)), "an integer or null", "")
    length = _need_type(rec, "length", (int,), "an integer", "")
    if not 0 <= length <= MAX_LENGTH:
        shown = (str(length) if length.bit_length() < 64
                 else f"an integer of {len(str(abs(length)))} digits")
        raise Invalid(f"field length must be in [0, {MAX_LENGTH:,}], got {shown}")
    _need(rec, "input", "")
    _need(rec, "result", "")
    steps = _need_type(rec, "steps", (list,), "an array", "")

    _need_type(env, "name", (str,), "a string", "env.")
    _need_type(env, "config", (dict,), "an object", "env.")
    vocab = _need_type(env, "vocabulary", (dict,), "an object", "env.")
    n_actions, limits, arg_range = _validate_vocabulary(vocab)

    bare: set[str] = set()
    for i, qualified in enumerate(programs):
        if type(qualified) is not str or "." not in qualified:
            raise Invalid(
                f"programs[{i}] must be a qualified name FILESTEM.NAME, got {qualified!r}"
            )
        name = qualified.rsplit(".", 1)[1]
        if name == ACT:
            raise Invalid(f"programs[{i}] is {qualified!r}: ACT is implicit and never listed")
        bare.add(name)
    _validate_steps(steps, bare, n_actions, limits, arg_range)


def _named_objects(items: list[Any], key: str, w: str
                   ) -> Iterator[tuple[int, dict[str, Any], str]]:
    """(index, object, its field prefix) of an array of objects that each have a string name."""
    for i, obj in enumerate(items):
        if type(obj) is not dict:
            raise Invalid(f"{w}{key}[{i}] must be an object, got {json_type(obj)}")
        where = f"{w}{key}[{i}]."
        _need_type(obj, "name", (str,), "a string", where)
        yield i, obj, where


def _validate_vocabulary(vocab: dict[str, Any]) -> tuple[int, list[int | None], int]:
    w = "env.vocabulary."
    actions = _need_type(vocab, "actions", (list,), "an array", w)
    for i, action, where in _named_objects(actions, "actions", w):
        aid = _need_type(action, "id", (int,), "an integer", where)
        if aid != i:
            raise Invalid(f"{where}id is {aid}: actions must be listed in id order from 0")
        params = _need_type(action, "params", (list,), "an array of strings", where)
        if len(params) > 2 or any(type(p) is not str for p in params):
            raise Invalid(f"{where}params must be at most 2 kind names (strings)")
    names = _need_type(vocab, "names", (dict,), "an object", w)
    for key, value in names.items():
        if not _is_int(value):
            raise Invalid(f"{w}names.{key} must be an integer, got {json_type(value)}")
    kinds = _need_type(vocab, "kinds", (dict,), "an object", w)
    for key, members in kinds.items():
        if type(members) is not list or any(type(m) is not str for m in members):
            raise Invalid(f"{w}kinds.{key} must be an array of names (strings)")
    observation = _need_type(vocab, "observation", (list,), "an array", w)
    limits: list[int | None] = []  # symbols per slot; None: not checked (image slots)
    for _, slot, where in _named_objects(observation, "observation", w):
        symbols = _need_type(slot, "symbols", (int,), "an integer", where)
        if slot.get("kind", "symbol") == "symbol":
            if symbols < 1:
                raise Invalid(f"{where}symbols must be >= 1, got {symbols}")
            limits.append(symbols)
        else:
            limits.append(None)
    if "observe" in vocab:
        observe = vocab["observe"]
        if type(observe) is not list or any(type(q) is not str for q in observe) \
                or not observe:
            raise Invalid(f"{w}observe must be a non-empty array of query calls (strings), "
                          f"got {json_type(observe)}")
        if len(observe) != len(observation):
            raise Invalid(f"{w}observe lists {len(observe)} queries but {w}observation has "
                          f"{len(observation)} slots: there is one slot per observed query")
    _need_type(vocab, "blank", (int,), "an integer", w)
    arg_range = _need_type(vocab, "arg_range", (int,), "an integer", w)
    if arg_range < 1:
        raise Invalid(f"{w}arg_range must be >= 1, got {arg_range}")
    return len(actions), limits, arg_range


def _triple_ok(value: Any, limit: int) -> bool:
    if type(value) is not list or len(value) != 3:
        return False
    a, b, c = value
    return (
        type(a) is int
        and type(b) is int
        and type(c) is int
        and 0 <= a < limit
        and 0 <= b < limit
        and 0 <= c < limit
    )


def _triple_error(value: Any, limit: int) -> str:
    if type(value) is not list:
        return f"must be an array of 3 integers, got {json_type(value)}"
    if len(value) != 3:
        return f"must be an array of 3 integers, got {len(value)} elements"
    for v in value:
        if type(v) is not int:
            return f"must be an array of 3 integers, got {json_type(v)} {v!r}"
    return f"must hold integers in [0, {limit}) (the env's arg_range), got {value}"


def _validate_steps(
    steps: list[Any], bare: set[str], n_actions: int, limits: list[int | None], arg_range: int
) -> None:
    if not steps:
        raise Invalid("steps is empty: every run has at least the entry's return step")
    n_obs = len(limits)
    checked = [(i, lim) for i, lim in enumerate(limits) if lim is not None]
    all_symbols = len(checked) == n_obs
    symbol_limits = [lim for _, lim in checked]
    zeros = [0, 0, 0]
    # the open frames: [frame id, depth, program, args]
    stack: list[tuple[int, int, str, list[int]]] = []
    next_frame = 0
    pending: tuple[str, list[int]] | None = None  # the call the next step's frame must run
    starts_frame = True
    for i, step in enumerate(steps):
        if type(step) is not dict or len(step) != 8:
            _step_shape_error(i, step)
        try:
            frame = step["frame"]
            depth = step["depth"]
            program = step["program"]
            args = step["args"]
            obs = step["obs"]
            call = step["call"]
            call_args = step["call_args"]
            end = step["end"]
        except KeyError:
            _step_shape_error(i, step)
        if type(frame) is not int or frame < 0:
            raise Invalid(f"steps[{i}].frame must be an integer >= 0, got {frame!r}")
        if type(depth) is not int or depth < 0:
            raise Invalid(f"steps[{i}].depth must be an integer >= 0, got {depth!r}")
        if type(program) is not str:
            raise Invalid(f"steps[{i}].program must be a string, got {json_type(program)}")
        if type(args) is list and len(args) == 3:
            a0, a1, a2 = args
            ok = (
                type(a0) is int
                and type(a1) is int
                and type(a2) is int
                and 0 <= a0 < arg_range
                and 0 <= a1 < arg_range
                and 0 <= a2 < arg_range
            )
        else:
            ok = False
        if not ok:
            raise Invalid(f"steps[{i}].args {_triple_error(args, arg_range)}")
        if type(obs) is not list or len(obs) != n_obs:
            got = f"{len(obs)} values" if type(obs) is list else json_type(obs)
            raise Invalid(
                f"steps[{i}].obs must be an array of {n_obs} values (one per observation slot), "
                f"got {got}"
            )
        if all_symbols:
            for v, lim in zip(obs, symbol_limits, strict=True):
                if type(v) is not int or not 0 <= v < lim:
                    _obs_error(f"steps[{i}]", obs, limits)
        else:
            for k, lim in checked:
                v = obs[k]
                if type(v) is not int or not 0 <= v < lim:
                    _obs_error(f"steps[{i}]", obs, limits)
        if type(end) is not bool:
            raise Invalid(f"steps[{i}].end must be true or false, got {json_type(end)}")
        if call is None:
            if not end:
                raise Invalid(f"steps[{i}]: call is null (a return step) but end is false")
            if call_args != zeros:
                raise Invalid(f"steps[{i}].call_args must be [0,0,0] on a return step")
        else:
            if type(call) is not str:
                raise Invalid(f"steps[{i}].call must be a program name or null")
            if end:
                raise Invalid(f"steps[{i}]: end is true but the step calls {call} (must be null)")
            if call == ACT:
                if type(call_args) is not list or len(call_args) != 3:
                    raise Invalid(f"steps[{i}].call_args {_triple_error(call_args, arg_range)}")
                aid, a1, a2 = call_args
                if type(aid) is not int or not 0 <= aid < n_actions:
                    raise Invalid(
                        f"steps[{i}].call_args[0] must be an action id in [0, {n_actions}), "
                        f"got {aid!r}"
                    )
                if (
                    type(a1) is not int
                    or type(a2) is not int
                    or not (0 <= a1 < arg_range and 0 <= a2 < arg_range)
                ):
                    raise Invalid(f"steps[{i}].call_args {_triple_error(call_args, arg_range)}")
            else:
                if call not in bare:
                    raise Invalid(f"steps[{i}].call {call!r} is not among the trace's programs")
                if not _triple_ok(call_args, arg_range):
                    raise Invalid(f"steps[{i}].call_args {_triple_error(call_args, arg_range)}")
        # ---- structure: frames open in order, nest properly and each ends with one return
        if starts_frame:
            if frame != next_frame:
                raise Invalid(
                    f"steps[{i}].frame is {frame}: the new frame here must be {next_frame}"
                )
            if depth != len(stack):
                raise Invalid(
                    f"steps[{i}].depth is {depth}: frame {frame} is at depth {len(stack)}"
                )
            if program not in bare:
                raise Invalid(f"steps[{i}].program {program!r} is not among the trace's programs")
            if pending is not None and (program != pending[0] or args != pending[1]):
                raise Invalid(
                    f"steps[{i}]: frame {frame} runs {program}{args} but its caller called "
                    f"{pending[0]}{pending[1]}"
                )
            stack.append((frame, depth, program, args))
            next_frame += 1
            starts_frame = False
            pending = None
        else:
            if not stack:
                raise Invalid(f"steps[{i}]: a step after the entry frame returned")
            top = stack[-1]
            if frame != top[0] or depth != top[1] or program != top[2] or args != top[3]:
                raise Invalid(
                    f"steps[{i}] must continue frame {top[0]} ({top[2]}{top[3]} at depth "
                    f"{top[1]}), got frame {frame} ({program}{args} at depth {depth})"
                )
        if end:
            stack.pop()
        elif call != ACT:
            starts_frame = True
            pending = (call, call_args)
    if pending is not None:
        raise Invalid(f"steps end right after a call to {pending[0]}: its frame is missing")
    if stack:
        top = stack[-1]
        raise Invalid(f"steps end before frame {top[0]} ({top[2]}) returned")


def _step_shape_error(i: int, step: Any) -> NoReturn:
    if type(step) is not dict:
        raise Invalid(f"steps[{i}] must be an object, got {json_type(step)}")
    missing = [k for k in STEP_KEYS if k not in step]
    if missing:
        raise Invalid(f"steps[{i}] is missing field {missing[0]}")
    extra = sorted(set(step) - set(STEP_KEYS))
    raise Invalid(f"steps[{i}] has unknown field {extra[0]}")


def _obs_error(where: str, obs: list[Any], limits: list[int | None]) -> NoReturn:
    for k, (v, lim) in enumerate(zip(obs, limits, strict=True)):
        if lim is None:
            continue
        if type(v) is not int:
            raise Invalid(f"{where}.obs[{k}] must be an integer, got {json_type(v)}")
        if not 0 <= v < lim:
            raise Invalid(f"{where}.obs[{k}] is {v}: the slot has symbols 0..{lim - 1}")
