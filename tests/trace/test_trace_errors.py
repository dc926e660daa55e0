"""The validating reader: every defect is a TraceFormatError naming the file and line."""

from __future__ import annotations

import copy
import gzip
import json
import os

import pytest
from trace_helpers import addition_record, sampled_addition_records

from npi_dsl.trace import TraceFormatError, read_traces, validate_record, write_traces


@pytest.fixture(scope="module")
def good():
    return sampled_addition_records(4, max_length=3, seed=2)


def _lines(records):
    return [json.dumps(r, separators=(",", ":")) for r in records]


def _write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def _error(path):
    with pytest.raises(TraceFormatError) as err:
        for _ in read_traces(path):
            pass
    return err.value


def test_error_str_is_path_line_message():
    err = TraceFormatError("t.jsonl", 3, "invalid JSON")
    assert str(err) == "t.jsonl:3: invalid JSON"
    assert (err.path, err.line, err.message) == ("t.jsonl", 3, "invalid JSON")
    assert isinstance(err, ValueError)


def test_bad_json_on_line_3(tmp_path, good):
    lines = _lines(good)
    lines[2] = lines[2][:-40]  # cut short
    path = _write_lines(tmp_path / "t.jsonl", lines)
    it = read_traces(path)
    assert next(it) == good[0] and next(it) == good[1]
    with pytest.raises(TraceFormatError) as err:
        next(it)
    assert err.value.line == 3
    assert str(err.value).startswith(f"{path}:3: invalid JSON")


def test_wrong_schema_version(tmp_path, good):
    lines = _lines(good)
    lines[1] = lines[1].replace('"npi-trace/1"', '"npi-trace/2"')
    err = _error(_write_lines(tmp_path / "t.jsonl", lines))
    assert err.line == 2
    assert "unsupported trace schema version 'npi-trace/2'" in str(err)
    assert "npi-trace/1" in str(err)


def test_not_a_trace_at_all(tmp_path):
    err = _error(_write_lines(tmp_path / "t.jsonl", ['{"a": 1}']))
    assert str(err) == f"{tmp_path / 't.jsonl'}:1: missing field schema: not an npi trace"
    err = _error(_write_lines(tmp_path / "u.jsonl", ['{"schema": "other"}']))
    assert "not an npi trace: schema is 'other'" in str(err)
    for text, kind in [("[1, 2]", "an array"), ("42", "an integer"), ('"x"', "a string")]:
        err = _error(_write_lines(tmp_path / "v.jsonl", [text]))
        assert f"expected a JSON object (one trace per line), got {kind}" in str(err)


def _mutated(good, mutate):
    rec = copy.deepcopy(good[0])
    mutate(rec)
    return rec


def _set(path, value):
    def mutate(rec):
        target = rec
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path):
    def mutate(rec):
        target = rec
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


CASES = [
    (_delete(["task"]), "missing field task"),
    (_delete(["result"]), "missing field result"),
    (_delete(["steps"]), "missing field steps"),
    (_delete(["env", "vocabulary"]), "missing field env.vocabulary"),
    (_delete(["env", "vocabulary", "observation"]), "missing field env.vocabulary.observation"),
    (_set(["task"], 3), "field task must be a string, got an integer"),
    (_set(["seed"], "7"), "field seed must be an integer or null, got a string"),
    (_set(["seed"], True), "field seed must be an integer or null, got a boolean"),
    (_set(["length"], 2.0), "field length must be an integer, got a number"),
    (_set(["length"], -1), "field length must be in [0, 10,000,000]"),
    (_set(["programs"], "addition.ADD"), "field programs must be an array of strings"),
    (_set(["programs", 0], "ADD"), "programs[0] must be a qualified name FILESTEM.NAME"),
    (_set(["programs", 0], "addition.ACT"), "ACT is implicit and never listed"),
    (_set(["source_hash"], None), "field source_hash must be a string, got null"),
    (_set(["env"], []), "field env must be an object, got an array"),
    (_set(["env", "vocabulary", "actions", 1, "id"], 5), "actions must be listed in id order"),
    (_set(["env", "vocabulary", "names", "in1"], "0"), "env.vocabulary.names.in1 must be an"),
    (_set(["env", "vocabulary", "arg_range"], 0), "arg_range must be >= 1"),
    (_set(["env", "vocabulary", "kinds", "row"], "in1"), "kinds.row must be an array"),
    (_set(["steps"], []), "steps is empty"),
    (_set(["steps", 0], [1]), "steps[0] must be an object, got an array"),
    (_delete(["steps", 3, "obs"]), "steps[3] is missing field obs"),
    (_set(["steps", 3, "extra"], 1), "steps[3] has unknown field extra"),
    (_set(["steps", 2, "frame"], "1"), "steps[2].frame must be an integer >= 0"),
    (_set(["steps", 2, "depth"], -1), "steps[2].depth must be an integer >= 0"),
    (_set(["steps", 2, "program"], None), "steps[2].program must be a string, got null"),
    (_set(["steps", 2, "args"], [0, 0]), "steps[2].args must be an array of 3 integers, got 2"),
    (_set(["steps", 2, "args"], [0, 0, "0"]), "steps[2].args must be an array of 3 integers"),
    (_set(["steps", 2, "args"], [0, 0, 10]), "steps[2].args must hold integers in [0, 10)"),
    (_set(["steps", 2, "obs"], [1, 2, 3]), "steps[2].obs must be an array of 4 values"),
    (_set(["steps", 2, "obs"], [1, 2, 3, 11]), "steps[2].obs[3] is 11: the slot has symbols"),
    (_set(["steps", 2, "obs"], [1, 2, 3, True]), "steps[2].obs[3] must be an integer, got a b"),
    (_set(["steps", 2, "end"], 0), "steps[2].end must be true or false, got an integer"),
    (_set(["steps", 1, "end"], True), "steps[1]: end is true but the step calls"),
    (_set(["steps", -1, "end"], False), "call is null (a return step) but end is false"),
    (_set(["steps", -1, "call_args"], [1, 0, 0]), "call_args must be [0,0,0] on a return"),
    (_set(["steps", 1, "call_args"], [7, 0, 0]), "call_args[0] must be an action id in [0, 2)"),
    (_set(["steps", 1, "call_args"], [1, 3]), "steps[1].call_args must be an array of 3"),
    (_set(["steps", 1, "call_args"], [1, 3, 12]), "steps[1].call_args must hold integers"),
    (_set(["steps", 0, "call"], "MUL"), "steps[0].call 'MUL' is not among the trace's programs"),
    (_set(["steps", 0, "call"], 3), "steps[0].call must be a program name or null"),
    (_set(["steps", 0, "call_args"], [1, 0, 0]), "frame 1 runs ADD1[0, 0, 0] but its caller"),
    (_set(["steps", 1, "frame"], 2), "steps[1].frame is 2: the new frame here must be 1"),
    (_set(["steps", 1, "depth"], 0), "steps[1].depth is 0: frame 1 is at depth 1"),
    (_set(["steps", 2, "frame"], 0), "steps[2] must continue frame 1"),
    (_set(["steps", 2, "args"], [1, 0, 0]), "steps[2] must continue frame 1"),
    (lambda r: r["steps"].pop(), "steps end before frame 0 (ADD) returned"),
    (lambda r: r["steps"].append(copy.deepcopy(r["steps"][-1])), "after the entry frame returned"),
]


@pytest.mark.parametrize(("mutate", "message"), CASES)
def test_invalid_records(tmp_path, good, mutate, message):
    rec = _mutated(good, mutate)
    with pytest.raises(ValueError) as err:
        validate_record(rec)
    assert message in str(err.value)
    path = _write_lines(tmp_path / "t.jsonl", _lines([good[1], good[2], rec, good[3]]))
    err = _error(path)
    assert err.line == 3 and message in err.message
    assert str(err).startswith(f"{path}:3: ")


def test_program_of_a_new_frame_must_be_listed(good):
    rec = copy.deepcopy(good[0])
    rec["programs"].remove("addition.LSHIFT")
    with pytest.raises(ValueError, match="'LSHIFT' is not among the trace's programs"):
        validate_record(rec)


def test_a_call_without_its_frame(good):
    rec = copy.deepcopy(good[0])
    rec["steps"] = rec["steps"][:1]
    with pytest.raises(ValueError, match="steps end right after a call to ADD1"):
        validate_record(rec)


def test_truncated_gzip(tmp_path):
    records = sampled_addition_records(30, max_length=8, seed=3)
    path = tmp_path / "t.jsonl.gz"
    write_traces(path, records)
    data = path.read_bytes()
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) * 2 // 3])
    seen = []
    with pytest.raises(TraceFormatError) as err:
        for rec in read_traces(tmp_path / "cut.jsonl.gz"):
            seen.append(rec)
    assert seen == records[: len(seen)]
    assert err.value.line == len(seen) + 1
    assert "truncated" in str(err.value) or "invalid JSON" in str(err.value)
    assert str(err.value).startswith(f"{tmp_path / 'cut.jsonl.gz'}:{len(seen) + 1}: ")


def test_gzip_cut_inside_the_header_or_trailer(tmp_path, good):
    data = gzip.compress(b"\n".join(line.encode() for line in _lines(good)) + b"\n", mtime=0)
    for cut, name in ((5, "head"), (len(data) - 4, "tail")):
        path = tmp_path / f"{name}.jsonl.gz"
        path.write_bytes(data[:cut])
        err = _error(path)
        assert "corrupt or truncated gzip data" in err.message
        assert err.line >= 1


def test_corrupt_gzip_data(tmp_path, good):
    data = bytearray(gzip.compress(("\n".join(_lines(good)) + "\n").encode(), mtime=0))
    for i in range(20, 40):
        data[i] ^= 0xFF
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(bytes(data))
    err = _error(path)
    assert err.line == 1 and err.path == str(path)


def test_binary_file(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    err = _error(path)
    assert err.line == 1
    assert "not UTF-8 text" in err.message or "invalid JSON" in err.message
    path.write_bytes(bytes(range(256)) * 8)
    assert _error(path).line in (1, 2)


def test_huge_integer_is_a_format_error(tmp_path):
    path = _write_lines(
        tmp_path / "t.jsonl", ['{"schema": "npi-trace/1", "seed": ' + "9" * 5000 + "}"]
    )
    err = _error(path)
    assert err.line == 1 and "invalid JSON" in err.message


def test_unvalidated_read_still_reports_bad_json(tmp_path, good):
    rec = copy.deepcopy(good[0])
    rec["schema"] = "npi-trace/9"
    path = _write_lines(tmp_path / "t.jsonl", _lines([rec]) + ["{oops", "[]"])
    it = read_traces(path, validate=False)
    assert next(it)["schema"] == "npi-trace/9"
    with pytest.raises(TraceFormatError, match=":2: invalid JSON"):
        next(it)


def test_missing_file_is_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(read_traces(tmp_path / "absent.jsonl"))


def test_valid_records_pass(good):
    for rec in good + [addition_record(["0", "0"]), addition_record(["999", "1"])]:
        validate_record(rec)
