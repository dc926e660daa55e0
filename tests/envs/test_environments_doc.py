"""docs/environments.md stays true: its third-party environment, installed through the
entry point its pyproject snippet declares, is found by name and works."""

from __future__ import annotations

import importlib
import random
import re
from pathlib import Path

import pytest

from npi_dsl.envs import ENTRY_POINT_GROUP, EnvError, create_env, env_names, get_env_class

DOC = Path(__file__).resolve().parents[2] / "docs" / "environments.md"


def _block(tag: str, lang: str) -> str:
    text = DOC.read_text()
    pattern = rf"<!-- {tag}-begin -->\s*```{lang}\n(.*?)```\s*<!-- {tag}-end -->"
    match = re.search(pattern, text, re.S)
    assert match, f"block {tag} missing from docs/environments.md"
    return match.group(1)


def test_doc_plugin_installs_through_its_entry_point(tmp_path, monkeypatch):
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads(_block("plugin-pyproject", "toml"))["project"]
    entry_points = project["entry-points"][ENTRY_POINT_GROUP]
    assert entry_points == {"tape": "npi_tape:TapeEnv"}
    (tmp_path / "npi_tape.py").write_text(_block("plugin-module", "python"))
    info = tmp_path / f"npi_tape-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()

    assert "tape" in env_names()
    assert get_env_class("tape").__module__ == "npi_tape"
    env = create_env("tape")
    rng = random.Random(0)
    for length in (1, 2, 5, 9):
        for _ in range(20):
            bits = env.sample_input(rng, length)
            env.reset(bits)
            read = env.query_fn("read")
            while read() == 1:  # the doc's INC program
                env.act(1, 0)
                env.act(0, 0)
            env.act(1, 1)
            assert env.result() == env.expected("plus_one", bits)
    env.reset("0")
    snap = env.snapshot()
    env.act(1, 1)
    env.restore(snap)
    assert env.observe() == (0,)
    with pytest.raises(EnvError):
        env.act(0, 1)  # off the right end
    with pytest.raises(EnvError):
        env.parse_input("102")
