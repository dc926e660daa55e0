"""The scratchpad environment, through its public interface."""

from __future__ import annotations

import copy
import pickle
import random
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npi_dsl.envs import EnvError, ObsSlot, create_env, vocabulary
from npi_dsl.envs.scratchpad import BLANK, add_decimal

IN1, IN2, CARRY, OUT = 0, 1, 2, 3
LEFT, RIGHT = 0, 1
MOVE, WRITE = 0, 1


@pytest.fixture
def pad():
    env = create_env("scratchpad")
    env.reset(["96", "125"])
    return env


# ---------------------------------------------------------------- vocabulary


def test_vocabulary_names_kinds_actions_queries():
    v = vocabulary("scratchpad")
    assert v.env == "scratchpad"
    assert dict(v.names) == {
        "in1": 0,
        "in2": 1,
        "carry": 2,
        "out": 3,
        "LEFT": 0,
        "RIGHT": 1,
        "BLANK": 10,
    }
    assert {k: tuple(m) for k, m in v.kinds.items()} == {
        "row": ("in1", "in2", "carry", "out"),
        "dir": ("LEFT", "RIGHT"),
    }
    assert [(a.name, a.params) for a in v.actions] == [
        ("MOVE", ("row", "dir")),
        ("WRITE", ("row", "value")),
    ]
    assert v.action_id("MOVE") == 0 and v.action_id("WRITE") == 1
    assert {n: (q.params, q.returns) for n, q in v.queries.items()} == {
        "read": (("row",), "int"),
        "digit": (("row",), "int"),
    }
    assert v.observation == tuple(ObsSlot(n, 11) for n in ("in1", "in2", "carry", "out"))
    assert v.blank == 10 and v.arg_range == 10
    assert dict(v.oracles) == {"sum": "the decimal sum of the two inputs"}
    assert dict(v.config) == {"arg_range": 10}


def test_vocabulary_config():
    assert vocabulary("scratchpad", arg_range=16).arg_range == 16
    with pytest.raises(EnvError, match="arg_range >= 10"):
        vocabulary("scratchpad", arg_range=5)
    with pytest.raises(EnvError, match="unknown configuration"):
        vocabulary("scratchpad", width=3)
    with pytest.raises(EnvError, match="must be an integer"):
        create_env("scratchpad", arg_range="10")
    assert create_env("scratchpad", arg_range=12).config == {"arg_range": 12}


def test_vocabulary_is_cached():
    assert vocabulary("scratchpad") is vocabulary("scratchpad")
    assert vocabulary("scratchpad", arg_range=11) is vocabulary("scratchpad", arg_range=11)


# ---------------------------------------------------------------- layout and observation


def test_layout(pad):
    assert pad.render().splitlines() == [
        "in1    .  .  .  9 [6]",
        "in2    .  .  1  2 [5]",
        "carry  .  .  .  . [.]",
        "out    .  .  .  . [.]",
    ]
    assert pad.observe() == (6, 5, BLANK, BLANK)
    assert type(pad.observe()) is tuple


def test_pad_has_l_plus_2_columns():
    env = create_env("scratchpad")
    env.reset(["1234567890", "5"])
    for _ in range(11):
        env.act(MOVE, CARRY, LEFT)
    with pytest.raises(EnvError) as err:
        env.act(MOVE, CARRY, LEFT)
    assert str(err.value) == "pointer carry moved off the pad at column -1 (pad has 12 columns)"
    env.reset(["1234567890", "5"])
    with pytest.raises(EnvError, match="pointer out moved off the pad at column 12"):
        env.act(MOVE, OUT, RIGHT)


def test_move_reads_and_blanks(pad):
    pad.act(MOVE, IN1, LEFT)
    assert pad.observe() == (9, 5, BLANK, BLANK)
    pad.act(MOVE, IN1, LEFT)
    assert pad.observe() == (BLANK, 5, BLANK, BLANK)
    read, digit = pad.query_fn("read"), pad.query_fn("digit")
    assert read(IN1) == BLANK and digit(IN1) == 0
    pad.act(MOVE, IN1, RIGHT)
    assert read(IN1) == 9 and digit(IN1) == 9
    for _ in range(2):
        pad.act(MOVE, IN2, LEFT)
    assert read(IN2) == 1


def test_write(pad):
    pad.act(WRITE, OUT, 7)
    assert pad.observe() == (6, 5, BLANK, 7)
    assert pad.query_fn("read")(OUT) == 7
    pad.act(WRITE, IN1, 0)
    assert pad.observe()[0] == 0
    with pytest.raises(EnvError, match="value must be a digit 0..9, got 10"):
        pad.act(WRITE, OUT, 10)
    with pytest.raises(EnvError, match="got -1"):
        pad.act(WRITE, OUT, -1)


@pytest.mark.parametrize(
    ("action", "arg1", "arg2", "message"),
    [
        (MOVE, 4, LEFT, "MOVE: no row 4"),
        (MOVE, -1, LEFT, "MOVE: no row -1"),
        (MOVE, 9, RIGHT, "MOVE: no row 9"),
        (MOVE, IN1, 2, "direction must be LEFT .0. or RIGHT .1., got 2"),
        (MOVE, IN1, -1, "got -1"),
        (WRITE, 4, 1, "WRITE: no row 4"),
        (WRITE, -1, 1, "WRITE: no row -1"),
        (2, 0, 0, "no action with id 2"),
        (-1, 0, 0, "no action with id -1"),
    ],
)
def test_illegal_actions(pad, action, arg1, arg2, message):
    before = pad.snapshot()
    with pytest.raises(EnvError, match=message):
        pad.act(action, arg1, arg2)
    assert pad.snapshot() == before


def test_queries_reject_bad_rows(pad):
    for name in ("read", "digit"):
        fn = pad.query_fn(name)
        for row in (-1, 4, 7):
            with pytest.raises(EnvError, match=f"{name}: no row {row}"):
                fn(row)
    with pytest.raises(EnvError, match="no query 'peek'"):
        pad.query_fn("peek")


def test_action_fn(pad):
    move, write = pad.action_fn(MOVE), pad.action_fn(WRITE)
    move(IN2, LEFT)
    write(OUT, 4)
    assert pad.observe() == (6, 2, BLANK, 4)
    with pytest.raises(EnvError):
        pad.action_fn(2)


def test_default_arguments_of_act(pad):
    pad.act(MOVE, IN1)  # arg2 defaults to 0 = LEFT
    assert pad.observe()[0] == 9


# ---------------------------------------------------------------- result and oracle


def test_result_reads_out_row(pad):
    assert pad.result() == "0"
    pad.act(WRITE, OUT, 1)
    pad.act(MOVE, OUT, LEFT)
    pad.act(WRITE, OUT, 2)
    assert pad.result() == "21"
    pad.act(MOVE, OUT, LEFT)
    pad.act(MOVE, OUT, LEFT)
    pad.act(WRITE, OUT, 3)  # a gap: BLANK reads as 0
    assert pad.result() == "3021"


def test_result_strips_leading_zeros():
    env = create_env("scratchpad")
    env.reset(["5", "5"])
    env.act(WRITE, OUT, 0)
    env.act(MOVE, OUT, LEFT)
    env.act(WRITE, OUT, 0)
    assert env.result() == "0"


def test_full_addition_by_hand(pad):
    """96 + 125, as in the paper's Figure 3: the pad supports grade-school addition."""
    read, digit = pad.query_fn("read"), pad.query_fn("digit")
    while read(IN1) != BLANK or read(IN2) != BLANK or read(CARRY) != BLANK:
        total = digit(IN1) + digit(IN2) + digit(CARRY)
        pad.act(WRITE, OUT, total % 10)
        if total >= 10:
            pad.act(MOVE, CARRY, LEFT)
            pad.act(WRITE, CARRY, 1)
            pad.act(MOVE, CARRY, RIGHT)
        for row in (IN1, IN2, CARRY, OUT):
            pad.act(MOVE, row, LEFT)
    assert pad.result() == "221" == pad.expected("sum", ["96", "125"])


def test_oracle_small():
    env = create_env("scratchpad")
    assert env.expected("sum", ["96", "125"]) == "221"
    assert env.expected("sum", [96, 125]) == "221"
    assert env.expected("sum", ["0", "0"]) == "0"
    assert env.expected("sum", ["007", "3"]) == "10"
    with pytest.raises(EnvError, match="no oracle 'product'"):
        env.expected("product", ["1", "2"])


@given(st.integers(0, 10**60), st.integers(0, 10**60))
def test_add_decimal_matches_int(a, b):
    assert add_decimal(str(a), str(b)) == str(a + b)


def test_oracle_on_100000_digit_numbers():
    env = create_env("scratchpad")
    nines = "9" * 100_000
    start = time.perf_counter()
    assert env.expected("sum", [nines, "1"]) == "1" + "0" * 100_000
    assert time.perf_counter() - start < 2.0
    rng = random.Random(7)
    a, b = env.sample_input(rng, 100_000)
    got = env.expected("sum", [a, b])
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else None
    if limit is None:
        pytest.skip("this Python has no int/str conversion limit to lift")
    try:
        sys.set_int_max_str_digits(0)
        assert got == str(int(a) + int(b))
    finally:
        sys.set_int_max_str_digits(limit)


def test_reset_with_100000_digits_runs_an_addition_column():
    env = create_env("scratchpad")
    env.reset(["9" * 100_000, "1"])
    assert env.input_length(env.parse_input(["9" * 100_000, "1"])) == 100_000
    assert env.observe() == (9, 1, BLANK, BLANK)
    env.act(WRITE, OUT, 0)
    assert env.result() == "0"


# ---------------------------------------------------------------- inputs


def test_parse_input_normalises():
    env = create_env("scratchpad")
    assert env.parse_input(["96", "125"]) == ["96", "125"]
    assert env.parse_input([96, 125]) == ["96", "125"]
    assert env.parse_input(("0096", "000")) == ["96", "0"]
    assert env.parse_input([0, "0"]) == ["0", "0"]
    big = "1" + "0" * 10_000
    assert env.parse_input([big, 1]) == [big, "1"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("96 125", "JSON list of two"),
        (["96"], "JSON list of two"),
        (["1", "2", "3"], "JSON list of two"),
        ({"a": 1}, "JSON list of two"),
        (None, "JSON list of two"),
        (["-5", "1"], "first operand must be a string of decimal digits"),
        (["1", "1.5"], "second operand must be a string of decimal digits"),
        (["", "1"], "first operand must be a string of decimal digits"),
        ([" 1", "1"], "string of decimal digits"),
        (["١٢", "1"], "string of decimal digits"),  # non-ASCII digits
        ([-5, 1], "first operand must be non-negative"),
        ([1.0, 1], "first operand must be a decimal number"),
        ([True, 1], "first operand must be a non-negative decimal number"),
        ([[1], 1], "must be a decimal number"),
    ],
)
def test_parse_input_errors(value, message):
    env = create_env("scratchpad")
    with pytest.raises(EnvError, match=message):
        env.parse_input(value)
    with pytest.raises(EnvError):
        env.reset(value)


def test_input_length():
    env = create_env("scratchpad")
    assert env.input_length(["96", "125"]) == 3
    assert env.input_length(["0", "0"]) == 1


def test_sample_input_lengths_and_leading_zeros():
    env = create_env("scratchpad")
    rng = random.Random(0)
    for length in (1, 2, 5, 20):
        seen_lengths = set()
        for _ in range(300):
            value = env.sample_input(rng, length)
            assert env.parse_input(value) == value  # already normalised
            a, b = value
            assert max(len(a), len(b)) == length == env.input_length(value)
            for number in value:
                assert number.isdigit() and (len(number) == 1 or number[0] != "0")
            seen_lengths.add(min(len(a), len(b)))
        assert seen_lengths == set(range(1, length + 1))


def test_sample_input_both_orders_and_deterministic():
    env = create_env("scratchpad")
    firsts = [len(env.sample_input(random.Random(s), 8)[0]) == 8 for s in range(200)]
    assert any(firsts) and not all(firsts)
    a = [env.sample_input(random.Random(42), n) for n in range(1, 30)]
    b = [env.sample_input(random.Random(42), n) for n in range(1, 30)]
    assert a == b
    rng1, rng2 = random.Random(5), random.Random(5)
    assert [env.sample_input(rng1, 6) for _ in range(50)] == [
        env.sample_input(rng2, 6) for _ in range(50)
    ]


def test_sample_input_bad_length():
    env = create_env("scratchpad")
    with pytest.raises(EnvError, match="length must be an integer >= 1"):
        env.sample_input(random.Random(0), 0)


# ---------------------------------------------------------------- snapshot / restore / copies


def test_snapshot_restore(pad):
    snap = pad.snapshot()
    view = pad.render()
    pad.act(WRITE, OUT, 3)
    pad.act(MOVE, IN1, LEFT)
    pad.restore(snap)
    assert pad.render() == view and pad.observe() == (6, 5, BLANK, BLANK)
    assert pad.snapshot() == snap
    hash(snap)  # immutable


def test_restore_across_reset_of_another_size(pad):
    snap = pad.snapshot()
    pad.reset(["12345678", "9"])
    pad.restore(snap)
    assert pad.observe() == (6, 5, BLANK, BLANK)
    for _ in range(4):
        pad.act(MOVE, IN1, LEFT)
    with pytest.raises(EnvError, match="pad has 5 columns"):
        pad.act(MOVE, IN1, LEFT)


def test_copies_and_pickles_are_independent(pad):
    for clone in (copy.copy(pad), copy.deepcopy(pad), pickle.loads(pickle.dumps(pad))):
        assert clone.render() == pad.render()
        clone.act(WRITE, OUT, 9)
        assert clone.observe()[3] == 9 and pad.observe()[3] == BLANK
        assert clone.query_fn("read")(OUT) == 9


class PadModel:
    """A slow, obviously-right model of the pad, to check the fast closures against."""

    def __init__(self, a: str, b: str) -> None:
        w = max(len(a), len(b)) + 2
        self.rows = {
            0: [BLANK] * (w - len(a)) + [int(c) for c in a],
            1: [BLANK] * (w - len(b)) + [int(c) for c in b],
            2: [BLANK] * w,
            3: [BLANK] * w,
        }
        self.pos = {r: w - 1 for r in range(4)}
        self.w = w

    def legal(self, action, a1, a2):
        if action == MOVE:
            return 0 <= self.pos[a1] + (1 if a2 == RIGHT else -1) < self.w
        return True

    def act(self, action, a1, a2):
        if action == MOVE:
            self.pos[a1] += 1 if a2 == RIGHT else -1
        else:
            self.rows[a1][self.pos[a1]] = a2

    def observe(self):
        return tuple(self.rows[r][self.pos[r]] for r in range(4))


actions = st.one_of(
    st.tuples(st.just(MOVE), st.integers(0, 3), st.integers(0, 1)),
    st.tuples(st.just(WRITE), st.integers(0, 3), st.integers(0, 9)),
)
numbers = st.integers(0, 10**12).map(str)


@settings(max_examples=200, deadline=None)
@given(numbers, numbers, st.lists(actions, max_size=60), st.data())
def test_random_legal_actions_match_model_and_snapshots(a, b, acts, data):
    env = create_env("scratchpad")
    env.reset([a, b])
    model = PadModel(a, b)
    read, digit = env.query_fn("read"), env.query_fn("digit")
    saved = []
    for n, (action, a1, a2) in enumerate(acts):
        apply = env.act if n % 2 else (lambda a, x, y: env.action_fn(a)(x, y))
        if not model.legal(action, a1, a2):
            before = env.snapshot()
            with pytest.raises(EnvError):
                apply(action, a1, a2)
            assert env.snapshot() == before
            continue
        apply(action, a1, a2)
        model.act(action, a1, a2)
        obs = env.observe()
        assert obs == model.observe()
        assert [read(r) for r in range(4)] == list(obs)
        assert [digit(r) for r in range(4)] == [0 if v == BLANK else v for v in obs]
        if data.draw(st.booleans()):
            saved.append((env.snapshot(), obs, env.result(), env.render()))
    for snap, obs, result, view in reversed(saved):
        env.restore(snap)
        assert env.observe() == obs and env.result() == result and env.render() == view
        assert [read(r) for r in range(4)] == list(obs)


def test_speed_of_hot_functions():
    """observe/act/queries are well under a microsecond (generous bound for slow CI)."""
    env = create_env("scratchpad")
    env.reset(["1" * 50, "2" * 50])
    observe, act, read = env.observe, env.act, env.query_fn("read")
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        observe()
        act(0, 1, 0)
        act(0, 1, 1)
        read(2)
    per_call = (time.perf_counter() - start) / (4 * n)
    assert per_call < 2e-6
