"""Checking tasks: their entries and fields (E5xx), what each reaches, unreachable programs."""

from __future__ import annotations

import networkx as nx

from npi_dsl import ast
from npi_dsl.check_programs import ProgramChecker
from npi_dsl.checked import MAX_ARGS, Checked, FileInfo, TaskInfo
from npi_dsl.diagnostics import Note, did_you_mean
from npi_dsl.parser import KEYWORDS
from npi_dsl.trace import ACT

#: how W603 names the types of results
_TYPE_WORDS = {"int": "an integer", "bool": "a boolean", "list": "a list",
               "number": "a decimal number (string)"}


class TaskChecker(ProgramChecker):
    """The checks of the root file's tasks, on top of the program checks."""

    def _check_tasks(self, root: FileInfo, graph: nx.DiGraph) -> dict[str, TaskInfo]:
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
            produced = self.vocab.result_type
            if (rf := seen.get("result")) is not None:
                assert not isinstance(rf.value, ast.CallStmt)
                result = rf.value
                produced = self._expr(root, result, None)
            wants = self.vocab.oracle_types.get(expect) if expect is not None else None
            if ef is not None and wants is not None and produced is not None and \
                    produced != wants:
                self.warning(root.path, ef.span, "W603",
                             f"`expect {expect}` gives {_TYPE_WORDS.get(wants, wants)} but the "
                             f"task's result is {_TYPE_WORDS.get(produced, produced)}: no run "
                             "can be correct",
                             "add a `result EXPR` field that reads the answer from the final "
                             "state, e.g. `result value(p1)`" if rf is None else
                             "make the `result` expression give what the oracle gives")
            reach = (nx.descendants(graph, entry_q) - {ACT}) | {entry_q}
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
