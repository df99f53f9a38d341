"""Same inputs, same bytes: features never depend on the physical row order or on DuckDB's thread count.

DuckDB adds floats up in whatever order its threads combine partial results, so ``sum``/``avg``/``stddev`` over a
DOUBLE differ in the last bits between identical runs. Staging converts ``amount_base`` to an exact DECIMAL once
(``sql/staging/01_stg_transactions.sql``); these tests hold every build to byte-identical output.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

import finwatch.features
from finwatch._duckdb import connect
from finwatch.features import FeatureConfig, Features, build_account_features, build_transaction_features
from finwatch.store import Store
from finwatch.synth import World
from finwatch.testing import make_store, make_transactions

AS_OF = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
#: (store, DuckDB threads) of every build compared with the first
VARIANTS = [("forward", 4), ("forward", 4), ("forward", 1), ("shuffled", 4), ("shuffled", 1)]


@pytest.fixture(scope="module")
def stores(small_world_dir: tuple[World, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The small world's transactions in a store as generated, and in a second store in a shuffled row order."""
    world, _folder = small_world_dir
    root = tmp_path_factory.mktemp("determinism")
    forward = world.transactions
    shuffled = forward.sample(fraction=1.0, shuffle=True, seed=20260201)
    assert not shuffled["txn_id"].equals(forward["txn_id"])
    make_store(root / "forward", forward, world.accounts)
    make_store(root / "shuffled", shuffled, world.accounts)
    as_of = forward["ts"].max()
    assert isinstance(as_of, dt.datetime)
    return {"forward": Store(root / "forward"), "shuffled": Store(root / "shuffled"), "as_of": as_of}


def _with_threads(threads: int) -> Callable[[], duckdb.DuckDBPyConnection]:
    def opened() -> duckdb.DuckDBPyConnection:
        con = connect()
        con.execute(f"set threads = {int(threads)}")
        return con

    return opened


def _frames(features: Features, level: str) -> dict[str, pl.DataFrame]:
    if level == "transaction":
        assert features.transactions is not None
        return {"transactions": features.transactions, "cycles": features.cycles}
    return {"accounts": features.accounts, "evidence": features.evidence, "cycles": features.cycles}


def _bytes(frame: pl.DataFrame) -> bytes:
    return frame.write_ipc(None, compression="uncompressed").getvalue()


def _differing(left: pl.DataFrame, right: pl.DataFrame) -> list[str]:
    """The columns whose values differ (for the failure message), with the largest difference of a float column."""
    if left.schema != right.schema or left.height != right.height:
        return [f"schema or height: {left.schema} ({left.height}) vs {right.schema} ({right.height})"]
    out = []
    for column in left.columns:
        a, b = left[column], right[column]
        if _bytes(a.to_frame()) != _bytes(b.to_frame()):
            gap = (a - b).abs().max() if a.dtype.is_float() else None
            out.append(f"{column} ({(a != b).sum()} rows, max difference {gap!r})")
    return out


@pytest.mark.parametrize("level", ["account", "transaction"])
def test_features_are_byte_identical_whatever_the_row_order_and_threads(
    stores: dict[str, Any], level: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = build_account_features if level == "account" else build_transaction_features
    results = []
    for store, threads in VARIANTS:
        monkeypatch.setattr(finwatch.features, "connect", _with_threads(threads))
        results.append(((store, threads), _frames(build(stores[store], stores["as_of"], FeatureConfig()), level)))
    (_, reference), others = results[0], results[1:]
    assert reference[next(iter(reference))].height > 1000  # the world is not trivially small
    for (store, threads), frames in others:
        for name, frame in frames.items():
            differing = _differing(reference[name], frame)
            assert not differing, f"{level} {name}, {store} store with {threads} thread(s): {differing}"
            assert _bytes(frame) == _bytes(reference[name]), f"{level} {name}, {store} store, {threads} thread(s)"


def test_amounts_add_up_exactly(tmp_path: Path) -> None:
    """Sums are exact decimals: 0.1 + 0.2 + 0.3 in is 0.6 out (in floats 0.1 + 0.2 + 0.3 is 0.6000000000000001)."""
    rows = [{"ts": AS_OF - (i + 2) * H, "src": f"s{i}", "dst": "A", "amount": a, "channel": "wire"}
            for i, a in enumerate(["0.10", "0.20", "0.30"])]  # fmt: skip
    rows.append({"ts": AS_OF - H, "src": "A", "dst": "B", "amount": "0.60", "channel": "wire"})
    make_store(tmp_path / "s", make_transactions(rows))
    accounts = build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig()).accounts
    a = accounts.filter(pl.col("account_id") == "A").row(0, named=True)
    assert a["sum_in_30d"] == 0.6
    assert a["sum_out_30d"] == 0.6
    assert a["retained_share_30d"] == 0.0
    assert a["in_out_imbalance_30d"] == 0.0


@pytest.mark.parametrize(
    ("amounts", "cv"),
    [
        pytest.param(["100.00"], 0.0, id="one inflow"),
        pytest.param(["0.10", "0.10", "0.10"], 0.0, id="equal inflows: exactly 0"),
        pytest.param(["100.00", "300.00"], 0.5, id="100 and 300: sd 100 over mean 200"),
        pytest.param(["1.00", "2.00", "3.00", "4.00"], 0.4472135954999579, id="1..4: sqrt(1.25) / 2.5"),
    ],
)
def test_the_spread_of_inflows_is_the_population_cv(tmp_path: Path, amounts: list[str], cv: float) -> None:
    rows = [{"ts": AS_OF - (len(amounts) - i) * H, "src": f"s{i}", "dst": "A", "amount": a, "channel": "wire"}
            for i, a in enumerate(amounts)]  # fmt: skip
    make_store(tmp_path / "s", make_transactions(rows))
    txns = build_transaction_features(Store(tmp_path / "s"), AS_OF, FeatureConfig()).transactions
    assert txns is not None
    last = txns.sort("ts")["dst_in_amount_cv_24h"][-1]
    assert last == pytest.approx(cv, rel=1e-12)
    if cv == 0.0:
        assert last == 0.0
