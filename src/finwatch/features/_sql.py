"""The SQL loader: every ``sql/**/*.sql`` file starts with a header; parameters are bound, never formatted in.

Header (SQL comments before the first statement line)::

    -- name: structuring
    -- grain: account
    -- time_column: ts
    -- windows: 24h, 5d, 30d
    -- typology: structuring, smurfing
    -- source: FinCEN FIN-2014-A005 (structuring red flags); FATF ...
    -- parameters:
    --   as_of: timestamp, required
    --   threshold: 10000
    -- evidence:
    --   structuring: cash_deposits_near
    -- zero_when_absent: count_cash_near_threshold_24h, count_cash_near_threshold_5d,
    --   sum_cash_near_threshold_30d
    -- columns:
    --   count_cash_near_threshold_24h: cash deposits in the near-threshold band in the last 24 h
    --   distinct_branches_near_threshold_30d: branches where such deposits were made (several in one
    --     day suggest a depositor avoiding notice)

In ``parameters``, ``evidence`` and ``columns`` an entry is ``--   name: meaning`` (three spaces after the dashes);
a line indented further continues the entry before it (joined with a space). ``zero_when_absent`` is a
comma-separated list that may continue on lines indented by three spaces.

- ``evidence``: ``family: cte`` — the transactions behind an evidence family are the rows of that CTE of the same
  file (``account_id, txn_id, ts, amount_base``): the loader runs the file's CTEs with a different final select.
- ``zero_when_absent``: the columns that are 0 (false for a boolean) for an account absent from the family's
  table; every other column stays null there.

The body refers to parameters as ``$name``; :func:`bind` checks that every one used is declared and given. The
tables a body reads are found by :func:`scan` (CTE names, table functions and ``from`` inside function calls such
as ``extract(hour from ts)`` are not tables); :func:`load_catalogue` orders the files by what they read.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finwatch._paths import sql_root
from finwatch.exceptions import ConfigError

__all__ = [
    "ACCOUNT_FAMILIES",
    "EVIDENCE",
    "EXTERNAL_TABLES",
    "Catalogue",
    "Node",
    "SqlModel",
    "bind",
    "load_catalogue",
    "load_model",
    "load_models",
    "scan",
    "sql_root",
]

HEADER_KEYS = ("name", "grain", "time_column", "windows", "typology", "source", "parameters", "evidence",
               "zero_when_absent", "columns")  # fmt: skip
ENTRY_SECTIONS = ("parameters", "evidence", "columns")
PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
#: folders of models, in the order their tables are named (a family's table is ``feat_<name>``)
MODEL_LAYERS = (("staging", ""), ("features", "feat_"), ("marts", ""))
#: tables registered from Python before any SQL runs
EXTERNAL_TABLES = frozenset({"store_accounts"})
#: tables the loader builds from the headers: every account-grain family joined, and every declared evidence
ACCOUNT_FAMILIES = "account_families"
EVIDENCE = "evidence"


@dataclass(frozen=True)
class SqlModel:
    path: Path
    name: str
    grain: str
    body: str
    windows: tuple[str, ...] = ()
    typology: tuple[str, ...] = ()
    source: str = ""
    time_column: str = ""
    parameters: dict[str, str | None] = field(default_factory=dict)  # name -> default text (None: required)
    columns: dict[str, str] = field(default_factory=dict)  # output column -> plain-language meaning
    evidence: dict[str, str] = field(default_factory=dict)  # evidence family -> CTE of this file
    zero_when_absent: tuple[str, ...] = ()  # columns that are 0 / false for an account absent from the table
    reads: frozenset[str] = frozenset()  # tables the body reads (CTEs and table functions excluded)
    ctes: tuple[str, ...] = ()  # names of the body's CTEs
    final_select: int | None = None  # offset in body of the top-level select after the CTEs

    @property
    def used_parameters(self) -> set[str]:
        return set(PARAM.findall(_strip_comments(self.body)))

    @property
    def is_account_family(self) -> bool:
        """A feature family with one row per account (joined into the account mart)."""
        return self.path.parent.name == "features" and self.grain.split()[0].strip(",") == "account"

    def evidence_query(self, family: str) -> tuple[str, set[str]]:
        """The file's CTEs with a final select of ``family``'s CTE, and the parameters that query uses.

        The family name is bound as ``$evidence_family``; the CTE name comes from the header and was checked to be
        one of the file's CTEs.
        """
        cte = self.evidence[family]
        assert self.final_select is not None  # checked at load for a file that declares evidence
        select = f"select account_id, $evidence_family as family, txn_id, ts, amount_base from {cte}"  # noqa: S608
        sql = self.body[: self.final_select] + select
        return sql, set(PARAM.findall(_strip_comments(sql)))


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


# --- which tables a body reads --------------------------------------------------------------------------------
TOKEN = re.compile(
    r"(?P<space>\s+)|(?P<comment>--[^\n]*)|(?P<string>'(?:[^']|'')*')|(?P<quoted>\"(?:[^\"]|\"\")*\")"
    r"|(?P<param>\$[A-Za-z_][A-Za-z0-9_]*)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>\d+(?:\.\d*)?)|(?P<other>.)",
    re.DOTALL,
)
#: words that end a from clause (after them a comma no longer starts another from-item)
CLAUSE_WORDS = frozenset({
    "where", "group", "having", "qualify", "order", "limit", "offset", "window", "union", "intersect", "except",
    "select", "returning",
})  # fmt: skip


@dataclass(frozen=True)
class _Token:
    kind: str  # word (lower-cased), name (quoted identifier), param, number, string, or the punctuation itself
    text: str
    start: int


def _tokens(sql: str) -> list[_Token]:
    out: list[_Token] = []
    for m in TOKEN.finditer(sql):
        kind = m.lastgroup or "other"
        if kind in ("space", "comment"):
            continue
        text = m.group()
        if kind == "word":
            out.append(_Token("word", text.lower(), m.start()))
        elif kind == "quoted":
            out.append(_Token("name", text[1:-1].replace('""', '"').lower(), m.start()))
        elif kind == "other":
            out.append(_Token(text, text, m.start()))
        else:
            out.append(_Token(kind, text, m.start()))
    return out


def _is_name(token: _Token | None) -> bool:
    return token is not None and token.kind in ("word", "name")


def scan(sql: str) -> tuple[frozenset[str], tuple[str, ...], int | None]:
    """The tables ``sql`` reads, its CTE names, and the offset of its top-level select after the CTEs.

    A ``from``/``join`` counts only inside a query (the top level or a parenthesis opening with ``select`` or
    ``with``), so ``extract(hour from ts)`` reads nothing; ``from (select …)`` reads what its subquery reads; a
    name followed by ``(`` (``read_parquet(…)``, ``unnest(…)``) is a table function.
    """
    tokens = _tokens(sql)
    reads: set[str] = set()
    ctes: list[str] = []
    final: int | None = None
    query = [True]  # for each open parenthesis: does it hold a query?
    in_from = [False]  # for each level: inside a from clause (a comma starts another from-item)

    def from_item(i: int) -> None:
        j = i
        while j < len(tokens) and tokens[j].kind == "word" and tokens[j].text == "lateral":
            j += 1
        if j >= len(tokens) or not _is_name(tokens[j]):
            return  # a subquery or a parenthesised join: its own from clauses are scanned as they come
        parts = [tokens[j].text]
        while j + 2 < len(tokens) and tokens[j + 1].kind == "." and _is_name(tokens[j + 2]):
            parts.append(tokens[j + 2].text)
            j += 2
        if j + 1 < len(tokens) and tokens[j + 1].kind == "(":
            return  # a table function
        reads.add(".".join(parts))

    for i, token in enumerate(tokens):
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.kind == "(":
            query.append(after is not None and after.kind == "word" and after.text in ("select", "with"))
            in_from.append(False)
            continue
        if token.kind == ")":
            if len(query) > 1:
                query.pop()
                in_from.pop()
            continue
        if not query[-1]:
            continue
        if token.kind == "word" and token.text in ("from", "join"):
            in_from[-1] = True
            from_item(i + 1)
        elif token.kind == "," and in_from[-1]:
            from_item(i + 1)
        elif token.kind == "word" and token.text in CLAUSE_WORDS:
            in_from[-1] = False
        if _is_name(token) and after is not None and after.kind == "word" and after.text == "as":
            previous = tokens[i - 1] if i else None
            rest = tokens[i + 2 : i + 5]
            while rest and rest[0].kind == "word" and rest[0].text in ("materialized", "not"):
                rest = rest[1:]
            opens_query = len(rest) >= 2 and rest[0].kind == "(" and rest[1].kind == "word"
            if (
                previous is not None
                and (previous.kind == "," or (previous.kind == "word" and previous.text in ("with", "recursive")))
                and opens_query
                and rest[1].text in ("select", "with")
            ):
                ctes.append(token.text)
        if final is None and len(query) == 1 and token.kind == "word" and token.text == "select":
            final = token.start
    return frozenset(reads - set(ctes)), tuple(ctes), final


# --- one file -------------------------------------------------------------------------------------------------
def load_model(path: Path) -> SqlModel:
    lines = path.read_text(encoding="utf-8").splitlines()
    header: dict[str, Any] = {}
    section: str | None = None
    body_start = 0
    for index, line in enumerate(lines):
        if not line.startswith("--"):
            body_start = index
            break
        text = line[2:]
        if text.startswith("   ") and section == "zero_when_absent":
            header[section] = f"{header[section]}, {text.strip()}"
            continue
        if text.startswith("   ") and section in ENTRY_SECTIONS:
            entries: dict[str, str] = header[section]
            if text.startswith("    "):  # indented further: continues the previous entry's text
                if not entries:
                    raise ConfigError(
                        f"{path}: line {index + 1} continues an entry, but no {section} entry precedes it"
                    )
                last = next(reversed(entries))
                entries[last] = f"{entries[last]} {text.strip()}".strip()
                continue
            key, _, value = text.strip().partition(":")
            entries[key.strip()] = value.strip()
            continue
        key, _, value = text.strip().partition(":")
        key = key.strip()
        if key in ENTRY_SECTIONS:
            section = key
            header[key] = {}
        elif key in HEADER_KEYS:
            section = key if key == "zero_when_absent" else None
            header[key] = value.strip()
        elif key:
            raise ConfigError(f"{path}: unknown header key {key!r}; keys: {', '.join(HEADER_KEYS)}")
    else:
        body_start = len(lines)
    if "name" not in header or "grain" not in header:
        raise ConfigError(f"{path}: the header must give at least name and grain")
    if not IDENTIFIER.match(header["name"]):
        raise ConfigError(f"{path}: name {header['name']!r} is not a lower-case SQL identifier")
    parameters: dict[str, str | None] = {}
    for name, spec in header.get("parameters", {}).items():
        parameters[name] = None if "required" in spec else spec.split(",")[0].strip()
    body = "\n".join(lines[body_start:]).strip().rstrip(";")
    reads, ctes, final = scan(body)
    model = SqlModel(
        path=path,
        name=header["name"],
        grain=header["grain"],
        body=body,
        windows=_list(header.get("windows", "")),
        typology=_list(header.get("typology", "")),
        source=header.get("source", ""),
        time_column=header.get("time_column", ""),
        parameters=parameters,
        columns=dict(header.get("columns", {})),
        evidence=dict(header.get("evidence", {})),
        zero_when_absent=_list(header.get("zero_when_absent", "")),
        reads=reads,
        ctes=ctes,
        final_select=final,
    )
    undeclared = sorted(model.used_parameters - set(parameters))
    if undeclared:
        raise ConfigError(f"{path}: parameters {undeclared} are used but not declared in the header")
    for family, cte in model.evidence.items():
        if not IDENTIFIER.match(family):
            raise ConfigError(f"{path}: evidence family {family!r} is not a lower-case name")
        if cte not in ctes:
            raise ConfigError(f"{path}: evidence {family}: {cte!r} is not a CTE of this file")
    if model.evidence and (not ctes or not _selects_final(body, final)):
        raise ConfigError(f"{path}: a file declaring evidence must be CTEs, then `select * from final`")  # noqa: S608
    repeated = sorted({c for c in model.zero_when_absent if model.zero_when_absent.count(c) > 1})
    if repeated:
        raise ConfigError(f"{path}: zero_when_absent lists {repeated} more than once")
    return model


def _selects_final(body: str, final: int | None) -> bool:
    """The top-level query is ``select * from final`` (an ``order by`` may follow)."""
    tail = [t.text for t in _tokens(body[final:])] if final is not None else []
    return tail[:4] == ["select", "*", "from", "final"] and (len(tail) == 4 or tail[4] == "order")


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def load_models(folder: Path) -> list[SqlModel]:
    """Every model in ``folder`` (sorted by file name)."""
    return [load_model(p) for p in sorted(folder.glob("*.sql"))]


def bind(model: SqlModel, values: dict[str, Any], used: Iterable[str] | None = None) -> dict[str, Any]:
    """The parameters ``model`` uses (or ``used``), from ``values`` or the header's defaults; missing required fail."""
    out: dict[str, Any] = {}
    for name in sorted(model.used_parameters if used is None else used):
        if name in values:
            out[name] = values[name]
        elif model.parameters.get(name) is not None:
            out[name] = _literal(str(model.parameters[name]))
        else:
            raise ConfigError(f"{model.path.name}: parameter {name!r} is required")
    return out


def _literal(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text.strip("'\"")


# --- the catalogue: every file, ordered by what it reads -----------------------------------------------------------
@dataclass(frozen=True)
class Node:
    """A table the build creates: from a model file, or by the loader (``model`` None) from the headers."""

    table: str
    model: SqlModel | None
    reads: frozenset[str]


@dataclass(frozen=True)
class Catalogue:
    root: Path
    nodes: tuple[Node, ...]  # in build order: every table after the tables it reads
    audits: tuple[SqlModel, ...]

    @property
    def tables(self) -> dict[str, Node]:
        return {n.table: n for n in self.nodes}

    @property
    def families(self) -> tuple[SqlModel, ...]:
        """The account-grain feature families, in build order (the account mart joins all of them)."""
        return tuple(n.model for n in self.nodes if n.model is not None and n.model.is_account_family)

    @property
    def evidence(self) -> dict[str, SqlModel]:
        """Evidence family → the model declaring it."""
        return {f: n.model for n in self.nodes if n.model is not None for f in n.model.evidence}

    def closure(self, *tables: str) -> list[Node]:
        """The nodes ``tables`` need, themselves included, in build order."""
        by_table = self.tables
        wanted: set[str] = set()
        stack = list(tables)
        while stack:
            table = stack.pop()
            if table in wanted or table not in by_table:
                continue
            wanted.add(table)
            stack += by_table[table].reads
        return [n for n in self.nodes if n.table in wanted]

    def level(self, level: str) -> list[Node]:
        """What a level builds: the account mart and the evidence, or the transaction mart."""
        marts = {"account": "account_features", "transaction": "transaction_features"}
        if level not in marts:
            raise ConfigError(f"unknown level {level!r}; choose account or transaction")
        if marts[level] not in self.tables:
            raise ConfigError(f"{self.root}: no SQL file builds {marts[level]}, the {level} level's mart")
        return self.closure(marts[level], EVIDENCE) if level == "account" else self.closure(marts[level])


def load_catalogue(root: Path | None = None) -> Catalogue:
    """Every model and audit under ``root`` (default: the shipped ``sql/``), in the order their tables are built.

    The order is a topological sort of the tables each file reads (ties broken by file name). A file reading a
    table that no model builds (other than ``store_accounts`` and table functions) is refused, naming both.
    """
    root = root or sql_root()
    if not root.is_dir():
        raise ConfigError(f"{root}: the SQL folder does not exist")
    nodes: dict[str, Node] = {}
    keys: dict[str, tuple[str, str]] = {}
    families: dict[str, SqlModel] = {}
    for layer, prefix in MODEL_LAYERS:
        for model in load_models(root / layer):
            table = prefix + model.name
            if table in nodes or table in (ACCOUNT_FAMILIES, EVIDENCE, *EXTERNAL_TABLES):
                other = nodes[table].model if table in nodes else None
                where = f" (also built by {other.path.name})" if other is not None else " (a reserved name)"
                raise ConfigError(f"{model.path}: table {table} is built more than once{where}")
            nodes[table] = Node(table, model, model.reads)
            keys[table] = (model.path.name, f"{layer}/{model.path.name}")
            for family in model.evidence:
                if family in families:
                    raise ConfigError(
                        f"{model.path}: evidence family {family} is also declared by {families[family].path.name}"
                    )
                families[family] = model
    account = [n for n in nodes.values() if n.model is not None and n.model.is_account_family]
    for node in nodes.values():
        if node.model is not None and node.model.zero_when_absent and not node.model.is_account_family:
            raise ConfigError(f"{node.model.path}: zero_when_absent is for feature families of grain account")
    nodes[ACCOUNT_FAMILIES] = Node(ACCOUNT_FAMILIES, None, frozenset(n.table for n in account))
    nodes[EVIDENCE] = Node(EVIDENCE, None, frozenset(t for t, n in nodes.items() if n.model and n.model.evidence))
    keys[ACCOUNT_FAMILIES] = keys[EVIDENCE] = ("~", "~")  # after the files that are ready at the same time
    audits = tuple(load_models(root / "audits"))
    known = set(nodes) | EXTERNAL_TABLES
    for model in [n.model for n in nodes.values() if n.model is not None] + list(audits):
        unknown = sorted(model.reads - known)
        if unknown:
            raise ConfigError(f"{model.path}: reads table {unknown[0]}, which no SQL model builds")
    return Catalogue(root, tuple(_order(nodes, keys)), audits)


def _order(nodes: dict[str, Node], keys: dict[str, tuple[str, str]]) -> list[Node]:
    """Kahn's algorithm; among tables ready to build, the smallest file name first."""
    needs = {t: set(n.reads) & set(nodes) for t, n in nodes.items()}
    ready = [(keys[t], t) for t, reads in needs.items() if not reads]
    heapq.heapify(ready)
    out: list[Node] = []
    while ready:
        _, table = heapq.heappop(ready)
        out.append(nodes[table])
        for other, reads in needs.items():
            if table in reads:
                reads.discard(table)
                if not reads:
                    heapq.heappush(ready, (keys[other], other))
    if len(out) < len(nodes):
        stuck = sorted(t for t in nodes if t not in {n.table for n in out})
        model = nodes[stuck[0]].model
        where = model.path if model is not None else stuck[0]
        raise ConfigError(f"{where}: tables {', '.join(stuck)} read each other in a cycle")
    return out
