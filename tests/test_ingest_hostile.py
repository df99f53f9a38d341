"""Hostile and broken input: every byte of a file is accounted for, bad input is one line or a quarantined row.

Each test builds its input in ``tmp_path``. Rows read = rows accepted + rows quarantined throughout.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finwatch.exceptions import InputError, user_message
from finwatch.ingest import IngestOptions, ParseOptions, _text, ingest
from finwatch.ingest._base import Source
from finwatch.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
HEADER = (
    "Booking Time;Account;BIC;Amount;Currency;Instructed Amount;Instructed Currency;Counterparty Account;"
    "Counterparty BIC;Counterparty Name;Channel;MCC;City;Country;Branch;Reference;Description\n"
)


def row(i: int, description: str = "rent", account: str = "ACC1") -> str:
    """One booking of the shipped synthetic bank mapping (recognised by its header)."""
    return (f"05.01.2026 09:00:00;{account};UNSVUS44;-{i + 1},56;USD;;;ACC2;PCCBUS6S;Jane Doe;WIRE;;;;;REF-{i};"
            f"{description}\n")  # fmt: skip


def bank_csv(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def snapshot(store: Path) -> dict[str, str]:
    """Every file of the store (but the lock) with its sha256: what a reader could see."""
    if not store.exists():
        return {}
    return {p.relative_to(store).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*")) if p.is_file() and p.name != ".lock"}  # fmt: skip


def balanced(report_file: object) -> None:
    f = report_file
    assert f.status == "ingested", f  # type: ignore[attr-defined]
    assert f.rows_read == f.accepted + f.quarantined, f  # type: ignore[attr-defined]


def quarantine(store: Path) -> pl.DataFrame:
    return Store(store).scan("quarantine").collect().sort("row")


def finwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "finwatch", *args], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


# --- 1. over-long lines ------------------------------------------------------------------------------------------
def test_a_line_over_the_bound_is_quarantined_and_every_other_line_ingested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_text, "MAX_LINE_BYTES", 1_000)
    rows = [row(i) for i in range(11)]
    rows[5] = row(5, "x" * 5_000)
    report = ingest([bank_csv(tmp_path / "bank.csv", rows)], tmp_path / "s", IngestOptions())
    (f,) = report.files
    balanced(f)
    assert (f.rows_read, f.accepted, f.quarantined) == (11, 10, 1)
    q = quarantine(tmp_path / "s")
    assert q["row"].to_list() == [7]  # the physical line (header = 1)
    assert q["reason"][0].startswith("line longer than 1000 bytes")
    assert len(q["raw"][0]) < _text.RAW_LIMIT + 100
    assert "cut" in q["raw"][0]
    stored = Store(tmp_path / "s").scan("transactions").collect()
    assert sorted(stored["source_row"].to_list()) == [2, 3, 4, 5, 6, 8, 9, 10, 11, 12]


def test_a_33_mb_line_at_the_default_bound_is_quarantined_not_lost(tmp_path: Path) -> None:
    rows = [row(i) for i in range(11)]
    rows[5] = row(5, "x" * (33 * 1024 * 1024))  # longer than DuckDB's 32 MB buffer: it used to vanish
    report = ingest([bank_csv(tmp_path / "bank.csv", rows)], tmp_path / "s", IngestOptions())
    (f,) = report.files
    balanced(f)
    assert (f.rows_read, f.accepted, f.quarantined) == (11, 10, 1)
    assert not any("span lines" in note for note in f.notes)
    q = quarantine(tmp_path / "s")
    assert q["reason"][0].startswith(f"line longer than {_text.MAX_LINE_BYTES} bytes")
    assert len(q["raw"][0]) < _text.RAW_LIMIT + 100


# --- 2. unterminated quotes ------------------------------------------------------------------------------------
def test_an_unterminated_quote_costs_its_line_only(tmp_path: Path) -> None:
    rows = [row(i) for i in range(16)]
    rows[2] = row(2, '"unterminated')
    report = ingest([bank_csv(tmp_path / "bank.csv", rows)], tmp_path / "s", IngestOptions())
    (f,) = report.files
    balanced(f)
    assert (f.rows_read, f.accepted, f.quarantined) == (16, 15, 1)  # the 13 records after it are ingested
    q = quarantine(tmp_path / "s")
    assert q["row"].to_list() == [4]
    assert q["reason"][0].startswith("unterminated quote")
    assert q["raw"][0] == row(2, '"unterminated').rstrip("\n")


def test_a_quoted_field_spanning_lines_is_one_record_numbered_by_its_first_line(tmp_path: Path) -> None:
    rows = [row(0), row(1, '"first line\nsecond line"'), row(2), row(3, '"bad'), row(4)]
    report = ingest([bank_csv(tmp_path / "bank.csv", rows)], tmp_path / "s", IngestOptions())
    (f,) = report.files
    balanced(f)
    assert (f.rows_read, f.accepted, f.quarantined) == (5, 4, 1)
    stored = Store(tmp_path / "s").scan("transactions").collect().sort("source_row")
    assert stored["source_row"].to_list() == [2, 3, 5, 7]
    assert stored.filter(pl.col("source_row") == 3)["description"][0] == "first line\nsecond line"
    assert quarantine(tmp_path / "s")["row"].to_list() == [6]


def test_split_records_accounts_for_every_line(tmp_path: Path) -> None:
    data = b'a,b,c\n1,2,3\n\n4,"5\n6",7\n8,"9,10\n11,12,13\r\n14,15,\x0116\n17,18,19'
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    source = Source(path, "", str(path))
    with _text.csv_records(source, data, 3, path=path) as records:
        assert records.first.tolist() == [2, 4, 7, 9]  # line 6 opens a quote that closes into no record
        assert records.rejected["source_row"].to_list() == [6, 8]
        reasons = records.rejected["_reason"].to_list()
        assert reasons[0].startswith("unterminated quote")
        assert "U+0001" in reasons[1]
        assert records.temporary  # DuckDB reads a copy without the refused and the blank lines
        copy = records.path.read_bytes()
    assert not records.path.exists()
    assert copy == b'a,b,c\n1,2,3\n4,"5\n6",7\n11,12,13\r\n17,18,19'


# --- 3. control characters anywhere ---------------------------------------------------------------------------
def test_a_nul_byte_after_the_first_64_kib_quarantines_its_row(tmp_path: Path) -> None:
    rows = [row(i) for i in range(1_000)]  # about 100 KiB
    rows[900] = row(900, account="88A13B4859\x00")
    path = bank_csv(tmp_path / "bank.csv", rows)
    assert path.read_bytes().index(b"\x00") > 65_536
    report = ingest([path], tmp_path / "s", IngestOptions())
    (f,) = report.files
    balanced(f)
    assert (f.accepted, f.quarantined) == (999, 1)
    q = quarantine(tmp_path / "s")
    assert q["row"].to_list() == [902]
    assert "control character U+0000" in q["reason"][0]
    stored = Store(tmp_path / "s").scan("transactions").collect()
    assert not stored.filter(pl.col("src_account").str.contains("\x00", literal=True)).height  # no phantom account


def test_control_characters_in_a_field_of_any_format_quarantine_the_record(tmp_path: Path) -> None:
    ts = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    table = pa.table(
        {"txn_id": ["T1", "T2"], "ts": [ts, ts], "src_account": ["A1", "88A13B4859\x00"], "dst_account": ["B", "B"],
         "amount": pa.array([Decimal("1.50"), Decimal("2.50")], pa.decimal128(38, 18)), "currency": ["USD", "USD"],
         "channel": ["wire", "wire"], "description": ["ok", "esc \x1b[31m"]},
    )  # fmt: skip
    path = tmp_path / "t.parquet"
    pq.write_table(table.replace_schema_metadata({"finwatch.table": "transactions"}), path)
    report = ingest([path], tmp_path / "s", IngestOptions())
    (f,) = report.files
    balanced(f)
    assert (f.accepted, f.quarantined) == (1, 1)
    assert quarantine(tmp_path / "s")["reason"][0].startswith("control character in src_account")


def test_camt053_with_a_nul_after_the_first_64_kib_is_rejected(tmp_path: Path) -> None:
    text = (FIXTURES / "camt053" / "camt_053_ver_2_extended_uk_account.xml").read_text()
    cut = text.index("</Ntry>")
    path = tmp_path / "nul.xml"
    path.write_text(text[:cut] + "<!--" + " " * 70_000 + "-->" + "<AddtlNtryInf>x\x00</AddtlNtryInf>" + text[cut:])
    report = ingest([path], tmp_path / "s", IngestOptions(format="camt053"))
    (f,) = report.files
    assert f.status == "rejected", f
    assert f.error.startswith(str(path)), f
    assert not (tmp_path / "s").exists()


# --- 4. a full disk -----------------------------------------------------------------------------------------
def _disk_full(*_args: object, **_kwargs: object) -> None:
    raise pl.exceptions.ComputeError("failed to write parquet: No space left on device (os error 28)")


def test_a_full_disk_while_staging_names_the_file_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "s"
    ingest([bank_csv(tmp_path / "seed.csv", [row(0)])], store, IngestOptions())
    before = snapshot(store)
    path = bank_csv(tmp_path / "bank.csv", [row(1), row(2)])
    monkeypatch.setattr(pl.DataFrame, "write_parquet", _disk_full)
    with pytest.raises(OSError, match="No space left on device") as caught:
        ingest([path], store, IngestOptions())
    assert caught.value.errno == errno.ENOSPC
    line = user_message(caught.value)
    assert line is not None
    assert "\n" not in line
    assert str(path) in line
    assert "No space left on device" in line
    assert snapshot(store) == before
    assert not (store / ".staging").exists()


def test_a_full_disk_on_a_first_ingest_leaves_no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl.DataFrame, "write_parquet", _disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        ingest([bank_csv(tmp_path / "bank.csv", [row(1)])], tmp_path / "new" / "s", IngestOptions())
    assert not (tmp_path / "new").exists()


def test_a_full_disk_while_committing_rolls_the_batch_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import finwatch.store

    store = tmp_path / "s"
    ingest([bank_csv(tmp_path / "seed.csv", [row(0)])], store, IngestOptions())
    before = snapshot(store)

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(finwatch.store, "atomic_write_text", full)  # the manifest: the commit point
    with pytest.raises(OSError, match="No space left on device"):
        ingest([bank_csv(tmp_path / "bank.csv", [row(1), row(2)])], store, IngestOptions())
    assert snapshot(store) == before  # the files moved into place are gone again
    assert not (store / ".staging").exists()


# --- 5. devices and FIFOs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["device", "fifo", "fifo mapping"])
def test_a_device_or_a_fifo_is_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    if kind == "device":
        args = ["/dev/zero"]
    elif kind == "fifo":
        args = [str(fifo)]
    else:
        args = [str(bank_csv(tmp_path / "bank.csv", [row(0)])), "--format", "bank-csv", "--mapping", str(fifo)]
    done = finwatch("ingest", *args, "--store", str(tmp_path / "s"))  # a hang fails by the timeout
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    named = [line for line in done.stderr.splitlines() if (args[-1] if kind != "fifo mapping" else str(fifo)) in line]
    assert len(named) == 1, done.stderr
    assert ("character device" if kind == "device" else "FIFO") in named[0]
    assert not (tmp_path / "s").exists()


# --- 6. nothing committed, nothing written ---------------------------------------------------------------------
def test_a_rejected_first_ingest_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    report = ingest([empty], tmp_path / "a" / "b" / "s", IngestOptions(base_currency="EUR"))
    assert not report.committed
    assert not (tmp_path / "a").exists()  # no store.json locking in EUR, no lock file, no folders
    (tmp_path / "given").mkdir()
    ingest([empty], tmp_path / "given", IngestOptions(base_currency="EUR"))
    assert list((tmp_path / "given").iterdir()) == []  # a folder that existed stays, empty
    report = ingest([bank_csv(tmp_path / "bank.csv", [row(0)])], tmp_path / "given", IngestOptions())
    assert report.committed
    assert Store(tmp_path / "given").settings().base_currency == "USD"


# --- 7. XML in other encodings -----------------------------------------------------------------------------------
BOMB = (
    '<?xml version="1.0" encoding="{encoding}"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>\n'
    '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt><Id>&lol2;</Id></Stmt>'
    "</BkToCstmrStmt></Document>\n"
)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be", "utf-8-sig"])
def test_entity_declarations_are_refused_in_any_encoding(tmp_path: Path, codec: str) -> None:
    declared = {"utf-16-le": "UTF-16LE", "utf-16-be": "UTF-16BE", "utf-32-be": "UTF-32BE"}.get(codec, codec.upper())
    path = tmp_path / "bomb.xml"
    path.write_bytes(BOMB.format(encoding=declared.replace("-SIG", "")).encode(codec))
    report = ingest([path], tmp_path / "s", IngestOptions(format="camt053"))
    (f,) = report.files
    assert f.status == "rejected", f
    assert "DOCTYPE/ENTITY declarations is refused" in f.error
    assert not report.committed


def test_a_utf16_statement_without_declarations_is_read(tmp_path: Path) -> None:
    text = (FIXTURES / "camt053" / "camt_053_ver_2_extended_uk_account.xml").read_text()
    path = tmp_path / "utf16.xml"
    path.write_bytes(text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    report = ingest([path], tmp_path / "s", IngestOptions(format="camt053"))
    balanced(report.files[0])
    assert report.files[0].accepted == 2


def test_xml_encoding_follows_the_bytes_then_the_declaration() -> None:
    doc = '<?xml version="1.0" encoding="{}"?><a/>'
    assert _text.xml_encoding(doc.format("UTF-16").encode("utf-16-le")) == "utf-16-le"
    assert _text.xml_encoding(doc.format("UTF-16").encode("utf-16-be")) == "utf-16-be"
    assert _text.xml_encoding(doc.format("UTF-32").encode("utf-32-le")) == "utf-32-le"
    assert _text.xml_encoding(doc.format("ISO-8859-1").encode("latin-1")) == "iso-8859-1"
    assert _text.xml_encoding(b"<a/>") == "utf-8"
    hidden = '<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE d+AD4-<a/>'.encode("ascii")
    with pytest.raises(InputError, match="DOCTYPE/ENTITY"):
        _text.refuse_dtd(Source(Path("x.xml"), "", "x.xml"), hidden)


# --- 8. camt.053 conflicts -----------------------------------------------------------------------------------------
def _entry(e2e: str, amount: str) -> str:
    """An entry whose detail carries no amount of its own: the detail's text is the same whatever the amount."""
    return (f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2026-01-05</Dt></BookgDt>'
            f"<NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs><RltdPties><DbtrAcct><Id>"
            "<IBAN>DE02100100109307118603</IBAN></Id></DbtrAcct></RltdPties></TxDtls></NtryDtls></Ntry>")  # fmt: skip


def _statement(path: Path, *entries: str) -> Path:
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
        "<BkToCstmrStmt><Stmt><Id>S1</Id><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>"
        f"{''.join(entries)}</Stmt></BkToCstmrStmt></Document>\n"
    )
    return path


def test_a_camt053_id_again_with_another_amount_is_a_conflict_not_a_duplicate(tmp_path: Path) -> None:
    store = tmp_path / "s"
    first = _statement(tmp_path / "a.xml", _entry("E2E-1", "100.00"), _entry("E2E-1", "250.00"),
                       _entry("E2E-2", "5.00"), _entry("E2E-2", "5.00"))  # fmt: skip
    report = ingest([first], store, IngestOptions())
    (f,) = report.files
    balanced(f)
    assert (f.accepted, f.quarantined) == (2, 2)
    reasons = quarantine(store)["reason"].to_list()
    assert reasons[0] == ("conflicts with row 1 (same id E2E-1, other amount: 250 EUR on 2026-01-05 00:00:00 here, "
                          "100 EUR on 2026-01-05 00:00:00 at row 1)")  # fmt: skip
    assert reasons[1].startswith("duplicate of row 3")  # the same entry again is a duplicate
    report = ingest([_statement(tmp_path / "b.xml", _entry("E2E-2", "7.00"))], store, IngestOptions())
    balanced(report.files[0])
    earlier = Store(store).manifests()[0]["batch"]
    later = quarantine(store).filter(pl.col("file") == str(tmp_path / "b.xml"))["reason"][0]
    assert later == (f"conflicts with an earlier record of id E2E-2 (other amount: 7 EUR on 2026-01-05 00:00:00 "
                     f"here, 5 EUR on 2026-01-05 00:00:00 in batch {earlier} ({first}))")  # fmt: skip
    one, other = (
        _statement(tmp_path / "c.xml", _entry("E2E-3", "1.00")),
        _statement(tmp_path / "d.xml", _entry("E2E-3", "2.50")),
    )
    report = ingest([one, other], store, IngestOptions())
    assert [f.quarantined for f in report.files] == [0, 1]
    reason = quarantine(store).filter(pl.col("file") == str(other))["reason"][0]
    assert reason.endswith(f"(other amount: 2.5 EUR on 2026-01-05 00:00:00 here, 1 EUR on 2026-01-05 00:00:00 in "
                           f"{one} of this batch)")  # fmt: skip


# --- 9. error lines name files, not objects --------------------------------------------------------------------
def test_an_ofx_header_error_names_the_file_not_a_python_object(tmp_path: Path) -> None:
    path = tmp_path / "blank.ofx"
    path.write_text("\n" * 9 + "OFXHEADER:100\nDATA:OFXSGML\n\n<OFX></OFX>\n")
    report = ingest([path], tmp_path / "s", IngestOptions(format="ofx"))
    (f,) = report.files
    assert f.status == "rejected"
    assert f.error.startswith(f"{path}: ")
    assert "object at 0x" not in f.error
    assert "BytesIO" not in f.error


# --- 10. number formats of bank CSV mappings -------------------------------------------------------------------
def _mapping(path: Path, decimal: str, thousands: str) -> Path:
    path.write_text(
        f'[format]\nname = "m"\ndelimiter = ";"\ndecimal = "{decimal}"\nthousands = "{thousands}"\n'
        'timestamp_format = "%Y-%m-%d"\ncurrency = "EUR"\ndefault_channel = "wire"\n'
        '[columns]\ntimestamp = "Date"\naccount = "IBAN"\namount = "Amount"\n'
    )
    return path


@pytest.mark.parametrize(
    ("decimal", "thousands", "good", "bad"),
    [
        pytest.param(",", "", ["12,50", "-1234,56", "7"], ["12.50", "1.234,56", "1e5"], id="comma, no grouping"),
        pytest.param(",", ".", ["1.234,56", "12,50", "-1234"], ["12.50", "1.23", "12,3,4"], id="comma and dot"),
        pytest.param(".", ",", ["1,234.56", "12.50"], ["12,50", "1,23.4"], id="dot and comma"),
    ],
)  # fmt: skip
def test_an_amount_must_match_the_mappings_separators(
    tmp_path: Path, decimal: str, thousands: str, good: list[str], bad: list[str]
) -> None:
    amounts = [*good, *bad]
    path = tmp_path / "export.csv"
    path.write_text("Date;IBAN;Amount\n" + "".join(f"2026-01-0{i + 1};DE{i};{a}\n" for i, a in enumerate(amounts)))
    options = IngestOptions(format="bank-csv", parse=ParseOptions(mapping=_mapping(tmp_path / "m.toml", decimal,
                                                                                      thousands)))  # fmt: skip
    report = ingest([path], tmp_path / "s", options)
    (f,) = report.files
    balanced(f)
    assert (f.accepted, f.quarantined) == (len(good), len(bad))
    q = quarantine(tmp_path / "s")
    assert q["row"].to_list() == list(range(2 + len(good), 2 + len(amounts)))
    assert all(r.startswith(f"unparsable amount '{a}' (expected decimal separator {decimal!r}")
               for r, a in zip(q["reason"], bad, strict=True))  # fmt: skip


# --- 5. paths that look like patterns ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["store[1]", "store[prod]*?", "store-\x1b[31m-x"])
def test_a_store_whose_path_has_pattern_characters_is_read_as_named(tmp_path: Path, name: str) -> None:
    """Polars and DuckDB read ``[1]``, ``*`` and ``?`` in a path as a pattern unless told not to."""
    store = tmp_path / name
    first = ingest([FIXTURES / "mt940" / "knab.sta"], store, IngestOptions())
    assert first.committed
    second = ingest([bank_csv(tmp_path / "bank.csv", [row(1), row(2)])], store, IngestOptions())  # FX table read
    assert second.committed
    moved = tmp_path / "moved[x]"
    store.rename(moved)
    third = ingest([bank_csv(tmp_path / "more.csv", [row(3)])], moved, IngestOptions())
    assert third.committed
    assert (
        Store(moved).scan("transactions").collect().height
        == Store(moved).scan("transactions").collect()["txn_id"].n_unique()
    )
    assert Store(moved).fx_table() is not None
    assert not Store(moved).verify()


def test_a_csv_whose_path_has_pattern_characters_is_read_alone(tmp_path: Path) -> None:
    """DuckDB's read_csv expands a pattern even in a bound parameter: ``a*`` must not also read ``ab``."""
    (tmp_path / "a*").mkdir()
    (tmp_path / "ab").mkdir()
    path = bank_csv(tmp_path / "a*" / "bank.csv", [row(1)])
    bank_csv(tmp_path / "ab" / "bank.csv", [row(2), row(3)])
    report = ingest([path], tmp_path / "s", IngestOptions())
    assert report.committed
    assert Store(tmp_path / "s").scan("transactions").collect().height == 1
