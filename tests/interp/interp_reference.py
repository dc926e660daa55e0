"""A deliberately plain tree-walking interpreter: the semantics of docs/tasks.md, written the
obvious way (Python recursion, dict steps, no caching), as an oracle for the compiled one."""

from __future__ import annotations

from typing import Any

from npi_dsl import ast
from npi_dsl.checker import Checked, FileInfo

ACT = "ACT"


class _Return(Exception):
    pass


class Reference:
    def __init__(self, checked: Checked) -> None:
        self.checked = checked
        self.vocab = checked.vocabulary

    def run(self, env: Any, program: str, args: tuple[int, int, int] = (0, 0, 0)
            ) -> list[dict[str, Any]]:
        self.env = env
        self.steps: list[dict[str, Any]] = []
        self.frames = 0
        self.frame(program, list(args), 0)
        return self.steps

    def step(self, frame: int, depth: int, prog: str, args: list[int], call: str | None,
             call_args: list[int]) -> None:
        self.steps.append({"frame": frame, "depth": depth, "program": prog, "args": args,
                           "obs": list(self.env.observe()), "call": call,
                           "call_args": call_args, "end": call is None})

    def frame(self, q: str, args: list[int], depth: int) -> None:
        info = self.checked.programs[q]
        frame = self.frames
        self.frames += 1
        local = dict(zip(info.params, args, strict=False))
        me = (frame, depth, info.name, args)
        try:
            self.block(info.node.body, info.file, [local], me)
        except _Return:
            pass
        self.step(frame, depth, info.name, args, None, [0, 0, 0])

    def block(self, b: ast.Block, file: FileInfo, scopes: list[dict[str, Any]],
              me: tuple) -> None:
        scopes.append({})
        try:
            for s in b.stmts:
                self.stmt(s, file, scopes, me)
        finally:
            scopes.pop()

    def stmt(self, s: ast.Stmt, file: FileInfo, scopes: list[dict[str, Any]], me: tuple) -> None:
        match s:
            case ast.Let(name=n, value=v):
                scopes[-1][n] = self.expr(v, file, scopes)
            case ast.Assign(name=n, value=v):
                value = self.expr(v, file, scopes)
                for sc in reversed(scopes):
                    if n in sc:
                        sc[n] = value
                        break
            case ast.If(branches=brs, orelse=orelse):
                for br in brs:
                    if self.expr(br.cond, file, scopes):
                        self.block(br.body, file, scopes, me)
                        break
                else:
                    if orelse is not None:
                        self.block(orelse, file, scopes, me)
            case ast.While(cond=c, body=body):
                while self.expr(c, file, scopes):
                    self.block(body, file, scopes, me)
            case ast.Return():
                raise _Return()
            case ast.CallStmt(name=n, args=args):
                values = [int(self.expr(a, file, scopes)) for a in args]
                kind, target = self.checked.resolve_call(file, n)
                frame, depth, prog, pargs = me
                if kind == "program":
                    callee = self.checked.programs[str(target)]
                    padded = values + [0] * (3 - len(values))
                    self.step(frame, depth, prog, pargs, callee.name, padded)
                    self.frame(str(target), padded, depth + 1)
                else:
                    padded = [int(target)] + values + [0] * (2 - len(values))
                    self.step(frame, depth, prog, pargs, ACT, padded)
                    self.env.act(*padded)

    def expr(self, e: ast.Expr, file: FileInfo, scopes: list[dict[str, Any]]) -> Any:
        match e:
            case ast.IntLit(value=v) | ast.BoolLit(value=v):
                return v
            case ast.Name(name=n):
                for sc in reversed(scopes):
                    if n in sc:
                        return sc[n]
                if n in file.consts:
                    return file.consts[n]
                return self.vocab.names[n]
            case ast.QueryCall(name=n, args=args):
                return self.env.query_fn(n)(*[self.expr(a, file, scopes) for a in args])
            case ast.Unary(op=op, operand=o):
                v = self.expr(o, file, scopes)
                return (not v) if op == "not" else -v
            case ast.Binary(op=op, left=lft, right=rgt):
                if op == "and":
                    return self.expr(lft, file, scopes) and self.expr(rgt, file, scopes)
                if op == "or":
                    return self.expr(lft, file, scopes) or self.expr(rgt, file, scopes)
                a, b = self.expr(lft, file, scopes), self.expr(rgt, file, scopes)
                return {
                    "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                    "/": lambda: a // b, "%": lambda: a % b, "==": lambda: a == b,
                    "!=": lambda: a != b, "<": lambda: a < b, "<=": lambda: a <= b,
                    ">": lambda: a > b, ">=": lambda: a >= b,
                }[op]()
        raise AssertionError(e)
