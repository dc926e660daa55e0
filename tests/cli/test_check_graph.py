"""`npi check` and `npi graph`, through typer's CliRunner and through the installed script.

Exit codes (DESIGN.md): 0 success, 1 the program is wrong, 2 usage errors. Diagnostics go to
stderr, data (JSON, graphs) to stdout.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
from typer.testing import CliRunner

from npi_runtime.cli import app

ROOT = Path(__file__).resolve().parent.parent.parent
PROGRAMS = ROOT / "programs"
BUNDLED = sorted(str(p) for p in PROGRAMS.glob("*.npi"))
CORPUS = ROOT / "tests" / "dsl"
KEYS = {"path", "line", "column", "end_line", "end_column", "severity", "code", "message",
        "hint"}

runner = CliRunner()


def npi(*args: str):
    return runner.invoke(app, [str(a) for a in args])


# ------------------------------------------------------------------ npi check


def test_check_bundled_programs_strict_is_ok() -> None:
    r = npi("check", *BUNDLED, "--strict")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert r.stderr.strip() == f"ok: checked {len(BUNDLED)} files: 0 errors, 0 warnings"


def test_check_reports_an_error_compiler_style() -> None:
    path = CORPUS / "err" / "e203_unknown_name.npi"
    r = npi("check", path)
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f"{path}:5:10: error[E203]: unknown name `in3`",
        "  5 |     MOVE(in3, LEFT)",
        "    |          ^^^",
        "  = hint: did you mean `in2`?",
        "failed: checked 1 file: 1 error, 0 warnings",
    ]


def test_check_reports_every_error_of_a_file() -> None:
    r = npi("check", CORPUS / "err" / "many_errors.npi")
    assert r.exit_code == 1
    codes = re.findall(r"error\[(\w+)\]", r.stderr)
    assert codes == ["E203", "E302", "E306", "E404", "E401", "E201"]
    assert "6 errors" in r.stderr


def test_unclosed_brace_hint_points_where_it_opened() -> None:
    path = CORPUS / "err" / "e002_unclosed_program.npi"
    r = npi("check", path)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert lines[0] == f"{path}:4:13: error[E002]: `{{` opened here is never closed"
    assert lines[1:3] == ["  4 | program P() {", "    |             ^"]
    assert lines[3] == "  = hint: add `}` where the block or list ends (the file ends at line 5)"


def test_warnings_pass_unless_strict() -> None:
    path = CORPUS / "err" / "w601_unreachable.npi"
    r = npi("check", path)
    assert r.exit_code == 0, r.output
    assert f"{path}:7:9: warning[W601]: program `UNUSED` is unreachable" in r.stderr
    assert "ok: checked 1 file: 0 errors, 1 warning" in r.stderr
    r = npi("check", "--strict", path)
    assert r.exit_code == 1
    assert f"{path}:7:9: error[W601]:" in r.stderr


def test_json_lists_every_diagnostic_with_its_keys() -> None:
    path = CORPUS / "err" / "many_errors.npi"
    r = npi("check", "--json", path)
    assert r.exit_code == 1
    listed = json.loads(r.stdout)
    assert isinstance(listed, list) and len(listed) == 6
    for d in listed:
        assert set(d) == KEYS
        assert d["path"] == str(path) and d["severity"] == "error"
        assert isinstance(d["line"], int) and isinstance(d["column"], int)
        assert (d["end_line"], d["end_column"]) >= (d["line"], d["column"])
    assert listed[0] == {
        "path": str(path), "line": 11, "column": 10, "end_line": 11, "end_column": 13,
        "severity": "error", "code": "E203", "message": "unknown name `in3`",
        "hint": "did you mean `in2`?"}
    assert r.stderr == ""


def test_json_of_clean_files_is_an_empty_list() -> None:
    r = npi("check", "--json", *BUNDLED)
    assert r.exit_code == 0
    assert json.loads(r.stdout) == []


def test_json_strict_turns_warnings_into_errors() -> None:
    path = CORPUS / "err" / "w601_unreachable.npi"
    (d,) = json.loads(npi("check", "--json", path).stdout)
    assert (d["code"], d["severity"]) == ("W601", "warning")
    r = npi("check", "--json", "--strict", path)
    assert r.exit_code == 1
    (d,) = json.loads(r.stdout)
    assert (d["code"], d["severity"]) == ("W601", "error")


def test_json_names_the_imported_file_where_its_error_is() -> None:
    r = npi("check", "--json", CORPUS / "err" / "imported_syntax_error.npi")
    assert r.exit_code == 1
    (d,) = json.loads(r.stdout)
    assert Path(d["path"]).resolve() == (CORPUS / "err" / "lib" / "syntax_error.npi").resolve()
    assert (d["code"], d["line"], d["column"]) == ("E001", 4, 30)


def test_several_files_are_all_checked() -> None:
    bad1 = CORPUS / "err" / "e203_unknown_name.npi"
    bad2 = CORPUS / "err" / "e404_while_integer.npi"
    r = npi("check", "--json", PROGRAMS / "addition.npi", bad1, bad2)
    assert r.exit_code == 1
    assert [(d["path"], d["code"]) for d in json.loads(r.stdout)] == [
        (str(bad1), "E203"), (str(bad2), "E404")]
    r = npi("check", PROGRAMS / "addition.npi", bad1, bad2)
    assert "failed: checked 3 files: 2 errors, 0 warnings" in r.stderr


@pytest.mark.parametrize("data", [b"\x00\x01\x02binary", b"env scratchpad\n\xff\xfe\n"])
def test_binary_and_non_utf8_files_are_errors(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "x.npi"
    p.write_bytes(data)
    r = npi("check", p)
    assert r.exit_code == 1
    assert "error[E005]" in r.stderr
    assert "Traceback" not in r.output


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "empty.npi"
    p.write_text("")
    r = npi("check", p)
    assert r.exit_code == 1
    assert f"{p}:1:1: error[E101]: missing env declaration" in r.stderr


@pytest.mark.parametrize("args", [
    ["check", "DIR"],                                   # a directory
    ["check", "MISSING"],                               # a missing file
    ["check", "--no-such-flag", "programs/addition.npi"],
    ["check"],                                          # no file at all
    ["graph", "DIR"],
    ["graph", "MISSING"],
    ["graph", "--format", "svg", "programs/addition.npi"],
])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    subst = {"DIR": str(tmp_path), "MISSING": str(tmp_path / "missing.npi"),
             "programs/addition.npi": str(PROGRAMS / "addition.npi")}
    r = npi(*[subst.get(a, a) for a in args])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output


# ------------------------------------------------------------------ npi graph


def _tree(output: str) -> dict[str, list[str]]:
    """Parse rich's tree output into parent -> children (by bare name, in order)."""
    edges: dict[str, list[str]] = {}
    stack: list[tuple[int, str]] = []
    for line in output.splitlines()[1:]:  # the first line is the task
        m = re.match(r"^([│ ├└─]*)(\S+)", line)
        assert m, line
        depth = len(m.group(1)) // 4
        name = m.group(2).split("(")[0]
        stack = stack[:depth - 1]
        if stack:
            edges.setdefault(stack[-1][1], [])
            if name not in edges[stack[-1][1]]:
                edges[stack[-1][1]].append(name)
        stack.append((depth, name))
    return edges


def test_graph_tree_of_addition() -> None:
    r = npi("graph", PROGRAMS / "addition.npi")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "task add"
    edges = _tree(r.stdout)
    assert {k: sorted(v) for k, v in edges.items()} == {
        "ADD": ["ADD1", "LSHIFT"], "ADD1": ["ACT", "CARRY"], "CARRY": ["ACT"],
        "LSHIFT": ["ACT"]}
    assert "ADD() level 3" in r.stdout
    assert "ACT MOVE, WRITE" in r.stdout  # CARRY's actions


def test_graph_tree_marks_recursion() -> None:
    r = npi("graph", PROGRAMS / "addition_recursive.npi")
    assert r.exit_code == 0, r.output
    assert "ADD() level 3 tail recursion" in r.stdout
    assert "ADD() ↻ recursive call" in r.stdout


def test_graph_tree_of_a_library_starts_at_uncalled_programs() -> None:
    r = npi("graph", CORPUS / "ok" / "library.npi")
    assert r.exit_code == 0, r.output
    assert "LEFTMOST() level 1" in r.stdout and "RIGHTMOST() level 1" in r.stdout


def test_graph_tree_expands_a_shared_program_once(tmp_path: Path) -> None:
    """A chain of diamonds has 2**n paths: the tree must not print every one (it hung)."""
    n = 24
    lines = ["env array", "task t { entry P0() }"]
    for i in range(n):
        lines += [f"program P{i}() {{ P{i + 1}() Q{i + 1}() }}",
                  f"program Q{i}() {{ P{i + 1}() Q{i + 1}() }}"]
    lines += [f"program P{n}() {{ MOVE(p1, LEFT) }}", f"program Q{n}() {{ MOVE(p1, LEFT) }}"]
    p = tmp_path / "diamonds.npi"
    p.write_text("\n".join(lines) + "\n")
    r = npi("graph", p)
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) < 10 * n
    assert "Q2() level 23 (see above)" in r.stdout


def test_graph_tree_still_shows_leaf_programs_under_every_caller() -> None:
    r = npi("graph", PROGRAMS / "max.npi")
    assert r.exit_code == 0, r.output
    assert r.stdout.count("RSHIFT() level 1") == 2  # under BSTEP and under RJMP
    assert "see above" not in r.stdout


def test_graph_dot_of_addition() -> None:
    r = npi("graph", "--format", "dot", PROGRAMS / "addition.npi")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == 'digraph "addition" {' and lines[-1] == "}"
    edges = {tuple(m) for m in re.findall(r'^\s*"([^"]+)" -> "([^"]+)";$', r.stdout, re.M)}
    assert edges == {("addition.ADD", "addition.ADD1"), ("addition.ADD", "addition.LSHIFT"),
                     ("addition.ADD1", "ACT"), ("addition.ADD1", "addition.CARRY"),
                     ("addition.CARRY", "ACT"), ("addition.LSHIFT", "ACT")}
    assert '  "addition.ADD" [label="ADD()\\nlevel 3"];' in lines


def test_graph_dot_escapes_quotes_in_file_stems(tmp_path: Path) -> None:
    p = tmp_path / 'my "odd" file.npi'
    p.write_text("env scratchpad\nprogram P() {\n}\n")
    r = npi("graph", "-f", "dot", p)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == 'digraph "my \\"odd\\" file" {'
    assert '  "my \\"odd\\" file.P" [label="P()\\nlevel 1"];' in r.stdout.splitlines()


def _graph(path: Path) -> nx.DiGraph:
    r = npi("graph", "--format", "json", path)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert "edges" in data and "links" not in data
    return nx.node_link_graph(data, edges="edges")


def test_graph_json_of_addition_is_node_link_data() -> None:
    g = _graph(PROGRAMS / "addition.npi")
    assert set(g.nodes) == {"ACT", "addition.ADD", "addition.ADD1", "addition.CARRY",
                            "addition.LSHIFT"}
    assert set(g.edges) == {("addition.ADD", "addition.ADD1"),
                            ("addition.ADD", "addition.LSHIFT"), ("addition.ADD1", "ACT"),
                            ("addition.ADD1", "addition.CARRY"), ("addition.CARRY", "ACT"),
                            ("addition.LSHIFT", "ACT")}
    for _q, d in g.nodes(data=True):
        assert {"kind", "name", "params", "recursion", "level"} <= set(d)
    assert g.nodes["ACT"]["level"] == 0 and g.nodes["ACT"]["kind"] == "act"
    levels = {g.nodes[q]["name"]: g.nodes[q]["level"] for q in g if q != "ACT"}
    assert levels == {"ADD": 3, "ADD1": 2, "CARRY": 1, "LSHIFT": 1}
    add = g.nodes["addition.ADD"]
    assert (add["kind"], add["name"], add["params"], add["recursion"]) == \
        ("program", "ADD", [], "none")


def test_graph_json_qualifies_imported_programs() -> None:
    g = _graph(PROGRAMS / "max.npi")
    assert {"max.MAX", "max.RJMP", "sorting.BUBBLESORT", "sorting.RSHIFT"} <= set(g)
    assert ("max.RJMP", "sorting.RSHIFT") in g.edges
    assert g.nodes["max.MAX"]["level"] == 5
    assert g.nodes["sorting.BUBBLESORT"]["level"] == 4


@pytest.mark.parametrize("path,expected", [
    (PROGRAMS / "addition_recursive.npi",
     {"ADD": ("tail", 3), "ADD1": ("none", 2), "CARRY": ("none", 1), "LSHIFT": ("none", 1)}),
    (CORPUS / "ok" / "recursion_tail.npi", {"WALK": ("tail", 1)}),
    (CORPUS / "ok" / "recursion_general.npi", {"THERE_AND_BACK": ("general", 1)}),
    (CORPUS / "ok" / "recursion_mutual.npi", {"PING": ("tail", 1), "PONG": ("tail", 1)}),
    (CORPUS / "ok" / "import_cycle.npi", {"PING": ("tail", 1), "PONG": ("tail", 1)}),
    (PROGRAMS / "sorting.npi",
     {"BUBBLESORT": ("none", 4), "BUBBLE": ("none", 3), "BSTEP": ("none", 2),
      "COMPSWAP": ("none", 1), "RSHIFT": ("none", 1), "RESET": ("none", 2),
      "LSHIFT": ("none", 1)}),
])
def test_recursion_classes_and_levels(path: Path, expected: dict[str, tuple[str, int]]) -> None:
    g = _graph(path)
    got = {d["name"]: (d["recursion"], d["level"]) for q, d in g.nodes(data=True) if q != "ACT"}
    assert got == expected


def test_graph_of_a_wrong_program_prints_diagnostics_and_exits_1() -> None:
    r = npi("graph", "--format", "json", CORPUS / "err" / "e203_unknown_name.npi")
    assert r.exit_code == 1
    assert r.stdout == ""
    assert "error[E203]" in r.stderr


# ------------------------------------------------------------------ the installed script


def _npi_script() -> str:
    found = Path(sys.executable).parent / "npi"
    script = str(found) if found.exists() else shutil.which("npi")
    if script is None:
        pytest.skip("the npi console script is not installed")
    return script


def test_installed_script_checks_and_exits_with_the_right_codes() -> None:
    script = _npi_script()
    ok = subprocess.run([script, "check", "--strict", *BUNDLED], capture_output=True,
                        text=True, timeout=120, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr.strip() == f"ok: checked {len(BUNDLED)} files: 0 errors, 0 warnings"
    bad = subprocess.run([script, "check", "--json", str(CORPUS / "err" / "many_errors.npi")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 1
    assert len(json.loads(bad.stdout)) == 6
    usage = subprocess.run([script, "check", str(ROOT)], capture_output=True, text=True,
                           timeout=120)
    assert usage.returncode == 2
    for proc in (ok, bad, usage):
        assert "Traceback" not in proc.stdout + proc.stderr


def test_check_does_not_import_torch() -> None:
    """DESIGN.md: only commands that need torch import it, so `npi check` stays fast."""
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom npi_runtime.cli import app\n"
            f"r = CliRunner().invoke(app, ['check', {str(PROGRAMS / 'addition.npi')!r}])\n"
            "r2 = CliRunner().invoke(app, ['graph', "
            f"{str(PROGRAMS / 'max.npi')!r}])\n"
            "assert r.exit_code == 0 and r2.exit_code == 0, (r.output, r2.output)\n"
            "print(sorted(m for m in ('torch', 'numpy', 'safetensors') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
