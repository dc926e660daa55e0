"""The typed AST of `.npi` files.

Every node is a frozen dataclass carrying the `Span` of the source it came from, so that
the checker, the interpreter's runtime errors and every later tool can point at the
author's text. No lark `Tree` or `Token` survives into these nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A 1-based, end-inclusive-start / end-exclusive-column region of a source file."""

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def point(line: int, column: int) -> Span:
        return Span(line, column, line, column + 1)


NOWHERE = Span(1, 1, 1, 1)


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class IntLit:
    value: int
    span: Span


@dataclass(frozen=True)
class BoolLit:
    value: bool
    span: Span


@dataclass(frozen=True)
class Name:
    """A reference to a local, a parameter, a file constant or an environment name."""

    name: str
    span: Span


@dataclass(frozen=True)
class QueryCall:
    """A call inside an expression: an environment query such as `read(in1)`."""

    name: str
    args: tuple[Expr, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "not"
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Binary:
    op: str  # + - * / % == != < <= > >= and or
    left: Expr
    right: Expr
    span: Span


Expr = IntLit | BoolLit | Name | QueryCall | Unary | Binary


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class CallStmt:
    """A call statement: a program (of this file or an import) or an environment action."""

    name: str
    args: tuple[Expr, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Let:
    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Assign:
    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Block:
    stmts: tuple[Stmt, ...]
    span: Span  # from `{` to `}`


@dataclass(frozen=True)
class IfBranch:
    cond: Expr
    body: Block
    span: Span


@dataclass(frozen=True)
class If:
    branches: tuple[IfBranch, ...]  # the `if` and every `elif`, in order
    orelse: Block | None
    span: Span


@dataclass(frozen=True)
class While:
    cond: Expr
    body: Block
    span: Span


@dataclass(frozen=True)
class Return:
    value: Expr | None  # always None in a valid program; kept so the checker can report it
    span: Span


Stmt = CallStmt | Let | Assign | If | While | Return


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Param:
    name: str
    span: Span


@dataclass(frozen=True)
class EnvDecl:
    name: str
    config: tuple[tuple[str, Expr], ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Import:
    path: str  # as written, relative to the importing file
    span: Span


@dataclass(frozen=True)
class Observe:
    """`observe q1(args), q2(args), ...`: what the network sees (docs/language.md)."""

    queries: tuple[QueryCall, ...]
    span: Span


@dataclass(frozen=True)
class Const:
    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class InputDecl:
    """`input a, b where EXPR`: names for the environment's input parts, a constraint."""

    names: tuple[Name, ...]
    where: Expr | None
    span: Span


@dataclass(frozen=True)
class TaskField:
    """One field of a task: `entry CALL`, `result EXPR`, `expect EXPR` (an oracle's NAME or
    an expression over the input names) or `input NAMES [where EXPR]`."""

    key: str
    value: CallStmt | Expr | Name | InputDecl
    span: Span


@dataclass(frozen=True)
class Task:
    name: str
    fields: tuple[TaskField, ...]
    span: Span
    name_span: Span

    def field(self, key: str) -> TaskField | None:
        for f in self.fields:
            if f.key == key:
                return f
        return None


@dataclass(frozen=True)
class Program:
    name: str
    params: tuple[Param, ...]
    body: Block
    span: Span
    name_span: Span


Decl = EnvDecl | Import | Observe | Const | Task | Program


@dataclass(frozen=True)
class Module:
    """One parsed `.npi` file, declarations in source order."""

    path: str
    decls: tuple[Decl, ...]
    span: Span = field(default=NOWHERE)

    @property
    def env(self) -> EnvDecl | None:
        for d in self.decls:
            if isinstance(d, EnvDecl):
                return d
        return None

    @property
    def imports(self) -> tuple[Import, ...]:
        return tuple(d for d in self.decls if isinstance(d, Import))

    @property
    def observes(self) -> tuple[Observe, ...]:
        return tuple(d for d in self.decls if isinstance(d, Observe))

    @property
    def consts(self) -> tuple[Const, ...]:
        return tuple(d for d in self.decls if isinstance(d, Const))

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tuple(d for d in self.decls if isinstance(d, Task))

    @property
    def programs(self) -> tuple[Program, ...]:
        return tuple(d for d in self.decls if isinstance(d, Program))
