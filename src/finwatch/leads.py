"""Scoring a store as of a time into leads an analyst can defend.

A run computes account features as of T, evaluates the rule pack, scores every account with a registered
account-level model, and raises leads for the top ``budget`` share of accounts by the combined score
(``finwatch.experiment.combine``: rules weighted by their measured precision).

Each lead carries the run id, the model name@version and its sha256, the rules version, the data manifest hash,
its score and rank, the typologies suspected, its reasons in plain language (rules that fired with their
citations, then the model's strongest contributions), the transactions that support them and the temporal cycles
the account is on. A lead's id depends only on its subject, so the same account keeps its id across runs; a lead
raised by an earlier run in the same runs folder says since when (``first_raised``).

Same store, model, rules, time and budget → the same run id and byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from finwatch._io import atomic_directory
from finwatch.dataset import Dataset, data_manifest_sha256
from finwatch.exceptions import ConfigError, FinwatchError, StoreError
from finwatch.experiment import combine, rule_scores
from finwatch.explain import merge, model_reasons, rule_reasons
from finwatch.features import FeatureConfig, build_account_features
from finwatch.registry import Registry
from finwatch.rules import evaluate, load_rules
from finwatch.store import Store

__all__ = ["LEAD_COLUMNS", "Run", "lead_id", "score_run"]

EVIDENCE_LIMIT = 50
REASONS = 5
LEAD_COLUMNS = (
    "lead_id", "run_id", "rank", "subject_kind", "subject_id", "score", "model_score", "rules_score", "model",
    "model_sha256", "rules_version", "data_manifest_sha256", "as_of", "first_raised", "typologies", "rules_fired",
    "reasons", "evidence_txn_ids", "cycle_paths",
)  # fmt: skip


@dataclass(frozen=True)
class Run:
    run_id: str
    folder: Path
    leads: pl.DataFrame
    summary: dict[str, Any]


def lead_id(subject_kind: str, subject_id: str) -> str:
    """Stable across runs: the same account is the same lead."""
    return "L-" + hashlib.sha256(f"{subject_kind}\0{subject_id}".encode()).hexdigest()[:20]


def _previous(runs_folder: Path, as_of: dt.datetime, run_id: str) -> dict[str, str]:
    """lead id → the earliest as-of time of an earlier run in the same folder that raised it."""
    first: dict[str, str] = {}
    if not runs_folder.is_dir():
        return first
    for run_json in sorted(runs_folder.glob("*/run.json")):
        try:
            info = json.loads(run_json.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if info.get("run_id") == run_id or dt.datetime.fromisoformat(info["as_of"]) >= as_of:
            continue
        leads_file = run_json.parent / "leads.parquet"
        if not leads_file.is_file():
            continue
        for lid in pl.read_parquet(leads_file, columns=["lead_id"])["lead_id"].to_list():
            if lid not in first or info["as_of"] < first[lid]:
                first[lid] = info["as_of"]
    return first


def score_run(
    store_dir: Path,
    as_of: dt.datetime,
    model_ref: str,
    registry: Registry,
    out: Path,
    *,
    budget: float = 0.01,
    config: FeatureConfig | None = None,
) -> Run:
    """Score the store as of ``as_of`` and write leads (Parquet, CSV, JSON) and ``run.json`` atomically to ``out``."""
    if not 0 < budget < 1:
        raise ConfigError(f"--budget must be a share between 0 and 100 %, not {budget}")
    config = config or FeatureConfig()
    loaded = registry.load(model_ref)
    if loaded.metadata["level"] != "account":
        raise ConfigError(f"{loaded.ref} scores transactions; leads are raised with an account-level model")
    store = Store(store_dir)
    if not store.exists:
        raise StoreError(f"{store_dir}: not a finwatch store (run finwatch ingest first)")
    pack = load_rules()
    features = build_account_features(store, as_of, config)
    table = features.accounts
    if table.is_empty():
        raise FinwatchError(f"no account was active in the 30 days up to {as_of.isoformat()}")
    hits = evaluate(features, pack)
    model_score = loaded.scorer.predict_proba(Dataset.matrix(table, loaded.scorer.feature_names_))[:, 1]
    precision = (loaded.metadata.get("rules") or {}).get("precision", {})
    fired = hits.group_by("account_id").agg(pl.col("rule_id").unique().sort())
    fired_map = dict(zip(fired["account_id"].to_list(), fired["rule_id"].to_list(), strict=True))
    ids = table["account_id"].to_list()
    rules_score = rule_scores(precision, [fired_map.get(a, []) for a in ids])
    score = combine(model_score, rules_score)
    order = np.lexsort((np.array(ids), -score))  # highest first; ties by account id
    k = max(1, math.ceil(budget * len(ids)))
    top = order[:k]

    manifest = data_manifest_sha256(store)
    model_sha = loaded.metadata["files"]["model.ubj"]
    run_text = json.dumps([manifest, loaded.ref, model_sha, pack.version, as_of.isoformat(), budget, config.digest()])
    run_id = hashlib.sha256(run_text.encode()).hexdigest()[:16]
    earlier = _previous(out.parent, as_of, run_id)

    picked = table[top.tolist()]
    booleans = [f["name"] for f in loaded.metadata["features"] if f["type"] == "Boolean"]
    explained = model_reasons(loaded.scorer, Dataset.matrix(picked, loaded.scorer.feature_names_),
                              booleans=booleans, top=REASONS)  # fmt: skip
    hit_rows = {a: g.to_dicts() for (a,), g in hits.group_by("account_id")} if hits.height else {}
    # each lead's family evidence (largest first) and cycles, grouped once rather than filtered per lead
    leads_frame = pl.DataFrame({"account_id": picked["account_id"]})
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
    records = []
    for rank, (index, account, reasons) in enumerate(zip(top.tolist(), picked["account_id"], explained, strict=True)):
        account_hits = sorted(hit_rows.get(account, []), key=lambda h: h["rule_id"])
        from_rules = [t for h in account_hits for t in h["evidence_txn_ids"]]
        evidence_ids = list(dict.fromkeys(from_rules + by_account.get(account, [])))[:EVIDENCE_LIMIT]
        paths = cycle_paths.get(account, [])
        lid = lead_id("account", account)
        records.append({
            "lead_id": lid,
            "run_id": run_id,
            "rank": rank + 1,
            "subject_kind": "account",
            "subject_id": account,
            "score": round(float(score[index]), 6),
            "model_score": round(float(model_score[index]), 6),
            "rules_score": round(float(rules_score[index]), 6),
            "model": loaded.ref,
            "model_sha256": model_sha,
            "rules_version": pack.version,
            "data_manifest_sha256": manifest,
            "as_of": as_of.isoformat(),
            "first_raised": earlier.get(lid, as_of.isoformat()),
            "typologies": sorted({h["typology"] for h in account_hits}),
            "rules_fired": [h["rule_id"] for h in account_hits],
            "reasons": json.dumps(merge(rule_reasons(account_hits), reasons, top=REASONS), sort_keys=True),
            "evidence_txn_ids": evidence_ids,
            "cycle_paths": json.dumps(paths, sort_keys=True),
        })  # fmt: skip
    leads = pl.DataFrame(records, schema_overrides={"typologies": pl.List(pl.String), "rules_fired": pl.List(pl.String),
                                                    "evidence_txn_ids": pl.List(pl.String)})  # fmt: skip
    summary = {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "model": loaded.ref,
        "model_sha256": model_sha,
        "rules_version": pack.version,
        "data_manifest_sha256": manifest,
        "store": str(store_dir),
        "store_batches": features.batches,
        "feature_config_sha256": config.digest(),
        "budget": budget,
        "accounts_scored": len(ids),
        "leads": leads.height,
        "new_leads": int(sum(r["first_raised"] == as_of.isoformat() for r in records)),
        "rule_hits": hits.height,
        "rules_fired": dict(sorted(hits["rule_id"].value_counts().iter_rows())) if hits.height else {},
        "score_histogram": np.histogram(score, bins=10, range=(0.0, 1.0))[0].tolist(),
        "model_metrics": loaded.metadata["metrics"]["validation"]["model"],
    }
    with atomic_directory(out, marker="run.json") as staging:
        leads.write_parquet(staging / "leads.parquet")
        flat = leads.with_columns(
            typologies=pl.col("typologies").list.join(";"),
            rules_fired=pl.col("rules_fired").list.join(";"),
            evidence_txn_ids=pl.col("evidence_txn_ids").list.join(";"),
            reasons=pl.col("reasons").map_elements(
                lambda text: " | ".join(r["text"] for r in json.loads(text)), return_dtype=pl.String
            ),
        )
        flat.write_csv(staging / "leads.csv")
        (staging / "leads.json").write_text(
            json.dumps([{**r, "reasons": json.loads(r["reasons"]), "cycle_paths": json.loads(r["cycle_paths"])}
                        for r in records], indent=2, sort_keys=True) + "\n", encoding="utf-8")  # fmt: skip
        (staging / "run.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return Run(run_id, out, leads, summary)
