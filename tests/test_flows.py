"""Smoke tests of the Prefect flows: they run for real in Prefect's local mode (one API for the session)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from finwatch.config import RunConfig
from finwatch.registry import Registry
from finwatch.store import Store

FLOWS = Path(__file__).resolve().parent.parent / "flows"
FIXTURES = Path(__file__).parent / "fixtures"


def load_flow(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"flows_{name}", FLOWS / f"{name}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.usefixtures("prefect_harness")
def test_ingest_flow_stages_each_file_and_commits(tmp_path: Path) -> None:
    flow = load_flow("ingest")
    files = [str(p) for p in sorted((FIXTURES / "camt053").glob("*.xml"))]
    result = flow.ingest_flow(flow.IngestParameters(paths=files, store=str(tmp_path / "s")))
    assert result["committed"]
    assert len(result["files"]) == len(files)
    assert all(f["rows_read"] == f["accepted"] + f["quarantined"] for f in result["files"])
    assert Store(tmp_path / "s").scan("transactions").collect().height == sum(f["new"] for f in result["files"])


def test_io_failures_are_retried_but_bad_content_is_not() -> None:
    flow = load_flow("ingest")

    class State:
        def __init__(self, exc: BaseException) -> None:
            self.exc = exc

        def result(self) -> None:
            raise self.exc

    assert flow._io_failure(None, None, State(OSError("disk went away")))
    assert not flow._io_failure(None, None, State(ValueError("bad row")))


@pytest.mark.usefixtures("prefect_harness")
def test_features_flow_writes_features_and_rule_hits(tmp_path: Path) -> None:
    import datetime as dt

    from finwatch.testing import make_store, make_transactions

    as_of = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    rows = [{"ts": as_of - dt.timedelta(hours=k), "src": None, "dst": "A", "amount": "9500.00", "channel": "cash"}
            for k in (1, 2, 3)]  # fmt: skip
    make_store(tmp_path / "s", make_transactions(rows))
    flow = load_flow("features")
    result = flow.features_flow(flow.FeatureParameters(store=str(tmp_path / "s"), as_of=as_of))
    assert result["accounts"] == 1
    assert result["hits"] >= 1
    out = Path(result["out"])
    assert (out / "features" / "account_features.parquet").is_file()
    assert (out / "rules" / "rule_hits.parquet").is_file()


@pytest.mark.usefixtures("prefect_harness")
def test_pipeline_ingests_retrains_scores_and_reports(small_world_dir: tuple[object, Path], tmp_path: Path) -> None:
    _world, world = small_world_dir
    pipeline = load_flow("pipeline")
    inputs = [world / "truth" / "transactions.parquet", world / "truth" / "accounts.parquet",
              world / "labels" / "accounts.parquet", world / "labels" / "transactions.parquet"]  # fmt: skip
    config = RunConfig().updated({"ingest.fx": world / "fx_rates.csv", "models": tmp_path / "models",
                                  "score.budget": 0.02, "train.level": "account"})  # fmt: skip
    parameters = pipeline.PipelineParameters(
        store=str(tmp_path / "store"), runs=str(tmp_path / "runs"), paths=[str(p) for p in inputs], retrain=True,
        config=config,
    )  # fmt: skip
    result = pipeline.pipeline_flow(parameters)
    assert result["ingest"]["committed"]
    assert result["train"]["model"] == "finwatch@1"
    score = result["score"]
    assert score["leads"] > 0
    assert Path(score["report"]).is_file()
    assert (Path(score["out"]) / "leads.parquet").is_file()


@pytest.mark.usefixtures("prefect_harness")
def test_evaluate_flow_writes_the_metrics(scored: tuple[Path, Registry], tmp_path: Path) -> None:
    store, registry = scored
    evaluate = load_flow("evaluate")
    out = tmp_path / "eval.json"
    parameters = evaluate.EvaluateParameters(
        store=str(store),
        model="finwatch@champion",
        json_out=str(out),
        config=RunConfig(models=registry.root),
    )
    result = evaluate.evaluate_flow(parameters)
    assert result["n_test_positive"] > 0
    assert json.loads(out.read_text())["model"] == "finwatch@1"
