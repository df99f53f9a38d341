"""`make demo`'s pipeline at the default size: world → store → model → leads in the documented places."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from finwatch.config import RunConfig
from finwatch.demo import DemoResult, run_demo
from finwatch.store import Store
from finwatch.synth import WorldConfig


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoResult]:
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    return out, run_demo(out)


@pytest.mark.slow
def test_demo_leaves_leads_where_scripts_expect_them(demo: tuple[Path, DemoResult]) -> None:
    out, result = demo
    leads = pl.read_parquet(out / "leads.parquet")
    assert leads.height == result.run.summary["leads"] > 0
    assert pl.read_csv(out / "leads.csv").height == leads.height
    assert json.loads((result.run.folder / "run.json").read_text())["model"] == "finwatch@1"
    stored = set(Store(out / "store").scan("transactions").select("txn_id").collect()["txn_id"].to_list())
    assert set(leads["evidence_txn_ids"].explode().drop_nulls().to_list()) <= stored
    # most leads are accounts the ground truth puts in a pattern
    truth = pl.read_parquet(out / "world" / "labels" / "accounts.parquet").filter(pl.col("label"))
    hit = leads["subject_id"].is_in(truth["subject_id"].to_list()).mean()
    assert hit is not None
    assert hit > 0.5


@pytest.mark.slow
def test_the_demo_in_another_folder_gives_the_same_leads_and_run_id(
    demo: tuple[Path, DemoResult], tmp_path: Path
) -> None:
    """Nothing a run records depends on where it ran: the data manifest hash is computed from content."""
    out, first = demo
    other = tmp_path / "elsewhere" / "b"
    second = run_demo(other)
    assert first.run.run_id == second.run.run_id
    for name in ("leads.csv", "leads.parquet"):
        assert (out / name).read_bytes() == (other / name).read_bytes(), name


def test_the_demo_says_when_each_stage_starts_and_ends_and_reports_steps_within(tmp_path: Path) -> None:
    """What `finwatch demo` prints as it goes (also when piped): a line per stage start and end, and the steps."""
    said: list[str] = []
    steps: list[tuple[int, int, str]] = []
    config = RunConfig().updated({"train.model.params": {"n_estimators": 30}})
    out = tmp_path / "demo"
    run_demo(out, 3, step=said.append, config=config, progress=lambda *step: steps.append(step),
             world=WorldConfig(seed=3, accounts=1_500, days=28))  # fmt: skip
    stages = ["synth", "ingest", "train", "score", "report"]
    assert [line.partition(":")[0] for line in said] == [s for s in stages for _ in range(2)]
    assert all(re.fullmatch(r"[a-z]+: done in \d+\.\d s", line) for line in said[1::2]), said
    assert said[0] == "synth: generating a world of 1,500 accounts over 28 days"
    features = [(done, total) for done, total, what in steps if what.startswith("train: account features as of ")]
    assert features
    assert features == [(i, features[0][1]) for i in range(features[0][1])]
    assert any(what.startswith("ingest: ") for _done, _total, what in steps)
    assert (out / "leads.csv").is_file()
    assert (out / "report.html").is_file()
