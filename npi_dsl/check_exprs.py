"""The checker's base: its state and reporting, names, constant folding, expression types.

`ExprChecker` holds what a check has found so far (files, the environment, programs, calls,
diagnostics) and checks expressions: the names they use, their types, constant values and
argument ranges. The layers above it check statements (npi_dsl.check_programs), tasks
(npi_dsl.check_tasks), and files and declarations (npi_dsl.checker).
"""

from __future__ import annotations

from dataclasses import dataclass

from npi_dsl import ast
from npi_dsl.checked import FileInfo, ProgramInfo, Type
from npi_dsl.diagnostics import Diagnostic, Note, did_you_mean
from npi_dsl.envs.base import Environment, Vocabulary
from npi_dsl.parser import KEYWORDS, MAX_INT, MIN_INT


@dataclass
class Scope:
    """Block-structured locals: a chain of dicts name -> (type, span, is_param)."""

    frames: list[dict[str, tuple[Type, ast.Span, bool]]]

    def lookup(self, name: str) -> tuple[Type, ast.Span, bool] | None:
        for f in reversed(self.frames):
            if name in f:
                return f[name]
        return None

    def names(self) -> set[str]:
        return {n for f in self.frames for n in f}


class ExprChecker:
    """The checker's state and reporting, and the checks of expressions."""

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

    def _bad_name(self, info: FileInfo, name: str, span: ast.Span) -> bool:
        if name in KEYWORDS:
            self.error(info.path, span, "E003",
                       f"`{name}` is a keyword and cannot be used as a name", "choose another name")
            return True
        return False

    # ---- constant evaluation (literals, constants, operators)
    def _const_value(self, info: FileInfo, e: ast.Expr,
                     scope: Scope | None = None) -> int | bool | None:
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
                if isinstance(v, int) and not isinstance(v, bool):
                    return self._in_int_range(info, e, -v)
                return None
            case ast.Unary(op="not", operand=o):
                v = self._const_value(info, o, scope)
                return (not v) if isinstance(v, bool) else None
            case ast.Binary(op=op, left=lft, right=rgt):
                a, b = self._const_value(info, lft, scope), self._const_value(info, rgt, scope)
                if a is None or b is None:
                    return None
                return self._in_int_range(info, e, _fold(op, a, b))
        return None

    def _in_int_range(self, info: FileInfo, e: ast.Expr,
                      value: int | bool | None) -> int | bool | None:
        """`value`, or None after an E407 (once per expression) when it is an integer outside
        the language's 64-bit range."""
        if value is None or isinstance(value, bool) or MIN_INT <= value <= MAX_INT:
            return value
        reported = self.__dict__.setdefault("_e407_spans", set())
        if (info.path, e.span) not in reported:
            reported.add((info.path, e.span))
            self.error(info.path, e.span, "E407",
                       "constant expression outside the 64-bit integer range "
                       f"({'above 2^63 - 1' if value > 0 else 'below -2^63'})",
                       "npi integers are from -2^63 to 2^63 - 1: use smaller values")
        return None

    def _e407_count(self) -> int:
        return len(self.__dict__.get("_e407_spans", ()))

    # ---- names
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

    def _check_ranges(self, info: FileInfo, args: tuple[ast.Expr, ...],
                      kinds: tuple[str, ...], scope: Scope | None = None) -> None:
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
    def _expr(self, info: FileInfo, e: ast.Expr, scope: Scope | None) -> Type:
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
                           (f"booleans are lower case: did you mean `{n.lower()}`?"
                            if n in ("True", "False", "TRUE", "FALSE") else None) or
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
                               f"`{op}` needs {article(want)}, not {article(t)}")
                return want
            case ast.Binary(op=op, left=lft, right=rgt):
                a, b = self._expr(info, lft, scope), self._expr(info, rgt, scope)
                if op in ("and", "or"):
                    want: Type = "bool"
                elif op in ("==", "!="):
                    if a is not None and b is not None and a != b:
                        self.error(info.path, e.span, "E405",
                                   f"`{op}` compares {article(a)} with {article(b)}",
                                   "compare values of the same type")
                    return "bool"
                else:
                    want = "int"
                for side, t in ((lft, a), (rgt, b)):
                    if t is not None and t != want:
                        self.error(info.path, side.span, "E405",
                                   f"`{op}` needs {article(want)}, not {article(t)}")
                return "bool" if op in ("and", "or", "<", "<=", ">", ">=") else "int"
        return None

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


def article(t: Type) -> str:
    return {"int": "an integer", "bool": "a boolean"}.get(str(t), "a value")
