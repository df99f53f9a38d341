"""The adapter interface: one small class per export format, and the frame every adapter returns."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import polars as pl

from finwatch._duckdb import connect, fetch
from finwatch._files import not_a_file
from finwatch.schema import ACCOUNT_SCHEMA, AMOUNT_SCALE, KYC_COLUMNS, LABEL_SCHEMA, polars_schema

__all__ = [
    "PARSED_ACCOUNT_COLUMNS",
    "PARSED_SCHEMA",
    "Adapter",
    "ParseOptions",
    "Parsed",
    "Sample",
    "Source",
    "conform_accounts",
    "conform_parsed",
    "control_reason",
    "duckdb_connection",
    "fetch",  # re-exported for the adapters
    "ingest_date",
    "not_a_file",
    "wrapped_os_error",
]

AMOUNT: pl.DataType = pl.Decimal(38, AMOUNT_SCALE)
TIMESTAMP: pl.DataType = pl.Datetime("us", "UTC")

#: What an adapter returns: one row per record read, good or bad. Canonical transaction columns, except those
#: the pipeline adds (amount_base, lineage of the file), plus ``_reason`` (why a row cannot be accepted, null when
#: it can) and ``_raw`` (the record's text, needed at least for rejected rows). ``txn_id`` may be null: the
#: pipeline then derives a content hash.
_PARSED_COLUMNS: dict[str, pl.DataType] = {
    "txn_id": pl.String(),
    "ts": TIMESTAMP,
    "src_account": pl.String(),
    "dst_account": pl.String(),
    "src_institution": pl.String(),
    "dst_institution": pl.String(),
    "amount": AMOUNT,
    "currency": pl.String(),
    "channel": pl.String(),
    "mcc": pl.String(),
    "counterparty_name": pl.String(),
    "description": pl.String(),
    "country": pl.String(),
    "city": pl.String(),
    "branch": pl.String(),
    "chain": pl.String(),
    "source_row": pl.Int64(),
    "_reason": pl.String(),
    "_raw": pl.String(),
}
PARSED_SCHEMA = pl.Schema(_PARSED_COLUMNS)
#: Accounts an adapter may return: canonical account columns without file lineage, plus ``source_row``.
PARSED_ACCOUNT_COLUMNS = (
    "account_id", "kind", "holder_type", "holder_name", "institution", "country", "city", "currency", "mcc",
    "opened_date", "links", *KYC_COLUMNS, "source_row",
)  # fmt: skip
_ACCOUNT_TYPES = polars_schema(ACCOUNT_SCHEMA)


@dataclass(frozen=True)
class Sample:
    """What detection may look at: the start of a file (or a folder's file names)."""

    path: Path
    head: bytes
    is_dir: bool
    names: tuple[str, ...] = ()  # file names in a folder

    @property
    def text(self) -> str:
        return self.head.decode("utf-8", errors="replace").lstrip("\ufeff")

    @property
    def first_line(self) -> str:
        return self.text.lstrip().split("\n", 1)[0].strip("\r")


@dataclass(frozen=True)
class Source:
    """One input as given by the user: a file (or, for AMLSim, a folder)."""

    path: Path
    sha256: str
    display: str  # how messages name it

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class ParseOptions:
    mapping: Path | None = None  # bank-csv: mapping file (TOML) or name of a shipped mapping
    blocks: Path | None = None  # ethereum-etl token transfers: blocks file for timestamps
    currency: str | None = None  # formats without a currency column (AMLSim): the amount's currency
    start: dt.date | None = None  # formats with relative time steps (AMLSim): the date of step 0
    account: str | None = None  # formats that do not name their own account (exchange ledger): its id


@dataclass
class Parsed:
    rows: pl.DataFrame  # PARSED_SCHEMA
    detected: str  # e.g. "camt.053.001.02 (6 statements)"
    accounts: pl.DataFrame | None = None
    labels: pl.DataFrame | None = None  # LABEL_SCHEMA; account ids are still raw (pseudonymised later)
    #: positive labels for this file's own records: ``source_row, typology, instance_id`` (AMLworld's flag)
    row_labels: pl.DataFrame | None = None
    #: records that label transactions by their content (AMLworld patterns): PARSED_SCHEMA columns plus
    #: ``typology`` and ``instance_id``; they are matched by content id and are not stored as transactions
    label_rows: pl.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    #: files of reference data (labels, accounts) rather than transactions: the records read and accepted, which
    #: are in ``labels``/``accounts``; the rejected ones are in ``rows`` with their ``_reason`` (and are counted there)
    reference_records: int = 0
    #: the records hold personal data (customer data). With a pseudonym key the quarantine keeps no record's text in
    #: clear, whatever the format (:mod:`finwatch.ingest.quarantine`)
    personal: bool = False

    @property
    def rows_read(self) -> int:
        return self.rows.height + self.reference_records


class Adapter(ABC):
    """Reads one export format into canonical rows. Subclasses are registered in ``_registry``."""

    name: ClassVar[str]
    summary: ClassVar[str]
    reads_directories: ClassVar[bool] = False
    #: True when ``source_row`` is the physical line of a text file (raw text of a rejected record = that line)
    line_records: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def sniff(cls, sample: Sample) -> str | None:
        """A description of what was recognised (e.g. ``"AMLworld CSV, Kaggle header"``), or None."""

    @abstractmethod
    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        """Every record read appears once in ``Parsed.rows`` (reference data: once in ``Parsed.rows`` when rejected,
        else counted in ``Parsed.reference_records``); unreadable files raise ``InputError``."""


def conform_parsed(frame: pl.DataFrame) -> pl.DataFrame:
    """Add missing optional columns as nulls and cast to ``PARSED_SCHEMA`` (column order included)."""
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in PARSED_SCHEMA.items() if name not in frame.columns]
    frame = frame.with_columns(missing) if missing else frame
    return frame.select([pl.col(name).cast(dtype) for name, dtype in PARSED_SCHEMA.items()])


def conform_accounts(frame: pl.DataFrame) -> pl.DataFrame:
    """Accounts as ``PARSED_ACCOUNT_COLUMNS`` in their canonical types: columns an adapter does not know (the customer
    data of an export without any) are added as nulls."""
    types = {name: pl.Int64() if name == "source_row" else _ACCOUNT_TYPES[name] for name in PARSED_ACCOUNT_COLUMNS}
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in types.items() if name not in frame.columns]
    frame = frame.with_columns(missing) if missing else frame
    return frame.select([pl.col(name).cast(dtype) for name, dtype in types.items()])


def ingest_date() -> dt.date:
    """The day of the ingest (UTC): a birth date after it is in the future."""
    return dt.datetime.now(dt.UTC).date()


def empty_labels() -> pl.DataFrame:
    return pl.DataFrame(schema=polars_schema(LABEL_SCHEMA))


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB connection with settings that keep results deterministic."""
    return connect()


def json_raw(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=str)


AMOUNT_LIMIT = 10 ** (38 - AMOUNT_SCALE)


def range_problem(value: Decimal) -> str | None:
    """Why an exact amount cannot be stored as decimal(38, 18), or None when it can."""
    if abs(value) >= AMOUNT_LIMIT:
        return f"amount {value} exceeds the representable range (below 10^{38 - AMOUNT_SCALE})"
    exponent = value.as_tuple().exponent
    if (
        isinstance(exponent, int)
        and exponent < -AMOUNT_SCALE
        and value != value.quantize(Decimal(1).scaleb(-AMOUNT_SCALE))
    ):
        return f"amount {value} has more than {AMOUNT_SCALE} decimal places"
    return None


def sql_values(mapping: dict[str, str]) -> str:
    """A SQL ``VALUES`` list of a module's constant lookup table (never user input): ``('a', 'b'), ...``."""
    for text in (*mapping, *mapping.values()):
        if "'" in text:
            raise ValueError(f"lookup constant {text!r} must not contain a quote")
    return ", ".join(f"('{k}', '{v}')" for k, v in mapping.items())


#: C0 control characters other than tab, line feed and carriage return: never part of a stored text field
CONTROL_CLASS = r"[\x00-\x08\x0B\x0C\x0E-\x1F]"


def control_reason(columns: list[str]) -> pl.Expr:
    """Why a record cannot be stored because a text field holds a control character (the first such column), or
    null. A NUL or escape character in an account id or a name would make a phantom account or hide text."""
    reason: pl.Expr = pl.lit(None, pl.String)
    for name in reversed(columns):
        reason = (
            pl.when(pl.col(name).str.contains(CONTROL_CLASS).fill_null(False))
            .then(pl.lit(f"control character in {name} (text fields may hold tab and line breaks only)"))
            .otherwise(reason)
        )
    return reason


_ERRNO = re.compile(r"(?:os error|errno|\[Errno)\s*(\d+)", re.IGNORECASE)
_KNOWN = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG, errno.EMFILE,
          errno.ENFILE, errno.ENOMEM)  # fmt: skip


def wrapped_os_error(exc: BaseException) -> tuple[int, str] | None:
    """``(errno, strerror)`` of the system error behind ``exc``: an ``OSError``, or a library's error that wraps one
    in its message (Polars' ``ComputeError`` "... (os error 28)", DuckDB's ``IOException``, pyarrow's
    ``ArrowIOError``); None when ``exc`` is about something else."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno, exc.strerror or os.strerror(exc.errno)
    text = str(exc)
    found = _ERRNO.search(text)
    if found and int(found[1]) in errno.errorcode:
        return int(found[1]), os.strerror(int(found[1]))
    for code in _KNOWN:
        if os.strerror(code).lower() in text.lower():
            return code, os.strerror(code)
    if isinstance(exc, OSError):
        return errno.EIO, text.strip().splitlines()[0] if text.strip() else os.strerror(errno.EIO)
    return None
