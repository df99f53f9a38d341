"""Prefect flow: the batch job — ingest new exports, (optionally) retrain, score with the champion, report.

    python flows/pipeline.py --store store/ --runs runs/ exports/*.xml exports/*.csv
    python flows/pipeline.py --store store/ --runs runs/ --retrain --name finwatch exports/*.csv
    python flows/pipeline.py --serve --store store/ --runs runs/ --inbox inbox/   # nightly at 02:00 UTC

Each stage is its own flow (flows/ingest.py, flows/train.py, flows/score.py), called as a subflow, so a run shows
the stages and their artifacts separately. The as-of time is the midnight after the newest stored transaction
unless given. ``--serve`` registers a deployment with a cron schedule and serves it from this process (Prefect's
`flow.serve`); with no Prefect server configured, flows run in Prefect's local ephemeral mode.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from prefect import flow
from pydantic import BaseModel, ConfigDict

from finwatch.config import RunConfig, UtcTime, load_config, parse_as_of, share
from finwatch.dataset import end_of_data
from finwatch.store import Store

HERE = Path(__file__).resolve().parent


def _stage(name: str) -> ModuleType:
    """A sibling flow module (flows/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"finwatch_flows_{name}", HERE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class PipelineParameters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str
    runs: str
    paths: list[str] = []
    inbox: str | None = None  # a folder whose files are ingested (already ingested files add nothing)
    as_of: UtcTime | None = None
    retrain: bool = False
    name: str = "finwatch"
    config: RunConfig = RunConfig()  # every stage's section: ingest FX table, registry, training, budget, …


@flow(name="finwatch-pipeline")
def pipeline_flow(parameters: PipelineParameters) -> dict[str, Any]:
    ingest, train, score = _stage("ingest"), _stage("train"), _stage("score")
    paths = list(parameters.paths)
    if parameters.inbox:
        paths += sorted(str(p) for p in Path(parameters.inbox).iterdir() if p.is_file())
    result: dict[str, Any] = {}
    config = parameters.config
    if paths:
        files = ingest.IngestParameters(paths=paths, store=parameters.store, config=config)
        result["ingest"] = ingest.ingest_flow(files)
    if parameters.retrain:
        result["train"] = train.train_flow(
            # leads are raised with an account-level champion
            train.TrainParameters(
                store=parameters.store,
                name=parameters.name,
                promote="champion",
                config=config.updated({"train.level": "account"}),
            )
        )
    as_of = parameters.as_of
    if as_of is None:
        as_of = end_of_data(Store(Path(parameters.store)))
    out = Path(parameters.runs) / f"{as_of:%Y-%m-%dT%H%M%SZ}"
    scoring = config.updated({"score.model": f"{parameters.name}@champion"})
    result["score"] = score.score_flow(
        score.ScoreParameters(store=parameters.store, as_of=as_of, out=str(out), config=scoring)
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--store", required=True)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--inbox")
    parser.add_argument("--fx")
    parser.add_argument("--as-of")
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--name", default="finwatch")
    parser.add_argument("--models")
    parser.add_argument("--budget", help="share of accounts raised as leads, e.g. 1%% (default from the config)")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--jurisdiction")
    parser.add_argument("--serve", action="store_true", help="serve a nightly deployment (cron 0 2 * * *, UTC)")
    args = parser.parse_args(argv)
    config = load_config(args.config, {"jurisdiction": args.jurisdiction, "models": args.models, "ingest.fx": args.fx,
                                       "score.budget": share(args.budget, "--budget")}).config  # fmt: skip
    as_of = parse_as_of(args.as_of) if args.as_of else None
    parameters = PipelineParameters(store=args.store, runs=args.runs, paths=args.paths, inbox=args.inbox,
                                    as_of=as_of, retrain=args.retrain, name=args.name, config=config)  # fmt: skip
    if args.serve:
        pipeline_flow.serve(
            name="finwatch-nightly", cron="0 2 * * *", parameters={"parameters": parameters.model_dump(mode="json")}
        )
        return 0
    print(pipeline_flow(parameters))
    return 0


if __name__ == "__main__":
    sys.exit(main())
