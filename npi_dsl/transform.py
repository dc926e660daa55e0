"""The lark transformer: each grammar rule (grammar.lark) to its `npi_dsl.ast` node.

npi_dsl.parser applies it inline as the LALR parser reduces rules, so no lark tree is built.
Every node gets the span of all its children, punctuation and keywords included.
"""

from __future__ import annotations

import functools

from lark import Token, Transformer

from npi_dsl import ast
from npi_dsl.ast import Span

_KEEP = frozenset({"NAME", "INT", "STRING", "COMPARE", "PLUS", "MINUS", "MULOP", "RETURN",
                   "RETURN_VALUE", "LBRACE", "RBRACE"})


def tok_span(tok: Token) -> Span:
    return Span(tok.line, tok.column, tok.end_line, tok.end_column)  # type: ignore[arg-type]


def _edge_span(child: object, end: bool) -> Span | None:
    if isinstance(child, Token):
        return tok_span(child)
    span = getattr(child, "span", None)
    if span is None and isinstance(child, tuple | list) and child:
        return _edge_span(child[-1] if end else child[0], end)
    return span


def _rule(method):
    """Wrap a transformer method: compute the span from all children, drop punctuation.

    The parser runs with `keep_all_tokens` so that keywords and brackets are seen here and
    spans cover them (lark gives no `meta` to inline transformers).
    """

    @functools.wraps(method)
    def wrapper(self, children):
        first = next((s for c in children if (s := _edge_span(c, False))), None)
        last = next((s for c in reversed(children) if (s := _edge_span(c, True))), None)
        span = Span(first.line, first.column, last.end_line, last.end_column) if first and last \
            else ast.NOWHERE
        kept = [c for c in children if not isinstance(c, Token) or c.type in _KEEP]
        return method(self, span, kept)

    return wrapper


def _rules(cls: type) -> type:
    """Apply `_rule` to every grammar-rule method of a transformer class."""
    for k, v in list(vars(cls).items()):
        if callable(v) and not k.startswith("_"):
            setattr(cls, k, _rule(v))
    return cls


@_rules
class ToAst(Transformer):
    """Builds `npi_dsl.ast` nodes. Every rule of the grammar has a method here."""

    def start(self, span, children):
        return list(children)

    def atom(self, span, children):  # a parenthesised expression
        return children[0]

    # ---- declarations
    def env_decl(self, span, children):
        name = children[0]
        config = children[1] if len(children) > 1 else ()
        return ast.EnvDecl(str(name), tuple(config), span, tok_span(name))

    def env_config(self, span, children):
        return tuple(c for c in children if c is not None)

    def config_item(self, span, children):
        return (str(children[0]), children[1])

    def import_decl(self, span, children):
        return ast.Import(str(children[0])[1:-1], span)

    def observe_decl(self, span, children):
        return ast.Observe(tuple(children), span)

    def observed_query(self, span, children):
        name, args = children
        return ast.QueryCall(str(name), tuple(args or ()), span, tok_span(name))

    def const_decl(self, span, children):
        name, value = children
        return ast.Const(str(name), value, span, tok_span(name))

    def task_decl(self, span, children):
        name, *fields = (c for c in children if not isinstance(c, Token) or c.type == "NAME")
        return ast.Task(str(name), tuple(fields), span, tok_span(name))

    def entry_field(self, span, children):
        name, args = children
        call_span = Span(name.line, name.column, span.end_line, span.end_column)
        call = ast.CallStmt(str(name), tuple(args or ()), call_span, tok_span(name))
        return ast.TaskField("entry", call, span)

    def result_field(self, span, children):
        return ast.TaskField("result", children[0], span)

    def expect_field(self, span, children):
        return ast.TaskField("expect", children[0], span)

    def input_field(self, span, children):
        names = tuple(ast.Name(str(c), tok_span(c)) for c in children
                      if isinstance(c, Token) and c.type == "NAME")
        where = next((c for c in children if not isinstance(c, Token) and c is not None),
                     None)
        return ast.TaskField("input", ast.InputDecl(names, where, span), span)

    def where_clause(self, span, children):
        return children[0]

    def program_decl(self, span, children):
        name, params, body = children
        return ast.Program(str(name), tuple(params or ()), body, span, tok_span(name))

    def params(self, span, children):
        return tuple(ast.Param(str(t), tok_span(t)) for t in children)

    # ---- statements
    def block(self, span, children):
        return ast.Block(tuple(children[1:-1]), span)

    def call_stmt(self, span, children):
        name, args = children
        return ast.CallStmt(str(name), tuple(args or ()), span, tok_span(name))

    def args(self, span, children):
        return tuple(children)

    def let_stmt(self, span, children):
        name, value = children
        return ast.Let(str(name), value, span, tok_span(name))

    def assign_stmt(self, span, children):
        name, value = children
        return ast.Assign(str(name), value, span, tok_span(name))

    def if_stmt(self, span, children):
        cond, body, *rest = children
        branches = [ast.IfBranch(cond, body, Span(span.line, span.column, body.span.end_line,
                                                  body.span.end_column))]
        orelse = None
        for r in rest:
            if isinstance(r, ast.IfBranch):
                branches.append(r)
            else:
                orelse = r
        return ast.If(tuple(branches), orelse, span)

    def elif_clause(self, span, children):
        return ast.IfBranch(children[0], children[1], span)

    def else_clause(self, span, children):
        return children[0]

    def while_stmt(self, span, children):
        return ast.While(children[0], children[1], span)

    def return_stmt(self, span, children):
        value = children[1] if len(children) > 1 else None
        return ast.Return(value, span)

    # ---- expressions
    def or_op(self, span, children):
        return ast.Binary("or", children[0], children[1], span)

    def and_op(self, span, children):
        return ast.Binary("and", children[0], children[1], span)

    def not_op(self, span, children):
        return ast.Unary("not", children[0], span)

    def compare(self, span, children):
        return ast.Binary(str(children[1]), children[0], children[2], span)

    def arith(self, span, children):
        return ast.Binary(str(children[1]), children[0], children[2], span)

    def neg(self, span, children):
        return ast.Unary("-", children[1], span)

    def int_lit(self, span, children):
        return ast.IntLit(int(children[0]) if len(children[0]) < 4000 else 10**4000,
                          span)

    def true_lit(self, span, children):
        return ast.BoolLit(True, span)

    def false_lit(self, span, children):
        return ast.BoolLit(False, span)

    def name(self, span, children):
        return ast.Name(str(children[0]), span)

    def query_call(self, span, children):
        name, args = children
        return ast.QueryCall(str(name), tuple(args or ()), span, tok_span(name))
