"""Scoring a store as of a time into leads an analyst can defend.

A run computes account features as of T, evaluates the rule pack, scores every account with a registered
account-level model, and raises leads for the top ``budget`` share of accounts by the combined score
(:mod:`finwatch.scoring`: rules weighted by their measured precision, or their severity prior when new).

Each lead carries the run id, the model name@version and its sha256, the rules version, the data manifest hash,
its score and rank, the typologies suspected, its reasons in plain language (rules that fired with their
citations, then the model's strongest contributions), the transactions that support them and the temporal cycles
the account is on. A lead's id depends only on its subject, so the same account keeps its id across runs; a lead
raised by an earlier run in the same runs folder says since when (``first_raised``).

Same store content, model, rules, configuration, time and budget → the same run id and byte-identical leads,
wherever the store and the run folder are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from finwatch.config import Level, RunConfig
from finwatch.exceptions import ConfigError, FinwatchError, StoreError
from finwatch.explain import merge, model_reasons, rule_reasons
from finwatch.features import Features, build_account_features
from finwatch.registry import LoadedModel, Registry
from finwatch.rules import RulePack, evaluate, load_rules
from finwatch.runs import RunFolder
from finwatch.scoring import alert_count, combine, matrix, rank, rule_scores, rule_weights
from finwatch.store import Store

__all__ = ["LEAD_COLUMNS", "Run", "lead_id", "score_run"]

LEAD_COLUMNS = (
    "lead_id", "run_id", "rank", "subject_kind", "subject_id", "score", "model_score", "rules_score", "model",
    "model_sha256", "rules_version", "data_manifest_sha256", "as_of", "first_raised", "typologies", "rules_fired",
    "reasons", "evidence_txn_ids", "cycle_paths",
)  # fmt: skip
LIST_SCHEMA = {"typologies": pl.List(pl.String), "rules_fired": pl.List(pl.String),
               "evidence_txn_ids": pl.List(pl.String)}  # fmt: skip


@dataclass(frozen=True)
class Run:
    run_id: str
    folder: Path
    leads: pl.DataFrame
    summary: dict[str, Any]


@dataclass(frozen=True)
class _Scored:
    """Every account's scores as of the run's time, and the positions of the leads among them."""

    table: pl.DataFrame
    hits: pl.DataFrame
    model: np.ndarray
    rules: np.ndarray
    combined: np.ndarray
    top: np.ndarray
    pack_changes: dict[str, Any]
    weights: dict[str, float]


def lead_id(subject_kind: str, subject_id: str) -> str:
    """Stable across runs: the same account is the same lead."""
    return "L-" + hashlib.sha256(f"{subject_kind}\0{subject_id}".encode()).hexdigest()[:20]


def score_run(store: Store, as_of: dt.datetime, registry: Registry, out: Path, config: RunConfig) -> Run:
    """Score ``store`` as of ``as_of`` with ``config.score.model`` and write the run folder ``out`` atomically."""
    settings = config.score
    loaded = _account_model(registry, settings.model)
    if not store.exists:
        raise StoreError(f"{store.root}: not a finwatch store (run finwatch ingest first)")
    pack = load_rules(config.features)
    features = build_account_features(store, as_of, config.features)
    scored = _score(features, pack, loaded, settings.budget)
    manifest = store.manifest_sha256()
    model_sha = loaded.metadata["files"]["model.ubj"]
    run_text = json.dumps([manifest, loaded.ref, model_sha, pack.version, as_of.isoformat(), settings.budget,
                           config.features.digest()])  # fmt: skip
    run_id = hashlib.sha256(run_text.encode()).hexdigest()[:16]
    folder = RunFolder.planned(out, as_of)
    identity = {"run_id": run_id, "model": loaded.ref, "model_sha256": model_sha, "rules_version": pack.version,
                "data_manifest_sha256": manifest, "as_of": as_of.isoformat()}  # fmt: skip
    leads = _leads(scored, features, loaded, identity, folder.first_raised(), config)
    summary = _summary(scored, features, loaded, identity, leads, store, config)
    RunFolder.write(out, leads, summary)
    return Run(run_id, out, leads, summary)


def _account_model(registry: Registry, ref: str) -> LoadedModel:
    loaded = registry.load(ref)
    if loaded.metadata["level"] != Level.ACCOUNT:
        raise ConfigError(f"{loaded.ref} scores transactions; leads are raised with an account-level model")
    return loaded


def _score(features: Features, pack: RulePack, loaded: LoadedModel, budget: float) -> _Scored:
    """Model, rules and combined scores of every account, and the top ``budget`` share by the combined score."""
    table = features.accounts
    if table.is_empty():
        raise FinwatchError(f"no account was active in the 30 days up to {features.as_of.isoformat()}")
    hits = evaluate(features, pack)
    model_score = loaded.scorer.predict_proba(matrix(table, loaded.scorer.feature_names_))[:, 1]
    weights, changes = rule_weights(loaded.metadata.get("rules"), pack.digests(), pack.severities())
    fired = dict(hits.group_by("account_id").agg(pl.col("rule_id").unique().sort()).iter_rows())
    ids = table["account_id"].to_list()
    rules_score = rule_scores(weights, [fired.get(a, []) for a in ids])
    score = combine(model_score, rules_score)
    top = rank(score, ids)[: alert_count(budget, len(ids))]
    trained_version = (loaded.metadata.get("rules") or {}).get("version")
    pack_changes = {"trained_with": trained_version, "in_use": pack.version,
                    "differs": trained_version is not None and trained_version != pack.version, **changes}  # fmt: skip
    return _Scored(table, hits, model_score, rules_score, score, top, pack_changes, weights)


def _evidence_and_cycles(
    features: Features, accounts: pl.Series
) -> tuple[dict[str, list[str]], dict[str, list[dict[str, Any]]]]:
    """Each lead's family evidence (largest first) and cycles, grouped once rather than filtered per lead."""
    leads_frame = pl.DataFrame({"account_id": accounts})
    by_account = dict(
        features.evidence.join(leads_frame, on="account_id", how="semi")
        .sort(["amount_base", "txn_id"], descending=[True, False])
        .group_by("account_id", maintain_order=True)
        .agg("txn_id")
        .iter_rows()
    )
    cycle_paths: dict[str, list[dict[str, Any]]] = {}
    if features.cycles.height:
        members = (
            features.cycles.sort("cycle_id")
            .with_columns(member=pl.col("accounts"))
            .explode("member")
            .join(leads_frame.rename({"account_id": "member"}), on="member", how="semi")
            .unique(["member", "cycle_id"], maintain_order=True)
        )
        for row in members.iter_rows(named=True):
            cycle_paths.setdefault(row["member"], []).append({"accounts": row["accounts"], "txn_ids": row["txn_ids"]})
    return by_account, cycle_paths


def _leads(
    scored: _Scored,
    features: Features,
    loaded: LoadedModel,
    identity: dict[str, Any],
    earlier: dict[str, str],
    config: RunConfig,
) -> pl.DataFrame:
    """One row per lead, in rank order, with its reasons and evidence."""
    settings = config.score
    top = scored.top.tolist()
    picked = scored.table[top]
    booleans = [f["name"] for f in loaded.metadata["features"] if f["type"] == "Boolean"]
    explained = model_reasons(loaded.scorer, matrix(picked, loaded.scorer.feature_names_), booleans=booleans,
                              top=settings.reasons)  # fmt: skip
    hit_rows = {a: g.to_dicts() for (a,), g in scored.hits.group_by("account_id")} if scored.hits.height else {}
    by_account, cycle_paths = _evidence_and_cycles(features, picked["account_id"])
    records = []
    for position, (index, account, reasons) in enumerate(zip(top, picked["account_id"], explained, strict=True)):
        account_hits = sorted(hit_rows.get(account, []), key=lambda h: h["rule_id"])
        from_rules = [t for h in account_hits for t in h["evidence_txn_ids"]]
        lid = lead_id("account", account)
        records.append({
            "lead_id": lid,
            "run_id": identity["run_id"],
            "rank": position + 1,
            "subject_kind": "account",
            "subject_id": account,
            "score": round(float(scored.combined[index]), 6),
            "model_score": round(float(scored.model[index]), 6),
            "rules_score": round(float(scored.rules[index]), 6),
            "model": identity["model"],
            "model_sha256": identity["model_sha256"],
            "rules_version": identity["rules_version"],
            "data_manifest_sha256": identity["data_manifest_sha256"],
            "as_of": identity["as_of"],
            "first_raised": earlier.get(lid, identity["as_of"]),
            "typologies": sorted({h["typology"] for h in account_hits}),
            "rules_fired": [h["rule_id"] for h in account_hits],
            "reasons": json.dumps(merge(rule_reasons(account_hits), reasons, top=settings.reasons), sort_keys=True),
            "evidence_txn_ids": list(dict.fromkeys(from_rules + by_account.get(account, [])))[
                : settings.evidence_limit
            ],
            "cycle_paths": json.dumps(cycle_paths.get(account, []), sort_keys=True),
        })  # fmt: skip
    return pl.DataFrame(records, schema_overrides=LIST_SCHEMA).select(LEAD_COLUMNS)


def _summary(
    scored: _Scored,
    features: Features,
    loaded: LoadedModel,
    identity: dict[str, Any],
    leads: pl.DataFrame,
    store: Store,
    config: RunConfig,
) -> dict[str, Any]:
    """run.json: what the run used and what it found."""
    hits = scored.hits
    return {
        **identity,
        "store": str(store.root.resolve()),
        "store_batches": features.batches,
        "config_sha256": config.digest(),
        "feature_config_sha256": config.features.digest(),
        "jurisdiction": config.jurisdiction,
        "law": config.features.law,
        "budget": config.score.budget,
        "accounts_scored": scored.table.height,
        "leads": leads.height,
        "new_leads": int((leads["first_raised"] == identity["as_of"]).sum()) if leads.height else 0,
        "rule_hits": hits.height,
        "rules_fired": dict(sorted(hits["rule_id"].value_counts().iter_rows())) if hits.height else {},
        "rules_since_training": scored.pack_changes,
        "rule_weights": {rule: round(weight, 6) for rule, weight in sorted(scored.weights.items())},
        "score_histogram": np.histogram(scored.combined, bins=10, range=(0.0, 1.0))[0].tolist(),
        "model_metrics": loaded.metadata["metrics"]["validation"]["model"],
    }
