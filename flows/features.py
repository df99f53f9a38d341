"""Prefect flow: account features as of a time, then the rule pack, from a store.

    python flows/features.py --store DIR --as-of 2026-02-01 [--out DIR] [--rules FOLDER]

``finwatch features`` and ``finwatch rules`` in one run, with their options, units and exit codes. Thin wiring
around ``finwatch.features`` and ``finwatch.rules``: one task computes and writes the features (with cycle evidence
and audits), one evaluates the rules and writes the hits. Tasks pass paths, not data; the summary artifact holds
counts only.
"""

import json
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from finwatch._io import atomic_directory
from finwatch.config import FeatureConfig, load_config, parse_as_of
from finwatch.features import write_features
from finwatch.flowrun import command, finwatch_flow, finwatch_task, summary_artifact
from finwatch.rules import run_rules
from finwatch.store import Store


@finwatch_task("features and rules")
def features_task(store: str, as_of: str, out: str, rules: str | None, config: FeatureConfig) -> dict[str, Any]:
    target = Path(out)
    run = run_rules(Store(Path(store)), parse_as_of(as_of), config, folder=Path(rules) if rules else None)
    write_features(run.features, target / "features", config)
    with atomic_directory(target / "rules", marker="rules.json") as staging:
        run.hits.write_parquet(staging / "rule_hits.parquet")
        (staging / "rules.json").write_text(json.dumps(run.summary(), indent=2, sort_keys=True) + "\n")
    hits = run.hits
    return {"accounts": run.features.accounts.height, "cycles": run.features.cycles.height, "hits": hits.height,
            "accounts_hit": hits["account_id"].n_unique() if hits.height else 0, "notes": run.notes}  # fmt: skip


@finwatch_flow("finwatch-features")
def features_flow(
    store: Annotated[str, Field(description="Store folder written by finwatch ingest.")],
    as_of: Annotated[str, Field(description="Point in time (ISO; a bare date means 00:00 UTC).")],
    out: Annotated[str | None, Field(description="Output folder (default STORE/runs/<as-of>).")] = None,
    rules: Annotated[str | None, Field(description="Folder of rule YAML files (default: the shipped pack).")] = None,
    config: Annotated[str | None, Field(description="Configuration file (default ./finwatch.toml).")] = None,
    jurisdiction: Annotated[str | None, Field(description="Preset of reporting law: us, ca, au or eu.")] = None,
) -> dict[str, Any]:
    settings = load_config(Path(config) if config else None, {"jurisdiction": jurisdiction}).config
    moment = parse_as_of(as_of)
    target = out or str(Path(store) / "runs" / moment.strftime("%Y%m%dT%H%M%SZ"))
    summary = features_task(store, moment.isoformat(), target, rules, settings.features)
    summary_artifact("features-summary", {"accounts": summary["accounts"], "cycles": summary["cycles"],
                                          "rule hits": summary["hits"], "accounts hit": summary["accounts_hit"]},
                     f"features and rules as of {moment.isoformat()}")  # fmt: skip
    return {**summary, "as_of": moment.isoformat(), "out": target}


def summary(result: dict[str, Any]) -> list[str]:
    return [f"{result['accounts']:,} accounts, {result['cycles']:,} cycles, {result['hits']:,} rule hits on "
            f"{result['accounts_hit']:,} accounts as of {result['as_of']} → {result['out']}",
            *(f"note: {n}" for n in result["notes"])]  # fmt: skip


if __name__ == "__main__":
    sys.exit(command(features_flow, summary))
