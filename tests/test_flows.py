"""Smoke tests of the Prefect flows: they run for real in Prefect's local mode (one API for the session)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

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
    result = flow.ingest_flow(paths=files, store=str(tmp_path / "s"))
    assert result["committed"]
    assert result["inputs"] == len(files)
    assert result["read"] == result["accepted"] + result["quarantined"]
    assert Store(tmp_path / "s").scan("transactions").collect().height == result["new"]
    again = flow.ingest_flow(paths=files, store=str(tmp_path / "s"))  # nothing new is a success, not a failure
    assert not again["committed"]
    assert again["already_ingested"] == len(files)
    assert flow.summary(again)[0].startswith(f"nothing new to ingest into {tmp_path / 's'}")


@pytest.mark.usefixtures("prefect_harness")
def test_the_ingest_flow_refuses_a_report_it_could_not_write_before_committing(tmp_path: Path) -> None:
    flow = load_flow("ingest")
    files = [str(p) for p in sorted((FIXTURES / "camt053").glob("*.xml"))]
    report = tmp_path / "missing" / "r.json"
    state = flow.ingest_flow(paths=files, store=str(tmp_path / "s"), report=str(report), return_state=True)
    assert state.is_failed()
    assert state.message == f"--report {report}: the folder {report.parent} does not exist"
    assert not (tmp_path / "s").exists()  # nothing committed


def test_io_failures_are_retried_but_bad_content_and_missing_files_are_not() -> None:
    from finwatch.flowrun import io_failure

    class State:
        def __init__(self, exc: BaseException) -> None:
            self.exc = exc

        def result(self) -> None:
            raise self.exc

    assert io_failure(None, None, State(OSError(28, "No space left on device")))
    assert not io_failure(None, None, State(FileNotFoundError(2, "No such file", "x.csv")))
    assert not io_failure(None, None, State(ValueError("bad row")))


@pytest.mark.usefixtures("prefect_harness")
def test_features_flow_writes_features_and_rule_hits(tmp_path: Path) -> None:
    import datetime as dt

    from finwatch.testing import make_store, make_transactions

    as_of = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    rows = [{"ts": as_of - dt.timedelta(hours=k), "src": None, "dst": "A", "amount": "9500.00", "channel": "cash"}
            for k in (1, 2, 3)]  # fmt: skip
    make_store(tmp_path / "s", make_transactions(rows))
    flow = load_flow("features")
    result = flow.features_flow(store=str(tmp_path / "s"), as_of="2026-02-01")
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
    result = pipeline.pipeline_flow(
        store=str(tmp_path / "store"), runs=str(tmp_path / "runs"), paths=[str(p) for p in inputs], retrain=True,
        fx=str(world / "fx_rates.csv"), models=str(tmp_path / "models"), budget="2%",
    )  # fmt: skip
    assert result["ingest"]["committed"]
    assert result["train"]["model"] == "finwatch@1"
    assert result["train"]["level"] == "account"
    score = result["score"]
    assert score["leads"] > 0
    assert Path(score["report"]).is_file()
    assert Path(score["out"]).parent == tmp_path / "runs"
    assert (Path(score["out"]) / "leads.parquet").is_file()
    lines = pipeline.summary(result)
    assert lines[0].startswith("batch ")
    assert any(line.startswith(f"{score['leads']} leads") for line in lines)


@pytest.mark.usefixtures("prefect_harness")
def test_evaluate_flow_writes_the_metrics(scored: tuple[Path, Registry], tmp_path: Path) -> None:
    store, registry = scored
    evaluate = load_flow("evaluate")
    out = tmp_path / "eval.json"
    result = evaluate.evaluate_flow(store=str(store), model="finwatch@champion", json_out=str(out),
                                    models=str(registry.root))  # fmt: skip
    assert result["n_test_positive"] > 0
    assert json.loads(out.read_text())["model"] == "finwatch@1"


@pytest.mark.usefixtures("prefect_harness")
def test_a_user_error_fails_the_run_with_the_cli_line_and_fails_the_parent(tmp_path: Path) -> None:
    score = load_flow("score")
    state = score.score_flow(store=str(tmp_path), budget="150%", return_state=True)
    assert state.is_failed()
    assert state.message == "--budget: '150%' must be more than 0 % and less than 100 %"
    pipeline = load_flow("pipeline")
    missing = tmp_path / "missing.csv"
    state = pipeline.pipeline_flow(store=str(tmp_path / "s"), runs=str(tmp_path / "r"), paths=[str(missing)],
                                   return_state=True)  # fmt: skip
    assert state.is_failed()
    assert state.message.startswith(f"{missing}: ")
    assert "nothing was written to the store" in state.message
    assert "\n" not in state.message


def _cli_options(command: str) -> set[str]:
    import typer.main

    from finwatch.cli import app

    group: Any = typer.main.get_command(app)
    return {o for p in group.commands[command].params for o in p.opts if o.startswith("--")} - {"--help"}


def _flow_options(name: str) -> set[str]:
    from finwatch.flowrun import parser_for

    module = load_flow(name)
    flow = getattr(module, f"{name}_flow")
    return {o for a in parser_for(flow)._actions for o in a.option_strings if o.startswith("--")} - {"--help", "-h"}


@pytest.mark.parametrize(("flow", "command", "extra"), [
    ("ingest", "ingest", set()), ("score", "score", set()), ("train", "train", {"--promote"}),
    ("evaluate", "evaluate", set()),
])  # fmt: skip
def test_each_flow_takes_the_options_of_its_command(flow: str, command: str, extra: set[str]) -> None:
    assert _flow_options(flow) == _cli_options(command) | extra


def test_flow_option_errors_are_one_line_with_status_2() -> None:
    from finwatch.flowrun import parser_for

    parser = parser_for(load_flow("score").score_flow)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--bogus"])
    assert exit_.value.code == 2


def test_flows_reach_prefect_only_through_finwatch_flowrun() -> None:
    """Prefect reads its settings once, on import: flows import it through the module that sets them first."""
    for path in FLOWS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "from prefect" not in text, path.name
        assert "import prefect" not in text, path.name
        assert "from __future__ import annotations" not in text, path.name  # parameter types resolve anywhere


@pytest.mark.slow
def test_a_flow_file_is_a_command_without_any_prefect_settings(tmp_path: Path) -> None:
    """``python flows/ingest.py FILE --store S``: no Makefile, no PREFECT_* variables; a rerun adds nothing."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    files = [str(p) for p in sorted((FIXTURES / "camt053").glob("*.xml"))]
    argv = [sys.executable, str(FLOWS / "ingest.py"), *files, "--store", str(tmp_path / "s")]
    first = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("batch ")
    assert " committed to " in first.stdout
    again = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"nothing new to ingest into {tmp_path / 's'}: {len(files)} input(s): 0 read, 0 accepted (0 new), "
        f"0 quarantined, {len(files)} already ingested"
    ]
    assert len(again.stderr.splitlines()) < 5, again.stderr
    bad = subprocess.run([*argv[:2], str(tmp_path / "nope.csv"), "--store", str(tmp_path / "s"), "--budget", "1%"],
                         env=env, capture_output=True, text=True, check=False, timeout=600)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "error: unrecognized arguments: --budget 1% (see 'python flows/ingest.py --help')"
    ]
