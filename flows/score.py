"""Prefect flow: score a store as of a time with the champion model and the rules, then write the report.

    python flows/score.py --store DIR [--as-of 2026-02-04] [--out runs/2026-02-04] [--budget 1%]

The options, units and exit codes are those of ``finwatch score``; without --as-of the store is scored as of the
midnight after its newest transaction, and without --out the run goes to ``runs/<as-of>``. Thin wiring around
``finwatch.leads.score_run`` and ``finwatch.report.build_report``. Tasks pass paths; the artifact holds counts and
the score distribution, never account ids.
"""

import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from finwatch.config import RunConfig, load_config, parse_as_of, share
from finwatch.dataset import end_of_data
from finwatch.flowrun import command, finwatch_flow, finwatch_task, summary_artifact
from finwatch.leads import score_run
from finwatch.registry import Registry
from finwatch.report import build_report
from finwatch.runs import RunFolder, run_folder_for
from finwatch.store import Store


@finwatch_task("score and raise leads")
def score_task(store: str, as_of: str, out: str, config: RunConfig) -> dict[str, Any]:
    run = score_run(Store(Path(store)), parse_as_of(as_of), Registry(config.models), Path(out), config)
    return run.summary


@finwatch_task("report")
def report_task(out: str) -> str:
    return str(build_report(RunFolder(Path(out))))


@finwatch_flow("finwatch-score")
def score_flow(
    store: Annotated[str, Field(description="Store folder written by finwatch ingest.")],
    as_of: Annotated[str | None, Field(description="Point in time (ISO; default: end of the data).")] = None,
    out: Annotated[str | None, Field(description="Run folder (default runs/<as-of>).")] = None,
    model: Annotated[str | None, Field(description="An account-level model (default finwatch@champion).")] = None,
    budget: Annotated[str | None, Field(description="Share of scored accounts raised as leads, e.g. 1%.")] = None,
    models: Annotated[str | None, Field(description="Model registry folder (default ./models).")] = None,
    config: Annotated[str | None, Field(description="Configuration file (default ./finwatch.toml).")] = None,
    jurisdiction: Annotated[str | None, Field(description="Preset of reporting law: us, ca, au or eu.")] = None,
) -> dict[str, Any]:
    settings = load_config(Path(config) if config else None, {
        "jurisdiction": jurisdiction, "models": models, "score.model": model,
        "score.budget": share(budget, "--budget")}).config  # fmt: skip
    moment = parse_as_of(as_of) if as_of else end_of_data(Store(Path(store)))
    target = out or str(run_folder_for(moment))
    summary = score_task(store, moment.isoformat(), target, settings)
    report = report_task(target)
    histogram = " ".join(map(str, summary["score_histogram"]))
    summary_artifact(
        "score-summary",
        {"accounts scored": summary["accounts_scored"], "leads": summary["leads"], "new leads": summary["new_leads"],
         "rule hits": summary["rule_hits"], "score histogram (10 bins)": histogram},
        f"run {summary['run_id']} as of {summary['as_of']} with {summary['model']}",
    )  # fmt: skip
    return {"run_id": summary["run_id"], "as_of": summary["as_of"], "model": summary["model"],
            "leads": summary["leads"], "new_leads": summary["new_leads"], "out": target, "report": report,
            "notes": list(summary.get("notes", []))}  # fmt: skip


def summary(result: dict[str, Any]) -> list[str]:
    return [f"{result['leads']} leads ({result['new_leads']} new) as of {result['as_of']} with {result['model']} "
            f"→ {result['out']} (report {result['report']})", *(f"note: {n}" for n in result["notes"])]  # fmt: skip


if __name__ == "__main__":
    sys.exit(command(score_flow, summary))
