"""The LALR parser of grammar.lark, built once and stored as JSON.

Building the parser from the grammar takes about half a second of CPU (lark's grammar loader,
the LALR analysis, and interegular's terminal-collision check when interegular is installed);
loading the stored tables takes milliseconds. `npi_dsl/grammar_tables.json` holds lark's own
serialization of the parser (`Lark.memo_serialize`, the form lark's standalone generator
embeds; no pickle), with the parse table numbered canonically so that the file depends on the
grammar alone, not on string hashing. After changing grammar.lark regenerate it with

    python -m npi_dsl.parser_tables

(`--check` only says whether it is up to date; tests/dsl/test_parser_tables.py checks it).
Where the stored tables do not match (grammar.lark edited without regenerating, or another
lark version), `load` builds the parser from the grammar instead: slower, never stale.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Transformer

#: the options of the parser (npi_dsl.parser); the transformer is given when loading
LARK_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "lexer": "contextual",
    "propagate_positions": True,
    "maybe_placeholders": True,
    "keep_all_tokens": True,
}

DATA_FILE = Path(__file__).with_name("grammar_tables.json")
REGENERATE = "python -m npi_dsl.parser_tables"


def grammar_text() -> str:
    return Path(__file__).with_name("grammar.lark").read_text("utf-8")


def grammar_sha256(text: str | None = None) -> str:
    text = grammar_text() if text is None else text
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build(transformer: Transformer | None = None) -> Lark:
    """The parser built from grammar.lark (slow: the LALR analysis and lexer checks)."""
    return Lark(grammar_text(), transformer=transformer, **LARK_OPTIONS)


def stored() -> tuple[dict[str, Any], dict[int, Any]] | None:
    """lark's (data, memo) of the parser from grammar_tables.json, or None where the file is
    missing or was made from another grammar.lark or by another lark version."""
    try:
        doc = json.loads(DATA_FILE.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if doc.get("grammar_sha256") != grammar_sha256() or \
            doc.get("lark_version") != lark.__version__:
        return None
    return _from_json(doc)


def load(transformer: Transformer | None = None) -> Lark:
    """The parser from the stored tables, or built from the grammar where they are stale."""
    tables = stored()
    if tables is None:
        return build(transformer)
    data, memo = tables
    return Lark._load_from_dict(data, memo, transformer=transformer)


# ------------------------------------------------------------------ the stored form


def serialized() -> tuple[dict[str, Any], dict[int, Any]]:
    """lark's serialization of the parser built from grammar.lark, its parse table numbered
    canonically (`_canonical_table`)."""
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    data, memo = build().memo_serialize([TerminalDef, Rule])
    data["parser"]["parser"] = _canonical_table(data["parser"]["parser"])
    return data, memo


def _canonical_table(table: dict[str, Any]) -> dict[str, Any]:
    """lark's serialized parse table with states numbered in breadth-first order from the
    start states (edges taken by symbol name) and symbols numbered by name: the numbering
    lark gives depends on set iteration order, which depends on string hashing."""
    names: dict[int, str] = table["tokens"]
    states: dict[int, dict[int, tuple[int, Any]]] = table["states"]
    symbols = sorted(set(names.values()))
    symbol_id = {name: i for i, name in enumerate(symbols)}
    number: dict[int, int] = {}
    queue = [table["start_states"][s] for s in sorted(table["start_states"])]
    queue += [table["end_states"][s] for s in sorted(table["end_states"])]
    i = 0
    while i < len(queue):
        state = queue[i]
        i += 1
        if state in number:
            continue
        number[state] = len(number)
        for tok in sorted(states[state], key=names.__getitem__):
            action, arg = states[state][tok]
            if action == 0:  # shift (or goto): arg is a state
                queue.append(arg)
    if len(number) != len(states):
        raise AssertionError("the parse table has states no start state reaches")
    new_states = {}
    for old, new in sorted(number.items(), key=lambda kv: kv[1]):
        new_states[new] = {
            symbol_id[names[tok]]: (action, number[arg] if action == 0 else arg)
            for tok, (action, arg) in sorted(states[old].items(), key=lambda kv: names[kv[0]])}
    return {
        "tokens": dict(enumerate(symbols)),
        "states": new_states,
        "start_states": {s: number[q] for s, q in table["start_states"].items()},
        "end_states": {s: number[q] for s, q in table["end_states"].items()},
    }


def _to_json(data: dict[str, Any], memo: dict[int, Any]) -> dict[str, Any]:
    """(data, memo) as JSON values: JSON has no integer keys and no tuples, so the parse
    table's symbols and states and the memo become lists indexed by number."""
    table = data["parser"]["parser"]
    assert list(memo) == list(range(len(memo)))
    assert list(table["tokens"]) == list(range(len(table["tokens"])))
    assert list(table["states"]) == list(range(len(table["states"])))
    rest = {**data, "parser": {**data["parser"], "parser": {
        "start_states": table["start_states"], "end_states": table["end_states"]}}}
    return {
        "generated_by": REGENERATE,
        "lark_version": lark.__version__,
        "grammar_sha256": grammar_sha256(),
        "data": rest,
        "symbols": list(table["tokens"].values()),
        "states": [[[tok, action, arg] for tok, (action, arg) in actions.items()]
                   for actions in table["states"].values()],
        "memo": list(memo.values()),
    }


def _from_json(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[int, Any]]:
    """The inverse of `_to_json`: lark's (data, memo), integer keys and tuples restored."""
    data = doc["data"]
    table = data["parser"]["parser"]
    table["tokens"] = dict(enumerate(doc["symbols"]))
    table["states"] = {i: {tok: (action, arg) for tok, action, arg in row}
                       for i, row in enumerate(doc["states"])}
    memo = dict(enumerate(doc["memo"]))
    for entry in memo.values():
        if entry.get("__type__") == "Rule":
            entry["options"]["empty_indices"] = tuple(entry["options"]["empty_indices"])
    return data, memo


def render() -> str:
    """The text of grammar_tables.json for the current grammar.lark and lark: one line per
    memoized terminal or rule and per parser state."""
    doc = _to_json(*serialized())
    parts = []
    for key in sorted(doc):
        value = doc[key]
        if key in ("memo", "states"):
            text = "[\n" + ",\n".join("  " + json.dumps(v, sort_keys=True) for v in value) \
                + "\n ]"
        else:
            text = json.dumps(value, sort_keys=True)
        parts.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m npi_dsl.parser_tables [--check]`: regenerate grammar_tables.json, or only
    say whether it is up to date (exit 1 when not)."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"]):
        print(f"usage: {REGENERATE} [--check]", file=sys.stderr)
        return 2
    text = render()
    current = DATA_FILE.read_text("utf-8") if DATA_FILE.exists() else None
    if current == text:
        print(f"{DATA_FILE.name} is up to date")
        return 0
    if args == ["--check"]:
        print(f"{DATA_FILE.name} is out of date: run `{REGENERATE}`", file=sys.stderr)
        return 1
    DATA_FILE.write_text(text, "utf-8")
    print(f"wrote {DATA_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
