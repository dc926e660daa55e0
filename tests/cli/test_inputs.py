"""Bad inputs of every kind end with a clear message and exit 2, never a traceback or a hang:
corrupt trace files, traces made for another program, FIFOs and devices, inputs past the
limits, stdout closed or full, outputs into a missing directory."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from inputs_helpers import (
    ADDITION,
    MISMATCHED,
    corrupt_files,
    good_records,
    mismatched_file,
    npi_process,
    write_records,
)
from typer.testing import CliRunner

from npi_dsl.checker import check_file, load
from npi_dsl.trace import TraceFormatError, read_traces
from npi_runtime import api
from npi_runtime.cli import app
from npi_runtime.data import TraceError


def npi(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def no_traceback(r) -> None:
    assert "Traceback" not in r.output and "Traceback" not in (r.stderr or "")


# ---------------------------------------------------------------- corrupt trace files


@pytest.mark.parametrize("name", ["deep", "huge_length", "long_int", "not_json"])
def test_corrupt_trace_file(tmp_path: Path, name: str) -> None:
    path, message = corrupt_files(tmp_path)[name]
    with pytest.raises(TraceFormatError) as e:
        list(read_traces(path))
    assert message in str(e.value) and e.value.exit_code == 2
    r = npi("train", ADDITION, str(path), "-o", str(tmp_path / "run"))
    assert r.exit_code == 2 and message in r.stderr, r.output
    no_traceback(r)
    assert not (tmp_path / "run").exists()


def test_trace_line_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_records(tmp_path / "t.jsonl", good_records())
    monkeypatch.setattr("npi_dsl.trace_files.MAX_TRACE_LINE_BYTES", 1000)
    with pytest.raises(TraceFormatError, match=r":1: line longer than 0 MiB"):
        list(read_traces(path))


# ---------------------------------------------------- traces made for another program


@pytest.mark.parametrize("name", ["blank", "arg_range", "actions", "obs", "result"])
def test_mismatched_traces_are_refused(tmp_path: Path, name: str) -> None:
    path = mismatched_file(tmp_path, name)
    checked = load(ADDITION)
    with pytest.raises(TraceError) as e:
        api.check_traces(checked, list(read_traces(path)), "add")
    assert MISMATCHED[name][1] in str(e.value) and e.value.exit_code == 2


def test_mismatched_traces_cli(tmp_path: Path) -> None:
    path = mismatched_file(tmp_path, "blank")
    r = npi("train", ADDITION, str(path), "-o", str(tmp_path / "run"))
    assert r.exit_code == 2 and MISMATCHED["blank"][1] in r.stderr, r.output
    assert not (tmp_path / "run").exists()


def test_foreign_source_hash_warns_or_fails_with_strict(tmp_path: Path) -> None:
    path = mismatched_file(tmp_path, "source_hash")
    checked = load(ADDITION)
    records = list(read_traces(path))
    warnings = api.check_traces(checked, records, "add")
    assert len(warnings) == 1 and MISMATCHED["source_hash"][1] in warnings[0]
    with pytest.raises(TraceError, match=r"\(--strict\)"):
        api.check_traces(checked, records, "add", strict=True)
    r = npi("train", ADDITION, str(path), "-o", str(tmp_path / "run"), "--strict")
    assert r.exit_code == 2 and "source_hash" in r.stderr, r.output


def test_good_traces_pass(tmp_path: Path) -> None:
    checked = load(ADDITION)
    assert api.check_traces(checked, good_records(), "add", strict=True) == []


def test_wrong_obs_outside_the_sample_needs_strict() -> None:
    records = good_records() * 5  # 20 records; the sample re-runs 8 of them
    records = json.loads(json.dumps(records))
    step = records[1]["steps"][3]
    step["obs"][0] = (step["obs"][0] + 1) % 10
    checked = load(ADDITION)
    api.check_traces(checked, records, "add", rerun=2)  # records 0 and 19 only
    with pytest.raises(TraceError, match="trace 1 is not what"):
        api.check_traces(checked, records, "add", strict=True)


# ---------------------------------------------------------------- FIFOs and devices


def _fifo(tmp_path: Path, name: str = "pipe") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("where", ["program", "import", "input", "trace"])
def test_fifo_is_refused_not_waited_on(tmp_path: Path, where: str) -> None:
    fifo = _fifo(tmp_path, "pipe.npi" if where in ("program", "import") else "pipe")
    if where == "program":
        args = ["check", str(fifo)]
        code, text = 2, "is a FIFO (named pipe), not a regular file"
    elif where == "import":
        main = tmp_path / "main.npi"
        main.write_text('env scratchpad\nimport "pipe.npi"\n')
        args = ["check", str(main)]
        code, text = 1, 'cannot import "pipe.npi": '
    elif where == "input":
        args = ["run", ADDITION, "-i", f"@{fifo}"]
        code, text = 2, "is a FIFO (named pipe)"
    else:
        args = ["train", ADDITION, str(fifo), "-o", str(tmp_path / "run")]
        code, text = 2, "is a FIFO (named pipe), not a regular file"
    r = npi_process(*args)  # a hang fails with TimeoutExpired
    assert r.returncode == code and text in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_device_input_is_refused() -> None:
    r = npi("run", ADDITION, "-i", "@/dev/zero")
    assert r.exit_code == 2 and "is a device, not a regular file" in r.stderr
    r = npi("check", "/dev/zero")
    assert r.exit_code == 2 and "is a device" in r.stderr


def test_symlink_loop_import(tmp_path: Path) -> None:
    (tmp_path / "a.npi").symlink_to(tmp_path / "b.npi")
    (tmp_path / "b.npi").symlink_to(tmp_path / "a.npi")
    main = tmp_path / "main.npi"
    main.write_text('env scratchpad\nimport "a.npi"\n')
    r = npi("check", str(main))
    assert r.exit_code == 1 and "a loop of symbolic links" in r.stderr, r.output
    no_traceback(r)


def test_import_chain_is_linear(tmp_path: Path) -> None:
    n = 2000
    for i in range(n):
        imp = f'import "f{i + 1}.npi"\n' if i + 1 < n else ""
        (tmp_path / f"f{i}.npi").write_text(
            f"env scratchpad\n{imp}\nprogram P{i}() {{\n    MOVE(in1, LEFT)\n}}\n")
    result: list = []
    t = threading.Thread(target=lambda: result.append(check_file(tmp_path / "f0.npi")),
                         daemon=True)
    t.start()
    t.join(60)  # about 2 s here; quadratic, it took over 40 s
    assert result and result[0].ok


# ---------------------------------------------------------------- --input limits


def test_input_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("npi_dsl.inputs.MAX_INPUT_BYTES", 100)
    big = tmp_path / "big.json"
    big.write_text(json.dumps(["1" * 200, "2"]))
    r = npi("run", ADDITION, "-i", f"@{big}")
    assert r.exit_code == 2 and "is larger than 0 MiB, the limit of an input" in r.stderr
    r = npi("run", ADDITION, "-i", "-", input=big.read_text())
    assert r.exit_code == 2 and "standard input holds more than 0 MiB" in r.stderr
    r = npi("run", ADDITION, "-i", "-", input='["1", "2"]')
    assert r.exit_code == 0, r.output


def test_deeply_nested_input() -> None:
    r = npi("run", ADDITION, "-i", "[" * 100_000 + "]" * 100_000)
    assert r.exit_code == 2 and "nested too deeply" in r.stderr


def test_stdin_closed() -> None:
    r = npi_process("run", ADDITION, "-i", "-", preexec=lambda: os.close(0))
    assert r.returncode == 2 and "standard input is closed" in r.stderr, r.stderr


# ---------------------------------------------------------------- output failures


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [
    ("run", ADDITION, "-i", '["1","2"]', "--json"),
    ("compile", ADDITION, "-l", "1..3"),
    ("graph", ADDITION),
    ("check", ADDITION, "--json"),
])
def test_stdout_full(args: tuple[str, ...]) -> None:
    with open("/dev/full", "w") as full:
        r = npi_process(*args, stdout=full)
    assert r.returncode == 2, r.stderr
    assert "No space left on device" in r.stderr and "Traceback" not in r.stderr
    assert "Exception ignored" not in r.stderr


def test_stdout_closed() -> None:
    r = npi_process("run", ADDITION, "-i", '["1","2"]', "--json",
                    preexec=lambda: os.close(1))
    assert r.returncode == 2 and "standard output is closed" in r.stderr, r.stderr
    r = npi_process("check", ADDITION, preexec=lambda: os.close(1))
    assert r.returncode == 0, r.stderr  # prints nothing on stdout: runs


def test_broken_pipe(tmp_path: Path) -> None:
    reader, writer = os.pipe()
    os.close(reader)
    try:
        r = npi_process("compile", ADDITION, "-l", "1..3", stdout=writer)
    finally:
        os.close(writer)
    assert r.returncode == 2 and "Broken pipe" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr


def test_output_into_missing_directory(tmp_path: Path) -> None:
    r = npi("compile", ADDITION, "-l", "1", "-o", str(tmp_path / "nodir" / "t.jsonl"))
    assert r.exit_code == 2 and "does not exist" in r.stderr
    run = tmp_path / "run"
    run.mkdir()  # not a run: the destination is refused before the run is loaded
    for option in ("--outputs", "--plot"):
        r = npi("verify", str(run), ADDITION, option, str(tmp_path / "nodir" / "x"))
        assert r.exit_code == 2 and f"{option} {tmp_path / 'nodir' / 'x'}: the directory" \
            in r.stderr, r.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_output_into_read_only_directory(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = npi("compile", ADDITION, "-l", "1", "-o", str(ro / "t.jsonl"))
        assert r.exit_code == 2 and "is not writable" in r.stderr
    finally:
        ro.chmod(0o755)


def test_no_hang_reading_traces_from_closed_stdin() -> None:
    code = ("import os; os.close(0)\nfrom npi_dsl.trace import read_traces\n"
            "from npi_dsl.errors import NpiError\n"
            "try:\n    list(read_traces('-'))\nexcept NpiError as e:\n    print(e.exit_code)")
    r = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.strip() == "2", r.stderr


def test_symlink_loop_named_on_the_command_line(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.npi").symlink_to("b.npi")
    (tmp_path / "b.npi").symlink_to("a.npi")
    monkeypatch.chdir(tmp_path)  # a short path: the usage error's box does not wrap it
    for args in (["check", "a.npi"], ["run", "a.npi", "-i", "1"]):
        r = npi(*args)
        assert r.exit_code == 2 and "'a.npi': a loop of symbolic links" in r.output, r.output
        no_traceback(r)
