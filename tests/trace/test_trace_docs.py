"""docs/trace-format.md stays true: its example is a valid trace of the real environment, and
the third-party readers it recommends read npi's files (skipped where they are not installed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from trace_helpers import addition_record

from npi_dsl.trace import read_traces, validate_record, write_traces

DOC = Path(__file__).resolve().parents[2] / "docs" / "trace-format.md"


def _doc_example():
    text = DOC.read_text()
    match = re.search(
        r"<!-- example-begin -->\s*```json\n(.*?)```\s*<!-- example-end -->", text, re.S
    )
    assert match, "the example block is missing from docs/trace-format.md"
    return json.loads(match.group(1))


def test_doc_example_is_the_real_trace_of_6_plus_7(tmp_path):
    example = _doc_example()
    validate_record(example)
    real = addition_record(["6", "7"])
    real["source_hash"] = example["source_hash"]
    assert example == real
    assert list(example) == list(real)
    write_traces(tmp_path / "ex.jsonl", [example])
    assert list(read_traces(tmp_path / "ex.jsonl")) == [example]


def _trace_file(tmp_path):
    records = [addition_record(["6", "7"], seed=3), addition_record(["9" * 5000, "1"], seed=3)]
    path = tmp_path / "train.jsonl.gz"
    write_traces(path, records)
    return path, records


def test_pandas_reads_traces(tmp_path):
    pd = pytest.importorskip("pandas")
    path, records = _trace_file(tmp_path)
    traces = pd.read_json(path, lines=True, dtype=False)
    assert list(traces.columns) == list(records[0])
    assert traces["result"].tolist() == [r["result"] for r in records]
    assert traces["result"].iloc[1] == "1" + "0" * 5000
    steps = pd.json_normalize(traces["steps"].explode().tolist())
    assert len(steps) == sum(len(r["steps"]) for r in records)
    assert int(steps["end"].sum()) == sum(s["end"] for r in records for s in r["steps"])


def test_pyarrow_reads_traces(tmp_path):
    pj = pytest.importorskip("pyarrow.json")
    path, records = _trace_file(tmp_path)
    table = pj.read_json(path, read_options=pj.ReadOptions(block_size=1 << 26))
    assert table.column("result").to_pylist() == [r["result"] for r in records]
    assert table.column("steps").to_pylist()[0] == records[0]["steps"]


def test_datasets_reads_traces(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    path, records = _trace_file(tmp_path)
    ds = datasets.load_dataset(
        "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert ds[0]["result"] == "13" and ds[1]["result"] == records[1]["result"]
    assert ds[0]["steps"] == records[0]["steps"]
