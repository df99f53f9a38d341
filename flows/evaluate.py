"""Prefect flow: evaluate a registered model on a part of a store and write the metrics as JSON.

    python flows/evaluate.py --store DIR --model finwatch@latest --json eval.json [--split test]

Thin wiring around ``finwatch.experiment.evaluate_model``; the artifact holds the headline metrics only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from finwatch._io import atomic_write_text
from finwatch.config import RunConfig, load_config
from finwatch.experiment import evaluate_model
from finwatch.registry import Registry
from finwatch.store import Store


class EvaluateParameters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str
    model: str
    json_out: str
    split: str = "test"
    config: RunConfig = RunConfig()


@task(name="evaluate")
def evaluate_task(parameters: EvaluateParameters) -> dict[str, Any]:
    config = parameters.config
    result = evaluate_model(Store(Path(parameters.store)), parameters.model, Registry(config.models), config.features,
                            split=parameters.split)  # fmt: skip
    atomic_write_text(Path(parameters.json_out), json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return {k: result[k] for k in ("model", "f1", "pr_auc", "roc_auc", "threshold", "n_test", "n_test_positive")}


@flow(name="finwatch-evaluate")
def evaluate_flow(parameters: EvaluateParameters) -> dict[str, Any]:
    r = evaluate_task(parameters)
    create_markdown_artifact(
        key="evaluate-summary",
        markdown="| model | rows | positive | PR-AUC | ROC-AUC | F1 |\n|---|---|---|---|---|---|\n"
        f"| {r['model']} | {r['n_test']:,} | {r['n_test_positive']:,} | {r['pr_auc']:.4f} | "
        f"{r['roc_auc'] if r['roc_auc'] is None else round(r['roc_auc'], 4)} | {r['f1'] or 0:.4f} |",
        description=f"{r['model']} on the {parameters.split} part",
    )
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--json", dest="json_out", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--models")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--jurisdiction")
    args = parser.parse_args(argv)
    config = load_config(args.config, {"jurisdiction": args.jurisdiction, "models": args.models}).config
    print(evaluate_flow(EvaluateParameters(store=args.store, model=args.model, json_out=args.json_out,
                                           split=args.split, config=config)))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
