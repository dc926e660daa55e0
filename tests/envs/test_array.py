"""The array (bubble sort) environment, through its public interface."""

from __future__ import annotations

import copy
import pickle
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npi_dsl.envs import EnvError, ObsSlot, create_env, vocabulary

P1, P2, P3 = 0, 1, 2
LEFT, RIGHT = 0, 1
MOVE, SWAP = 0, 1
BLANK = 10


@pytest.fixture
def arr():
    env = create_env("array")
    env.reset([3, 1, 2])
    return env


def test_vocabulary():
    v = vocabulary("array")
    assert v.env == "array"
    assert dict(v.names) == {"p1": 0, "p2": 1, "p3": 2, "LEFT": 0, "RIGHT": 1, "BLANK": 10}
    assert {k: tuple(m) for k, m in v.kinds.items()} == {
        "ptr": ("p1", "p2", "p3"),
        "dir": ("LEFT", "RIGHT"),
    }
    assert [(a.name, a.params) for a in v.actions] == [
        ("MOVE", ("ptr", "dir")),
        ("SWAP", ("ptr", "ptr")),
    ]
    assert {n: (q.params, q.returns) for n, q in v.queries.items()} == {
        "value": (("ptr",), "int"),
        "at_start": (("ptr",), "bool"),
        "at_end": (("ptr",), "bool"),
        "same": (("ptr", "ptr"), "bool"),
        "length": ((), "int"),
    }
    assert v.observation == (
        ObsSlot("value_p1", 11),
        ObsSlot("value_p2", 11),
        ObsSlot("p1_at_start", 2),
        ObsSlot("p1_at_end", 2),
        ObsSlot("p2_at_start", 2),
        ObsSlot("p2_at_end", 2),
        ObsSlot("p3_at_start", 2),
        ObsSlot("p3_at_end", 2),
    )
    assert v.blank == 10 and v.arg_range == 10
    assert dict(v.oracles) == {
        "sorted": "the input sorted ascending",
        "max": "the largest input value",
        "reversed": "the input in reverse order",
    }
    assert dict(v.config) == {"arg_range": 10}
    assert vocabulary("array", arg_range=3).arg_range == 3
    with pytest.raises(EnvError, match="arg_range >= 3"):
        vocabulary("array", arg_range=2)
    with pytest.raises(EnvError, match="unknown configuration"):
        create_env("array", size=4)


def test_start_state(arr):
    assert arr.observe() == (3, 3, 1, 0, 1, 0, 1, 0)
    assert all(type(x) is int for x in arr.observe())
    assert arr.result() == [3, 1, 2]
    assert arr.query_fn("length")() == 3
    assert arr.render().splitlines() == [
        "       .  3  1  2  .",
        "p1        ^",
        "p2        ^",
        "p3        ^",
    ]


def test_move_to_both_edges_and_past(arr):
    value, at_start, at_end = (arr.query_fn(n) for n in ("value", "at_start", "at_end"))
    arr.act(MOVE, P1, LEFT)  # to -1: allowed
    assert value(P1) == BLANK and not at_start(P1) and not at_end(P1)
    assert arr.observe()[:4] == (BLANK, 3, 0, 0)
    with pytest.raises(EnvError) as err:
        arr.act(MOVE, P1, LEFT)
    assert str(err.value) == (
        "pointer p1 moved off the array to position -2 "
        "(array has 3 cells; pointers may stand at -1..3)"
    )
    arr.act(MOVE, P2, RIGHT)
    arr.act(MOVE, P2, RIGHT)
    assert value(P2) == 2 and at_end(P2) and not at_start(P2)
    assert arr.observe() == (BLANK, 2, 0, 0, 0, 1, 1, 0)
    arr.act(MOVE, P2, RIGHT)  # to N: allowed
    assert value(P2) == BLANK and not at_end(P2)
    with pytest.raises(EnvError, match="pointer p2 moved off the array to position 4"):
        arr.act(MOVE, P2, RIGHT)
    assert at_start(P3) is True and at_end(P3) is False


def test_swap(arr):
    arr.act(MOVE, P2, RIGHT)
    arr.act(SWAP, P1, P2)
    assert arr.result() == [1, 3, 2]
    assert arr.observe()[:2] == (1, 3)
    arr.act(SWAP, P2, P2)  # same cell: nothing changes
    assert arr.result() == [1, 3, 2]
    arr.act(MOVE, P3, LEFT)
    with pytest.raises(EnvError, match="SWAP: pointer p3 is off the array at position -1"):
        arr.act(SWAP, P1, P3)
    with pytest.raises(EnvError, match="SWAP: pointer p3 is off the array"):
        arr.act(SWAP, P3, P1)
    assert arr.result() == [1, 3, 2]


@pytest.mark.parametrize(
    ("action", "arg1", "arg2", "message"),
    [
        (MOVE, 3, RIGHT, "MOVE: no pointer 3"),
        (MOVE, -1, RIGHT, "MOVE: no pointer -1"),
        (MOVE, P1, 2, "direction must be LEFT .0. or RIGHT .1., got 2"),
        (SWAP, 3, P1, "SWAP: no pointer 3"),
        (SWAP, P1, -1, "SWAP: no pointer -1"),
        (2, 0, 0, "no action with id 2"),
    ],
)
def test_illegal_actions(arr, action, arg1, arg2, message):
    before = arr.snapshot()
    with pytest.raises(EnvError, match=message):
        arr.act(action, arg1, arg2)
    assert arr.snapshot() == before


def test_queries_reject_bad_pointers(arr):
    for name in ("value", "at_start", "at_end"):
        for ptr in (-1, 3):
            with pytest.raises(EnvError, match=f"{name}: no pointer {ptr}"):
                arr.query_fn(name)(ptr)
    with pytest.raises(EnvError, match="no query 'peek'"):
        arr.query_fn("peek")


def test_single_cell_array():
    env = create_env("array")
    env.reset([5])
    assert env.observe() == (5, 5, 1, 1, 1, 1, 1, 1)
    env.act(MOVE, P2, RIGHT)
    assert env.observe() == (5, BLANK, 1, 1, 0, 0, 1, 1)


def test_action_fn(arr):
    move, swap = arr.action_fn(MOVE), arr.action_fn(SWAP)
    move(P2, RIGHT)
    swap(P1, P2)
    assert arr.result() == [1, 3, 2]
    with pytest.raises(EnvError):
        arr.action_fn(5)


def test_bubble_sort_by_hand():
    """The array supports the paper's bubble sort (p1/p2 compare neighbours, p3 counts)."""
    env = create_env("array")
    values = [9, 0, 4, 4, 7, 1, 3]
    env.reset(values)
    value, at_end = env.query_fn("value"), env.query_fn("at_end")
    env.act(MOVE, P2, RIGHT)
    while not at_end(P3):  # N-1 sweeps
        while value(P2) != BLANK:  # BUBBLE
            if value(P1) > value(P2):
                env.act(SWAP, P1, P2)
            env.act(MOVE, P1, RIGHT)
            env.act(MOVE, P2, RIGHT)
        while not env.query_fn("at_start")(P1):  # RESET
            env.act(MOVE, P1, LEFT)
            env.act(MOVE, P2, LEFT)
        env.act(MOVE, P3, RIGHT)
    assert env.result() == sorted(values) == env.expected("sorted", values)


def test_oracles():
    env = create_env("array")
    assert env.expected("sorted", [3, 1, 2]) == [1, 2, 3]
    assert env.expected("max", [3, 1, 2]) == 3
    with pytest.raises(EnvError, match="no oracle 'min'"):
        env.expected("min", [1])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "non-empty JSON list"),
        ("312", "non-empty JSON list"),
        (None, "non-empty JSON list"),
        ([1, 10], "element 1 is int 10"),
        ([1, -1], "element 1 is int -1"),
        ([1, "2"], "element 1 is str"),
        ([True], "element 0 is bool"),
        ([1.0], "element 0 is float"),
    ],
)
def test_parse_input_errors(value, message):
    env = create_env("array")
    with pytest.raises(EnvError, match=message):
        env.parse_input(value)


def test_parse_input_and_length():
    env = create_env("array")
    assert env.parse_input((3, 1, 2)) == [3, 1, 2]
    assert env.input_length([3, 1, 2]) == 3


def test_sample_input():
    env = create_env("array")
    rng = random.Random(3)
    for length in (1, 5, 60):
        value = env.sample_input(rng, length)
        assert len(value) == length == env.input_length(value)
        assert env.parse_input(value) == value
    many = env.sample_input(random.Random(1), 5000)
    assert set(many) == set(range(10))
    assert env.sample_input(random.Random(9), 20) == env.sample_input(random.Random(9), 20)
    with pytest.raises(EnvError):
        env.sample_input(rng, 0)


def test_reset_to_another_size_updates_edges(arr):
    arr.reset([1, 2, 3, 4, 5])
    at_end = arr.query_fn("at_end")
    for _ in range(4):
        arr.act(MOVE, P1, RIGHT)
    assert at_end(P1) and arr.observe()[3] == 1
    assert arr.query_fn("length")() == 5
    snap = arr.snapshot()
    arr.reset([7])
    assert arr.observe() == (7, 7, 1, 1, 1, 1, 1, 1)
    arr.restore(snap)
    assert at_end(P1) and arr.observe()[:4] == (5, 1, 0, 1)


def test_copies_and_pickles_are_independent(arr):
    for clone in (copy.copy(arr), copy.deepcopy(arr), pickle.loads(pickle.dumps(arr))):
        clone.act(MOVE, P2, RIGHT)
        clone.act(SWAP, P1, P2)
        assert clone.result() == [1, 3, 2] and arr.result() == [3, 1, 2]


class ArrayModel:
    def __init__(self, values):
        self.values = list(values)
        self.pos = [0, 0, 0]

    def legal(self, action, a1, a2):
        n = len(self.values)
        if action == MOVE:
            return -1 <= self.pos[a1] + (1 if a2 == RIGHT else -1) <= n
        return 0 <= self.pos[a1] < n and 0 <= self.pos[a2] < n

    def act(self, action, a1, a2):
        if action == MOVE:
            self.pos[a1] += 1 if a2 == RIGHT else -1
        else:
            i, j = self.pos[a1], self.pos[a2]
            self.values[i], self.values[j] = self.values[j], self.values[i]

    def value(self, p):
        return self.values[self.pos[p]] if 0 <= self.pos[p] < len(self.values) else BLANK

    def observe(self):
        n = len(self.values)
        out = [self.value(0), self.value(1)]
        for p in range(3):
            out += [int(self.pos[p] == 0), int(self.pos[p] == n - 1)]
        return tuple(out)


actions = st.one_of(
    st.tuples(st.just(MOVE), st.integers(0, 2), st.integers(0, 1)),
    st.tuples(st.just(SWAP), st.integers(0, 2), st.integers(0, 2)),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 9), min_size=1, max_size=8), st.lists(actions, max_size=60), st.data()
)
def test_random_actions_match_model_and_snapshots(values, acts, data):
    env = create_env("array")
    env.reset(values)
    model = ArrayModel(values)
    q = {n: env.query_fn(n) for n in ("value", "at_start", "at_end")}
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
        assert env.observe() == model.observe()
        assert env.result() == model.values
        for p in range(3):
            assert q["value"](p) == model.value(p)
            assert q["at_start"](p) == (model.pos[p] == 0)
            assert q["at_end"](p) == (model.pos[p] == len(values) - 1)
        if data.draw(st.booleans()):
            saved.append((env.snapshot(), env.observe(), env.result(), env.render()))
    for snap, obs, result, view in reversed(saved):
        env.restore(snap)
        assert (env.observe(), env.result(), env.render()) == (obs, result, view)


def test_speed_of_hot_functions():
    env = create_env("array")
    env.reset(list(range(10)) * 5)
    observe, act, value = env.observe, env.act, env.query_fn("value")
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        observe()
        act(0, 1, 1)
        act(0, 1, 0)
        value(0)
    assert (time.perf_counter() - start) / (4 * n) < 2e-6


def test_same_and_which_queries_are_observable() -> None:
    v = vocabulary("array")
    assert {n for n, q in v.queries.items() if q.observable} == {
        "value", "at_start", "at_end", "same"}
    assert "privileged" in v.queries["length"].private
    env = create_env("array")
    env.reset([4, 5, 6])
    same = env.query_fn("same")
    assert same(0, 1) and same(0, 2)
    env.act(0, 1, 1)  # MOVE(p2, RIGHT)
    assert not same(0, 1) and same(0, 2)
    observed = (("value", (1,)), ("same", (0, 1)), ("at_end", (1,)))
    observe = env.observer(observed)
    assert observe() == (5, 0, 0)
    env.act(0, 0, 1)  # MOVE(p1, RIGHT)
    assert observe() == (5, 1, 0)
    assert env.expected("reversed", [4, 5, 6]) == [6, 5, 4]
