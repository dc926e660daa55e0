"""Text to typed AST.

The LALR parser of `grammar.lark` is loaded once (lazily) from the tables generated from it,
`grammar_tables.json` (npi_dsl.parser_tables; regenerate them with
`python -m npi_dsl.parser_tables` after editing the grammar), with the AST-building
transformer (npi_dsl.transform) applied inline as rules are reduced: no intermediate lark
tree, and no recursion, so even thousands of nested blocks parse without a RecursionError.
Lark's exceptions are caught here and only here, and turned into `Diagnostic`s.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from npi_dsl import ast
from npi_dsl.ast import Span
from npi_dsl.diagnostics import Diagnostic, DiagnosticError
from npi_dsl.inputs import NotRegularFile, describe_oserror, open_regular
from npi_dsl.parser_tables import grammar_text as grammar_text  # re-exported
from npi_dsl.parser_tables import load
from npi_dsl.transform import ToAst, tok_span

#: Reserved words: none of them may name a program, constant, parameter, local or task.
KEYWORDS = frozenset(
    "env import observe const task entry result expect program let if elif else while return "
    "and or not true false".split()
)

#: Files larger than this are refused (E006) without being parsed. The bundled programs are
#: about 1 KB; lark parses roughly 150-300 KB a second, so a file at the limit still checks
#: in seconds, not minutes.
MAX_FILE_BYTES = 1 * 1024 * 1024

#: Blocks nested deeper than this are refused (E006). The compiled engine turns each block
#: into one level of Python indentation, and Python refuses more than 100 levels; 64 leaves
#: room for the generated function's own levels. No real program comes near it: move inner
#: blocks into programs of their own.
MAX_BLOCK_DEPTH = 64

#: `while` loops nested deeper than this in one program are refused (E006): each becomes a
#: Python `while`, and Python refuses more than 20 statically nested loops in a function.
MAX_LOOP_DEPTH = 16

#: Expressions nested deeper than this (operators and query calls on the path from the root
#: of one expression) are refused (E006). The compiled engine parenthesizes every operator,
#: and Python refuses more than 200 nested parentheses; a 100-term sum is one level short.
MAX_EXPR_DEPTH = 100

#: The integers of the language are 64-bit: literals past MAX_INT are refused (E007), folded
#: constants outside [MIN_INT, MAX_INT] too (E407), and a value computed at run time outside
#: it is the runtime error R007.
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)

_TERMINAL_WORDS = {
    "NAME": "a name",
    "INT": "a number",
    "STRING": 'a quoted path such as "sorting.npi"',
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "COMMA": "`,`",
    "EQUAL": "`=`",
    "COMPARE": "a comparison (== != < <= > >=)",
    "PLUS": "`+`",
    "MINUS": "`-`",
    "MULOP": "`*`, `/` or `%`",
    "RETURN": "`return`",
    "RETURN_VALUE": "`return`",
    "$END": "the end of the file",
}


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    return load(transformer=ToAst())


def read_source(path: str | Path) -> str:
    """Read a `.npi` file as text, or raise DiagnosticError(E005/E006) saying why it can't be."""
    p = Path(path)
    where = ast.Span(1, 1, 1, 1)
    try:
        if p.is_dir():
            raise _unreadable(p, "is a directory, not a .npi file", "name a file inside it")
        # a regular file only (a FIFO would block the open, /dev/zero never end), opened
        # without blocking; never read past the limit
        with open_regular(p) as f:
            size = os.fstat(f.fileno()).st_size
            if size <= MAX_FILE_BYTES:
                data = f.read(MAX_FILE_BYTES + 1)
                size = len(data)
        if size > MAX_FILE_BYTES:
            amount = f"{size / 2**20:.1f} MiB" if p.is_file() else \
                f"more than {MAX_FILE_BYTES // 2**20} MiB"
            raise DiagnosticError([Diagnostic(
                str(p), where, "error", "E006",
                f"file is too large to be a program ({amount}; "
                f"the limit is {MAX_FILE_BYTES // 2**20} MiB)",
                "split it into files that import each other")])
    except FileNotFoundError:
        raise _unreadable(p, "does not exist", "check the path") from None
    except NotRegularFile as e:
        raise _unreadable(p, f"{e.strerror}: a program is read from a regular file",
                          "save it to a file first") from None
    except OSError as e:
        raise _unreadable(p, f"cannot be read: {describe_oserror(e)}", None) from None
    if b"\x00" in data:
        raise _unreadable(p, "is a binary file, not a .npi text file", None)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DiagnosticError([Diagnostic(
            str(p), Span.point(line, col), "error", "E005",
            f"file is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})",
            "save the file as UTF-8")]) from None
    return text.removeprefix("\ufeff")


def _unreadable(p: Path, what: str, hint: str | None) -> DiagnosticError:
    return DiagnosticError([Diagnostic(str(p), ast.Span(1, 1, 1, 1), "error", "E005",
                                       f"{p} {what}", hint)])


def parse_text(text: str, path: str = "<input>") -> ast.Module:
    """Parse source text into a Module, or raise DiagnosticError with one syntax diagnostic."""
    try:
        decls = _parser().parse(text)
    except UnexpectedInput as e:
        raise DiagnosticError([_syntax_diagnostic(e, text, path)], {path: text}) from None
    problem = _limits(decls, path)
    if problem is not None:
        raise DiagnosticError([problem], {path: text})
    lines = text.count("\n") + 1
    return ast.Module(path, tuple(decls), Span(1, 1, lines, 1))


def _children(node: object) -> tuple[object, ...]:
    match node:
        case ast.Program(body=body):
            return (body,)
        case ast.Block(stmts=stmts):
            return stmts
        case ast.CallStmt(args=args) | ast.QueryCall(args=args):
            return args
        case ast.Let(value=v) | ast.Assign(value=v) | ast.Const(value=v) | ast.TaskField(value=v):
            return (v,)
        case ast.Return(value=v):
            return () if v is None else (v,)
        case ast.If(branches=branches, orelse=orelse):
            return branches if orelse is None else (*branches, orelse)
        case ast.IfBranch(cond=c, body=b) | ast.While(cond=c, body=b):
            return (c, b)
        case ast.Unary(operand=o):
            return (o,)
        case ast.Binary(left=a, right=b):
            return (a, b)
        case ast.Task(fields=fields):
            return fields
        case ast.InputDecl(names=names, where=where):
            return names if where is None else (*names, where)
        case ast.EnvDecl(config=config):
            return tuple(v for _k, v in config)
        case ast.Observe(queries=queries):
            return queries
    return ()


_EXPR_NODES = (ast.Unary, ast.Binary, ast.QueryCall)


def _limits(decls: list[object], path: str) -> Diagnostic | None:
    """The diagnostic of the first node (in source order) past a limit of the language:
    blocks nested more than MAX_BLOCK_DEPTH, loops more than MAX_LOOP_DEPTH, expressions more
    than MAX_EXPR_DEPTH (E006), an
    integer literal over MAX_INT (E007). Iterative, so it cannot overflow the stack it
    protects.
    """
    stack: list[tuple[object, int, int, int]] = [(d, 0, 0, 0) for d in reversed(decls)]
    while stack:
        node, blocks, exprs, loops = stack.pop()
        if isinstance(node, ast.While):
            loops += 1
            if loops > MAX_LOOP_DEPTH:
                return Diagnostic(
                    path, node.span, "error", "E006",
                    f"loops nested too deep: more than {MAX_LOOP_DEPTH} `while`s in one program",
                    "move inner loops into programs of their own")
        if isinstance(node, ast.Block):
            blocks += 1
            if blocks > MAX_BLOCK_DEPTH:
                return Diagnostic(
                    path, Span.point(node.span.line, node.span.column), "error", "E006",
                    f"blocks nested too deep: more than {MAX_BLOCK_DEPTH} levels",
                    "move inner blocks into programs of their own")
            exprs = 0
        elif isinstance(node, _EXPR_NODES):
            exprs += 1
            if exprs > MAX_EXPR_DEPTH:
                return Diagnostic(
                    path, Span.point(node.span.line, node.span.column), "error", "E006",
                    f"expression nested too deep: more than {MAX_EXPR_DEPTH} levels of "
                    "operators and query calls",
                    "split the expression with let: `let a = ...` then `let b = a + ...`")
        elif isinstance(node, ast.IntLit) and node.value > MAX_INT:
            return Diagnostic(
                path, node.span, "error", "E007",
                f"integer literal too large: more than {MAX_INT:,} (2^63 - 1)",
                "npi integers are 64-bit: from -2^63 to 2^63 - 1")
        elif not isinstance(node, ast.Name | ast.BoolLit | ast.IntLit):
            exprs = 0  # a statement or declaration: its expressions start at the root
        stack.extend((c, blocks, exprs, loops) for c in reversed(_children(node)))
    return None


def parse_file(path: str | Path) -> tuple[ast.Module, str]:
    text = read_source(path)
    return parse_text(text, str(path)), text


# ------------------------------------------------------------------ syntax errors


def _expected_words(terminals: set[str]) -> str:
    words = []
    for t in sorted(terminals):
        if t in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[t])
        elif t.isupper() and t.lower() in KEYWORDS:
            words.append(f"`{t.lower()}`")
        elif t.startswith("__ANON"):
            continue
        else:
            words.append(t.lower())
    words = sorted(set(words))
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _accepts(e: UnexpectedInput) -> set[str]:
    """The exact terminals the parser would accept where it stopped (empty if unknown)."""
    try:
        ip = getattr(e, "interactive_parser", None)
        return set(ip.accepts()) if ip is not None else set()
    except Exception:  # accepts() replays the parser; never let it mask the real error
        return set()


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "NAME":
        return f"name `{tok}`"
    if tok.type == "INT":
        return f"number `{tok}`"
    return f"`{tok}`"


def _syntax_diagnostic(e: UnexpectedInput, text: str, path: str) -> Diagnostic:
    if isinstance(e, UnexpectedToken) and e.token.type == "$END" or isinstance(e, UnexpectedEOF):
        unclosed = _first_unclosed(text)
        if unclosed is not None:
            (line, col), ch = unclosed
            closer = {"{": "}", "(": ")"}[ch]
            end_line = text.count("\n") + (not text.endswith("\n"))
            return Diagnostic(
                path, Span.point(line, col), "error", "E002",
                f"`{ch}` opened here is never closed",
                f"add `{closer}` where the block or list ends (the file ends at line {end_line})",
            )
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if 0 <= e.pos_in_stream < len(text) else "?"
        # `allowed` is the lexer state's set, shared by merged LALR states: too wide
        expected = _expected_words(_accepts(e) or set(e.allowed or ()))
        hint = None
        if ch == ";":
            hint = "npi has no semicolons: end a statement with a line break"
        elif ch == "'":
            hint = 'strings use double quotes: import "file.npi"'
        elif expected:
            hint = f"expected {expected}"
        return Diagnostic(path, Span.point(e.line, e.column), "error", "E001",
                          f"unexpected character `{ch}`", hint)
    assert isinstance(e, UnexpectedToken | UnexpectedEOF)
    tok = getattr(e, "token", None)
    accepts = _accepts(e) or set(getattr(e, "expected", ()) or ())
    expected = _expected_words(accepts)
    if tok is None or tok.type == "$END":
        line = text.count("\n") + 1
        col = len(text.rsplit("\n", 1)[-1]) + 1
        return Diagnostic(path, Span.point(line, col), "error", "E001",
                          "unexpected end of file", f"expected {expected}" if expected else None)
    span = tok_span(tok)
    prev = (e.token_history or [None])[-1] if getattr(e, "token_history", None) else None
    if prev is not None and str(prev) in KEYWORDS and prev.type != "NAME" and str(tok) in "=(":
        return Diagnostic(path, tok_span(prev), "error", "E003",
                          f"`{prev}` is a keyword and cannot be used as a name",
                          "choose another name")
    if str(tok) in _DECLARATION_WORDS and tok.type != "NAME" and accepts and \
            "RBRACE" in accepts:
        unclosed = _first_unclosed(text[: tok.start_pos])
        if unclosed is not None and unclosed[1] == "{":
            (line, col), _ = unclosed
            return Diagnostic(
                path, Span.point(line, col), "error", "E002",
                "`{` opened here is never closed",
                f"add `}}` where its block ends, before `{tok}` at line {tok.line} (when an "
                "inner block lacks its `}`, the next `}` closes that one instead)")
    hint = f"expected {expected}" if expected else None
    if str(tok) == "=" and "COMPARE" in accepts:
        hint = "did you mean `==`? `=` assigns (`x = 1`), `==` compares"
    elif str(tok) == "/" and (text[tok.start_pos : tok.start_pos + 2] == "//" or (
            prev is not None and str(prev) == "/" and prev.end_pos == tok.start_pos)):
        hint = "comments start with `#`: `# a comment`"
    elif tok.type == "NAME" and prev is not None and str(prev) == "for":
        hint = ("npi has no `for` loop: count with `while`, e.g. `let i = 0` then "
                "`while i < 3 { ... i = i + 1 }`")
    elif tok.type == "NAME" and "NAME" not in accepts and prev is not None and \
            prev.type == "NAME":
        hint = (hint + "; " if hint else "") + "a call needs parentheses: `NAME()`"
    elif tok.type == "COMPARE" and "COMPARE" not in accepts and _compares_before(text, tok):
        hint = "comparisons do not chain: write `a < b and b < c`"
    elif str(tok) == "if" and prev is not None and str(prev) == "else":
        hint = "npi has no `else if`: write `elif CONDITION { ... }`"
    return Diagnostic(path, span, "error", "E001", f"unexpected {_describe_token(tok)}", hint)


#: words that start a declaration: met inside a block, a `}` is missing before them
_DECLARATION_WORDS = frozenset({"program", "task", "env", "import", "const"})


def _compares_before(text: str, tok: Token) -> bool:
    """Whether the line holds a comparison before `tok` (so `tok` would chain it)."""
    start = text.rfind("\n", 0, tok.start_pos) + 1
    before = text[start : tok.start_pos].split("#", 1)[0]
    return any(op in before for op in ("==", "!=", "<", ">"))


def _first_unclosed(text: str) -> tuple[tuple[int, int], str] | None:
    """The most recently opened unmatched `{` or `(`, skipping comments and strings."""
    stack: list[tuple[tuple[int, int], str]] = []
    line, col = 1, 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        col += 1
        if c == "\n":
            line, col = line + 1, 0
        elif c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            col += j - i - 1
            i = j
            continue
        elif c == '"':
            j = text.find('"', i + 1)
            nl = text.find("\n", i + 1)
            if j < 0 or (0 <= nl < j):
                j = nl if nl >= 0 else n
                col += j - i - 1
                i = j
                continue
            col += j - i
            i = j
        elif c in "{(":
            stack.append(((line, col), c))
        elif c in "})":
            if stack and {"}": "{", ")": "("}[c] == stack[-1][1]:
                stack.pop()
        i += 1
    return stack[-1] if stack else None
