"""The environment registry: built-ins, register_env, and plugins found through a real
`npi.environments` entry point (a dist-info directory on sys.path)."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import textwrap

import pytest

from npi_dsl.envs import (
    ENTRY_POINT_GROUP,
    EnvError,
    Environment,
    create_env,
    env_names,
    get_env_class,
    register_env,
    vocabulary,
)
from npi_dsl.envs.array import ArrayEnv
from npi_dsl.envs.scratchpad import ScratchpadEnv

PLUGIN_MODULE = '''
import random
from npi_dsl.envs.base import ActionSpec, Environment, ObsSlot, QuerySpec, Vocabulary


class CounterEnv(Environment):
    """One counter; action BUMP(value) adds to it; observation: the counter mod 10."""

    name = "{name}"

    @classmethod
    def vocabulary(cls, **config):
        resolved = cls.resolve_config(config)
        return Vocabulary(
            env=cls.name, names={{}}, kinds={{}},
            actions=(ActionSpec("BUMP", ("value",)),),
            queries={{"count": QuerySpec("count", (), "int")}},
            observation=(ObsSlot("digit", 10),),
            arg_range=resolved["arg_range"], config=resolved,
        )

    def __init__(self, **config):
        super().__init__(**config)
        self.n = 0

    def sample_input(self, rng, length):
        return length

    def parse_input(self, value):
        return int(value)

    def input_length(self, value):
        return value

    def expected(self, oracle, input):
        return input

    def reset(self, input):
        self.n = input

    def observe(self):
        return (self.n % 10,)

    def query_fn(self, name):
        return lambda: self.n

    def act(self, action_id, arg1=0, arg2=0):
        self.n += arg1

    def result(self):
        return self.n

    def render(self):
        return str(self.n)

    def snapshot(self):
        return self.n

    def restore(self, state):
        self.n = state


class NotAnEnv:
    name = "{name}_bad"
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """Install (on sys.path) a distribution declaring environments through entry points."""

    def install(dist: str, module: str, env_name: str, extra: str = "") -> None:
        (tmp_path / f"{module}.py").write_text(PLUGIN_MODULE.format(name=env_name))
        info = tmp_path / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(
            f"[{ENTRY_POINT_GROUP}]\n{env_name} = {module}:CounterEnv\n{extra}"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        importlib.invalidate_caches()

    return install


def test_builtins():
    assert get_env_class("scratchpad") is ScratchpadEnv
    assert get_env_class("array") is ArrayEnv
    assert {"scratchpad", "array"} <= set(env_names())
    assert isinstance(create_env("array"), ArrayEnv)
    assert create_env("scratchpad", arg_range=12).config["arg_range"] == 12


def test_unknown_name_is_keyerror():
    with pytest.raises(KeyError):
        get_env_class("no_such_env_anywhere")
    with pytest.raises(KeyError):
        create_env("no_such_env_anywhere")
    with pytest.raises(KeyError):
        vocabulary("no_such_env_anywhere")


def test_plugin_through_entry_point(plugin):
    plugin("npi_counter_plugin", "npi_counter_plugin_mod", "counter_ep")
    assert "counter_ep" in env_names()
    cls = get_env_class("counter_ep")
    assert cls.__module__ == "npi_counter_plugin_mod" and issubclass(cls, Environment)
    env = create_env("counter_ep")
    env.reset(env.parse_input("41"))
    env.act(0, 2)
    assert env.observe() == (3,) and env.result() == 43
    assert vocabulary("counter_ep").actions[0].name == "BUMP"
    assert get_env_class("counter_ep") is cls  # loaded once


def test_broken_plugins_raise_enverror(plugin):
    plugin(
        "npi_broken_plugin",
        "npi_broken_plugin_mod",
        "counter_ok",
        extra=(
            "missing_attr_env = npi_broken_plugin_mod:DoesNotExist\n"
            "missing_module_env = npi_no_such_module_xyz:Env\n"
            "counter_ok_bad = npi_broken_plugin_mod:NotAnEnv\n"
            "misnamed_env = npi_broken_plugin_mod:CounterEnv\n"
        ),
    )
    with pytest.raises(EnvError, match="'missing_attr_env'.*failed to load.*AttributeError"):
        get_env_class("missing_attr_env")
    with pytest.raises(EnvError, match="failed to load.*ModuleNotFoundError"):
        get_env_class("missing_module_env")
    with pytest.raises(EnvError, match="not an npi Environment subclass"):
        get_env_class("counter_ok_bad")
    with pytest.raises(EnvError, match="declares name 'counter_ok'.*registered as 'misnamed_env'"):
        get_env_class("misnamed_env")
    assert get_env_class("counter_ok").name == "counter_ok"


def test_importing_the_registry_scans_no_plugins(monkeypatch):
    def boom(**kwargs):
        raise AssertionError("entry points were scanned")

    monkeypatch.setattr(importlib.metadata, "entry_points", boom)
    assert get_env_class("scratchpad") is ScratchpadEnv  # built-ins need no scan
    code = textwrap.dedent(
        """
        import importlib.metadata as md
        def boom(**kw):
            raise SystemExit("scanned at import")
        md.entry_points = boom
        import npi_dsl.envs.registry as r
        import sys
        assert "npi_dsl.envs.scratchpad" not in sys.modules
        assert r.get_env_class("array").name == "array"
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_register_env_programmatically():
    source = PLUGIN_MODULE.format(name="counter_registered")
    namespace: dict = {}
    exec(compile(source, "<counter>", "exec"), namespace)
    cls = namespace["CounterEnv"]
    assert register_env(cls) is cls
    assert register_env(cls) is cls  # the same class again: fine
    assert get_env_class("counter_registered") is cls
    assert "counter_registered" in env_names()
    assert vocabulary("counter_registered").env == "counter_registered"

    other = type("Other", (cls,), {"name": "counter_registered"})
    with pytest.raises(ValueError, match="already registered"):
        register_env(other)
    register_env(other, replace=True)
    assert get_env_class("counter_registered") is other

    shadow = type("Shadow", (cls,), {"name": "scratchpad"})
    with pytest.raises(ValueError, match="already registered"):
        register_env(shadow)
    with pytest.raises(EnvError, match="not an npi Environment subclass"):
        register_env(type("X", (), {"name": "x_env"}))
    with pytest.raises(ValueError, match="has no `name`"):
        register_env(type("Y", (cls,), {"name": ""}))
