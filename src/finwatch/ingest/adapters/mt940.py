"""SWIFT MT940 customer statements and MT942 interim transaction reports, read with the ``mt940`` library.

Layout: a file holds one or more statements, each opened by ``:20:`` (in a SWIFT envelope wrapped in
``{1:...}{2:...}{4:`` ... ``-}``; bank exports often separate statements by a ``-`` line). ``:25:`` names the
account, ``:60F:``/``:60M:`` the opening balance and with it the statement's currency (an MT942 has no balances:
its floor limit ``:34F:`` gives the currency), ``:62F:``/``:62M:`` the closing balance. Each ``:61:`` statement
line is one record (``source_row`` is its line) and the ``:86:`` (and ``:NS:``) fields after it are its details;
an ``:86:`` after the closing balance is about the statement, not about the last booking.

Decisions:

- Direction: ``C`` (credit) and ``RD`` (reversal of a debit) bring money in: counterparty → account; ``D`` and
  ``RC`` take it out: account → counterparty. The amount is the absolute ``:61:`` amount (exact decimal);
  reversals say so in ``description``.
- Time: the entry (booking) date when the line has one, else the value date, at 00:00 UTC. The library moves a
  value date of 30 February (some banks' interest date) to the month's last day and corrects the year of an entry
  date across the year end.
- Account: ``:25:`` as ``BIC/account`` or ``bank code/account`` is split into institution and account; a trailing
  currency code equal to the statement's currency is dropped (``1291.99.348EUR``). Without one, the institution
  is the BIC of the envelope (``{1:F01...}``) or of a BIC line before ``:20:``.
- Counterparty: read from structured details only: SWIFT-style ``/CODE/value`` (``/IBAN/``, ``/BIC/``, ``/NAME/``,
  ``/CNTP/iban/bic/name/city/``, ``/BENM//NAME/``, ``/ORDP//NAME/``, text from ``/REMI/``), the German ``?NN``
  sub-fields (``?30`` bank, ``?31`` account, ``?32``/``?33`` name, ``?20``-``?29`` purpose with ``IBAN+``/``BIC+``),
  the same sub-fields with ``>`` as separator (Triodos), and ``REK: <IBAN>/NAAM: <name>`` (Knab). An IBAN in the
  ``:61:`` supplementary details is the counterparty account (Rabobank). Free text is not mined for names, so the
  counterparty stays null unless stated; one equal to the statement's own account is no counterparty.
- Channel, from the ``:61:`` transaction type code (``N``/``F``/``S`` + three characters): CHK, ECK, TCK, CLR,
  LBX → cheque; DDT, COL → ach; INT, CHG, COM, BRF, CMS, CMZ, CMN, CMT → internal (the bank's own postings and
  cash pooling). Any other code (TRF, MSC, STO, bank-specific numbers) falls back to the transaction type text
  (``/TRTP/``, ``?00``) or else the start of the details: geldautomaat, GEA, ATM, bargeld → cash; betaalautomaat,
  BEA, kartenzahlung, POS → card; incasso, lastschrift, direct debit → ach; cheque, scheck → cheque; otherwise
  a transfer: wire.
- Ids: the bank reference (the ``//`` part of ``:61:``) when it has at least 8 characters, is not NONREF and
  names one booking within the file (a reference repeated with another date, amount or direction is no id).
  The id is a hash of account and reference (``mt940:`` + 24 hex digits), so account numbers do not leak into
  ids, and a booking in an MT942 and in the day's MT940 share it. Otherwise null: the pipeline hashes content.
- Rejected records (kept with a reason): a ``:61:`` the library cannot read, a zero amount, a line without a
  valid transaction type code after the amount (how a mangled amount such as ``12a,00`` shows: the library would
  read ``12``), bookings of a statement without account or currency, and the last booking of an MT940
  statement without closing balance (the file was cut off there). Balances that do not add up are noted.
- Encoding: UTF-8; a file that is not UTF-8 is read as ISO 8859-1 (German and Swiss exports), with a note.
- No statement's own account is returned as an account row: MT940 does not say whether the holder is a person
  or a business.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import decimal
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import mt940
import polars as pl

from finwatch.exceptions import InputError
from finwatch.ingest._base import Adapter, Parsed, ParseOptions, Sample, Source, conform_parsed
from finwatch.ingest._text import decode_utf8

__all__ = ["Mt940Adapter"]

OPTIONS = mt940.Options.all()  # every fix of the library (reversal signs, unbounded :86:, ?31 as IBAN, ...)
TAG = re.compile(r"^:(?P<tag>\d{2}|NS)(?P<sub>[A-Z])?:")
ENVELOPE = re.compile(r"^\{1:F\d{2}(?P<bic>[A-Z]{6}[A-Z0-9]{2})")
BIC = re.compile(r"^[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?$")
IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
TYPE_CODE = re.compile(r"^[NFS][A-Z0-9]{3}$")
NO_REFERENCE = {"NONREF", "NOTPROVIDED", "NONE"}
MIN_REFERENCE = 8
OPENING = ("final_opening_balance", "opening_balance", "intermediate_opening_balance")
CLOSING = ("final_closing_balance", "closing_balance", "intermediate_closing_balance")

#: SWIFT transaction type codes with a channel of their own; any other code is a transfer unless the text says so
CODE_CHANNELS = {
    "CHK": "cheque", "ECK": "cheque", "TCK": "cheque", "CLR": "cheque", "LBX": "cheque",
    "DDT": "ach", "COL": "ach",
    "INT": "internal", "CHG": "internal", "COM": "internal", "BRF": "internal", "CMS": "internal",
    "CMZ": "internal", "CMN": "internal", "CMT": "internal",
}  # fmt: skip
#: words of a transaction type text (or of the start of free-text details) that name the channel
KEYWORD_CHANNELS = (
    (re.compile(r"^GEA\b|\b(ATM|(?i:geldautomaat|bargeld\w*|bar(aus|ein)zahlung|cash withdrawal))\b"), "cash"),
    (re.compile(r"^BEA\b|\b(POS|(?i:betaalautomaat|kartenzahlung|card payment))\b"), "card"),
    (re.compile(r"(?i)\b(incasso|\w*lastschrift|direct debit)\b"), "ach"),
    (re.compile(r"(?i)\b(cheque|\w*scheck)\b"), "cheque"),
)
#: codes of SWIFT-style structured details (``/CODE/value``); a party code owns the NAME/IBAN/BIC after it
SLASH_CODES = {
    "TRTP", "IBAN", "BIC", "NAME", "REMI", "EREF", "CNTP", "ORDP", "BENM", "ULTC", "ULTD", "ULTB", "ID", "ADDR",
    "PURP", "MARF", "CSID", "RTRN", "ISDT", "SVCL", "PREF", "KREF", "OCMT", "CHGS", "EXCH", "IREF", "BUSP",
}  # fmt: skip
PARTIES = {"CNTP", "ORDP", "BENM", "ULTC", "ULTD", "ULTB"}
COUNTERPARTIES = {"CNTP", "ORDP", "BENM", ""}
KNAB = re.compile(r"REK:\s*(?P<account>[A-Z]{2}\d{2}[A-Z0-9]+)\s*/\s*NAAM:\s*(?P<name>[^\n]+)")
ANGLE = re.compile(r"^\d{3}>\d{2}")
ROW_SCHEMA: dict[str, pl.DataType] = {
    "txn_id": pl.String(), "ts": pl.Datetime("us", "UTC"), "src_account": pl.String(), "dst_account": pl.String(),
    "src_institution": pl.String(), "dst_institution": pl.String(), "amount": pl.Decimal(38, 18),
    "currency": pl.String(), "channel": pl.String(), "counterparty_name": pl.String(), "description": pl.String(),
    "source_row": pl.Int64(), "_reason": pl.String(), "_raw": pl.String(),
    "_ref": pl.String(), "_own": pl.String(), "_in": pl.Boolean(),  # for ids and balances; not returned
}  # fmt: skip


@dataclass
class _Block:
    """One statement: its cleaned lines (physical line number, text) and the BIC read before it."""

    lines: list[tuple[int, str]] = field(default_factory=list)
    institution: str | None = None


class _Statement(mt940.models.Transactions):
    """The library's collection, recording for each tag its lines and keeping going past unreadable tags."""

    def __init__(self, starts: list[int]) -> None:
        super().__init__(processors={"pre_transaction_details": [_angle_details]}, options=OPTIONS)
        self.starts = starts  # offset of each line in the parsed text
        self.closed = False  # a closing balance was read since the last :61:
        self.problems: dict[str, tuple[int, str]] = {}  # statement-level tag → (line index, reason)

    def line_index(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset) - 1

    def _process_match(self, match: re.Match[str], i: int, valid_matches: list[re.Match[str]], data: str) -> None:
        end = valid_matches[i + 1].start() if i + 1 < len(valid_matches) else len(data)
        first, last = self.line_index(match.start()), self.line_index(max(end - 1, match.start()))
        full, tag = match.group("full_tag"), match.group("tag")
        if tag in ("86", "NS") and (self.closed or not self.transactions):
            return  # about the statement (after its closing balance) or before any booking: not a record's details
        try:
            super()._process_match(match, i, valid_matches, data)
            error = None
        except (RuntimeError, ValueError, ArithmeticError, TypeError, KeyError, IndexError, AttributeError) as exc:
            error = _library_error(full, exc)
        if tag == "61":
            if error is not None:
                self.transactions.append(mt940.models.Transaction(self, {"_error": error}))
            self.transactions[-1].data["_span"] = [first, last]
            self.closed = False
        elif tag in ("86", "NS"):
            record = self.transactions[-1].data
            record["_span"][1] = last
            if error is not None:
                record.setdefault("_error", error)
        else:
            if error is not None:
                self.problems[full] = (first, error)
            if tag in ("62", "64", "65"):
                self.closed = True

    def _process_statement_tag(self, result: dict[str, Any]) -> None:
        # every :61: is a booking of its own (the library reuses a previous one that has no type code)
        self.transactions.append(mt940.models.Transaction(self, result))


def _angle_details(transactions: Any, tag: Any, tag_dict: dict[str, Any], *args: Any) -> dict[str, Any]:
    """Triodos writes the German ``?NN`` sub-fields with ``>``: make them readable by the library's processor."""
    details = tag_dict.get("transaction_details")
    if isinstance(details, str) and ANGLE.match(details):
        tag_dict["transaction_details"] = re.sub(r">(?=\d{2})", "?", details)
    return tag_dict


def _library_error(tag: str, exc: Exception) -> str:
    if isinstance(exc, RuntimeError):
        return f":{tag}: does not match the field's SWIFT layout"
    if isinstance(exc, ArithmeticError):
        return f":{tag}: unreadable amount"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f":{tag}: invalid value ({message})"


@contextlib.contextmanager
def _quiet_library() -> Iterator[None]:
    """The library logs every field it cannot match at ERROR level; those fields become reasons here instead."""
    logger = logging.getLogger("mt940")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _decode(source: Source, data: bytes, notes: list[str]) -> str:
    try:
        text = decode_utf8(source, data)
    except InputError as exc:
        if not exc.reason.startswith("not valid"):
            raise
        text = data.decode("latin-1")
        notes.append("not UTF-8: read as ISO 8859-1")
    control = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\t\r\n\f")
    if control > max(4, len(text[:4096]) // 100):
        raise InputError(source.display, "binary data, not a text export")
    return text


def _blocks(text: str) -> list[_Block]:
    """Statements by ``:20:`` (or by a field tag after a message end), with physical line numbers."""
    blocks: list[_Block] = []
    current: _Block | None = None
    bic: str | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.replace("\r", "").rstrip()
        stripped = line.strip()
        if not stripped:
            continue
        if stripped == "-" or stripped.startswith("-}"):
            current = None  # end of a message: what follows until the next :20: is envelope or preamble
            continue
        if match := ENVELOPE.match(stripped):
            current, bic = None, match["bic"]
            continue
        tag = TAG.match(line)
        if tag and (tag["tag"] == "20" or current is None):
            current = _Block(institution=bic)
            blocks.append(current)
            bic = None
        if current is None:
            if BIC.match(stripped):
                bic = stripped
            continue
        current.lines.append((number, line))
    return blocks


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def _iban(value: str | None) -> str | None:
    """An account id as given; IBANs without their spaces."""
    if value is None:
        return None
    value = value.strip()
    compact = value.replace(" ", "").upper()
    if IBAN.match(compact):
        return compact
    return value or None


def _own_account(raw: str | None, currency: str | None) -> tuple[str | None, str | None]:
    """(account, institution) from ``:25:``."""
    if raw is None or not raw.strip():
        return None, None
    value = raw.strip()
    institution = None
    prefix, slash, rest = value.partition("/")
    rest = rest.strip()
    if slash and CURRENCY.match(rest.upper()):  # account/currency
        value = prefix.strip()
    elif slash and rest and re.fullmatch(r"[A-Za-z0-9]+", prefix):  # BIC or bank code/account
        institution, value = prefix.upper(), rest
    if currency and len(value) > 3 and value.upper().endswith(currency) and (value[-4].isdigit() or value[-4] == " "):
        value = value[:-3].strip()
    return _iban(value), institution


@dataclass
class _Details:
    description: str | None = None
    type_text: str | None = None  # the bank's transaction type text, for the channel
    account: str | None = None
    institution: str | None = None
    name: str | None = None


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _slash_fields(text: str) -> dict[tuple[str, str], list[str]]:
    """``/CODE/value/CODE//SUB/value`` → {(party, code): value tokens}; the party is "" at top level."""
    tokens = text.split("/")[1:]
    fields: dict[tuple[str, str], list[str]] = {}
    party, key = "", ("", "")
    for token in tokens:
        code = token.strip().upper()
        if code in SLASH_CODES and token == token.strip():
            if code in PARTIES:
                party = code
            elif code not in ("NAME", "IBAN", "BIC", "ID", "ADDR"):
                party = ""
            key = (party, code)
            fields.setdefault(key, [])
            continue
        if key != ("", ""):
            fields[key].append(token)
    return fields


def _slash_details(text: str) -> _Details:
    fields = _slash_fields(text)

    def value(code: str, parties: set[str] = COUNTERPARTIES) -> str | None:
        for (party, name), tokens in fields.items():
            if name == code and party in parties:
                joined = "/".join(tokens).strip("/ ")
                if joined:
                    return joined
        return None

    cntp = fields.get(("CNTP", "CNTP"), [])
    cntp += [""] * (3 - len(cntp))
    remi = value("REMI", {""})
    if remi:
        remi = re.sub(r"^(USTD|STRD)/+", "", remi).strip("/ ") or None
    return _Details(
        description=_squash(remi) if remi else _squash(text),
        type_text=value("TRTP", {""}),
        account=_iban(value("IBAN") or cntp[0] or None),
        institution=(value("BIC") or cntp[1] or None),
        name=_squash(value("NAME") or cntp[2]) or None,
    )


def _details(data: dict[str, Any]) -> _Details:
    """Description, type text and counterparty from the :86: details the library read."""
    text = data.get("transaction_details")
    if isinstance(text, str):
        joined = "".join(text.split("\n"))
        if re.match(r"^/[A-Z]{2,4}/", joined) and any(f"/{code}/" in joined for code in SLASH_CODES):
            return _slash_details(joined)
        found = _Details(description=_squash(text) or None)
        if match := KNAB.search(text):
            found.account, found.name = _iban(match["account"]), _squash(match["name"])
        found.type_text = (found.description or "")[:40] or None
        return found
    if "transaction_code" in data:  # German ?NN sub-fields, split by the library's processor
        posting = _squash(str(data.get("posting_text") or "")) or None
        purpose = " ".join(_squash(str(data[k])) for k in ("purpose", "additional_purpose") if data.get(k)) or None
        return _Details(
            description=f"{posting}: {purpose}" if posting and purpose else posting or purpose,
            type_text=posting,
            account=_iban(data.get("applicant_iban") or data.get("gvc_applicant_iban")),
            institution=data.get("applicant_bin") or data.get("gvc_applicant_bin"),
            name=_squash(str(data.get("applicant_name") or "")) or None,
        )
    return _Details()


def _channel(type_code: str, type_text: str | None) -> str:
    if (channel := CODE_CHANNELS.get(type_code[1:])) is not None:
        return channel
    for pattern, keyword_channel in KEYWORD_CHANNELS:
        if type_text and pattern.search(type_text):
            return keyword_channel
    return "wire"


def _balance(data: dict[str, Any], keys: tuple[str, ...]) -> decimal.Decimal | None:
    for key in keys:
        balance = data.get(key)
        amount = getattr(getattr(balance, "amount", None), "amount", None)
        if isinstance(amount, decimal.Decimal):
            return amount
    return None


class Mt940Adapter(Adapter):
    name = "mt940"
    summary = "SWIFT MT940 statements and MT942 interim reports (bank exports, SWIFT envelopes)"

    @classmethod
    def sniff(cls, sample: Sample) -> str | None:
        if sample.is_dir:
            return None
        text = sample.text
        if not (re.search(r"(?m)^:20:", text) and re.search(r"(?m)^:25:", text)):
            return None
        if not re.search(r"(?m)^:(28C?|60[FM]?|61|62[FM]?|34F|13D?):", text):
            return None
        if re.search(r"(?m)^:(34F|13D?):", text) and not re.search(r"(?m)^:60[FM]?:", text):
            return "SWIFT MT942 interim transaction report"
        return "SWIFT MT940 customer statement"

    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        notes: list[str] = []
        text = _decode(source, source.read_bytes(), notes)
        blocks = _blocks(text)
        if not blocks:
            raise InputError(source.display, "no MT940/MT942 statement: no line starts with a field tag (:20:, :61:)")
        rows: list[dict[str, Any]] = []
        kinds: set[str] = set()
        with _quiet_library():
            for block in blocks:
                kinds.add(self._statement(source, block, rows, notes))
        _reference_ids(rows)
        frame = pl.DataFrame(rows, schema=ROW_SCHEMA) if rows else pl.DataFrame(schema=ROW_SCHEMA)
        frame = conform_parsed(frame).sort("source_row")
        kind = "/".join(sorted(kinds))
        statements = f"{len(blocks)} statement{'s' if len(blocks) != 1 else ''}"
        return Parsed(frame, f"SWIFT {kind} ({statements}, {frame.height} bookings)", notes=notes)

    def _statement(self, source: Source, block: _Block, rows: list[dict[str, Any]], notes: list[str]) -> str:
        """Read one statement into ``rows``; returns MT940 or MT942."""
        numbers = [n for n, _ in block.lines]
        texts = [t for _, t in block.lines]
        starts, offset = [], 0
        for line in texts:
            starts.append(offset)
            offset += len(line) + 1
        statement = _Statement(starts)
        head = numbers[0]
        try:
            statement.parse("\n".join(texts))
        except (RuntimeError, ValueError, ArithmeticError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise InputError(
                source.display, f"statement cannot be read: {_library_error('20', exc)}", row=head
            ) from None
        data = statement.data
        interim = any(k in data for k in ("c_floor_limit", "d_floor_limit", "date")) or not any(
            k in data for k in OPENING
        )
        currency = statement.currency
        currency = currency.upper() if isinstance(currency, str) and CURRENCY.match(currency.upper()) else None
        account, institution = _own_account(data.get("account_identification"), currency)
        institution = institution or block.institution
        problem = None
        if currency is None:
            failed = [f"{reason} at line {numbers[i]}" for tag, (i, reason) in statement.problems.items()
                      if tag[:2] in ("60", "34")]  # fmt: skip
            detail = f": {'; '.join(failed)}" if failed else ""
            problem = (f"statement at line {head} has no readable currency (opening balance :60F:/:60M: or floor "
                       f"limit :34F:){detail}")  # fmt: skip
        elif account is None:
            problem = f"statement at line {head} has no account identification (:25:)"
        for tag, (i, reason) in statement.problems.items():
            if not (currency is None and tag[:2] in ("60", "34")):
                notes.append(f"line {numbers[i]}: {reason}")
        closed = any(k in data for k in CLOSING)
        total = decimal.Decimal(0)
        complete = True
        for k, txn in enumerate(statement.transactions):
            first, last = txn.data["_span"]
            row = _booking(txn.data, account, institution, currency)
            row.update(source_row=numbers[first], _raw="\n".join(texts[first : last + 1]))
            if row["_reason"] is None and problem:
                row["_reason"] = problem
            if row["_reason"] is None and not interim and not closed and k == len(statement.transactions) - 1:
                row["_reason"] = (f"statement at line {head} has no closing balance (:62F:/:62M:): the file looks "
                                  "cut off after this booking")  # fmt: skip
            if row["amount"] is None:
                complete = False
            else:
                total += row["amount"] if row["_in"] else -row["amount"]
            rows.append(row)
        opening, closing = _balance(data, OPENING), _balance(data, CLOSING)
        if complete and opening is not None and closing is not None and opening + total != closing:
            notes.append(f"statement at line {head}: opening balance {opening} + bookings {total} != closing "
                         f"balance {closing} {currency or ''}".rstrip())  # fmt: skip
        if not interim and not closed:
            notes.append(f"statement at line {head} has no closing balance (:62F:/:62M:): file truncated?")
        return "MT942" if interim else "MT940"


def _booking(
    data: dict[str, Any], account: str | None, institution: str | None, currency: str | None
) -> dict[str, Any]:
    """One :61: record (with its details) as a row; ``_reason`` says why it cannot be accepted."""
    row: dict[str, Any] = dict.fromkeys(ROW_SCHEMA)
    if "_error" in data and "amount" not in data:
        row["_reason"] = data["_error"]
        return row
    status = str(data.get("status") or "").upper()
    type_code = str(data.get("id") or "")
    amount = getattr(data.get("amount"), "amount", None)
    booked = data.get("entry_date") or data.get("date")
    details = _details(data)
    extra = str(data.get("extra_details") or "").strip()
    if extra and IBAN.match(extra.replace(" ", "").upper()) and details.account is None:
        details.account = _iban(extra)
    elif extra and extra.lower() not in (details.description or "").lower():
        details.description = f"{details.description} | {extra}" if details.description else extra
    if status in ("RC", "RD"):
        reversal = f"reversal of a {'credit' if status == 'RC' else 'debit'}"
        details.description = f"{details.description} ({reversal})" if details.description else reversal
    counterparty = details.account if details.account != account else None
    incoming = status in ("C", "RD")
    own, other = (account, institution), (counterparty, details.institution if counterparty or details.name else None)
    src, dst = (other, own) if incoming else (own, other)
    reference = str(data.get("bank_reference") or "").strip()
    row.update(
        ts=dt.datetime(booked.year, booked.month, booked.day, tzinfo=dt.UTC) if booked else None,
        src_account=src[0], src_institution=src[1], dst_account=dst[0], dst_institution=dst[1],
        amount=abs(amount) if isinstance(amount, decimal.Decimal) and amount.is_finite() else None,
        currency=currency, channel=_channel(type_code, details.type_text), counterparty_name=details.name,
        description=details.description,
        _ref=reference if len(reference) >= MIN_REFERENCE and reference.upper() not in NO_REFERENCE else None,
        _own=account, _in=incoming,
    )  # fmt: skip
    if "_error" in data:
        row["_reason"] = data["_error"]
    elif status not in ("C", "D", "RC", "RD"):
        row["_reason"] = f"unknown debit/credit mark {data.get('status')!r}"
    elif not TYPE_CODE.match(type_code):
        row["_reason"] = "no transaction type code (e.g. NTRF) after the amount: the amount is not readable"
    elif row["amount"] is None:
        row["_reason"] = "unreadable amount"
    elif row["amount"] == 0:
        row["_reason"] = "zero amount"
    elif row["ts"] is None:
        row["_reason"] = "no booking date"
    return row


def _reference_ids(rows: list[dict[str, Any]]) -> None:
    """Bank references that name one booking (same date, amount and direction wherever repeated) become ids."""
    content: dict[tuple[str, str], set[tuple[Any, ...]]] = {}
    for row in rows:
        if row["_ref"] and row["_reason"] is None:
            content.setdefault((row["_own"], row["_ref"]), set()).add((row["ts"], row["amount"], row["_in"]))
    for row in rows:
        if row["_ref"] and row["_reason"] is None:
            key = (row["_own"], row["_ref"])
            if len(content[key]) == 1:
                row["txn_id"] = "mt940:" + _sha(*key)
