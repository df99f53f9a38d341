"""The one way finwatch opens DuckDB and reads results back: deterministic settings, Polars frames out."""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

__all__ = ["connect", "fetch"]


def connect() -> duckdb.DuckDBPyConnection:
    """A private in-memory connection: insertion order kept (deterministic output), UTC, no progress bar."""
    con = duckdb.connect(":memory:", config={"preserve_insertion_order": True})
    con.execute("set timezone = 'UTC'")
    con.execute("set enable_progress_bar = false")  # progress goes to the CLI's own status line, not stdout
    return con


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
    """Run a query with bound parameters and return a Polars frame."""
    frame = pl.from_arrow(con.sql(sql, params=params or {}).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame
