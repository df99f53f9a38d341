"""Prefect flow: account features as of a time, then the rule pack, from a store.

    python flows/features.py --store DIR --as-of 2026-02-01

Thin wiring around ``finwatch.features`` and ``finwatch.rules``: one task computes and writes the features
(with cycle evidence and audits), one evaluates the rules and writes the hits. Tasks pass paths, not data; the
summary artifact holds counts only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from finwatch._io import atomic_directory
from finwatch.config import FeatureConfig, UtcTime, load_config, parse_as_of
from finwatch.features import build_account_features, write_features
from finwatch.rules import evaluate, load_rules
from finwatch.store import Store


class FeatureParameters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str
    as_of: UtcTime
    out: str | None = None
    features: FeatureConfig = FeatureConfig()


@task(name="features and rules")
def features_task(store: Path, as_of: dt.datetime, out: Path, config: FeatureConfig) -> dict[str, Any]:
    features = build_account_features(Store(store), as_of, config)
    write_features(features, out / "features", config)
    pack = load_rules(config)
    hits = evaluate(features, pack)
    with atomic_directory(out / "rules", marker="rules.json") as staging:
        hits.write_parquet(staging / "rule_hits.parquet")
        (staging / "rules.json").write_text(
            json.dumps({"as_of": as_of.isoformat(), "rules_version": pack.version, "hits": hits.height}) + "\n"
        )
    return {"accounts": features.accounts.height, "cycles": features.cycles.height, "hits": hits.height,
            "accounts_hit": hits["account_id"].n_unique() if hits.height else 0}  # fmt: skip


@flow(name="finwatch-features")
def features_flow(parameters: FeatureParameters) -> dict[str, Any]:
    as_of = parameters.as_of
    store = Path(parameters.store)
    out = Path(parameters.out) if parameters.out else store / "runs" / as_of.strftime("%Y%m%dT%H%M%SZ")
    summary = features_task(store, as_of, out, parameters.features)
    create_markdown_artifact(
        key="features-summary",
        markdown="| accounts | cycles | rule hits | accounts hit |\n|---|---|---|---|\n"
        f"| {summary['accounts']:,} | {summary['cycles']:,} | {summary['hits']:,} | {summary['accounts_hit']:,} |",
        description=f"features and rules as of {as_of.isoformat()}",
    )
    return {**summary, "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--as-of", required=True, help="ISO date or time, UTC when no zone is given")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--jurisdiction")
    args = parser.parse_args(argv)
    config = load_config(args.config, {"jurisdiction": args.jurisdiction}).config
    print(features_flow(FeatureParameters(store=args.store, as_of=parse_as_of(args.as_of), features=config.features)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
