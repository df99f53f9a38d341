"""Prefect flow: evaluate a registered model on a part of a store and write the metrics as JSON.

    python flows/evaluate.py --store DIR --model finwatch@latest [--json eval.json] [--split test]

The options, units and exit codes are those of ``finwatch evaluate``. Thin wiring around
``finwatch.experiment.evaluate_model``; the artifact holds the headline metrics only.
"""

import json
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from finwatch._io import atomic_write_text
from finwatch.config import Level, RunConfig, load_config, parse_as_of
from finwatch.exceptions import ConfigError
from finwatch.experiment import evaluate_model
from finwatch.flowrun import command, finwatch_flow, finwatch_task, summary_artifact
from finwatch.registry import Registry
from finwatch.store import Store

HEADLINE = ("model", "f1", "pr_auc", "roc_auc", "threshold", "n_test", "n_test_positive")


@finwatch_task("evaluate")
def evaluate_task(store: str, model: str, split: str, level: str | None, as_of: str | None, json_out: str | None,
                  plots: str | None, config: RunConfig) -> dict[str, Any]:  # fmt: skip
    result = evaluate_model(Store(Path(store)), model, Registry(config.models), config.features, split=split,
                            level=Level(level) if level else None, as_of=parse_as_of(as_of) if as_of else None,
                            plots=Path(plots) if plots else None)  # fmt: skip
    if json_out:
        atomic_write_text(Path(json_out), json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return {k: result[k] for k in HEADLINE}


@finwatch_flow("finwatch-evaluate")
def evaluate_flow(
    store: Annotated[str, Field(description="Store folder with transactions and labels.")],
    model: Annotated[str, Field(description="NAME, NAME@latest, NAME@champion or NAME@3.")],
    split: Annotated[str, Field(description="train, validation, test or all.")] = "test",
    level: Annotated[str | None, Field(description="Check the model scores this level.")] = None,
    as_of: Annotated[str | None, Field(description="Use data up to this time (default: all).")] = None,
    json_out: Annotated[str | None, Field(description="Write every metric as JSON here.")] = None,
    plots: Annotated[str | None, Field(description="Folder for PNG plots (PR curve, recall per typology).")] = None,
    models: Annotated[str | None, Field(description="Model registry folder (default ./models).")] = None,
    config: Annotated[str | None, Field(description="Configuration file (default ./finwatch.toml).")] = None,
    jurisdiction: Annotated[str | None, Field(description="Preset of reporting law: us, ca, au or eu.")] = None,
) -> dict[str, Any]:
    if level is not None and level not in ("account", "transaction"):
        raise ConfigError(f"--level {level!r}: choose account or transaction")
    settings = load_config(Path(config) if config else None, {"jurisdiction": jurisdiction, "models": models}).config
    r = evaluate_task(store, model, split, level, as_of, json_out, plots, settings)
    roc = "n/a" if r["roc_auc"] is None else f"{r['roc_auc']:.4f}"
    summary_artifact("evaluate-summary", {"model": r["model"], "rows": r["n_test"], "positive": r["n_test_positive"],
                                          "PR-AUC": f"{r['pr_auc']:.4f}", "ROC-AUC": roc, "F1": f"{r['f1'] or 0:.4f}"},
                     f"{r['model']} on the {split} part")  # fmt: skip
    return {**r, "split": split, "json": json_out}


def summary(result: dict[str, Any]) -> list[str]:
    roc = "n/a" if result["roc_auc"] is None else f"{result['roc_auc']:.4f}"
    written = f" → {result['json']}" if result["json"] else ""
    return [f"{result['model']} on the {result['split']} part ({result['n_test']:,} rows, "
            f"{result['n_test_positive']:,} positive): PR-AUC {result['pr_auc']:.4f}, ROC-AUC {roc}, "
            f"F1 {result['f1'] or 0:.4f}{written}"]  # fmt: skip


if __name__ == "__main__":
    sys.exit(command(evaluate_flow, summary))
