"""The parser: the grammar is conflict-free, the AST is pure, precedence and spans are right."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from lark import Lark, Token, Tree

from npi_dsl import ast
from npi_dsl.diagnostics import DiagnosticError
from npi_dsl.parser import KEYWORDS, MAX_BLOCK_DEPTH, grammar_text, parse_file, parse_text
from npi_dsl.transform import ToAst

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SOURCES = sorted((ROOT / "programs").glob("*.npi")) + sorted(HERE.glob("*/**/*.npi"))


# ------------------------------------------------------------------ the grammar


def test_grammar_builds_with_lark_strict() -> None:
    """strict=True turns shift/reduce conflicts and terminal collisions into errors."""
    Lark(grammar_text(), parser="lalr", lexer="contextual", strict=True)


def test_every_grammar_rule_has_a_transformer_method() -> None:
    """A rule without a method would silently leave a lark Tree in the AST."""
    lark = Lark(grammar_text(), parser="lalr", lexer="contextual", keep_all_tokens=True)
    missing = set()
    for rule in lark.rules:
        name = str(rule.alias or rule.origin.name)
        if name.startswith("_"):
            continue  # lark's own helper rules for `*` and `?`
        if rule.options.expand1 and not rule.alias and len(rule.expansion) == 1:
            continue  # `?rule: child` is inlined
        if not callable(getattr(ToAst, name, None)):
            missing.add(name)
    assert missing == set()


# ------------------------------------------------------------------ a pure AST


def _walk(node: object, path: str = "module"):
    """Every value reachable from `node` through dataclass fields and tuples (iterative)."""
    stack = [(node, path)]
    while stack:
        value, where = stack.pop()
        yield value, where
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                stack.append((getattr(value, f.name), f"{where}.{f.name}"))
        elif isinstance(value, tuple | list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))


def _parsed_sources() -> list[tuple[Path, ast.Module]]:
    out = []
    for path in SOURCES:
        try:
            module, _text = parse_file(path)
        except DiagnosticError:
            continue  # the syntax-error cases of the corpus
        out.append((path, module))
    return out


PARSED = _parsed_sources()


def test_most_sources_parse() -> None:
    assert len(PARSED) >= 80
    assert {p.name for p, _m in PARSED} >= {"addition.npi", "sorting.npi", "max.npi",
                                          "addition_recursive.npi"}


@pytest.mark.parametrize("path,module", PARSED, ids=lambda v: getattr(v, "name", ""))
def test_no_lark_tree_or_token_survives_into_the_ast(path: Path, module: ast.Module) -> None:
    allowed = (int, bool, type(None), tuple, list)
    for value, where in _walk(module):
        assert not isinstance(value, Tree | Token), f"{path.name}: {where} is a lark {value!r}"
        if isinstance(value, str):
            assert type(value) is str, f"{path.name}: {where} is a {type(value).__name__}"
            continue
        if dataclasses.is_dataclass(value):
            assert type(value).__module__ == "npi_dsl.ast", where
            continue
        assert isinstance(value, allowed), f"{path.name}: {where} is a {type(value).__name__}"


@pytest.mark.parametrize("path,module", PARSED, ids=lambda v: getattr(v, "name", ""))
def test_every_span_is_one_based_and_ordered(path: Path, module: ast.Module) -> None:
    lines = path.read_text("utf-8").split("\n")
    for value, where in _walk(module):
        if not isinstance(value, ast.Span):
            continue
        s = value
        assert 1 <= s.line <= s.end_line <= len(lines), f"{where}: {s}"
        assert s.column >= 1 and s.end_column >= 1, f"{where}: {s}"
        if s.line == s.end_line:
            assert s.column <= s.end_column, f"{where}: {s}"
        assert s.column <= len(lines[s.line - 1]) + 1, f"{where}: {s}"


def test_ast_nodes_are_frozen() -> None:
    module = parse_text("env scratchpad\nconst X = 1\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        module.decls[1].name = "Y"  # type: ignore[misc]


# ------------------------------------------------------------------ precedence


def show(e: ast.Expr) -> str:
    """Fully parenthesised source of an expression."""
    match e:
        case ast.IntLit(value=v):
            return str(v)
        case ast.BoolLit(value=v):
            return "true" if v else "false"
        case ast.Name(name=n):
            return n
        case ast.QueryCall(name=n, args=args):
            return f"{n}({', '.join(show(a) for a in args)})"
        case ast.Unary(op="not", operand=o):
            return f"(not {show(o)})"
        case ast.Unary(op=op, operand=o):
            return f"({op}{show(o)})"
        case ast.Binary(op=op, left=a, right=b):
            return f"({show(a)} {op} {show(b)})"
    raise AssertionError(e)


def expr(text: str) -> ast.Expr:
    module = parse_text(f"env scratchpad\nconst X = {text}\n")
    const = module.decls[1]
    assert isinstance(const, ast.Const)
    return const.value


@pytest.mark.parametrize("text,tree", [
    ("not a == b", "(not (a == b))"),
    ("-a * b", "((-a) * b)"),
    ("a * -b", "(a * (-b))"),
    ("-a * -b", "((-a) * (-b))"),
    ("a - -b", "(a - (-b))"),
    ("- -a", "(-(-a))"),
    ("-1", "(-1)"),
    ("a + b * c", "(a + (b * c))"),
    ("a * b + c", "((a * b) + c)"),
    ("a - b - c", "((a - b) - c)"),
    ("a / b % c * d", "(((a / b) % c) * d)"),
    ("a + b < c * d", "((a + b) < (c * d))"),
    ("a or b and c", "(a or (b and c))"),
    ("a and b or c", "((a and b) or c)"),
    ("a or b or c", "((a or b) or c)"),
    ("not a and b", "((not a) and b)"),
    ("not not a", "(not (not a))"),
    ("not a or not b", "((not a) or (not b))"),
    ("a < b and b <= c or d != e", "(((a < b) and (b <= c)) or (d != e))"),
    ("(a or b) and c", "((a or b) and c)"),
    ("(a + b) * c", "((a + b) * c)"),
    ("-(a + b)", "(-(a + b))"),
    ("read(in1) + 1 >= 10", "((read(in1) + 1) >= 10)"),
    ("f(a, b + c, not d)", "f(a, (b + c), (not d))"),
    ("length()", "length()"),
    ("true == not false", None),  # `not` is looser than `==`: a syntax error
])
def test_precedence(text: str, tree: str | None) -> None:
    if tree is None:
        with pytest.raises(DiagnosticError):
            expr(text)
    else:
        assert show(expr(text)) == tree


@pytest.mark.parametrize("text", ["a == b == c", "a < b < c", "a != b >= c"])
def test_comparisons_do_not_chain(text: str) -> None:
    with pytest.raises(DiagnosticError) as e:
        expr(text)
    assert e.value.diagnostics[0].code == "E001"


def test_constant_values_follow_precedence_and_floor_division() -> None:
    from npi_dsl.checker import check_file

    report = check_file(HERE / "ok" / "precedence.npi")
    assert report.checked is not None
    consts = report.checked.root.consts
    assert consts == {"A": 14, "B": -6, "C": 2, "D": 20, "E": -4, "F": True, "G": True,
                      "H": False, "I": True}


# ------------------------------------------------------------------ statements


def _program(body: str) -> ast.Program:
    module = parse_text(f"env scratchpad\nprogram P() {{\n{body}\n}}\n")
    prog = module.decls[1]
    assert isinstance(prog, ast.Program)
    return prog


def test_if_elif_else_builds_branches_in_order() -> None:
    prog = _program("if a { X() } elif b { Y() } elif c { } else { Z() }")
    (stmt,) = prog.body.stmts
    assert isinstance(stmt, ast.If)
    assert [show(b.cond) for b in stmt.branches] == ["a", "b", "c"]
    assert [len(b.body.stmts) for b in stmt.branches] == [1, 1, 0]
    assert stmt.orelse is not None and len(stmt.orelse.stmts) == 1


@pytest.mark.parametrize("body,value", [
    ("return", None),
    ("return }", None),           # closing brace on the same line
    ("return # done", None),      # a comment after it
    ("return 1", "1"),
    ("return -1", "(-1)"),
    ("return\tx", "x"),
])
def test_return_takes_a_value_only_on_its_own_line(body: str, value: str | None) -> None:
    text = f"env scratchpad\nprogram P() {{\n{body}\n}}\n" if not body.endswith("}") else \
        f"env scratchpad\nprogram P() {{\n{body}\n"
    module = parse_text(text)
    prog = module.decls[1]
    assert isinstance(prog, ast.Program)
    ret = prog.body.stmts[-1]
    assert isinstance(ret, ast.Return)
    assert (None if ret.value is None else show(ret.value)) == value


def test_return_then_a_statement_on_the_next_line_is_two_statements() -> None:
    prog = _program("return\nMOVE(in1, LEFT)")
    assert [type(s).__name__ for s in prog.body.stmts] == ["Return", "CallStmt"]


def test_task_fields() -> None:
    module = parse_text("env array\ntask t {\n entry P(1, 2)\n result value(p1)\n"
                        " expect max\n}\n")
    task = module.decls[1]
    assert isinstance(task, ast.Task)
    assert [f.key for f in task.fields] == ["entry", "result", "expect"]
    entry = task.field("entry")
    assert entry is not None and isinstance(entry.value, ast.CallStmt)
    assert entry.value.name == "P" and [show(a) for a in entry.value.args] == ["1", "2"]
    # the entry call's span starts at its name, as every call's does
    assert (entry.value.span.line, entry.value.span.column) == (3, 8)
    assert (entry.span.line, entry.span.column) == (3, 2)


def test_env_config_and_import() -> None:
    module = parse_text('env array(arg_range = 10, other = 2 + 1)\nimport "lib/x.npi"\n')
    env, imp = module.decls
    assert isinstance(env, ast.EnvDecl) and isinstance(imp, ast.Import)
    assert [(k, show(v)) for k, v in env.config] == [("arg_range", "10"), ("other", "(2 + 1)")]
    assert imp.path == "lib/x.npi"


def test_observe_declaration() -> None:
    module = parse_text("env array\nobserve value(p1), same(p1, p2)\n")
    _env, obs = module.decls
    assert isinstance(obs, ast.Observe) and module.observes == (obs,)
    assert [(q.name, [show(a) for a in q.args]) for q in obs.queries] == [
        ("value", ["p1"]), ("same", ["p1", "p2"])]
    assert (obs.queries[1].span.line, obs.queries[1].span.column) == (2, 20)


def test_keywords_are_the_documented_ones() -> None:
    assert KEYWORDS == {"env", "import", "observe", "const", "task", "entry", "result", "expect",
                        "program", "let", "if", "elif", "else", "while", "return", "and",
                        "or", "not", "true", "false"}


# ------------------------------------------------------------------ spans and columns


def test_a_tab_counts_as_one_column() -> None:
    prog = _program("\tMOVE(in1, LEFT)\n\t\tlet x = 1")
    call, let = prog.body.stmts
    assert isinstance(call, ast.CallStmt) and isinstance(let, ast.Let)
    assert (call.name_span.line, call.name_span.column, call.name_span.end_column) == (3, 2, 6)
    assert (let.name_span.line, let.name_span.column) == (4, 7)


def test_columns_count_characters_not_bytes() -> None:
    module = parse_text('env scratchpad\nimport "äöü€.npi" const X = 1\n')
    const = module.decls[2]
    assert isinstance(const, ast.Const)
    assert (const.name_span.line, const.name_span.column) == (2, 25)


def test_crlf_line_endings_keep_lines_and_columns() -> None:
    module = parse_text("env scratchpad\r\n\r\nconst  X = 1\r\n")
    const = module.decls[1]
    assert isinstance(const, ast.Const)
    assert (const.name_span.line, const.name_span.column) == (3, 8)


def test_spans_cover_their_whole_construct() -> None:
    prog = _program("    while a {\n        X()\n    }")
    (loop,) = prog.body.stmts
    assert isinstance(loop, ast.While)
    assert (loop.span.line, loop.span.column, loop.span.end_line, loop.span.end_column) == \
        (3, 5, 5, 6)
    assert (loop.body.span.line, loop.body.span.column) == (3, 13)
    e = expr("1 + foo(2)")
    assert (e.span.line, e.span.column, e.span.end_line, e.span.end_column) == (2, 11, 2, 21)


# ------------------------------------------------------------------ syntax diagnostics


def _syntax(text: str):
    with pytest.raises(DiagnosticError) as e:
        parse_text(text, "t.npi")
    (d,) = e.value.diagnostics
    return d


def test_expected_tokens_are_named_in_words() -> None:
    d = _syntax("env scratchpad\nprogram P() {\n  MOVE(in1 LEFT)\n}\n")
    assert (d.code, d.span.line, d.span.column) == ("E001", 3, 12)
    assert d.hint == "expected `)` or `,`"


@pytest.mark.parametrize("text", [
    "env scratchpad\nprogram P() {\n let x = 1 $ 2\n}\n",
    "env scratchpad\nprogram P( {\n}\n",
    "env scratchpad\ntask { }\n",
    "env scratchpad\nconst = 1\n",
    "env scratchpad\nprogram P() {\n if x < { }\n}\n",
    "env scratchpad\nprogram P() {\n let x = 1 < 2 < 3\n}\n",
])
def test_hints_never_show_lark_terminal_names(text: str) -> None:
    d = _syntax(text)
    assert d.hint, d
    for raw in ("__ANON", "LPAR", "RPAR", "LBRACE", "RBRACE", "COMMA", "NAME", "INT",
                "$END", "RETURN_VALUE", "MULOP", "COMPARE"):
        assert raw not in d.hint, d.hint


def test_a_call_without_parentheses_gets_a_hint() -> None:
    d = _syntax("env scratchpad\nprogram P() {\n  LSHIFT\n  MOVE(in1, LEFT)\n}\n")
    assert (d.span.line, d.span.column) == (4, 3)
    assert "a call needs parentheses" in (d.hint or "")


def test_a_semicolon_gets_a_hint() -> None:
    d = _syntax("env scratchpad\nprogram P() {\n  MOVE(in1, LEFT);\n}\n")
    assert "no semicolons" in (d.hint or "")


def test_unclosed_brace_points_at_where_it_opened() -> None:
    d = _syntax("env scratchpad\nprogram P() {\n  if true {\n    MOVE(in1, LEFT)\n  }\n")
    assert (d.code, d.span.line, d.span.column) == ("E002", 2, 13)
    assert d.hint == "add `}` where the block or list ends (the file ends at line 5)"


def test_unclosed_brace_hint_counts_a_last_line_without_newline() -> None:
    d = _syntax("env scratchpad\nprogram P() {\n  MOVE(in1, LEFT)")
    assert d.hint == "add `}` where the block or list ends (the file ends at line 3)"


def test_braces_in_comments_and_strings_do_not_count_as_unclosed() -> None:
    d = _syntax('env scratchpad # {\nimport "{.npi"\nprogram P() {\n')
    assert (d.code, d.span.line, d.span.column) == ("E002", 3, 13)


def test_unexpected_end_of_file_without_open_brackets() -> None:
    d = _syntax("env scratchpad\nconst X =\n")
    assert (d.code, d.span.line, d.span.column) == ("E001", 3, 1)
    assert d.message == "unexpected end of file"


def test_keyword_where_a_name_must_be_is_e003() -> None:
    """Where a keyword cannot be meant (`program if`), the parser says so; other keywords used
    as names (`let if = 1`, which the contextual lexer reads as a name) are the checker's."""
    d = _syntax("env scratchpad\nprogram P() {\n  return = 1\n}\n")
    assert (d.code, d.span.line, d.span.column) == ("E003", 3, 3)


def test_a_syntax_error_carries_the_source_for_rendering() -> None:
    with pytest.raises(DiagnosticError) as e:
        parse_text("env scratchpad\nconst X = 1 $\n", "t.npi")
    # the expected tokens are exactly those the parser accepts here (not the lexer's wider set)
    assert e.value.render().splitlines() == [
        "t.npi:2:13: error[E001]: unexpected character `$`",
        "  2 | const X = 1 $",
        "    |             ^",
        "  = hint: expected `*`, `/` or `%`, `+`, `-`, `and`, `const`, `env`, `import`, "
        "`observe`, `or`, `program`, `task`, a comparison (== != < <= > >=) or the end of the file",
    ]


# ------------------------------------------------------------------ nesting


def _nested_blocks(n: int) -> str:
    return ("env scratchpad\ntask t { entry P() }\nprogram P() {\n" + "if true {\n" * n
            + "MOVE(in1, LEFT)\n" + "}\n" * n + "}\n")


def test_two_thousand_nested_blocks_are_e006_not_a_recursion_error() -> None:
    with pytest.raises(DiagnosticError) as e:
        parse_text(_nested_blocks(2000))
    assert e.value.diagnostics[0].code == "E006"


def test_nesting_at_the_limit_parses_and_one_more_is_e006() -> None:
    # the program's block is level 1, so MAX_BLOCK_DEPTH - 1 nested ifs reach the limit
    parse_text(_nested_blocks(MAX_BLOCK_DEPTH - 1))
    with pytest.raises(DiagnosticError) as e:
        parse_text(_nested_blocks(MAX_BLOCK_DEPTH), "t.npi")
    (d,) = e.value.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("E006", 3 + MAX_BLOCK_DEPTH, 9)


def test_deep_expressions_are_e006_not_a_recursion_error() -> None:
    for text in ("-" * 6000 + "1", "not " * 6000 + "true", "1" + " + 1" * 6000):
        with pytest.raises(DiagnosticError) as e:
            expr(text)
        assert e.value.diagnostics[0].code == "E006"


def test_chained_comparison_gets_a_hint() -> None:
    d = _syntax("env scratchpad\nprogram P() {\n  let x = 1 < 2 < 3\n}\n")
    assert (d.code, d.span.line, d.span.column) == ("E001", 3, 17)
    assert d.hint is not None and "comparisons do not chain" in d.hint


def test_a_misplaced_comparison_is_not_called_a_chain() -> None:
    # (`expect max == 1` is an expression now: `expect EXPR`)
    d = _syntax("env array\ntask t {\n  entry P() == 1\n}\n")
    assert "chain" not in (d.hint or "")


def test_else_if_gets_a_hint_to_write_elif() -> None:
    d = _syntax("env scratchpad\nprogram P() {\n  if true {\n  } else if false {\n  }\n}\n")
    assert (d.code, d.span.line, d.span.column) == ("E001", 4, 10)
    assert d.hint is not None and "elif" in d.hint


# ------------------------------------------------------------------ hints for common slips


@pytest.mark.parametrize(("text", "code", "where", "words"), [
    ("env scratchpad\nprogram P() {\n  if read(out) = 1 {\n  }\n}\n", "E001", (3, 16), "`==`"),
    ("env scratchpad\n// comment\nprogram P() {\n}\n", "E001", (2, 1), "start with `#`"),
    ("env scratchpad\nprogram P() {\n  for i in 0..3 {\n  }\n}\n", "E001", (3, 7), "`while`"),
    ("env scratchpad\nprogram P() {\n  if true {\n  MOVE(out, LEFT)\n}\nprogram Q() {\n}\n",
     "E002", (2, 13), "before `program` at line 6"),
])
def test_common_slips_get_a_hint(text: str, code: str, where: tuple[int, int],
                                 words: str) -> None:
    d = _syntax(text)
    assert (d.code, d.span.line, d.span.column) == (code, *where)
    assert d.hint is not None and words in d.hint
