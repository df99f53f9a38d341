"""The one way finwatch opens DuckDB and reads results back: the same inputs give the same bytes; Polars frames out.

What makes results deterministic — no setting alone does (DuckDB runs aggregates on every core; ``threads`` and
the physical row order of the store's files are free to vary):

- Amounts are exact. ``sql/staging/01_stg_transactions.sql`` converts ``amount_base`` (a float in the store) to
  ``DECIMAL(38, 12)`` once, where the transactions are read, so every ``sum``/``avg`` of amounts (also in window
  frames) is an exact integer sum whatever order threads combine partial results in; a family casts the exact
  result to DOUBLE (and the loader converts any DECIMAL column a family or mart outputs). A spread is computed
  from exact sums of amounts and of their squares, never with ``stddev``/``var`` over floats. Counts, ``min``,
  ``max``, medians and quantiles do not depend on order. Do not aggregate a float column with ``sum``, ``avg``,
  ``stddev`` or ``var`` (``tests/test_determinism.py`` builds the features with 1 and 4 threads and from a
  shuffled copy of the store and requires byte-identical frames).
- Order is explicit. Marts and fetched tables end with an ``order by`` on a unique key;
  ``preserve_insertion_order`` keeps that order through inserts and the Arrow hand-over.
- Time is UTC (``timezone``), so date and hour functions do not depend on the host.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

__all__ = ["connect", "fetch"]


def connect() -> duckdb.DuckDBPyConnection:
    """A private in-memory connection: insertion order kept, UTC, no progress bar (see the module for what else
    determinism takes: exact amounts in the SQL, explicit orders)."""
    con = duckdb.connect(":memory:", config={"preserve_insertion_order": True})
    con.execute("set timezone = 'UTC'")
    con.execute("set enable_progress_bar = false")  # progress goes to the CLI's own status line, not stdout
    return con


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
    """Run a query with bound parameters and return a Polars frame."""
    frame = pl.from_arrow(con.sql(sql, params=params or {}).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame
