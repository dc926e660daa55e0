"""The `observe` declaration: what the network sees (docs/language.md, "observe").

`observe value(p1), same(p1, p2)` lists queries of the environment with constant arguments;
the declared observation replaces the environment's default one. Checked here: the query
exists (E202), may be observed (E121: privileged, or an int query without a stated range),
its arguments are constants of the right number (E303), range (E306) and kind (E307), no
query is listed twice and a file declares `observe` once (E122). The observation belongs to
the whole program (one network), so an imported file that declares one must declare the
same as the file that imports it (E123); an imported file without `observe` follows the
importer's.
"""

from __future__ import annotations

from npi_dsl import ast
from npi_dsl.check_tasks import TaskChecker
from npi_dsl.checked import FileInfo
from npi_dsl.diagnostics import Note, did_you_mean
from npi_dsl.envs.base import ObservedQuery


class ObserveChecker(TaskChecker):
    """Checks `observe` declarations; `observed` is the root file's declaration."""

    observed: tuple[ObservedQuery, ...] = ()

    def _check_observe(self, root: FileInfo) -> tuple[ObservedQuery, ...]:
        own = self._file_observation(root)
        for info in self.files.values():
            if info is root or info.path in self._foreign_env:
                continue
            theirs = self._file_observation(info)
            decl = info.module.observes[0] if info.module.observes else None
            if decl is not None and theirs != own:
                assert self.vocab is not None
                shown = ", ".join(self.vocab.query_text(n, a) for n, a in own) or \
                    "the environment's default observation"
                self.error(info.path, decl.span, "E123",
                           f"{info.path} declares another observation than {root.path}, "
                           "which imports it",
                           f"the observation belongs to the whole program (one network): "
                           f"declare the same list in both files, or remove this `observe` "
                           f"({root.path} observes {shown})")
        return own

    def _file_observation(self, info: FileInfo) -> tuple[ObservedQuery, ...]:
        decls = info.module.observes
        if not decls:
            return ()
        for extra in decls[1:]:
            self.error(info.path, extra.span, "E122",
                       "a file declares `observe` once",
                       "list every observed query in one declaration",
                       (Note(decls[0].span, "first declared here"),))
        observed: list[ObservedQuery] = []
        first: dict[ObservedQuery, ast.QueryCall] = {}
        for call in decls[0].queries:
            entry = self._observed_query(info, call)
            if entry is None:
                continue
            if entry in first:
                self.error(info.path, call.span, "E122",
                           f"`{self._text(entry)}` is observed twice",
                           "remove one of them", (Note(first[entry].span, "first listed here"),))
                continue
            first[entry] = call
            observed.append(entry)
        return tuple(observed)

    def _text(self, entry: ObservedQuery) -> str:
        assert self.vocab is not None
        return self.vocab.query_text(*entry)

    def _observed_query(self, info: FileInfo, call: ast.QueryCall) -> ObservedQuery | None:
        vocab = self.vocab
        assert vocab is not None
        spec = vocab.queries.get(call.name)
        if spec is None:
            self.error(info.path, call.name_span, "E202",
                       f"env {vocab.env} has no query `{call.name}` to observe",
                       did_you_mean(call.name, vocab.queries) or
                       f"queries: {', '.join(vocab.queries) or 'none'}")
            return None
        if not spec.observable:
            why = spec.private or (
                f"`{call.name}` returns an int and env {vocab.env} states no range for it, so "
                "it has no observation slot")
            observable = [n for n, q in vocab.queries.items() if q.observable]
            self.error(info.path, call.name_span, "E121",
                       f"`{call.name}` cannot be observed: {why}",
                       f"observable queries of env {vocab.env}: "
                       f"{', '.join(observable) or 'none'} (docs/environments.md)")
            return None
        if len(call.args) != len(spec.params):
            self.error(info.path, call.span, "E303",
                       f"query `{call.name}` takes {len(spec.params)} argument"
                       f"{'' if len(spec.params) == 1 else 's'}, got {len(call.args)}")
            return None
        before = len(self.diags)
        self._check_ranges(info, call.args, spec.params)
        if len(self.diags) != before:
            return None
        values: list[int] = []
        for arg in call.args:
            value = self._const_value(info, arg)
            if not isinstance(value, int) or isinstance(value, bool):
                self.error(info.path, arg.span, "E122",
                           "an observed query's arguments must be integer constants",
                           "use names such as p1, numbers or constants: the network sees "
                           "the same queries at every step")
                return None
            values.append(value)
        for arg, value, kind in zip(call.args, values, spec.params, strict=False):
            members = vocab.kinds.get(kind, ())
            if members and value not in {vocab.names.get(m) for m in members}:
                self.error(info.path, arg.span, "E307",
                           f"argument {value} of `{call.name}` is not a {kind}",
                           f"a {kind} is one of: {', '.join(members)}")
                return None
        return (call.name, tuple(values))
