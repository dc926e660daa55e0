"""Checking tasks: their entries and fields (E5xx), what each reaches, unreachable programs."""

from __future__ import annotations

from npi_dsl import ast
from npi_dsl.builtins import ValueType
from npi_dsl.callgraph import CallGraph
from npi_dsl.check_programs import ProgramChecker
from npi_dsl.checked import MAX_ARGS, Checked, FileInfo, TaskInfo
from npi_dsl.diagnostics import Note, did_you_mean
from npi_dsl.parser import KEYWORDS
from npi_dsl.task_inputs import TaskInputs, _an, check_expr
from npi_dsl.trace_schema import ACT


class TaskChecker(ProgramChecker):
    """The checks of the root file's tasks, on top of the program checks."""

    def _check_tasks(self, root: FileInfo, graph: CallGraph) -> dict[str, TaskInfo]:
        """The root file's tasks; `graph` is the call graph (npi_dsl.callgraph)."""
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
            before = self._e407_count()
            self._check_ranges(root, call.args, ("value",) * len(call.args))
            args = [self._const_value(root, a) for a in call.args]
            bad = next((a for a, v, ok in zip(call.args, args, arg_ok, strict=True)
                        if v is None and ok), None)
            if bad is not None and len(call.args) <= MAX_ARGS and self._e407_count() == before:
                self.error(root.path, bad.span, "E406",
                           "an entry argument must be a constant")
            entry_args = tuple(int(v) for v in args if v is not None)[:MAX_ARGS]
            entry_args += (0,) * (MAX_ARGS - len(entry_args))
            result = None
            produced = self.vocab.result_type
            if (rf := seen.get("result")) is not None:
                assert not isinstance(rf.value, ast.CallStmt)
                result = rf.value
                produced = self._expr(root, result, None)
            expect, inputs = self._task_inputs(root, t, seen, produced)
            reach = (graph.descendants(entry_q) - {ACT}) | {entry_q}
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
                                     tuple(sorted(reach)), inputs)
        return tasks

    def _task_inputs(self, root: FileInfo, t: ast.Task, seen: dict[str, ast.TaskField],
                     produced: str | None) -> tuple[str | None, TaskInputs | None]:
        """A task's `input`, `where` and `expect` (E504, E510-E516, W611): the expect's text
        (an oracle's name or the expression) and the TaskInputs, None when the task names no
        inputs and expects an oracle or nothing."""
        assert self.vocab is not None
        parts = self.vocab.input_parts
        names = tuple(p.name for p in parts)
        inf, ef = seen.get("input"), seen.get("expect")
        decl = inf.value if inf is not None else None
        assert decl is None or isinstance(decl, ast.InputDecl)
        usable = True
        if decl is not None:
            if not parts:
                usable = False
                self.error(root.path, inf.span, "E510", f"env {self.vocab.env} has no input "
                           "parts a task can name", "remove the `input` field; `expect` may "
                           "name an oracle: " + (", ".join(self.vocab.oracles) or "none"))
            elif len(decl.names) != len(parts):
                usable = False
                want = ", ".join(f"{p.name} ({p.type})" for p in parts)
                self.error(root.path, inf.span, "E511", f"env {self.vocab.env} has "
                           f"{len(parts)} input part{'s' * (len(parts) != 1)}, got "
                           f"{len(decl.names)} name{'s' * (len(decl.names) != 1)}",
                           f"name each part, in order: {want}")
            else:
                dup = next((n for k, n in enumerate(decl.names)
                            if n.name in {m.name for m in decl.names[:k]}), None)
                bad = next((n for n in decl.names if n.name in KEYWORDS), None)
                if dup is not None:
                    usable = False
                    self.error(root.path, dup.span, "E516", f"input name `{dup.name}` is "
                               "given twice", "give each input part its own name")
                elif bad is not None:
                    usable = False
                    self._bad_name(root, bad.name, bad.span)
                else:
                    names = tuple(n.name for n in decl.names)
        types: dict[str, ValueType] = {n: p.type for n, p in zip(names, parts, strict=True)}
        where_text = None
        if decl is not None and decl.where is not None and usable:
            where_text = span_text(root.source, decl.where.span)
            self._task_expr(root, decl.where, types, "bool", "the constraint")
        expect: str | None = None
        expect_expr: ast.Expr | None = None
        if ef is not None:
            v = ef.value
            assert not isinstance(v, ast.CallStmt | ast.InputDecl)
            expect = span_text(root.source, v.span)
            if isinstance(v, ast.Name) and v.name not in types:
                if v.name in self.vocab.oracles:
                    gives = self.vocab.oracle_types.get(v.name)
                    self._cannot_produce(root, ef, t, gives, produced)
                else:
                    self.error(root.path, v.span, "E504",
                               f"env {self.vocab.env} has no oracle `{v.name}`",
                               did_you_mean(v.name, [*self.vocab.oracles, *types]) or
                               f"oracles: {', '.join(self.vocab.oracles) or 'none'}"
                               + (f"; input names: {', '.join(types)}" if types else ""))
            elif usable:
                expect_expr = v
                gives = self._task_expr(root, v, types, None, "the expected result")
                self._cannot_produce(root, ef, t, gives, produced)
        if decl is None and expect_expr is None:
            return expect, None
        return expect, TaskInputs(names, decl.where if decl is not None and usable else None,
                                  where_text, expect_expr, dict(root.consts))

    def _task_expr(self, root: FileInfo, e: ast.Expr, types: dict[str, ValueType],
                   want: str | None, what: str) -> str | None:
        problems: list = []
        t = check_expr(e, types, root.consts, problems)
        for span, code, msg, hint in problems:
            self.error(root.path, span, code, msg, hint)
        if not problems and want is not None and t is not None and t != want:
            self.error(root.path, e.span, "E515", f"{what} must be {_an(want)}, got {_an(t)}",
                       "compare values: `a >= b`, `len(xs) > 1`")
        return None if problems else t

    def _cannot_produce(self, root: FileInfo, ef: ast.TaskField, t: ast.Task,
                        gives: str | None, produced: str | None) -> None:
        if gives is None or produced is None or gives == produced:
            return
        how = ("its `result` expression" if t.field("result") is not None else
               f"env {self.vocab.env}'s result" if self.vocab else "its result")
        self.warning(root.path, ef.span, "W611", f"task `{t.name}` can never be correct: "
                     f"`{span_text(root.source, ef.value.span)}` is {_an(gives)}, "
                     f"{how} is {_an(produced)}",
                     "add a `result EXPR` that reads the answer from the final state"
                     if t.field("result") is None else "make both the same type")

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


def span_text(source: str, span: ast.Span) -> str:
    """The source text of a span (1-based lines and columns, end exclusive), on one line."""
    lines = source.splitlines()[span.line - 1 : span.end_line]
    if not lines:
        return ""
    if len(lines) == 1:
        return lines[0][span.column - 1 : span.end_column - 1]
    parts = [lines[0][span.column - 1 :], *lines[1:-1], lines[-1][: span.end_column - 1]]
    return " ".join(p.strip() for p in parts)
