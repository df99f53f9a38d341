"""Prefect flow: the batch job — ingest new exports, (optionally) retrain, score with the champion, report.

    python flows/pipeline.py --store store/ --runs runs/ exports/*.xml exports/*.csv
    python flows/pipeline.py --store store/ --runs runs/ --retrain --name finwatch exports/*.csv
    python flows/pipeline.py --serve --store store/ --runs runs/ --inbox inbox/   # nightly at 02:00 UTC, this machine

Each stage is its own flow (flows/ingest.py, flows/train.py, flows/score.py), called as a subflow, so a run shows
the stages and their artifacts separately; a stage that fails fails the run with its one-line error. The as-of
time is the midnight after the newest stored transaction unless given; the run goes to ``<runs>/<as-of>``.
``--serve`` registers the deployment ``finwatch-pipeline/finwatch-nightly-served`` (the other options are its
parameters) and runs it from this process on its schedule (Prefect's ``flow.serve``; it needs a Prefect server:
``make server``). For a work pool and workers, use ``finwatch-nightly`` of ``prefect.yaml`` (docs/operations.md).
"""

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

from pydantic import Field

from finwatch.config import parse_as_of
from finwatch.dataset import end_of_data
from finwatch.exceptions import ConfigError
from finwatch.flowrun import command, finwatch_flow, parser_for
from finwatch.runs import run_folder_for
from finwatch.store import Store

HERE = Path(__file__).resolve().parent
NIGHTLY = "0 2 * * *"  # UTC
SERVED = "finwatch-nightly-served"  # not prefect.yaml's finwatch-nightly, which a worker of the pool runs


def _stage(name: str) -> ModuleType:
    """A sibling flow module (flows/ is a folder of scripts, not a package)."""
    module_name = f"finwatch_flows_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, HERE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@finwatch_flow("finwatch-pipeline")
def pipeline_flow(
    store: Annotated[str, Field(description="Store folder (created on first use).")],
    runs: Annotated[str, Field(description="Folder of runs; each run goes to <runs>/<as-of>.")],
    paths: Annotated[list[str], Field(description="Export files to ingest first.")] = [],  # noqa: B006
    inbox: Annotated[
        str | None, Field(description="A folder whose files are ingested (known ones add nothing).")
    ] = None,
    as_of: Annotated[str | None, Field(description="Point in time (ISO; default: end of the data).")] = None,
    retrain: Annotated[bool, Field(description="Train an account-level model and promote it to champion.")] = False,
    name: Annotated[str, Field(description="Model name in the registry.")] = "finwatch",
    fx: Annotated[str | None, Field(description="FX table CSV for the exports ingested.")] = None,
    budget: Annotated[str | None, Field(description="Share of scored accounts raised as leads, e.g. 1%.")] = None,
    models: Annotated[str | None, Field(description="Model registry folder (default ./models).")] = None,
    config: Annotated[str | None, Field(description="Configuration file (default ./finwatch.toml).")] = None,
    jurisdiction: Annotated[str | None, Field(description="Preset of reporting law: us, ca, au or eu.")] = None,
) -> dict[str, Any]:
    ingest, train, score = _stage("ingest"), _stage("train"), _stage("score")
    files = list(paths)
    if inbox:
        folder = Path(inbox)
        if not folder.is_dir():
            raise ConfigError(f"--inbox {inbox}: no such folder")
        files += sorted(str(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    common = {"config": config, "jurisdiction": jurisdiction}
    result: dict[str, Any] = {"ingest": None, "train": None}
    if files:
        result["ingest"] = ingest.ingest_flow(paths=files, store=store, fx=fx, **common)
    if retrain:  # leads are raised with an account-level champion
        result["train"] = train.train_flow(store=store, name=name, level="account", promote="champion",
                                           models=models, **common)  # fmt: skip
    moment = parse_as_of(as_of) if as_of else end_of_data(Store(Path(store)))
    out = str(run_folder_for(moment, Path(runs)))
    result["score"] = score.score_flow(store=store, as_of=moment.isoformat(), out=out,
                                       model=f"{name}@champion", budget=budget, models=models, **common)  # fmt: skip
    return result


def summary(result: dict[str, Any]) -> list[str]:
    lines = []
    if result["ingest"] is not None:
        lines += _stage("ingest").summary(result["ingest"])
    if result["train"] is not None:
        lines += _stage("train").summary(result["train"])
    return lines + _stage("score").summary(result["score"])


def serve(argv: list[str]) -> int:
    """``--serve``: the nightly deployment served from this process (one machine, no work pool)."""
    arguments = vars(parser_for(pipeline_flow).parse_args(argv))
    if not os.environ.get("PREFECT_API_URL"):  # a local ephemeral API schedules nothing
        print("error: --serve needs a Prefect server to schedule the nightly runs: start one with `make server` and "
              "export the PREFECT_API_URL it prints", file=sys.stderr)  # fmt: skip
        return 2
    pipeline_flow.serve(name=SERVED, cron=NIGHTLY, parameters=arguments, tags=["finwatch", "nightly"])
    return 0


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--serve" in argv:
        sys.exit(serve([a for a in argv if a != "--serve"]))
    sys.exit(command(pipeline_flow, summary))
