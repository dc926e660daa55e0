"""Writing and reading `npi-trace/1` files (JSON Lines, optionally gzip-compressed).

* `TraceWriter` / `write_traces(path, records)` write atomically and reproducibly (the same
  records give the same bytes, gzip included); a record is a dict or its JSON text (the
  compiled engine's fast path serialises itself, from the templates of `npi_dsl.trace_schema`).
* `read_traces(path)` yields records, validating each (`npi_dsl.trace_validate`); any defect
  of the file is a `TraceFormatError` whose str is `PATH:LINE: message`.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import secrets
import shutil
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from typing import IO, Any

from npi_dsl.inputs import (
    MAX_TRACE_LINE_BYTES,
    InputError,
    NotRegularFile,
    describe_oserror,
    mib,
    open_regular,
)
from npi_dsl.trace_schema import TraceFormatError
from npi_dsl.trace_validate import Invalid, json_type, validate_fields

_GZIP_MAGIC = b"\x1f\x8b"
_JSON_SEPARATORS = (",", ":")
_APPEND_BLOCK = 4 << 20  # TraceWriter.append_file reads and compresses 4 MiB at a time
#: copy_file_range refusing the pair of files (another file system, an old kernel): copy by hand
_NO_COPY_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF,
                  errno.EPERM}


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
        remove_stale_temporaries(self.path)
        fd = -1
        for _ in range(100):
            tmp = temporary_name(self.path)
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

    def append_file(self, path: str | os.PathLike[str], lines: int) -> None:
        """Append a file of `lines` serialised records (UTF-8, each ending in a newline), as
        written by `npi_dsl.parallel`'s workers: the same bytes as writing them one by one
        (a `.gz` gets them in its one compressed stream; a plain file copies them in the
        kernel where it can)."""
        if self._closed:
            raise ValueError(f"write to a closed TraceWriter ({self.path})")
        with open(path, "rb") as src:
            if self._out is None:  # stdout, as text, as `write` does
                while block := src.read(_APPEND_BLOCK):
                    sys.stdout.write(block.decode("utf-8"))
            elif self._gz is not None:
                while block := src.read(_APPEND_BLOCK):
                    self._out.write(block)
            else:
                self._copy(src)
        self.count += lines

    def _copy(self, src: IO[bytes]) -> None:
        assert self._raw is not None
        self._raw.flush()
        size = os.fstat(src.fileno()).st_size
        copy_range = getattr(os, "copy_file_range", None)
        if copy_range is not None:
            dst_fd = self._raw.fileno()
            done = 0
            try:
                while done < size:
                    n = copy_range(src.fileno(), dst_fd, size - done)
                    if n == 0:
                        break
                    done += n
            except OSError as e:
                if done or e.errno not in _NO_COPY_RANGE:
                    raise
            if done == size:
                return
            src.seek(done)  # the rest (a file that grew, or no copy_file_range here)
        shutil.copyfileobj(src, self._raw, _APPEND_BLOCK)

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
        fsync_directory(os.path.dirname(os.path.abspath(self.path)))

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


def temporary_name(path: str | os.PathLike[str]) -> str:
    """`.NAME.PID.HEX.tmp` beside `path`: where a file is written before it is renamed over
    `path` (hidden, and naming the process, so that `remove_stale_temporaries` knows it)."""
    directory, base = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def remove_stale_temporaries(path: str | os.PathLike[str]) -> int:
    """Remove the temporary files of `path` (`temporary_name`) that a process no longer
    running left behind, killed inside a write; returns how many. A temporary of a live
    process (another writer of the same file) is left alone."""
    directory, base = os.path.split(os.path.abspath(path))
    prefix = f".{base}."
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return 0
    removed = 0
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid, _, token = name[len(prefix):-len(".tmp")].partition(".")
        if not (pid.isdigit() and len(token) == 8) or _alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(directory, name))
            removed += 1
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a rename in `directory` durable (best effort: a directory that cannot be opened
    or synced, as on some file systems, is passed over)."""
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


def read_traces(path: str | os.PathLike[str], *, validate: bool = True) -> Iterator[dict[str, Any]]:
    """Yield the trace records of a file (plain or gzip, detected by its first bytes).

    Each record is validated against `npi-trace/1` unless `validate` is false (JSON errors
    are always reported). Any defect raises TraceFormatError naming the line; blank lines
    are skipped. "-" reads stdin. A missing file raises FileNotFoundError as usual; a path
    that is not a regular file (a FIFO, a device) or cannot be opened raises InputError, and
    a line longer than `npi_dsl.inputs.MAX_TRACE_LINE_BYTES` a TraceFormatError.
    """
    name = os.fspath(path)
    shown = "<stdin>" if name == "-" else name
    if name == "-":
        if sys.stdin is None:
            raise InputError("cannot read traces from standard input: it is closed")
        raw: IO[bytes] = sys.stdin.buffer
        owned = False
    else:
        try:
            raw = open_regular(name)
        except FileNotFoundError:
            raise
        except NotRegularFile as e:
            raise InputError(f"trace file {name} {e.strerror}: npi reads trace files, "
                             "not pipes or devices (save the traces to a file)") from None
        except OSError as e:
            raise InputError(f"cannot read trace file {name}: {describe_oserror(e)}") from None
        owned = True
    try:
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
        stream: IO[bytes] = buffered
        try:
            magic = buffered.peek(2)[:2]
        except OSError as e:
            if owned:
                raise
            raise InputError(f"cannot read traces from standard input: "
                             f"{describe_oserror(e)}") from None
        if magic == _GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=buffered, mode="rb")
        lineno = 0
        while True:
            lineno += 1
            try:
                raw_line = stream.readline(MAX_TRACE_LINE_BYTES + 1)
            except (EOFError, OSError, zlib.error) as exc:
                if stream is buffered:  # a plain file: a real I/O error, not a format error
                    raise
                raise TraceFormatError(
                    shown, lineno, f"corrupt or truncated gzip data ({exc})"
                ) from None
            if not raw_line:
                break
            if len(raw_line) > MAX_TRACE_LINE_BYTES:
                raise TraceFormatError(
                    shown, lineno, f"line longer than {mib(MAX_TRACE_LINE_BYTES)}, the limit "
                    "of one trace record (docs/cli.md, Limits)")
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
            except RecursionError:
                raise TraceFormatError(
                    shown, lineno, "invalid JSON: arrays or objects nested too deeply "
                    "(a trace record nests 6 levels)") from None
            if validate:
                try:
                    validate_fields(record)
                except Invalid as exc:
                    raise TraceFormatError(shown, lineno, str(exc)) from None
            elif type(record) is not dict:
                raise TraceFormatError(
                    shown, lineno, f"expected a JSON object, got {json_type(record)}"
                )
            yield record
    finally:
        if owned:
            raw.close()
