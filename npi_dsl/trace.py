"""Execution traces: the `npi-trace/1` schema, its writer and its validating reader.

A trace file is JSON Lines: one trace (one run of a task on one input) per line, optionally
gzip-compressed (`.gz`). docs/trace-format.md is the reference; in short, a record is

    {"schema": "npi-trace/1", "task": ..., "env": {...}, "programs": [...],
     "source_hash": ..., "seed": ..., "length": ..., "input": ..., "result": ..., "steps": [...]}

and each step is `{frame, depth, program, args, obs, call, call_args, end}`, in execution order.

* `env_header(vocab)` builds the `env` object, `make_record(...)` a whole record in key order.
* `TraceWriter` / `write_traces(path, records)` write atomically and reproducibly (the same
  records give the same bytes, gzip included).
* `read_traces(path)` yields records, validating each; any defect of the file is a
  `TraceFormatError` whose str is `PATH:LINE: message`.
* `iter_frames(steps)` rebuilds the frames (per-frame step sequences and the call tree).

This module depends on nothing but the standard library and `npi_dsl.envs.base`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import secrets
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn

from npi_dsl.envs.base import Vocabulary
from npi_dsl.errors import NpiError

SCHEMA = "npi-trace/1"
#: the keys of a record, in the order the writer emits them
RECORD_KEYS = (
    "schema",
    "task",
    "env",
    "programs",
    "source_hash",
    "seed",
    "length",
    "input",
    "result",
    "steps",
)
#: the keys of a step, in the order the writer emits them
STEP_KEYS = ("frame", "depth", "program", "args", "obs", "call", "call_args", "end")
#: the program name of a primitive action in `call`
ACT = "ACT"

_GZIP_MAGIC = b"\x1f\x8b"
_JSON_SEPARATORS = (",", ":")


class TraceFormatError(NpiError, ValueError):
    """A trace file is not valid `npi-trace/1`. `str()` is `PATH:LINE: message`."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(path, line, message)
        self.path = path
        self.line = line
        self.message = message

    def __str__(self) -> str:
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
    return {
        "schema": SCHEMA,
        "task": task,
        "env": env_header(env) if isinstance(env, Vocabulary) else env,
        "programs": list(programs),
        "source_hash": source_hash,
        "seed": seed,
        "length": length,
        "input": input,
        "result": result,
        "steps": steps,
    }


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
    return {
        "frame": frame,
        "depth": depth,
        "program": program,
        "args": args,
        "obs": obs,
        "call": call,
        "call_args": call_args,
        "end": call is None,
    }


def source_hash(*sources: str | bytes) -> str:
    """`sha256:<hex>` over the given sources (e.g. the .npi texts a task was built from)."""
    h = hashlib.sha256()
    for src in sources:
        data = src.encode("utf-8") if isinstance(src, str) else src
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return "sha256:" + h.hexdigest()


# ------------------------------------------------------------------------------- writing


class TraceWriter:
    """Write trace records, one per line, atomically.

    The lines go to a temporary file in the destination's directory, which is fsynced and
    then renamed over the destination on `close()`. On `abort()` (and when the `with` block
    ends by any exception, KeyboardInterrupt included) the temporary file is removed and an
    existing destination is left untouched. A path ending in `.gz` is gzip-compressed with a
    fixed header (no file name, mtime 0), so the same records always give the same bytes.
    The path "-" writes plain lines to stdout.

    `write` takes a record dict (serialised compactly, keys in the dict's order) or an
    already-serialised JSON string (one line; a fast producer may serialise itself).
    """

    def __init__(self, path: str | os.PathLike[str], *, compresslevel: int = 6) -> None:
        self.path = os.fspath(path)
        self.count = 0
        self._closed = True  # until the temporary file exists
        self._tmp: str | None = None
        self._raw: IO[bytes] | None = None
        self._gz: gzip.GzipFile | None = None
        self._out: Any = None  # None: stdout
        if self.path == "-":
            self._closed = False
            return
        directory, base = os.path.split(os.path.abspath(self.path))
        fd = -1
        for _ in range(100):
            tmp = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            break
        else:  # pragma: no cover - 100 random name clashes
            raise FileExistsError(f"cannot create a temporary file next to {self.path}")
        self._tmp = tmp
        self._closed = False
        try:
            self._raw = os.fdopen(fd, "wb")
            if self.path.endswith(".gz"):
                self._gz = gzip.GzipFile(
                    filename="",
                    mode="wb",
                    fileobj=self._raw,
                    compresslevel=compresslevel,
                    mtime=0,
                )
                self._out = io.BufferedWriter(self._gz, buffer_size=1 << 20)  # type: ignore[arg-type]
            else:
                self._out = self._raw
        except BaseException:
            self.abort()
            raise

    def write(self, record: dict[str, Any] | str) -> None:
        if self._closed:
            raise ValueError(f"write to a closed TraceWriter ({self.path})")
        if isinstance(record, str):
            line = record[:-1] if record.endswith("\n") else record
            if "\n" in line:
                raise ValueError("a serialised trace must be one line of JSON (no newline)")
        elif isinstance(record, dict):
            line = json.dumps(record, separators=_JSON_SEPARATORS)
        else:
            raise TypeError(f"a trace record is a dict or a JSON string, not {type(record)}")
        if self._out is None:
            sys.stdout.write(line + "\n")
        else:
            self._out.write(line.encode("utf-8") + b"\n")
        self.count += 1

    def close(self) -> None:
        """Finish the file and move it into place (idempotent)."""
        if self._closed:
            return
        if self._out is None:
            self._closed = True
            sys.stdout.flush()
            return
        assert self._raw is not None and self._tmp is not None
        try:
            if self._gz is not None:
                self._out.close()  # flushes into the GzipFile and closes it (not the raw file)
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
            try:
                os.chmod(self._tmp, stat.S_IMODE(os.stat(self.path).st_mode))
            except OSError:
                pass  # no destination yet: keep the umask's permissions
            os.replace(self._tmp, self.path)
            self._tmp = None
            self._closed = True
        except BaseException:
            self.abort()
            raise
        _fsync_directory(os.path.dirname(os.path.abspath(self.path)))

    def abort(self) -> None:
        """Discard what was written; an existing destination is left untouched."""
        self._closed = True
        for closer in (self._out, self._gz, self._raw):
            if closer is None or closer is sys.stdout:
                continue
            try:
                closer.close()
            except Exception:
                pass
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass
            self._tmp = None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # an unclosed writer never leaves its temporary file behind
        if not getattr(self, "_closed", True):
            self.abort()


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_traces(
    path: str | os.PathLike[str], records: Iterable[dict[str, Any] | str], *, compresslevel: int = 6
) -> int:
    """Write `records` (dicts or JSON strings) to `path` atomically; returns how many."""
    with TraceWriter(path, compresslevel=compresslevel) as writer:
        for record in records:
            writer.write(record)
    return writer.count


# ------------------------------------------------------------------------------- reading


class _Invalid(Exception):
    """A validation failure of one record (the reader adds path and line)."""


def read_traces(path: str | os.PathLike[str], *, validate: bool = True) -> Iterator[dict[str, Any]]:
    """Yield the trace records of a file (plain or gzip, detected by its first bytes).

    Each record is validated against `npi-trace/1` unless `validate` is false (JSON errors
    are always reported). Any defect raises TraceFormatError naming the line; blank lines
    are skipped. "-" reads stdin. A missing file raises FileNotFoundError as usual.
    """
    name = os.fspath(path)
    shown = "<stdin>" if name == "-" else name
    if name == "-":
        raw: IO[bytes] = sys.stdin.buffer
        owned = False
    else:
        raw = open(name, "rb")  # noqa: SIM115 - closed in the finally below
        owned = True
    try:
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
        stream: IO[bytes] = buffered
        if buffered.peek(2)[:2] == _GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=buffered, mode="rb")
        lineno = 0
        lines = iter(stream)
        while True:
            lineno += 1
            try:
                raw_line = next(lines)
            except StopIteration:
                break
            except (EOFError, OSError, zlib.error) as exc:
                if stream is buffered:  # a plain file: a real I/O error, not a format error
                    raise
                raise TraceFormatError(
                    shown, lineno, f"corrupt or truncated gzip data ({exc})"
                ) from None
            try:
                text = raw_line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TraceFormatError(
                    shown,
                    lineno,
                    f"not UTF-8 text (byte {exc.start + 1} of the line): is this a trace file?",
                ) from None
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TraceFormatError(
                    shown, lineno, f"invalid JSON: {exc.msg} (column {exc.colno})"
                ) from None
            except ValueError as exc:  # e.g. an integer past Python's conversion limit
                raise TraceFormatError(shown, lineno, f"invalid JSON: {exc}") from None
            if validate:
                try:
                    _validate_record(record)
                except _Invalid as exc:
                    raise TraceFormatError(shown, lineno, str(exc)) from None
            elif type(record) is not dict:
                raise TraceFormatError(
                    shown, lineno, f"expected a JSON object, got {_json_type(record)}"
                )
            yield record
    finally:
        if owned:
            raw.close()


def validate_record(record: Any) -> None:
    """Check one record against `npi-trace/1`; raises ValueError with the reason."""
    try:
        _validate_record(record)
    except _Invalid as exc:
        raise ValueError(str(exc)) from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return type(value) is int


def _need(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise _Invalid(f"missing field {where}{key}")
    return obj[key]


def _need_type(
    obj: dict[str, Any], key: str, types: tuple[type, ...], what: str, where: str
) -> Any:
    value = _need(obj, key, where)
    if type(value) not in types:
        raise _Invalid(f"field {where}{key} must be {what}, got {_json_type(value)}")
    return value


def _validate_record(rec: Any) -> None:
    if type(rec) is not dict:
        raise _Invalid(f"expected a JSON object (one trace per line), got {_json_type(rec)}")
    if "schema" not in rec:
        raise _Invalid("missing field schema: not an npi trace")
    schema = rec["schema"]
    if schema != SCHEMA:
        if isinstance(schema, str) and schema.startswith("npi-trace/"):
            raise _Invalid(
                f"unsupported trace schema version {schema!r}: this npi reads {SCHEMA!r}"
            )
        raise _Invalid(f"not an npi trace: schema is {schema!r}, expected {SCHEMA!r}")
    _need_type(rec, "task", (str,), "a string", "")
    env = _need_type(rec, "env", (dict,), "an object", "")
    programs = _need_type(rec, "programs", (list,), "an array of strings", "")
    _need_type(rec, "source_hash", (str,), "a string", "")
    _need_type(rec, "seed", (int, type(None)), "an integer or null", "")
    length = _need_type(rec, "length", (int,), "an integer", "")
    if length < 0:
        raise _Invalid(f"field length must be >= 0, got {length}")
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
            raise _Invalid(
                f"programs[{i}] must be a qualified name FILESTEM.NAME, got {qualified!r}"
            )
        name = qualified.rsplit(".", 1)[1]
        if name == ACT:
            raise _Invalid(f"programs[{i}] is {qualified!r}: ACT is implicit and never listed")
        bare.add(name)
    _validate_steps(steps, bare, n_actions, limits, arg_range)


def _validate_vocabulary(vocab: dict[str, Any]) -> tuple[int, list[int | None], int]:
    w = "env.vocabulary."
    actions = _need_type(vocab, "actions", (list,), "an array", w)
    for i, action in enumerate(actions):
        where = f"{w}actions[{i}]."
        if type(action) is not dict:
            raise _Invalid(f"{w}actions[{i}] must be an object, got {_json_type(action)}")
        _need_type(action, "name", (str,), "a string", where)
        aid = _need_type(action, "id", (int,), "an integer", where)
        if aid != i:
            raise _Invalid(f"{where}id is {aid}: actions must be listed in id order from 0")
        params = _need_type(action, "params", (list,), "an array of strings", where)
        if len(params) > 2 or any(type(p) is not str for p in params):
            raise _Invalid(f"{where}params must be at most 2 kind names (strings)")
    names = _need_type(vocab, "names", (dict,), "an object", w)
    for key, value in names.items():
        if not _is_int(value):
            raise _Invalid(f"{w}names.{key} must be an integer, got {_json_type(value)}")
    kinds = _need_type(vocab, "kinds", (dict,), "an object", w)
    for key, members in kinds.items():
        if type(members) is not list or any(type(m) is not str for m in members):
            raise _Invalid(f"{w}kinds.{key} must be an array of names (strings)")
    observation = _need_type(vocab, "observation", (list,), "an array", w)
    limits: list[int | None] = []  # symbols per slot; None: not checked (image slots)
    for i, slot in enumerate(observation):
        where = f"{w}observation[{i}]."
        if type(slot) is not dict:
            raise _Invalid(f"{w}observation[{i}] must be an object, got {_json_type(slot)}")
        _need_type(slot, "name", (str,), "a string", where)
        symbols = _need_type(slot, "symbols", (int,), "an integer", where)
        if slot.get("kind", "symbol") == "symbol":
            if symbols < 1:
                raise _Invalid(f"{where}symbols must be >= 1, got {symbols}")
            limits.append(symbols)
        else:
            limits.append(None)
    _need_type(vocab, "blank", (int,), "an integer", w)
    arg_range = _need_type(vocab, "arg_range", (int,), "an integer", w)
    if arg_range < 1:
        raise _Invalid(f"{w}arg_range must be >= 1, got {arg_range}")
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
        return f"must be an array of 3 integers, got {_json_type(value)}"
    if len(value) != 3:
        return f"must be an array of 3 integers, got {len(value)} elements"
    for v in value:
        if type(v) is not int:
            return f"must be an array of 3 integers, got {_json_type(v)} {v!r}"
    return f"must hold integers in [0, {limit}) (the env's arg_range), got {value}"


def _validate_steps(
    steps: list[Any], bare: set[str], n_actions: int, limits: list[int | None], arg_range: int
) -> None:
    if not steps:
        raise _Invalid("steps is empty: every run has at least the entry's return step")
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
            raise _Invalid(f"steps[{i}].frame must be an integer >= 0, got {frame!r}")
        if type(depth) is not int or depth < 0:
            raise _Invalid(f"steps[{i}].depth must be an integer >= 0, got {depth!r}")
        if type(program) is not str:
            raise _Invalid(f"steps[{i}].program must be a string, got {_json_type(program)}")
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
            raise _Invalid(f"steps[{i}].args {_triple_error(args, arg_range)}")
        if type(obs) is not list or len(obs) != n_obs:
            got = f"{len(obs)} values" if type(obs) is list else _json_type(obs)
            raise _Invalid(
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
            raise _Invalid(f"steps[{i}].end must be true or false, got {_json_type(end)}")
        if call is None:
            if not end:
                raise _Invalid(f"steps[{i}]: call is null (a return step) but end is false")
            if call_args != zeros:
                raise _Invalid(f"steps[{i}].call_args must be [0,0,0] on a return step")
        else:
            if type(call) is not str:
                raise _Invalid(f"steps[{i}].call must be a program name or null")
            if end:
                raise _Invalid(f"steps[{i}]: end is true but the step calls {call} (must be null)")
            if call == ACT:
                if type(call_args) is not list or len(call_args) != 3:
                    raise _Invalid(f"steps[{i}].call_args {_triple_error(call_args, arg_range)}")
                aid, a1, a2 = call_args
                if type(aid) is not int or not 0 <= aid < n_actions:
                    raise _Invalid(
                        f"steps[{i}].call_args[0] must be an action id in [0, {n_actions}), "
                        f"got {aid!r}"
                    )
                if (
                    type(a1) is not int
                    or type(a2) is not int
                    or not (0 <= a1 < arg_range and 0 <= a2 < arg_range)
                ):
                    raise _Invalid(f"steps[{i}].call_args {_triple_error(call_args, arg_range)}")
            else:
                if call not in bare:
                    raise _Invalid(f"steps[{i}].call {call!r} is not among the trace's programs")
                if not _triple_ok(call_args, arg_range):
                    raise _Invalid(f"steps[{i}].call_args {_triple_error(call_args, arg_range)}")
        # ---- structure: frames open in order, nest properly and each ends with one return
        if starts_frame:
            if frame != next_frame:
                raise _Invalid(
                    f"steps[{i}].frame is {frame}: the new frame here must be {next_frame}"
                )
            if depth != len(stack):
                raise _Invalid(
                    f"steps[{i}].depth is {depth}: frame {frame} is at depth {len(stack)}"
                )
            if program not in bare:
                raise _Invalid(f"steps[{i}].program {program!r} is not among the trace's programs")
            if pending is not None and (program != pending[0] or args != pending[1]):
                raise _Invalid(
                    f"steps[{i}]: frame {frame} runs {program}{args} but its caller called "
                    f"{pending[0]}{pending[1]}"
                )
            stack.append((frame, depth, program, args))
            next_frame += 1
            starts_frame = False
            pending = None
        else:
            if not stack:
                raise _Invalid(f"steps[{i}]: a step after the entry frame returned")
            top = stack[-1]
            if frame != top[0] or depth != top[1] or program != top[2] or args != top[3]:
                raise _Invalid(
                    f"steps[{i}] must continue frame {top[0]} ({top[2]}{top[3]} at depth "
                    f"{top[1]}), got frame {frame} ({program}{args} at depth {depth})"
                )
        if end:
            stack.pop()
        elif call != ACT:
            starts_frame = True
            pending = (call, call_args)
    if pending is not None:
        raise _Invalid(f"steps end right after a call to {pending[0]}: its frame is missing")
    if stack:
        top = stack[-1]
        raise _Invalid(f"steps end before frame {top[0]} ({top[2]}) returned")


def _step_shape_error(i: int, step: Any) -> NoReturn:
    if type(step) is not dict:
        raise _Invalid(f"steps[{i}] must be an object, got {_json_type(step)}")
    missing = [k for k in STEP_KEYS if k not in step]
    if missing:
        raise _Invalid(f"steps[{i}] is missing field {missing[0]}")
    extra = sorted(set(step) - set(STEP_KEYS))
    raise _Invalid(f"steps[{i}] has unknown field {extra[0]}")


def _obs_error(where: str, obs: list[Any], limits: list[int | None]) -> NoReturn:
    for k, (v, lim) in enumerate(zip(obs, limits, strict=True)):
        if lim is None:
            continue
        if type(v) is not int:
            raise _Invalid(f"{where}.obs[{k}] must be an integer, got {_json_type(v)}")
        if not 0 <= v < lim:
            raise _Invalid(f"{where}.obs[{k}] is {v}: the slot has symbols 0..{lim - 1}")


# ------------------------------------------------------------------------------- frames


@dataclass(slots=True)
class Frame:
    """One program call: its steps in order (the last is its return step)."""

    id: int
    parent: int | None  # the caller's frame id; None for the entry's frame
    call_step: int | None  # index in the parent's `steps` of the step that made this call
    depth: int
    program: str
    args: list[int]
    steps: list[dict[str, Any]]
    children: list[int] = field(default_factory=list)  # frame ids this frame called, in order


def iter_frames(steps: list[dict[str, Any]]) -> list[Frame]:
    """The frames of a (valid) trace's steps, indexed by frame id.

    `frames[i].steps` is frame i's step sequence (what a network is trained on, one
    independent sequence per frame); `parent`, `call_step` and `children` give the call tree.
    """
    frames: list[Frame] = []
    append = frames.append
    current: Frame | None = None
    for step in steps:
        f = step["frame"]
        if current is not None and f == current.id:
            current.steps.append(step)
            continue
        if f == len(frames):
            if current is None:
                frame = Frame(f, None, None, step["depth"], step["program"], step["args"], [step])
            else:
                frame = Frame(
                    f,
                    current.id,
                    len(current.steps) - 1,
                    step["depth"],
                    step["program"],
                    step["args"],
                    [step],
                )
                current.children.append(f)
            append(frame)
            current = frame
        elif 0 <= f < len(frames):
            current = frames[f]
            current.steps.append(step)
        else:
            raise ValueError(
                f"step of frame {f} before frame {len(frames)} started: "
                "frame ids must be assigned in the order frames start"
            )
    return frames
