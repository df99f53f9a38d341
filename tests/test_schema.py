from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pyarrow as pa
import pytest

from finwatch.exceptions import SchemaError
from finwatch.schema import (
    ACCOUNT_SCHEMA,
    KYC_COLUMNS,
    LABEL_SCHEMA,
    TRANSACTION_SCHEMA,
    AccountStatus,
    IdType,
    conform,
    polars_schema,
)


def _txn(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "txn_id": "T1",
        "ts": dt.datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=dt.UTC),
        "src_account": "A",
        "dst_account": "B",
        "src_institution": "FFEDUS33",
        "dst_institution": "UNSVUS44",
        "amount": Decimal("9999.99"),
        "currency": "USD",
        "amount_base": 9999.99,
        "channel": "wire",
        "mcc": None,
        "counterparty_name": None,
        "description": None,
        "country": "US",
        "city": None,
        "branch": None,
        "chain": None,
        "source_format": "test",
        "source_file_sha256": "0" * 64,
        "source_row": 1,
    }
    row.update(overrides)
    return row


def _table(rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=TRANSACTION_SCHEMA)


def test_amount_keeps_wei_beyond_two_to_the_64_exactly() -> None:
    wei = 2**64 + 12345  # 18.446744073709563961 ETH
    amount = Decimal(wei).scaleb(-18)
    table = conform(_table([_txn(amount=amount, currency="ETH", chain="ethereum")]), TRANSACTION_SCHEMA)
    stored = table.column("amount")[0].as_py()
    assert stored == amount
    assert int(stored.scaleb(18)) == wei


def test_amount_keeps_cents_exactly_at_the_threshold_boundary() -> None:
    rows = [_txn(txn_id="a", amount=Decimal("9999.99")), _txn(txn_id="b", amount=Decimal("10000.00"))]
    amounts = conform(_table(rows), TRANSACTION_SCHEMA).column("amount").to_pylist()
    assert amounts == [Decimal("9999.99"), Decimal("10000.00")]
    assert amounts[0] < Decimal(10_000) <= amounts[1]


def test_timestamps_are_utc_microseconds() -> None:
    table = conform(_table([_txn()]), TRANSACTION_SCHEMA)
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.column("ts")[0].as_py().microsecond == 123456


def test_missing_column_is_named() -> None:
    table = _table([_txn()]).drop_columns(["currency"])
    with pytest.raises(SchemaError, match=r"missing columns \['currency'\]"):
        conform(table, TRANSACTION_SCHEMA)


def test_unexpected_column_is_named() -> None:
    table = _table([_txn()]).append_column("iban", pa.array(["X"]))
    with pytest.raises(SchemaError, match=r"unexpected columns \['iban'\]"):
        conform(table, TRANSACTION_SCHEMA)


def test_null_in_required_column_is_refused() -> None:
    table = pa.Table.from_pylist([_txn(txn_id=None)], schema=TRANSACTION_SCHEMA.set(0, pa.field("txn_id", pa.string())))
    with pytest.raises(SchemaError, match="'txn_id' has 1 null"):
        conform(table, TRANSACTION_SCHEMA)


def test_amount_that_would_lose_digits_is_refused() -> None:
    table = pa.table({"amount": pa.array([Decimal("0.0000000000000000001")], pa.decimal128(38, 19))})
    schema = pa.schema([pa.field("amount", TRANSACTION_SCHEMA.field("amount").type)])
    with pytest.raises(SchemaError, match="'amount' cannot be read"):
        conform(table, schema)


def test_polars_view_of_every_schema_round_trips() -> None:
    for schema in (TRANSACTION_SCHEMA, ACCOUNT_SCHEMA, LABEL_SCHEMA):
        frame = pl.DataFrame(schema=polars_schema(schema))
        assert conform(frame, schema).schema.equals(schema, check_metadata=False)


def test_accounts_schema_version_2_adds_the_customer_columns_after_links() -> None:
    names = ACCOUNT_SCHEMA.names
    kyc = {
        "given_name": pa.string(), "family_name": pa.string(), "birth_date": pa.date32(), "id_type": pa.string(),
        "id_number": pa.string(), "id_country": pa.string(), "address": pa.string(), "postcode": pa.string(),
        "phone": pa.string(), "occupation": pa.string(), "status": pa.string(), "branch": pa.string(),
        "own_client": pa.bool_(),
    }  # fmt: skip
    start = names.index("links") + 1
    assert names[start : start + len(kyc)] == list(kyc) == list(KYC_COLUMNS)
    assert names[start + len(kyc) :] == ["source_format", "source_file_sha256", "source_row"]
    for name, kind in kyc.items():
        field = ACCOUNT_SCHEMA.field(name)
        assert (field.type, field.nullable) == (kind, True), name
    assert ACCOUNT_SCHEMA.metadata[b"finwatch.schema_version"] == b"2"
    assert {s.value for s in IdType} == {"passport", "national_id", "driver_licence", "tax_id", "company_registration"}
    assert {s.value for s in AccountStatus} == {"open", "closed", "frozen", "dormant"}
