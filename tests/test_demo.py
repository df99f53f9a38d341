"""`make demo`'s pipeline at the default size: world → store → model → leads in the documented places."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from finwatch.demo import run_demo
from finwatch.store import Store


@pytest.mark.slow
def test_demo_leaves_leads_where_scripts_expect_them(tmp_path: Path) -> None:
    out = tmp_path / "demo-output"
    result = run_demo(out)
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
