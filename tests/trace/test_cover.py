"""`npi compile --cover`: coverage-driven inputs (npi_dsl.coverage.cover_picks), through the CLI
and the API, on the bundled programs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npi_dsl.checker import load
from npi_dsl.coverage import Coverage, cover_picks, cover_seed, decision_contexts
from npi_dsl.interpreter import compile_task
from npi_dsl.sampling import trace_seed
from npi_dsl.trace import read_traces
from npi_runtime.cli import app

PROGRAMS = Path(__file__).resolve().parents[2] / "programs"
RECURSIVE = str(PROGRAMS / "addition_recursive.npi")
SORTING = str(PROGRAMS / "sorting.npi")


def npi(*args: str):  # noqa: ANN201
    return CliRunner().invoke(app, list(args))


def _runner(path: str, task: str):  # noqa: ANN202
    return compile_task(load(path), task, max_steps=1_000_000, max_depth=10_000)


def _contexts(records: list[dict], programs: frozenset[str] | None = None) -> set:
    out: set = set()
    for r in records:
        out |= decision_contexts(r, programs)
    return out


def _compile(tmp_path: Path, name: str, *args: str) -> tuple[Path, list[dict], str]:
    path = tmp_path / name
    r = npi("compile", *args, "-o", str(path))
    assert r.exit_code == 0, r.output
    return path, list(read_traces(path)), r.stderr


def test_same_seed_same_bytes_and_another_seed_other_inputs(tmp_path: Path) -> None:
    args = (RECURSIVE, "-l", "1..3", "-n", "6", "--cover", "--pool", "8")
    a, ra, _ = _compile(tmp_path, "a.jsonl.gz", *args, "-s", "3")
    b, _, _ = _compile(tmp_path, "b.jsonl.gz", *args, "-s", "3")
    c, rc, _ = _compile(tmp_path, "c.jsonl.gz", *args, "-s", "4")
    assert a.read_bytes() == b.read_bytes()
    assert [r["input"] for r in ra] != [r["input"] for r in rc]


@pytest.mark.parametrize(("path", "task", "lengths"),
                         [(RECURSIVE, "add", "1..3"), (SORTING, "sort", "2,4")])
def test_record_seeds_regenerate_their_inputs_and_traces(tmp_path: Path, path: str, task: str,
                                                         lengths: str) -> None:
    out, records, _ = _compile(tmp_path, "t.jsonl", path, "-l", lengths, "-n", "5", "-s", "9",
                               "--cover", "--pool", "16")
    runner = _runner(path, task)
    lines = out.read_text().splitlines()
    assert len(records) == len(lines) == 5 * (3 if lengths == "1..3" else 2)
    for record, line in zip(records, lines, strict=True):
        regenerated = runner.sample_input(random.Random(record["seed"]), record["length"])
        assert runner.parse_input(regenerated) == record["input"]
        assert runner.run_line(regenerated, record["seed"]) == line


def test_chosen_seeds_come_from_the_slots_pool(tmp_path: Path) -> None:
    pool = 16
    _, records, _ = _compile(tmp_path, "t.jsonl", RECURSIVE, "-l", "2,3", "-n", "4", "-s", "1",
                             "--cover", "--pool", str(pool))
    slots = [(length, i) for length in (2, 3) for i in range(4)]
    for (length, i), record in zip(slots, records, strict=True):
        assert record["length"] == length
        assert record["seed"] in {cover_seed(1, length, i, j) for j in range(pool)}


def test_covers_at_least_as_much_as_the_plain_compile(tmp_path: Path) -> None:
    args = (RECURSIVE, "-l", "1..3", "-n", "20", "-s", "5")
    _, plain, _ = _compile(tmp_path, "plain.jsonl", *args)
    _, covered, _ = _compile(tmp_path, "cover.jsonl", *args, "--cover")
    assert len(covered) == len(plain) == 60
    assert len(_contexts(covered)) > len(_contexts(plain))
    add1 = frozenset({"ADD1"})
    _, focused, _ = _compile(tmp_path, "focus.jsonl", *args, "--cover", "--cover-programs",
                             "ADD1")
    assert len(_contexts(focused, add1)) >= len(_contexts(plain, add1))


def test_pool_1_is_the_plain_compile(tmp_path: Path) -> None:
    args = (RECURSIVE, "-l", "1..4", "-n", "7", "-s", "2")
    plain, _, _ = _compile(tmp_path, "plain.jsonl.gz", *args)
    one, _, _ = _compile(tmp_path, "one.jsonl.gz", *args, "--cover", "--pool", "1")
    assert plain.read_bytes() == one.read_bytes()
    assert cover_seed(2, 3, 5, 0) == trace_seed(2, 3, 5)


def test_a_larger_count_starts_with_the_smaller_counts_traces(tmp_path: Path) -> None:
    args = (RECURSIVE, "-l", "3", "-s", "8", "--cover", "--pool", "8")
    small, _, _ = _compile(tmp_path, "small.jsonl", *args, "-n", "5")
    big, _, _ = _compile(tmp_path, "big.jsonl", *args, "-n", "9")
    assert big.read_text().splitlines()[:5] == small.read_text().splitlines()


def test_greedy_choice_most_new_contexts_lowest_index_on_ties() -> None:
    runner = _runner(RECURSIVE, "add")
    pool, lengths, count, seed = 6, [1, 2], 5, 11
    picks = list(cover_picks(runner, lengths, count, seed, pool))
    covered: set = set()
    slots = [(length, i) for length in lengths for i in range(count)]
    for (length, i), pick in zip(slots, picks, strict=True):
        gains = []
        for j in range(pool):
            s = cover_seed(seed, length, i, j)
            value = runner.parse_input(runner.sample_input(random.Random(s), length))
            gains.append(len(decision_contexts(runner.run_line(value, s, normalized=True))
                             - covered))
        assert pick.candidate == gains.index(max(gains))
        assert pick.new == max(gains)
        assert pick.seed == cover_seed(seed, length, i, pick.candidate)
        covered |= decision_contexts(pick.line)
    coverage = Coverage()
    list(cover_picks(runner, lengths, count, seed, pool, coverage))
    assert coverage.contexts == covered
    assert sum(coverage.per_program.values()) == len(coverage)


def test_rarity_weighs_each_new_context_by_one_over_its_candidates() -> None:
    runner = _runner(RECURSIVE, "add")
    pool, lengths, count, seed = 5, [2, 3], 4, 3
    add1 = frozenset({"ADD1"})
    slots = [(length, i) for length in lengths for i in range(count)]
    sets = []
    for length, i in slots:
        row = []
        for j in range(pool):
            s = cover_seed(seed, length, i, j)
            value = runner.parse_input(runner.sample_input(random.Random(s), length))
            row.append(decision_contexts(runner.run_line(value, s, normalized=True), add1))
        sets.append(row)
    frequency: dict = {}
    for row in sets:
        for contexts in row:
            for c in contexts:
                frequency[c] = frequency.get(c, 0) + 1
    picks = list(cover_picks(runner, lengths, count, seed, pool, programs=add1,
                             score="rarity"))
    covered: set = set()
    for row, pick in zip(sets, picks, strict=True):
        scores = [sum(1 / frequency[c] for c in contexts - covered) for contexts in row]
        best = max(scores)
        assert pick.candidate == next(j for j, x in enumerate(scores) if x >= best - 1e-12)
        assert pick.new == len(row[pick.candidate] - covered)
        assert decision_contexts(pick.line, add1) == row[pick.candidate]
        covered |= row[pick.candidate]


def test_rarity_cli_is_deterministic_and_regenerable(tmp_path: Path) -> None:
    args = (RECURSIVE, "-l", "3", "-n", "12", "-s", "2", "--cover", "--pool", "16",
            "--cover-programs", "ADD1", "--cover-score", "rarity")
    a, records, err = _compile(tmp_path, "a.jsonl.gz", *args)
    b, _, _ = _compile(tmp_path, "b.jsonl.gz", *args)
    assert a.read_bytes() == b.read_bytes()
    total = len(_contexts(records, frozenset({"ADD1"})))
    assert f"covered {total:,} decision contexts" in err
    runner = _runner(RECURSIVE, "add")
    for i, record in enumerate(records):
        assert record["seed"] in {cover_seed(2, 3, i, j) for j in range(16)}
        value = runner.sample_input(random.Random(record["seed"]), 3)
        assert runner.parse_input(value) == record["input"]
    one, _, _ = _compile(tmp_path, "one.jsonl.gz", RECURSIVE, "-l", "3", "-n", "12", "-s", "2",
                         "--cover", "--pool", "1", "--cover-score", "rarity")
    plain, _, _ = _compile(tmp_path, "plain.jsonl.gz", RECURSIVE, "-l", "3", "-n", "12",
                           "-s", "2")
    assert one.read_bytes() == plain.read_bytes()


def test_a_context_is_the_qualified_program_its_args_and_the_observation() -> None:
    runner = _runner(RECURSIVE, "add")
    record = runner.run(["6", "7"])
    contexts = decision_contexts(record)
    assert contexts == decision_contexts(json.dumps(record))
    assert {p for p, _, _ in contexts} == {"addition_recursive.ADD", "addition_recursive.ADD1",
                                           "addition_recursive.CARRY",
                                           "addition_recursive.LSHIFT"}
    first = record["steps"][0]
    assert ("addition_recursive.ADD", tuple(first["args"]), tuple(first["obs"])) in contexts
    assert len(contexts) == len({(s["program"], tuple(s["args"]), tuple(s["obs"]))
                                 for s in record["steps"]})
    only = decision_contexts(record, frozenset({"addition_recursive.ADD1"}))
    assert only and {p for p, _, _ in only} == {"addition_recursive.ADD1"}
    assert only == decision_contexts(record, frozenset({"ADD1"}))


def test_stats_report_coverage(tmp_path: Path) -> None:
    _, records, err = _compile(tmp_path, "t.jsonl", RECURSIVE, "-l", "2", "-n", "4",
                               "--cover", "--pool", "4", "--stats")
    total = len(_contexts(records))
    assert f"covered {total:,} decision contexts; the last trace added" in err
    assert "decision contexts covered (--cover)" in err
    assert "addition_recursive.ADD1" in err
    _, _, err = _compile(tmp_path, "u.jsonl", RECURSIVE, "-l", "2", "-n", "4", "--cover",
                         "--cover-programs", "ADD1,addition_recursive.CARRY")
    assert "covered" in err


def test_without_cover_the_summary_is_unchanged(tmp_path: Path) -> None:
    _, _, err = _compile(tmp_path, "t.jsonl", RECURSIVE, "-l", "2", "-n", "4", "--stats")
    assert "covered" not in err and "decision contexts" not in err


@pytest.mark.parametrize(("args", "message"), [
    (("--pool", "8"), "--pool chooses among candidate inputs and needs --cover"),
    (("--cover-programs", "ADD1"), "--cover-programs chooses among candidate inputs and "
                                   "needs --cover"),
    (("--cover", "--cover-programs", "ADD9"), "runs no program 'ADD9' (it runs: ADD, ADD1, "
                                              "CARRY, LSHIFT)"),
    (("--cover", "--cover-programs", "ADD1,,CARRY"), "expected a comma list of program names"),
    (("--cover", "--pool", "0"), "--pool"),
    (("--cover-score", "rarity"), "--cover-score chooses among candidate inputs and needs "
                                  "--cover"),
    (("--cover", "--cover-score", "best"), "--cover-score 'best': expected one of count, "
                                           "rarity"),
])
def test_bad_flags_are_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    out = tmp_path / "t.jsonl"
    r = npi("compile", RECURSIVE, "-l", "2", "-n", "2", *args, "-o", str(out))
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit)
    assert "Traceback" not in r.output
    assert message in " ".join(r.stderr.split())
    assert not out.exists()
