"""The learnability lint (`npi lint`): decisions the network cannot tell apart.

At every step of a frame the network conditions on its program, the frame's arguments and
the observations since the frame began (each call starts from a zero LSTM state, DESIGN.md;
the encoder sees the observation and the arguments, the core the program). Two steps of the
same program with identical such inputs but different decisions (which program or action to
call with which arguments, or return) cannot both be learned: the program as written decides
on something the network does not see.

The lint runs the reference interpreter (npi_dsl/reference.py, the language's meaning) on
sampled inputs, as `npi compile` samples them (npi_dsl/sampling.py), with a hook that records
the conditions (`if`/`elif`/`while`) evaluated in each frame before each decision, and which
queries and locals each condition read; a local carries the queries its value was computed
from. Each frame's observation history is hashed incrementally, so a step's network input is
one dictionary key: linear in the number of steps, never a pairwise comparison.

Findings are grouped by (program, the two decisions, the deciding condition sites); each
group shows its first pair and how many pairs it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from npi_dsl import ast
from npi_dsl.checker import Checked, FileInfo, TaskInfo
from npi_dsl.envs.base import JSON, ObservedQuery
from npi_dsl.lint_defaults import DEFAULT_COUNT as DEFAULT_COUNT  # re-exported
from npi_dsl.lint_defaults import DEFAULT_LENGTHS as DEFAULT_LENGTHS
from npi_dsl.reference import ReferenceRunner
from npi_dsl.sampling import iter_inputs


@dataclass(frozen=True)
class Condition:
    """A condition evaluated in a frame before a decision."""

    path: str
    line: int
    column: int
    text: str
    value: bool
    queries: tuple[str, ...]  # query calls it read, directly or through locals
    locals: tuple[str, ...]  # locals it read that no query computed (counters)


@dataclass(frozen=True)
class Decision:
    """One step: where it was taken and what was decided."""

    input: JSON
    seed: int
    step: int  # index of the step within the frame
    stack: tuple[str, ...]  # `PROGRAM(a, b, c)` from the entry down to this frame
    call: str | None  # the called program, ACT, or None for return
    call_args: tuple[int, ...]
    obs: tuple[tuple[int, ...], ...]  # the frame's observations up to this step
    conditions: tuple[Condition, ...]

    def shown(self) -> str:
        if self.call is None:
            return "return"
        return f"{self.call}({', '.join(map(str, self.call_args))})"


@dataclass
class Finding:
    program: str  # qualified name
    args: tuple[int, ...]
    first: Decision
    second: Decision
    pairs: int = 1
    #: queries the deciding conditions read that the observation lacks, and counter locals
    unobserved: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        def dec(d: Decision) -> dict[str, Any]:
            return {"input": d.input, "seed": d.seed, "step": d.step, "stack": list(d.stack),
                    "decision": d.shown(), "call": d.call, "call_args": list(d.call_args),
                    "obs": [list(o) for o in d.obs],
                    "conditions": [{"path": c.path, "line": c.line, "column": c.column,
                                    "text": c.text, "value": c.value,
                                    "queries": list(c.queries), "locals": list(c.locals)}
                                   for c in d.conditions]}

        return {"program": self.program, "args": list(self.args), "pairs": self.pairs,
                "unobserved": list(self.unobserved), "first": dec(self.first),
                "second": dec(self.second)}


@dataclass
class LintReport:
    path: str
    task: str
    observation: tuple[str, ...]
    inputs: int
    steps: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {"file": self.path, "task": self.task, "observation": list(self.observation),
                "inputs": self.inputs, "steps": self.steps, "clean": self.clean,
                "findings": [f.to_json() for f in self.findings]}


class _FrameState:
    __slots__ = ("hist", "obs", "pending", "taint", "step")

    def __init__(self) -> None:
        self.hist = 0  # hash of the observations so far
        self.obs: list[tuple[int, ...]] = []
        self.pending: list[Condition] = []
        self.taint: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        self.step = 0


class LintRunner(ReferenceRunner):
    """The reference interpreter, recording per-frame network inputs and conditions."""

    def __init__(self, checked: Checked, task: TaskInfo, max_steps: int, max_depth: int,
                 source_lines: dict[str, list[str]]) -> None:
        super().__init__(checked, task, max_steps, max_depth)
        self._conds: set[int] = set()
        for info in checked.programs.values():
            _collect_conditions(info.node.body, self._conds)
        self._lines = source_lines
        self._fs: list[_FrameState] = []
        self._reads: list[tuple[set[str], set[str]]] = []  # while evaluating an expression
        self.on_step: Any = None  # callback(frame, state, call, call_args, stack)

    # ---- frames and steps
    def frame(self, q: str, args: list[int], depth: int) -> None:
        self._fs.append(_FrameState())
        try:
            super().frame(q, args, depth)
        finally:
            self._fs.pop()

    def step(self, me: Any, call: str | None, call_args: list[int]) -> None:
        super().step(me, call, call_args)
        fs = self._fs[-1]
        obs = tuple(self._steps[-1]["obs"])
        fs.hist = hash((fs.hist, obs))
        fs.obs.append(obs)
        if self.on_step is not None:
            self.on_step(me, fs, call, tuple(call_args), self._stack)
        fs.pending = []
        fs.step += 1

    # ---- locals carry what they were computed from
    def stmt(self, s: ast.Stmt, file: FileInfo, scopes: list[dict[str, Any]], me: Any) -> None:
        if isinstance(s, ast.Let | ast.Assign):
            self._reads.append((set(), set()))
            try:
                super().stmt(s, file, scopes, me)
            finally:
                queries, names = self._reads.pop()
            if not queries and not names:
                names = {s.name}  # a constant start or a counter: known only to the program
            self._fs[-1].taint[s.name] = (frozenset(queries), frozenset(names))
            return
        super().stmt(s, file, scopes, me)

    def expr(self, e: ast.Expr, file: FileInfo, scopes: list[dict[str, Any]]) -> Any:
        is_cond = id(e) in self._conds
        if is_cond:
            self._reads.append((set(), set()))
        try:
            value = super().expr(e, file, scopes)
            if isinstance(e, ast.QueryCall) and self._reads:
                args = tuple(int(ReferenceRunner.expr(self, a, file, scopes)) for a in e.args)
                self._reads[-1][0].add(self.vocab.query_text(e.name, args))
            elif isinstance(e, ast.Name) and self._reads and self._fs:
                taint = self._fs[-1].taint.get(e.name)
                if taint is not None:
                    self._reads[-1][0].update(taint[0])
                    self._reads[-1][1].update(taint[1])
        finally:
            if is_cond:
                queries, names = self._reads.pop()
        if is_cond:
            self._fs[-1].pending.append(Condition(
                file.path, e.span.line, e.span.column, self._text(file.path, e.span),
                bool(value), tuple(sorted(queries)), tuple(sorted(names))))
        return value

    def _text(self, path: str, span: ast.Span) -> str:
        lines = self._lines.get(path) or []
        if span.line - 1 < len(lines):
            line = lines[span.line - 1]
            if span.end_line == span.line:
                return line[span.column - 1 : span.end_column - 1].strip()
            return line[span.column - 1 :].strip()
        return ""


def _collect_conditions(node: Any, out: set[int]) -> None:
    match node:
        case ast.Block(stmts=stmts):
            for s in stmts:
                _collect_conditions(s, out)
        case ast.If(branches=brs, orelse=orelse):
            for br in brs:
                out.add(id(br.cond))
                _collect_conditions(br.body, out)
            if orelse is not None:
                _collect_conditions(orelse, out)
        case ast.While(cond=c, body=b):
            out.add(id(c))
            _collect_conditions(b, out)


def observed_queries(checked: Checked) -> tuple[ObservedQuery, ...] | None:
    """What the network sees as queries, or None when the environment does not say."""
    vocab = checked.vocabulary
    return vocab.observed or vocab.default_observed or None


def lint(checked: Checked, task: str | None, lengths: list[int], count: int, seed: int = 0,
         *, max_steps: int = 5_000_000, max_depth: int = 20_000) -> LintReport:
    """Run the lint; raises NpiRuntimeError when the reference fails on an input."""
    info = checked.task(task)
    lines = {f.path: f.source.splitlines() for f in checked.files.values()}
    runner = LintRunner(checked, info, max_steps, max_depth, lines)
    vocab = checked.vocabulary
    observed = observed_queries(checked)
    seen_queries = ({vocab.query_text(n, a) for n, a in observed}
                    if observed is not None else None)
    first: dict[tuple[Any, ...], Decision] = {}
    groups: dict[tuple[Any, ...], Finding] = {}
    current: dict[str, Any] = {}
    total = 0

    def on_step(me: Any, fs: _FrameState, call: str | None, call_args: tuple[int, ...],
                stack: list[Any]) -> None:
        key = (me.program, tuple(me.args), fs.step, fs.hist)
        decision = (call, call_args)
        seen = first.get(key)
        if seen is None:
            first[key] = _decision(current, fs, call, call_args, stack)
            return
        if (seen.call, seen.call_args) == decision or seen.obs != tuple(fs.obs):
            return  # the same decision (or, rarely, a hash collision: not the same input)
        d = _decision(current, fs, call, call_args, stack)
        sites = tuple(sorted({(c.path, c.line, c.column) for c in d.conditions} |
                             {(c.path, c.line, c.column) for c in seen.conditions}))
        gkey = (me.program, seen.shown(), d.shown(), sites)
        if gkey in groups:
            groups[gkey].pairs += 1
            return
        groups[gkey] = Finding(me.program, tuple(me.args), seen, d,
                               unobserved=_unobserved(seen, d, seen_queries))

    runner.on_step = on_step
    n_inputs = 0
    for s, value in iter_inputs(runner, lengths, count, seed):
        current["input"], current["seed"] = value, s
        result, steps = runner._execute(value)
        total += len(steps)
        n_inputs += 1
    observation = tuple(slot.name for slot in vocab.observation)
    return LintReport(checked.root.path, info.name, observation, n_inputs, total,
                      list(groups.values()))


def _decision(current: dict[str, Any], fs: _FrameState, call: str | None,
              call_args: tuple[int, ...], stack: list[Any]) -> Decision:
    names = tuple(f"{f.name}({', '.join(map(str, f.args[:max(f.arity, 0)]))})" for f in stack)
    return Decision(current["input"], current["seed"], fs.step, names, call, call_args,
                    tuple(fs.obs), tuple(fs.pending))


def _unobserved(a: Decision, b: Decision, seen: set[str] | None) -> tuple[str, ...]:
    """Queries read by the deciding conditions that the network does not observe, and locals
    no query computed (counters): what decided instead of the observation."""
    out: set[str] = set()
    for c in (*a.conditions, *b.conditions):
        if seen is not None:
            out.update(q for q in c.queries if q not in seen)
        out.update(f"local {n}" for n in c.locals)
    return tuple(sorted(out))
