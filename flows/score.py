"""Prefect flow: score a store as of a time with the champion model and the rules, then write the report.

    python flows/score.py --store DIR --as-of 2026-02-04 --out runs/2026-02-04 [--model finwatch@champion]

Thin wiring around ``finwatch.leads.score_run`` and ``finwatch.report.build_report``; its parameters are the run
configuration's sections (``config``). Tasks pass paths; the artifact holds counts and the score distribution,
never account ids.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from finwatch.config import RunConfig, UtcTime, load_config, parse_as_of, share
from finwatch.leads import score_run
from finwatch.registry import Registry
from finwatch.report import build_report
from finwatch.runs import RunFolder
from finwatch.store import Store


class ScoreParameters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str
    as_of: UtcTime
    out: str
    config: RunConfig = RunConfig()


@task(name="score and raise leads")
def score_task(parameters: ScoreParameters) -> dict[str, Any]:
    config = parameters.config
    run = score_run(Store(Path(parameters.store)), parameters.as_of, Registry(config.models), Path(parameters.out),
                    config)  # fmt: skip
    return run.summary


@task(name="report")
def report_task(out: str) -> str:
    return str(build_report(RunFolder(Path(out))))


@flow(name="finwatch-score")
def score_flow(parameters: ScoreParameters) -> dict[str, Any]:
    summary = score_task(parameters)
    report = report_task(parameters.out)
    histogram = " ".join(str(n) for n in summary["score_histogram"])
    create_markdown_artifact(
        key="score-summary",
        markdown="| accounts scored | leads | new leads | rule hits | score histogram (10 bins) |\n"
        "|---|---|---|---|---|\n"
        f"| {summary['accounts_scored']:,} | {summary['leads']:,} | {summary['new_leads']:,} | "
        f"{summary['rule_hits']:,} | {histogram} |",
        description=f"run {summary['run_id']} as of {summary['as_of']} with {summary['model']}",
    )
    return {"run_id": summary["run_id"], "leads": summary["leads"], "new_leads": summary["new_leads"],
            "out": parameters.out, "report": report}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--as-of", required=True, help="ISO date or time, UTC when no zone is given")
    parser.add_argument("--out", required=True)
    parser.add_argument("--model")
    parser.add_argument("--budget", help="share of accounts raised as leads, e.g. 1%% (default from the config)")
    parser.add_argument("--models")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--jurisdiction")
    args = parser.parse_args(argv)
    config = load_config(
        args.config,
        {
            "jurisdiction": args.jurisdiction,
            "models": args.models,
            "score.model": args.model,
            "score.budget": share(args.budget, "--budget"),
        },
    )
    as_of = parse_as_of(args.as_of)
    print(score_flow(ScoreParameters(store=args.store, as_of=as_of, out=args.out, config=config.config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
