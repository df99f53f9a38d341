"""finwatch-tables adapter: transactions (Parquet), labels (Parquet, CSV) and accounts (Parquet) from finwatch's own
canonical tables."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finwatch.exceptions import InputError, UnknownFormatError
from finwatch.ingest import IngestOptions, ingest
from finwatch.ingest._base import Parsed, ParseOptions, Source
from finwatch.ingest._registry import detect
from finwatch.ingest.adapters.finwatch_tables import FinwatchTablesAdapter
from finwatch.ingest.pseudonym import Pseudonymizer
from finwatch.schema import ACCOUNT_SCHEMA, LABEL_SCHEMA, TRANSACTION_SCHEMA
from finwatch.store import Store
from finwatch.synth import World, WorldConfig, generate_world, save_world
from finwatch.synth._kyc import directors
from tests.test_ingest import assert_damaged_file_is_handled

KEY = b"5b1c0f8e3a7d4c2b9e6f1a0d8c7b3e2f4a6d9c1b0e8f7a3d2c5b4e6f9a1c0d8e"
LABELS_HEADER = "subject_kind,subject_id,label,typology,instance_id,role,source"
ACCOUNT_COLUMNS = [f.name for f in ACCOUNT_SCHEMA if not f.name.startswith("source_")]
TXN_COLUMNS = [f.name for f in TRANSACTION_SCHEMA if not f.name.startswith("source_") and f.name != "amount_base"]


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path]:
    """A small world with the bank CSV export only (the labels and truth tables are always written)."""
    world = generate_world(WorldConfig(seed=5, accounts=600, days=14, exports=("bank-csv",)))
    out = tmp_path_factory.mktemp("tables-world") / "world"
    save_world(world, out)
    return world, out


def tables(root: Path) -> list[Path]:
    return [root / "labels" / "accounts.parquet", root / "labels" / "transactions.parquet",
            root / "truth" / "accounts.parquet"]  # fmt: skip


def options(root: Path, key: bytes | None = None) -> IngestOptions:
    return IngestOptions(fx=root / "fx_rates.csv", pseudonym_key=key)


def snapshot(store: Path) -> dict[str, str]:
    if not store.exists():
        return {}
    return {p.relative_to(store).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*")) if p.is_file() and p.name != ".lock"}  # fmt: skip


def parse(path: Path) -> Parsed:
    return FinwatchTablesAdapter().parse(Source(path, "0" * 64, str(path)), ParseOptions())


def labels_csv(tmp_path: Path, *rows: str, header: str = LABELS_HEADER, name: str = "cases.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def world_labels(world: World) -> pl.DataFrame:
    return pl.concat([world.account_labels, world.transaction_labels]).select(list(LABEL_SCHEMA.names))


def in_order(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


# --- detection -----------------------------------------------------------------------------------------------------
def test_detects_labels_and_accounts_parquet_and_labels_csv(tmp_path: Path, world_dir: tuple[World, Path]) -> None:
    _, root = world_dir
    assert detect(root / "labels" / "accounts.parquet") == ("finwatch-tables", "finwatch labels table (Parquet)")
    assert detect(root / "labels" / "transactions.parquet")[1] == "finwatch labels table (Parquet)"
    assert detect(root / "truth" / "accounts.parquet") == ("finwatch-tables", "finwatch accounts table (Parquet)")
    csv = labels_csv(tmp_path, "account,A1,true,fan_in,,,", header="Subject_Kind,subject_id,label,typology")
    assert detect(csv) == ("finwatch-tables", "finwatch labels CSV")


def test_detects_the_transactions_table(world_dir: tuple[World, Path]) -> None:
    world, root = world_dir
    found = detect(root / "truth" / "transactions.parquet")
    assert found == ("finwatch-tables", f"finwatch transactions ({world.transactions.height} rows)")


def test_other_parquet_and_other_csv_are_not_taken(tmp_path: Path, world_dir: tuple[World, Path]) -> None:
    _, root = world_dir
    with pytest.raises(UnknownFormatError):
        detect(root / "labels" / "instances.parquet")
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"subject_kind": ["account"], "subject_id": ["A"], "label": [True], "typology": ["x"]}),
                   plain)  # fmt: skip
    with pytest.raises(UnknownFormatError):  # no finwatch.table metadata: only read when the format is given
        detect(plain)
    assert parse(plain).labels is not None
    assert detect(root / "bank-csv" / "transactions.csv")[0] == "bank-csv"
    with pytest.raises(UnknownFormatError):
        detect(labels_csv(tmp_path, "x,y", header="subject_id,label", name="partial.csv"))


# --- the synthetic world's tables ----------------------------------------------------------------------------------
def test_world_labels_and_accounts_enter_a_store_holding_its_bank_export(
    tmp_path: Path, world_dir: tuple[World, Path]
) -> None:
    world, root = world_dir
    store = tmp_path / "s"
    first = ingest([root / "bank-csv" / "transactions.csv"], store, options(root))
    assert first.committed
    report = ingest(tables(root), store, options(root))
    assert report.committed, [f.error for f in report.files]
    account_labels, txn_labels, accounts = report.files
    holders = pl.concat([world.accounts, directors(world.accounts, world.config.seed)])  # businesses' directors too
    assert account_labels.detected == f"finwatch labels ({world.account_labels.height} rows)"
    assert accounts.detected == f"finwatch accounts ({holders.height} rows)"
    for f in report.files:
        assert f.format == "finwatch-tables"
        assert f.rows_read == f.accepted + f.quarantined
        assert f.quarantined == 0
    assert (accounts.rows_read, accounts.accepted) == (holders.height, holders.height)

    s = Store(store)
    assert in_order(s.scan("labels").collect()).equals(in_order(world_labels(world)))
    stored_accounts = s.scan("accounts").collect()
    assert in_order(stored_accounts.select(ACCOUNT_COLUMNS)).equals(in_order(holders.select(ACCOUNT_COLUMNS)))
    assert set(stored_accounts["source_format"]) == {"finwatch-tables"}
    assert stored_accounts.filter(pl.col("holder_type") == "business").height > 0

    # transaction labels name the stored transactions by their ids: the same time and amount as the world's
    txns = s.scan("transactions").collect()
    labelled = set(world.transaction_labels["subject_id"]) & set(txns["txn_id"])
    assert len(labelled) > 0
    matched = txns.filter(pl.col("txn_id").is_in(list(labelled))).select("txn_id", "ts", "amount").sort("txn_id")
    truth = world.transactions.filter(pl.col("txn_id").is_in(list(labelled))).select("txn_id", "ts", "amount")
    assert matched.equals(truth.sort("txn_id"))
    found = world.transaction_labels.filter(pl.col("subject_id").is_in(list(labelled))).height
    assert f"{found} of {world.transaction_labels.height} labelled transactions match" in " ".join(txn_labels.notes)

    # the same files again: nothing added
    before = snapshot(store)
    again = ingest(tables(root), store, options(root))
    assert not again.committed
    assert {f.status for f in again.files} == {"already ingested"}
    assert snapshot(store) == before


def test_pseudonymised_store_maps_label_and_account_ids_like_transaction_accounts(
    tmp_path: Path, world_dir: tuple[World, Path]
) -> None:
    world, root = world_dir
    store = tmp_path / "s"
    report = ingest([root / "bank-csv" / "transactions.csv", *tables(root)], store, options(root, KEY))
    assert report.committed, [f.error for f in report.files]
    pseudo = Pseudonymizer(KEY)
    s = Store(store)
    txns = s.scan("transactions").collect()
    # the transactions' accounts are the pseudonyms of the world's accounts
    truth = world.transactions.select("txn_id", raw="src_account").join(txns.select("txn_id", "src_account"), "txn_id")
    assert truth.filter(pl.col("raw").is_not_null()).height > 0
    assert all(pseudo.one(r) == p for r, p in truth.drop_nulls("raw").select("raw", "src_account").iter_rows())
    # account labels carry the same pseudonyms: the labelled accounts are found among the transactions' accounts
    labels = s.scan("labels").collect()
    account_ids = set(labels.filter(pl.col("subject_kind") == "account")["subject_id"])
    assert account_ids == {pseudo.one(a) for a in world.account_labels["subject_id"]}
    txn_accounts = set(txns["src_account"].drop_nulls()) | set(txns["dst_account"].drop_nulls())
    raw_txn_accounts = set(world.transactions.filter(pl.col("txn_id").is_in(txns["txn_id"].to_list()))
                           .select(pl.concat_list("src_account", "dst_account").explode().drop_nulls())
                           .to_series())  # fmt: skip
    expected = {pseudo.one(a) for a in set(world.account_labels["subject_id"]) & raw_txn_accounts}
    assert expected
    assert account_ids & txn_accounts == expected
    # transaction ids are not account ids: they stay as they are
    assert set(labels.filter(pl.col("subject_kind") == "transaction")["subject_id"]) == set(
        world.transaction_labels["subject_id"]
    )
    accounts = s.scan("accounts").collect()
    assert set(accounts["account_id"]) == {pseudo.one(a) for a in world.accounts["account_id"]}
    links = world.accounts.select("account_id", "links").drop_nulls("links")
    linked = accounts.filter(pl.col("account_id") == pseudo.one(links["account_id"][0]))["links"][0].to_list()
    assert linked == [pseudo.one(a) for a in links["links"][0]]
    raw_id = world.account_labels["subject_id"][0]
    for part in s.files("labels") + s.files("accounts"):
        assert raw_id.encode() not in Path(part).read_bytes()


def test_labels_before_their_transactions_are_stored_with_a_note_and_accounts_count_from_the_accounts_table(
    tmp_path: Path, world_dir: tuple[World, Path]
) -> None:
    world, root = world_dir
    report = ingest(tables(root), tmp_path / "s", options(root))  # labels and accounts, no transaction yet
    assert report.committed, [f.error for f in report.files]
    account_labels, txn_labels, _accounts = report.files
    assert not [n for n in account_labels.notes if "not in the store" in n]  # the accounts table holds them all
    n = world.transaction_labels.height
    assert (
        f"{n} of {n} label rows name transactions not in the store (fine if the transactions come in a later "
        "ingest; otherwise check the ids)"
    ) in txn_labels.notes
    assert Store(tmp_path / "s").scan("labels").collect().height == world_labels(world).height


# --- transactions ------------------------------------------------------------------------------------------------
def test_world_transactions_and_labels_load_the_whole_world_and_merge_with_its_bank_export(
    tmp_path: Path, world_dir: tuple[World, Path]
) -> None:
    world, root = world_dir
    store = tmp_path / "s"
    truth = root / "truth" / "transactions.parquet"
    labels = [root / "labels" / "accounts.parquet", root / "labels" / "transactions.parquet"]
    report = ingest([truth, *labels], store, options(root))
    assert report.committed, [f.error for f in report.files]
    txn_file, _, txn_labels = report.files
    n = world.transactions.height
    assert (txn_file.format, txn_file.detected) == ("finwatch-tables", f"finwatch transactions ({n} rows)")
    assert (txn_file.rows_read, txn_file.accepted, txn_file.new, txn_file.quarantined) == (n, n, n, 0)
    assert not txn_file.notes

    # every transaction as the world has it: ids, times, accounts, exact amounts, currency, channel and context
    s = Store(store)
    stored = s.scan("transactions").collect()
    assert stored.select(TXN_COLUMNS).sort("txn_id").equals(world.transactions.select(TXN_COLUMNS).sort("txn_id"))
    assert set(stored["source_format"]) == {"finwatch-tables"}
    assert stored.sort("txn_id")["source_row"].to_list() == [i + 1 for i in range(n)]  # the world is in id order
    # amount_base recomputed with the world's own FX table: the world's values
    base = stored.select("txn_id", "amount_base").join(world.transactions.select("txn_id", truth="amount_base"),
                                                       on="txn_id")  # fmt: skip
    assert ((base["amount_base"] - base["truth"]).abs() <= 1e-9 * base["truth"].abs() + 1e-9).all()
    # every transaction label names a stored transaction
    label_ids = set(world.transaction_labels["subject_id"])
    assert label_ids
    assert label_ids <= set(stored["txn_id"])
    assert f"{len(world.transaction_labels)} of {len(world.transaction_labels)} labelled transactions match" in (
        " ".join(txn_labels.notes)
    )
    assert in_order(s.scan("labels").collect()).equals(in_order(world_labels(world)))

    # the same file again: nothing added
    before = snapshot(store)
    again = ingest([truth], store, options(root))
    assert not again.committed
    assert again.files[0].status == "already ingested"
    assert snapshot(store) == before

    # the bank's export of the same world: the same ids, merged into the transactions already there
    bank = ingest([root / "bank-csv" / "transactions.csv"], store, options(root)).files[0]
    assert bank.status == "ingested", bank.error
    assert bank.accepted > 0
    assert (bank.new, bank.merged, bank.quarantined) == (0, bank.accepted, 0)
    after = Store(store).scan("transactions").select("txn_id", "source_format").collect()
    assert after.height == n
    assert after["txn_id"].n_unique() == n
    assert set(after["source_format"]) == {"finwatch-tables"}


def transactions_file(path: Path, frame: pl.DataFrame, table: str | None = "transactions") -> Path:
    arrow = frame.to_arrow()
    pq.write_table(arrow.replace_schema_metadata({"finwatch.table": table} if table else None), path)
    return path


def test_bad_transaction_records_are_quarantined_with_their_reasons(
    tmp_path: Path, world_dir: tuple[World, Path]
) -> None:
    world, root = world_dir
    rows = world.transactions.filter(pl.col("currency") == "USD").head(8).sort("txn_id")
    ids = rows["txn_id"].to_list()
    bad = rows.with_columns(
        amount=pl.when(pl.col("txn_id") == ids[1]).then(None).otherwise(pl.col("amount")),
        channel=pl.when(pl.col("txn_id") == ids[3]).then(pl.lit("teleport")).otherwise(pl.col("channel")),
        currency=pl.when(pl.col("txn_id") == ids[4]).then(None).otherwise(pl.col("currency")),
        ts=pl.when(pl.col("txn_id") == ids[5]).then(None).otherwise(pl.col("ts")),
        txn_id=pl.when(pl.col("txn_id") == ids[6]).then(pl.lit(" ")).otherwise(pl.col("txn_id")),
    ).with_columns(amount=pl.when(pl.col("txn_id") == ids[7]).then(pl.col("amount") * -1).otherwise(pl.col("amount")))
    # a record again (the same transaction: merged) and an id again with another amount (a conflict)
    bad = pl.concat([bad, rows.slice(0, 1), rows.slice(2, 1).with_columns(amount=pl.col("amount") + 1)])
    path = transactions_file(tmp_path / "transactions.parquet", bad)
    report = ingest([path], tmp_path / "s", options(root))
    assert report.committed
    f = report.files[0]
    assert (f.rows_read, f.accepted, f.new, f.merged, f.quarantined) == (10, 3, 2, 1, 7)
    assert f.rows_read == f.accepted + f.quarantined
    q = Store(tmp_path / "s").scan("quarantine").collect().sort("row")
    amount, ts = rows["amount"][2].normalize(), f"{rows['ts'][2]:%Y-%m-%d %H:%M:%S}"
    assert q["row"].to_list() == [2, 4, 5, 6, 7, 8, 10]
    assert q["reason"].to_list() == [
        "missing amount",
        "unknown channel 'teleport' (one of cash, wire, ach, card, cheque, p2p, crypto, internal)",
        "missing currency",
        "missing ts",
        "missing txn_id",
        "negative amount",  # the pipeline's checks as for any export
        f"conflicts with row 3 (same id {ids[2]}, other amount: {amount + 1:f} USD on {ts} here, {amount:f} USD on "
        f"{ts} at row 3)",  # both records' amounts
    ]
    assert set(q["source_format"]) == {"finwatch-tables"}
    raw = json.loads(q["raw"][1])  # the record's values as JSON
    assert (raw["txn_id"], raw["channel"], raw["source_row"]) == (ids[3], "teleport", 4)
    assert json.loads(q["raw"][0])["amount"] is None
    stored = Store(tmp_path / "s").scan("transactions").collect().sort("txn_id")
    assert stored["txn_id"].to_list() == [ids[0], ids[2]]
    assert stored["source_row"].to_list() == [1, 3]
    assert stored["amount"].to_list() == rows["amount"].to_list()[0:3:2]


def test_transaction_tables_with_other_columns_or_types(tmp_path: Path, world_dir: tuple[World, Path]) -> None:
    world, _ = world_dir
    rows = world.transactions.head(3)
    # only the required columns, no metadata (read because the format is given), an extra column noted
    minimal = rows.select("txn_id", "ts", "amount", "currency", "channel", note=pl.lit("x"))
    parsed = parse(transactions_file(tmp_path / "minimal.parquet", minimal, table=None))
    assert parsed.detected == "finwatch transactions (3 rows)"
    assert parsed.rows["txn_id"].to_list() == rows["txn_id"].to_list()
    assert parsed.rows["amount"].to_list() == rows["amount"].to_list()
    assert parsed.rows["src_account"].null_count() == 3
    assert parsed.rows["_reason"].null_count() == 3
    assert parsed.notes == ["columns ignored: note"]
    # integer amounts are exact: read as decimals
    whole = parse(transactions_file(tmp_path / "whole.parquet", minimal.with_columns(amount=pl.lit(12, pl.Int64))))
    assert whole.rows["amount"].cast(pl.String).to_list() == ["12.000000000000000000"] * 3
    with pytest.raises(InputError, match=r"missing required columns \['channel'\]"):
        parse(transactions_file(tmp_path / "missing.parquet", minimal.drop("channel")))
    with pytest.raises(InputError, match="column 'amount' is double, which is not exact"):
        parse(transactions_file(tmp_path / "float.parquet", minimal.with_columns(amount=pl.lit(1.5))))
    with pytest.raises(InputError, match="column 'ts' cannot be read as timestamp"):
        parse(transactions_file(tmp_path / "ts.parquet", minimal.with_columns(ts=pl.lit("yesterday"))))


# --- labels CSV ----------------------------------------------------------------------------------------------------
def test_labels_csv_values_and_bad_rows(tmp_path: Path) -> None:
    path = labels_csv(
        tmp_path,
        "account,ACC-1,yes,structuring,case-17,mule,case management",  # 2
        "Transaction,T-9, FALSE ,lookalike_payroll,,,",  # 3
        "account,ACC-2,0,fan_in,,,",  # 4
        "customer,ACC-3,true,fan_in,,,",  # 5: unknown subject_kind
        "account,,true,fan_in,,,",  # 6: empty subject_id
        "account,ACC-4,maybe,fan_in,,,",  # 7: unparsable label
        "account,ACC-5,true,,,,",  # 8: empty typology
        "account,ACC-1,yes,structuring,case-17,mule,case management",  # 9: a duplicate, stored once
        "account,ACC-6,true",  # 10: too few fields
    )
    report = ingest([path], tmp_path / "s", IngestOptions())
    assert report.committed
    f = report.files[0]
    assert f.detected == "finwatch labels (9 rows)"
    assert (f.rows_read, f.accepted, f.quarantined) == (9, 4, 5)
    assert f.rows_read == f.accepted + f.quarantined
    s = Store(tmp_path / "s")
    q = s.scan("quarantine").collect().sort("row")
    assert q["row"].to_list() == [5, 6, 7, 8, 10]
    reasons = dict(zip(q["row"].to_list(), q["reason"].to_list(), strict=True))
    assert reasons[5] == "unknown subject_kind 'customer' (account or transaction)"
    assert reasons[6] == "missing subject_id"
    assert reasons[7] == "unparsable label 'maybe' (true/false, 1/0 or yes/no)"
    assert reasons[8] == "missing typology"
    assert "missing columns" in reasons[10]
    assert q.filter(pl.col("row") == 7)["raw"][0] == "account,ACC-4,maybe,fan_in,,,"
    assert set(q["file"]) == {str(path)}
    labels = s.scan("labels").collect().sort("subject_id")
    assert labels.select("subject_kind", "subject_id", "label", "typology").rows() == [
        ("account", "ACC-1", True, "structuring"),
        ("account", "ACC-2", False, "fan_in"),
        ("transaction", "T-9", False, "lookalike_payroll"),
    ]
    first = labels.row(0, named=True)
    assert (first["instance_id"], first["role"], first["source"]) == ("case-17", "mule", "case management")
    assert labels.filter(pl.col("subject_id") == "ACC-2")["source"][0] == "finwatch-tables cases.csv"
    assert labels.filter(pl.col("subject_id") == "ACC-2")["instance_id"][0] is None


def test_labels_csv_with_only_the_required_columns(tmp_path: Path) -> None:
    path = labels_csv(tmp_path, "cycle,A,1,account,x", "cycle,T,no,transaction,y",
                      header="typology,subject_id,label,subject_kind,comment")  # fmt: skip
    parsed = parse(path)
    assert parsed.rows_read == 2
    assert parsed.rows.is_empty()
    assert parsed.labels is not None
    assert parsed.labels.select("subject_kind", "subject_id", "label").rows() == [
        ("account", "A", True), ("transaction", "T", False)
    ]  # fmt: skip
    assert "columns ignored: comment" in parsed.notes


def test_labels_csv_without_the_required_columns_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text("subject_kind,subject_id,label\naccount,A,1\n")
    with pytest.raises(InputError, match=r"row 1: missing required columns \['typology'\]"):
        parse(path)


# --- bad Parquet -----------------------------------------------------------------------------------------------------
def test_a_damaged_parquet_file_is_rejected_and_the_store_is_unchanged(
    tmp_path: Path, world_dir: tuple[World, Path]
) -> None:
    _, root = world_dir
    store = tmp_path / "s"
    ingest([root / "bank-csv" / "transactions.csv"], store, options(root))
    before = snapshot(store)
    data = (root / "labels" / "accounts.parquet").read_bytes()
    damaged = tmp_path / "accounts.parquet"
    damaged.write_bytes(data[: len(data) // 2])
    report = ingest([damaged], store, options(root))
    assert not report.committed
    f = report.files[0]
    assert f.status == "rejected"
    assert f.error.startswith(f"{damaged}: not a readable Parquet file (")
    assert "\n" not in f.error
    assert snapshot(store) == before
    # a damaged data page behind an intact footer, too
    zeroed = bytearray(data)
    zeroed[100:1100] = bytes(1000)
    damaged.write_bytes(bytes(zeroed))
    report = ingest([damaged], store, options(root))
    assert report.files[0].status == "rejected"
    assert report.files[0].error.startswith(f"{damaged}: not a readable Parquet file")
    assert snapshot(store) == before


def test_parquet_with_wrong_columns_or_types_is_rejected(tmp_path: Path) -> None:
    missing = tmp_path / "missing.parquet"
    table = pa.table({"subject_kind": ["account"], "subject_id": ["A"], "label": [True]})
    pq.write_table(table.replace_schema_metadata({"finwatch.table": "labels"}), missing)
    with pytest.raises(InputError, match=r"missing required columns \['typology'\]"):
        parse(missing)
    wrong = tmp_path / "wrong.parquet"
    table = pa.table({"account_id": ["A"], "kind": ["bank_account"], "holder_type": ["person"], "opened_date": ["x"]})
    pq.write_table(table.replace_schema_metadata({"finwatch.table": "accounts"}), wrong)
    with pytest.raises(InputError, match="column 'opened_date' cannot be read as date32"):
        parse(wrong)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1]}).replace_schema_metadata({"finwatch.table": "instances"}), other)
    with pytest.raises(InputError, match="not a finwatch transactions, labels or accounts table"):
        parse(other)


def test_bad_parquet_records_are_quarantined_with_their_values(tmp_path: Path) -> None:
    accounts = pl.DataFrame(
        {"account_id": ["A1", "", None, "A4", "A5"],
         "kind": ["bank_account", "bank_account", "bank_account", "bank_account", "vault"],
         "holder_type": ["business", "person", "person", None, "person"]}
    )  # fmt: skip
    path = tmp_path / "accounts.parquet"
    pq.write_table(accounts.to_arrow().replace_schema_metadata({"finwatch.table": "accounts"}), path)
    report = ingest([path], tmp_path / "s", IngestOptions())
    f = report.files[0]
    assert (f.rows_read, f.accepted, f.quarantined) == (5, 1, 4)
    q = Store(tmp_path / "s").scan("quarantine").collect().sort("row")
    assert q["row"].to_list() == [2, 3, 4, 5]
    assert q["reason"].to_list()[:3] == ["missing account_id", "missing account_id", "missing holder_type"]
    assert q["reason"][3].startswith("unknown kind 'vault'")
    assert json.loads(q["raw"][2])["account_id"] == "A4"
    stored = Store(tmp_path / "s").scan("accounts").collect()
    assert stored.select("account_id", "holder_type", "source_row").rows() == [("A1", "business", 1)]

    labels = pl.DataFrame(
        {"subject_kind": ["account", "wallet"], "subject_id": ["A1", "A2"], "label": [True, None],
         "typology": ["cycle", "cycle"]}
    )  # fmt: skip
    path = tmp_path / "labels.parquet"
    pq.write_table(labels.to_arrow().replace_schema_metadata({"finwatch.table": "labels"}), path)
    parsed = parse(path)
    assert parsed.rows_read == 2
    assert parsed.rows["_reason"].to_list() == ["unknown subject_kind 'wallet' (account or transaction)"]
    assert parsed.labels is not None
    assert parsed.labels["source"].to_list() == ["finwatch-tables labels.parquet"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=st.sampled_from(["truth/accounts.parquet", "labels/accounts.parquet", "truth/transactions.parquet"]),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=4),
)
def test_damaged_tables_are_rejected_or_quarantined_never_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, world_dir: tuple[World, Path], table: str, cut: float,
    flips: list[tuple[float, int]],
) -> None:  # fmt: skip
    _, root = world_dir
    assert_damaged_file_is_handled(root / table, cut, flips, tmp_path_factory, keep=4)
