"""Writing and reading trace files: round trips, reproducible bytes, atomicity."""

from __future__ import annotations

import gzip
import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trace_helpers import addition_record, sampled_addition_records

from npi_dsl.envs import vocabulary
from npi_dsl.trace import (
    RECORD_KEYS,
    SCHEMA,
    STEP_KEYS,
    TraceFormatError,
    TraceWriter,
    env_header,
    read_traces,
    write_traces,
)


@pytest.fixture(scope="module")
def records():
    return sampled_addition_records(12, max_length=6, seed=1)


def test_record_layout(records):
    rec = records[0]
    assert tuple(rec) == RECORD_KEYS
    assert rec["schema"] == SCHEMA
    assert all(tuple(step) == STEP_KEYS for step in rec["steps"])


def test_env_header():
    header = env_header(vocabulary("scratchpad"))
    assert list(header) == ["name", "config", "vocabulary"]
    assert list(header["vocabulary"]) == [
        "actions",
        "names",
        "kinds",
        "observation",
        "blank",
        "arg_range",
    ]
    assert header == {
        "name": "scratchpad",
        "config": {"arg_range": 10},
        "vocabulary": {
            "actions": [
                {"name": "MOVE", "id": 0, "params": ["row", "dir"]},
                {"name": "WRITE", "id": 1, "params": ["row", "value"]},
            ],
            "names": {
                "in1": 0,
                "in2": 1,
                "carry": 2,
                "out": 3,
                "LEFT": 0,
                "RIGHT": 1,
                "BLANK": 10,
            },
            "kinds": {"row": ["in1", "in2", "carry", "out"], "dir": ["LEFT", "RIGHT"]},
            "observation": [
                {"name": "in1", "symbols": 11},
                {"name": "in2", "symbols": 11},
                {"name": "carry", "symbols": 11},
                {"name": "out", "symbols": 11},
            ],
            "blank": 10,
            "arg_range": 10,
        },
    }
    json.dumps(header)  # plain JSON types only
    arr = env_header(vocabulary("array", arg_range=4))
    assert arr["config"] == {"arg_range": 4} and arr["vocabulary"]["arg_range"] == 4
    assert len(arr["vocabulary"]["observation"]) == 8


@pytest.mark.parametrize("name", ["traces.jsonl", "traces.jsonl.gz"])
def test_round_trip(tmp_path, records, name):
    path = tmp_path / name
    assert write_traces(path, records) == len(records)
    back = list(read_traces(path))
    assert back == records
    assert [list(r) for r in back] == [list(r) for r in records]  # key order kept


def test_plain_file_is_compact_json_lines(tmp_path, records):
    path = tmp_path / "t.jsonl"
    write_traces(path, records)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(records) + 1
    for line, rec in zip(lines, records, strict=False):
        assert line == json.dumps(rec, separators=(",", ":")).encode()
        assert line.startswith(b'{"schema":"npi-trace/1","task":"add","env":')
        assert line.isascii()


def test_gzip_is_reproducible_and_has_a_fixed_header(tmp_path, records):
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "sub" / "b.jsonl.gz"
    b.parent.mkdir()
    write_traces(a, records)
    write_traces(b, iter(records))
    data = a.read_bytes()
    assert data == b.read_bytes()
    assert data[:2] == b"\x1f\x8b"
    flags, mtime = data[3], int.from_bytes(data[4:8], "little")
    assert mtime == 0
    assert not flags & 0x08  # FNAME: no file name in the header
    write_traces(tmp_path / "plain.jsonl", records)
    assert gzip.decompress(data) == (tmp_path / "plain.jsonl").read_bytes()


def test_plain_output_is_byte_identical(tmp_path, records):
    write_traces(tmp_path / "a.jsonl", records)
    write_traces(tmp_path / "b.jsonl", records)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_serialised_strings_are_written_as_is(tmp_path, records):
    lines = [json.dumps(r, separators=(",", ":")) for r in records]
    write_traces(tmp_path / "s.jsonl", lines[:3] + [lines[3] + "\n"] + records[4:])
    write_traces(tmp_path / "d.jsonl", records)
    assert (tmp_path / "s.jsonl").read_bytes() == (tmp_path / "d.jsonl").read_bytes()
    with pytest.raises(ValueError, match="one line"):
        write_traces(tmp_path / "bad.jsonl", ['{"a":\n1}'])
    with pytest.raises(TypeError):
        write_traces(tmp_path / "bad.jsonl", [42])  # type: ignore[list-item]
    assert not (tmp_path / "bad.jsonl").exists()


def test_non_ascii_is_escaped(tmp_path):
    rec = addition_record(["1", "2"])
    rec["task"] = "addition-é"
    write_traces(tmp_path / "u.jsonl", [rec])
    assert (tmp_path / "u.jsonl").read_bytes().isascii()
    assert next(read_traces(tmp_path / "u.jsonl"))["task"] == "addition-é"


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("name", ["t.jsonl", "t.jsonl.gz"])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_write_keeps_existing_file_when_producer_fails(tmp_path, records, name, error):
    path = tmp_path / name
    write_traces(path, records[:2])
    before = path.read_bytes()

    def producer():
        yield from records
        raise error("producer failed midway")

    with pytest.raises(error):
        write_traces(path, producer())
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_atomic_write_creates_nothing_when_producer_fails(tmp_path, records):
    path = tmp_path / "new.jsonl"
    with pytest.raises(ZeroDivisionError):
        with TraceWriter(path) as writer:
            writer.write(records[0])
            1 / 0  # noqa: B018
    assert not path.exists() and _leftovers(tmp_path) == []


def test_nothing_visible_before_close(tmp_path, records):
    path = tmp_path / "late.jsonl"
    writer = TraceWriter(path)
    writer.write(records[0])
    assert not path.exists()
    writer.close()
    writer.close()  # idempotent
    assert path.exists() and writer.count == 1
    with pytest.raises(ValueError, match="closed"):
        writer.write(records[0])


def test_abandoned_writer_leaves_no_temp_file(tmp_path, records):
    writer = TraceWriter(tmp_path / "abandoned.jsonl")
    writer.write(records[0])
    del writer
    assert list(tmp_path.iterdir()) == []


def test_permissions_of_existing_file_are_kept(tmp_path, records):
    path = tmp_path / "p.jsonl"
    write_traces(path, records[:1])
    os.chmod(path, 0o640)
    write_traces(path, records)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_write_into_missing_directory_fails_cleanly(tmp_path, records):
    with pytest.raises(FileNotFoundError):
        write_traces(tmp_path / "nope" / "t.jsonl", records)


def test_stdout(records, capsys):
    assert write_traces("-", records[:2]) == 2
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in out] == records[:2]


def test_empty_file_has_no_traces(tmp_path):
    write_traces(tmp_path / "e.jsonl", [])
    assert (tmp_path / "e.jsonl").read_bytes() == b""
    assert list(read_traces(tmp_path / "e.jsonl")) == []
    write_traces(tmp_path / "e.jsonl.gz", [])
    assert list(read_traces(tmp_path / "e.jsonl.gz")) == []


def test_gzip_detected_by_content_and_blank_lines_skipped(tmp_path, records):
    raw = b"\n".join(json.dumps(r).encode() for r in records[:3]) + b"\n\n  \n"
    (tmp_path / "noext").write_bytes(gzip.compress(raw))
    assert list(read_traces(tmp_path / "noext")) == records[:3]
    (tmp_path / "pretty.jsonl").write_bytes(raw.replace(b"\n", b"\r\n"))
    assert list(read_traces(str(tmp_path / "pretty.jsonl"))) == records[:3]


def test_large_trace_round_trip(tmp_path):
    rec = addition_record(["9" * 2000, "1" * 1500])
    assert rec["result"] == str(int("9" * 2000) + int("1" * 1500))
    path = tmp_path / "big.jsonl.gz"
    write_traces(path, [rec])
    assert list(read_traces(path)) == [rec]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**15), st.integers(0, 10**15)), max_size=4))
def test_round_trip_property(tmp_path_factory, pairs):
    records = [addition_record([a, b], seed=None) for a, b in pairs]
    path = tmp_path_factory.mktemp("rt") / "t.jsonl.gz"
    write_traces(path, records)
    assert list(read_traces(path)) == records
    for rec, (a, b) in zip(records, pairs, strict=True):
        assert rec["result"] == str(a + b)


def test_read_from_stdin(monkeypatch, records):
    import io
    import sys

    data = "".join(json.dumps(r) + "\n" for r in records[:2]).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert list(read_traces("-")) == records[:2]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(data))))
    assert list(read_traces("-")) == records[:2]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"{bad\n")))
    with pytest.raises(TraceFormatError, match="^<stdin>:1: invalid JSON"):
        list(read_traces("-"))


def test_make_record_and_source_hash():
    from npi_dsl.trace import make_record, make_step, source_hash

    h = source_hash("program A() {}", b"more")
    assert h.startswith("sha256:") and len(h) == len("sha256:") + 64
    assert h == source_hash("program A() {}", b"more") != source_hash("program A() {}more")
    step = make_step(0, 0, "A", [0, 0, 0], [1, 2, 3, 4], None, [0, 0, 0])
    assert tuple(step) == STEP_KEYS and step["end"] is True
    rec = make_record(
        task="t",
        env=vocabulary("scratchpad"),
        programs=("f.A",),
        source_hash=h,
        seed=None,
        length=1,
        input=["1", "2"],
        result="3",
        steps=[step],
    )
    assert tuple(rec) == RECORD_KEYS and rec["env"] == env_header(vocabulary("scratchpad"))
    assert rec["programs"] == ["f.A"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    """A write killed before its rename leaves `.NAME.PID.HEX.tmp`; the next writer of the
    same path removes it (its process is gone), and leaves a live writer's alone."""
    import subprocess
    import sys

    from npi_dsl.trace_files import remove_stale_temporaries

    path = tmp_path / "t.jsonl"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".t.jsonl.{gone.stdout.strip()}.0badc0de.tmp"
    stale.write_bytes(b"half a trace")
    live = tmp_path / f".t.jsonl.{os.getpid()}.0123abcd.tmp"
    live.write_bytes(b"")
    other = tmp_path / ".u.jsonl.1.0badc0de.tmp"  # another file's
    other.write_bytes(b"")
    write_traces(path, [])
    assert not stale.exists() and live.exists() and other.exists()
    assert remove_stale_temporaries(path) == 0
