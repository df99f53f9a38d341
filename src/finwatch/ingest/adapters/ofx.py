"""Open Financial Exchange: OFX 1.x (SGML) and 2.x (XML) bank and credit card statements, QFX included.

Read with ``ofxtools``: its parser builds the element tree from either syntax (after the OFX header, which names
the version and, for 1.x, the character set), and each ``<STMTTRN>`` is converted and validated on its own by the
library's ``STMTTRN`` model, so one bad record does not cost the others. Bank statements (``<STMTRS>``) and credit
card statements (``<CCSTMTRS>``) are read, as many as the file holds; investment statements are not.

Decisions:

- Refused before parsing: any ``<!DOCTYPE`` or ``<!ENTITY`` declaration (entity expansion, external entities).
  Nothing is ever fetched.
- One record per ``<STMTTRN>``; ``source_row`` is the line of its start tag. Child elements in another order than
  the specification's are put in order first (some banks write ``<MEMO>`` before ``<NAME>``).
- Direction: ``TRNAMT`` is signed from the account's point of view. Positive (a credit): counterparty → account;
  negative: account → counterparty. The amount is its absolute value, exact.
- Time: ``DTPOSTED``, converted to UTC (a time zone in brackets is honoured; none means UTC); a date alone is
  00:00 UTC.
- Account: ``<ACCTID>`` of ``<BANKACCTFROM>`` (institution: ``<BANKID>``, the routing or bank number) or of
  ``<CCACCTFROM>``. The counterparty is the ``<BANKACCTTO>``/``<CCACCTTO>`` of a transfer, else unknown (null);
  ``counterparty_name`` is ``<EXTDNAME>``, ``<NAME>`` or the payee's name, ``description`` is ``<MEMO>`` (plus
  cheque number and original currency).
- Currency: ``<CURDEF>``, or the ``<CURRENCY>`` of a record (its amount is in that currency); an
  ``<ORIGCURRENCY>`` only informs (the amount stays in ``<CURDEF>``) and is kept in ``description``.
- Channel, from ``<TRNTYPE>``: ATM, CASH → cash; POS → card; CHECK → cheque (and any generic type with a
  ``<CHECKNUM>``); DIRECTDEP, DIRECTDEBIT, PAYMENT, REPEATPMT → ach (electronic payments and standing orders clear
  through ACH); INT, FEE, SRVCHG → internal (the bank's own postings); everything else (CREDIT, DEBIT, DEP, XFER,
  DIV, OTHER) → wire. On a credit card statement the generic types (CREDIT, DEBIT, OTHER) are card purchases and
  refunds: card. ``<SIC>`` is kept as ``mcc`` (card issuers put the merchant category code there).
- Ids: ``<FITID>`` is unique per account by the specification; the id is a hash of bank id, account and FITID
  (``ofx:`` + 24 hex digits), so account and card numbers do not leak into ids and the same record in two
  downloads has one id. A FITID repeated in the file with another date, amount or currency is no id (the pipeline
  hashes content instead, and a note says so).
- Rejected records (kept with a reason): what the ``STMTTRN`` model refuses (unknown ``TRNTYPE``, bad date, missing
  ``FITID``...), a zero, non-finite or out-of-range amount, corrections (``<CORRECTACTION>``: an earlier record
  would have to be replaced or deleted, which needs a person), records of a statement without a valid ``<CURDEF>``
  or account, and a record whose ``</STMTTRN>`` is missing (the file was cut off).
- No statement's own account is returned as an account row: OFX does not say whether the holder is a person or a
  business.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import decimal
import hashlib
import io
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import polars as pl
from ofxtools.header import OFXHeaderV1, parse_header
from ofxtools.models import STMTTRN
from ofxtools.models.base import Aggregate
from ofxtools.models.i18n import CURRENCY_CODES
from ofxtools.Parser import OFXTree

from finwatch.exceptions import InputError
from finwatch.ingest._base import Adapter, Parsed, ParseOptions, Sample, Source, conform_parsed
from finwatch.ingest._text import refuse_dtd

__all__ = ["OfxAdapter"]

START = re.compile(rb"<STMTTRN>")
END = b"</STMTTRN>"
STATEMENTS = {"STMTRS": "bank", "CCSTMTRS": "credit card"}
MAX_AMOUNT = decimal.Decimal(10) ** 20  # what decimal(38, 18) holds
CHANNELS = {
    "ATM": "cash", "CASH": "cash", "POS": "card", "CHECK": "cheque",
    "DIRECTDEP": "ach", "DIRECTDEBIT": "ach", "PAYMENT": "ach", "REPEATPMT": "ach",
    "INT": "internal", "FEE": "internal", "SRVCHG": "internal",
}  # fmt: skip
GENERIC = {"CREDIT", "DEBIT", "OTHER", "DEP", "XFER"}  # types that say nothing about how the money moved
CARD_GENERIC = {"CREDIT", "DEBIT", "OTHER"}
ORDER = {name.upper(): i for i, name in enumerate(STMTTRN.spec)}
ROW_SCHEMA: dict[str, pl.DataType] = {
    "txn_id": pl.String(), "ts": pl.Datetime("us", "UTC"), "src_account": pl.String(), "dst_account": pl.String(),
    "src_institution": pl.String(), "dst_institution": pl.String(), "amount": pl.Decimal(38, 18),
    "currency": pl.String(), "channel": pl.String(), "mcc": pl.String(), "counterparty_name": pl.String(),
    "description": pl.String(), "source_row": pl.Int64(), "_reason": pl.String(), "_raw": pl.String(),
    "_key": pl.String(),  # (bank id, account, FITID) for ids; not returned
}  # fmt: skip


@dataclass
class _Statement:
    kind: str  # "bank" or "credit card"
    account: str | None
    institution: str | None
    currency: str | None
    problem: str | None  # why none of its records can be accepted


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _text(elem: ET.Element | None, tag: str) -> str | None:
    child = elem.find(tag) if elem is not None else None
    value = (child.text or "").strip() if child is not None else ""
    return value or None


def _line_of(newlines: list[int], offset: int) -> int:
    return bisect.bisect_left(newlines, offset) + 1


def _codec(data: bytes) -> str:
    """The body's codec as the header declares it (UTF-8 for OFX 2)."""
    try:
        header, _ = parse_header(io.BytesIO(data))
    except (SyntaxError, ValueError, UnicodeError):
        return "utf-8"
    return header.codec if isinstance(header, OFXHeaderV1) else "utf-8"


class _Named(io.BytesIO):
    """The file's bytes, shown as the file's name: the library's messages quote their source."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.display = name

    def __repr__(self) -> str:
        return self.display

    __str__ = __repr__


def _parse_error(source: Source, data: bytes, exc: Exception) -> InputError:
    """The library's error as one line, naming the line of the file where the parser stopped."""
    if isinstance(exc, UnicodeDecodeError):
        try:
            data.decode(exc.encoding)
        except UnicodeDecodeError as again:
            bad = data[again.start]
            row = data.count(b"\n", 0, again.start) + 1
            return InputError(source.display, f"not valid {exc.encoding} (byte 0x{bad:02x})", row=row)
        return InputError(source.display, f"not valid {exc.encoding}")
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    message = message.replace(f" - {source.display}", "")  # the message names the file first already
    position = re.search(r" - position=\[(\d+):\d+\]$", message)
    line: int | None = None
    if position:
        message = message[: position.start()]
        try:
            _, body = parse_header(io.BytesIO(data))
            text = data.decode(_codec(data), errors="replace")
            start = text.find(body[:200])
            line = text.count("\n", 0, max(start, 0) + int(position[1])) + 1 if start >= 0 else None
        except (SyntaxError, ValueError, UnicodeError):
            line = None
    if message.startswith("Tail text"):  # the library appends the whole document
        message = message.split("' in ", 1)[0] + "'"
    reason = message.strip().splitlines()[0][:200].rstrip(":") if message.strip() else type(exc).__name__
    if isinstance(exc, IndexError):
        reason = "unbalanced tags (a closing tag without its opening tag)"
    return InputError(source.display, f"not readable as OFX: {reason}", row=line)


def _statement(elem: ET.Element) -> _Statement:
    kind = STATEMENTS[elem.tag]
    currency = _text(elem, "CURDEF")
    acct = elem.find("BANKACCTFROM" if kind == "bank" else "CCACCTFROM")
    account = _text(acct, "ACCTID")
    institution = _text(acct, "BANKID") if kind == "bank" else None
    problem = None
    if currency is None or currency.upper() not in CURRENCY_CODES:
        problem = f"{kind} statement has no valid currency (<CURDEF> {currency!r})"
    elif account is None:
        problem = f"{kind} statement has no account (<ACCTID>)"
    return _Statement(kind, account, institution, currency.upper() if currency else None, problem)


def _convert(elem: ET.Element) -> Any:
    """The ``STMTTRN`` model of one record, its children put in the specification's order first."""
    ordered = ET.Element(elem.tag)
    ordered.extend(sorted((copy.copy(c) for c in elem), key=lambda c: ORDER.get(c.tag, len(ORDER))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown and private tags are skipped, as the specification says
        return Aggregate.from_etree(ordered)


def _channel(trntype: str, kind: str, checknum: str | None) -> str:
    if checknum and trntype in GENERIC:
        return "cheque"
    if kind == "credit card" and trntype in CARD_GENERIC:
        return "card"
    return CHANNELS.get(trntype, "wire")


def _record(elem: ET.Element, statement: _Statement) -> dict[str, Any]:
    """One ``<STMTTRN>`` as a row; ``_reason`` says why it cannot be accepted."""
    row: dict[str, Any] = dict.fromkeys(ROW_SCHEMA)
    if statement.problem:
        row["_reason"] = statement.problem
        return row
    try:
        txn = _convert(elem)
    except ArithmeticError:  # decimal's conversion error has no useful message
        row["_reason"] = f"unreadable amount {_text(elem, 'TRNAMT')!r} (or currency rate)"
        return row
    except (ValueError, TypeError, SyntaxError, KeyError, IndexError, AttributeError) as exc:
        row["_reason"] = f"STMTTRN: {_first_line(exc)}"
        return row
    amount: decimal.Decimal = txn.trnamt
    if not amount.is_finite():
        row["_reason"] = f"unreadable amount {amount}"
        return row
    posted: dt.datetime = txn.dtposted.astimezone(dt.UTC)
    trntype = str(txn.trntype)
    currency = str(txn.currency.cursym) if txn.currency is not None else statement.currency
    notes = [str(txn.memo).strip()] if txn.memo else []
    if txn.checknum:
        notes.append(f"cheque {txn.checknum}")
    if txn.origcurrency is not None:
        notes.append(f"original currency {txn.origcurrency.cursym} at rate {txn.origcurrency.currate}")
    if txn.bankacctto is not None:
        counterparty, bank = str(txn.bankacctto.acctid), str(txn.bankacctto.bankid)
    elif txn.ccacctto is not None:
        counterparty, bank = str(txn.ccacctto.acctid), None
    else:
        counterparty, bank = None, None
    if counterparty == statement.account:
        counterparty, bank = None, None
    own = (statement.account, statement.institution)
    other = (counterparty, bank)
    src, dst = (other, own) if amount > 0 else (own, other)
    name = txn.extdname or txn.name or (txn.payee.name if txn.payee is not None else None)
    sic = int(txn.sic) if txn.sic is not None else None
    row.update(
        ts=posted, src_account=src[0], src_institution=src[1], dst_account=dst[0], dst_institution=dst[1],
        amount=abs(amount), currency=currency,
        channel=_channel(trntype, statement.kind, txn.checknum), mcc=f"{sic:04d}" if sic and 0 < sic < 10000 else None,
        counterparty_name=(str(name).strip() or None) if name else None, description="; ".join(notes) or None,
        _key="\x1f".join([statement.institution or "", statement.account or "", str(txn.fitid)]),
    )  # fmt: skip
    if amount == 0:
        row["_reason"] = "zero amount"
    elif abs(amount) >= MAX_AMOUNT or amount.as_tuple().exponent < -18:  # type: ignore[operator]
        row.update(amount=None, _reason=f"amount {amount} does not fit 20 integer and 18 decimal digits")
    elif txn.correctaction:
        row["_reason"] = (f"correction ({txn.correctaction} of FITID {txn.correctfitid}): an earlier record would "
                          "have to change, which is left to a person")  # fmt: skip
    return row


def _ids(rows: list[dict[str, Any]], notes: list[str]) -> None:
    content: dict[str, set[tuple[Any, ...]]] = {}
    for row in rows:
        if row["_key"] and row["_reason"] is None:
            content.setdefault(row["_key"], set()).add((row["ts"], row["amount"], row["currency"], row["src_account"]))
    repeated = 0
    for row in rows:
        if row["_key"] and row["_reason"] is None:
            if len(content[row["_key"]]) == 1:
                row["txn_id"] = "ofx:" + hashlib.sha256(row["_key"].encode()).hexdigest()[:24]
            else:
                repeated += 1
    if repeated:
        notes.append(f"{repeated} records share a FITID with a different record: their ids are content hashes")


class OfxAdapter(Adapter):
    name = "ofx"
    summary = "OFX 1.x (SGML) / 2.x (XML) bank and credit card statements, QFX included"

    @classmethod
    def sniff(cls, sample: Sample) -> str | None:
        if sample.is_dir:
            return None
        text = sample.text.lstrip()
        qfx = " (QFX)" if "<INTU.BID>" in text else ""
        if match := re.match(r"OFXHEADER\s*:\s*100\b", text):
            version = re.search(r"VERSION\s*:\s*(\d)(\d+)", text[match.end() : match.end() + 400])
            return f"OFX {version[1]}.{version[2]} SGML{qfx}" if version else f"OFX 1.x SGML{qfx}"
        if declaration := re.search(r"<\?OFX\s[^>]*\?>", text[:2048]):
            version = re.search(r"VERSION\s*=\s*\"(\d)(\d+)\"", declaration[0])
            return f"OFX {version[1]}.{version[2]} XML{qfx}" if version else f"OFX 2.x XML{qfx}"
        if re.match(r"(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<OFX>", text, re.DOTALL):
            return f"OFX without a header{qfx}"
        return None

    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        data = source.read_bytes()
        if not data.strip():
            raise InputError(source.display, "file is empty")
        nul = data.find(b"\x00")  # anywhere: the library would read a NUL into a field
        if nul >= 0:
            raise InputError(source.display, "binary data (NUL bytes), not a text export",
                             row=data.count(b"\n", 0, nul) + 1)  # fmt: skip
        refuse_dtd(source, data)
        tree = OFXTree()
        try:
            tree.parse(_Named(data, source.display))
        except (SyntaxError, ValueError, UnicodeError, IndexError, KeyError, TypeError, AssertionError) as exc:
            raise _parse_error(source, data, exc) from None
        root = tree.getroot()
        if root is None:
            raise InputError(source.display, "not readable as OFX: no elements after the header")
        statements = [e for e in root.iter() if e.tag in STATEMENTS]
        if not statements:
            found = "investment statements are not supported" if root.find(".//INVSTMTRS") is not None else (
                "no bank or credit card statement (<STMTRS>, <CCSTMTRS>)")  # fmt: skip
            raise InputError(source.display, found)
        records = list(root.iter("STMTTRN"))
        starts = [m.start() for m in START.finditer(data)]
        if len(starts) != len(records):
            raise InputError(source.display, f"found {len(starts)} <STMTTRN> tags but read {len(records)} records")
        newlines = [m.start() for m in re.finditer(rb"\n", data)]
        codec = _codec(data)
        where = {id(e): (i, p) for i, (e, p) in enumerate(zip(records, starts, strict=True))}
        rows: list[dict[str, Any]] = []
        notes: list[str] = []
        counts = {"bank": 0, "credit card": 0}
        for elem in statements:
            statement = _statement(elem)
            counts[statement.kind] += 1
            for record in elem.iter("STMTTRN"):
                i, start = where[id(record)]
                stop = starts[i + 1] if i + 1 < len(starts) else len(data)
                end = data.find(END, start, stop)
                raw = data[start : end + len(END) if end >= 0 else stop].decode(codec, errors="replace").strip()
                row = _record(record, statement)
                row.update(source_row=_line_of(newlines, start), _raw=raw)
                if end < 0 and row["_reason"] is None:
                    row["_reason"] = "record not closed by </STMTTRN>: the file looks cut off here"
                rows.append(row)
        if root.find(".//INVSTMTRS") is not None:
            notes.append("investment statements (<INVSTMTRS>) in the file are not read")
        if not re.search(rb"</OFX>\s*$", data):
            notes.append("the file does not end with </OFX>: it may be truncated")
        _ids(rows, notes)
        frame = pl.DataFrame(rows, schema=ROW_SCHEMA) if rows else pl.DataFrame(schema=ROW_SCHEMA)
        frame = conform_parsed(frame).sort("source_row")
        version = getattr(tree.header, "version", None)
        syntax = f"OFX {int(version) // 100}.{int(version) % 100:02d}" if version else "OFX"
        syntax += " SGML" if isinstance(tree.header, OFXHeaderV1) else " XML"
        syntax += " (QFX)" if b"<INTU.BID>" in data else ""
        kinds = ", ".join(f"{n} {k} statement{'s' if n > 1 else ''}" for k, n in counts.items() if n)
        return Parsed(frame, f"{syntax}: {kinds}, {frame.height} records", notes=notes)
