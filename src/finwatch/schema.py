"""The canonical data model: one Arrow schema each for transactions, accounts and labels.

Every stage reads and writes these shapes; adapters map export formats onto them, features read them from the
store. See ``docs/data-model.md`` for each column with an example row.

Amounts are exact decimals: ``decimal128(38, 18)`` holds any fiat amount to the cent and any Ether amount to the
wei (2^64 wei is only 18.45 ETH; the type holds up to 10^20 currency units, i.e. 10^38 base units for an
18-decimal asset). Timestamps are UTC with microsecond precision.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import polars as pl
import pyarrow as pa

from finwatch.exceptions import SchemaError

__all__ = [
    "ACCOUNT_SCHEMA",
    "AMOUNT_SCALE",
    "AMOUNT_TYPE",
    "KYC_COLUMNS",
    "LABEL_SCHEMA",
    "TIMESTAMP_TYPE",
    "TRANSACTION_SCHEMA",
    "AccountKind",
    "AccountStatus",
    "Channel",
    "HolderType",
    "IdType",
    "SubjectKind",
    "conform",
    "polars_schema",
]

AMOUNT_PRECISION: Final = 38
AMOUNT_SCALE: Final = 18
AMOUNT_TYPE: Final = pa.decimal128(AMOUNT_PRECISION, AMOUNT_SCALE)
TIMESTAMP_TYPE: Final = pa.timestamp("us", tz="UTC")


class Channel(StrEnum):
    """How money moved. ``p2p`` is an instant person-to-person transfer (Zelle, Swish, Faster Payments)."""

    CASH = "cash"
    WIRE = "wire"
    ACH = "ach"
    CARD = "card"
    CHEQUE = "cheque"
    P2P = "p2p"
    CRYPTO = "crypto"
    INTERNAL = "internal"


class AccountKind(StrEnum):
    BANK_ACCOUNT = "bank_account"
    CRYPTO_ADDRESS = "crypto_address"
    EXCHANGE_ACCOUNT = "exchange_account"


class HolderType(StrEnum):
    PERSON = "person"
    BUSINESS = "business"
    MERCHANT = "merchant"
    EXCHANGE = "exchange"


class IdType(StrEnum):
    """The identity document a holder was verified with (``company_registration``: a business's register entry)."""

    PASSPORT = "passport"
    NATIONAL_ID = "national_id"
    DRIVER_LICENCE = "driver_licence"
    TAX_ID = "tax_id"
    COMPANY_REGISTRATION = "company_registration"


class AccountStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    FROZEN = "frozen"
    DORMANT = "dormant"


class SubjectKind(StrEnum):
    ACCOUNT = "account"
    TRANSACTION = "transaction"


_LINEAGE: Final = [
    pa.field("source_format", pa.string(), nullable=False),
    pa.field("source_file_sha256", pa.string(), nullable=False),
    pa.field("source_row", pa.int64(), nullable=False),
]

TRANSACTION_SCHEMA: Final = pa.schema(
    [
        pa.field("txn_id", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP_TYPE, nullable=False),
        # null for the cash side of a cash deposit (src) or withdrawal (dst)
        pa.field("src_account", pa.string()),
        pa.field("dst_account", pa.string()),
        pa.field("src_institution", pa.string()),
        pa.field("dst_institution", pa.string()),
        pa.field("amount", AMOUNT_TYPE, nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("amount_base", pa.float64(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("mcc", pa.string()),
        pa.field("counterparty_name", pa.string()),
        pa.field("description", pa.string()),
        pa.field("country", pa.string()),
        pa.field("city", pa.string()),
        pa.field("branch", pa.string()),
        pa.field("chain", pa.string()),
        *_LINEAGE,
    ],
    metadata={b"finwatch.table": b"transactions", b"finwatch.schema_version": b"1"},
)

ACCOUNT_SCHEMA: Final = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("holder_type", pa.string(), nullable=False),
        pa.field("holder_name", pa.string()),
        pa.field("institution", pa.string()),
        pa.field("country", pa.string()),
        pa.field("city", pa.string()),
        pa.field("currency", pa.string()),
        # industry of a business or merchant holder, as an ISO 18245 merchant category code
        pa.field("mcc", pa.string()),
        pa.field("opened_date", pa.date32()),
        # e.g. an exchange account's linked bank account and deposit address
        pa.field("links", pa.list_(pa.string())),
        # customer data (KYC) of the holder, where a customer extract gives it (schema version 2); an account with
        # several holders has one row per holder, the first (lowest source_row) being the primary holder
        pa.field("given_name", pa.string()),  # persons
        pa.field("family_name", pa.string()),  # persons; holder_name stays the full name or the business name
        pa.field("birth_date", pa.date32()),  # date of birth, or of incorporation for a business
        pa.field("id_type", pa.string()),  # IdType
        pa.field("id_number", pa.string()),
        pa.field("id_country", pa.string()),  # ISO 3166 alpha-2 country that issued the id
        pa.field("address", pa.string()),  # street line
        pa.field("postcode", pa.string()),
        pa.field("phone", pa.string()),
        pa.field("occupation", pa.string()),  # a person's occupation, or a business's activity
        pa.field("status", pa.string()),  # AccountStatus
        pa.field("branch", pa.string()),  # branch that holds the account
        pa.field("own_client", pa.bool_()),  # the holder is the reporting institution's own client
        *_LINEAGE,
    ],
    metadata={b"finwatch.table": b"accounts", b"finwatch.schema_version": b"2"},
)

#: the accounts' customer-data columns (schema version 2): null where no customer extract gave them
KYC_COLUMNS: Final = (
    "given_name", "family_name", "birth_date", "id_type", "id_number", "id_country", "address", "postcode", "phone",
    "occupation", "status", "branch", "own_client",
)  # fmt: skip

LABEL_SCHEMA: Final = pa.schema(
    [
        pa.field("subject_kind", pa.string(), nullable=False),
        pa.field("subject_id", pa.string(), nullable=False),
        # true: part of a suspicious pattern; false: a known innocent look-alike
        pa.field("label", pa.bool_(), nullable=False),
        pa.field("typology", pa.string(), nullable=False),
        # groups the rows of one pattern instance (one laundering attempt); null when the source has none
        pa.field("instance_id", pa.string()),
        pa.field("role", pa.string()),
        pa.field("source", pa.string(), nullable=False),
    ],
    metadata={b"finwatch.table": b"labels", b"finwatch.schema_version": b"1"},
)


def polars_schema(schema: pa.Schema) -> pl.Schema:
    """The Polars view of a canonical Arrow schema."""
    empty = pl.from_arrow(schema.empty_table())
    assert isinstance(empty, pl.DataFrame)
    return empty.schema


def conform(table: pa.Table | pl.DataFrame, schema: pa.Schema, *, what: str = "table") -> pa.Table:
    """Return ``table`` with exactly ``schema``'s columns, order and types, or raise :class:`SchemaError`.

    Columns are cast safely (no silent truncation of amounts or timestamps); a missing column, an extra
    column, a failed cast or a null in a non-nullable column is an error naming the column.
    """
    if isinstance(table, pl.DataFrame):
        table = table.to_arrow()
    have = set(table.column_names)
    want = [f.name for f in schema]
    missing = [name for name in want if name not in have]
    extra = sorted(have - set(want))
    if missing or extra:
        raise SchemaError(f"{what}: missing columns {missing or 'none'}, unexpected columns {extra or 'none'}")
    arrays = []
    for field in schema:
        column = table.column(field.name)
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(f"{what}: column {field.name!r} cannot be read as {field.type}: {exc}") from exc
        if not field.nullable and column.null_count:
            raise SchemaError(f"{what}: column {field.name!r} has {column.null_count} null value(s)")
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)
