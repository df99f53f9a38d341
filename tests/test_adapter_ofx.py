"""The OFX/QFX adapter against the statements in tests/fixtures/ofx and hand-made broken or hostile files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finwatch.exceptions import InputError
from finwatch.ingest._base import PARSED_SCHEMA, Parsed, ParseOptions, Source
from finwatch.ingest._pipeline import IngestOptions, ingest
from finwatch.ingest._registry import detect
from finwatch.ingest.adapters.ofx import OfxAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "ofx"
CHECKING = FIXTURES / "checking-1.02.ofx"
CARD = FIXTURES / "creditcard-2.11.qfx"
HOSTILE = "XML with DOCTYPE/ENTITY declarations is refused (entity expansion or external entities)"

# a minimal OFX 2 bank statement; {records} are STMTTRN aggregates
XML = """<?xml version="1.0" encoding="UTF-8"?>
<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" NEWFILEUID="NONE"?>
<OFX>
<BANKMSGSRSV1><STMTTRNRS><TRNUID>1</TRNUID><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>
<STMTRS><CURDEF>EUR</CURDEF>
<BANKACCTFROM><BANKID>12345678</BANKID><ACCTID>DE0001</ACCTID><ACCTTYPE>CHECKING</ACCTTYPE></BANKACCTFROM>
<BANKTRANLIST><DTSTART>20240101</DTSTART><DTEND>20240131</DTEND>
{records}
</BANKTRANLIST>
<LEDGERBAL><BALAMT>0</BALAMT><DTASOF>20240131</DTASOF></LEDGERBAL>
</STMTRS></STMTTRNRS></BANKMSGSRSV1>
</OFX>
"""
GOOD = ("<STMTTRN><TRNTYPE>CREDIT</TRNTYPE><DTPOSTED>20240105</DTPOSTED><TRNAMT>10.00</TRNAMT>"
        "<FITID>A1</FITID><NAME>GOOD</NAME></STMTTRN>")  # fmt: skip


def record(fitid: str = "B1", trntype: str = "DEBIT", posted: str = "20240106", amount: str = "-5.00",
           extra: str = "") -> str:  # fmt: skip
    return (f"<STMTTRN><TRNTYPE>{trntype}</TRNTYPE><DTPOSTED>{posted}</DTPOSTED><TRNAMT>{amount}</TRNAMT>"
            f"<FITID>{fitid}</FITID>{extra}</STMTTRN>")  # fmt: skip


def parse(path: Path) -> Parsed:
    return OfxAdapter().parse(Source(path, "0" * 64, str(path)), ParseOptions())


def write(tmp_path: Path, text: str | bytes, name: str = "statement.ofx") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def row_at(parsed: Parsed, line: int) -> dict[str, Any]:
    rows = parsed.rows.filter(source_row=line).to_dicts()
    assert len(rows) == 1, f"no single record at line {line}"
    return rows[0]


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path", "found"),
    [
        pytest.param(CHECKING, "OFX 1.02 SGML", id="OFX 1.02 SGML bank statement"),
        pytest.param(CARD, "OFX 2.11 XML (QFX)", id="OFX 2.11 XML credit card statement (QFX)"),
    ],
)
def test_fixtures_are_detected_as_ofx(path: Path, found: str) -> None:
    assert detect(path) == ("ofx", found)


@pytest.mark.parametrize(
    ("path", "detected"),
    [
        pytest.param(CHECKING, "OFX 1.02 SGML: 1 bank statement, 6 records", id="bank"),
        pytest.param(CARD, "OFX 2.11 XML (QFX): 1 credit card statement, 6 records", id="credit card"),
    ],
)
def test_every_record_of_a_fixture_is_read_and_accepted(path: Path, detected: str) -> None:
    parsed = parse(path)
    assert parsed.detected == detected
    assert parsed.rows.schema == PARSED_SCHEMA
    assert parsed.rows["_reason"].null_count() == 6
    assert parsed.rows["txn_id"].str.starts_with("ofx:").all()
    assert parsed.rows["txn_id"].n_unique() == 6
    assert parsed.notes == []


@pytest.mark.parametrize(
    ("path", "line", "expected"),
    [
        pytest.param(
            CHECKING,
            43,
            {
                "ts": utc(2024, 1, 2),
                "amount": Decimal("2450.00"),
                "currency": "USD",
                "src_account": None,
                "dst_account": "4402981735",
                "dst_institution": "011000015",
                "channel": "ach",
                "counterparty_name": "NORTHWIND TRADERS PAYROLL",
            },
            id="direct deposit: credit to the account, date only at 00:00 UTC",
        ),
        pytest.param(
            CHECKING,
            51,
            {
                "ts": utc(2024, 1, 4, 12, 30),
                "amount": Decimal("42.17"),
                "src_account": "4402981735",
                "dst_account": None,
                "channel": "card",
                "mcc": "5812",
                "counterparty_name": "CAFÉ LUMIÈRE",
            },
            id="POS debit, name decoded from CHARSET:1252",
        ),
        pytest.param(
            CHECKING,
            60,
            {"ts": utc(2024, 1, 8, 14, 30), "amount": Decimal("200.00"), "channel": "cash"},
            id="ATM withdrawal at 09:30 EST is 14:30 UTC",
        ),
        pytest.param(
            CHECKING,
            67,
            {"amount": Decimal("1250.00"), "channel": "cheque", "description": "RENT JANUARY; cheque 1047"},
            id="cheque with its number",
        ),
        pytest.param(
            CHECKING,
            76,
            {
                "src_account": "4402981735",
                "dst_account": "4402981999",
                "dst_institution": "011000015",
                "channel": "wire",
                "amount": Decimal("500.00"),
            },
            id="transfer with BANKACCTTO names the counterparty",
        ),
        pytest.param(CHECKING, 89, {"amount": Decimal("12.00"), "channel": "internal"}, id="service charge"),
        pytest.param(
            CARD,
            34,
            {
                "ts": utc(2024, 1, 3),
                "amount": Decimal("64.90"),
                "currency": "EUR",
                "src_account": "5500000000000004",
                "dst_account": None,
                "channel": "card",
                "mcc": "5942",
                "description": "Kartenzahlung Lüneburg",
            },
            id="card purchase (generic DEBIT)",
        ),
        pytest.param(
            CARD,
            43,
            {
                "ts": utc(2024, 1, 9, 17, 30),
                "amount": Decimal("129.00"),
                "currency": "EUR",
                "description": "Card purchase; original currency GBP at rate 1.1628",
            },
            id="ORIGCURRENCY informs: the amount stays in CURDEF",
        ),
        pytest.param(CARD, 56, {"amount": Decimal("300.00"), "channel": "cash"}, id="cash advance"),
        pytest.param(
            CARD,
            63,
            {"src_account": None, "dst_account": "5500000000000004", "amount": Decimal("25.50"), "channel": "card"},
            id="refund: credit to the card account",
        ),
        pytest.param(
            CARD,
            72,
            {"dst_account": "5500000000000004", "amount": Decimal("450.00"), "channel": "ach"},
            id="payment to the card",
        ),
    ],
)
def test_fixture_records_match_the_file(path: Path, line: int, expected: dict[str, Any]) -> None:
    row = row_at(parse(path), line)
    assert {k: row[k] for k in expected} == expected
    assert row["_reason"] is None


def test_ids_are_stable_and_do_not_contain_the_account() -> None:
    first, second = parse(CARD).rows["txn_id"], parse(CARD).rows["txn_id"]
    assert first.to_list() == second.to_list()
    assert not first.str.contains("5500000000000004").any()


def test_children_out_of_order_are_accepted(tmp_path: Path) -> None:
    out_of_order = ("<STMTTRN><MEMO>memo first</MEMO><NAME>SHOP</NAME><TRNTYPE>POS</TRNTYPE><FITID>C1</FITID>"
                    "<TRNAMT>-3.50</TRNAMT><DTPOSTED>20240107</DTPOSTED></STMTTRN>")  # fmt: skip
    (row,) = parse(write(tmp_path, XML.format(records=out_of_order))).rows.to_dicts()
    assert (row["_reason"], row["amount"], row["description"], row["channel"]) == (
        None, Decimal("3.50"), "memo first", "card")  # fmt: skip


def test_a_fitid_repeated_with_other_content_is_no_id(tmp_path: Path) -> None:
    records = GOOD + record(fitid="A1") + record(fitid="B2")
    parsed = parse(write(tmp_path, XML.format(records=records)))
    assert parsed.rows["txn_id"].is_null().to_list() == [True, True, False]
    assert parsed.notes == ["2 records share a FITID with a different record: their ids are content hashes"]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        pytest.param(record(amount="12a.00"), "unreadable amount '12a.00'", id="amount 12a.00"),
        pytest.param(record(amount="NaN"), "unreadable amount NaN", id="amount NaN"),
        pytest.param(record(amount="0.00"), "zero amount", id="zero amount"),
        pytest.param(record(amount="-1e25"), "amount -1E+25 does not fit", id="amount beyond 10^20"),
        pytest.param(record(posted="20241301"), "STMTTRN: Can't set STMTTRN.dtposted", id="month 13"),
        pytest.param(
            record(posted="20240230"), "STMTTRN: Can't set STMTTRN.dtposted to 20240230: day is out", id="30 February"
        ),
        pytest.param(record(trntype="HOLD"), "STMTTRN: Can't set STMTTRN.trntype", id="unknown TRNTYPE"),
        pytest.param(record(fitid=""), "STMTTRN: Can't set STMTTRN.fitid", id="empty FITID"),
        pytest.param(
            record(extra="<CORRECTFITID>A1</CORRECTFITID><CORRECTACTION>DELETE</CORRECTACTION>"),
            "correction (DELETE of FITID A1)",
            id="correction record",
        ),
    ],
)
def test_a_bad_record_is_kept_with_its_reason(tmp_path: Path, bad: str, reason: str) -> None:
    parsed = parse(write(tmp_path, XML.format(records=f"{GOOD}\n{bad}")))
    assert parsed.rows["source_row"].to_list() == [8, 9]
    good, rejected = parsed.rows.to_dicts()
    assert good["_reason"] is None
    assert rejected["_reason"].startswith(reason), rejected["_reason"]
    assert rejected["_raw"] == bad


def test_a_statement_without_currency_rejects_its_records(tmp_path: Path) -> None:
    text = XML.format(records=GOOD).replace("<CURDEF>EUR</CURDEF>", "<CURDEF>XYZ</CURDEF>")
    (row,) = parse(write(tmp_path, text)).rows.to_dicts()
    assert row["_reason"] == "bank statement has no valid currency (<CURDEF> 'XYZ')"


def test_a_file_cut_inside_a_record_keeps_the_earlier_ones(tmp_path: Path) -> None:
    text = CHECKING.read_bytes()
    cut = write(tmp_path, text[: text.index(b"<TRNAMT>-1250.00")])
    parsed = parse(cut)
    assert parsed.rows.height == 4
    assert parsed.rows["_reason"].null_count() == 3
    assert parsed.rows["_reason"][-1].startswith("STMTTRN: ")  # its FITID never came
    assert parsed.notes == ["the file does not end with </OFX>: it may be truncated"]


def test_a_file_cut_after_a_record_says_so(tmp_path: Path) -> None:
    text = CARD.read_bytes()
    parsed = parse(write(tmp_path, text[: text.index(b"</STMTTRN>") + 10], "cut.qfx"))
    assert parsed.rows.height == 1
    assert parsed.rows["_reason"][0] is None
    assert parsed.notes == ["the file does not end with </OFX>: it may be truncated"]


HEADER_V1 = b"OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"", "file is empty", id="empty"),
        pytest.param(bytes(range(256)) * 4, "binary data (NUL bytes)", id="binary"),
        pytest.param(
            XML.format(records=GOOD)
            .replace("<?OFX", '<!DOCTYPE OFX [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<?OFX')
            .encode(),
            HOSTILE,
            id="external entity",
        ),
        pytest.param(
            XML.format(records=GOOD)
            .replace("<?OFX", '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n<?OFX')
            .encode(),
            HOSTILE,
            id="entity expansion",
        ),
        pytest.param(b'<!ENTITY x "y">' + XML.format(records=GOOD).encode(), HOSTILE, id="ENTITY alone"),
        pytest.param(HEADER_V1, "not readable as OFX: OFX header is malformed", id="cut inside the header"),
        pytest.param(
            XML.format(records=GOOD).replace("</TRNAMT>", "</TRNAMTX>").encode(),
            "not readable as OFX: unbalanced tags",
            id="mismatched end tag",
        ),
        pytest.param(
            XML.format(records=GOOD).replace("<DTEND>", "stray text<DTEND>").encode(),
            "row 7: not readable as OFX: Tail text 'stray text'",
            id="text between tags",
        ),
        pytest.param(b"<OFX><BANKMSGSRSV1></BANKMSGSRSV1></OFX>", "not readable as OFX", id="no header"),
        pytest.param(
            XML.format(records=GOOD).replace("STMTRS>", "INVSTMTRS>").encode(),
            "investment statements are not supported",
            id="investment statement",
        ),
        pytest.param(XML.format(records=GOOD).encode("utf-16"), "binary data (NUL bytes)", id="UTF-16"),
        pytest.param(
            XML.format(records=GOOD).replace("GOOD", "G\xf6\xf6D").encode("latin-1"),
            "row 8: not valid utf-8 (byte 0xf6)",
            id="OFX 2 not in UTF-8",
        ),
    ],
)
def test_an_unreadable_or_hostile_file_is_one_input_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(InputError) as error:
        parse(path)
    assert str(error.value).startswith(str(path))
    assert reason in str(error.value)


def test_every_fixture_ingests_end_to_end(tmp_path: Path) -> None:
    report = ingest([CHECKING, CARD], tmp_path / "store", IngestOptions())
    assert report.committed
    assert [(f.status, f.rows_read, f.accepted, f.quarantined) for f in report.files] == [("ingested", 6, 6, 0)] * 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from([CHECKING.name, CARD.name]),
    cut=st.floats(min_value=0, max_value=1),
    edits=st.lists(
        st.tuples(st.floats(min_value=0, max_value=1), st.sampled_from(b"0,.:/<>?CDRN -}\n\xff")), max_size=3
    ),
)
def test_a_damaged_fixture_gives_rows_or_one_input_error(
    tmp_path: Path, name: str, cut: float, edits: list[tuple[float, int]]
) -> None:
    data = bytearray((FIXTURES / name).read_bytes())
    for where, byte in edits:
        data[int(where * (len(data) - 1))] = byte
    path = write(tmp_path, bytes(data[: int(cut * len(data))]))
    try:
        parsed, message = parse(path), ""
    except InputError as error:
        parsed, message = None, str(error)
    if parsed is None:
        assert message.startswith(str(path))
        return
    assert parsed.rows.schema == PARSED_SCHEMA
    accepted = parsed.rows.filter(parsed.rows["_reason"].is_null())
    assert (accepted["amount"] > 0).all()
    assert accepted["ts"].null_count() == 0
    assert parsed.rows["source_row"].null_count() == 0
