"""Static checks: name resolution, arity, argument ranges, types, tasks, reachability.

`check_file(path)` reports every problem of a file (and of the files it imports) at once;
`load(path)` returns a `Checked` program ready for the interpreter and the neural runtime,
or raises `DiagnosticError`. Semantic errors never stop each other: each program, statement
and expression is checked even after an earlier one failed.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import networkx as nx

from npi_dsl import ast
from npi_dsl.callgraph import build_call_graph
from npi_dsl.diagnostics import Diagnostic, DiagnosticError, Note, did_you_mean, has_errors
from npi_dsl.envs.base import Environment, Vocabulary
from npi_dsl.parser import KEYWORDS, parse_text, read_source

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
    expect: str | None  # the environment oracle that says what a correct result is
    programs: tuple[str, ...]  # qualified names reachable from the entry, canonical order


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
    graph: nx.DiGraph
    source_hash: str
    diagnostics: list[Diagnostic]  # warnings only (errors raise)

    @property
    def program_order(self) -> tuple[str, ...]:
        """Every program of the file and its imports, canonical (sorted qualified) order."""
        return tuple(sorted(self.programs))

    @staticmethod
    def bare(qualified: str) -> str:
        return qualified.rsplit(".", 1)[-1]

    def create_env(self) -> Environment:
        return self.env_class(**self.env_config)

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


# ------------------------------------------------------------------ entry points


def load(path: str | Path) -> Checked:
    """Check a file and return it, or raise DiagnosticError with every error found."""
    report = check_file(path)
    if report.checked is None or not report.ok:
        raise DiagnosticError([d for d in report.diagnostics if d.severity == "error"],
                              report.sources)
    return report.checked


def check_file(path: str | Path) -> CheckReport:
    with _deep_recursion():
        return _Checker(str(path)).run()


@contextmanager
def _deep_recursion(limit: int = 50_000) -> Iterator[None]:
    """Thousands of nested blocks are legal; Python-level recursion handles them in 3.11+."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


# ------------------------------------------------------------------ the checker


@dataclass
class _Scope:
    """Block-structured locals: a chain of dicts name -> (type, span, is_param)."""

    frames: list[dict[str, tuple[Type, ast.Span, bool]]]

    def lookup(self, name: str) -> tuple[Type, ast.Span, bool] | None:
        for f in reversed(self.frames):
            if name in f:
                return f[name]
        return None

    def names(self) -> set[str]:
        return {n for f in self.frames for n in f}


class _Checker:
    def __init__(self, path: str) -> None:
        self.root_path = path
        self.diags: list[Diagnostic] = []
        self.sources: dict[str, str] = {}
        self.files: dict[str, FileInfo] = {}
        self.vocab: Vocabulary | None = None
        self.env_class: type[Environment] | None = None
        self.env_name: str | None = None
        self.env_config: dict[str, int] = {}
        self.programs: dict[str, ProgramInfo] = {}
        # qualified program -> [(callee, call node, in tail position)]
        self.calls: dict[str, list[tuple[str, ast.CallStmt, bool]]] = {}
        self._loading: set[str] = set()
        #: imported files whose env differs (E112): their bodies are not checked against
        #: this env's vocabulary, which would only bury the one real error under others
        self._foreign_env: set[str] = set()

    # ---- reporting
    def error(self, file: str, span: ast.Span, code: str, msg: str, hint: str | None = None,
              notes: tuple[Note, ...] = ()) -> None:
        self.diags.append(Diagnostic(file, span, "error", code, msg, hint, notes))

    def warning(self, file: str, span: ast.Span, code: str, msg: str,
                hint: str | None = None) -> None:
        self.diags.append(Diagnostic(file, span, "warning", code, msg, hint))

    # ---- driver
    def run(self) -> CheckReport:
        root = self._load_file(self.root_path, None)
        checked = None
        if root is not None and self.vocab is not None:
            # imports may form cycles: every file's own programs are known before any
            # file's imported names are resolved
            for info in list(self.files.values()):
                self._import_scope(info)
            for info in list(self.files.values()):
                if info.path not in self._foreign_env:
                    self._check_programs(info)
            tasks = self._check_tasks(root)
            graph = build_call_graph(self.programs, self.calls)
            self._check_reachability(root, tasks)
            if not has_errors(self.diags):
                assert self.env_class is not None and self.env_name is not None
                checked = Checked(
                    root=root, files=self.files, env_name=self.env_name,
                    env_config=dict(self.env_config), vocabulary=self.vocab,
                    env_class=self.env_class, programs=self.programs, tasks=tasks,
                    graph=graph, source_hash=self._source_hash(),
                    diagnostics=[d for d in self.diags if d.severity == "warning"])
        # a file's warnings are reported when that file is checked, not when it is imported
        diags = [d for d in self.diags
                 if d.severity == "error" or d.path == self.root_path]
        diags.sort(key=lambda d: (d.path != self.root_path, d.path, d.span.line, d.span.column))
        return CheckReport(self.root_path, diags, self.sources, checked)

    def _source_hash(self) -> str:
        h = hashlib.sha256()
        for info in sorted(self.files.values(), key=lambda f: f.stem):
            h.update(info.stem.encode() + b"\0" + info.source.encode() + b"\0")
        return "sha256:" + h.hexdigest()

    # ---- files, env, imports, declarations
    def _load_file(self, path: str, imported_at: tuple[str, ast.Import] | None) -> FileInfo | None:
        key = str(Path(path).resolve()) if imported_at else path
        for info in self.files.values():
            if imported_at and str(Path(info.path).resolve()) == key:
                return info
        if key in self._loading:
            return None  # an import cycle: the file is being loaded further up
        stem = Path(path).stem
        clash = next((f for f in self.files.values() if f.stem == stem), None)
        if imported_at is not None and clash is not None:
            src, node = imported_at
            self.error(src, node.span, "E113",
                       f'"{node.path}" and {clash.path} are both named `{stem}`: their programs '
                       f"would both be `{stem}.NAME`", "rename one of the files")
            return None
        try:
            text = read_source(path)
            module = parse_text(text, path)
        except DiagnosticError as e:
            if imported_at and e.diagnostics[0].code == "E005":
                src, node = imported_at
                self.error(src, node.span, "E111", f'cannot import "{node.path}": '
                           f"{e.diagnostics[0].message}", "the path is relative to the "
                           "importing file")
            else:
                self.diags.extend(e.diagnostics)
                if "\0" not in path:
                    self.sources.update(e.sources)
            return None
        self.sources[path] = text
        info = FileInfo(path, Path(path).stem, module, text)
        self.files[path] = info
        self._loading.add(key)
        try:
            self._check_env(info, imported_at)
            if self.vocab is None:
                return info
            for imp in module.imports:
                target = str(Path(path).parent / imp.path)
                child = self._load_file(target, (path, imp))
                if child is not None and child.path != path:
                    info.imports.append(child.path)
            self._collect_declarations(info)
        finally:
            self._loading.discard(key)
        return info

    def _check_env(self, info: FileInfo, imported_at: tuple[str, ast.Import] | None) -> None:
        from npi_dsl.envs import registry

        decls = info.module.decls
        env = info.module.env
        if env is None:
            self.error(info.path, decls[0].span if decls else ast.NOWHERE, "E101",
                       "missing env declaration",
                       "the first declaration of every file names its environment, e.g. "
                       f"`env scratchpad` (environments: {', '.join(registry.env_names())})")
            return
        if decls[0] is not env:
            self.error(info.path, env.span, "E101", "the env declaration must come first",
                       "move it above every other declaration")
        for other in (d for d in decls if isinstance(d, ast.EnvDecl) and d is not env):
            self.error(info.path, other.span, "E204", "a file declares its environment once",
                       notes=(Note(env.span, "first declared here"),))
        if imported_at is not None:
            if self.env_name is not None and env.name != self.env_name:
                self._foreign_env.add(info.path)
                src, node = imported_at
                self.error(src, node.span, "E112",
                           f'"{node.path}" uses env {env.name}, this file uses env '
                           f"{self.env_name}", "both files must use the same environment")
            return
        try:
            cls = registry.get_env_class(env.name)
        except KeyError:
            hint = did_you_mean(env.name, registry.env_names())
            self.error(info.path, env.name_span, "E102", f"unknown environment `{env.name}`",
                       hint or f"environments: {', '.join(registry.env_names())}")
            return
        config: dict[str, int] = {}
        seen_keys: dict[str, ast.Expr] = {}
        for key, expr in env.config:
            value = self._const_value(info, expr)
            if key in seen_keys:
                self.error(info.path, expr.span, "E103", f"`{key}` is set twice",
                           "keep one of them", (Note(seen_keys[key].span, "first set here"),))
                continue
            seen_keys[key] = expr
            if key not in cls.config_defaults:
                self.error(info.path, expr.span, "E103",
                           f"env {env.name} has no setting `{key}`",
                           did_you_mean(key, cls.config_defaults) or
                           f"settings: {', '.join(cls.config_defaults) or 'none'}")
            elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
                self.error(info.path, expr.span, "E103",
                           f"`{key}` must be a positive integer constant")
            else:
                config[key] = value
        try:
            self.vocab = registry.vocabulary(env.name, **config)
        except Exception as e:  # an environment's own validation of its settings
            self.error(info.path, env.span, "E103", f"bad configuration for env {env.name}: {e}")
            return
        self.env_class, self.env_name, self.env_config = cls, env.name, config

    def _collect_declarations(self, info: FileInfo) -> None:
        assert self.vocab is not None
        vocab = self.vocab
        seen_prog: dict[str, ast.Program] = {}
        seen_const: dict[str, ast.Const] = {}
        seen_task: dict[str, ast.Task] = {}
        action_names = {a.name for a in vocab.actions}
        for decl in info.module.decls:
            if isinstance(decl, ast.Const):
                if not self._new_definition(info, "constant", decl, seen_const):
                    continue
                if decl.name in vocab.names:
                    self.error(info.path, decl.name_span, "E204",
                               f"`{decl.name}` is already a name of env {vocab.env}",
                               "choose another name")
                    continue
                seen_const[decl.name] = decl
                value = self._const_value(info, decl.value)
                if value is not None:
                    info.consts[decl.name] = value
                else:
                    self.error(info.path, decl.value.span, "E406",
                               f"the value of constant `{decl.name}` is not a constant",
                               "use numbers, true/false, other constants and operators "
                               "(no queries; no division by zero)")
            elif isinstance(decl, ast.Program):
                if not self._new_definition(info, "program", decl, seen_prog):
                    continue
                if decl.name in action_names:
                    self.error(info.path, decl.name_span, "E204",
                               f"`{decl.name}` is already an action of env {vocab.env}",
                               "choose another name for the program")
                    continue
                seen_prog[decl.name] = decl
                if len(decl.params) > MAX_ARGS:
                    extra = decl.params[MAX_ARGS]
                    self.error(info.path, extra.span, "E304",
                               f"program `{decl.name}` has {len(decl.params)} parameters; "
                               f"NPI programs take at most {MAX_ARGS}",
                               "pass fewer values, or split the program")
                pseen: dict[str, ast.Param] = {}
                for prm in decl.params:
                    if self._bad_name(info, prm.name, prm.span):
                        continue
                    if prm.name in pseen:
                        self._dup(info, "parameter", prm.name, prm.span, pseen[prm.name].span)
                    pseen[prm.name] = prm
                q = f"{info.stem}.{decl.name}"
                self.programs[q] = ProgramInfo(q, decl.name, tuple(p.name for p in decl.params),
                                               decl, info)
                info.scope[decl.name] = q
            elif isinstance(decl, ast.Task):
                if not self._new_definition(info, "task", decl, seen_task):
                    continue
                seen_task[decl.name] = decl

    def _import_scope(self, info: FileInfo) -> None:
        """Imported programs: visible unless this file defines the same bare name."""
        offered: dict[str, set[str]] = {}
        for imp_path in info.imports:
            imp = self.files[imp_path]
            for prog in imp.module.programs:
                q = f"{imp.stem}.{prog.name}"
                if q in self.programs:
                    offered.setdefault(prog.name, set()).add(q)
        for name, qs in offered.items():
            if name in info.scope:
                continue
            if len(qs) == 1:
                info.scope[name] = next(iter(qs))
            else:
                info.ambiguous[name] = tuple(sorted(qs))

    def _new_definition(self, info: FileInfo, what: str,
                        decl: ast.Const | ast.Program | ast.Task, seen: dict) -> bool:
        """False (and reported) when `decl`'s name is a keyword or already defined."""
        if self._bad_name(info, decl.name, decl.name_span):
            return False
        if decl.name in seen:
            self._dup(info, what, decl.name, decl.name_span, seen[decl.name].name_span)
            return False
        return True

    def _bad_name(self, info: FileInfo, name: str, span: ast.Span) -> bool:
        if name in KEYWORDS:
            self.error(info.path, span, "E003",
                       f"`{name}` is a keyword and cannot be used as a name", "choose another name")
            return True
        return False

    def _dup(self, info: FileInfo, what: str, name: str, span: ast.Span,
             first: ast.Span) -> None:
        self.error(info.path, span, "E204", f"{what} `{name}` is defined twice",
                   "rename or remove one of them", (Note(first, "first defined here"),))

    # ---- constant evaluation (literals, constants, operators)
    def _const_value(self, info: FileInfo, e: ast.Expr,
                     scope: _Scope | None = None) -> int | bool | None:
        match e:
            case ast.IntLit(value=v) | ast.BoolLit(value=v):
                return v
            case ast.Name(name=n):
                if scope is not None and scope.lookup(n) is not None:
                    return None  # a local or parameter: known only at run time
                if n in info.consts:
                    return info.consts[n]
                if self.vocab is not None and n in self.vocab.names:
                    return self.vocab.names[n]
                return None
            case ast.Unary(op="-", operand=o):
                v = self._const_value(info, o, scope)
                return -v if isinstance(v, int) and not isinstance(v, bool) else None
            case ast.Unary(op="not", operand=o):
                v = self._const_value(info, o, scope)
                return (not v) if isinstance(v, bool) else None
            case ast.Binary(op=op, left=lft, right=rgt):
                a, b = self._const_value(info, lft, scope), self._const_value(info, rgt, scope)
                if a is None or b is None:
                    return None
                return _fold(op, a, b)
        return None

    # ---- programs
    def _check_programs(self, info: FileInfo) -> None:
        assert self.vocab is not None
        for prog in info.module.programs:
            q = f"{info.stem}.{prog.name}"
            if q not in self.programs or self.programs[q].node is not prog:
                continue
            self.calls[q] = []
            scope = _Scope([{p.name: ("int", p.span, True) for p in prog.params}])
            for prm in prog.params:
                if prm.name in info.consts or prm.name in self.vocab.names:
                    where = "a constant of this file" if prm.name in info.consts else \
                        f"a name of env {self.vocab.env}"
                    self.error(info.path, prm.span, "E205",
                               f"`{prm.name}` is already declared: it is {where}",
                               "name the parameter differently")
            self._block(info, q, prog.body, scope, tail=True, in_loop=False)

    def _block(self, info: FileInfo, q: str, block: ast.Block, scope: _Scope, tail: bool,
               in_loop: bool) -> None:
        scope.frames.append({})
        stmts = block.stmts
        for i, stmt in enumerate(stmts):
            last = i == len(stmts) - 1
            next_is_return = not last and isinstance(stmts[i + 1], ast.Return)
            self._stmt(info, q, stmt, scope, tail=(tail and (last or next_is_return)) and
                       not in_loop, in_loop=in_loop)
            if isinstance(stmt, ast.Return) and not last:
                self.error(info.path, stmt.span, "E403",
                           "return must be the last statement of its block",
                           "the statements after it would never run: remove them or wrap "
                           "the return in an if", (Note(stmts[i + 1].span, "this follows it"),))
        scope.frames.pop()

    def _stmt(self, info: FileInfo, q: str, s: ast.Stmt, scope: _Scope, tail: bool,
              in_loop: bool) -> None:
        assert self.vocab is not None
        match s:
            case ast.CallStmt():
                self._call_stmt(info, q, s, scope, tail)
            case ast.Let(name=name, value=value, name_span=nspan):
                t = self._expr(info, value, scope)
                if self._bad_name(info, name, nspan):
                    return
                prev = scope.lookup(name)
                where = None
                if prev is not None:
                    where = (Note(prev[1], "declared here"),)
                elif name in info.consts:
                    where = (Note(self._const_span(info, name), "a constant of this file"),)
                if where is not None or name in self.vocab.names:
                    self.error(info.path, nspan, "E205", f"`{name}` is already declared",
                               f"use another name, or assign it: `{name} = ...`"
                               if prev and not prev[2] else "use another name", where or ())
                scope.frames[-1][name] = (t, nspan, False)
            case ast.Assign(name=name, value=value, name_span=nspan):
                t = self._expr(info, value, scope)
                prev = scope.lookup(name)
                if prev is None:
                    if name in info.consts or name in self.vocab.names:
                        self.error(info.path, nspan, "E401",
                                   f"`{name}` is a constant and cannot be assigned",
                                   f"introduce a local: `let {name.lower()}_ = ...`")
                    else:
                        self.error(info.path, nspan, "E401",
                                   f"`{name}` is not a local introduced by let",
                                   f"declare it first: `let {name} = ...`" if
                                   not did_you_mean(name, scope.names()) else
                                   did_you_mean(name, scope.names()))
                elif prev[2]:
                    self.error(info.path, nspan, "E402", f"`{name}` is a parameter and cannot be "
                               "assigned", f"copy it into a local: `let my_{name} = {name}`")
                elif prev[0] is not None and t is not None and prev[0] != t:
                    self.error(info.path, value.span, "E405",
                               f"`{name}` holds {_a(prev[0])}; it cannot be assigned {_a(t)}")
            case ast.If(branches=branches, orelse=orelse):
                for i, br in enumerate(branches):
                    self._condition(info, br.cond, scope, "elif" if i else "if")
                    self._block(info, q, br.body, scope, tail, in_loop)
                if orelse is not None:
                    self._block(info, q, orelse, scope, tail, in_loop)
            case ast.While(cond=cond, body=body):
                self._condition(info, cond, scope, "while")
                self._block(info, q, body, scope, False, True)
            case ast.Return(value=value):
                if value is not None:
                    self.error(info.path, value.span, "E004", "return takes no value",
                               "a program's result is its effect on the environment: "
                               "write `return` alone")

    def _const_span(self, info: FileInfo, name: str) -> ast.Span:
        return next(c.name_span for c in info.module.consts if c.name == name)

    def _condition(self, info: FileInfo, cond: ast.Expr, scope: _Scope, what: str) -> None:
        t = self._expr(info, cond, scope)
        if t == "int":
            self.error(info.path, cond.span, "E404",
                       f"the condition of `{what}` is an integer, not a boolean",
                       "compare it, e.g. `x != 0`; `true` and `false` are the boolean literals")

    def _call_stmt(self, info: FileInfo, q: str, s: ast.CallStmt, scope: _Scope,
                   tail: bool) -> None:
        assert self.vocab is not None
        for a in s.args:
            self._expr(info, a, scope)
        kind, target = self._resolve_callable(info, s.name, s.name_span)
        if kind == "program":
            callee = self.programs[target]
            self.calls[q].append((target, s, tail))
            self._check_arity(info, s, len(callee.params), "E301", f"program `{s.name}`",
                              ", ".join(callee.params))
            self._check_ranges(info, s.args, ("value",) * len(s.args), scope)
        elif kind == "action":
            spec = self.vocab.actions[int(target)]
            self.calls[q].append(("ACT", s, tail))
            self._check_arity(info, s, len(spec.params), "E302", f"action `{s.name}`",
                              ", ".join(spec.params))
            self._check_ranges(info, s.args, spec.params, scope)
        elif kind == "query":
            self.error(info.path, s.name_span, "E209",
                       f"`{s.name}` is a query: it reads the environment and changes nothing",
                       f"use its value, e.g. `let x = {s.name}(...)` or in a condition")
        elif kind == "foreign":
            self.error(info.path, s.name_span, "E206", str(target),
                       f"this file uses env {self.vocab.env}")
        elif kind == "ambiguous":
            self.error(info.path, s.name_span, "E207", f"`{s.name}` is defined by several "
                       f"imports: {', '.join(info.ambiguous[s.name])}",
                       "define it in this file, or import only one of them")
        else:
            cands = list(info.scope) + [a.name for a in self.vocab.actions]
            self.error(info.path, s.name_span, "E201",
                       f"unknown program or action `{s.name}`",
                       did_you_mean(s.name, cands) or
                       f"actions of env {self.vocab.env}: "
                       f"{', '.join(a.name for a in self.vocab.actions)}")

    def _resolve_callable(self, info: FileInfo, name: str, span: ast.Span) -> tuple[str, str]:
        from npi_dsl.envs import registry

        assert self.vocab is not None
        if name in info.scope:
            return ("program", info.scope[name])
        if name in info.ambiguous:
            return ("ambiguous", name)
        for i, a in enumerate(self.vocab.actions):
            if a.name == name:
                return ("action", str(i))
        if name in self.vocab.queries:
            return ("query", name)
        for other in registry.env_names():
            if other == self.vocab.env:
                continue
            try:
                v = registry.vocabulary(other)
            except Exception:
                continue
            if any(a.name == name for a in v.actions):
                return ("foreign", f"`{name}` is an action of env {other}, not of "
                                   f"env {self.vocab.env}")
            if name in v.queries:
                return ("foreign", f"`{name}` is a query of env {other}, not of "
                                   f"env {self.vocab.env}")
        return ("unknown", name)

    def _check_arity(self, info: FileInfo, s: ast.CallStmt, want: int, code: str, what: str,
                     params: str) -> None:
        got = len(s.args)
        if got > MAX_ARGS:
            self.error(info.path, s.args[MAX_ARGS].span, "E305",
                       f"{got} arguments: NPI passes at most {MAX_ARGS}",
                       "pass fewer values")
        elif got != want:
            self.error(info.path, s.span, code,
                       f"{what} takes {want} argument{'s' * (want != 1)}, {got} given",
                       f"call it as {s.name}({params})")

    def _check_ranges(self, info: FileInfo, args: tuple[ast.Expr, ...],
                      kinds: tuple[str, ...], scope: _Scope | None = None) -> None:
        assert self.vocab is not None
        limit = self.vocab.arg_range
        for arg, kind in zip(args, kinds, strict=False):
            value = self._const_value(info, arg, scope)
            if isinstance(value, bool):
                continue
            if isinstance(value, int) and not 0 <= value < limit:
                shown = str(value) if isinstance(arg, ast.IntLit) else \
                    f"{arg.name} = {value}" if isinstance(arg, ast.Name) else f"value {value}"
                self.error(info.path, arg.span, "E306",
                           f"argument {shown} is outside [0, {limit})",
                           f"arguments are integers from 0 to {limit - 1} "
                           f"(env {self.vocab.env} arg_range = {limit})")
                continue
            members = self.vocab.kinds.get(kind)
            if members and isinstance(arg, ast.Name) and arg.name in self.vocab.names \
                    and arg.name not in members and value is not None:
                self.error(info.path, arg.span, "E307",
                           f"`{arg.name}` is not a {kind}",
                           f"a {kind} is one of: {', '.join(members)}")

    # ---- expressions
    def _expr(self, info: FileInfo, e: ast.Expr, scope: _Scope | None) -> Type:
        assert self.vocab is not None
        match e:
            case ast.IntLit():
                return "int"
            case ast.BoolLit():
                return "bool"
            case ast.Name(name=n, span=span):
                if n in KEYWORDS:
                    self.error(info.path, span, "E003",
                               f"`{n}` is a keyword and cannot be used as a name")
                    return None
                if scope is not None and (found := scope.lookup(n)) is not None:
                    return found[0]
                if n in info.consts:
                    v = info.consts[n]
                    return "bool" if isinstance(v, bool) else "int"
                if n in self.vocab.names:
                    return "int"
                if n in self.vocab.queries:
                    self.error(info.path, span, "E209", f"`{n}` is a query: call it",
                               f"write `{n}(...)`")
                    return None
                kind, _target = self._resolve_callable(info, n, span)
                if kind in ("program", "ambiguous", "action"):
                    what = "an action" if kind == "action" else "a program"
                    self.error(info.path, span, "E209", f"`{n}` is {what}, not a value",
                               f"call it as a statement: `{n}(...)`; read the environment "
                               "with a query")
                    return None
                visible = set(info.consts) | set(self.vocab.names)
                if scope is not None:
                    visible |= scope.names()
                self.error(info.path, span, "E203", f"unknown name `{n}`",
                           did_you_mean(n, visible) or
                           f"names of env {self.vocab.env}: {', '.join(self.vocab.names)}")
                return None
            case ast.QueryCall(name=n, args=args, name_span=nspan):
                for a in args:
                    self._expr(info, a, scope)
                spec = self.vocab.queries.get(n)
                if spec is None:
                    kind, target = self._resolve_callable(info, n, nspan)
                    if kind in ("program", "action", "ambiguous"):
                        self.error(info.path, nspan, "E209",
                                   f"`{n}` is {'an action' if kind == 'action' else 'a program'}"
                                   " and returns no value",
                                   "call it as a statement; read the environment with a query")
                    elif kind == "foreign":
                        self.error(info.path, nspan, "E206", str(target),
                                   f"this file uses env {self.vocab.env}")
                    else:
                        self.error(info.path, nspan, "E202", f"unknown query `{n}`",
                                   did_you_mean(n, self.vocab.queries) or
                                   f"queries of env {self.vocab.env}: "
                                   f"{', '.join(self.vocab.queries)}")
                    return None
                if len(args) != len(spec.params):
                    want = len(spec.params)
                    self.error(info.path, e.span, "E303",
                               f"query `{n}` takes {want} argument{'s' * (want != 1)}, "
                               f"{len(args)} given",
                               f"call it as {n}({', '.join(spec.params)})")
                else:
                    self._check_ranges(info, args, spec.params, scope)
                return spec.returns
            case ast.Unary(op=op, operand=o):
                t = self._expr(info, o, scope)
                want = "bool" if op == "not" else "int"
                if t is not None and t != want:
                    self.error(info.path, o.span, "E405",
                               f"`{op}` needs {_a(want)}, not {_a(t)}")
                return want
            case ast.Binary(op=op, left=lft, right=rgt):
                a, b = self._expr(info, lft, scope), self._expr(info, rgt, scope)
                if op in ("and", "or"):
                    want: Type = "bool"
                elif op in ("==", "!="):
                    if a is not None and b is not None and a != b:
                        self.error(info.path, e.span, "E405",
                                   f"`{op}` compares {_a(a)} with {_a(b)}",
                                   "compare values of the same type")
                    return "bool"
                else:
                    want = "int"
                for side, t in ((lft, a), (rgt, b)):
                    if t is not None and t != want:
                        self.error(info.path, side.span, "E405",
                                   f"`{op}` needs {_a(want)}, not {_a(t)}")
                return "bool" if op in ("and", "or", "<", "<=", ">", ">=") else "int"
        return None

    # ---- tasks and reachability
    def _check_tasks(self, root: FileInfo) -> dict[str, TaskInfo]:
        assert self.vocab is not None
        tasks: dict[str, TaskInfo] = {}
        names_seen: set[str] = set()
        for t in root.module.tasks:
            if t.name in KEYWORDS or t.name in names_seen:
                continue
            names_seen.add(t.name)
            seen: dict[str, ast.TaskField] = {}
            for f in t.fields:
                if f.key in seen:
                    self.error(root.path, f.span, "E503", f"task `{t.name}` has two `{f.key}` "
                               "fields", "keep one", (Note(seen[f.key].span, "first here"),))
                else:
                    seen[f.key] = f
            entry_f = seen.get("entry")
            if entry_f is None:
                self.error(root.path, t.name_span, "E501", f"task `{t.name}` has no entry",
                           "name the program the task runs: `entry ADD()`")
                continue
            call = entry_f.value
            assert isinstance(call, ast.CallStmt)
            arg_ok = []
            for a in call.args:
                before = len(self.diags)
                self._expr(root, a, None)
                arg_ok.append(len(self.diags) == before)
            own = {p.name for p in root.module.programs}
            entry_q = root.scope.get(call.name) if call.name in own else None
            if entry_q is None:
                hint = (f"`{call.name}` comes from an import: define the task in that file, or "
                        "a program here that calls it" if call.name in root.scope else
                        f"`{call.name}` is an action; a task runs a program" if any(
                            a.name == call.name for a in self.vocab.actions) else
                        did_you_mean(call.name, own))
                self.error(root.path, call.name_span, "E502", f"the entry of task `{t.name}` "
                           f"is not a program of this file: `{call.name}`", hint)
                continue
            prog = self.programs[entry_q]
            self._check_arity(root, call, len(prog.params), "E301", f"program `{call.name}`",
                              ", ".join(prog.params))
            self._check_ranges(root, call.args, ("value",) * len(call.args))
            args = [self._const_value(root, a) for a in call.args]
            bad = next((a for a, v, ok in zip(call.args, args, arg_ok, strict=True)
                        if v is None and ok), None)
            if bad is not None and len(call.args) <= MAX_ARGS:
                self.error(root.path, bad.span, "E406",
                           "an entry argument must be a constant")
            entry_args = tuple(int(v) for v in args if v is not None)[:MAX_ARGS]
            entry_args += (0,) * (MAX_ARGS - len(entry_args))
            expect = None
            if (ef := seen.get("expect")) is not None:
                assert isinstance(ef.value, ast.Name)
                expect = ef.value.name
                if expect not in self.vocab.oracles:
                    self.error(root.path, ef.value.span, "E504",
                               f"env {self.vocab.env} has no oracle `{expect}`",
                               did_you_mean(expect, self.vocab.oracles) or
                               f"oracles: {', '.join(self.vocab.oracles) or 'none'}")
            result = None
            if (rf := seen.get("result")) is not None:
                assert not isinstance(rf.value, ast.CallStmt)
                result = rf.value
                self._expr(root, result, None)
            reach = self._reachable(entry_q)
            by_name: dict[str, str] = {}
            for rq in sorted(reach):
                bare = Checked.bare(rq)
                if bare in by_name:
                    self.error(root.path, t.name_span, "E208",
                               f"task `{t.name}` reaches two programs named {bare}: "
                               f"{by_name[bare]} and {rq}",
                               "traces name programs by bare name: rename one of them")
                by_name[bare] = rq
            tasks[t.name] = TaskInfo(t.name, t, root, entry_q, entry_args, result, expect,
                                     tuple(sorted(reach)))
        return tasks

    def _reachable(self, start: str) -> set[str]:
        seen = {start}
        todo = [start]
        while todo:
            for callee, _node, _tail in self.calls.get(todo.pop(), ()):
                if callee != "ACT" and callee not in seen:
                    seen.add(callee)
                    todo.append(callee)
        return seen

    def _check_reachability(self, root: FileInfo, tasks: dict[str, TaskInfo]) -> None:
        if not root.module.tasks:
            return  # a library file: its programs are reached from the files importing it
        reached = set().union(*(t.programs for t in tasks.values())) if tasks else set()
        for prog in root.module.programs:
            q = f"{root.stem}.{prog.name}"
            if q in self.programs and q not in reached:
                self.warning(root.path, prog.name_span, "W601",
                             f"program `{prog.name}` is unreachable from every task entry",
                             "call it from a program of a task, or remove it")


def _fold(op: str, a: int | bool, b: int | bool) -> int | bool | None:
    ints = not isinstance(a, bool) and not isinstance(b, bool)
    if op in ("and", "or"):
        if isinstance(a, bool) and isinstance(b, bool):
            return (a and b) if op == "and" else (a or b)
        return None
    if op in ("==", "!="):
        return (a == b) if op == "==" else (a != b)
    if not ints:
        return None
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b if abs(a) < 2**64 and abs(b) < 2**64 else None
        if op == "/":
            return a // b
        if op == "%":
            return a % b
    except ZeroDivisionError:
        return None
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}.get(op)


def _a(t: Type) -> str:
    return {"int": "an integer", "bool": "a boolean"}.get(str(t), "a value")
