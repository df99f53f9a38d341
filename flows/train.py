"""Prefect flow: train a model on a store's labelled data and register it as a new version.

    python flows/train.py --store DIR --name finwatch [--level account] [--models models/]

Thin wiring around ``finwatch.experiment.train_model``; the artifact holds the version and aggregate metrics.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from finwatch.experiment import TrainOptions, train_model
from finwatch.registry import Registry


class TrainParameters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str
    name: str = "finwatch"
    level: str = "account"
    models: str | None = None
    step_hours: int = 72
    seed: int = 0
    promote: str | None = None  # "champion" or "challenger": point that alias at the new version


@task(name="train and register")
def train_task(parameters: TrainParameters) -> dict[str, Any]:
    registry = Registry(Path(parameters.models) if parameters.models else None)
    options = TrainOptions(level=parameters.level, step_hours=parameters.step_hours, seed=parameters.seed)
    loaded = train_model(Path(parameters.store), parameters.name, options, registry)
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
    parser.add_argument("--level", default="account", choices=["account", "transaction"])
    parser.add_argument("--models")
    parser.add_argument("--promote", choices=["champion", "challenger"])
    args = parser.parse_args(argv)
    print(train_flow(TrainParameters(store=args.store, name=args.name, level=args.level, models=args.models,
                                     promote=args.promote)))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
