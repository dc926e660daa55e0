"""Golden traces: the paper's Figure 3 (96 + 125) and the canonical bubble sort; MAX."""

from __future__ import annotations

from interp_helpers import checked, runner

from npi_dsl.checker import load
from npi_dsl.interpreter import compile_task
from npi_dsl.trace import validate_record

MOVE, WRITE = 0, 1
IN1, IN2, CARRY, OUT = 0, 1, 2, 3
LEFT, RIGHT = 0, 1
NONE = [0, 0, 0]


def _carry_frame(frame: int) -> list[tuple]:
    return [
        (frame, 2, "CARRY", "ACT", [MOVE, CARRY, LEFT]),
        (frame, 2, "CARRY", "ACT", [WRITE, CARRY, 1]),
        (frame, 2, "CARRY", "ACT", [MOVE, CARRY, RIGHT]),
        (frame, 2, "CARRY", None, NONE),
    ]


def _lshift_frame(frame: int) -> list[tuple]:
    return [(frame, 1, "LSHIFT", "ACT", [MOVE, row, LEFT]) for row in (IN1, IN2, CARRY, OUT)] \
        + [(frame, 1, "LSHIFT", None, NONE)]


def test_figure3_96_plus_125() -> None:
    record = runner("addition").run(["96", "125"])
    validate_record(record)
    assert record["result"] == "221"
    assert record["input"] == ["96", "125"]
    assert record["programs"] == ["addition.ADD", "addition.ADD1", "addition.CARRY",
                                  "addition.LSHIFT"]
    expected = (
        [(0, 0, "ADD", "ADD1", NONE),
         (1, 1, "ADD1", "ACT", [WRITE, OUT, 1]),
         (1, 1, "ADD1", "CARRY", NONE)]
        + _carry_frame(2)
        + [(1, 1, "ADD1", None, NONE),
           (0, 0, "ADD", "LSHIFT", NONE)]
        + _lshift_frame(3)
        + [(0, 0, "ADD", "ADD1", NONE),
           (4, 1, "ADD1", "ACT", [WRITE, OUT, 2]),
           (4, 1, "ADD1", "CARRY", NONE)]
        + _carry_frame(5)
        + [(4, 1, "ADD1", None, NONE),
           (0, 0, "ADD", "LSHIFT", NONE)]
        + _lshift_frame(6)
        + [(0, 0, "ADD", "ADD1", NONE),
           (7, 1, "ADD1", "ACT", [WRITE, OUT, 2]),
           (7, 1, "ADD1", None, NONE),
           (0, 0, "ADD", "LSHIFT", NONE)]
        + _lshift_frame(8)
        + [(0, 0, "ADD", None, NONE)]
    )
    got = [(s["frame"], s["depth"], s["program"], s["call"], s["call_args"])
           for s in record["steps"]]
    assert got == expected
    for s in record["steps"]:
        assert s["args"] == [0, 0, 0]
        assert s["end"] is (s["call"] is None)
    # the observation: the four digits under the pointers, BLANK = 10
    assert record["steps"][0]["obs"] == [6, 5, 10, 10]
    assert record["steps"][2]["obs"] == [6, 5, 10, 1]  # after WRITE out 1
    assert record["steps"][5]["obs"] == [6, 5, 1, 1]  # carry pointer one left, on the 1
    assert record["steps"][-1]["obs"] == [10, 10, 10, 10]


# programs/sorting.npi as issue 2 states it (a contract: acceptance compares traces step by step)
CANONICAL_SORTING = """\
env array

task sort {
    entry BUBBLESORT()
}

program BUBBLESORT() {
    while not at_end(p3) {
        BUBBLE()
        RESET()
    }
}

program BUBBLE() {
    MOVE(p2, RIGHT)
    while value(p2) != BLANK {
        BSTEP()
    }
}

program BSTEP() {
    COMPSWAP()
    RSHIFT()
}

program COMPSWAP() {
    if value(p1) > value(p2) {
        SWAP(p1, p2)
    }
}

program RESET() {
    while not at_start(p1) {
        LSHIFT()
    }
    MOVE(p2, LEFT)
    MOVE(p3, RIGHT)
}

program LSHIFT() {
    MOVE(p1, LEFT)
    MOVE(p2, LEFT)
}

program RSHIFT() {
    MOVE(p1, RIGHT)
    MOVE(p2, RIGHT)
}
"""


def _strip(steps: list[dict]) -> list[tuple]:
    return [(s["frame"], s["depth"], s["program"], tuple(s["args"]), tuple(s["obs"]), s["call"],
             tuple(s["call_args"]), s["end"]) for s in steps]


def test_bubble_sort_5_2_8_is_the_canonical_trace(tmp_path) -> None:  # noqa: ANN001
    record = runner("sorting").run([5, 2, 8])
    validate_record(record)
    assert record["result"] == [2, 5, 8]
    # the same trace as the canonical program text, run by the plain reference interpreter
    path = tmp_path / "sorting.npi"
    path.write_text(CANONICAL_SORTING)
    canonical = load(path)
    env = canonical.create_env()
    env.reset([5, 2, 8])
    reference = compile_task(canonical, engine="reference").run_from(env, "sorting.BUBBLESORT")
    assert _strip(record["steps"]) == _strip(reference)
    # its shape: N - 1 = 2 sweeps, each BUBBLE then RESET; p3 advances once per RESET
    top = [s["call"] for s in record["steps"] if s["frame"] == 0]
    assert top == ["BUBBLE", "RESET", "BUBBLE", "RESET", None]
    swaps = [s for s in record["steps"] if s["call"] == "ACT" and s["call_args"][0] == 1]
    assert len(swaps) == 1 and swaps[0]["program"] == "COMPSWAP"  # 5 <-> 2
    p3_moves = [s for s in record["steps"] if s["call"] == "ACT" and s["call_args"][:2] == [0, 2]]
    assert [s["call_args"][2] for s in p3_moves] == [RIGHT, RIGHT]


def test_max_3_9_4_gives_9() -> None:
    record = runner("max").run([3, 9, 4])
    validate_record(record)
    assert record["result"] == 9
    assert record["programs"] == ["max.MAX", "max.RJMP", "sorting.BSTEP", "sorting.BUBBLE",
                                  "sorting.BUBBLESORT", "sorting.COMPSWAP", "sorting.LSHIFT",
                                  "sorting.RESET", "sorting.RSHIFT"]
    top = [s["call"] for s in record["steps"] if s["frame"] == 0]
    assert top == ["BUBBLESORT", "RJMP", None]


def test_recursive_addition_has_bounded_frames() -> None:
    record = runner("addition_recursive").run(["96", "125"])
    validate_record(record)
    assert record["result"] == "221"
    adds = [s for s in record["steps"] if s["program"] == "ADD"]
    assert max(s["depth"] for s in adds) == 3  # three digits, then the last ADD returns
    per_frame: dict[int, int] = {}
    for s in adds:
        per_frame[s["frame"]] = per_frame.get(s["frame"], 0) + 1
    assert sorted(per_frame.values()) == [1, 4, 4, 4]  # ADD1, LSHIFT, ADD, return


def test_reference_agrees_on_the_bundled_programs() -> None:
    for name, value in [("addition", ["96", "125"]), ("addition_recursive", ["999", "1"]),
                        ("sorting", [3, 1, 2, 0]), ("max", [1, 7, 3])]:
        c = checked(name)
        record = runner(name).run(value)
        env = c.create_env()
        env.reset(env.parse_input(value))
        task = next(iter(c.tasks.values()))
        reference = compile_task(c, engine="reference").run_from(env, task.entry)
        assert _strip(record["steps"]) == _strip(reference), name
