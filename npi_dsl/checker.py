"""Static checks: name resolution, arity, argument ranges, types, tasks, reachability.

`check_file(path)` reports every problem of a file (and of the files it imports) at once;
`load(path)` returns a `Checked` program ready for the interpreter and the neural runtime,
or raises `DiagnosticError`. Semantic errors never stop each other: each program, statement
and expression is checked even after an earlier one failed.

This module loads the files (imports, the env declaration, declarations) and drives the
check; each other concern has its module, a base class of the checker's: expressions, names
and constants (npi_dsl.check_exprs), statements and calls (npi_dsl.check_programs), tasks and
reachability (npi_dsl.check_tasks). What a check produces is in npi_dsl.checked, re-exported
here.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from npi_dsl import ast
from npi_dsl.callgraph import call_graph
from npi_dsl.check_observe import ObserveChecker
from npi_dsl.checked import (
    MAX_ARGS,
    Checked,
    CheckReport,
    FileInfo,
    ProgramInfo,
    TaskInfo,
    Type,
)
from npi_dsl.diagnostics import DiagnosticError, Note, did_you_mean, has_errors
from npi_dsl.envs.base import MAX_SETTING
from npi_dsl.parser import parse_text, read_source

__all__ = ["MAX_ARGS", "CheckReport", "Checked", "FileInfo", "ProgramInfo", "TaskInfo", "Type",
           "check_file", "load"]


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


def _real_path(path: str) -> str:
    """The resolved path of a file; its absolute path when it cannot be resolved (a loop of
    symbolic links, reported when the file is read)."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):  # RuntimeError: Python < 3.13 on a symlink loop
        return os.path.abspath(path)


# ------------------------------------------------------------------ the checker


class _Checker(ObserveChecker):
    """A check of one file and its imports; the checks of each concern are its bases."""

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
            graph = call_graph(self.programs, self.calls)
            tasks = self._check_tasks(root, graph)
            self._check_reachability(root, tasks)
            observed = self._check_observe(root)
            if not has_errors(self.diags):
                assert self.env_class is not None and self.env_name is not None
                vocab = self.vocab.with_observation(observed) if observed else self.vocab
                checked = Checked(
                    root=root, files=self.files, env_name=self.env_name,
                    env_config=dict(self.env_config), vocabulary=vocab,
                    env_class=self.env_class, programs=self.programs, tasks=tasks,
                    call_graph=graph, source_hash=self._source_hash(),
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
        # the loaded files by real path and by stem: dicts, so that a chain of n imports
        # is checked in linear time (a scan of the loaded files per import was quadratic)
        by_real: dict[str, FileInfo] = self.__dict__.setdefault("_by_real", {})
        by_stem: dict[str, FileInfo] = self.__dict__.setdefault("_by_stem", {})
        real = _real_path(path)
        key = real if imported_at else path
        if imported_at and real in by_real:
            return by_real[real]
        if key in self._loading:
            return None  # an import cycle: the file is being loaded further up
        if imported_at is not None and Path(path).suffix != ".npi":
            # not read at all: a diagnostic must not echo an arbitrary file (/etc/passwd)
            src, node = imported_at
            self.error(src, node.span, "E111", f'cannot import "{node.path}": only .npi files '
                       "can be imported", "an import names another file of npi programs, "
                       'such as "sorting.npi"')
            return None
        stem = Path(path).stem
        clash = by_stem.get(stem)
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
        by_real.setdefault(real, info)
        by_stem.setdefault(info.stem, info)
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
            elif value > MAX_SETTING:
                self.error(info.path, expr.span, "E103",
                           f"`{key}` = {value} is too large: the limit is {MAX_SETTING:,}",
                           "the compiled engine builds tables of arg_range entries per call "
                           "site, and NPI encodes each argument among arg_range values")
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
                before = self._e407_count()
                value = self._const_value(info, decl.value)
                if value is not None:
                    info.consts[decl.name] = value
                elif self._e407_count() == before:  # (an E407 says why already)
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

    def _dup(self, info: FileInfo, what: str, name: str, span: ast.Span,
             first: ast.Span) -> None:
        self.error(info.path, span, "E204", f"{what} `{name}` is defined twice",
                   "rename or remove one of them", (Note(first, "first defined here"),))
