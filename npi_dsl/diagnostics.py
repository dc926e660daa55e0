"""Diagnostics: errors and warnings with codes, spans, hints, and compiler-style rendering.

Every problem npi finds in a user's file is a `Diagnostic`, printed as

    PATH:LINE:COL: error[CODE]: message
      LINE | the source line
           |     ^^^^
      = hint: ...

The codes are documented, each with an example and its fix, in docs/language.md.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from npi_dsl.ast import Span
from npi_dsl.errors import NpiError

Severity = Literal["error", "warning"]

#: Every diagnostic code with a one-line title; docs/language.md explains each.
CODES: dict[str, str] = {
    # reading and syntax
    "E001": "syntax error",
    "E002": "unclosed bracket at end of file",
    "E003": "keyword used as a name",
    "E004": "return with a value",
    "E005": "file cannot be read (missing, a directory, binary or not UTF-8)",
    "E006": "nesting too deep or file too large",
    "E007": "integer literal too large",
    # environment and imports
    "E101": "missing or misplaced env declaration",
    "E102": "unknown environment",
    "E103": "bad environment configuration",
    "E111": "imported file not found or unreadable",
    "E112": "imported file uses another environment",
    "E113": "imported file has the same stem as another file of the program",
    "E121": "query that cannot be observed (privileged, or no stated range)",
    "E122": "bad observe declaration (query listed twice, declared twice, argument not constant)",
    "E123": "imported file declares another observation",
    # names
    "E201": "unknown program or action",
    "E202": "unknown query",
    "E203": "unknown name",
    "E204": "duplicate definition",
    "E205": "name already declared in scope",
    "E206": "action or query of another environment",
    "E207": "ambiguous program name",
    "E208": "two reachable programs share a bare name",
    "E209": "program used as a value or query used as a statement",
    # arity and arguments
    "E301": "wrong number of arguments to a program",
    "E302": "wrong number of arguments to an action",
    "E303": "wrong number of arguments to a query",
    "E304": "too many parameters",
    "E305": "too many arguments",
    "E306": "argument out of range",
    "E307": "argument of the wrong kind",
    # statements and types
    "E401": "assignment to a name not introduced by let",
    "E402": "assignment to a parameter",
    "E403": "return not last in its block",
    "E404": "condition is not a boolean",
    "E405": "operand of the wrong type",
    "E406": "constant value is not constant",
    "E407": "constant expression outside the 64-bit integer range",
    # tasks
    "E501": "task without an entry",
    "E502": "task entry is not a program of the file",
    "E503": "duplicate task field",
    "E504": "unknown oracle",
    "E510": "input on an environment without input parts",
    "E511": "wrong number of input names",
    "E512": "unknown name in a task expression",
    "E513": "unknown function in a task expression",
    "E514": "wrong number of arguments to a built-in",
    "E515": "task expression of the wrong type",
    "E516": "input name given twice",
    # warnings
    "W601": "program unreachable from every task entry",
    "W610": "loop whose body makes no call",
    "W611": "expected result the task cannot produce",
    # runtime (symbolic execution; docs/tasks.md)
    "R001": "division by zero",
    "R002": "argument out of range at run time",
    "R003": "environment error (an illegal action, such as a pointer off the edge)",
    "R004": "step budget exceeded",
    "R005": "depth budget exceeded",
    "R006": "wrong result",
    "R007": "integer overflow: a value outside the 64-bit range",
}


@dataclass(frozen=True)
class Note:
    span: Span
    message: str


@dataclass(frozen=True)
class Diagnostic:
    path: str
    span: Span
    severity: Severity
    code: str
    message: str
    hint: str | None = None
    notes: tuple[Note, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }

    def headline(self) -> str:
        s = self.span
        return f"{self.path}:{s.line}:{s.column}: {self.severity}[{self.code}]: {self.message}"

    def render(self, source: str | None = None) -> str:
        """The headline, the source line with a caret under the span, notes and the hint."""
        lines = [self.headline()]
        if source is not None:
            lines += _excerpt(source, self.span)
        for note in self.notes:
            lines.append(f"  note: {self.path}:{note.span.line}:{note.span.column}: {note.message}")
            if source is not None:
                lines += _excerpt(source, note.span)
        if self.hint:
            lines.append(f"  = hint: {self.hint}")
        return "\n".join(lines)


class DiagnosticError(NpiError):
    """Raised by loaders when a file has errors; carries every diagnostic found."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = list(diagnostics)
        self.sources = sources or {}
        super().__init__("\n".join(d.headline() for d in self.diagnostics))

    def render(self) -> str:
        return "\n".join(d.render(self.sources.get(d.path)) for d in self.diagnostics)


@functools.lru_cache(maxsize=4)
def _lines(source: str) -> list[str]:
    """The lines of a source as the parser counts them: split at newlines only, not at the
    form feeds, lone carriage returns or Unicode separators that str.splitlines also breaks
    at. Cached: a file with thousands of diagnostics is split once, not once per diagnostic.
    """
    return source.split("\n")


def _excerpt(source: str, span: Span) -> list[str]:
    """The source line of `span` and a caret line; tabs shown as one space so carets align."""
    src_lines = _lines(source)
    if not 1 <= span.line <= len(src_lines):
        return []
    text = src_lines[span.line - 1].removesuffix("\r")
    # control characters (tabs, form feeds...) are one column each: show each as one space
    text = "".join(" " if c < " " or c == "\x7f" else c for c in text) \
        if not text.isprintable() else text
    if len(text) > 200:  # a minified or generated line: show a window around the caret
        start = max(0, span.column - 60)
        text = text[start : start + 120]
        col = span.column - start
    else:
        col = span.column
    width = span.end_column - span.column if span.end_line == span.line else len(text) - col + 1
    width = max(1, min(width, len(text) - col + 1 if len(text) >= col else 1))
    gutter = str(span.line)
    pad = " " * len(gutter)
    return [f"  {gutter} | {text}", f"  {pad} | {' ' * (col - 1)}{'^' * width}"]


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"did you mean `{close[0]}`?" if close else None


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)
