"""Builders for tests and examples: tiny canonical tables and a store holding them.

from finwatch.testing import make_store, make_transactions
txns = make_transactions([
    {"ts": "2026-01-05T10:00:00Z", "src": None, "dst": "A", "amount": "9999.99", "channel": "cash"},
])
store = make_store(tmp_path / "store", txns)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from finwatch.config import parse_as_of
from finwatch.fx import FxTable
from finwatch.schema import ACCOUNT_SCHEMA, LABEL_SCHEMA, TRANSACTION_SCHEMA, polars_schema
from finwatch.store import Store, StoreSettings

__all__ = ["make_accounts", "make_labels", "make_store", "make_transactions"]

_DEFAULTS: dict[str, Any] = {
    "currency": "USD", "channel": "wire", "src_institution": None, "dst_institution": None, "mcc": None,
    "counterparty_name": None, "description": None, "country": None, "city": None, "branch": None, "chain": None,
}  # fmt: skip


def _ts(value: Any) -> dt.datetime:
    return parse_as_of(value if isinstance(value, dt.datetime) else str(value), "ts")


def make_transactions(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Canonical transactions from short dicts: ``ts``, ``src``, ``dst``, ``amount`` and any canonical column.

    Ids default to ``t1, t2, …``; ``amount_base`` defaults to the amount (base currency); lineage says "test".
    """
    out = []
    for number, row in enumerate(rows, start=1):
        amount = Decimal(str(row["amount"]))
        record = {**_DEFAULTS, **{k: v for k, v in row.items() if k not in ("src", "dst", "ts", "amount")}}
        record.update(
            txn_id=row.get("txn_id", f"t{number}"),
            ts=_ts(row["ts"]),
            src_account=row.get("src"),
            dst_account=row.get("dst"),
            amount=amount,
            amount_base=float(row.get("amount_base", amount)),
            source_format="test",
            source_file_sha256="0" * 64,
            source_row=number,
        )
        out.append(record)
    frame = pl.DataFrame(out, schema=polars_schema(TRANSACTION_SCHEMA)) if out else pl.DataFrame(
        schema=polars_schema(TRANSACTION_SCHEMA))  # fmt: skip
    return frame


def make_accounts(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Canonical accounts from short dicts: ``account_id`` plus any canonical column (kind and holder default)."""
    out = []
    for number, row in enumerate(rows, start=1):
        record: dict[str, Any] = {name: None for name in ACCOUNT_SCHEMA.names}
        record.update(kind="bank_account", holder_type="person", source_format="test", source_file_sha256="0" * 64,
                      source_row=number)  # fmt: skip
        record.update(row)
        out.append(record)
    return pl.DataFrame(out, schema=polars_schema(ACCOUNT_SCHEMA))


def make_labels(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Labels from short dicts: ``subject_id`` plus any label column (a positive transaction label by default)."""
    out = []
    for row in rows:
        record: dict[str, Any] = {"subject_kind": "transaction", "label": True, "typology": "test", "instance_id": None,
                                  "role": None, "source": "test"}  # fmt: skip
        record.update(row)
        out.append(record)
    return pl.DataFrame(out, schema=polars_schema(LABEL_SCHEMA)).select(list(LABEL_SCHEMA.names))


def make_store(
    root: Path,
    transactions: pl.DataFrame,
    accounts: pl.DataFrame | None = None,
    labels: pl.DataFrame | None = None,
    *,
    base_currency: str = "USD",
    fx: FxTable | None = None,
) -> Store:
    """A store holding exactly these tables, committed like an ingest batch (manifest last).

    The store's base currency is ``base_currency`` and its FX table ``fx`` (default: the shipped table);
    ``amount_base`` is taken as given.
    """
    store = Store(root)
    store.ensure(StoreSettings(base_currency, None))
    digest = hashlib.sha256(transactions.write_ipc(None).getvalue()).hexdigest()[:16]
    fx = fx or FxTable.load()
    tables = {"transactions": transactions, "fx": fx.to_frame()}
    if accounts is not None:
        tables["accounts"] = accounts
    if labels is not None:
        tables["labels"] = labels
    manifest = {
        "base_currency": base_currency,
        "fx_table": {"name": fx.name, "sha256": fx.sha256},
        "pseudonymised": False,
        "inputs": [{"file": "test", "sha256": digest, "format": "test"}],
    }
    with store.lock():
        store.write_batch(digest, tables, manifest)
    return store
