"""`make demo`'s pipeline at the default size: world → store → model → leads in the documented places."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from finwatch.demo import DemoResult, run_demo
from finwatch.store import Store


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
