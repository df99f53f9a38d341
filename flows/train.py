"""Prefect flow: train a model on a store's labelled data and register it as a new version.

    python flows/train.py --store DIR --name finwatch [--level account] [--promote champion]

The options, units and exit codes are those of ``finwatch train``, plus --promote to point an alias at the new
version. Thin wiring around ``finwatch.experiment.train_model``; the artifact holds the version and aggregate
metrics. Training on a large store takes minutes (see README).
"""

import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from finwatch.config import RunConfig, load_config, parse_as_of, share
from finwatch.config import fractions as parse_fractions
from finwatch.exceptions import ConfigError
from finwatch.experiment import train_model
from finwatch.flowrun import command, finwatch_flow, finwatch_task, summary_artifact
from finwatch.registry import Registry
from finwatch.store import Store


@finwatch_task("train and register")
def train_task(store: str, name: str, promote: str | None, config: RunConfig) -> dict[str, Any]:
    registry = Registry(config.models)
    loaded = train_model(Store(Path(store)), name, config, registry)
    if promote:
        registry.promote(loaded.ref, promote)
    v = loaded.metadata["metrics"]["validation"]["model"]
    data = loaded.metadata["training_data"]
    return {"model": loaded.ref, "level": loaded.metadata["level"], "rows": data["rows"], "positive": data["positive"],
            "pr_auc": v["pr_auc"], "f1": v["f1"], "threshold": v["threshold"], "promoted": promote}  # fmt: skip


@finwatch_flow("finwatch-train")
def train_flow(
    store: Annotated[str, Field(description="Store folder with transactions and labels.")],
    name: Annotated[str, Field(description="Model name in the registry; a new version is added.")],
    level: Annotated[str | None, Field(description="transaction (default) or account.")] = None,
    split: Annotated[str | None, Field(description="temporal (whole days / as-of times in order).")] = None,
    fractions: Annotated[str | None, Field(description="Train, validation, test shares (0.6,0.2,0.2).")] = None,
    step_hours: Annotated[int | None, Field(description="Account level: hours between as-of times (72).")] = None,
    as_of: Annotated[str | None, Field(description="Use data up to this time (default: all).")] = None,
    feature_set: Annotated[str | None, Field(description="Feature set (default: <level>_v1).")] = None,
    seed: Annotated[int | None, Field(description="Random seed; same data and seed give the same model.")] = None,
    alert_budget: Annotated[str | None, Field(description="Threshold alerting this share, e.g. 1%.")] = None,
    rounds: Annotated[int | None, Field(description="Maximum boosting rounds (early stopping decides).")] = None,
    promote: Annotated[str | None, Field(description="Point this alias (champion or challenger) at it.")] = None,
    models: Annotated[str | None, Field(description="Model registry folder (default ./models).")] = None,
    config: Annotated[str | None, Field(description="Configuration file (default ./finwatch.toml).")] = None,
    jurisdiction: Annotated[str | None, Field(description="Preset of reporting law: us, ca, au or eu.")] = None,
) -> dict[str, Any]:
    if level is not None and level not in ("account", "transaction"):
        raise ConfigError(f"--level {level!r}: choose account or transaction")
    if promote is not None and promote not in ("champion", "challenger"):
        raise ConfigError(f"--promote {promote!r}: choose champion or challenger")
    settings = load_config(Path(config) if config else None, {
        "jurisdiction": jurisdiction, "models": models, "train.level": level, "train.split": split,
        "train.fractions": parse_fractions(fractions), "train.step_hours": step_hours,
        "train.as_of": parse_as_of(as_of) if as_of else None, "train.feature_set": feature_set, "train.seed": seed,
        "train.alert_budget": share(alert_budget, "--alert-budget"), "train.model.params.n_estimators": rounds,
    }).config  # fmt: skip
    result = train_task(store, name, promote, settings)
    summary_artifact("train-summary", {"model": result["model"], "rows": result["rows"],
                                       "positive": result["positive"], "validation PR-AUC": f"{result['pr_auc']:.4f}",
                                       "validation F1": f"{result['f1']:.4f}"}, "a new model version")  # fmt: skip
    return result


def summary(result: dict[str, Any]) -> list[str]:
    promoted = f", promoted to {result['promoted']}" if result["promoted"] else ""
    return [f"trained {result['model']} on {result['rows']:,} {result['level']} rows ({result['positive']:,} "
            f"positive): validation PR-AUC {result['pr_auc']:.4f}, F1 {result['f1']:.4f}{promoted}"]  # fmt: skip


if __name__ == "__main__":
    sys.exit(command(train_flow, summary))
