"""Checking programs: statements, scopes of locals, calls and their arity (E2xx-E4xx)."""

from __future__ import annotations

from npi_dsl import ast
from npi_dsl.check_exprs import ExprChecker, Scope, article
from npi_dsl.checked import MAX_ARGS, FileInfo
from npi_dsl.diagnostics import Note, did_you_mean


class ProgramChecker(ExprChecker):
    """The checks of program bodies, on top of the expression checks."""

    def _check_programs(self, info: FileInfo) -> None:
        assert self.vocab is not None
        for prog in info.module.programs:
            q = f"{info.stem}.{prog.name}"
            if q not in self.programs or self.programs[q].node is not prog:
                continue
            self.calls[q] = []
            scope = Scope([{p.name: ("int", p.span, True) for p in prog.params}])
            for prm in prog.params:
                if prm.name in info.consts or prm.name in self.vocab.names:
                    where = "a constant of this file" if prm.name in info.consts else \
                        f"a name of env {self.vocab.env}"
                    self.error(info.path, prm.span, "E205",
                               f"`{prm.name}` is already declared: it is {where}",
                               "name the parameter differently")
            self._block(info, q, prog.body, scope, tail=True, in_loop=False)

    def _block(self, info: FileInfo, q: str, block: ast.Block, scope: Scope, tail: bool,
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

    def _stmt(self, info: FileInfo, q: str, s: ast.Stmt, scope: Scope, tail: bool,
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
                               f"`{name}` holds {article(prev[0])}; it cannot be assigned "
                               f"{article(t)}")
            case ast.If(branches=branches, orelse=orelse):
                for i, br in enumerate(branches):
                    self._condition(info, br.cond, scope, "elif" if i else "if")
                    self._block(info, q, br.body, scope, tail, in_loop)
                if orelse is not None:
                    self._block(info, q, orelse, scope, tail, in_loop)
            case ast.While(cond=cond, body=body):
                before = len(self.diags)
                self._condition(info, cond, scope, "while")
                cond_ok = len(self.diags) == before  # no W610 on top of a bad condition
                self._block(info, q, body, scope, False, True)
                if cond_ok and not _makes_call(body) and \
                        self._const_value(info, cond, scope) is not False:
                    self.warning(info.path, s.span, "W610", "this `while` makes no call in "
                                 "its body: the environment cannot change inside it, so it "
                                 "either never ends or ends after changing only locals, "
                                 "which no trace step records",
                                 "call an action or a program in the body, e.g. "
                                 "`MOVE(in1, LEFT)`, or remove the loop")
            case ast.Return(value=value):
                if value is not None:
                    self.error(info.path, value.span, "E004", "return takes no value",
                               "a program's result is its effect on the environment: "
                               "write `return` alone")

    def _const_span(self, info: FileInfo, name: str) -> ast.Span:
        return next(c.name_span for c in info.module.consts if c.name == name)

    def _condition(self, info: FileInfo, cond: ast.Expr, scope: Scope, what: str) -> None:
        t = self._expr(info, cond, scope)
        if t == "int":
            self.error(info.path, cond.span, "E404",
                       f"the condition of `{what}` is an integer, not a boolean",
                       "compare it, e.g. `x != 0`; `true` and `false` are the boolean literals")

    def _call_stmt(self, info: FileInfo, q: str, s: ast.CallStmt, scope: Scope,
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


def _makes_call(block: ast.Block) -> bool:
    """Whether a block holds a call statement (in it or in a nested block)."""
    stack: list[ast.Stmt] = list(block.stmts)
    while stack:
        st = stack.pop()
        if isinstance(st, ast.CallStmt):
            return True
        if isinstance(st, ast.While):
            stack += st.body.stmts
        elif isinstance(st, ast.If):
            for br in st.branches:
                stack += br.body.stmts
            if st.orelse is not None:
                stack += st.orelse.stmts
    return False
