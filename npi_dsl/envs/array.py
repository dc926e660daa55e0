"""The array of bubble sort (Reed & de Freitas 2016, section 4.2).

One row of N cells holding digits 0..9 and three pointers p1, p2, p3, all starting at cell 0.
A pointer may stand one cell past either edge (positions -1..N), where `value` reads BLANK;
moving further is an error.

As in the scratch pad, the hot functions are closures over plain lists that are only changed
in place. Internally the cells are stored with one BLANK on each side (`cells[q]` for position
q - 1), so reading under a pointer needs no bounds test, and two 0/1 tables give the
at-start / at-end bits of the observation by lookup.
"""

from __future__ import annotations

import random
from typing import Any, NoReturn

from npi_dsl.envs.base import (
    JSON,
    ActionSpec,
    BoundOperations,
    EnvError,
    Environment,
    InputPart,
    ObsSlot,
    QuerySpec,
    Vocabulary,
    describe_value,
)

LEFT = 0
RIGHT = 1
BLANK = 10
POINTERS = ("p1", "p2", "p3")
MOVE = 0
SWAP = 1


class ArrayEnv(BoundOperations, Environment):
    """Bubble sort's array: N digits, pointers p1, p2, p3."""

    name = "array"
    config_defaults = {"arg_range": 10}

    #: pointer arguments are 0..2
    MIN_ARG_RANGE = 3
    MIN_ARG_RANGE_REASON = "pointers are 0..2"

    @classmethod
    def vocabulary(cls, **config: int) -> Vocabulary:
        resolved = cls.resolve_config(config)
        names = {p: i for i, p in enumerate(POINTERS)}
        names.update(LEFT=LEFT, RIGHT=RIGHT, BLANK=BLANK)
        slots = [ObsSlot("value_p1", 11), ObsSlot("value_p2", 11)]
        for p in POINTERS:
            slots += [ObsSlot(f"{p}_at_start", 2), ObsSlot(f"{p}_at_end", 2)]
        return Vocabulary(
            env=cls.name,
            names=names,
            kinds={"ptr": POINTERS, "dir": ("LEFT", "RIGHT")},
            actions=(
                ActionSpec("MOVE", ("ptr", "dir"), "move a pointer one cell"),
                ActionSpec("SWAP", ("ptr", "ptr"), "swap the two cells under two pointers"),
            ),
            queries={
                "value": QuerySpec(
                    "value", ("ptr",), "int", "the value under the pointer, BLANK off the array",
                    symbols=11,
                ),
                "at_start": QuerySpec(
                    "at_start", ("ptr",), "bool", "whether the pointer is on cell 0"
                ),
                "at_end": QuerySpec(
                    "at_end", ("ptr",), "bool", "whether the pointer is on cell N-1"
                ),
                "same": QuerySpec(
                    "same", ("ptr", "ptr"), "bool", "whether the two pointers stand on the "
                    "same cell"
                ),
                "length": QuerySpec(
                    "length", (), "int", "the number of cells N",
                    private="the array's length is privileged: a network that saw it would be "
                    "told how far to go instead of finding the end with at_end/at_start/same"),
            },
            observation=tuple(slots),
            default_observed=(("value", (0,)), ("value", (1,)),
                              *((q, (i,)) for i in range(3) for q in ("at_start", "at_end"))),
            arg_range=resolved["arg_range"],
            blank=BLANK,
            oracles={"sorted": "the input sorted ascending", "max": "the largest input value",
                     "reversed": "the input in reverse order"},
            config=resolved,
            input_parts=(InputPart("xs", "list", "the array's values, cell 0 first"),),
            result_type="list",
            oracle_types={"sorted": "list", "max": "int", "reversed": "list"},
        )

    def __init__(self, **config: int) -> None:
        super().__init__(**config)
        self.config = self.resolve_config(config)
        cells: list[int] = []  # BLANK, the N values, BLANK: position x is cells[x + 1]
        start: list[int] = []  # start[q] == 1 iff internal index q is cell 0
        end: list[int] = []  # end[q] == 1 iff internal index q is cell N-1
        q = [1, 1, 1]  # internal index (position + 1) of p1, p2, p3
        size = [0]  # a cell: N
        obs = [0] * 8  # the observation, kept up to date by every change
        self._cells = cells
        self._start = start
        self._end = end
        self._q = q
        self._size = size
        self._obs = obs
        start_slot = (2, 4, 6)
        end_slot = (3, 5, 7)

        def observe() -> tuple[int, ...]:
            return tuple(obs)

        def move(ptr: int, direction: int) -> None:
            try:
                if direction == 1:
                    nq = q[ptr] + 1
                    if nq > size[0] + 1 or ptr < 0:
                        _move_error(ptr, direction, nq)
                elif direction == 0:
                    nq = q[ptr] - 1
                    if nq < 0 or ptr < 0:
                        _move_error(ptr, direction, nq)
                else:
                    _move_error(ptr, direction, 0)
            except IndexError:  # ptr >= 3
                _move_error(ptr, direction, 0)
            q[ptr] = nq
            obs[start_slot[ptr]] = start[nq]
            obs[end_slot[ptr]] = end[nq]
            if ptr < 2:
                obs[ptr] = cells[nq]

        def _move_error(ptr: int, direction: int, nq: int) -> NoReturn:
            if not 0 <= ptr <= 2:
                raise EnvError(f"MOVE: no pointer {ptr} (pointers are 0..2: p1, p2, p3)")
            if direction not in (0, 1):
                raise EnvError(f"MOVE: direction must be LEFT (0) or RIGHT (1), got {direction}")
            raise EnvError(
                f"pointer {POINTERS[ptr]} moved off the array to position {nq - 1} "
                f"(array has {size[0]} cells; pointers may stand at -1..{size[0]})"
            )

        def swap(ptr1: int, ptr2: int) -> None:
            if 0 <= ptr1 <= 2 and 0 <= ptr2 <= 2:
                a = q[ptr1]
                b = q[ptr2]
                n = size[0]
                if 1 <= a <= n and 1 <= b <= n:
                    cells[a], cells[b] = cells[b], cells[a]
                    obs[0] = cells[q[0]]
                    obs[1] = cells[q[1]]
                    return
                off = ptr1 if not 1 <= a <= n else ptr2
                raise EnvError(
                    f"SWAP: pointer {POINTERS[off]} is off the array at position "
                    f"{q[off] - 1} (array has {n} cells)"
                )
            bad = ptr1 if not 0 <= ptr1 <= 2 else ptr2
            raise EnvError(f"SWAP: no pointer {bad} (pointers are 0..2: p1, p2, p3)")

        def value(ptr: int) -> int:
            if 0 <= ptr <= 2:
                return cells[q[ptr]]
            raise EnvError(f"value: no pointer {ptr} (pointers are 0..2: p1, p2, p3)")

        def at_start(ptr: int) -> bool:
            if 0 <= ptr <= 2:
                return q[ptr] == 1
            raise EnvError(f"at_start: no pointer {ptr} (pointers are 0..2: p1, p2, p3)")

        def at_end(ptr: int) -> bool:
            if 0 <= ptr <= 2:
                return q[ptr] == size[0]
            raise EnvError(f"at_end: no pointer {ptr} (pointers are 0..2: p1, p2, p3)")

        def same(ptr1: int, ptr2: int) -> bool:
            if 0 <= ptr1 <= 2 and 0 <= ptr2 <= 2:
                return q[ptr1] == q[ptr2]
            bad = ptr1 if not 0 <= ptr1 <= 2 else ptr2
            raise EnvError(f"same: no pointer {bad} (pointers are 0..2: p1, p2, p3)")

        def length() -> int:
            return size[0]

        self.bind_operations(observe, (move, swap), {
            "value": value,
            "at_start": at_start,
            "at_end": at_end,
            "same": same,
            "length": length,
        })
        self.reset([0])

    # ---- inputs and oracles
    def parse_input(self, value: JSON) -> JSON:
        if not isinstance(value, (list, tuple)) or not value:
            raise EnvError(
                "array input must be a non-empty JSON list of digits 0..9, e.g. [3, 1, 2]; "
                f"got {describe_value(value)}"
            )
        for i, v in enumerate(value):
            if type(v) is not int or not 0 <= v <= 9:
                raise EnvError(
                    f"array input must hold digits 0..9: element {i} is {describe_value(v)}")
        return list(value)

    def sample_input(self, rng: random.Random, length: int) -> JSON:
        if type(length) is not int or length < 1:
            raise EnvError(f"array input length must be an integer >= 1, got {length!r}")
        return [rng.randrange(10) for _ in range(length)]

    def input_values(self, value: JSON) -> tuple[Any, ...]:
        return (list(value),)

    def expected(self, oracle: str, input: JSON) -> JSON:
        values = self.parse_input(input)
        if oracle == "sorted":
            return sorted(values)
        if oracle == "max":
            return max(values)
        if oracle == "reversed":
            return values[::-1]
        raise EnvError(f"env array has no oracle {oracle!r} (it has: sorted, max, reversed)")

    # ---- running
    def reset(self, input: JSON) -> None:
        values = self.parse_input(input)
        self._layout(len(values))
        self._cells[:] = [BLANK, *values, BLANK]
        self._q[:] = [1, 1, 1]
        self._refresh()

    def _layout(self, n: int) -> None:
        if n != self._size[0] or not self._start:
            self._size[0] = n
            self._start[:] = [0, 1] + [0] * n
            self._end[:] = [0] * (n + 2)
            self._end[n] = 1

    def _refresh(self) -> None:
        cells, start, end = self._cells, self._start, self._end
        a, b, c = self._q
        self._obs[:] = [cells[a], cells[b], start[a], end[a], start[b], end[b], start[c], end[c]]

    def result(self) -> JSON:
        """The array as a list of ints."""
        return self._cells[1:-1]

    def render(self) -> str:
        """The cells on one line (BLANK past the edges as '.'), then one line per pointer."""
        width = max(2, len(str(self._size[0])))
        cells = "".join(("." if v == BLANK else str(v)).rjust(width + 1) for v in self._cells)
        lines = ["     " + cells]
        for i, p in enumerate(POINTERS):
            lines.append(f"{p:<5}" + " " * ((width + 1) * self._q[i] + width) + "^")
        return "\n".join(lines)

    def snapshot(self) -> Any:
        return (tuple(self._cells), tuple(self._q))

    def restore(self, state: Any) -> None:
        cells, q = state
        self._layout(len(cells) - 2)
        self._cells[:] = cells
        self._q[:] = q
        self._refresh()
