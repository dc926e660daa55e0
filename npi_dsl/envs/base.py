"""The one interface every environment implements.

An environment offers two different things (DESIGN.md, "Observation versus queries"):

* the *observation*: what the network sees, a small tuple of integers described by
  `Vocabulary.observation` (later also images);
* the *queries*: what a reference program may read, possibly privileged.

Never leak queries into the observation. Everything the checker needs to know statically
(names, actions, queries, constants, argument range) is in the `Vocabulary`, available
without building an environment instance.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from npi_dsl.errors import NpiError

JSON = Any

#: The largest value of an environment setting (`env NAME(arg_range = ...)`): the compiled
#: engine builds a table of arg_range entries for each call site with a computed argument,
#: and NPI encodes each argument as one of arg_range values (E103 past it).
MAX_SETTING = 1000


class EnvError(NpiError):
    """A runtime error of the environment (a pointer moved off the pad, a bad value...).

    The interpreter turns it into a diagnostic at the `.npi` source location of the action.
    """


@dataclass(frozen=True)
class ActionSpec:
    """An action of ACT. Its id is its position in `Vocabulary.actions`.

    `params` are argument kinds (keys of `Vocabulary.kinds`, or "value" for a plain integer
    in `[0, arg_range)`), at most two: ACT's argument tuple is `[action_id, arg1, arg2]`.
    """

    name: str
    params: tuple[str, ...]
    doc: str = ""


@dataclass(frozen=True)
class QuerySpec:
    """A query a reference program may read.

    Whether a file may also *observe* it (`observe QUERY(ARGS)`, docs/language.md): a bool
    query is observable unless `private` says why not; an int query must also state
    `symbols`, the number of values it returns (0..symbols-1), which is the size of its
    observation slot. `private` is a reason, shown in the diagnostic, e.g. "the network would
    see the array's length". The defaults (bool: observable, int: not until `symbols` is
    given) keep plugin environments working unchanged.
    """

    name: str
    params: tuple[str, ...]
    returns: Literal["int", "bool"]
    doc: str = ""
    private: str = ""
    symbols: int = 0

    @property
    def observable(self) -> bool:
        return not self.private and (self.returns == "bool" or self.symbols >= 1)

    @property
    def slot_symbols(self) -> int:
        """The symbols of this query's observation slot (bool: 2, false = 0, true = 1)."""
        return 2 if self.returns == "bool" else self.symbols


#: one observed query: its name and its constant integer arguments
ObservedQuery = tuple[str, tuple[int, ...]]


@dataclass(frozen=True)
class ObsSlot:
    """One slot of the observation. `symbols` integer values 0..symbols-1 (kind "symbol").

    Image slots (the camera environment) use kind "image" and `shape`.
    """

    name: str
    symbols: int
    kind: Literal["symbol", "image"] = "symbol"
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class InputPart:
    """One part of an environment's input, as task expressions see it (`input a, b`).

    `type` is a task-expression type (npi_dsl/builtins.py): "int" (a number of any size) or
    "list" (a list of ints); `name` is the default name `where` and `expect` use when the task
    has no `input` field.
    """

    name: str
    type: Literal["int", "list"]
    doc: str = ""


@dataclass(frozen=True)
class InputShape:
    """What a sampler may build in instead of rejecting (npi_dsl/task_inputs.py): `below`
    maps a part's index to an exclusive upper bound on its value (`b < 10`), `ordered` holds
    pairs (i, j) of int parts with part i >= part j (`a >= b`)."""

    below: Mapping[int, int] = field(default_factory=dict)
    ordered: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    """Everything static about an environment: what its names mean and what it offers."""

    env: str
    names: Mapping[str, int]  # every row / pointer / constant name -> its integer
    kinds: Mapping[str, tuple[str, ...]]  # argument kind -> the names of that kind, e.g. "row"
    actions: tuple[ActionSpec, ...]  # in id order
    queries: Mapping[str, QuerySpec]
    observation: tuple[ObsSlot, ...]
    arg_range: int = 10
    blank: int = 10  # the integer BLANK stands for (in names and in observations)
    oracles: Mapping[str, str] = field(default_factory=dict)  # `expect NAME` -> description
    config: Mapping[str, JSON] = field(default_factory=dict)
    #: the file's `observe` declaration (empty: the environment's default observation, as
    #: `observation` describes it); when declared, `observation` has one slot per entry
    observed: tuple[ObservedQuery, ...] = ()
    #: the default observation as queries, when it is one (the lint names what it lacks)
    default_observed: tuple[ObservedQuery, ...] = ()

    def query_text(self, name: str, args: tuple[int, ...]) -> str:
        """`same(p1, p2)`: a query call with its arguments spelled by their names."""
        spec = self.queries.get(name)
        words = []
        for i, a in enumerate(args):
            kind = spec.params[i] if spec is not None and i < len(spec.params) else "value"
            members = self.kinds.get(kind, ())
            words.append(members[a] if 0 <= a < len(members) and
                         self.names.get(members[a]) == a else str(a))
        return f"{name}({', '.join(words)})"

    def with_observation(self, observed: tuple[ObservedQuery, ...]) -> Vocabulary:
        """This vocabulary with a declared observation: one symbol slot per query."""
        from dataclasses import replace

        slots = tuple(ObsSlot(self.query_text(n, a), self.queries[n].slot_symbols)
                      for n, a in observed)
        return replace(self, observation=slots, observed=tuple(observed))
    #: the input's parts for `input`, `where` and `expect EXPR`; () : the task inputs cannot
    #: be named (an `input` field is then a diagnostic)
    input_parts: tuple[InputPart, ...] = ()
    #: the task-expression type of `result()` ("int", "list"), None when it has none
    result_type: str | None = None
    #: oracle -> the task-expression type of its result
    oracle_types: Mapping[str, str] = field(default_factory=dict)

    def action_id(self, name: str) -> int:
        for i, a in enumerate(self.actions):
            if a.name == name:
                return i
        raise KeyError(name)


class Environment(ABC):
    """A world a program acts on. Subclasses register under a name (see `registry`)."""

    name: ClassVar[str]
    #: configuration keys accepted in `env NAME(key = value, ...)`, with their defaults
    config_defaults: ClassVar[Mapping[str, int]] = {"arg_range": 10}
    #: the smallest arg_range whose arguments can still name everything, and why
    MIN_ARG_RANGE: ClassVar[int] = 1
    MIN_ARG_RANGE_REASON: ClassVar[str] = "arguments are 0..arg_range-1"

    def __init__(self, **config: int) -> None:
        self.config = self.resolve_config(config)

    @classmethod
    def resolve_config(cls, config: Mapping[str, Any]) -> dict[str, int]:
        """Helper: check `env NAME(key = value, ...)` configuration, merge the defaults.

        Raises EnvError for an unknown key or a value that is not an integer. Environments
        call it from `vocabulary` (which has no instance) and may add their own checks.
        """
        unknown = set(config) - set(cls.config_defaults)
        if unknown:
            raise EnvError(
                f"unknown configuration for env {cls.name}: {sorted(unknown)} "
                f"(accepted: {sorted(cls.config_defaults)})"
            )
        for key, value in config.items():
            if type(value) is not int:
                raise EnvError(
                    f"configuration {key} of env {cls.name} must be an integer, got {value!r}"
                )
            if value > MAX_SETTING:
                raise EnvError(
                    f"configuration {key} of env {cls.name} must be at most {MAX_SETTING:,}, "
                    f"got {value:,}"
                )
        resolved = {**cls.config_defaults, **config}
        if resolved.get("arg_range", cls.MIN_ARG_RANGE) < cls.MIN_ARG_RANGE:
            raise EnvError(
                f"env {cls.name} needs arg_range >= {cls.MIN_ARG_RANGE} "
                f"({cls.MIN_ARG_RANGE_REASON}), got {resolved['arg_range']}"
            )
        return resolved

    # ---- static description
    @classmethod
    @abstractmethod
    def vocabulary(cls, **config: int) -> Vocabulary:
        """The vocabulary for this configuration (no instance needed: the checker uses it)."""

    # ---- inputs and oracles
    @abstractmethod
    def sample_input(self, rng: random.Random, length: int) -> JSON:
        """A task input of the given length, as `npi run --input` takes it (JSON-able)."""

    @abstractmethod
    def parse_input(self, value: JSON) -> JSON:
        """Validate and normalise a user-given input; raise EnvError with a clear message."""

    #: the longest input length there is, where lengths are bounded (the camera: 9 views
    #: from the farthest start pose); None: any length
    max_length: ClassVar[int | None] = None

    #: input fields whose values place an input on a grid of cells (the camera's start pose:
    #: ("azimuth", "elevation")); `npi verify` then reports and plots accuracy per cell
    verification_grid: ClassVar[tuple[str, ...] | None] = None

    def verification_sets(self, count: int, seed: int) -> Mapping[str, list[JSON]] | None:
        """Named input sets `npi verify` checks when no lengths are given (the camera: every
        start pose of `count` seen and `count` unseen cars), or None: verify by length."""
        return None

    def input_length(self, value: JSON) -> int:
        """The length of a normalised input (what `--length` means for this environment)."""
        return len(value)

    def input_values(self, value: JSON) -> tuple[Any, ...]:
        """A normalised input as the values of its parts (`Vocabulary.input_parts`, in
        order), as task expressions see them. Environments with input parts implement it."""
        raise EnvError(f"env {self.name} declares no input parts")

    def result_form(self, value: Any) -> JSON:
        """A task expression's value in the form `result()` gives (the scratch pad: a
        decimal string), so that `expect EXPR` compares like an oracle's answer."""
        return value

    def sample_shaped(self, rng: random.Random, length: int, shape: InputShape) -> JSON:
        """An input of the given length that fits `shape` where the environment can build
        it in (the constraint is still checked after); the default ignores the shape."""
        return self.sample_input(rng, length)

    @abstractmethod
    def expected(self, oracle: str, input: JSON) -> JSON:
        """What a correct result is for `expect ORACLE`, computed from the input alone."""

    # ---- running
    @abstractmethod
    def reset(self, input: JSON) -> None:
        """Lay out a normalised input and put every pointer at its starting place."""

    @abstractmethod
    def observe(self) -> tuple[int, ...]:
        """What the network sees now, one integer per observation slot."""

    @abstractmethod
    def query_fn(self, name: str) -> Callable[..., int | bool]:
        """The bound function answering query `name` (called with the query's int args)."""

    def observer(self, observed: tuple[ObservedQuery, ...]) -> Callable[[], tuple[int, ...]]:
        """A function giving the declared observation now: one integer per observed query
        (bools as 0/1), in declaration order. Resolves the queries once, so each call is a
        few closure calls; environments may override it with something faster."""
        fns = tuple((self.query_fn(name), args) for name, args in observed)
        if len(fns) == 1:
            (f, a), = fns

            def observe_one() -> tuple[int, ...]:
                return (int(f(*a)),)

            return observe_one

        def observe() -> tuple[int, ...]:
            return tuple([int(f(*a)) for f, a in fns])

        return observe

    def observe_declared(self, observed: tuple[ObservedQuery, ...]) -> None:
        """From now on `observe()` gives the declared observation (nothing when empty)."""
        if observed:
            self.observe = self.observer(observed)  # type: ignore[method-assign]
            self.observed_queries = tuple(observed)

    @abstractmethod
    def act(self, action_id: int, arg1: int = 0, arg2: int = 0) -> None:
        """Apply an action of ACT; raise EnvError if it is illegal here."""

    def action_fn(self, action_id: int) -> Callable[[int, int], None]:
        """Helper: a function `f(arg1, arg2)` applying action `action_id`, like `act`.

        Lets an interpreter resolve the action once instead of dispatching on every call.
        Environments override it to return their direct per-action closures; this default
        goes through `act`. Unknown ids raise EnvError here, not at call time.
        """
        if not 0 <= action_id < len(self.vocabulary(**self.config).actions):
            raise EnvError(f"env {self.name} has no action with id {action_id}")
        act = self.act

        def apply(arg1: int = 0, arg2: int = 0) -> None:
            act(action_id, arg1, arg2)

        return apply

    @abstractmethod
    def result(self) -> JSON:
        """The default result of a run (a task's `result` expression overrides it)."""

    @abstractmethod
    def render(self) -> str:
        """A text picture of the state for the terminal (pointers marked)."""

    @classmethod
    def render_images(cls, slot: str, keys: Sequence[int], shape: tuple[int, ...]) -> Any:
        """The pictures of image slot `slot` for its values `keys` (frame keys: observations
        and traces hold keys, never pixels): a uint8 numpy array [len(keys), *shape].
        Environments with an image slot implement it; the encoder calls it."""
        raise EnvError(f"env {cls.name} has no image observations (slot {slot!r})")

    @abstractmethod
    def snapshot(self) -> Any:
        """An immutable value from which `restore` brings back this exact state."""

    @abstractmethod
    def restore(self, state: Any) -> None: ...


class RebuiltOnCopy:
    """Mixin: copies and pickles rebuild a fresh instance from the config and a snapshot.

    Environments that hand out per-instance closures (fast `observe`/`act`) must not share
    them between copies.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self.config), self.snapshot(),  # type: ignore
                           getattr(self, "observed_queries", ())))

    def __copy__(self) -> Any:
        return _rebuild(type(self), dict(self.config), self.snapshot(),  # type: ignore
                        getattr(self, "observed_queries", ()))

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self.__copy__()


class BoundOperations(RebuiltOnCopy):
    """Mixin: an environment whose operations are closures over its state, made per instance.

    `__init__` builds the closures and hands them to `bind_operations`: `observe`, the
    actions in id order and the queries by name. Instance attributes then shadow `observe`
    and `act`, so the hot path makes no `self` lookups, and `query_fn`/`action_fn` hand out
    the closures themselves. Unknown names and ids are EnvErrors naming what there is.
    """

    name: str
    _actions: tuple[Callable[[int, int], None], ...]
    _queries: dict[str, Callable[..., int | bool]]

    def bind_operations(self, observe: Callable[[], tuple[int, ...]],
                        actions: tuple[Callable[[int, int], None], ...],
                        queries: dict[str, Callable[..., int | bool]]) -> None:
        n = len(actions)
        name = self.name

        def act(action_id: int, arg1: int = 0, arg2: int = 0) -> None:
            if 0 <= action_id < n:
                actions[action_id](arg1, arg2)
            else:
                raise EnvError(f"env {name} has no action with id {action_id}")

        self.observe = observe  # type: ignore[method-assign]
        self.act = act  # type: ignore[method-assign]
        self._actions = actions
        self._queries = queries

    def observe(self) -> tuple[int, ...]:  # replaced per instance by `bind_operations`
        return self.observe()

    def act(self, action_id: int, arg1: int = 0, arg2: int = 0) -> None:  # replaced likewise
        self.act(action_id, arg1, arg2)

    def query_fn(self, name: str) -> Callable[..., int | bool]:
        try:
            return self._queries[name]
        except KeyError:
            raise EnvError(f"env {self.name} has no query {name!r} (it has: "
                           f"{', '.join(self._queries)})") from None

    def action_fn(self, action_id: int) -> Callable[[int, int], None]:
        if 0 <= action_id < len(self._actions):
            return self._actions[action_id]
        raise EnvError(f"env {self.name} has no action with id {action_id}")


def _rebuild(cls: type[Environment], config: dict[str, int], state: Any,
             observed: tuple[ObservedQuery, ...] = ()) -> Any:
    env = cls(**config)
    env.restore(state)
    env.observe_declared(observed)
    return env


def describe_value(value: Any) -> str:
    """`type repr` of a user-given value, shortened, for error messages about inputs."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"

