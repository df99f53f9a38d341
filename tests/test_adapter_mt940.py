"""The MT940/MT942 adapter against real bank exports (tests/fixtures/mt940) and hand-made broken files."""

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
from finwatch.ingest.adapters.mt940 import Mt940Adapter

FIXTURES = Path(__file__).parent / "fixtures" / "mt940"
#: bookings (:61: lines) per fixture, counted in the files
COUNTS = {"abnamro.sta": 10, "generic.sta": 2, "ing.sta": 7, "knab.sta": 3, "postfinance.sta": 4,
          "rabobank-iban.sta": 4, "rabobank.sta": 5, "sns.sta": 2, "triodos.sta": 2}  # fmt: skip

# a German bank's statement in a SWIFT envelope: ?NN sub-fields, a direct debit, a reversal of a credit
GERMAN = """{1:F01COBADEFFAXXX0000000000}{2:I940COBADEFFXXXXN}{4:
:20:STARTUMSE
:25:37040044/0532013000
:28C:00001/001
:60F:C240102EUR1000,00
:61:2401020102C250,00NTRFKREF//2401021234567890
:86:166?00SEPA-GUTSCHRIFT?109310?20EREF+E2E-4711?21SVWZ+Rechnung 2023-118?30DEUTDEFFXXX?31DE75512108001245126199
?32Muster GmbH
:61:2401030103D19,99NDDTNONREF//2401031234567891
:86:105?00SEPA-LASTSCHRIFT?20SVWZ+Mobilfunk Januar?30COBADEFFXXX?31DE02200400600628765400?32Telefon AG
:61:2401040104RC250,00NTRFNONREF//2401041234567892
:86:159?00RUECKUEBERWEISUNG?20SVWZ+Rueckgabe?31DE75512108001245126199?32Muster GmbH
:62F:C240104EUR980,01
-}
"""
# an interim report (MT942): no balances, the currency comes from the floor limit
INTERIM = """{1:F01INGBNL2AXXX0000000000}{2:O9421200240105INGBNL2AXXXX00000000002401051200N}{4:
:20:P240105000000001
:25:NL20INGB0001234567
:28C:1/1
:34F:EUR0,
:13D:2401051200+0100
:61:2401050105C1500,00NTRFEREF//ABC12345678
:86:/EREF/E2E-2024-001//CNTP/NL91ABNA0417164300/ABNANL2A/J. JANSEN/AMSTERDAM//REMI/USTD//Factuur 2024-001/
:90D:0EUR0,00
:90C:1EUR1500,00
-}
"""
STATEMENT = """:20:TEST
:25:NL12BANK0123456789
:28C:1/1
:60F:C240101EUR100,00
{bookings}
:62F:C240131EUR90,00
"""


def parse(path: Path) -> Parsed:
    return Mt940Adapter().parse(Source(path, "0" * 64, str(path)), ParseOptions())


def write(tmp_path: Path, text: str | bytes, name: str = "statement.sta") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def row_at(parsed: Parsed, line: int) -> dict[str, Any]:
    rows = parsed.rows.filter(source_row=line).to_dicts()
    assert len(rows) == 1, f"no single record at line {line}"
    return rows[0]


def utc(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.UTC)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_every_fixture_is_detected_as_mt940(name: str) -> None:
    adapter, found = detect(FIXTURES / name)
    assert (adapter, found) == ("mt940", "SWIFT MT940 customer statement")


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_every_booking_of_a_fixture_is_read_and_accepted(name: str) -> None:
    parsed = parse(FIXTURES / name)
    assert parsed.rows.schema == PARSED_SCHEMA
    assert parsed.rows.height == COUNTS[name]
    assert parsed.rows["_reason"].null_count() == COUNTS[name]
    assert (parsed.rows["amount"] > 0).all()


@pytest.mark.parametrize(
    ("name", "line", "expected"),
    [
        pytest.param(
            "abnamro.sta",
            8,
            {
                "ts": utc(2011, 5, 24),
                "amount": Decimal("9"),
                "currency": "EUR",
                "src_account": "517852257",
                "src_institution": "ABNANL2A",
                "dst_account": None,
                "channel": "wire",
            },
            id="ABN AMRO debit of '9,' (no decimals), BIC line before :20:",
        ),
        pytest.param(
            "abnamro.sta",
            12,
            {"ts": utc(2011, 5, 23), "amount": Decimal("11.59"), "channel": "card"},
            id="ABN AMRO card payment (BEA) booked on its entry date, not the value date",
        ),
        pytest.param(
            "knab.sta",
            14,
            {
                "amount": Decimal("7260"),
                "src_account": "123456789",
                "dst_account": "NL65INGB0123456789",
                "counterparty_name": "PICQER",
            },
            id="Knab debit: counterparty from REK:/NAAM:",
        ),
        pytest.param(
            "knab.sta",
            17,
            {
                "amount": Decimal("500"),
                "src_account": "NL84INGB0234561789",
                "dst_account": "123456789",
                "counterparty_name": "MMS ONLINE NEDERLAND B.V.",
            },
            id="Knab credit '500' without a decimal comma: counterparty to account",
        ),
        pytest.param(
            "postfinance.sta",
            19,
            {"ts": utc(2013, 12, 16), "amount": Decimal("79.9"), "currency": "CHF", "src_account": "123456789"},
            id="PostFinance debit in CHF, second statement",
        ),
        pytest.param(
            "rabobank-iban.sta",
            6,
            {
                "amount": Decimal("25.00"),
                "src_account": "NL71RABO0123456789",
                "dst_account": "NL70ABNA0987654321",
                "counterparty_name": "CONTRA ACCOUNT HOLDER",
            },
            id="Rabobank: IBAN in the :61: details, name from /BENM//NAME/ across two lines",
        ),
        pytest.param(
            "rabobank-iban.sta",
            10,
            {"description": "Reference 201301234 | P001234567"},
            id="Rabobank: /REMI/ text and the :61: supplementary details",
        ),
        pytest.param(
            "rabobank.sta",
            6,
            {"ts": utc(2011, 5, 27), "amount": Decimal("1213.28"), "src_account": "1291.99.348"},
            id="old Rabobank: currency suffix dropped from :25:",
        ),
        pytest.param(
            "rabobank.sta",
            26,
            {"channel": "card", "amount": Decimal("236.56")},
            id="Rabobank 'Betaalautomaat' is a card payment",
        ),
        pytest.param(
            "triodos.sta",
            5,
            {
                "src_account": "0390123456",
                "src_institution": "TRIODOSBANK",
                "dst_account": None,
                "description": "ALGEMENE TUSSENREKENING KOSTEN VAN 01-10-2010 TOT EN MET 31-12-2010",
            },
            id="Triodos: '>NN' sub-fields, own account in >31 is no counterparty",
        ),
        pytest.param(
            "ing.sta",
            22,
            {
                "amount": Decimal("1.00"),
                "dst_account": "0001234567",
                "description": "0111111111 Hr S Marechal ROSMALEN Hr S Marechal ROSMALEN Betaling "
                "transactiedatum: 22-07-2010",
            },
            id="ING: the :86: after the closing balance is not details",
        ),
        pytest.param(
            "sns.sta",
            5,
            {"ts": utc(2012, 6, 8), "amount": Decimal("20.00")},
            id="SNS: :61: details on a continuation line",
        ),
    ],
)
def test_fixture_bookings_match_the_file(name: str, line: int, expected: dict[str, Any]) -> None:
    row = row_at(parse(FIXTURES / name), line)
    assert {k: row[k] for k in expected} == expected
    assert row["_reason"] is None


def test_bank_references_become_ids_without_the_account_number() -> None:
    rows = parse(FIXTURES / "knab.sta").rows
    assert rows["txn_id"].str.starts_with("mt940:").all()
    assert rows["txn_id"].n_unique() == 3
    assert not rows["txn_id"].str.contains("123456789").any()
    assert parse(FIXTURES / "abnamro.sta").rows["txn_id"].null_count() == 10  # NONREF everywhere


def test_german_structured_details_envelope_and_reversal(tmp_path: Path) -> None:
    path = write(tmp_path, GERMAN)
    assert detect(path) == ("mt940", "SWIFT MT940 customer statement")
    parsed = parse(path)
    assert parsed.rows["_reason"].to_list() == [None, None, None]
    credit, debit, reversal = (row_at(parsed, line) for line in (6, 9, 11))
    assert {k: credit[k] for k in ("src_account", "src_institution", "dst_account", "dst_institution", "amount",
                                   "counterparty_name", "description", "channel")} == {
        "src_account": "DE75512108001245126199", "src_institution": "DEUTDEFFXXX", "dst_account": "0532013000",
        "dst_institution": "37040044", "amount": Decimal("250.00"), "counterparty_name": "Muster GmbH",
        "description": "SEPA-GUTSCHRIFT: Rechnung 2023-118", "channel": "wire",
    }  # fmt: skip
    assert (debit["src_account"], debit["dst_account"], debit["channel"]) == (
        "0532013000", "DE02200400600628765400", "ach")  # fmt: skip
    assert (reversal["src_account"], reversal["dst_account"], reversal["amount"]) == (
        "0532013000", "DE75512108001245126199", Decimal("250.00"))  # fmt: skip
    assert "reversal of a credit" in reversal["description"]
    assert parsed.notes == []  # 1000.00 + 250.00 - 19.99 - 250.00 = 980.01: the balances add up


def test_interim_report_takes_its_currency_from_the_floor_limit(tmp_path: Path) -> None:
    path = write(tmp_path, INTERIM, "interim.sta")
    assert detect(path) == ("mt940", "SWIFT MT942 interim transaction report")
    parsed = parse(path)
    assert parsed.detected.startswith("SWIFT MT942")
    row = row_at(parsed, 7)
    assert {k: row[k] for k in ("ts", "src_account", "src_institution", "dst_account", "dst_institution", "amount",
                                "currency", "counterparty_name", "description", "_reason")} == {
        "ts": utc(2024, 1, 5), "src_account": "NL91ABNA0417164300", "src_institution": "ABNANL2A",
        "dst_account": "NL20INGB0001234567", "dst_institution": "INGBNL2A", "amount": Decimal("1500.00"),
        "currency": "EUR", "counterparty_name": "J. JANSEN", "description": "Factuur 2024-001", "_reason": None,
    }  # fmt: skip


def test_a_reference_repeated_with_other_content_is_no_id(tmp_path: Path) -> None:
    bookings = (":61:2401020102D10,00NTRFNONREF//SAMEREF01\n:86:one\n"
                ":61:2401030103D20,00NTRFNONREF//SAMEREF01\n:86:two\n"
                ":61:2401040104D30,00NTRFNONREF//OTHERREF1\n:86:three")  # fmt: skip
    rows = parse(write(tmp_path, STATEMENT.format(bookings=bookings))).rows
    assert rows["txn_id"].is_null().to_list() == [True, True, False]


@pytest.mark.parametrize(
    ("booking", "reason"),
    [
        pytest.param(":61:2401150115D12a,00NTRFNONREF", "no transaction type code", id="amount 12a,00"),
        pytest.param(":61:2401150115D1.234,56NTRFNONREF", "no transaction type code", id="thousands separator"),
        pytest.param(":61:2401150115D1,2,3NTRFNONREF", ":61: unreadable amount", id="two decimal commas"),
        pytest.param(":61:2401150115D0,00NTRFNONREF", "zero amount", id="zero amount"),
        pytest.param(":61:2413150115D10,00NTRFNONREF", ":61: invalid value", id="month 13"),
        pytest.param(":61:240431D10,00NTRFNONREF", ":61: invalid value", id="31 April"),
        pytest.param(":61:XX0115D10,00NTRFNONREF", ":61: does not match", id="no date"),
        pytest.param(":61:2401150115X10,00NTRFNONREF", ":61: does not match", id="no debit/credit mark"),
    ],
)
def test_a_bad_booking_is_kept_with_its_reason(tmp_path: Path, booking: str, reason: str) -> None:
    text = STATEMENT.format(bookings=f":61:2401100110C5,00NTRFNONREF\n:86:good\n{booking}\n:86:bad one")
    parsed = parse(write(tmp_path, text))
    assert parsed.rows["source_row"].to_list() == [5, 7]
    good, bad = parsed.rows.to_dicts()
    assert good["_reason"] is None
    assert good["amount"] == Decimal("5.00")
    assert bad["_reason"].startswith(reason)
    assert bad["_raw"] == f"{booking}\n:86:bad one"


def test_a_statement_cut_off_keeps_its_bookings_and_flags_the_last(tmp_path: Path) -> None:
    text = (FIXTURES / "abnamro.sta").read_text()
    cut = write(tmp_path, text[: text.index(":62F:")])  # the first statement, without its closing balance
    parsed = parse(cut)
    assert parsed.rows.height == 8
    assert parsed.rows["_reason"].null_count() == 7
    assert "no closing balance" in parsed.rows["_reason"][-1]
    assert any("file truncated?" in note for note in parsed.notes)


def test_a_statement_cut_inside_a_booking(tmp_path: Path) -> None:
    text = STATEMENT.format(bookings=":61:2401100110C5,00NTRFNONREF\n:86:good").split(":62F:")[0]
    parsed = parse(write(tmp_path, text + ":61:24011"))
    assert parsed.rows["_reason"].to_list()[0] is None
    assert parsed.rows["_reason"].to_list()[1].startswith(":61: does not match")


def test_a_statement_without_currency_rejects_its_bookings(tmp_path: Path) -> None:
    text = STATEMENT.format(bookings=":61:2401100110C5,00NTRFNONREF")
    text = text.replace(":60F:C240101EUR100,00", ":60F:X").replace(":62F:C240131EUR90,00", ":62F:Y")
    (row,) = parse(write(tmp_path, text)).rows.to_dicts()
    assert row["_reason"].startswith("statement at line 1 has no readable currency")
    assert ":60F: does not match" in row["_reason"]


def test_a_file_not_in_utf8_is_read_as_latin1(tmp_path: Path) -> None:
    text = STATEMENT.format(bookings=":61:2401100110C5,00NTRFNONREF\n:86:Überweisung Müller")
    parsed = parse(write(tmp_path, text.encode("latin-1")))
    assert parsed.rows["description"].to_list() == ["Überweisung Müller"]
    assert "not UTF-8: read as ISO 8859-1" in parsed.notes


def test_balances_that_do_not_add_up_are_noted() -> None:
    notes = parse(FIXTURES / "triodos.sta").notes  # the anonymised fixture's balances do not match its bookings
    assert notes == ["statement at line 1: opening balance 4975.09 + bookings -715.70 != closing balance 4370.79 EUR"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"", "file is empty", id="empty"),
        pytest.param(b"  \r\n\n", "file is empty", id="blank lines"),
        pytest.param(bytes(range(256)) * 8, "binary data", id="binary with NUL bytes"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(range(1, 32)) * 40, "binary data", id="binary without NUL"),
        pytest.param(b"Date,Amount\n2024-01-01,10.00\n", "no MT940/MT942 statement", id="a CSV"),
    ],
)
def test_an_unreadable_file_is_one_input_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(InputError) as error:
        parse(path)
    assert str(path) in str(error.value)
    assert reason in str(error.value)


def test_every_fixture_ingests_end_to_end(tmp_path: Path) -> None:
    files = sorted(FIXTURES.glob("*.sta"))
    report = ingest(files, tmp_path / "store", IngestOptions())
    assert report.committed
    assert [f.status for f in report.files] == ["ingested"] * len(files)
    assert {Path(f.file).name: f.rows_read for f in report.files} == COUNTS
    assert all(f.rows_read == f.accepted + f.quarantined for f in report.files)
    assert sum(f.quarantined for f in report.files) == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(sorted(COUNTS)),
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
