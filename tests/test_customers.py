"""Customer data (KYC) in the store: the customers-csv adapter, supersession, pseudonyms and the synthetic extract."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finwatch._duckdb import connect
from finwatch._paths import sql_root
from finwatch.exceptions import ConfigError, UnknownFormatError
from finwatch.ingest import IngestOptions, ParseOptions, ingest
from finwatch.ingest._registry import detect
from finwatch.ingest.adapters.customers_csv import CustomerMapping, shipped_customer_mappings
from finwatch.ingest.pseudonym import IDENTIFYING, Pseudonymizer
from finwatch.ingest.quarantine import WITHHELD
from finwatch.schema import ACCOUNT_SCHEMA, KYC_COLUMNS
from finwatch.store import Store
from finwatch.synth import World, WorldConfig, generate_world, save_world
from finwatch.synth import _vocab as vocab
from finwatch.synth._exports import CUSTOMER_CSV_COLUMNS
from finwatch.synth._kyc import directors

KEY = b"5b1c0f8e3a7d4c2b9e6f1a0d8c7b3e2f4a6d9c1b0e8f7a3d2c5b4e6f9a1c0d8e"  # 64 hex digits, as secrets.token_hex(32)
MAPPING = """
[format]
name = "mybank-kyc"
kind = "customers"
delimiter = ","
date_format = "%Y-%m-%d"
institution = "MYBKUS33"
own_client = true

[columns]
account = "acct"
holder_type = "type"
holder_name = "name"
given_name = "first"
family_name = "last"
birth_date = "born"
id_type = "doc"
id_number = "doc_no"
id_country = "doc_country"
address = "street"
postcode = "zip"
phone = "phone"
occupation = "job"
status = "state"
own_client = "client"
opened_date = "opened"

[holder_types]
I = "person"
C = "business"

[id_types]
PP = "passport"
REG = "company_registration"

[statuses]
A = "open"
F = "frozen"
"""
HEADER = "acct,type,name,first,last,born,doc,doc_no,doc_country,street,zip,phone,job,state,client,opened"
ANN = "A1,I,,Ann,Lee,1980-02-01,PP,X 123-45,us,1 Example Street,00123,+1 212 555 0101,Teacher,A,,2020-01-05"
TOM = "A1,I,,Tom,Lee,1981-03-02,pp,Y-9,US,1 Example Street,00123,+1-212-555-0102,Cook,A,yes,2020-01-05"
ACME = "B1,C,Acme Ltd,,,2010-02-01,REG,REG-77,US,2 Example Street,00123,+1-212-555-0101,Consulting,F,no,2019-05-05"


def mapping_file(tmp_path: Path, text: str = MAPPING) -> Path:
    path = tmp_path / "kyc.toml"
    path.write_text(text, encoding="utf-8")
    return path


def extract(tmp_path: Path, *rows: str, name: str = "customers.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def options(tmp_path: Path, key: bytes | None = None) -> IngestOptions:
    return IngestOptions(format="customers-csv", parse=ParseOptions(mapping=mapping_file(tmp_path)), pseudonym_key=key)


def ingested(tmp_path: Path, *rows: str, key: bytes | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The accounts and the quarantine of a store holding an extract of ``rows``; rows read = accepted + quarantined."""
    report = ingest([extract(tmp_path, *rows)], tmp_path / "s", options(tmp_path, key))
    assert report.committed, [f.error for f in report.files]
    f = report.files[0]
    assert f.rows_read == f.accepted + f.quarantined == len(rows)
    store = Store(tmp_path / "s")
    return store.scan("accounts").collect(), store.scan("quarantine").collect()


# --- the format ---------------------------------------------------------------------------------------------------
def test_an_extract_becomes_account_rows_with_customer_data(tmp_path: Path) -> None:
    accounts, quarantine = ingested(tmp_path, ANN, TOM, ACME)
    assert quarantine.is_empty()
    assert accounts.columns == ACCOUNT_SCHEMA.names
    rows = {(r["account_id"], r["given_name"]): r for r in accounts.to_dicts()}
    ann, tom, acme = rows[("A1", "Ann")], rows[("A1", "Tom")], rows[("B1", None)]
    assert ann | {"source_file_sha256": None} == {
        "account_id": "A1", "kind": "bank_account", "holder_type": "person", "holder_name": "Ann Lee",
        "institution": "MYBKUS33", "country": None, "city": None, "currency": None, "mcc": None,
        "opened_date": dt.date(2020, 1, 5), "links": None, "given_name": "Ann", "family_name": "Lee",
        "birth_date": dt.date(1980, 2, 1), "id_type": "passport", "id_number": "X 123-45", "id_country": "US",
        "address": "1 Example Street", "postcode": "00123", "phone": "+1 212 555 0101", "occupation": "Teacher",
        "status": "open", "branch": None, "own_client": True, "source_format": "customers-csv",
        "source_file_sha256": None, "source_row": 2,
    }  # fmt: skip
    assert (tom["id_type"], tom["own_client"], tom["source_row"]) == ("passport", True, 3)  # a joint holder
    assert (acme["holder_name"], acme["id_type"], acme["status"], acme["own_client"]) == (
        "Acme Ltd", "company_registration", "frozen", False)  # fmt: skip
    assert acme["birth_date"] == dt.date(2010, 2, 1)  # incorporated


TODAY = dt.datetime.now(dt.UTC).date()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        pytest.param(ANN.replace("A1,", ",", 1), "missing account", id="no account id"),
        pytest.param(ANN.replace(",I,", ",,", 1), "missing holder type", id="no holder type"),
        pytest.param(ANN.replace(",I,", ",X,", 1), "unknown holder type 'X' (one of person, business, merchant, "
                     "exchange)", id="unknown holder type"),
        pytest.param(ANN.replace("1980-02-01", "1980-02-30"), "unparsable birth_date (expected %Y-%m-%d)",
                     id="30 February"),
        pytest.param(ANN.replace("1980-02-01", "01.02.1980"), "unparsable birth_date (expected %Y-%m-%d)",
                     id="birth date in another format"),
        pytest.param(ANN.replace("1980-02-01", (TODAY + dt.timedelta(days=1)).isoformat()),
                     "birth_date in the future", id="born tomorrow"),
        pytest.param(ANN.replace("2020-01-05", "soon"), "unparsable opened_date 'soon' (expected %Y-%m-%d)",
                     id="unparsable opening date"),
        pytest.param(ANN.replace(",PP,", ",VISA,"), "unknown id type 'VISA' (one of passport, national_id, "
                     "driver_licence, tax_id, company_registration)", id="unknown id type"),
        pytest.param(ANN.replace(",us,", ",USA,"), "id_country 'USA' is not an ISO 3166 alpha-2 code",
                     id="three-letter id country"),
        pytest.param(ANN.replace(",A,", ",Z,"), "unknown status 'Z' (one of open, closed, frozen, dormant)",
                     id="unknown status"),
        pytest.param(ANN.replace(",A,,", ",A,maybe,"), "own_client 'maybe' is not a boolean (true: true, 1, yes, y; "
                     "false: false, 0, no, n)", id="own_client not a boolean"),
        pytest.param(ANN, "duplicate of row 2 (same record)", id="the same record twice"),
        pytest.param(ANN.rsplit(",", 3)[0], "missing columns", id="truncated line"),
    ],
)  # fmt: skip
def test_bad_rows_are_quarantined_with_file_row_raw_and_reason(tmp_path: Path, row: str, reason: str) -> None:
    accounts, quarantine = ingested(tmp_path, ANN, row)
    assert accounts["source_row"].to_list() == [2]
    assert quarantine.select("row", "raw").rows() == [(3, row)]
    assert quarantine["reason"][0].startswith(reason)
    assert quarantine["file"][0].endswith("customers.csv")
    assert quarantine["source_format"][0] == "customers-csv"


def test_a_birth_date_of_today_is_accepted(tmp_path: Path) -> None:
    accounts, quarantine = ingested(tmp_path, ANN.replace("1980-02-01", TODAY.isoformat()))
    assert quarantine.is_empty()
    assert accounts["birth_date"].to_list() == [TODAY]


def test_holder_name_of_a_person_defaults_to_given_and_family_name(tmp_path: Path) -> None:
    only_family = ANN.replace(",Ann,Lee,", ",,Lee,")
    named = ANN.replace("A1,I,,", "A2,I,Dr Ann Lee,")
    accounts, _ = ingested(tmp_path, ANN, only_family.replace("A1", "A3", 1), named)
    assert dict(accounts.select("account_id", "holder_name").iter_rows()) == {
        "A1": "Ann Lee", "A3": "Lee", "A2": "Dr Ann Lee"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(('kind = "customers"', 'kind = "transactions"'), "read it with --format bank-csv",
                     id="a bank-csv mapping"),
        pytest.param(('kind = "customers"', 'kind = "ledger"'), "kind 'ledger' is not one of", id="unknown kind"),
        pytest.param(('account = "acct"', 'acount = "acct"'), "unknown column roles ['acount']", id="misspelt role"),
        pytest.param(('holder_type = "type"\n', ""), "map a holder_type column or set format.holder_type",
                     id="no holder type"),
        pytest.param(('F = "frozen"', 'F = "blocked"'), "[statuses] values ['blocked'] are not one of",
                     id="not a status"),
        pytest.param(("own_client = true", 'own_client = "yes"'), "format.own_client must be true or false",
                     id="own_client default not a boolean"),
    ],
)  # fmt: skip
def test_mapping_mistakes_are_refused_naming_the_key(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        CustomerMapping.load(MAPPING.replace(*change), "kyc.toml")


def test_a_customers_mapping_given_to_bank_csv_rejects_the_file(tmp_path: Path) -> None:
    path = extract(tmp_path, ANN)
    as_bank = IngestOptions(format="bank-csv", parse=ParseOptions(mapping=mapping_file(tmp_path)))
    report = ingest([path], tmp_path / "s", as_bank)
    assert not report.committed
    assert "--format customers-csv" in report.files[0].error
    assert str(path) in report.files[0].error


# --- detection ----------------------------------------------------------------------------------------------------
def test_detection_takes_only_headers_of_shipped_customers_mappings(
    tmp_path: Path, small_world_dir: tuple[World, Path]
) -> None:
    _world, root = small_world_dir
    assert detect(root / "customers" / "customers.csv") == (
        "customers-csv", "customer extract matching shipped mapping 'finwatch-synth-customers'")  # fmt: skip
    assert detect(root / "bank-csv" / "transactions.csv")[0] == "bank-csv"  # neither takes the other's file
    with pytest.raises(UnknownFormatError):  # an extract of another layout needs --format and --mapping
        detect(extract(tmp_path, ANN))
    no_mapping = ingest([extract(tmp_path, ANN)], tmp_path / "s", IngestOptions(format="customers-csv"))
    assert not no_mapping.committed
    assert "no customers mapping matches this CSV's header; pass --mapping FILE" in no_mapping.files[0].error
    named = IngestOptions(format="customers-csv", parse=ParseOptions(mapping=Path("finwatch-synth-customers")))
    assert ingest([root / "customers" / "customers.csv"], tmp_path / "t", named).committed


# --- later rows supersede earlier ones -----------------------------------------------------------------------------
def test_a_later_batch_supersedes_an_accounts_rows_and_history_keeps_them(tmp_path: Path) -> None:
    store = tmp_path / "s"
    ingest([extract(tmp_path, ANN, TOM, ACME, name="january.csv")], store, options(tmp_path))
    moved = ANN.replace("1 Example Street", "9 Sample Avenue")
    ingest([extract(tmp_path, moved, name="february.csv")], store, options(tmp_path))
    current = Store(store).scan("accounts").collect().sort("account_id")
    assert current.select("account_id", "given_name", "address").rows() == [
        ("A1", "Ann", "9 Sample Avenue"), ("B1", None, "2 Example Street")]  # Tom is no longer a holder  # fmt: skip
    history = Store(store).scan("accounts", history=True).collect()
    assert history.height == 4


def test_within_a_batch_the_last_file_given_supersedes(tmp_path: Path) -> None:
    first = extract(tmp_path, ANN, ACME, name="a.csv")
    second = extract(tmp_path, ANN.replace("Teacher", "Principal"), name="b.csv")
    ingest([first, second], tmp_path / "s", options(tmp_path))
    stored = Store(tmp_path / "s").scan("accounts", history=True).collect().sort("account_id")
    assert stored.select("account_id", "occupation").rows() == [("A1", "Principal"), ("B1", "Consulting")]


def test_stg_accounts_reads_the_newest_batch_with_no_change_to_its_sql(tmp_path: Path) -> None:
    store = tmp_path / "s"
    ingest([extract(tmp_path, ANN.replace(",A,,", ",A,no,"), name="old.csv")], store, options(tmp_path))
    newer = ANN.replace("2020-01-05", "2025-06-30").replace("A1,I,", "A1,C,").replace(",Ann,Lee,", ",,,")
    ingest([extract(tmp_path, newer, name="new.csv")], store, options(tmp_path))
    con = connect()
    con.register("store_accounts", Store(store).scan("accounts").collect().to_arrow())
    sql = (sql_root() / "staging" / "03_stg_accounts.sql").read_text(encoding="utf-8")
    query = f"select account_id, holder_type, is_business, opened_date from ({sql})"  # noqa: S608 - our own file
    rows = con.execute(query).fetchall()
    assert rows == [("A1", "business", True, dt.date(2025, 6, 30))]


# --- pseudonyms ---------------------------------------------------------------------------------------------------
def test_with_a_key_no_clear_customer_data_reaches_the_store(tmp_path: Path) -> None:
    def distinct(row: str) -> str:  # values long enough never to occur by chance in compressed bytes
        for short, long in (
            ("A1,", "ACCT-7741,"),
            ("B1,", "ACCT-8852,"),
            ("A9,", "ACCT-9963,"),
            ("Ann", "Annabelle"),
            ("Lee", "Leopoldsson"),
            ("Tom", "Tomasino"),
            ("Acme Ltd", "Acmeworth Ltd"),
        ):
            row = row.replace(short, long)
        return row  # fmt: skip

    bad = TOM.replace("A1,", "A9,").replace(",pp,", ",VISA,")
    accounts, quarantine = ingested(tmp_path, *(distinct(r) for r in (ANN, TOM, ACME, bad)), key=KEY)
    clear = {
        "ACCT-7741",
        "ACCT-8852",
        "ACCT-9963",
        "Annabelle",
        "Leopoldsson",
        "Tomasino",
        "Acmeworth",
        "X 123-45",
        "REG-77",
        "Example Street",
        "212 555 0101",
        "212-555-0102",
        "1980-02-01",
        "1981-03-02",
    }
    for path in (tmp_path / "s").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [value for value in clear if value.encode() in data], path
            assert KEY not in data
    pseudo = Pseudonymizer(KEY)
    assert set(accounts["account_id"]) == {pseudo.one("ACCT-7741"), pseudo.one("ACCT-8852")}
    for name in IDENTIFYING:
        assert accounts[name].drop_nulls().str.contains(r"^p[0-9a-f]{24}$").all(), name
    by_holder = {r["occupation"]: r for r in accounts.to_dicts()}
    assert by_holder["Teacher"]["given_name"] == pseudo.field("given_name", "ANNABELLE ")  # case, spaces
    assert by_holder["Teacher"]["family_name"] == by_holder["Cook"]["family_name"]  # the same family name
    assert by_holder["Teacher"]["family_name"] != pseudo.field("given_name", "Leopoldsson")  # fields do not mix
    # spelling variants of one phone number and id number are one pseudonym, so shared ones stay visible
    assert by_holder["Teacher"]["phone"] == by_holder["Consulting"]["phone"] == pseudo.field("phone", "+12125550101")
    assert pseudo.field("id_number", "x12345") == by_holder["Teacher"]["id_number"]
    # a person's birth date keeps its year; a company's date of incorporation is kept whole
    assert by_holder["Teacher"]["birth_date"] == dt.date(1980, 1, 1)
    assert by_holder["Consulting"]["birth_date"] == dt.date(2010, 2, 1)
    assert by_holder["Teacher"]["postcode"] == "00123"  # not identifying alone: kept
    assert quarantine["row"].to_list() == [5]
    assert quarantine["raw"][0].startswith(WITHHELD)  # the sha256 of the record's text, not the text
    assert quarantine["reason"][0].startswith("unknown id type '…'")  # the value a reason quotes is masked


# --- finwatch's own accounts table --------------------------------------------------------------------------------
def test_accounts_parquet_with_and_without_the_customer_columns(tmp_path: Path) -> None:
    v1 = pa.schema([f for f in ACCOUNT_SCHEMA if f.name not in KYC_COLUMNS and not f.name.startswith("source_")],
                   metadata={b"finwatch.table": b"accounts", b"finwatch.schema_version": b"1"})  # fmt: skip
    old = tmp_path / "old.parquet"
    pq.write_table(pa.Table.from_pylist([{"account_id": "A1", "kind": "bank_account", "holder_type": "person",
                                          "holder_name": "Ann Lee"}], schema=v1), old)  # fmt: skip
    kyc = tmp_path / "kyc.parquet"
    record = {"account_id": "B1", "kind": "bank_account", "holder_type": "business", "birth_date": dt.date(2010, 2, 1),
              "id_type": "company_registration", "status": "frozen", "own_client": True, "source_format": "x",
              "source_file_sha256": "0", "source_row": 1}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([record], schema=ACCOUNT_SCHEMA), kyc)
    report = ingest([old, kyc], tmp_path / "s", IngestOptions())
    assert report.committed, [f.error for f in report.files]
    stored = {r["account_id"]: r for r in Store(tmp_path / "s").scan("accounts").collect().to_dicts()}
    assert stored["A1"]["holder_name"] == "Ann Lee"
    assert all(stored["A1"][c] is None for c in KYC_COLUMNS)
    assert (stored["B1"]["status"], stored["B1"]["own_client"], stored["B1"]["birth_date"]) == (
        "frozen", True, dt.date(2010, 2, 1))  # fmt: skip


def test_bad_customer_values_in_an_accounts_parquet_are_quarantined(tmp_path: Path) -> None:
    base = {"kind": "bank_account", "holder_type": "person", "source_format": "x", "source_file_sha256": "0",
            "source_row": 1}  # fmt: skip
    records = [
        {**base, "account_id": "A1", "status": "open", "id_type": "passport", "id_country": "US"},
        {**base, "account_id": "A2", "status": "asleep"},
        {**base, "account_id": "A3", "id_type": "visa"},
        {**base, "account_id": "A4", "birth_date": TODAY + dt.timedelta(days=1)},
        {**base, "account_id": "A5", "id_country": "usa"},
    ]
    path = tmp_path / "accounts.parquet"
    pq.write_table(pa.Table.from_pylist(records, schema=ACCOUNT_SCHEMA), path)
    report = ingest([path], tmp_path / "s", IngestOptions(pseudonym_key=KEY))
    f = report.files[0]
    assert (f.rows_read, f.accepted, f.quarantined) == (5, 1, 4)
    q = Store(tmp_path / "s").scan("quarantine").collect().sort("row")
    # pseudonymised: the values a reason quotes are masked
    assert [r.split(" (")[0] for r in q["reason"]] == [
        "unknown status '…'", "unknown id_type '…'", "birth_date in the future",
        "id_country '…' is not an ISO 3166 alpha-2 code"]  # fmt: skip
    assert q["raw"].str.starts_with(WITHHELD).all()  # pseudonymised: the records' values are not kept


# --- the synthetic world's extract --------------------------------------------------------------------------------
def test_the_synthetic_extract_ingests_into_the_worlds_own_client_accounts(
    tmp_path: Path, small_world_dir: tuple[World, Path]
) -> None:
    world, root = small_world_dir
    report = ingest([root / "customers" / "customers.csv"], tmp_path / "s", IngestOptions())
    f = report.files[0]
    own = world.accounts.filter(pl.col("own_client"))
    holders = pl.concat([own, directors(world.accounts, world.config.seed)])  # a business, then its director
    assert (f.rows_read, f.accepted, f.quarantined) == (holders.height, holders.height, 0)
    stored = Store(tmp_path / "s").scan("accounts").collect()
    columns = [c for c in ACCOUNT_SCHEMA.names if not c.startswith("source_") and c != "links"]  # no links role
    key = ["account_id", "holder_type", "holder_name"]
    assert stored.select(columns).sort(key).equals(holders.select(columns).sort(key))


def test_truth_accounts_carry_the_customer_data_for_the_demo(
    tmp_path: Path, small_world_dir: tuple[World, Path]
) -> None:
    world, root = small_world_dir
    assert ingest([root / "truth" / "accounts.parquet"], tmp_path / "s", IngestOptions()).committed
    stored = Store(tmp_path / "s").scan("accounts").collect()
    holders = pl.concat([world.accounts, directors(world.accounts, world.config.seed)])
    key = ["account_id", "holder_type", "holder_name"]
    lineage = ["source_format", "source_file_sha256", "source_row"]
    assert stored.drop(lineage).sort(key, nulls_last=True).equals(holders.drop(lineage).sort(key, nulls_last=True))
    firms = stored.filter(pl.col("own_client") & (pl.col("holder_type") != "person"))["account_id"]
    people = stored.filter(pl.col("account_id").is_in(firms.to_list()) & (pl.col("holder_type") == "person"))
    assert people["account_id"].n_unique() == firms.n_unique()  # every business client has its director
    own = stored.filter(pl.col("own_client"))
    assert own.height
    assert own.select(KYC_COLUMNS[2:]).null_count().sum_horizontal().item() == 0  # complete


def test_the_extract_is_seeded_byte_identical_and_in_the_manifest(tmp_path: Path) -> None:
    config = WorldConfig(seed=3, accounts=600, days=14, exports=())
    digests = []
    for name in ("a", "b"):
        save_world(generate_world(config), tmp_path / name)
        digests.append(hashlib.sha256((tmp_path / name / "customers" / "customers.csv").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    manifest = json.loads((tmp_path / "a" / "world.json").read_text())
    assert {"path": "customers/customers.csv", "sha256": digests[0]}.items() <= next(
        f for f in manifest["files"] if f["path"] == "customers/customers.csv").items()  # fmt: skip
    other = WorldConfig(seed=4, accounts=600, days=14, exports=())
    save_world(generate_world(other), tmp_path / "c")
    assert hashlib.sha256((tmp_path / "c" / "customers" / "customers.csv").read_bytes()).hexdigest() != digests[0]


def test_the_extract_is_evidently_synthetic_and_read_by_the_shipped_mapping(
    small_world_dir: tuple[World, Path],
) -> None:
    world, root = small_world_dir
    with (root / "customers" / "customers.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=";")
        rows = list(reader)
        header = list(reader.fieldnames or ())
    assert header == list(CUSTOMER_CSV_COLUMNS)
    assert set(shipped_customer_mappings()["finwatch-synth-customers"].columns.values()) == set(header)
    firms = directors(world.accounts, world.config.seed)  # a director shares the business's address and phone
    assert len(rows) == world.accounts.filter(pl.col("own_client")).height + firms.height
    assert all(r["ID Number"].startswith("SYN-") for r in rows)
    assert all(re.fullmatch(r"\+1-[2-9][0-9]{2}-555-01[0-9]{2}", r["Phone"]) for r in rows)
    assert all(r["Street"].split(" ", 1)[1] in vocab.SYNTHETIC_STREETS for r in rows)
    assert len({r["ID Number"] for r in rows}) == len(rows)
    assert len({r["Phone"] for r in rows}) == len(rows) - firms.height
    assert {r["Own Client"] for r in rows} == {"Y"}
