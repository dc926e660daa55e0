"""Python source for the programs of a checked file: what `compile_task` executes.

One factory function `_make(...)` is generated per task runner; calling it with an
environment's observe, query and action functions returns one Python function per program,
bound to that environment (`interpreter._Binding`). The generated code follows DESIGN.md's
step semantics and writes each step as three fragments into one list
(`ext((prefix, observation, call))`), spelled by a `StepEncoding` (npi_dsl/step_encoding.py:
JSON text for the file writer, tuples for in-process consumers). Every name the runner relies
on (the factory's parameters, the helpers, the locals it reads back) comes from
`codegen_contract.LAYOUT`.

* a program that can reach a recursive cycle becomes a generator function: a call to such a
  program is `yield`ed to an explicit frame stack (the driver in `_start`), so recursion
  depth is bounded by memory, not by Python's recursion limit;
* any other program becomes a plain function, and small ones are inlined into their callers
  (their frame gets its own prefix and frame id, so the trace is the same);
* `_o` always holds the current observation's fragment; it is recomputed after each action
  only, since queries and program calls do not change the environment's state by themselves.

`linemap` maps each generated line to the `.npi` frames it executes (a Python frame may run
several npi frames when callees are inlined), which is how errors get their source location
and call stack without the generated code keeping one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from npi_dsl import ast
from npi_dsl.checker import Checked, FileInfo, ProgramInfo, TaskInfo
from npi_dsl.codegen_contract import LAYOUT
from npi_dsl.codegen_model import Generated, Level, Site, closing, generator_programs, measure
from npi_dsl.envs.base import Vocabulary
from npi_dsl.inline import InlineSpec
from npi_dsl.parser import MAX_INT, MAX_LOOP_DEPTH, MIN_INT
from npi_dsl.step_encoding import TEXT, StepEncoding, is_literal
from npi_dsl.trace_schema import ACT

_F, _D = LAYOUT.frame, LAYOUT.depth

#: a chain of plain program calls uses one Python frame per call; past this height every
#: program is compiled as a generator frame instead
MAX_PLAIN_HEIGHT = 200
#: inlining limits: statements of a callee, nested inlined frames, lines of one function
INLINE_MAX_STATEMENTS = 40
INLINE_MAX_LEVELS = 6
INLINE_MAX_LINES = 4000
#: Python's limit on indentation levels (its tokenizer's MAXINDENT)
PY_MAX_INDENT = 100


@dataclass
class _Ctx:
    levels: tuple[Level, ...]
    pre: str  # Python name of the innermost level's prefix
    depth: str  # Python expression of the innermost level's depth
    names: dict[str, str]  # npi param / local -> Python name or literal
    types: dict[str, str]
    params: frozenset[str]  # parameters (range-checked by the caller, never reassigned)
    file: FileInfo
    gen: bool  # the Python function is a generator
    inline_levels: int = 0
    loops: int = 0  # Python `while`s around the code being emitted, in this Python function

    def site(self, span: ast.Span) -> Site:
        return Site(self.levels, self.file.path, span)


class Codegen:
    def __init__(self, checked: Checked, task: TaskInfo, spec: InlineSpec | None = None,
                 encoding: StepEncoding = TEXT) -> None:
        self.checked = checked
        self.task = task
        self.spec = spec
        self.enc = encoding
        self.ret = repr(encoding.ret)
        inline_observe = spec is not None and spec.observe and not checked.vocabulary.observed
        self.observe = encoding.observe(spec.observe if inline_observe else "ob()")
        self.vocab: Vocabulary = checked.vocabulary
        self.arg_range = self.vocab.arg_range
        self.order = list(checked.program_order)
        self.index = {q: i for i, q in enumerate(self.order)}
        self.gen = generator_programs(checked, self.order, MAX_PLAIN_HEIGHT)
        self.lines: list[str] = []
        self.linemap: dict[int, Site] = {}
        self.sites: list[Site] = []
        self.tables: dict[str, Any] = {}
        self.queries: dict[str, str] = {}
        self.actions: set[int] = set()
        self._counter = 0
        self._function_start = 0
        self._yielded = False

    # ---- analysis
    def _inlinable(self, callee: ProgramInfo, ctx: _Ctx, ind: int) -> bool:
        if callee.qualified in self.gen or ctx.inline_levels >= INLINE_MAX_LEVELS:
            return False
        if len(self.lines) - self._function_start > INLINE_MAX_LINES:
            return False
        # inlined, the callee's blocks and loops nest inside the caller's: stay within
        # Python's 100 levels of indentation and 20 nested loops of one function
        blocks, loops = _nesting(callee.node.body)
        if ind + blocks + 3 > PY_MAX_INDENT or ctx.loops + loops > MAX_LOOP_DEPTH:
            return False
        body = callee.node.body.stmts
        count, early_return = measure(body, top=True)
        return count <= INLINE_MAX_STATEMENTS and not early_return

    # ---- emission helpers
    def emit(self, indent: int, text: str, site: Site | None = None) -> None:
        self.lines.append("    " * indent + text)
        if site is not None:
            self.linemap[len(self.lines)] = site

    def fresh(self, stem: str) -> str:
        self._counter += 1
        return f"{stem}{self._counter}"

    def table(self, value: Any) -> str:
        name = f"T{len(self.tables)}"
        self.tables[name] = value
        return name

    def query(self, name: str) -> str:
        if name not in self.queries:
            self.queries[name] = f"Q{len(self.queries)}"
        return self.queries[name]

    # ---- the module
    def generate(self) -> Generated:
        self.emit(0, f"def {LAYOUT.factory}({', '.join(LAYOUT.factory_params)}):")
        self.emit(1, "ext = out.extend")
        self.emit(1, "_nf = 0")
        self.emit(1, "_it = 0")
        self.emit(1, "_o = ''")
        header_at = len(self.lines)
        for q in self.order:
            self.program(self.checked.programs[q])
        self.result_function()
        self.driver()
        names = ", ".join(f"{q!r}: P{self.index[q]}" for q in self.order)
        self.emit(1, f"return {{{names}}}, _start, _result")
        binds = [f"    {py} = QUERIES[{name!r}]" for name, py in self.queries.items()]
        binds += [f"    A{i} = ACTIONS[{i}]" for i in sorted(self.actions)]
        binds += [f"    {name} = STATE[{name!r}]" for name in (self.spec.names if self.spec
                                                               else ())]
        self.lines[header_at:header_at] = binds
        linemap = {(k + len(binds) if k > header_at else k): v for k, v in self.linemap.items()}
        return Generated("\n".join(self.lines) + "\n", linemap, self.sites, self.tables,
                         list(self.queries), sorted(self.actions), set(self.gen))

    def driver(self) -> None:
        """`_start(fn, gen, args)`: run a program from depth 0 (frame stack for generators,
        kept on the RunState where the runner finds the suspended frames after an error)."""
        for text, ind in [
            ("def _start(fn, gen, args):", 1),
            ("nonlocal _nf, _it, _o", 2),
            ("_nf = 0", 2),
            ("_it = 0", 2),
            ("out.clear()", 2),
            ("out.append('')", 2),
            (f"_o = {self.enc.observe('ob()')}", 2),
            ("if not gen:", 2),
            ("RUN.stack = ()", 3),
            ("fn(0, 0, *args)", 3),
            ("return", 3),
            ("stack = [fn(0, 0, *args)]", 2),
            ("RUN.stack = stack", 2),
            ("push = stack.append", 2),
            ("pop = stack.pop", 2),
            ("while stack:", 2),
            ("g = next(stack[-1], None)", 3),
            ("if g is None:", 3),
            ("pop()", 4),
            ("else:", 3),
            ("if len(out) > LIM:", 4),
            (f"{LAYOUT.loop_budget}(_it, len(out))", 5),
            ("push(g)", 4),
        ]:
            self.emit(ind, text)

    def program(self, p: ProgramInfo) -> None:
        i = self.index[p.qualified]
        self._function_start = len(self.lines)
        params = list(LAYOUT.params[:len(p.params)])
        args = tuple(params) + ("0",) * (3 - len(params))
        level = Level(p.qualified, _F, 0, args, p.file.path)
        ctx = _Ctx((level,), "pre", _D, dict(zip(p.params, params, strict=True)),
                   {name: "int" for name in p.params}, frozenset(p.params), p.file,
                   p.qualified in self.gen)
        site = ctx.site(p.node.name_span)
        self.emit(1, f"def P{i}({', '.join([_F, _D] + params)}):", site)
        self.emit(2, "nonlocal _nf, _it, _o")
        self.emit(2, f"pre = {self.enc.prefix(p.name, len(p.params), [_F, _D] + params)}", site)
        self._yielded = False
        self.frame_body(p, ctx, 2)
        if ctx.gen and not self._yielded:  # a generator frame must be a generator function
            self.emit(2, "if False:")
            self.emit(3, "yield None")

    def frame_body(self, p: ProgramInfo, ctx: _Ctx, ind: int) -> None:
        """A frame's statements, then its return step (unless a final `return` took it)."""
        if not self.block(p.node.body, ctx, ind, empty_ok=True):
            self.emit(ind, f"ext(({ctx.pre}, _o, {self.ret}))",
                      ctx.site(closing(p.node.body.span)))

    def result_function(self) -> None:
        t = self.task
        self.emit(1, "def _result():")
        if t.result is None:
            self.emit(2, "return None")
            return
        ctx = _Ctx((), "pre", "0", {}, {}, frozenset(), t.file, False)
        site = Site((), t.file.path, t.result.span)
        self.emit(2, f"return {self.expr(t.result, ctx, site)}", site)

    # ---- statements
    def block(self, b: ast.Block, ctx: _Ctx, ind: int, empty_ok: bool = False) -> bool:
        """Emit a block; True if it ends with `return` (its return step already taken)."""
        if not b.stmts:
            if not empty_ok:
                self.emit(ind, "pass")
            return False
        saved = dict(ctx.names), dict(ctx.types)
        ends = False
        for s in b.stmts:
            ends = self.stmt(s, ctx, ind)
        ctx.names, ctx.types = saved
        return ends

    def stmt(self, s: ast.Stmt, ctx: _Ctx, ind: int) -> bool:
        site = ctx.site(s.span)
        match s:
            case ast.CallStmt():
                self.call(s, ctx, ind)
            case ast.Let(name=name, value=value):
                code = self.expr(value, ctx, site)
                py = self.fresh(f"v_{name}_")
                ctx.names[name] = py
                ctx.types[name] = self.type_of(value, ctx)
                self.emit(ind, f"{py} = {code}", site)
                self.int_bound(name, py, value, ctx, ind, site)
            case ast.Assign(name=name, value=value):
                self.emit(ind, f"{ctx.names[name]} = {self.expr(value, ctx, site)}", site)
                self.int_bound(name, ctx.names[name], value, ctx, ind, site)
            case ast.If(branches=branches, orelse=orelse):
                for k, br in enumerate(branches):
                    bsite = ctx.site(br.cond.span)
                    keyword = "if" if k == 0 else "elif"
                    self.emit(ind, f"{keyword} {self.expr(br.cond, ctx, bsite)}:", bsite)
                    self.block(br.body, ctx, ind + 1)
                if orelse is not None:
                    self.emit(ind, "else:")
                    self.block(orelse, ctx, ind + 1)
            case ast.While(cond=cond, body=body):
                csite = ctx.site(cond.span)
                self.emit(ind, f"while {self.expr(cond, ctx, csite)}:", csite)
                self.emit(ind + 1, "_it += 1", csite)
                self.emit(ind + 1, "if _it > MAXIT or len(out) > LIM:", csite)
                self.emit(ind + 2, f"{LAYOUT.loop_budget}(_it, len(out))", csite)
                ctx.loops += 1
                self.block(body, ctx, ind + 1)
                ctx.loops -= 1
            case ast.Return():
                self.emit(ind, f"ext(({ctx.pre}, _o, {self.ret}))", site)
                if ctx.inline_levels == 0 or len(ctx.levels) == 1:
                    self.emit(ind, "return", site)
                return True
        return False

    def int_bound(self, name: str, py: str, value: ast.Expr, ctx: _Ctx, ind: int,
                  site: Site) -> None:
        """R007 after a store whose value may leave the 64-bit range: one comparison, only for
        integer values computed with `+`, `-`, `*` or `/` (names, queries, literals and `%` of
        them stay in range, since every store is checked)."""
        if self.type_of(value, ctx) == "int" and _may_grow(value):
            self.emit(ind, f"if not {MIN_INT} <= {py} <= {MAX_INT}:", site)
            self.emit(ind + 1, f"{LAYOUT.overflow}({name!r})", site)

    def call(self, s: ast.CallStmt, ctx: _Ctx, ind: int) -> None:
        site = ctx.site(s.span)
        kind, target = self.checked.resolve_call(ctx.file, s.name)
        slots = [self.arg(a, ctx, site, s.name, k, ind) for k, a in enumerate(s.args)]
        if kind != "program":
            aid = int(target)
            self.actions.add(aid)
            slots += ["0"] * (2 - len(slots))
            self.emit(ind, f"ext(({ctx.pre}, _o, {self.suffix(ACT, [str(aid)] + slots)}))",
                      site)
            call = f"A{aid}({slots[0]}, {slots[1]})"
            snippet = self.spec.actions.get(aid) if self.spec else None
            lines = snippet((slots[0], slots[1]), self.fresh("_p"),
                            f"{LAYOUT.act_fail}({call})") if snippet else None
            if lines is None:
                self.emit(ind, call, site)
            else:
                for line in lines:
                    self.emit(ind, line, site)
            self.emit(ind, f"_o = {self.observe}", site)
            return
        callee = self.checked.programs[str(target)]
        given = list(slots)
        slots += ["0"] * (3 - len(slots))
        self.emit(ind, f"if {ctx.depth} >= MAXD:", site)
        self.emit(ind + 1, f"{LAYOUT.too_deep}({ctx.depth}, {callee.name!r})", site)
        self.emit(ind, f"ext(({ctx.pre}, _o, {self.suffix(callee.name, slots)}))", site)
        self.emit(ind, "_nf += 1", site)
        inner = _plus(ctx.depth, 1)
        if self._inlinable(callee, ctx, ind):
            self.inline(callee, given, slots, ctx, s.span, ind)
            return
        fn = f"P{self.index[callee.qualified]}({', '.join(['_nf', inner] + given)})"
        if ctx.gen and callee.qualified in self.gen:
            self.emit(ind, f"yield {fn}", site)
            self._yielded = True
        else:
            self.emit(ind, fn, site)

    def inline(self, callee: ProgramInfo, given: list[str], slots: list[str], ctx: _Ctx,
               call_span: ast.Span, ind: int) -> None:
        """The callee's frame, inlined: its own frame id and prefix, the same steps."""
        frame = self.fresh("_f")
        pre = self.fresh("pre")
        levels = ctx.levels[:-1] + (replace(ctx.levels[-1], call_span=call_span),
                                    Level(callee.qualified, frame, ctx.levels[-1].depth + 1,
                                          tuple(slots), callee.file.path))
        inner = _plus(ctx.depth, 1)
        sub = _Ctx(levels, pre, inner, dict(zip(callee.params, given, strict=True)),
                   {name: "int" for name in callee.params}, frozenset(callee.params),
                   callee.file, ctx.gen, ctx.inline_levels + 1, ctx.loops)
        site = sub.site(callee.node.name_span)
        self.emit(ind, f"{frame} = _nf", site)
        prefix = self.enc.prefix(callee.name, len(callee.params), [frame, inner] + given)
        self.emit(ind, f"{pre} = {prefix}", site)
        self.frame_body(callee, sub, ind)

    def arg(self, e: ast.Expr, ctx: _Ctx, site: Site, callee: str, k: int, ind: int) -> str:
        """An argument: an int literal, or a local holding a value checked to be in range."""
        value = self.const(e, ctx)
        if value is not None:
            return str(int(value))
        if isinstance(e, ast.Name) and e.name in ctx.params:
            return ctx.names[e.name]  # a parameter: range-checked by its caller
        code = self.expr(e, ctx, site)
        t = self.fresh("_t")
        if self.type_of(e, ctx) == "bool":
            self.emit(ind, f"{t} = 1 if {code} else 0", site)
            return t
        self.emit(ind, f"{t} = {code}", site)
        if not self.in_range(e, ctx):
            self.emit(ind, f"if not 0 <= {t} < {self.arg_range}:", site)
            self.emit(ind + 1, f"{LAYOUT.bad_arg}({callee!r}, {k}, {t})", site)
        return t

    def in_range(self, e: ast.Expr, ctx: _Ctx) -> bool:
        """Whether an integer expression is statically within [0, arg_range)."""
        if isinstance(e, ast.Binary) and e.op == "%":
            c = self.const(e.right, ctx)
            return isinstance(c, int) and not isinstance(c, bool) and 0 < c <= self.arg_range
        return False

    def suffix(self, call_name: str, slots: list[str]) -> str:
        """A Python expression for the step's fragment after the observation: a constant, a
        table lookup by the dynamic arguments, or (past the table limit) built per step."""
        dyn = [k for k, v in enumerate(slots) if not is_literal(v)]

        def fill(sub: dict[int, int]) -> object:
            s = [sub[k] if k in sub else int(v) for k, v in enumerate(slots)]
            return self.enc.call(call_name, (s[0], s[1], s[2]))

        if not dyn:
            return repr(fill({}))
        r = self.arg_range
        if len(dyn) == 1:
            k = dyn[0]
            values = tuple(fill({k: v}) for v in range(r))
            return f"{self.table(values)}[{slots[k]}]"
        if len(dyn) == 2 and r * r <= 4096:
            j, k = dyn
            grid = tuple(tuple(fill({j: a, k: b}) for b in range(r)) for a in range(r))
            return f"{self.table(grid)}[{slots[j]}][{slots[k]}]"
        return self.enc.call_code(call_name, slots)

    # ---- expressions
    def const(self, e: ast.Expr, ctx: _Ctx) -> int | bool | None:
        match e:
            case ast.IntLit(value=v) | ast.BoolLit(value=v):
                return v
            case ast.Name(name=n):
                if n in ctx.names:
                    return None
                if n in ctx.file.consts:
                    return ctx.file.consts[n]
                return self.vocab.names.get(n)
            case ast.Unary(op="-", operand=o):
                v = self.const(o, ctx)
                return -v if isinstance(v, int) and not isinstance(v, bool) else None
            case ast.Unary(op="not", operand=o):
                v = self.const(o, ctx)
                return (not v) if isinstance(v, bool) else None
        return None

    def type_of(self, e: ast.Expr, ctx: _Ctx) -> str:
        match e:
            case ast.BoolLit():
                return "bool"
            case ast.Name(name=n):
                if n in ctx.types:
                    return ctx.types[n]
                return "bool" if isinstance(ctx.file.consts.get(n), bool) else "int"
            case ast.QueryCall(name=n):
                spec = self.vocab.queries.get(n)
                return spec.returns if spec is not None else "int"
            case ast.Unary(op=op):
                return "bool" if op == "not" else "int"
            case ast.Binary(op=op):
                return "bool" if op in ("and", "or", "==", "!=", "<", "<=", ">", ">=") else "int"
        return "int"

    def expr(self, e: ast.Expr, ctx: _Ctx, site: Site) -> str:
        value = self.const(e, ctx)
        if value is not None:
            return repr(value)
        match e:
            case ast.Name(name=n):
                return ctx.names[n]
            case ast.QueryCall(name=n, args=args):
                codes = [self.expr(a, ctx, site) for a in args]
                snippet = self.spec.queries.get(n) if self.spec else None
                inlined = snippet(tuple(codes)) if snippet else None
                if inlined is not None:
                    return inlined
                return f"{self.query(n)}({', '.join(codes)})"
            case ast.Unary(op=op, operand=o):
                inner = self.expr(o, ctx, site)
                return f"(not {inner})" if op == "not" else f"(-{inner})"
            case ast.Binary(op=op, left=lft, right=rgt):
                a = self.expr(lft, ctx, site)
                b = self.expr(rgt, ctx, site)
                if op in ("/", "%"):
                    c = self.const(rgt, ctx)
                    if isinstance(c, int) and not isinstance(c, bool) and c != 0:
                        return f"({a} {'//' if op == '/' else '%'} {b})"
                    self.sites.append(Site(site.levels, ctx.file.path, e.span))
                    fn = LAYOUT.div if op == "/" else LAYOUT.mod
                    return f"{fn}({a}, {b}, {len(self.sites) - 1})"
                return f"({a} {op} {b})"
        raise AssertionError(f"unexpected expression {e!r}")  # pragma: no cover


def _nesting(body: ast.Block) -> tuple[int, int]:
    """(blocks, loops): the deepest nesting of blocks and of `while`s inside a body."""
    deepest_blocks = deepest_loops = 0
    stack: list[tuple[ast.Stmt, int, int]] = [(s, 0, 0) for s in body.stmts]
    while stack:
        s, blocks, loops = stack.pop()
        match s:
            case ast.If(branches=branches, orelse=orelse):
                inner = [br.body for br in branches] + ([orelse] if orelse is not None else [])
                for b in inner:
                    stack += [(t, blocks + 1, loops) for t in b.stmts]
                deepest_blocks = max(deepest_blocks, blocks + 1)
            case ast.While(body=b):
                stack += [(t, blocks + 1, loops + 1) for t in b.stmts]
                deepest_blocks = max(deepest_blocks, blocks + 1)
                deepest_loops = max(deepest_loops, loops + 1)
    return deepest_blocks, deepest_loops


def _may_grow(e: ast.Expr) -> bool:
    """Whether an expression holds an operator whose result can leave the 64-bit range."""
    stack = [e]
    while stack:
        match stack.pop():
            case ast.Unary(op="-"):
                return True
            case ast.Binary(op="+" | "-" | "*" | "/"):
                return True
            case ast.Unary(operand=o):
                stack.append(o)
            case ast.Binary(left=a, right=b):
                stack += (a, b)
            case ast.QueryCall(args=args):
                stack += args
    return False


def _plus(expr: str, k: int) -> str:
    if expr == _D:
        return f"{_D} + {k}"
    if expr.startswith(f"{_D} + "):
        return f"{_D} + {int(expr[len(_D) + 3:]) + k}"
    return f"({expr}) + {k}"  # pragma: no cover
