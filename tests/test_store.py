"""The store: content-based manifest hash, manifests read once, the batch writer, and the FX table it keeps."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finwatch.exceptions import FinwatchError, SchemaError, StoreError
from finwatch.fx import FxTable
from finwatch.ingest import IngestOptions, ingest
from finwatch.schema import ACCOUNT_SCHEMA, KYC_COLUMNS, polars_schema
from finwatch.store import TABLES, Store, StoreSettings, write_partitions
from finwatch.testing import make_accounts, make_labels, make_store, make_transactions

HEADER = (
    "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,"
    "Payment Currency,Payment Format,Is Laundering\n"
)
ROWS = [
    "2022/09/01 00:20,10,8000EBD30,10,8000F4580,3697.34,Euro,3697.34,Euro,ACH,0",
    "2022/09/02 10:00,10,8000EBD30,11,80011F990,25.00,US Dollar,25.00,US Dollar,Cash,1",
    "2022/09/02 11:00,10,8000EBD30,11,80011F990,-5.00,US Dollar,-5.00,US Dollar,Cash,0",  # quarantined
]
FX = "date,currency,base,rate\n2022-08-01,EUR,USD,1.25\n2022-09-01,EUR,USD,1.5\n"
ROW = {"ts": "2026-01-05T10:00:00Z", "src": "A", "dst": "B", "amount": "10"}


def inputs_in(folder: Path, rows: list[str] = ROWS) -> tuple[Path, Path]:
    """An AMLworld export and an FX table written into ``folder``."""
    folder.mkdir(parents=True)
    (folder / "t.csv").write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    (folder / "fx.csv").write_text(FX, encoding="utf-8")
    return folder / "t.csv", folder / "fx.csv"


def ingested(store: Path, folder: Path, rows: list[str] = ROWS) -> Store:
    export, fx = inputs_in(folder, rows)
    report = ingest([export], store, IngestOptions(fx=fx))
    assert report.committed
    return Store(store)


# --- manifest hash ---------------------------------------------------------------------------------------------
def test_manifest_sha256_is_the_same_for_the_same_files_from_another_folder(tmp_path: Path) -> None:
    a = ingested(tmp_path / "store-a", tmp_path / "a")
    b = ingested(tmp_path / "store-b", tmp_path / "elsewhere" / "b")
    assert a.manifests()[0]["inputs"][0]["file"] != b.manifests()[0]["inputs"][0]["file"]  # paths differ...
    assert a.manifests()[0]["fx_table"]["name"] != b.manifests()[0]["fx_table"]["name"]
    assert a.scan("quarantine").collect().height == 1  # ...and the quarantine names its file by path
    assert a.manifest_sha256() == b.manifest_sha256()  # ...but the data are the same


def test_manifest_sha256_changes_with_the_data(tmp_path: Path) -> None:
    a = ingested(tmp_path / "store-a", tmp_path / "a")
    other = ingested(tmp_path / "store-c", tmp_path / "c", [ROWS[0].replace("3697.34", "3697.35"), *ROWS[1:]])
    assert a.manifest_sha256() != other.manifest_sha256()
    before = a.manifest_sha256()
    export, _fx = inputs_in(tmp_path / "d", [ROWS[1].replace("25.00", "26.00")])
    ingest([export], a.root, IngestOptions())
    assert Store(a.root).manifest_sha256() != before  # one more batch


def test_manifest_sha256_of_an_empty_store_is_stable(tmp_path: Path) -> None:
    assert Store(tmp_path / "none").manifest_sha256() == Store(tmp_path / "other").manifest_sha256()


# --- manifests read once per object ----------------------------------------------------------------------------
def _count_manifest_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    original = Path.read_text

    def counting(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.parent.name == "manifests":
            reads.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    return reads


def test_a_store_object_reads_its_manifests_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_store(tmp_path / "s", make_transactions([ROW]))
    make_store(tmp_path / "s", make_transactions([{**ROW, "amount": "11"}]))
    reads = _count_manifest_reads(monkeypatch)
    store = Store(tmp_path / "s")
    store.manifests()
    store.files("transactions")
    store.scan("labels")
    store.ingested_inputs()
    store.manifest_sha256()
    store.verify()
    assert len(reads) == 2  # two batches, each read once


def test_its_own_commit_and_another_writers_commit_are_seen(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", make_transactions([ROW]))
    assert len(store.manifests()) == 1
    with store.lock():
        store.write_batch("second", {"transactions": make_transactions([{**ROW, "txn_id": "x"}])}, {"inputs": []})
    assert len(store.manifests()) == 2
    assert store.scan("transactions").collect().height == 2
    make_store(tmp_path / "s", make_transactions([{**ROW, "txn_id": "y"}]))  # through another Store object
    assert len(store.manifests()) == 3
    assert sorted(store.scan("transactions").collect()["txn_id"]) == ["t1", "x", "y"]


# --- the batch writer ------------------------------------------------------------------------------------------
def test_write_batch_stages_and_commits_every_table(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.ensure(StoreSettings("USD", None))
    txns = make_transactions([ROW, {**ROW, "ts": "2026-01-06T09:00:00Z"}, {**ROW, "ts": "2026-01-05T08:00:00Z"}])
    fx = FxTable.load()
    tables = {
        "transactions": txns,
        "accounts": make_accounts([{"account_id": "A"}]),
        "labels": make_labels([{"subject_id": "t1"}]),
        "quarantine": pl.DataFrame(
            {
                "file": ["f"],
                "file_sha256": ["0"],
                "source_format": ["test"],
                "row": [2],
                "raw": ["x"],
                "reason": ["bad"],
            }
        ),
        "fx": fx.to_frame(),
    }
    with store.lock():
        path = store.write_batch("b1", tables, {"inputs": [], "fx_table": {"name": fx.name, "sha256": fx.sha256}})
    manifest = json.loads(path.read_text())
    assert path == tmp_path / "s" / "manifests" / "b1.json"
    assert [(e["table"], e["path"], e["rows"]) for e in manifest["files"]] == [
        ("accounts", "accounts/b1.parquet", 1),
        ("fx", "fx/b1.parquet", fx.rates.height),
        ("labels", "labels/b1.parquet", 1),
        ("quarantine", "quarantine/b1.parquet", 1),
        ("transactions", "transactions/date=2026-01-05/b1.parquet", 2),
        ("transactions", "transactions/date=2026-01-06/b1.parquet", 1),
    ]
    assert manifest["batch"] == "b1"
    assert manifest["sequence"] == 1
    assert store.verify() == []
    assert store.scan("transactions").collect()["txn_id"].to_list() == ["t3", "t1", "t2"]  # by time within a day
    assert store.scan("fx").collect().equals(fx.to_frame())
    assert not (tmp_path / "s" / ".staging" / "b1").exists()


def test_write_batch_refuses_unknown_tables_and_unsafe_batch_ids(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.ensure(StoreSettings("USD", None))
    with pytest.raises(FinwatchError, match=r"unknown store table\(s\) \['trades'\]"):
        store.write_batch("b1", {"trades": make_transactions([ROW])}, {"inputs": []})
    with pytest.raises(FinwatchError, match=r"batch id '\.\./b'"):
        store.write_batch("../b", {"transactions": make_transactions([ROW])}, {"inputs": []})
    assert store.manifests() == []


def test_sequence_orders_batches_by_commit(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", make_transactions([ROW]))
    with store.lock():
        store.write_batch("0-early-name", {"transactions": make_transactions([{**ROW, "txn_id": "x"}])}, {"inputs": []})
    by_batch = {m["batch"]: m["sequence"] for m in store.manifests()}
    assert by_batch["0-early-name"] == 2
    assert sorted(by_batch.values()) == [1, 2]


def test_write_partitions_writes_one_sorted_file_per_day(tmp_path: Path) -> None:
    txns = make_transactions([{**ROW, "ts": "2026-01-06T00:00:00Z"}, ROW, {**ROW, "ts": "2026-01-05T23:59:59Z"}])
    written = write_partitions(txns, tmp_path / "out", "test")
    assert [p.name for p in written] == ["date=2026-01-05.parquet", "date=2026-01-06.parquet"]
    assert pl.read_parquet(written[0])["txn_id"].to_list() == ["t2", "t3"]
    with pytest.raises(SchemaError, match="test: column 'txn_id' has nulls"):
        write_partitions(txns.with_columns(txn_id=pl.lit(None, pl.String)), tmp_path / "bad", "test")


def test_make_store_uses_nothing_of_ingest(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from finwatch.testing import make_store, make_transactions\n"
        f"make_store(Path({str(tmp_path / 's')!r}), make_transactions([{ROW!r}]))\n"
        "assert not [m for m in sys.modules if m.startswith('finwatch.ingest')], sorted(sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert Store(tmp_path / "s").fx_table().sha256 == FxTable.load().sha256


# --- the FX table ----------------------------------------------------------------------------------------------
def test_fx_table_round_trips_through_a_frame() -> None:
    default = FxTable.load()
    again = FxTable.from_frame(default.to_frame(), "copy", default.sha256)
    assert again.rates.equals(default.rates)
    assert (again.table_base, again.sha256) == (default.table_base, default.sha256)
    pairs = pl.DataFrame({"date": [dt.date(2022, 9, 1)] * 2, "currency": ["EUR", "USD"]})
    assert again.rate_to(pairs, "EUR").equals(default.rate_to(pairs, "EUR"))
    assert FxTable.from_frame(default.to_frame(), "copy").sha256 != default.sha256  # the file's hash is not known


def test_fx_table_from_a_frame_is_validated() -> None:
    with pytest.raises(FinwatchError, match=r"FX table t: missing columns \['base'\]"):
        FxTable.from_frame(pl.DataFrame({"date": [dt.date(2022, 1, 1)], "currency": ["EUR"], "rate": [1.1]}), "t")
    bad = pl.DataFrame({"date": [dt.date(2022, 1, 1)], "currency": ["EUR"], "base": ["USD"], "rate": [0.0]})
    with pytest.raises(FinwatchError, match="FX table t: 1 row"):
        FxTable.from_frame(bad, "t")


def test_ingest_fx_module_still_exports_the_table() -> None:
    from finwatch.ingest import fx as old

    assert old.FxTable is FxTable
    assert old.DEFAULT_FX == "fx_rates_default.csv"
    assert "fx" in TABLES


def test_fx_table_is_the_newest_committed_batchs_whatever_the_batch_ids(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.ensure(StoreSettings("USD", None))
    for batch, rate in (("z-first", 1.25), ("a-second", 1.5)):
        rates = pl.DataFrame({"date": [dt.date(2022, 1, 1)], "currency": ["EUR"], "base": ["USD"], "rate": [rate]})
        table = FxTable.from_frame(rates, f"rates {rate}")
        txns = make_transactions([{**ROW, "txn_id": batch}])
        with store.lock():
            store.write_batch(batch, {"transactions": txns, "fx": rates},
                              {"inputs": [], "fx_table": {"name": table.name, "sha256": table.sha256}})  # fmt: skip
        assert store.fx_table().sha256 == table.sha256
    assert Store(tmp_path / "s").fx_table().name == "rates 1.5"


def _as_before_fx_tables(root: Path, fx_name: str) -> None:
    """Rewrite a store's manifests as finwatch wrote them before it kept FX tables."""
    for path in sorted((root / "manifests").glob("*.json")):
        manifest = json.loads(path.read_text())
        manifest["files"] = [e for e in manifest["files"] if e["table"] != "fx"]
        manifest["fx_table"] = {"name": fx_name, "sha256": "0" * 64}
        manifest.pop("sequence", None)
        path.write_text(json.dumps(manifest))
    shutil.rmtree(root / "fx")


def test_a_store_from_before_fx_tables_falls_back_to_the_shipped_default(tmp_path: Path) -> None:
    make_store(tmp_path / "s", make_transactions([ROW]))
    _as_before_fx_tables(tmp_path / "s", "default (fx_rates_default.csv)")
    assert Store(tmp_path / "s").fx_table().sha256 == FxTable.load().sha256


def test_a_store_from_before_fx_tables_with_its_own_rates_says_they_are_lost(tmp_path: Path) -> None:
    make_store(tmp_path / "s", make_transactions([ROW]))
    _as_before_fx_tables(tmp_path / "s", "/data/rates.csv")
    with pytest.raises(StoreError, match=r"FX table /data/rates.csv, which this store does not record"):
        Store(tmp_path / "s").fx_table()


def test_a_store_without_transactions_has_the_default_fx_table(tmp_path: Path) -> None:
    assert Store(tmp_path / "empty").fx_table().name == FxTable.load().name


# --- accounts: schema evolution and the newest batch -------------------------------------------------------------
V1_ACCOUNT_SCHEMA = pa.schema([f for f in ACCOUNT_SCHEMA if f.name not in KYC_COLUMNS],
                              metadata={b"finwatch.table": b"accounts", b"finwatch.schema_version": b"1"})  # fmt: skip


def _commit_v1_accounts(store: Store, batch: str, rows: list[dict[str, Any]]) -> None:
    """An accounts file as finwatch wrote it before schema version 2 (no customer-data columns)."""
    staged = store.staging(batch) / "accounts.parquet"
    lineage = {"source_format": "test", "source_file_sha256": "0" * 64, "source_row": 1}
    pq.write_table(pa.Table.from_pylist([{**lineage, **r} for r in rows], schema=V1_ACCOUNT_SCHEMA), staged)
    with store.lock():
        store.commit(batch, {"accounts": [(staged, f"accounts/{batch}.parquet")]}, {"inputs": []})


@pytest.mark.parametrize("v1_first", [True, False], ids=["v1 batch first", "v1 batch last"])
def test_accounts_written_before_schema_version_2_read_with_null_customer_columns(
    tmp_path: Path, v1_first: bool
) -> None:
    store = Store(tmp_path / "s")
    store.ensure(StoreSettings("USD", None))
    old = [{"account_id": "OLD", "kind": "bank_account", "holder_type": "person", "holder_name": "Ann Lee",
            "opened_date": dt.date(2020, 1, 5), "links": ["X"]}]  # fmt: skip
    new = make_accounts([{"account_id": "NEW", "birth_date": dt.date(1980, 2, 1), "own_client": True}])
    batches = [lambda: _commit_v1_accounts(store, "v1", old), lambda: _write(store, "v2", {"accounts": new})]
    for commit in batches if v1_first else batches[::-1]:
        commit()
    accounts = store.scan("accounts").collect()
    assert accounts.schema == polars_schema(ACCOUNT_SCHEMA)
    rows = {r["account_id"]: r for r in accounts.to_dicts()}
    assert rows["OLD"]["holder_name"] == "Ann Lee"
    assert rows["OLD"]["links"] == ["X"]
    assert all(rows["OLD"][c] is None for c in KYC_COLUMNS)
    assert (rows["NEW"]["birth_date"], rows["NEW"]["own_client"]) == (dt.date(1980, 2, 1), True)
    alone = Store(tmp_path / "alone")
    alone.ensure(StoreSettings("USD", None))
    _commit_v1_accounts(alone, "v1", old)
    assert alone.scan("accounts", history=True).collect().schema == polars_schema(ACCOUNT_SCHEMA)


def _write(store: Store, batch: str, tables: dict[str, pl.DataFrame]) -> None:
    with store.lock():
        store.write_batch(batch, tables, {"inputs": []})


def test_the_newest_batch_holding_an_account_supersedes_its_earlier_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.ensure(StoreSettings("USD", None))
    # batch ids sort the other way round from the commits: the commit sequence decides
    _write(store, "z-first", {"accounts": make_accounts([{"account_id": "A", "holder_name": "Ann", "status": "open"},
                                                         {"account_id": "B", "holder_name": "Bob"}])})  # fmt: skip
    _write(store, "m-second", {"accounts": make_accounts([{"account_id": "A", "holder_name": "Ann", "status": "frozen"},
                                                          {"account_id": "A", "holder_name": "Al"}])})  # fmt: skip
    current = store.scan("accounts").collect().sort("source_row")
    assert current.select("account_id", "holder_name", "status").rows() == [
        ("A", "Ann", "frozen"), ("A", "Al", None), ("B", "Bob", None)]  # both holders of the newest batch  # fmt: skip
    assert store.scan("accounts", history=True).collect().height == 4
    _write(store, "a-third", {"accounts": make_accounts([{"account_id": "B", "holder_name": "Robert"}])})
    current = Store(tmp_path / "s").scan("accounts").collect()
    assert sorted(current.select("account_id", "holder_name").rows()) == [("A", "Al"), ("A", "Ann"), ("B", "Robert")]
    assert store.scan("labels", history=True).collect().is_empty()  # other tables: the union either way
