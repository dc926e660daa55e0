"""What the checker produces: `Checked` (a checked program file with its imports, what every
later stage consumes), the `FileInfo`, `ProgramInfo` and `TaskInfo` it is made of, and the
`CheckReport` of one check. Re-exported by npi_dsl.checker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from npi_dsl import ast
from npi_dsl.callgraph import CallGraph
from npi_dsl.diagnostics import Diagnostic, did_you_mean, has_errors
from npi_dsl.envs.base import Environment, Vocabulary
from npi_dsl.task_inputs import TaskInputs

if TYPE_CHECKING:
    import networkx as nx

MAX_ARGS = 3  # NPI's argument tuple
Type = Literal["int", "bool"] | None


@dataclass
class FileInfo:
    """One loaded `.npi` file and what is visible inside it."""

    path: str
    stem: str
    module: ast.Module
    source: str
    consts: dict[str, int | bool] = field(default_factory=dict)
    #: bare program name callable from this file -> qualified name (own programs shadow imports)
    scope: dict[str, str] = field(default_factory=dict)
    #: bare names offered by two different imports (an error only where used)
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)  # resolved paths of direct imports


@dataclass(frozen=True)
class ProgramInfo:
    qualified: str  # FILESTEM.NAME
    name: str
    params: tuple[str, ...]
    node: ast.Program
    file: FileInfo


@dataclass(frozen=True)
class TaskInfo:
    name: str
    node: ast.Task
    file: FileInfo
    entry: str  # qualified name of the entry program
    entry_args: tuple[int, ...]  # three integers
    result: ast.Expr | None  # read from the final state; None: the environment's default
    #: what says what a correct result is, as written: an environment oracle's name, or an
    #: expression over the input names (then `inputs.expect` holds it)
    expect: str | None
    programs: tuple[str, ...]  # qualified names reachable from the entry, canonical order
    #: the task's `input` names, `where` constraint and `expect EXPR` (npi_dsl/task_inputs)
    inputs: TaskInputs | None = None

    @property
    def oracle(self) -> str | None:
        """The environment oracle of `expect NAME`, None for `expect EXPR` or no expect."""
        return None if self.inputs is not None and self.inputs.expect is not None \
            else self.expect


@dataclass
class Checked:
    """A checked program file with its imports: what every later stage consumes."""

    root: FileInfo
    files: dict[str, FileInfo]
    env_name: str
    env_config: dict[str, int]
    vocabulary: Vocabulary
    env_class: type[Environment]
    programs: dict[str, ProgramInfo]
    tasks: dict[str, TaskInfo]
    #: the call graph in plain dicts (npi_dsl.callgraph); `graph` is its networkx form
    call_graph: CallGraph
    source_hash: str
    diagnostics: list[Diagnostic]  # warnings only (errors raise)

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The call graph as a networkx `DiGraph` (npi_dsl.callgraph), built on first use:
        networkx is imported only then."""
        return self.call_graph.to_networkx()

    @property
    def program_order(self) -> tuple[str, ...]:
        """Every program of the file and its imports, canonical (sorted qualified) order."""
        return tuple(sorted(self.programs))

    @staticmethod
    def bare(qualified: str) -> str:
        return qualified.rsplit(".", 1)[-1]

    def create_env(self) -> Environment:
        """A fresh environment that observes what the file declares (`observe`), or the
        environment's default observation."""
        env = self.env_class(**self.env_config)
        env.observe_declared(self.vocabulary.observed)
        return env

    def task(self, name: str | None) -> TaskInfo:
        """The named task, or the only one when `name` is None (ValueError otherwise)."""
        if name is None:
            if len(self.tasks) == 1:
                return next(iter(self.tasks.values()))
            names = ", ".join(sorted(self.tasks)) or "none"
            raise ValueError(f"{self.root.path} defines several tasks; choose one with "
                             f"--task ({names})" if self.tasks else
                             f"{self.root.path} defines no task")
        if name not in self.tasks:
            hint = did_you_mean(name, self.tasks)
            raise ValueError(f"{self.root.path} has no task `{name}`" +
                             (f"; {hint}" if hint else
                              f" (tasks: {', '.join(sorted(self.tasks)) or 'none'})"))
        return self.tasks[name]

    def resolve_call(self, file: FileInfo, name: str) -> tuple[str, str | int]:
        """("program", qualified) or ("action", action id) for a call made in `file`."""
        if name in file.scope:
            return ("program", file.scope[name])
        return ("action", self.vocabulary.action_id(name))


@dataclass
class CheckReport:
    path: str
    diagnostics: list[Diagnostic]
    sources: dict[str, str]
    checked: Checked | None

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)
