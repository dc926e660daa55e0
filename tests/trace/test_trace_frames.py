"""Rebuilding frames and the call tree from a trace's steps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trace_helpers import addition_record

from npi_dsl.trace import iter_frames


def test_frames_of_6_plus_7():
    rec = addition_record(["6", "7"])
    frames = iter_frames(rec["steps"])
    assert [(f.id, f.parent, f.depth, f.program, len(f.steps)) for f in frames] == [
        (0, None, 0, "ADD", 5),
        (1, 0, 1, "ADD1", 3),
        (2, 1, 2, "CARRY", 4),
        (3, 0, 1, "LSHIFT", 5),
        (4, 0, 1, "ADD1", 2),
        (5, 0, 1, "LSHIFT", 5),
    ]
    assert [f.children for f in frames] == [[1, 3, 4, 5], [2], [], [], [], []]
    assert [f.call_step for f in frames] == [None, 0, 1, 1, 2, 3]
    assert [s["call"] for s in frames[0].steps] == ["ADD1", "LSHIFT", "ADD1", "LSHIFT", None]
    assert [s["call_args"] for s in frames[2].steps] == [[0, 2, 0], [1, 2, 1], [0, 2, 1], [0, 0, 0]]
    for f in frames:
        assert f.args == [0, 0, 0]
        parent = frames[f.parent] if f.parent is not None else None
        if parent is not None:
            assert parent.steps[f.call_step]["call"] == f.program


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**30), st.integers(0, 10**30))
def test_frame_invariants(a, b):
    steps = addition_record([a, b])["steps"]
    frames = iter_frames(steps)
    assert sum(len(f.steps) for f in frames) == len(steps)
    for f in frames:
        assert [s["end"] for s in f.steps] == [False] * (len(f.steps) - 1) + [True]
        assert all(s["frame"] == f.id and s["depth"] == f.depth for s in f.steps)
        calls = [s for s in f.steps if s["call"] not in (None, "ACT")]
        assert len(calls) == len(f.children)
        for s, child in zip(calls, f.children, strict=True):
            assert frames[child].program == s["call"] and frames[child].parent == f.id
    lshifts = [f for f in frames if f.program == "LSHIFT"]
    assert all(len(f.steps) == 5 for f in lshifts)


def test_out_of_order_frame_ids_are_rejected():
    steps = addition_record(["1", "2"])["steps"]
    steps[1] = dict(steps[1], frame=3)
    with pytest.raises(ValueError, match="frame ids must be assigned in the order frames start"):
        iter_frames(steps)


def test_empty():
    assert iter_frames([]) == []
