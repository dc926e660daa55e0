"""One network for several tasks, and a new program learned with the core frozen.

A tiny network learns two tasks of two environments at once (the copy task on the scratch
pad, a walk to the array's end); then a third file, which imports the walk and adds two
programs, is learned with the core frozen. Asserted: what training guarantees (it stops on
perfect validation of every task; then every task is exact on fresh inputs at the validation
lengths), the run's layout, that freezing leaves every weight but the new rows bit for bit
and every earlier report identical, and that each bad combination of run and files is
refused with exit 2 and nothing written.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from npi_runtime.cli import app

THREADS = os.environ.get("NPI_TEST_THREADS", "1")

WALK_NPI = """\
# a tiny array task: walk p1 to the last cell
env array

task walk {
    entry WALK()
    result value(p1)
}

program WALK() {
    while not at_end(p1) {
        STEP()
    }
}

program STEP() {
    MOVE(p1, RIGHT)
}
"""

# walk to the last cell and back: WALK and STEP are walk.npi's, BACK and HOME are new
BACK_NPI = """\
env array
import "walk.npi"

task back {
    entry BACK()
    result value(p1)
}

program BACK() {
    WALK()
    HOME()
}

program HOME() {
    while not at_start(p1) {
        MOVE(p1, LEFT)
    }
}
"""

# the walk with another observation: the run has no encoder for it
WALK_OBSERVE_NPI = WALK_NPI.replace("env array\n", "env array\nobserve value(p1), at_end(p1)\n")

runner = CliRunner()


def npi(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(copy_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("multi")
    shutil.copy(copy_file, d / "copy.npi")
    (d / "walk.npi").write_text(WALK_NPI)
    (d / "back.npi").write_text(BACK_NPI)
    (d / "walk_observe.npi").write_text(WALK_OBSERVE_NPI)
    other = d / "other"
    other.mkdir()
    (other / "walk.npi").write_text(WALK_NPI.replace("MOVE(p1, RIGHT)", "MOVE(p1, RIGHT)\n"
                                                     "    MOVE(p2, RIGHT)"))
    return {"dir": d, "copy": d / "copy.npi", "walk": d / "walk.npi", "back": d / "back.npi",
            "walk_observe": d / "walk_observe.npi", "other_walk": other / "walk.npi"}


@pytest.fixture(scope="module")
def traces(files: dict[str, Path], learn_traces: list[dict]) -> dict[str, Path]:
    from npi_dsl.trace import write_traces
    from npi_runtime import api

    d = files["dir"]
    write_traces(d / "copy.jsonl", learn_traces)
    for name in ("walk", "back"):
        api.compile_traces(api.load_program(files[name]), lengths=range(1, 7), count=48,
                           seed=5, path=d / f"{name}.jsonl")
    return {"copy": d / "copy.jsonl", "walk": d / "walk.jsonl", "back": d / "back.jsonl"}


@pytest.fixture(scope="module")
def multi(files: dict[str, Path], traces: dict[str, Path], configs):
    """One tiny network trained on copy and walk together."""
    from npi_runtime import api

    model_config, train_config = configs(epochs=80)
    run = files["dir"] / "runs" / "both"
    result = api.train_tasks([api.load_program(files["copy"]), api.load_program(files["walk"])],
                             [traces["copy"], traces["walk"]], run, model_config=model_config,
                             train_config=train_config)
    return result


@pytest.fixture(scope="module")
def learned(files: dict[str, Path], traces: dict[str, Path], multi):
    """back.npi's new programs learned into the network of `multi`, the core frozen."""
    run = files["dir"] / "runs" / "back"
    res = npi("train", "--from", multi.run_dir, "--add", files["back"], traces["back"],
              "--freeze-core", "-o", run, "--epochs", "6", "--val-lengths", "4",
              "--val-count", "4", "--threads", THREADS)
    assert res.exit_code == 0, res.output
    return run


def test_one_network_learns_both_tasks(multi, files: dict[str, Path], configs) -> None:
    from npi_runtime import api

    train_config = configs()[1]
    assert multi.summary["stopped"] == "validation perfect 3 times in a row"
    manifest = json.loads((multi.run_dir / "manifest.json").read_text())
    assert [t["label"] for t in manifest["tasks"]] == ["copy.copy", "walk.walk"]
    assert sorted(manifest["environments"]) == ["array", "scratchpad"]
    assert manifest["programs"][0] == "ACT"
    assert {"copy.COPY", "walk.WALK", "walk.STEP"} <= set(manifest["programs"])
    # one core: one LSTM, one program memory, one encoder per environment
    weights = load_file(multi.run_dir / "model.safetensors")
    assert weights["memory.keys"].shape[0] == len(manifest["programs"])
    assert sum(k.startswith("lstm.weight_ih_l0") for k in weights) == 1
    for name in ("copy", "walk"):  # exact where validation was, on fresh inputs
        checked = api.load_program(files[name])
        report = api.verify(api.load_model(multi.run_dir, checked), checked,
                            list(train_config.val_lengths), train_config.val_count, seed=77)
        assert report.passed(1.0), (name, report.to_json())


def test_metrics_show_every_task(multi) -> None:
    records = [json.loads(line) for line in
               (multi.run_dir / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        assert set(r["val"]["tasks"]) == {"copy.copy", "walk.walk"}
        shares = r["train"]["tasks"]
        assert set(shares) == {"copy.copy", "walk.walk"}
        assert abs(sum(s["share"] for s in shares.values()) - 1.0) < 1e-3
    assert records[-1]["val"]["perfect"]


def test_verify_and_run_a_task_of_the_shared_network(multi, files: dict[str, Path]) -> None:
    res = npi("verify", multi.run_dir, files["walk"], "-l", "5", "-n", "4", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["task"] == "walk" and report["lengths"][0]["result_exact"] == 1.0
    from npi_runtime import api

    checked = api.load_program(files["copy"])
    out = api.run_network(api.load_model(multi.run_dir, checked), checked, [["4071", "0"]])
    assert out[0]["status"] == "ok" and out[0]["correct"], out


def test_freezing_the_core_keeps_every_other_weight(multi, learned: Path,
                                                     files: dict[str, Path]) -> None:
    before = load_file(multi.run_dir / "model.safetensors")
    after = load_file(learned / "model.safetensors")
    assert set(before) == set(after)
    manifest = json.loads((learned / "manifest.json").read_text())
    names = manifest["programs"]
    new = [names.index("back.BACK"), names.index("back.HOME")]
    assert new == [len(names) - 2, len(names) - 1]
    for key, old in before.items():
        if key in ("memory.keys", "memory.progs"):
            assert after[key].shape[0] == old.shape[0] + 2
            assert after[key][: old.shape[0]].equal(old), key
            assert not after[key][new].equal(old[:2])  # the new rows trained
        else:
            assert after[key].equal(old), key
    scope = manifest["learned_from"]["scope"]
    assert scope == {"freeze_core": True, "programs": ["back.BACK", "back.HOME"],
                     "encoders": []}
    assert [t["label"] for t in manifest["tasks"]] == ["copy.copy", "walk.walk", "back.back"]


@pytest.mark.parametrize("task", ["copy", "walk"])
def test_earlier_reports_are_identical_after_learning(multi, learned: Path,
                                                      files: dict[str, Path],
                                                      task: str) -> None:
    runs = [npi("verify", run, files[task], "-l", "3,8", "-n", "8", "--seed", "5", "--json")
            for run in (multi.run_dir, learned)]
    assert [r.exit_code for r in runs] == [0, 0], runs[1].output
    assert runs[0].stdout == runs[1].stdout


def test_the_learned_run_runs_its_new_task(learned: Path, files: dict[str, Path]) -> None:
    res = npi("verify", learned, files["back"], "-l", "4", "-n", "4", "--json")
    assert res.exit_code in (0, 1), res.output  # how well it learned is not asserted
    assert json.loads(res.stdout)["task"] == "back"


def _nothing_written(path: Path) -> bool:
    return not path.exists()


@pytest.mark.parametrize("case", ["missing program", "no encoder"])
def test_a_file_the_run_cannot_run_is_refused(multi, files: dict[str, Path], case: str) -> None:
    file = files["back"] if case == "missing program" else files["walk_observe"]
    res = npi("verify", multi.run_dir, file, "-l", "3", "-n", "2")
    assert res.exit_code == 2
    if case == "missing program":
        assert "no program-memory rows for back.BACK, back.HOME" in res.output
        assert "--freeze-core" in res.output
    else:
        assert "no encoder for env array" in res.output
        assert "another configuration or observation" in res.output
    assert "Traceback" not in res.output


def test_freeze_core_with_nothing_new_is_refused(multi, files: dict[str, Path],
                                                 traces: dict[str, Path],
                                                 tmp_path: Path) -> None:
    out = tmp_path / "new"
    res = npi("train", "--from", multi.run_dir, "--add", files["walk"], traces["walk"],
              "--freeze-core", "-o", out)
    assert res.exit_code == 2
    assert "nothing new to train" in res.output
    assert _nothing_written(out)


def test_two_files_defining_one_name_are_refused(files: dict[str, Path],
                                                 traces: dict[str, Path],
                                                 tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = npi("train", files["walk"], files["other_walk"], traces["walk"], "-o", out)
    assert res.exit_code == 2
    assert "two files define program walk.STEP differently" in res.output
    assert _nothing_written(out)
    res = npi("train", files["walk"], files["walk"], traces["walk"], "-o", out)
    assert res.exit_code == 2 and "is given twice" in res.output
    assert _nothing_written(out)


def test_traces_of_no_file_given_are_refused(files: dict[str, Path], traces: dict[str, Path],
                                             tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = npi("train", files["copy"], files["walk"], traces["copy"], traces["back"], "-o", out)
    assert res.exit_code == 2
    assert "belongs to none of the program files given" in res.output
    res = npi("train", files["copy"], files["walk"], traces["copy"], "-o", out)
    assert res.exit_code == 2 and "no traces of" in res.output
    assert _nothing_written(out)


@pytest.mark.parametrize("args, message", [
    (["--add", "{back}"], "--add needs --from"),
    (["--freeze-core"], "--freeze-core needs --from"),
    (["--from", "{run}"], "--from needs --add"),
])
def test_flag_combinations_are_usage_errors(multi, files: dict[str, Path],
                                            traces: dict[str, Path], tmp_path: Path,
                                            args: list[str], message: str) -> None:
    fill = {"back": files["back"], "run": multi.run_dir}
    args = [a.format(**{k: str(v) for k, v in fill.items()}) for a in args]
    paths = [traces["back"]] if "--add" in args else [files["back"], traces["back"]]
    res = npi("train", *paths, *args, "-o", tmp_path / "x")
    assert res.exit_code == 2
    assert message in res.output


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("kind", ["several tasks", "frozen core"])
def test_an_interrupted_run_resumes_to_the_same_weights(multi, files: dict[str, Path],
                                                         traces: dict[str, Path], configs,
                                                         tmp_path: Path, kind: str) -> None:
    """Killed mid-epoch after a checkpoint, resumed: the weights of an unbroken run."""
    from dataclasses import replace

    from npi_runtime import api

    model_config, train_config = configs(epochs=2)
    train_config = replace(train_config, patience=99, checkpoint_seconds=0.0,
                           val_lengths=(4,), val_count=2)
    if kind == "several tasks":
        checkeds = [api.load_program(files["copy"]), api.load_program(files["walk"])]
        paths = [traces["copy"], traces["walk"]]

        def start(run: Path, on_event=None):
            return api.train_tasks(checkeds, paths, run, model_config=model_config,
                                   train_config=train_config, on_event=on_event)
    else:
        checkeds = [api.load_program(files["back"])]
        paths = [traces["back"]]

        def start(run: Path, on_event=None):
            return api.learn_programs(multi.run_dir, checkeds[0], paths, run,
                                      train_config=train_config, on_event=on_event)

    full = start(tmp_path / "full")

    def stop(event: str, data: dict) -> None:
        if event == "batch" and data["epoch"] == 1 and data["batch"] == 3:
            raise _Interrupt

    run = tmp_path / "run"
    with pytest.raises(_Interrupt):
        start(run, stop)
    if kind == "several tasks":
        resumed = api.train_tasks(checkeds, paths, run, resume=True)
    else:  # through the CLI: the added file and its traces
        res = npi("train", "--resume", run, files["back"], *paths)
        assert res.exit_code == 0, res.output
        resumed = None
    if resumed is not None:
        assert resumed.summary["step"] == full.summary["step"]
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(run / "model.safetensors")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


@pytest.mark.parametrize("tasks", ["x", [], [{"label": "walk.walk"}],
                                   [{"label": "a", "task": "walk", "environment": "nowhere",
                                     "programs": []}]])
def test_a_corrupt_task_list_is_refused(multi, files: dict[str, Path], tmp_path: Path,
                                        tasks: object) -> None:
    run = tmp_path / "run"
    shutil.copytree(multi.run_dir, run, symlinks=True)
    path = (run / "manifest.json").resolve()
    manifest = json.loads(path.read_text())
    manifest["tasks"] = tasks
    path.write_text(json.dumps(manifest))
    res = npi("verify", run, files["walk"], "-l", "3", "-n", "2")
    assert res.exit_code == 2, res.output
    assert "is corrupt" in res.output and "Traceback" not in res.output


def test_a_new_environment_gets_its_own_encoder(multi, files: dict[str, Path],
                                                tmp_path: Path) -> None:
    """walk_observe.npi observes the array otherwise: learned with the core frozen, it gets
    new rows and a new encoder, and nothing else changes."""
    from npi_runtime import api

    checked = api.load_program(files["walk_observe"])
    traces = api.compile_traces(checked, lengths=range(1, 5), count=8, seed=1)
    run = tmp_path / "observe"
    result = api.learn_programs(multi.run_dir, checked, traces, run,
                                train_config=_short_config())
    assert result.added_programs == ["walk_observe.STEP", "walk_observe.WALK"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["learned_from"]["scope"]["encoders"] == ["array:walk_observe"]
    assert manifest["environments"]["array:walk_observe"]["env"] == "array"
    before = load_file(multi.run_dir / "model.safetensors")
    after = load_file(run / "model.safetensors")
    new = {k for k in after if k.startswith("encoders.array:walk_observe.")}
    assert new and set(after) - set(before) == new
    for key, old in before.items():
        assert after[key][: old.shape[0]].equal(old), key
    res = npi("verify", run, files["walk_observe"], "-l", "3", "-n", "2", "--json")
    assert res.exit_code in (0, 1), res.output
    res = npi("verify", run, files["walk"], "-l", "3", "-n", "2", "--json")
    assert res.exit_code == 0, res.output


def _short_config():
    from npi_runtime.train import TrainConfig

    return TrainConfig(max_epochs=2, val_lengths=(3,), val_count=2, threads=int(THREADS))


def test_two_observations_of_one_environment_train_together(files: dict[str, Path],
                                                           traces: dict[str, Path],
                                                           configs, tmp_path: Path) -> None:
    from npi_runtime import api

    walk, observe = api.load_program(files["walk"]), api.load_program(files["walk_observe"])
    model_config = configs()[0]
    records = [*api.read_traces([traces["walk"]]),
               *api.compile_traces(observe, lengths=[2, 3], count=4, seed=2)]
    result = api.train_tasks([walk, observe], records, tmp_path / "run",
                             model_config=model_config,
                             train_config=_short_config())
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert sorted(manifest["environments"]) == ["array", "array:walk_observe"]
    assert [t["environment"] for t in manifest["tasks"]] == ["array", "array:walk_observe"]
    for checked in (walk, observe):
        res = npi("verify", result.run_dir, checked.root.path, "-l", "3", "-n", "2")
        assert res.exit_code in (0, 1), res.output
