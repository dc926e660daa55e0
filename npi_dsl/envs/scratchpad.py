"""The scratch pad of grade-school addition (Reed & de Freitas 2016, section 4.1).

Four rows (in1, in2, carry, out) of L + 2 columns for operands of at most L digits, each
operand right-aligned so that its last digit is in the rightmost column. Four pointers, one
per row, all start on the rightmost column. Cells that hold no digit are BLANK (10).

Speed matters: the interpreter calls `observe`, the queries and `act` hundreds of thousands of
times a second. The state is therefore four plain lists of ints and one list of pointer
positions, and the hot functions are closures over those lists, built once per instance and
installed as instance attributes (`env.observe`, `env.act`, `query_fn`, `action_fn`). The lists
are only ever changed in place (`reset` and `restore` assign slices), so the closures stay
valid for the life of the instance.

The compiled engine inlines the pad's actions, queries and observation into its generated code
through the `npi_inline()` hook (the contract is npi_dsl/inline.py): four lines on the pad's
lists instead of a call. The hook is the only code outside this class that sees the lists.
"""

from __future__ import annotations

import random
from typing import Any, NoReturn

from npi_dsl.builtins import decimal_to_int, int_to_decimal
from npi_dsl.envs.base import (
    JSON,
    ActionSpec,
    BoundOperations,
    EnvError,
    Environment,
    InputPart,
    InputShape,
    ObsSlot,
    QuerySpec,
    Vocabulary,
    describe_value,
)
from npi_dsl.inline import InlineSpec, literal

LEFT = 0
RIGHT = 1
BLANK = 10
ROWS = ("in1", "in2", "carry", "out")
IN1, IN2, CARRY, OUT = 0, 1, 2, 3
MOVE = 0
WRITE = 1

#: digit() of a cell value: BLANK reads as 0
_DIGIT = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0)
#: cell value -> character in result(): BLANK reads as 0
_RESULT_CHARS = bytes.maketrans(bytes(range(11)), b"01234567890")
_ASCII_ZERO = 48
#: chunk size (decimal digits) of the string addition in `add_decimal`
_CHUNK = 18
_CHUNK_MOD = 10**_CHUNK


def add_decimal(a: str, b: str) -> str:
    """The sum of two non-negative decimal strings, as a decimal string without leading zeros.

    Works on numbers of any length (no int/str conversion of the whole numbers: Python limits
    those to 4300 digits by default); adds 18-digit chunks from the right.
    """
    if len(a) < len(b):
        a, b = b, a
    i, j = len(a), len(b)
    chunks: list[str] = []
    carry = 0
    while i > 0:
        lo = i - _CHUNK if i > _CHUNK else 0
        s = int(a[lo:i]) + carry
        if j > 0:
            s += int(b[j - _CHUNK if j > _CHUNK else 0 : j])
            j -= _CHUNK
        carry, s = divmod(s, _CHUNK_MOD)
        chunks.append(f"{s:018d}")
        i -= _CHUNK
    if carry:
        chunks.append(str(carry))
    chunks.reverse()
    return "".join(chunks).lstrip("0") or "0"


def _parse_number(value: Any, which: str) -> str:
    if isinstance(value, bool):
        raise EnvError(f"{which} operand must be a non-negative decimal number, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise EnvError(f"{which} operand must be non-negative, got {value}")
        try:
            return str(value)
        except ValueError:  # past Python's int/str conversion limit
            raise EnvError(
                f"{which} operand is too large to pass as an integer: pass it as a string"
            ) from None
    if isinstance(value, str):
        if not value or not (value.isascii() and value.isdigit()):
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise EnvError(f"{which} operand must be a string of decimal digits 0-9, got {shown!r}")
        return value.lstrip("0") or "0"
    raise EnvError(
        f"{which} operand must be a decimal number (a string of digits or an integer), "
        f"got {type(value).__name__}"
    )


def _sample_number(rng: random.Random, digits: int) -> str:
    if digits == 1:
        return str(rng.randrange(10))
    return str(rng.randrange(1, 10)) + "".join(rng.choices("0123456789", k=digits - 1))


class ScratchpadEnv(BoundOperations, Environment):
    """Addition on a 4-row scratch pad: rows in1, in2, carry, out."""

    name = "scratchpad"
    config_defaults = {"arg_range": 10}

    #: WRITE takes digits 0..9 as its value argument
    MIN_ARG_RANGE = 10
    MIN_ARG_RANGE_REASON = "WRITE takes digits 0..9"

    @classmethod
    def vocabulary(cls, **config: int) -> Vocabulary:
        resolved = cls.resolve_config(config)
        names = {row: i for i, row in enumerate(ROWS)}
        names.update(LEFT=LEFT, RIGHT=RIGHT, BLANK=BLANK)
        return Vocabulary(
            env=cls.name,
            names=names,
            kinds={"row": ROWS, "dir": ("LEFT", "RIGHT")},
            actions=(
                ActionSpec("MOVE", ("row", "dir"), "move the row's pointer one column"),
                ActionSpec("WRITE", ("row", "value"), "write a digit 0..9 under the pointer"),
            ),
            queries={
                "read": QuerySpec(
                    "read", ("row",), "int", "the digit under the row's pointer, or BLANK",
                    symbols=11,
                ),
                "digit": QuerySpec(
                    "digit", ("row",), "int", "the digit under the row's pointer, BLANK as 0",
                    symbols=10,
                ),
            },
            observation=tuple(ObsSlot(row, 11) for row in ROWS),
            default_observed=tuple(("read", (i,)) for i in range(len(ROWS))),
            arg_range=resolved["arg_range"],
            blank=BLANK,
            oracles={"sum": "the decimal sum of the two inputs"},
            config=resolved,
            input_parts=(InputPart("a", "int", "the first number (row in1)"),
                         InputPart("b", "int", "the second number (row in2)")),
            result_type="int",
            oracle_types={"sum": "int"},
        )

    @classmethod
    def npi_inline(cls) -> InlineSpec | None:
        """The pad's fast path for the compiled engine (npi_dsl/inline.py); none for a
        subclass, which may change what an action does."""
        return _SPEC if cls is ScratchpadEnv else None


    def __init__(self, **config: int) -> None:
        super().__init__(**config)
        self.config = self.resolve_config(config)
        r0: list[int] = []
        r1: list[int] = []
        r2: list[int] = []
        r3: list[int] = []
        rows = (r0, r1, r2, r3)
        pos = [0, 0, 0, 0]
        cur = [BLANK, BLANK, BLANK, BLANK]  # the value under each pointer, kept up to date
        ncols = [0]  # a cell: the number of columns
        self._rows = rows
        self._pos = pos
        self._cur = cur
        self._ncols = ncols
        digit_of = _DIGIT

        def observe() -> tuple[int, ...]:
            return tuple(cur)

        def move(row: int, direction: int) -> None:
            try:
                if direction == 1:
                    col = pos[row] + 1
                    if col >= ncols[0] or row < 0:
                        _move_error(row, direction, col)
                elif direction == 0:
                    col = pos[row] - 1
                    if col < 0 or row < 0:
                        _move_error(row, direction, col)
                else:
                    _move_error(row, direction, 0)
            except IndexError:  # row >= 4
                _move_error(row, direction, 0)
            pos[row] = col
            cur[row] = rows[row][col]

        def _move_error(row: int, direction: int, col: int) -> NoReturn:
            if not 0 <= row <= 3:
                raise EnvError(f"MOVE: no row {row} (rows are 0..3: in1, in2, carry, out)")
            if direction not in (0, 1):
                raise EnvError(f"MOVE: direction must be LEFT (0) or RIGHT (1), got {direction}")
            raise EnvError(
                f"pointer {ROWS[row]} moved off the pad at column {col} "
                f"(pad has {ncols[0]} columns)"
            )

        def write(row: int, value: int) -> None:
            if 0 <= value <= 9 and 0 <= row <= 3:
                rows[row][pos[row]] = value
                cur[row] = value
                return
            if not 0 <= row <= 3:
                raise EnvError(f"WRITE: no row {row} (rows are 0..3: in1, in2, carry, out)")
            raise EnvError(f"WRITE: value must be a digit 0..9, got {value}")

        def read(row: int) -> int:
            if 0 <= row <= 3:
                return cur[row]
            raise EnvError(f"read: no row {row} (rows are 0..3: in1, in2, carry, out)")

        def digit(row: int) -> int:
            if 0 <= row <= 3:
                return digit_of[cur[row]]
            raise EnvError(f"digit: no row {row} (rows are 0..3: in1, in2, carry, out)")

        self.bind_operations(observe, (move, write), {"read": read, "digit": digit})
        self.reset(["0", "0"])

    # ---- inputs and oracles
    def parse_input(self, value: JSON) -> JSON:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise EnvError(
                "scratchpad input must be a JSON list of two non-negative decimal numbers, "
                f'e.g. ["96", "125"] or [96, 125]; got {describe_value(value)}'
            )
        return [_parse_number(value[0], "first"), _parse_number(value[1], "second")]

    def input_length(self, value: JSON) -> int:
        return max(len(value[0]), len(value[1]))

    def sample_input(self, rng: random.Random, length: int) -> JSON:
        if type(length) is not int or length < 1:
            raise EnvError(f"scratchpad input length must be an integer >= 1, got {length!r}")
        first = _sample_number(rng, length)
        second = _sample_number(rng, rng.randint(1, length))
        if rng.random() < 0.5:
            first, second = second, first
        return [first, second]

    def input_values(self, value: JSON) -> tuple[Any, ...]:
        return (decimal_to_int(value[0]), decimal_to_int(value[1]))

    def result_form(self, value: Any) -> JSON:
        return int_to_decimal(value) if type(value) is int else value

    def sample_shaped(self, rng: random.Random, length: int, shape: InputShape) -> JSON:
        """Bounded parts (`b < 10`) are drawn below their bound (and below 10**length);
        the first free part then gets `length` digits, a second free one 1..length digits;
        an ordered pair of free parts (`a >= b`) is put in order."""
        if type(length) is not int or length < 1:
            raise EnvError(f"scratchpad input length must be an integer >= 1, got {length!r}")
        below = {i: b for i, b in shape.below.items() if b >= 1}
        if not below:
            first, second = self.sample_input(rng, length)
            parts = [first, second]
        else:
            parts = ["", ""]
            for i in (0, 1):
                if i in below:
                    parts[i] = str(rng.randrange(min(below[i], 10**length)))
            free = [i for i in (0, 1) if i not in below]
            for k, i in enumerate(free):
                parts[i] = _sample_number(rng, length if k == 0 else rng.randint(1, length))
        for i, j in shape.ordered:
            if i not in below and j not in below and (
                    (len(parts[i]), parts[i]) < (len(parts[j]), parts[j])):
                parts[i], parts[j] = parts[j], parts[i]
        return parts

    def expected(self, oracle: str, input: JSON) -> JSON:
        if oracle != "sum":
            raise EnvError(f"env scratchpad has no oracle {oracle!r} (it has: sum)")
        a, b = self.parse_input(input)
        return add_decimal(a, b)

    # ---- running
    def reset(self, input: JSON) -> None:
        a, b = self.parse_input(input)
        width = max(len(a), len(b)) + 2
        r0, r1, r2, r3 = self._rows
        r0[:] = [BLANK] * (width - len(a)) + [c - _ASCII_ZERO for c in a.encode("ascii")]
        r1[:] = [BLANK] * (width - len(b)) + [c - _ASCII_ZERO for c in b.encode("ascii")]
        r2[:] = [BLANK] * width
        r3[:] = [BLANK] * width
        self._pos[:] = [width - 1] * 4
        self._ncols[0] = width
        self._cur[:] = [r0[-1], r1[-1], r2[-1], r3[-1]]

    def result(self) -> JSON:
        """The out row as a decimal string.

        Every BLANK reads as 0 (as `digit` reads it), then leading zeros are stripped; "0" if
        nothing but zeros and BLANKs. A correct addition never leaves gaps in the out row.
        """
        text = bytes(self._rows[OUT]).translate(_RESULT_CHARS).decode("ascii")
        return text.lstrip("0") or "0"

    def render(self) -> str:
        """The four rows, one line each; the cell under each row's pointer is in brackets."""
        lines = []
        for i, row in enumerate(self._rows):
            p = self._pos[i]
            cells = [f" {'.' if v == BLANK else v} " for v in row]
            cells[p] = f"[{cells[p][1]}]"
            lines.append(f"{ROWS[i]:<6}" + "".join(cells).rstrip())
        return "\n".join(lines)

    def snapshot(self) -> Any:
        r0, r1, r2, r3 = self._rows
        return (tuple(r0), tuple(r1), tuple(r2), tuple(r3), tuple(self._pos))

    def restore(self, state: Any) -> None:
        r0, r1, r2, r3 = self._rows
        r0[:], r1[:], r2[:], r3[:] = state[0], state[1], state[2], state[3]
        pos = self._pos
        pos[:] = state[4]
        self._ncols[0] = len(state[0])
        self._cur[:] = [r0[pos[0]], r1[pos[1]], r2[pos[2]], r3[pos[3]]]


# ---------------------------------------------------------------- the inline spec


def _inline_state(env: Environment) -> dict[str, Any] | None:
    """The pad's lists, if this instance is laid out as the spec assumes (else None)."""
    try:
        rows, pos, cur, ncols = env._rows, env._pos, env._cur, env._ncols  # type: ignore[attr-defined]
        ok = (
            type(rows) is tuple and len(rows) == 4 and all(type(r) is list for r in rows)
            and type(pos) is list and len(pos) == 4 and type(cur) is list and len(cur) == 4
            and type(ncols) is list and len(ncols) == 1
            and all(len(r) == ncols[0] for r in rows)
            and all(cur[k] == rows[k][pos[k]] for k in range(4))
            and tuple(env.observe()) == tuple(cur)
        )
    except (AttributeError, IndexError, TypeError):
        return None
    if not ok:
        return None
    return {"R0": rows[0], "R1": rows[1], "R2": rows[2], "R3": rows[3], "POS": pos,
            "CUR": cur, "NC": ncols, "DIG": _DIGIT}


def _row(code: str) -> int | None:
    r = literal(code)
    return r if r is not None and 0 <= r <= 3 else None


def _inline_read(args: tuple[str, ...]) -> str | None:
    r = _row(args[0])
    return None if r is None else f"CUR[{r}]"


def _inline_digit(args: tuple[str, ...]) -> str | None:
    r = _row(args[0])
    return None if r is None else f"DIG[CUR[{r}]]"


def _inline_move(args: tuple[str, str], t: str, fail: str) -> list[str] | None:
    r, direction = _row(args[0]), literal(args[1])
    if r is None or direction not in (LEFT, RIGHT):
        return None
    if direction == LEFT:
        head = [f"{t} = POS[{r}] - 1", f"if {t} < 0:"]
    else:
        head = [f"{t} = POS[{r}] + 1", f"if {t} >= NC[0]:"]
    return head + [f"    {fail}", f"POS[{r}] = {t}", f"CUR[{r}] = R{r}[{t}]"]


def _inline_write(args: tuple[str, str], t: str, fail: str) -> list[str] | None:
    r, value = _row(args[0]), args[1]
    if r is None:
        return None
    lit = literal(value)
    if lit is not None:
        if not 0 <= lit <= 9:
            return None
        check: list[str] = []
    else:  # a local already checked to be in [0, arg_range): only the top can be wrong
        check = [f"if {value} > 9:", f"    {fail}"]
    return check + [f"R{r}[POS[{r}]] = {value}", f"CUR[{r}] = {value}"]


_SPEC = InlineSpec(
    names=("R0", "R1", "R2", "R3", "POS", "CUR", "NC", "DIG"),
    state=_inline_state,
    observe="(CUR[0], CUR[1], CUR[2], CUR[3])",
    queries={"read": _inline_read, "digit": _inline_digit},
    actions={MOVE: _inline_move, WRITE: _inline_write},
)
