"""Leads: a scored run's leads carry versions, reasons and evidence that exists, and are reproducible."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from finwatch.dataset import end_of_data
from finwatch.exceptions import ConfigError
from finwatch.leads import lead_id
from finwatch.registry import Registry
from finwatch.store import Store
from tests.conftest import run_score


def test_leads_carry_versions_reasons_and_evidence_that_exists(scored: tuple[Path, Registry], tmp_path: Path) -> None:
    store, registry = scored
    run = run_score(store, end_of_data(Store(store)), registry, tmp_path / "runs" / "r1", budget=0.02)
    leads = run.leads
    assert leads.height == run.summary["leads"] > 0
    assert leads["rank"].to_list() == list(range(1, leads.height + 1))
    assert leads["score"].to_list() == sorted(leads["score"].to_list(), reverse=True)
    first = leads.row(0, named=True)
    assert first["model"] == "finwatch@1"
    assert len(first["model_sha256"]) == 64
    assert len(first["data_manifest_sha256"]) == 64
    assert first["rules_version"]
    assert first["lead_id"] == lead_id("account", first["subject_id"])
    stored = set(Store(store).scan("transactions").select("txn_id").collect()["txn_id"].to_list())
    for row in leads.iter_rows(named=True):
        reasons = json.loads(row["reasons"])
        assert reasons, row["subject_id"]
        assert all(r["text"] for r in reasons)
        assert all("citation" in r for r in reasons if r["source"] == "rule")
        assert set(row["evidence_txn_ids"]) <= stored  # every evidence id is a stored transaction
    with_rules = leads.filter(pl.col("rules_fired").list.len() > 0)
    assert with_rules.height > 0
    assert with_rules["evidence_txn_ids"].list.len().min() > 0  # type: ignore[operator]
    for name in ("leads.parquet", "leads.csv", "leads.json", "run.json"):
        assert (run.folder / name).is_file()
    assert len(json.loads((run.folder / "leads.json").read_text())) == leads.height


def test_a_rerun_gives_identical_files_and_a_later_run_says_since_when(
    scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    store, registry = scored
    end = end_of_data(Store(store))
    runs = tmp_path / "runs"
    earlier = run_score(store, end - dt.timedelta(days=1), registry, runs / "day1", "finwatch", budget=0.02)
    a = run_score(store, end, registry, runs / "day2", "finwatch", budget=0.02)
    files = ("leads.parquet", "leads.csv", "leads.json", "run.json")
    first_bytes = {name: (a.folder / name).read_bytes() for name in files}
    b = run_score(store, end, registry, runs / "day2", "finwatch", budget=0.02)  # the same run again, in place
    assert a.run_id == b.run_id
    for name in files:
        assert (b.folder / name).read_bytes() == first_bytes[name], name
    again = set(earlier.leads["lead_id"].to_list()) & set(a.leads["lead_id"].to_list())
    assert again, "some accounts are leads on both days"
    since = dict(zip(a.leads["lead_id"].to_list(), a.leads["first_raised"].to_list(), strict=True))
    for lid in again:
        assert since[lid] == earlier.summary["as_of"]
    assert a.summary["new_leads"] == a.leads.height - len(again)


def test_a_transaction_model_cannot_raise_account_leads(scored: tuple[Path, Registry], tmp_path: Path) -> None:
    store, registry = scored
    registry.register("tx", registry.load("finwatch").scorer, {**registry.metadata("finwatch"), "level": "transaction"},
                      "# card\n")  # fmt: skip
    with pytest.raises(ConfigError, match="account-level model"):
        run_score(store, end_of_data(Store(store)), registry, tmp_path / "run", "tx")


def test_score_command_prints_the_top_leads(scored: tuple[Path, Registry], tmp_path: Path) -> None:
    store, registry = scored
    done = subprocess.run(
        [sys.executable, "-m", "finwatch", "score", "--store", str(store), "--as-of",
         end_of_data(Store(store)).isoformat(),
         "--models", str(registry.root), "--out", str(tmp_path / "run"), "--budget", "1%"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "top leads of run" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "finwatch", "score", "--store", str(store), "--as-of", "2026-01-20",
         "--models", str(registry.root), "--out", str(tmp_path / "run2"), "--model", "nope"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no model named 'nope'" in done.stderr
    assert "Traceback" not in done.stderr
