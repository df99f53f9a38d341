"""Explainable rules: YAML files under ``features/rules``, evaluated over account features, with evidence.

A rule::

    - id: FW-STR-001
      version: 1
      typology: structuring
      severity: high                       # low | medium | high
      description: Three or more cash deposits between 80 % and 100 % of the threshold within five days.
      condition: count_cash_near_threshold_5d >= 3
      evidence: structuring                # an evidence family of sql/evidence/evidence.sql
      citation: "31 CFR 1010.314 ..."

Conditions are a small language, parsed (never executed): feature names, numbers, ``true``/``false``,
comparisons (``< <= > >= == !=``), ``and``, ``or``, ``not`` and parentheses. A feature that is null for an account
makes the comparison false.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from finwatch.exceptions import ConfigError
from finwatch.features import Features, reference_root

__all__ = ["Rule", "RulePack", "evaluate", "load_rules"]

SEVERITIES = ("low", "medium", "high")
FIELDS = ("id", "version", "typology", "severity", "description", "condition", "evidence", "citation")
EVIDENCE_FAMILIES = ("structuring", "cycles", "fan_in", "fan_out", "flow_through", "funnel", "trafficking", "crypto",
                     "geography")  # fmt: skip
EVIDENCE_LIMIT = 50  # per hit: the largest transactions first


@dataclass(frozen=True)
class Rule:
    id: str
    version: int
    typology: str
    severity: str
    description: str
    condition: str
    evidence: str
    citation: str
    source: str  # the file it came from

    @property
    def columns(self) -> set[str]:
        return {n.id for n in ast.walk(ast.parse(self.condition, mode="eval")) if isinstance(n, ast.Name)} - {
            "true", "false"
        }  # fmt: skip

    def expression(self) -> pl.Expr:
        return _compile(ast.parse(self.condition, mode="eval").body, self)


@dataclass(frozen=True)
class RulePack:
    rules: tuple[Rule, ...]
    version: str  # sha256 of the rule files (what a lead cites as "rules version")


def _compile(node: ast.AST, rule: Rule) -> pl.Expr:
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, rule) for v in node.values]
        out = parts[0]
        for part in parts[1:]:
            out = (out & part) if isinstance(node.op, ast.And) else (out | part)
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ~_compile(node.operand, rule)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = _operand(node.left, rule), _operand(node.comparators[0], rule)
        op = node.ops[0]
        compared = {
            ast.Lt: left < right, ast.LtE: left <= right, ast.Gt: left > right, ast.GtE: left >= right,
            ast.Eq: left == right, ast.NotEq: left != right,
        }.get(type(op))  # fmt: skip
        if compared is None:
            raise ConfigError(f"rule {rule.id}: operator {type(op).__name__} is not allowed")
        return compared.fill_null(False)
    if isinstance(node, ast.Name | ast.Constant):
        return _operand(node, rule).cast(pl.Boolean).fill_null(False)
    raise ConfigError(f"rule {rule.id}: {ast.unparse(node)!r} is not a comparison, and/or/not, or a feature")


def _operand(node: ast.AST, rule: Rule) -> pl.Expr:
    if isinstance(node, ast.Name):
        if node.id in ("true", "false"):
            return pl.lit(node.id == "true")
        return pl.col(node.id)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | bool):
        return pl.lit(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return pl.lit(-node.operand.value)  # type: ignore[operator]
    raise ConfigError(f"rule {rule.id}: {ast.unparse(node)!r} is not a feature name or a number")


def _rule(entry: Any, source: str) -> Rule:
    if not isinstance(entry, dict):
        raise ConfigError(f"{source}: each rule must be a mapping with {', '.join(FIELDS)}")
    missing = [f for f in FIELDS if f not in entry]
    if missing:
        raise ConfigError(f"{source}: rule {entry.get('id', '?')} misses {missing}")
    rule = Rule(**{f: entry[f] for f in FIELDS}, source=source)
    if rule.severity not in SEVERITIES:
        raise ConfigError(f"{source}: rule {rule.id}: severity must be one of {', '.join(SEVERITIES)}")
    if rule.evidence not in EVIDENCE_FAMILIES:
        raise ConfigError(f"{source}: rule {rule.id}: evidence must be one of {', '.join(EVIDENCE_FAMILIES)}")
    try:
        rule.expression()
    except SyntaxError as exc:
        raise ConfigError(f"{source}: rule {rule.id}: condition is not valid ({exc.msg})") from None
    return rule


def load_rules(folder: Path | None = None) -> RulePack:
    folder = folder or reference_root() / "rules"
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
        rules += [_rule(e, path.name) for e in entries]
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
        matched = table.filter(rule.expression())
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
