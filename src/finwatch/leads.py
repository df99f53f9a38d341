"""Scoring a store as of a time into leads an analyst can defend.

A run computes account features as of T, evaluates the rule pack, scores every account with a registered
account-level model, and raises leads for the top ``budget`` share of accounts by the combined score
(:mod:`finwatch.scoring`: rules weighted by their measured precision, or their severity prior when new).

Each lead carries the run id, the model name@version, the sha256 of its trees (``model_sha256``) and its scoring
digest (``scoring_digest``: the trees and everything scoring reads of the model's metadata — calibration,
threshold, rule precisions, features; see :mod:`finwatch.registry`), the rules version, the data manifest hash,
its score and rank, the typologies suspected, its reasons in plain language (rules that fired with their
citations, then the model's strongest contributions), the transactions that support them and the temporal cycles
the account is on. A lead's id depends only on its subject, so the same account keeps its id across runs; a lead
raised by an earlier run in the same runs folder says since when (``first_raised``).

The run summary (run.json) says under ``notes`` which rules cannot fire because the store lacks the data they
need (:func:`finwatch.rules.unmet_needs`): a store of exports alone has no accounts table, for example.

Same store content, model, rules, configuration, time and budget → the same run id and byte-identical leads,
wherever the store and the run folder are; a change to anything scoring reads of the model gives another run id.
run.json also records the model's version digest (``model_digest``, which :mod:`finwatch.registry` checks on
loading). With a signing key configured (the registry's: ``$FINWATCH_SIGNING_KEY_FILE`` or
``$FINWATCH_SIGNING_KEY``), run.json is signed.
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
from finwatch.rules import RulePack, evaluate, load_rules, unmet_needs
from finwatch.runs import RunFolder, run_id_for
from finwatch.scoring import alert_count, combine, matrix, rank, rule_scores, rule_weights
from finwatch.store import Store

__all__ = ["LEAD_COLUMNS", "Run", "lead_id", "score_run"]

LEAD_COLUMNS = (
    "lead_id", "run_id", "rank", "subject_kind", "subject_id", "risk_score", "percentile", "score", "model_score",
    "rules_score", "holder_name", "holder_type", "institution", "total_in_base", "total_out_base",
    "suspicious_amount_base", "first_activity", "last_activity", "counterparties", "channels", "evidence_count",
    "model", "model_sha256", "scoring_digest", "rules_version", "data_manifest_sha256", "as_of", "first_raised",
    "typologies", "rules_fired", "reasons", "evidence_txn_ids", "cycle_paths",
)  # fmt: skip
LIST_SCHEMA: dict[str, Any] = {"typologies": pl.List(pl.String), "rules_fired": pl.List(pl.String),
               "evidence_txn_ids": pl.List(pl.String), "counterparties": pl.List(pl.String),
               "channels": pl.List(pl.String), "holder_name": pl.String, "holder_type": pl.String,
               "institution": pl.String, "first_activity": pl.String, "last_activity": pl.String}  # fmt: skip
#: evidence transactions kept per reason (largest first)
REASON_EVIDENCE = 20
#: counterparties named per lead (largest volume first)
COUNTERPARTIES = 5
#: the risk score's cap: 10 × log10(odds) reaches 100 at odds of 10^10 to 1
RISK_CAP = 100.0


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
    risk: np.ndarray  # 0–100: ten times the decimal logarithm of the combined score's odds, capped
    percentile: np.ndarray  # share of scored accounts with a lower combined score, in per cent


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
    run_id = run_id_for(manifest, loaded.ref, loaded.scoring_digest, pack.version, as_of.isoformat(), settings.budget,
                        config.features.digest())  # fmt: skip
    folder = RunFolder.planned(out, as_of)
    identity = {"run_id": run_id, "model": loaded.ref, "model_sha256": model_sha,
                "scoring_digest": loaded.scoring_digest, "rules_version": pack.version,
                "data_manifest_sha256": manifest, "as_of": as_of.isoformat()}  # fmt: skip
    leads = _leads(scored, features, loaded, identity, folder.first_raised(), config, store.scan("transactions"),
                   store.scan("accounts"))  # fmt: skip
    summary = _summary(scored, features, loaded, identity, leads, store, config, unmet_needs(pack, store))
    written = RunFolder.write(out, leads, summary, key=registry.key)
    return Run(run_id, out, leads, written.info)


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
    risk, percentile = _risk(model_score, rules_score, score)
    trained_version = (loaded.metadata.get("rules") or {}).get("version")
    pack_changes = {"trained_with": trained_version, "in_use": pack.version,
                    "differs": trained_version is not None and trained_version != pack.version, **changes}  # fmt: skip
    return _Scored(table, hits, model_score, rules_score, score, top, pack_changes, weights, risk, percentile)


def _risk(model: np.ndarray, rules: np.ndarray, combined: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 0–100 risk score that keeps its resolution where probabilities round to 1, and the percentile.

    The risk score is ten times the decimal logarithm of the combined score's odds (decibans: 0 at even odds, +10
    for every tenfold), capped at 0 and 100; the complement ``(1 − model)(1 − rules)`` is used as it is, so odds
    of 10^9 and 10^4 stay apart although both scores round to 1.000.
    """
    complement = (1 - model) * (1 - rules)
    with np.errstate(divide="ignore"):
        decibans = 10 * (np.log10(1 - complement) - np.log10(complement))
    risk = np.clip(np.nan_to_num(decibans, nan=0.0, posinf=RISK_CAP), 0.0, RISK_CAP)
    below = np.searchsorted(np.sort(combined), combined, side="left")
    return risk, 100 * below / max(combined.size, 1)


def _evidence_and_cycles(
    features: Features, accounts: pl.Series
) -> tuple[dict[tuple[str, str], list[str]], dict[str, list[dict[str, Any]]]]:
    """Each lead's evidence per family (largest first) and cycles, grouped once rather than filtered per lead."""
    leads_frame = pl.DataFrame({"account_id": accounts})
    by_account = {
        (account, family): ids
        for account, family, ids in features.evidence.join(leads_frame, on="account_id", how="semi")
        .sort(["amount_base", "txn_id"], descending=[True, False])
        .group_by(["account_id", "family"], maintain_order=True)
        .agg(pl.col("txn_id").unique(maintain_order=True))
        .iter_rows()
    }
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


def _activity(transactions: pl.LazyFrame, accounts: pl.Series, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Every leg of the lead accounts in (start, end]: account_id, direction, counterparty, amount, time, channel."""
    wanted = accounts.to_list()
    window = transactions.filter((pl.col("ts") > start) & (pl.col("ts") <= end))
    legs = [
        window.filter(pl.col(own).is_in(wanted)).select(
            account_id=pl.col(own), direction=pl.lit(direction), txn_id="txn_id", ts="ts", amount_base="amount_base",
            channel="channel", counterparty=pl.coalesce(pl.col(other), pl.col("counterparty_name"), pl.lit("cash")),
        )
        for own, other, direction in (("src_account", "dst_account", "out"), ("dst_account", "src_account", "in"))
    ]  # fmt: skip
    return pl.concat(legs).collect().sort(["account_id", "ts", "txn_id", "direction"])


def _holders(accounts: pl.LazyFrame, wanted: pl.Series) -> dict[str, dict[str, Any]]:
    """Holder name and type and the institution of each lead account, from the store's accounts table."""
    rows = (
        accounts.filter(pl.col("account_id").is_in(wanted.to_list()))
        .select("account_id", "holder_name", "holder_type", "institution")
        .unique("account_id", keep="first", maintain_order=True)
        .collect()
    )
    return {r.pop("account_id"): r for r in rows.iter_rows(named=True)}


def _amounts(account: str, activity: pl.DataFrame, evidence: list[str]) -> dict[str, Any]:
    """Money in and out over the window, the amount the evidence moved, dates, main counterparties, channels."""
    mine = activity.filter(pl.col("account_id") == account)
    flows = dict(mine.group_by("direction").agg(pl.col("amount_base").sum()).iter_rows())
    counterparties = (
        mine.group_by("counterparty").agg(pl.col("amount_base").sum()).sort(["amount_base", "counterparty"],
                                                                           descending=[True, False])
    )  # fmt: skip
    return {
        "total_in_base": round(float(flows.get("in", 0.0)), 2),
        "total_out_base": round(float(flows.get("out", 0.0)), 2),
        "suspicious_amount_base": round(
            float(mine.filter(pl.col("txn_id").is_in(evidence)).unique("txn_id")["amount_base"].sum()), 2
        ),
        "first_activity": mine["ts"].min().isoformat() if mine.height else None,  # type: ignore[union-attr]
        "last_activity": mine["ts"].max().isoformat() if mine.height else None,  # type: ignore[union-attr]
        "counterparties": counterparties["counterparty"].head(COUNTERPARTIES).to_list(),
        "channels": sorted(set(mine["channel"].to_list())),
    }


def _leads(
    scored: _Scored,
    features: Features,
    loaded: LoadedModel,
    identity: dict[str, Any],
    earlier: dict[str, str],
    config: RunConfig,
    store_transactions: pl.LazyFrame,
    store_accounts: pl.LazyFrame,
) -> pl.DataFrame:
    """One row per lead, in rank order, with its reasons, the transactions behind each, and the case's figures."""
    settings = config.score
    top = scored.top.tolist()
    picked = scored.table[top]
    booleans = [f["name"] for f in loaded.metadata["features"] if f["type"] == "Boolean"]
    # twice as many model reasons as shown: the same measure over two windows is merged into one reason
    explained = model_reasons(loaded.scorer, matrix(picked, loaded.scorer.feature_names_), booleans=booleans,
                              top=2 * settings.reasons)  # fmt: skip
    hit_rows = {a: g.to_dicts() for (a,), g in scored.hits.group_by("account_id")} if scored.hits.height else {}
    by_family, cycle_paths = _evidence_and_cycles(features, picked["account_id"])
    activity = _activity(store_transactions, picked["account_id"], features.as_of - config.features.w_30d,
                         features.as_of)  # fmt: skip
    holders = _holders(store_accounts, picked["account_id"])
    records = []
    for position, (index, account, reasons) in enumerate(zip(top, picked["account_id"], explained, strict=True)):
        account_hits = sorted(hit_rows.get(account, []), key=lambda h: h["rule_id"])
        for reason in reasons:  # a model reason is supported by the evidence of the family computing its feature
            families = features.column_evidence.get(str(reason["feature"]), ())
            ids = [t for f in families for t in by_family.get((account, f), [])]
            reason["evidence_txn_ids"] = list(dict.fromkeys(ids))[:REASON_EVIDENCE]
        merged = merge(rule_reasons(account_hits), reasons, top=settings.reasons)
        cited = list(dict.fromkeys(t for r in merged for t in r.get("evidence_txn_ids", [])))
        evidence = cited[: settings.evidence_limit]
        lid = lead_id("account", account)
        records.append({
            "lead_id": lid,
            "run_id": identity["run_id"],
            "rank": position + 1,
            "subject_kind": "account",
            "subject_id": account,
            "risk_score": round(float(scored.risk[index]), 1),
            "percentile": round(float(scored.percentile[index]), 3),
            "score": round(float(scored.combined[index]), 6),
            "model_score": round(float(scored.model[index]), 6),
            "rules_score": round(float(scored.rules[index]), 6),
            **holders.get(account, {"holder_name": None, "holder_type": None, "institution": None}),
            **_amounts(account, activity, evidence),
            "evidence_count": len(evidence),
            "model": identity["model"],
            "model_sha256": identity["model_sha256"],
            "scoring_digest": identity["scoring_digest"],
            "rules_version": identity["rules_version"],
            "data_manifest_sha256": identity["data_manifest_sha256"],
            "as_of": identity["as_of"],
            "first_raised": earlier.get(lid, identity["as_of"]),
            "typologies": sorted({h["typology"] for h in account_hits}),
            "rules_fired": [h["rule_id"] for h in account_hits],
            "reasons": json.dumps(merged, sort_keys=True),
            "evidence_txn_ids": evidence,
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
    notes: list[str],
) -> dict[str, Any]:
    """run.json: what the run used and what it found, and ``notes``: rules the store lacks the data to fire."""
    hits = scored.hits
    return {
        **identity,
        "model_digest": loaded.digest,
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
        "notes": notes,
    }
