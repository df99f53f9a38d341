"""Explainable rules: YAML files under ``features/rules``, evaluated over account features, with evidence.

A rule::

    - id: FW-STR-002
      version: 1
      typology: smurfing
      severity: high                       # low | medium | high
      description: Near-threshold cash deposits brought in by three or more different people, at two or more branches.
      condition: distinct_depositors_near_threshold_30d >= 3 and distinct_branches_near_threshold_30d >= 2
      evidence: structuring                # an evidence family the SQL catalogue declares (sql/features headers)
      citation: "{law.structuring}; FFIEC ..."
      needs: [transactions.counterparty_name, transactions.branch]   # optional: data it cannot fire without

Conditions are a small language, parsed (never executed): feature names, numbers, ``true``/``false``,
comparisons (``< <= > >= == !=``), ``and``, ``or``, ``not`` and parentheses. A feature that is null for an account
makes the comparison false. ``threshold`` names the reporting threshold in the base currency, as the features
were built with it (:attr:`finwatch.features.Features.parameters`).

A citation may quote the configured law with ``{law.<key>}`` (``threshold``, ``aggregation``, ``structuring``,
``suspicious_report``, ``trafficking``, ``trafficking_key_term``, ``report_name``): filled from
``FeatureConfig.law`` when the pack is loaded.

``needs`` (optional) lists the stored data a rule cannot fire without: ``accounts`` (the accounts table has rows),
or ``<table>.<column>`` (some row of ``transactions`` or ``accounts`` has a value in that column); one entry may
give alternatives joined by ``or`` (``transactions.mcc or transactions.counterparty_name``). :func:`unmet_needs`
checks them against a store and says, in plain language, which rules cannot fire there and why. ``needs`` is no
part of a rule's digest: it describes the data, not what the rule computes.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from finwatch.config import FeatureConfig
from finwatch.exceptions import ConfigError
from finwatch.features import Features, build_account_features, evidence_families, reference_root
from finwatch.schema import ACCOUNT_SCHEMA, TRANSACTION_SCHEMA
from finwatch.store import Store

__all__ = ["PARAMETERS", "Rule", "RulePack", "RuleRun", "evaluate", "load_rules", "run_rules", "unmet_needs"]

SEVERITIES = ("low", "medium", "high")
FIELDS = ("id", "version", "typology", "severity", "description", "condition", "evidence", "citation")
#: names a condition may use for a value the features were built with (not a feature column)
PARAMETERS = ("threshold",)
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
EVIDENCE_LIMIT = 50  # per hit: the largest transactions first
#: the stored tables a rule may need, with their columns
NEED_TABLES = {"transactions": set(TRANSACTION_SCHEMA.names), "accounts": set(ACCOUNT_SCHEMA.names)}
#: what a note says when a whole table is missing
MISSING_TABLE = {
    "accounts": "the store has no accounts table (ingest a customer extract with --format customers-csv, or a "
    "finwatch-tables accounts file)",
    "transactions": "the store has no transactions",
}
#: how a note names a column that holds no value
COLUMN_WORDS = {"mcc": "a merchant category code (mcc)", "counterparty_name": "a counterparty name", "city": "a city",
                "branch": "a branch", "chain": "a chain (on-chain transfers)", "country": "a country",
                "description": "a description"}  # fmt: skip


@dataclass(frozen=True)
class Rule:
    id: str
    version: int
    typology: str
    severity: str
    description: str
    condition: str
    evidence: str
    citation: str  # with the configured law quoted
    source: str  # the file it came from
    citation_template: str = ""  # as written in the file ({law.…} placeholders unfilled)
    needs: tuple[str, ...] = ()  # stored data the rule cannot fire without ("accounts", "transactions.mcc or …")

    @property
    def names(self) -> set[str]:
        return {n.id for n in ast.walk(ast.parse(self.condition, mode="eval")) if isinstance(n, ast.Name)} - {
            "true", "false"
        }  # fmt: skip

    @property
    def columns(self) -> set[str]:
        """The feature columns the condition reads."""
        return self.names - set(PARAMETERS)

    @property
    def parameters(self) -> set[str]:
        """The build parameters the condition reads (``threshold``)."""
        return self.names & set(PARAMETERS)

    def expression(self, parameters: Mapping[str, Any] | None = None) -> pl.Expr:
        """The condition as a Polars expression; ``parameters`` are the values the features were built with."""
        return _compile(ast.parse(self.condition, mode="eval").body, self, parameters)

    @property
    def digest(self) -> str:
        """sha256 of the rule's canonical definition (the citation as written, before the law is filled in)."""
        definition = {
            "id": self.id, "version": self.version, "typology": self.typology, "severity": self.severity,
            "description": self.description, "condition": self.condition, "evidence": self.evidence,
            "citation": self.citation_template or self.citation,
        }  # fmt: skip
        return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class RulePack:
    rules: tuple[Rule, ...]
    version: str  # sha256 of the rule files (what a lead cites as "rules version")

    def digests(self) -> dict[str, str]:
        """Rule id → :attr:`Rule.digest`."""
        return {r.id: r.digest for r in self.rules}

    def severities(self) -> dict[str, str]:
        """Rule id → severity."""
        return {r.id: r.severity for r in self.rules}


def _compile(node: ast.AST, rule: Rule, parameters: Mapping[str, Any] | None) -> pl.Expr:
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, rule, parameters) for v in node.values]
        out = parts[0]
        for part in parts[1:]:
            out = (out & part) if isinstance(node.op, ast.And) else (out | part)
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ~_compile(node.operand, rule, parameters)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = _operand(node.left, rule, parameters), _operand(node.comparators[0], rule, parameters)
        op = node.ops[0]
        compared = {
            ast.Lt: left < right, ast.LtE: left <= right, ast.Gt: left > right, ast.GtE: left >= right,
            ast.Eq: left == right, ast.NotEq: left != right,
        }.get(type(op))  # fmt: skip
        if compared is None:
            raise ConfigError(f"rule {rule.id}: operator {type(op).__name__} is not allowed")
        return compared.fill_null(False)
    if isinstance(node, ast.Name | ast.Constant):
        return _operand(node, rule, parameters).cast(pl.Boolean).fill_null(False)
    raise ConfigError(f"rule {rule.id}: {ast.unparse(node)!r} is not a comparison, and/or/not, or a feature")


def _operand(node: ast.AST, rule: Rule, parameters: Mapping[str, Any] | None) -> pl.Expr:
    if isinstance(node, ast.Name):
        if node.id in ("true", "false"):
            return pl.lit(node.id == "true")
        if node.id in PARAMETERS:
            if parameters is None:  # checking the condition's shape only
                return pl.lit(0.0)
            if parameters.get(node.id) is None:
                raise ConfigError(f"rule {rule.id}: the features carry no value of {node.id} to compare with")
            return pl.lit(float(parameters[node.id]))
        return pl.col(node.id)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | bool):
        return pl.lit(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return pl.lit(-node.operand.value)  # type: ignore[operator]
    raise ConfigError(f"rule {rule.id}: {ast.unparse(node)!r} is not a feature name or a number")


def _citation(template: str, law: Mapping[str, str], where: str) -> str:
    """``template`` with each ``{law.<key>}`` replaced by the configured citation."""

    def fill(match: re.Match[str]) -> str:
        kind, _, key = match.group(1).partition(".")
        if kind != "law" or key not in law:
            raise ConfigError(
                f"{where}: citation placeholder {match.group(0)} is unknown; use {{law.<key>}} with a key of "
                f"{', '.join(sorted(law))}"
            )
        return law[key]

    return PLACEHOLDER.sub(fill, template)


def _rule(entry: Any, source: str, law: Mapping[str, str], families: set[str]) -> Rule:
    if not isinstance(entry, dict):
        raise ConfigError(f"{source}: each rule must be a mapping with {', '.join(FIELDS)}")
    missing = [f for f in FIELDS if f not in entry]
    if missing:
        raise ConfigError(f"{source}: rule {entry.get('id', '?')} misses {missing}")
    template = str(entry["citation"])
    fields = {f: entry[f] for f in FIELDS} | {"citation": _citation(template, law, f"{source}: rule {entry['id']}")}
    needs = _needs(entry.get("needs"), f"{source}: rule {entry['id']}")
    rule = Rule(**fields, source=source, citation_template=template, needs=needs)
    if rule.severity not in SEVERITIES:
        raise ConfigError(f"{source}: rule {rule.id}: severity must be one of {', '.join(SEVERITIES)}")
    if rule.evidence not in families:
        raise ConfigError(
            f"{source}: rule {rule.id}: evidence {rule.evidence!r} is not a family the SQL declares; "
            f"families: {', '.join(sorted(families))}"
        )
    try:
        rule.expression()
    except SyntaxError as exc:
        raise ConfigError(f"{source}: rule {rule.id}: condition is not valid ({exc.msg})") from None
    return rule


def _needs(value: Any, where: str) -> tuple[str, ...]:
    """A rule's ``needs``, checked: each entry ``table`` or ``table.column`` (alternatives joined by ``or``)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: needs must be a list such as [accounts, transactions.mcc]")
    for entry in value:
        for term in _alternatives(entry):
            table, _, column = term.partition(".")
            if table not in NEED_TABLES or (column and column not in NEED_TABLES[table]):
                raise ConfigError(
                    f"{where}: needs {term!r} is not a stored table or a column of one; use {' or '.join(NEED_TABLES)}"
                    ", optionally with .<column>"
                )
    return tuple(value)


def _alternatives(entry: str) -> list[str]:
    return [term.strip() for term in entry.split(" or ")]


def unmet_needs(pack: RulePack, store: Store) -> list[str]:
    """One plain-language note per rule of ``pack`` that cannot fire on ``store``: data its ``needs`` names is absent.

    A table is absent without rows, a column when no row has a value in it (the whole store is looked at, not a
    time window). E.g. ``FW-SHL-001 (shell circulation) cannot fire: the store has no accounts table (…)``.
    """
    terms = {t for r in pack.rules for entry in r.needs for t in _alternatives(entry)}
    present: dict[str, bool] = {}
    for table in NEED_TABLES:
        named = {t.partition(".")[2] for t in terms if t.partition(".")[0] == table}
        if not named:
            continue
        columns = sorted(named - {""})
        row = (
            store.scan(table, history=True)
            .select(pl.len().alias("rows"), *(pl.col(c).is_not_null().any().alias(f"has {c}") for c in columns))
            .collect()
            .row(0, named=True)
        )
        present[table] = row["rows"] > 0
        present.update({f"{table}.{c}": bool(row[f"has {c}"]) for c in columns})
    notes = []
    for rule in pack.rules:
        unmet = [_missing(_alternatives(e)) for e in rule.needs if not any(present[t] for t in _alternatives(e))]
        if unmet:
            notes.append(f"{rule.id} ({rule.typology.replace('_', ' ')}) cannot fire: {'; '.join(unmet)}")
    return notes


def _missing(terms: list[str]) -> str:
    """What a note says of a need none of whose alternatives ``terms`` the store has."""
    parts = [MISSING_TABLE[t] for t in terms if "." not in t]
    for table, noun in (("transactions", "transaction"), ("accounts", "account")):
        columns = [t.partition(".")[2] for t in terms if t.partition(".")[0] == table and "." in t]
        if columns:
            words = " or ".join(COLUMN_WORDS.get(c, f"a value in {c}") for c in columns)
            parts.append(f"no stored {noun} has {words}")
    return " and ".join(parts)


def load_rules(config: FeatureConfig, *, folder: Path | None = None) -> RulePack:
    """The rule pack of ``config.reference_dir`` (default: the shipped ``features/rules``), or of ``folder``.

    A rule naming an evidence family that ``config.sql_dir``'s SQL does not declare, or a ``{law.…}`` citation key
    that ``config.law`` lacks, is refused here.
    """
    folder = folder or (config.reference_dir or reference_root()) / "rules"
    families = evidence_families(config)
    digest = hashlib.sha256()
    rules: list[Rule] = []
    for path in sorted(folder.glob("*.yaml")):
        text = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + text)
        try:
            entries = yaml.safe_load(text) or []
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(entries, list):
            raise ConfigError(f"{path}: a list of rules expected")
        rules += [_rule(e, path.name, config.law, families) for e in entries]
    ids = [r.id for r in rules]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ConfigError(f"rule ids {repeated} are defined more than once")
    return RulePack(tuple(rules), digest.hexdigest()[:16])


def evaluate(features: Features, pack: RulePack) -> pl.DataFrame:
    """One row per (account, rule) hit, with the feature values the rule read and its evidence transactions."""
    table = features.accounts
    unknown = sorted({c for r in pack.rules for c in r.columns} - set(table.columns))
    if unknown:
        raise ConfigError(f"rules use unknown features {unknown}")
    hits = []
    for rule in pack.rules:
        matched = table.filter(rule.expression(features.parameters))
        if matched.is_empty():
            continue
        values = matched.select(sorted(rule.columns)).to_dicts()
        hits.append(
            pl.DataFrame(
                {
                    "account_id": matched["account_id"],
                    "rule_id": rule.id,
                    "rule_version": rule.version,
                    "typology": rule.typology,
                    "severity": rule.severity,
                    "description": rule.description,
                    "citation": rule.citation,
                    "evidence_family": rule.evidence,
                    "feature_values": [json.dumps(v, sort_keys=True, default=str) for v in values],
                }
            )
        )
    schema = {"account_id": pl.String, "rule_id": pl.String, "rule_version": pl.Int64, "typology": pl.String,
              "severity": pl.String, "description": pl.String, "citation": pl.String,
              "evidence_family": pl.String, "feature_values": pl.String}  # fmt: skip
    frame = pl.concat(hits) if hits else pl.DataFrame(schema=schema)
    evidence = (
        features.evidence.sort(["amount_base", "txn_id"], descending=[True, False])
        .group_by(["account_id", "family"], maintain_order=True)
        .agg(evidence_txn_ids=pl.col("txn_id").unique(maintain_order=True).head(EVIDENCE_LIMIT))
        .rename({"family": "evidence_family"})
    )
    return (
        frame.join(evidence, on=["account_id", "evidence_family"], how="left")
        .with_columns(
            evidence_txn_ids=pl.col("evidence_txn_ids").fill_null(pl.lit([], pl.List(pl.String))),
            as_of=pl.lit(features.as_of),
            rules_version=pl.lit(pack.version),
        )
        .sort(["account_id", "rule_id"])
    )


@dataclass(frozen=True)
class RuleRun:
    """``finwatch rules``: the pack, the features as of a time, the hits, and the rules that cannot fire."""

    pack: RulePack
    features: Features
    hits: pl.DataFrame
    notes: list[str]  # :func:`unmet_needs`

    def summary(self) -> dict[str, Any]:
        """rules.json: the time, the pack's version, the hits by rule and the notes."""
        hits = self.hits
        by_rule = dict(sorted(hits["rule_id"].value_counts().iter_rows())) if hits.height else {}
        return {"as_of": self.features.as_of.isoformat(), "rules_version": self.pack.version, "hits": hits.height,
                "by_rule": by_rule, "notes": self.notes}  # fmt: skip


def run_rules(store: Store, as_of: dt.datetime, config: FeatureConfig, *, folder: Path | None = None) -> RuleRun:
    """Evaluate the rule pack (``folder``, default the configured one) on ``store``'s features as of ``as_of``."""
    pack = load_rules(config, folder=folder)
    features = build_account_features(store, as_of, config)
    return RuleRun(pack, features, evaluate(features, pack), unmet_needs(pack, store))
