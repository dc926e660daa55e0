"""The pure built-in functions of task expressions (`where` and `expect`), and their types.

Task expressions range over three types: `int` (a Python int: numbers of any size), `bool`
and `list` (a list of ints, such as the array's `xs`). The built-ins are documented in
docs/language.md ("Task inputs"); every one is total on the values the environments give,
except `min` and `max` of an empty list (no environment gives one) and division by zero,
which are runtime errors naming the expression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

ValueType = Literal["int", "bool", "list"]


@dataclass(frozen=True)
class Builtin:
    name: str
    params: tuple[ValueType, ...]
    returns: ValueType
    fn: Callable[..., Any]
    doc: str


def _count(xs: list[int], v: int) -> int:
    return xs.count(v)


BUILTINS: dict[str, Builtin] = {b.name: b for b in (
    Builtin("len", ("list",), "int", len, "the number of elements"),
    Builtin("sum", ("list",), "int", sum, "the sum of the elements"),
    Builtin("min", ("list",), "int", min, "the smallest element"),
    Builtin("max", ("list",), "int", max, "the largest element"),
    Builtin("sorted", ("list",), "list", sorted, "the elements in ascending order"),
    Builtin("reversed", ("list",), "list", lambda xs: list(reversed(xs)),
            "the elements in reverse order"),
    Builtin("count", ("list", "int"), "int", _count, "how many elements equal the value"),
    Builtin("abs", ("int",), "int", abs, "the absolute value"),
)}

#: Python's int/str conversion refuses more than 4300 digits by default; numbers of any size
#: are converted in pieces of at most this many digits (DESIGN.md, "Numbers of any size").
_PIECE = 4000


def decimal_to_int(text: str) -> int:
    """A decimal string of any length as an int (divide and conquer past 4000 digits)."""
    if len(text) <= _PIECE:
        return int(text)
    half = len(text) // 2
    return decimal_to_int(text[:half]) * 10 ** (len(text) - half) + decimal_to_int(text[half:])


def int_to_decimal(value: int) -> str:
    """An int of any size as a decimal string (the inverse of `decimal_to_int`)."""
    if value < 0:
        return "-" + int_to_decimal(-value)
    if value < 10**_PIECE:
        return str(value)
    digits = 1
    while 10 ** (2 * digits) <= value:
        digits *= 2
    hi, lo = divmod(value, 10**digits)
    return int_to_decimal(hi) + int_to_decimal(lo).rjust(digits, "0")
