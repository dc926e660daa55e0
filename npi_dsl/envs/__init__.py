"""Environments: one module each, one shared interface (base.py).

Look environments up by name through the registry (built-ins are imported on first use):

    from npi_dsl.envs import create_env, vocabulary
    env = create_env("scratchpad")
"""

from npi_dsl.envs.base import (
    ActionSpec,
    EnvError,
    Environment,
    ObsSlot,
    QuerySpec,
    Vocabulary,
)
from npi_dsl.envs.registry import (
    ENTRY_POINT_GROUP,
    create_env,
    env_names,
    get_env_class,
    register_env,
    vocabulary,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ActionSpec",
    "EnvError",
    "Environment",
    "ObsSlot",
    "QuerySpec",
    "Vocabulary",
    "create_env",
    "env_names",
    "get_env_class",
    "register_env",
    "vocabulary",
]
