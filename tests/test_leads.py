"""Leads: a scored run's leads carry versions, reasons and evidence that exists, and are reproducible."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from finwatch.dataset import end_of_data
from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.explain import measure
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


def finwatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "finwatch", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, check=False)  # fmt: skip


def test_report_and_export_work_on_a_run_from_any_working_directory(
    scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    store, registry = scored
    root = store.parent  # score with paths relative to the store's parent folder, as a user in that folder would
    as_of = end_of_data(Store(store)).isoformat()
    out = tmp_path / "runs" / "r1"
    done = finwatch("score", "--store", store.name, "--models", registry.root.name, "--as-of", as_of, "--out", str(out),
                    "--budget", "2%", cwd=root)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "run.json").read_text())["store"] == str(store.resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = finwatch("report", str(out), cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    fixtures = Path(__file__).parent / "fixtures" / "goaml"
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text((Path(__file__).parents[1] / "features" / "goaml" / "mapping.example.yaml").read_text())
    done = finwatch("export", "goaml", "--run", str(out), "--xsd", str(fixtures / "goAMLSchema-5.0.1.xsd"),
                    "--mapping", str(mapping), "--allow-invalid", cwd=elsewhere)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "drafts," in done.stdout
    cases = pl.read_csv(out / "leads.csv", infer_schema=False)  # the case list names each lead's draft
    assert cases["goaml_draft"].drop_nulls().len() == cases.height
    assert all((out / path).is_file() for path in cases["goaml_draft"].to_list())
    assert cases["fincen_sar"].null_count() == cases.height  # not exported


def test_a_moved_store_is_given_with_store_and_a_foreign_one_is_refused(
    scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    import shutil

    from finwatch.report import build_report
    from finwatch.runs import RunFolder
    from finwatch.testing import make_store, make_transactions

    store, registry = scored
    run = run_score(store, end_of_data(Store(store)), registry, tmp_path / "runs" / "r1", budget=0.02)
    moved = tmp_path / "moved-store"
    shutil.copytree(store, moved)
    folder = RunFolder(run.folder)
    assert build_report(folder, moved).is_file()
    other = make_store(tmp_path / "other", make_transactions([{"ts": "2026-01-05", "src": "A", "dst": "B",
                                                               "amount": "1"}]))  # fmt: skip
    with pytest.raises(FinwatchError, match="does not hold the data run"):
        build_report(folder, other.root)


def test_runs_of_the_same_data_in_other_folders_are_identical(
    small_world_dir: tuple[object, Path], tmp_path: Path
) -> None:
    """The run id and leads depend on the data's content, not on where the exports, the store or the run are."""
    import shutil

    from finwatch.config import RunConfig
    from finwatch.experiment import train_model
    from finwatch.ingest import ingest, ingest_options

    _world, world = small_world_dir
    outputs = []
    for place in ("a", "b"):
        copy = tmp_path / place / "world"
        shutil.copytree(world / "truth", copy / "truth")
        shutil.copytree(world / "labels", copy / "labels")
        shutil.copy(world / "fx_rates.csv", copy / "fx_rates.csv")
        config = RunConfig().updated({"ingest.fx": copy / "fx_rates.csv", "train.level": "account",
                                      "train.step_hours": 48, "train.model.params": {"n_estimators": 30},
                                      "score.budget": 0.02})  # fmt: skip
        inputs = [copy / "truth" / "transactions.parquet", copy / "truth" / "accounts.parquet",
                  copy / "labels" / "accounts.parquet", copy / "labels" / "transactions.parquet"]  # fmt: skip
        store = Store(tmp_path / place / "store")
        assert ingest(inputs, store.root, ingest_options(config)).committed
        registry = Registry(tmp_path / place / "models")
        registry.promote(train_model(store, "finwatch", config, registry).ref, "champion")
        outputs.append(
            run_score(store.root, end_of_data(store), registry, tmp_path / place / "runs" / "r", budget=0.02)
        )
    a, b = outputs
    assert a.run_id == b.run_id
    assert a.summary["data_manifest_sha256"] == b.summary["data_manifest_sha256"]
    assert (a.folder / "leads.csv").read_bytes() == (b.folder / "leads.csv").read_bytes()


def test_a_rule_added_after_training_is_reported_and_weighs_its_severity_prior(
    scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    import shutil

    import yaml

    from finwatch._paths import reference_root
    from finwatch.config import RunConfig
    from finwatch.leads import score_run
    from finwatch.scoring import SEVERITY_PRIOR

    store, registry = scored
    catalogue = tmp_path / "features"
    shutil.copytree(reference_root(), catalogue)
    rule = {"id": "FW-TEST-001", "version": 1, "typology": "structuring", "severity": "high",
            "description": "Any cash deposit in the last 30 days.", "condition": "count_cash_near_threshold_30d >= 1",
            "evidence": "structuring", "citation": "a test rule"}  # fmt: skip
    (catalogue / "rules" / "zz_test.yaml").write_text(yaml.safe_dump([rule]))
    config = RunConfig().updated({"features.reference_dir": catalogue, "score.budget": 0.02})
    run = score_run(Store(store), end_of_data(Store(store)), registry, tmp_path / "run", config)
    changes = run.summary["rules_since_training"]
    assert changes["differs"]
    assert changes["new"] == ["FW-TEST-001"]
    assert run.summary["rules_fired"]["FW-TEST-001"] > 0
    assert run.summary["rule_weights"]["FW-TEST-001"] == SEVERITY_PRIOR["high"]
    fired = run.leads.filter(pl.col("rules_fired").list.contains("FW-TEST-001"))
    assert (fired["rules_score"] >= SEVERITY_PRIOR["high"]).all()
    report = json.loads((run.folder / "run.json").read_text())
    assert report["rules_since_training"]["new"] == ["FW-TEST-001"]


def test_run_json_notes_the_rules_a_store_of_exports_lacks_the_data_for(
    scored: tuple[Path, Registry], small_world_dir: tuple[object, Path], tmp_path: Path
) -> None:
    from finwatch.ingest import IngestOptions, ingest

    store, registry = scored
    _world, world = small_world_dir
    exports = tmp_path / "exports"  # the same transactions, without the accounts table
    options = IngestOptions(fx=world / "fx_rates.csv")
    assert ingest([world / "truth" / "transactions.parquet"], exports, options).committed
    run = run_score(exports, end_of_data(Store(exports)), registry, tmp_path / "run", budget=0.02)
    lacking = [n for n in run.summary["notes"] if n.startswith(("FW-SHL-001 ", "FW-HT-004 "))]
    assert [n.split(" cannot fire: ")[0] for n in lacking] == ["FW-SHL-001 (shell circulation)",
                                                               "FW-HT-004 (labor trafficking)"]  # fmt: skip
    assert all("the store has no accounts table" in n for n in lacking)
    assert json.loads((run.folder / "run.json").read_text())["notes"] == run.summary["notes"]
    full = run_score(store, end_of_data(Store(store)), registry, tmp_path / "full", budget=0.02)
    assert not [n for n in full.summary["notes"] if n.startswith(("FW-SHL-001 ", "FW-HT-004 "))], full.summary


def test_a_half_written_run_is_not_an_earlier_run(scored: tuple[Path, Registry], tmp_path: Path) -> None:
    store, registry = scored
    end = end_of_data(Store(store))
    runs = tmp_path / "runs"
    killed = runs / ".day1.partial-x"  # what a run killed while publishing leaves
    first = run_score(store, end - dt.timedelta(days=1), registry, runs / "day1", budget=0.02)
    killed.mkdir()
    for name in ("run.json", "leads.parquet"):
        (killed / name).write_bytes((first.folder / name).read_bytes())
    (first.folder / "run.json").unlink()  # day1 never completed
    later = run_score(store, end, registry, runs / "day2", budget=0.02)
    assert later.summary["new_leads"] == later.leads.height


def test_only_published_runs_count_as_earlier_runs_and_leftovers_are_removed(
    scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    from finwatch.runs import RunFolder

    store, registry = scored
    end = end_of_data(Store(store))
    runs = tmp_path / "runs"
    first = run_score(store, end - dt.timedelta(days=1), registry, runs / "day1", budget=0.02)
    info = json.loads((first.folder / "run.json").read_text())
    earlier = {**info, "as_of": (end - dt.timedelta(days=2)).isoformat()}
    leads = (first.folder / "leads.parquet").read_bytes()
    for name in (".day0.partial-abcd1234", "half-copied", "not-a-run"):  # none of them is a published run
        folder = runs / name
        folder.mkdir()
        (folder / "run.json").write_text(json.dumps(earlier if name != "not-a-run" else [earlier]))
        (folder / "leads.parquet").write_bytes(leads[: len(leads) // 2] if name == "half-copied" else leads)
    (first.folder / "run.json").unlink()  # day1 never completed
    assert RunFolder.planned(runs / "day2", end).earlier() == []
    later = run_score(store, end, registry, runs / "day2", budget=0.02)
    assert later.summary["new_leads"] == later.leads.height
    assert (later.leads["first_raised"] == later.summary["as_of"]).all()
    assert not (runs / ".day0.partial-abcd1234").exists()  # removed by the next write into the runs folder
    assert RunFolder(runs / "day2").previous() is None


def test_every_reason_carries_the_transactions_behind_it_and_a_lead_cites_only_those(
    scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    store, registry = scored
    run = run_score(store, end_of_data(Store(store)), registry, tmp_path / "run", budget=0.02)
    for row in run.leads.iter_rows(named=True):
        reasons = json.loads(row["reasons"])
        cited = list(dict.fromkeys(t for r in reasons for t in r.get("evidence_txn_ids", [])))
        assert row["evidence_txn_ids"] == cited[:50]
        assert row["evidence_count"] == len(row["evidence_txn_ids"])
        for reason in reasons:
            assert "evidence_txn_ids" in reason
        measures = [measure(r["feature"]) for r in reasons if r["source"] == "model"]
        assert len(measures) == len(set(measures))  # one reason per measure: windows of it are merged
    with_rules = run.leads.filter(pl.col("rules_fired").list.len() > 0)
    assert with_rules.height
    assert all(any(r["evidence_txn_ids"] for r in json.loads(x) if r["source"] == "rule")
               for x in with_rules["reasons"].to_list())  # fmt: skip


def test_the_risk_score_separates_leads_whose_scores_round_alike(scored: tuple[Path, Registry], tmp_path: Path) -> None:
    store, registry = scored
    leads = run_score(store, end_of_data(Store(store)), registry, tmp_path / "run", budget=0.05).leads
    risk = leads["risk_score"].to_list()
    assert risk == sorted(risk, reverse=True)  # it follows the ranking
    assert all(0 <= r <= 100 for r in risk)
    top = leads.filter(pl.col("score").round(3) == 1.0)
    if top.height > 1:  # where the probability rounds to 1.000 the risk score still tells the leads apart
        assert top["risk_score"].n_unique() > 1
    assert leads["percentile"].max() > 99  # type: ignore[operator]


def test_leads_csv_is_a_case_list_safe_to_open_in_a_spreadsheet(scored: tuple[Path, Registry], tmp_path: Path) -> None:
    from finwatch.leads import _risk
    from finwatch.runs import RunFolder

    store, registry = scored
    run = run_score(store, end_of_data(Store(store)), registry, tmp_path / "run", budget=0.02)
    csv = pl.read_csv(run.folder / "leads.csv", infer_schema=False)
    for column in ("holder_name", "holder_type", "institution", "total_in_base", "total_out_base",
                   "suspicious_amount_base", "first_activity", "last_activity", "counterparties", "channels",
                   "evidence_count", "reasons"):  # fmt: skip
        assert column in csv.columns, column
    assert csv["holder_name"].drop_nulls().len() > 0
    assert any("[" in text for text in csv["reasons"].to_list())  # reasons with their citations
    hostile = run.leads.with_columns(holder_name=pl.lit('=HYPERLINK("http://x")'), subject_id=pl.lit("+1-2"))
    RunFolder.write(tmp_path / "hostile", hostile, run.summary)
    cells = pl.read_csv(tmp_path / "hostile" / "leads.csv", infer_schema=False)
    assert cells["holder_name"].str.starts_with("'=").all()
    assert cells["subject_id"].str.starts_with("'+").all()
    risk, _ = _risk(np.array([1 - 1e-9, 1 - 1e-4, 0.5]), np.array([0.0, 0.0, 0.0]), np.array([1 - 1e-9, 1 - 1e-4,
                                                                                              0.5]))  # fmt: skip
    assert risk.round(1).tolist() == [90.0, 40.0, 0.0]
