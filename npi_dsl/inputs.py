"""Bounded, non-blocking reading of what a user names: regular files only, size limits.

The limits (docs/cli.md, "Limits"):

* `MAX_INPUT_BYTES` (64 MiB): `npi run --input @FILE` and `--input -` (stdin);
* `MAX_TRACE_LINE_BYTES` (256 MiB): one line (one record) of a trace file;
* a `.npi` program or import file: 1 MiB (`npi_dsl.parser.MAX_FILE_BYTES`, E006).

Where a regular file is expected (a program, an import, `--input @FILE`, a trace file),
anything else is refused before a byte is read: a FIFO would block the open until a writer
came, a device such as /dev/zero never ends. The file is opened with `O_NONBLOCK` and checked
with `fstat` on the open descriptor, so a path swapped for a pipe between a check and the
open cannot hang either.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from typing import BinaryIO

from npi_dsl.errors import NpiError

MAX_INPUT_BYTES = 64 * 1024 * 1024
MAX_TRACE_LINE_BYTES = 256 * 1024 * 1024


class InputError(NpiError):
    """A file or stream a user named cannot be read as asked (exit 2: bad input)."""

    exit_code = 2


def kind_of(mode: int) -> str:
    """How messages name a file that is not a regular file."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def describe_oserror(e: OSError) -> str:
    """An OSError as a short reason (a symlink loop named as such)."""
    if e.errno == errno.ELOOP:
        return "a loop of symbolic links"
    if e.errno == errno.ENOENT:
        return "does not exist"
    return e.strerror or str(e)


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for reading, never blocking.

    Raises NotRegularFile (an OSError) for a FIFO, device, socket or directory, and the usual
    OSError (FileNotFoundError, ELOOP...) when it cannot be opened."""
    name = os.fspath(path)
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(name, kind_of(mode))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class NotRegularFile(OSError):
    """A path names a FIFO, a device, a socket or a directory where a file is expected."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"is {kind}, not a regular file", path)
        self.kind = kind


def read_limited(stream: BinaryIO | io.RawIOBase, limit: int) -> bytes | None:
    """At most `limit` bytes of a stream; None when it holds more."""
    chunks: list[bytes] = []
    left = limit + 1
    while left > 0:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    return None if len(data) > limit else data


def mib(n: int) -> str:
    return f"{n // 2**20} MiB"
