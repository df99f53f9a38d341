"""The AMLSim adapter: both transaction layouts, accounts, alert and flag labels, and bad input."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finwatch.exceptions import InputError
from finwatch.ingest._base import Parsed, ParseOptions, Sample, Source
from finwatch.ingest._pipeline import IngestOptions, ingest
from finwatch.ingest._registry import detect, sample
from finwatch.ingest.adapters.amlsim import AmlSimAdapter, typology_name
from finwatch.store import Store

FIXTURE = Path(__file__).parent / "fixtures" / "amlsim" / "20K_fanin200"
UTC = dt.UTC
GRAPH_HEADER = "sourceNodeId,targetNodeId,value,time"
CONVERTED_HEADER = "tran_id,orig_acct,bene_acct,tx_type,base_amt,tran_timestamp,is_sar,alert_id"


def _parse(path: Path, **options: object) -> Parsed:
    return AmlSimAdapter().parse(Source(path, "0" * 64, str(path)), ParseOptions(**options))  # type: ignore[arg-type]


def _folder(root: Path, files: Mapping[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (root / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


@pytest.fixture(scope="module")
def fixture_parsed() -> Parsed:
    return _parse(FIXTURE)


# --- detection -----------------------------------------------------------------------------------------------
def test_detects_the_output_folder_and_the_bare_transactions_file() -> None:
    assert detect(FIXTURE) == ("amlsim", "AMLSim output folder, sourceNodeId layout with nodes.csv, metadata.txt")
    assert detect(FIXTURE / "transactions.csv") == ("amlsim", "AMLSim transactions CSV, sourceNodeId layout")


def test_detects_the_converted_layout_in_any_column_order(tmp_path: Path) -> None:
    file = tmp_path / "tx.csv"
    file.write_text("BASE_AMT,orig_acct,bene_acct,tran_timestamp\n1,a,b,3\n")
    assert AmlSimAdapter.sniff(sample(file)) == "AMLSim transactions CSV, orig_acct layout"


@pytest.mark.parametrize(
    ("files", "is_dir"),
    [
        pytest.param({"nodes.csv": "nodeid,isFraud\n1,0\n"}, True, id="folder-without-transactions"),
        pytest.param({"transactions.csv": "a,b,c,d\n1,2,3,4\n"}, True, id="folder-with-other-header"),
        pytest.param({"transactions.csv": "sourceNodeId,targetNodeId,time\n1,2,3\n"}, True, id="folder-partial-header"),
        pytest.param({"transactions.csv": "Timestamp,From Bank,Account,To Bank,Account\n"}, False, id="amlworld-file"),
        pytest.param({"transactions.csv": ""}, True, id="folder-with-empty-transactions"),
    ],
)
def test_sniff_declines_what_is_not_amlsim(tmp_path: Path, files: dict[str, str], is_dir: bool) -> None:
    folder = _folder(tmp_path / "in", files)
    target = folder if is_dir else folder / "transactions.csv"
    assert AmlSimAdapter.sniff(sample(target)) is None


def test_sniff_of_an_unreadable_folder_entry_is_none(tmp_path: Path) -> None:
    (tmp_path / "transactions.csv").mkdir()  # a folder where the file should be
    assert AmlSimAdapter.sniff(Sample(tmp_path, b"", True, ("transactions.csv",))) is None


# --- the real fixture ----------------------------------------------------------------------------------------
def test_fixture_counts(fixture_parsed: Parsed) -> None:
    rows = fixture_parsed.rows
    assert rows.height == 118_250
    assert rows["_reason"].null_count() == rows.height
    assert rows["source_row"].to_list() == list(range(2, 118_252))
    assert rows["txn_id"].null_count() == rows.height  # content hashes come from the pipeline
    assert set(rows["channel"].unique()) == {"wire"}
    assert set(rows["currency"].unique()) == {"USD"}
    assert fixture_parsed.accounts is not None
    assert fixture_parsed.accounts.height == 20_000
    assert set(fixture_parsed.accounts["kind"].unique()) == {"bank_account"}
    assert set(fixture_parsed.accounts["holder_type"].unique()) == {"person"}
    labels = fixture_parsed.labels
    assert labels is not None
    assert labels.height == 954
    assert labels["label"].all()
    assert set(labels["typology"].unique()) == {"fan_in"}
    assert labels["instance_id"].null_count() == 954  # no alerts file: patterns are not identified
    assert set(labels["source"].unique()) == {"AMLSim 20K_fanin200"}
    with (FIXTURE / "nodes.csv").open(newline="") as handle:
        fraud = {r["nodeid"] for r in csv.DictReader(handle) if r["isFraud"] == "1"}
    assert set(labels["subject_id"]) == fraud
    # metadata.txt agrees with what was read, so the only note is where the labels came from
    assert fixture_parsed.notes == [
        "954 account label(s) from nodes.csv isFraud (typology fan_in; no alert ids, so no pattern instances)"
    ]


def test_fixture_amounts_are_the_exact_file_text(fixture_parsed: Parsed) -> None:
    with (FIXTURE / "transactions.csv").open(newline="") as handle:
        records = list(csv.reader(handle))[1:]
    rows = fixture_parsed.rows
    assert rows["amount"].to_list() == [Decimal(r[2]) for r in records]
    assert rows["src_account"].to_list() == [r[0] for r in records]
    assert rows["dst_account"].to_list() == [r[1] for r in records]
    by_row = {r["source_row"]: r for r in rows.filter(pl.col("source_row").is_in([2, 21, 59640, 118251])).to_dicts()}
    assert by_row[2]["amount"] == Decimal("103.55")
    assert by_row[2]["_raw"] == "360,18984,103.55,1"
    assert by_row[21]["amount"] == Decimal("259.7")  # one decimal in the file
    assert (by_row[59640]["src_account"], by_row[59640]["dst_account"], by_row[59640]["amount"]) == (
        "5832", "14356", Decimal("2.52"))  # fmt: skip
    assert by_row[118251]["amount"] == Decimal("374.64")
    assert by_row[118251]["ts"] == dt.datetime(2017, 5, 30, tzinfo=UTC)  # step 149 after 2017-01-01


def test_steps_map_to_days_after_the_start_date(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "sim", {"transactions.csv": f"{GRAPH_HEADER}\n1,2,5,0\n1,2,5,1\n1,2,5,2\n"})
    default = _parse(folder).rows["ts"].to_list()
    assert default == [dt.datetime(2017, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    leap = _parse(folder, start=dt.date(2020, 2, 28)).rows["ts"].to_list()
    assert leap == [dt.datetime(2020, 2, 28, tzinfo=UTC), dt.datetime(2020, 2, 29, tzinfo=UTC),
                    dt.datetime(2020, 3, 1, tzinfo=UTC)]  # fmt: skip
    assert _parse(folder, currency="eur").rows["currency"].unique().to_list() == ["EUR"]


# --- the converted layout with alerts ------------------------------------------------------------------------
CONVERTED = {
    "transactions.csv": "\r\n".join([
        CONVERTED_HEADER,
        "1,A1,A2,TRANSFER,100.00,2017-01-05T00:00:00Z,True,7",
        "2,A3,A2,transfer,1e3,2017-01-06T00:00:00Z,True,7",
        "3,A2,B9,CHECK,25.5,20170107,False,-1",
        "4,A4,BR1,CASH-IN,40,3,False,-1",
        "5,BR1,A4,CASH_OUT,10,2017-01-08 12:30:00,False,-1",
        "6,A5,A6,CREDIT,7.25,2017-01-09T00:00:00+02:00,False,9",
        "7,A5,A6,Zelle,1,2017-01-09T00:00:00Z,False,-1",
        "",
    ]),
    "alerts.csv": "\n".join([
        "alert_id,alert_type,acct_id,is_sar,is_subject",
        "7,fan-in,A2,True,True",
        "7,fan-in,A1,True,False",
        "7,fan-in,A3,True,False",
        "9,Cycle,A5,False,False",
        "9,Cycle,A6,False,False",
        "",
    ]),
    "accounts.csv": "\n".join([
        "acct_id,dsply_nm,type,acct_rptng_crncy,prior_sar_count,open_dt,bank_id,first_name,last_name,country,city",
        "A1,C_A1,I,USD,True,2016-12-01T00:00:00Z,bank_a,Ann,Lee,US,Boston",
        "A2,C_A2,O,USD,True,2016-11-02T00:00:00Z,bank_b,,,US,Austin",
        "A3,C_A3,I,USD,True,5,bank_a,Bo,Ng,US,",
        "A4,C_A4,I,USD,False,,bank_a,,,,",
        "A7,C_A7,I,USD,True,20160101,bank_c,,,GB,London",
        "",
    ]),
}  # fmt: skip


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Parsed:
    return _parse(_folder(tmp_path_factory.mktemp("amlsim") / "conv", CONVERTED))


def test_converted_layout_transactions(converted: Parsed) -> None:
    rows = {r["txn_id"]: r for r in converted.rows.to_dicts()}
    assert len(rows) == 7
    assert all(r["_reason"] is None for r in rows.values())
    assert rows["1"]["ts"] == dt.datetime(2017, 1, 5, tzinfo=UTC)
    assert rows["1"]["channel"] == "wire"
    assert rows["1"]["src_institution"] == "bank_a"
    assert rows["1"]["dst_institution"] == "bank_b"
    assert rows["2"]["amount"] == Decimal(1000)
    assert rows["2"]["channel"] == "wire"
    assert rows["3"]["ts"] == dt.datetime(2017, 1, 7, tzinfo=UTC)
    assert rows["3"]["channel"] == "cheque"
    assert rows["3"]["dst_institution"] is None  # B9 is not in accounts.csv
    cash_in, cash_out = rows["4"], rows["5"]
    assert (cash_in["src_account"], cash_in["dst_account"], cash_in["branch"]) == (None, "A4", "BR1")
    assert cash_in["ts"] == dt.datetime(2017, 1, 4, tzinfo=UTC)
    assert cash_in["channel"] == "cash"
    assert (cash_out["src_account"], cash_out["dst_account"], cash_out["branch"]) == ("A4", None, "BR1")
    assert cash_out["ts"] == dt.datetime(2017, 1, 8, 12, 30, tzinfo=UTC)
    assert cash_out["channel"] == "cash"
    assert rows["6"]["channel"] == "ach"
    assert rows["6"]["ts"] == dt.datetime(2017, 1, 8, 22, tzinfo=UTC)
    assert rows["7"]["channel"] == "wire"
    assert rows["7"]["description"] == "tx_type Zelle"
    assert rows["7"]["_raw"] == "7,A5,A6,Zelle,1,2017-01-09T00:00:00Z,False,-1"  # CR stripped
    assert converted.row_labels is not None
    assert converted.row_labels.to_dicts() == [
        {"source_row": 2, "typology": "fan_in", "instance_id": "fan_in-7"},
        {"source_row": 3, "typology": "fan_in", "instance_id": "fan_in-7"},
    ]


def test_converted_layout_labels_from_alerts(converted: Parsed) -> None:
    assert converted.labels is not None
    labels = {r["subject_id"]: r for r in converted.labels.to_dicts()}
    assert labels["A2"] == {"subject_kind": "account", "subject_id": "A2", "label": True, "typology": "fan_in",
                            "instance_id": "fan_in-7", "role": "subject", "source": "AMLSim conv"}  # fmt: skip
    assert labels["A1"]["role"] == labels["A3"]["role"] == "member"
    # a false alert is an innocent look-alike
    assert labels["A5"]["label"] is False
    assert labels["A5"]["typology"] == "lookalike_cycle"
    assert labels["A5"]["instance_id"] == "cycle-9"
    # flagged in accounts.csv but in no alert: a label without an instance
    assert labels["A7"]["label"] is True
    assert labels["A7"]["typology"] == "unspecified"
    assert labels["A7"]["instance_id"] is None
    assert set(labels) == {"A1", "A2", "A3", "A5", "A6", "A7"}


def test_converted_layout_accounts(converted: Parsed) -> None:
    assert converted.accounts is not None
    accounts = {r["account_id"]: r for r in converted.accounts.to_dicts()}
    assert accounts["A1"]["holder_name"] == "Ann Lee"
    assert accounts["A1"]["holder_type"] == "person"
    assert accounts["A1"]["opened_date"] == dt.date(2016, 12, 1)
    assert accounts["A1"]["city"] == "Boston"
    assert accounts["A2"]["holder_type"] == "business"
    assert accounts["A2"]["holder_name"] == "C_A2"
    assert accounts["A3"]["opened_date"] == dt.date(2017, 1, 6)  # a step
    assert accounts["A4"]["opened_date"] is None
    assert accounts["A7"]["opened_date"] == dt.date(2016, 1, 1)
    assert accounts["A7"]["institution"] == "bank_c"
    assert accounts["A1"]["source_row"] == 2
    assert accounts["A1"]["kind"] == "bank_account"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("fan-in", "fan_in", id="hyphen"),
        pytest.param("FanOut", "fan_out", id="camel"),
        pytest.param("SCATTER_GATHER", "scatter_gather", id="upper"),
        pytest.param(" gather scatter ", "gather_scatter", id="spaces"),
        pytest.param("--", "unspecified", id="nothing-left"),
    ],
)
def test_typology_names(text: str, expected: str) -> None:
    assert typology_name(text) == expected


# --- end to end ----------------------------------------------------------------------------------------------
def test_ingest_of_the_fixture_folder(tmp_path: Path) -> None:
    report = ingest([FIXTURE], tmp_path / "store", IngestOptions(format="amlsim"))
    assert report.committed, report.files
    (file,) = report.files
    assert file.rows_read == 118_250 == file.accepted + file.quarantined
    assert file.quarantined == 0
    store = Store(tmp_path / "store")
    assert store.scan("transactions").select(pl.len()).collect().item() == file.new
    labels = store.scan("labels").collect()
    assert labels.height == 954
    assert set(labels["subject_kind"]) == {"account"}
    assert store.scan("accounts").select(pl.len()).collect().item() == 20_000


def test_ingest_of_the_converted_layout_with_a_bad_row(tmp_path: Path) -> None:
    files = dict(CONVERTED)
    files["transactions.csv"] += "8,A1,A2,TRANSFER,-3,2017-01-05T00:00:00Z,False,-1\r\n"
    folder = _folder(tmp_path / "conv", files)
    report = ingest([folder], tmp_path / "store", IngestOptions(format="auto"))
    assert report.committed, report.files
    (file,) = report.files
    assert (file.format, file.rows_read, file.accepted, file.quarantined) == ("amlsim", 8, 7, 1)
    store = Store(tmp_path / "store")
    quarantine = store.scan("quarantine").collect()
    assert quarantine["reason"].to_list() == ["negative amount base_amt '-3'"]
    labels = store.scan("labels").collect()
    assert labels.filter(pl.col("subject_kind") == "transaction").height == 2  # the is_sar rows


def test_ingest_reports_a_folder_without_transactions(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "empty", {"nodes.csv": "nodeid,isFraud\n1,0\n"})
    report = ingest([folder], tmp_path / "store", IngestOptions(format="amlsim"))
    assert not report.committed
    assert report.files[0].status == "rejected"
    assert "no transactions.csv" in report.files[0].error


# --- bad input -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("files", "file", "reason"),
    [
        pytest.param({"nodes.csv": "nodeid\n1\n"}, "", "no transactions.csv in this folder", id="no-transactions"),
        pytest.param({"transactions.csv": "sourceNodeId,targetNodeId,time\n1,2,3\n"}, "transactions.csv",
                     "missing required AMLSim columns ['value']", id="missing-value-column"),
        pytest.param({"transactions.csv": "orig_acct,base_amt,tran_timestamp\n1,2,3\n"}, "transactions.csv",
                     "missing required AMLSim columns ['bene_acct']", id="missing-bene-column"),
        pytest.param({"transactions.csv": "a,b,c\n1,2,3\n"}, "transactions.csv",
                     "not an AMLSim transactions header", id="other-header"),
        pytest.param({"transactions.csv": ""}, "transactions.csv", "file is empty", id="empty-file"),
        pytest.param({"transactions.csv": b"\x00\x01\x02"}, "transactions.csv", "binary data", id="binary"),
        pytest.param({"transactions.csv": GRAPH_HEADER.encode() + b"\n1,2,\xff,3\n"}, "transactions.csv",
                     "not valid utf-8", id="not-utf8"),
        pytest.param({"transactions.csv": f"{GRAPH_HEADER}\n1,2,3,4\n", "alerts.csv": "alert_id,acct_id\n1,2\n"},
                     "alerts.csv", "missing required alert columns ['alert_type']", id="alerts-without-type"),
        pytest.param({"transactions.csv": f"{GRAPH_HEADER}\n1,2,3,4\n", "nodes.csv": "foo,isFraud\n1,1\n"},
                     "nodes.csv", "no account id column", id="nodes-without-id"),
        pytest.param({"transactions.csv": f"{GRAPH_HEADER}\n1,2,\r3,4\n"}, "transactions.csv",
                     "carriage return inside a line", id="stray-carriage-return"),
    ],
)  # fmt: skip
def test_unreadable_input_is_an_input_error(
    tmp_path: Path, files: dict[str, str | bytes], file: str, reason: str
) -> None:
    folder = _folder(tmp_path / "sim", files)
    with pytest.raises(InputError) as info:
        _parse(folder)
    assert info.value.file == str(folder / file) if file else str(folder)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param("1,2,abc,3", "unparsable amount value 'abc'", id="non-numeric-value"),
        pytest.param("1,2,-5.00,3", "negative amount value '-5.00'", id="negative-value"),
        pytest.param("1,2,0.00,3", "zero amount value '0.00'", id="zero-value"),
        pytest.param("1,2,,3", "missing amount value", id="missing-value"),
        pytest.param('1,2,"1,000",3', "unparsable amount value '1,000'", id="thousands-separator"),
        pytest.param("1,2,nan,3", "unparsable amount value 'nan'", id="nan-value"),
        pytest.param("1,2,1_000,3", "unparsable amount value '1_000'", id="underscore-value"),
        pytest.param("1,2,0.1234567890123456789,3", "more than 18 decimal places", id="too-many-decimals"),
        pytest.param("1,2,1e-19,3", "more than 18 decimal places", id="tiny-exponent"),
        pytest.param("1,2,1e30,3", "is out of range", id="value-out-of-range"),
        pytest.param("1,2,5,1.5", "unparsable time time '1.5'", id="fractional-step"),
        pytest.param("1,2,5,-1", "negative time step time '-1'", id="negative-step"),
        pytest.param("1,2,5,100001", "is beyond 100,000 days", id="step-beyond-range"),
        pytest.param("1,2,5,99999999999999999999999", "unparsable time", id="step-overflow"),
        pytest.param("1,2,5,", "missing time time", id="missing-step"),
        pytest.param(",2,5,3", "missing source account sourceNodeId", id="missing-source"),
        pytest.param("1, ,5,3", "missing target account targetNodeId", id="blank-target"),
        pytest.param("1,2,5,3,9", "too many columns", id="extra-field"),
        pytest.param("1,2,5", "missing columns", id="truncated-last-line"),
        pytest.param('1,2,"5,3', "unterminated quote", id="unterminated-quote"),
    ],
)
def test_bad_records_are_rows_with_a_reason(tmp_path: Path, line: str, reason: str) -> None:
    # the bad line is the last one, without a newline: also what a truncated file looks like
    folder = _folder(tmp_path / "sim", {"transactions.csv": f"{GRAPH_HEADER}\r\n7,8,1.00,1\r\n\r\n{line}"})
    rows = _parse(folder).rows
    assert rows["source_row"].to_list() == [2, 4]
    good, bad = rows.to_dicts()
    assert good["_reason"] is None
    assert good["amount"] == Decimal("1.00")
    assert reason in (bad["_reason"] or ""), bad["_reason"]
    assert bad["_raw"] == line


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param("A,B,TRANSFER,5,2017-13-45,False,-1", "unparsable time tran_timestamp '2017-13-45'",
                     id="impossible-date"),
        pytest.param("A,B,TRANSFER,5,yesterday,False,-1", "unparsable time", id="word-as-time"),
        pytest.param("A,B,TRANSFER,5,2017-01-01,maybe,-1", "is_sar must be true or false, not 'maybe'",
                     id="bad-is-sar"),
        pytest.param(",B,CASH-IN,5,3,False,-1", "missing account orig_acct of a cash deposit", id="cash-in-no-account"),
        pytest.param("BR,,CASH-OUT,5,3,False,-1", "missing account bene_acct of a cash withdrawal",
                     id="cash-out-no-account"),
        pytest.param("A,B,TRANSFER,-.5e1,3,False,-1", "negative amount base_amt '-.5e1'", id="negative-exponent-form"),
    ],
)  # fmt: skip
def test_bad_records_of_the_converted_layout(tmp_path: Path, fields: str, reason: str) -> None:
    folder = _folder(tmp_path / "sim", {"transactions.csv": f"{CONVERTED_HEADER}\n1,{fields}\n"})
    (row,) = _parse(folder).rows.to_dicts()
    assert reason in (row["_reason"] or ""), row["_reason"]


def test_a_bare_file_is_read_alone(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "sim", CONVERTED)
    parsed = _parse(folder / "transactions.csv")
    assert parsed.rows.height == 7
    assert parsed.accounts is None
    assert parsed.labels is None
    assert parsed.rows["src_institution"].null_count() == 7
    assert "bare file" in parsed.detected


def test_metadata_counts_that_disagree_are_notes(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "sim", {
        "transactions.csv": f"{GRAPH_HEADER}\n1,2,5,1\n",
        "nodes.csv": "nodeid,isFraud,init_balance,fraudStep\n1,1,10,-1\n2,0,10,-1\n",
        "metadata.txt": "nodes: 3 (2 fraud nodes)\ntransactions: 2\npatterns: 1 fan-in, 1 cycle\n",
    })  # fmt: skip
    parsed = _parse(folder)
    assert parsed.labels is not None
    assert parsed.labels["typology"].to_list() == ["unspecified"]
    assert any("2 transactions" in n for n in parsed.notes)
    assert any("3 nodes" in n for n in parsed.notes)
    assert any("2 fraud nodes" in n for n in parsed.notes)
    assert any("2 pattern kinds" in n for n in parsed.notes)


LINE = st.text(alphabet='0123456789abe.,-+" \r', max_size=24)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, max_size=6))
def test_any_text_is_rows_or_an_input_error(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "transactions.csv"
    path.write_text(GRAPH_HEADER + "\n" + "\n".join(lines), newline="")
    try:
        rows = _parse(path).rows
    except InputError:
        return
    physical = (GRAPH_HEADER + "\n" + "\n".join(lines)).split("\n")
    records = [n for n, text in enumerate(physical, start=1) if n > 1 and text not in ("", "\r")]
    numbers = rows["source_row"].to_list()
    if '"' in "".join(lines):  # a quoted field may span lines: a record is numbered by its first line
        assert numbers == sorted(set(numbers))
        assert set(numbers) <= set(records)
    else:
        assert numbers == records
    good = rows.filter(pl.col("_reason").is_null())
    assert good["amount"].null_count() == 0
    assert good["ts"].null_count() == 0
    assert (good["amount"] > 0).all()
    assert rows.filter(pl.col("_reason").is_not_null())["_raw"].null_count() == 0


def test_quoted_field_spanning_lines_is_read_and_numbered_by_its_first_line(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "sim", {"transactions.csv": f'{GRAPH_HEADER}\n1,2,"3\n4",5\n6,7,8,9\n'})
    parsed = _parse(folder)
    assert parsed.rows.height == 2
    assert parsed.rows["source_row"].to_list() == [2, 4]  # physical lines: the record spanning lines 2-3 is row 2
