"""Prefect flow: train a model on a store's labelled data and register it as a new version.

    python flows/train.py --store DIR --name finwatch [--level account] [--config finwatch.toml]

Thin wiring around ``finwatch.experiment.train_model``; its parameters are the run configuration's sections
(``config``: the registry, ``[train]`` and ``[features]``). The artifact holds the version and aggregate metrics.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from finwatch.config import RunConfig, load_config
from finwatch.experiment import train_model
from finwatch.registry import Registry
from finwatch.store import Store


class TrainParameters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str
    name: str = "finwatch"
    promote: str | None = None  # "champion" or "challenger": point that alias at the new version
    config: RunConfig = RunConfig()


@task(name="train and register")
def train_task(parameters: TrainParameters) -> dict[str, Any]:
    registry = Registry(parameters.config.models)
    loaded = train_model(Store(Path(parameters.store)), parameters.name, parameters.config, registry)
    if parameters.promote:
        registry.promote(loaded.ref, parameters.promote)
    v = loaded.metadata["metrics"]["validation"]["model"]
    data = loaded.metadata["training_data"]
    return {"model": loaded.ref, "rows": data["rows"], "positive": data["positive"], "pr_auc": v["pr_auc"],
            "f1": v["f1"], "threshold": v["threshold"]}  # fmt: skip


@flow(name="finwatch-train")
def train_flow(parameters: TrainParameters) -> dict[str, Any]:
    result = train_task(parameters)
    create_markdown_artifact(
        key="train-summary",
        markdown="| model | rows | positive | validation PR-AUC | validation F1 |\n|---|---|---|---|---|\n"
        f"| {result['model']} | {result['rows']:,} | {result['positive']:,} | {result['pr_auc']:.4f} | "
        f"{result['f1']:.4f} |",
        description="a new model version",
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--name", default="finwatch")
    parser.add_argument("--level", choices=["account", "transaction"], default="account")
    parser.add_argument("--models")
    parser.add_argument("--promote", choices=["champion", "challenger"])
    parser.add_argument("--config", type=Path)
    parser.add_argument("--jurisdiction")
    args = parser.parse_args(argv)
    config = load_config(args.config, {"jurisdiction": args.jurisdiction, "models": args.models,
                                       "train.level": args.level}).config  # fmt: skip
    print(train_flow(TrainParameters(store=args.store, name=args.name, promote=args.promote, config=config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
