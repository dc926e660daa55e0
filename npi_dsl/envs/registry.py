"""Find environments by name: the built-ins, programmatic registrations and plugins.

A third-party package makes an environment available to `env NAME` without editing npi by
declaring an entry point in the group `npi.environments`:

    [project.entry-points."npi.environments"]
    grid = "npi_grid:GridEnv"

Importing this module is cheap: the built-in environments are imported on first use, and
plugins are looked up only when a name is neither built in nor registered (or when
`env_names()` lists everything).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from npi_dsl.envs.base import EnvError, Environment, Vocabulary

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

#: the entry-point group third-party environments register under
ENTRY_POINT_GROUP = "npi.environments"

_BUILTINS: Mapping[str, str] = {
    "scratchpad": "npi_dsl.envs.scratchpad:ScratchpadEnv",
    "array": "npi_dsl.envs.array:ArrayEnv",
    "camera": "npi_dsl.envs.camera:CameraEnv",
}

# name -> class: built-ins once imported, register_env() calls, loaded plugins
_classes: dict[str, type[Environment]] = {}
_vocabularies: dict[tuple[str, tuple[tuple[str, Any], ...]], Vocabulary] = {}


def _check_class(obj: Any, name: str, origin: str) -> type[Environment]:
    if not (isinstance(obj, type) and issubclass(obj, Environment)):
        raise EnvError(f"{origin} is not an npi Environment subclass (got {obj!r})")
    declared = getattr(obj, "name", None)
    if declared != name:
        raise EnvError(
            f"{origin} declares name {declared!r}, but is registered as {name!r}: "
            "the class's `name` must equal its registered name"
        )
    return obj


def _plugin_entry_points() -> dict[str, EntryPoint]:
    import importlib.metadata  # not at module import: it is slow, and needed only here

    found: dict[str, EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # the first on sys.path wins, as for imports
    return found


def _load_plugin(ep: EntryPoint) -> type[Environment]:
    dist = getattr(ep, "dist", None)
    where = f" (from {dist.name} {dist.version})" if dist is not None else ""
    origin = f"environment plugin {ep.name!r} = {ep.value!r}{where}"
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must not crash the caller with a traceback
        raise EnvError(f"{origin} failed to load: {type(exc).__name__}: {exc}") from exc
    return _check_class(obj, ep.name, origin)


def get_env_class(name: str) -> type[Environment]:
    """The environment class called `name`.

    Raises KeyError if no built-in, registered or plugin environment has that name, and
    EnvError if a plugin of that name exists but cannot be loaded.
    """
    cls = _classes.get(name)
    if cls is not None:
        return cls
    target = _BUILTINS.get(name)
    if target is not None:
        module, _, attr = target.partition(":")
        cls = _check_class(getattr(importlib.import_module(module), attr), name, target)
    else:
        ep = _plugin_entry_points().get(name)
        if ep is None:
            raise KeyError(name)
        cls = _load_plugin(ep)
    _classes[name] = cls
    return cls


def env_names() -> list[str]:
    """Every environment name available: built-ins, registered ones and plugins, sorted."""
    names = set(_BUILTINS) | set(_classes) | set(_plugin_entry_points())
    return sorted(names)


def register_env(cls: type[Environment], *, replace: bool = False) -> type[Environment]:
    """Register an environment class under its `name` (usable as a class decorator).

    Registering a different class under a name already registered or built in raises
    ValueError unless `replace` is true.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls!r} has no `name`: an environment class needs a name")
    _check_class(cls, name, repr(cls))
    existing = _classes.get(name)
    if not replace and existing is not cls and (existing is not None or name in _BUILTINS):
        raise ValueError(f"an environment named {name!r} is already registered")
    _classes[name] = cls
    for key in [k for k in _vocabularies if k[0] == name]:
        del _vocabularies[key]
    return cls


def create_env(name: str, **config: int) -> Environment:
    """A new instance of environment `name` with the given `env NAME(...)` configuration."""
    return get_env_class(name)(**config)


def vocabulary(name: str, **config: int) -> Vocabulary:
    """The (cached) vocabulary of environment `name` for this configuration.

    The result is shared between callers: treat it, and its dicts, as read-only.
    """
    try:
        key = (name, tuple(sorted(config.items())))
        hash(key)
    except TypeError:  # an unhashable configuration value: the class will reject it
        return get_env_class(name).vocabulary(**config)
    vocab = _vocabularies.get(key)
    if vocab is None:
        vocab = _vocabularies[key] = get_env_class(name).vocabulary(**config)
    return vocab
