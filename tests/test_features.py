"""Account features: boundaries to the cent and to the second, references in plain Python/Polars, point in time."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import networkx as nx
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finwatch.exceptions import ConfigError
from finwatch.features import AuditFailed, FeatureConfig, build_account_features, build_transaction_features
from finwatch.store import Store
from finwatch.testing import make_store, make_transactions

AS_OF = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)
S = dt.timedelta(seconds=1)


def features_of(tmp_path: Path, rows: list[dict[str, Any]], name: str = "s", **config: Any) -> pl.DataFrame:
    make_store(tmp_path / name, make_transactions(rows))
    return build_account_features(Store(tmp_path / name), AS_OF, FeatureConfig(**config)).accounts


def one(frame: pl.DataFrame, account: str, column: str) -> Any:
    return frame.filter(pl.col("account_id") == account)[column].item()


def cash_in(account: str, amount: str, at: dt.datetime, **extra: Any) -> dict[str, Any]:
    return {"ts": at, "src": None, "dst": account, "amount": amount, "channel": "cash", **extra}


# --- structuring: the threshold to the cent ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "counted"),
    [
        pytest.param("9999.99", 1, id="deposit at 9,999.99 is sub-threshold"),
        pytest.param("10000.00", 0, id="deposit at 10,000.00 is not sub-threshold"),
        pytest.param("8000.00", 1, id="deposit at 8,000.00 is near (80 %)"),
        pytest.param("7999.99", 0, id="deposit at 7,999.99 is not near"),
    ],
)
def test_near_threshold_cash_deposit_boundaries(tmp_path: Path, amount: str, counted: int) -> None:
    frame = features_of(tmp_path, [cash_in("A", amount, AS_OF - H)])
    assert one(frame, "A", "count_cash_near_threshold_24h") == counted


@pytest.mark.parametrize(
    ("amount", "reportable_at_threshold", "near"),
    [
        pytest.param("9999.99", True, True, id="9,999.99 is near when 10,000 is reportable"),
        pytest.param("10000.00", True, False, id="10,000.00 is not near when 10,000 is reportable"),
        pytest.param("10000.00", False, True, id="10,000.00 is near when only more than 10,000 is reportable"),
        pytest.param("10000.01", False, False, id="10,000.01 is not near when only more than 10,000 is reportable"),
        pytest.param("8000.00", False, True, id="8,000.00 is near either way"),
    ],
)
def test_the_near_threshold_band_follows_reportable_at_threshold(
    tmp_path: Path, amount: str, reportable_at_threshold: bool, near: bool
) -> None:
    make_store(tmp_path / "s", make_transactions([cash_in("A", amount, AS_OF - H, txn_id="d")]))
    config = FeatureConfig(reportable_at_threshold=reportable_at_threshold)
    accounts = build_account_features(Store(tmp_path / "s"), AS_OF, config).accounts
    transactions = build_transaction_features(Store(tmp_path / "s"), AS_OF, config).transactions
    assert transactions is not None
    assert one(accounts, "A", "count_cash_near_threshold_24h") == int(near)
    assert transactions.filter(pl.col("txn_id") == "d")["is_cash_near_threshold"].item() is near
    assert transactions.filter(pl.col("txn_id") == "d")["dst_cash_near_threshold_5d"].item() == int(near)


@pytest.mark.parametrize(
    ("window", "largest"),
    [
        pytest.param(None, 9_500.0, id="calendar day: deposits 20 h apart across midnight are two days"),
        pytest.param(dt.timedelta(hours=24), 18_500.0, id="24-hour rule: deposits 20 h apart add up"),
        pytest.param(dt.timedelta(hours=20), 9_500.0, id="a 20-hour window: exactly 20 h apart is outside"),
    ],
)
def test_cash_adds_up_over_the_aggregation_window(tmp_path: Path, window: dt.timedelta | None, largest: float) -> None:
    evening = dt.datetime(2026, 1, 28, 16, 0, tzinfo=dt.UTC)
    rows = [cash_in("A", "9000.00", evening), cash_in("A", "9500.00", evening + 20 * H)]  # 12:00 the next day
    frame = features_of(tmp_path, rows, aggregation_window=window)
    assert one(frame, "A", "max_cash_near_threshold_day_total_30d") == pytest.approx(largest)


def test_a_threshold_in_another_currency_is_converted_at_the_as_of_date(tmp_path: Path) -> None:
    from decimal import Decimal

    from finwatch.fx import FxTable

    table = FxTable.load()
    rate = table.rate_to(pl.DataFrame({"date": [AS_OF.date()], "currency": ["CAD"]}), "USD")["rate"].item()
    threshold = float(Decimal(10_000) * Decimal(repr(rate)))  # 10,000 CAD in USD, the store's base currency
    assert threshold != pytest.approx(10_000)
    below, at = f"{threshold - 0.01:.2f}", f"{threshold:.2f}"
    rows = [cash_in("A", below, AS_OF - H), cash_in("B", at, AS_OF - H), cash_in("C", "9999.00", AS_OF - H)]
    make_store(tmp_path / "s", make_transactions(rows))
    config = FeatureConfig(threshold=Decimal(10_000), threshold_currency="CAD")
    result = build_account_features(Store(tmp_path / "s"), AS_OF, config)
    assert result.parameters["threshold"] == pytest.approx(threshold)
    assert [one(result.accounts, a, "count_cash_near_threshold_24h") for a in "ABC"] == [1, 0, 0]


def test_a_threshold_without_an_fx_rate_is_refused(tmp_path: Path) -> None:
    make_store(tmp_path / "s", make_transactions([cash_in("A", "9000.00", AS_OF - H)]))
    config = FeatureConfig(threshold_currency="XTS")
    message = r"the reporting threshold of 10000 XTS cannot be converted to USD: no FX rate .*; add one to the FX table"
    with pytest.raises(ConfigError, match=message):
        build_account_features(Store(tmp_path / "s"), AS_OF, config)


def test_the_features_carry_the_values_they_were_built_with(tmp_path: Path) -> None:
    make_store(tmp_path / "s", make_transactions([cash_in("A", "9000.00", AS_OF - H)]))
    result = build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig(threshold=12_000, near_share=0.7))
    assert result.parameters["threshold"] == 12_000.0
    assert result.parameters["near_share"] == 0.7
    assert result.parameters["as_of"] == AS_OF
    assert "files" not in result.parameters


def test_an_account_absent_from_a_family_has_zero_counts_and_null_ratios(tmp_path: Path) -> None:
    frame = features_of(tmp_path, [{"ts": AS_OF - H, "src": "A", "dst": "B", "amount": "50", "channel": "card"}])
    assert one(frame, "B", "count_cash_near_threshold_30d") == 0  # structuring never saw B
    assert one(frame, "B", "max_cash_near_threshold_day_total_30d") == 0
    assert one(frame, "B", "cycles_30d") == 0
    assert one(frame, "B", "share_cash_out_elsewhere_30d") is None  # undefined, not zero
    assert one(frame, "B", "min_cycle_hours_30d") is None


@pytest.mark.parametrize(
    ("age", "in_24h"),
    [
        pytest.param(dt.timedelta(0), 1, id="at as_of is inside"),
        pytest.param(D - S, 1, id="one second inside the 24 h window"),
        pytest.param(D, 0, id="exactly 24 h before as_of is outside"),
    ],
)
def test_window_edges_to_the_second(tmp_path: Path, age: dt.timedelta, in_24h: int) -> None:
    frame = features_of(tmp_path, [cash_in("A", "9500.00", AS_OF - age)])
    assert one(frame, "A", "count_cash_near_threshold_24h") == in_24h
    assert one(frame, "A", "count_cash_near_threshold_5d") == 1


def test_transactions_after_as_of_never_count(tmp_path: Path) -> None:
    frame = features_of(tmp_path, [cash_in("A", "9500.00", AS_OF - H), cash_in("A", "9500.00", AS_OF + S)])
    assert one(frame, "A", "count_cash_near_threshold_24h") == 1
    assert one(frame, "A", "count_in_30d") == 1


def test_structuring_across_branches_depositors_and_a_wire_out(tmp_path: Path) -> None:
    rows = [
        cash_in("A", "9100.00", AS_OF - 30 * H, branch="b1", city="Miami", counterparty_name="Ann Lee"),
        cash_in("A", "9150.00", AS_OF - 29 * H, branch="b2", city="Miami", counterparty_name="Bob Kim"),
        cash_in("A", "9900.00", AS_OF - 3 * D, branch="b3", city="Denver", counterparty_name="Cy Wu"),
        {"ts": AS_OF - 20 * H, "src": "A", "dst": "X", "amount": "27000.00", "channel": "wire"},
    ]
    frame = features_of(tmp_path, rows)
    assert one(frame, "A", "count_cash_near_threshold_5d") == 3
    assert one(frame, "A", "distinct_branches_near_threshold_30d") == 3
    assert one(frame, "A", "distinct_cities_near_threshold_30d") == 2
    assert one(frame, "A", "distinct_depositors_near_threshold_30d") == 3
    assert one(frame, "A", "repeated_near_amounts_30d") == 2  # 9,100 and 9,150 share the hundreds
    assert one(frame, "A", "max_cash_near_threshold_day_total_30d") == pytest.approx(18_250.0)
    assert one(frame, "A", "count_cash_in_then_wire_out_30d") == 3


# --- cycles: the window to the second, evidence kept -------------------------------------------------------------
def cycle_rows(
    close_after: dt.timedelta, amounts: tuple[str, str, str] = ("5000", "4900", "4800")
) -> list[dict[str, Any]]:
    start = AS_OF - 10 * D
    return [
        {"ts": start, "src": "A", "dst": "B", "amount": amounts[0], "txn_id": "c1"},
        {"ts": start + H, "src": "B", "dst": "C", "amount": amounts[1], "txn_id": "c2"},
        {"ts": start + close_after, "src": "C", "dst": "A", "amount": amounts[2], "txn_id": "c3"},
    ]


@pytest.mark.parametrize(
    ("close_after", "found"),
    [
        pytest.param(7 * D, True, id="cycle closing exactly at the 7-day window is kept"),
        pytest.param(7 * D + S, False, id="cycle closing one second outside its window is not"),
    ],
)
def test_cycle_window_to_the_second(tmp_path: Path, close_after: dt.timedelta, found: bool) -> None:
    make_store(tmp_path / "s", make_transactions(cycle_rows(close_after)))
    result = build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig())
    assert (result.cycles.height == 1) is found
    if found:
        cycle = result.cycles.row(0, named=True)
        assert cycle["accounts"] == ["A", "B", "C", "A"]
        assert cycle["txn_ids"] == ["c1", "c2", "c3"]
        assert one(result.accounts, "B", "cycles_30d") == 1
        assert one(result.accounts, "B", "max_cycle_length_30d") == 3


@pytest.mark.parametrize(
    ("amounts", "found"),
    [
        pytest.param(("5000", "4500", "4050"), True, id="each hop 10 % below the last is within tolerance"),
        pytest.param(("5000", "4499", "4050"), False, id="a hop 10.02 % below is outside tolerance"),
    ],
)
def test_cycle_amount_tolerance(tmp_path: Path, amounts: tuple[str, str, str], found: bool) -> None:
    make_store(tmp_path / "s", make_transactions(cycle_rows(2 * H, amounts)))
    assert (build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig()).cycles.height == 1) is found


def test_cycle_needs_increasing_timestamps(tmp_path: Path) -> None:
    rows = cycle_rows(2 * H)
    rows[1]["ts"] = rows[0]["ts"] - H  # B → C happened before A → B
    make_store(tmp_path / "s", make_transactions(rows))
    assert build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig()).cycles.height == 0


EDGE = st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 40))


def reference_cycles(edges: list[tuple[str, str, str, dt.datetime]], window: dt.timedelta) -> set[tuple[str, ...]]:
    """Temporal simple cycles by brute force over networkx's static cycles (equal amounts: tolerance holds)."""
    graph = nx.DiGraph([(s, d) for _, s, d, _ in edges])
    by_pair: dict[tuple[str, str], list[tuple[str, dt.datetime]]] = {}
    for txn, s, d, ts in edges:
        by_pair.setdefault((s, d), []).append((txn, ts))
    found: set[tuple[str, ...]] = set()
    for nodes in nx.simple_cycles(graph, length_bound=6):
        if len(nodes) < 2:
            continue
        for shift in range(len(nodes)):
            order = nodes[shift:] + nodes[:shift]
            hops = [(order[i], order[(i + 1) % len(order)]) for i in range(len(order))]
            for choice in itertools.product(*(by_pair[h] for h in hops)):
                times = [ts for _, ts in choice]
                if all(a < b for a, b in itertools.pairwise(times)) and times[-1] - times[0] <= window:
                    found.add(tuple(txn for txn, _ in choice))
    return found


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.lists(EDGE, min_size=2, max_size=12))
def test_cycles_match_a_networkx_reference(
    tmp_path_factory: pytest.TempPathFactory, raw: list[tuple[int, int, int]]
) -> None:
    start = AS_OF - 20 * D
    edges = [(f"e{i}", f"n{s}", f"n{d}", start + t * 6 * H + i * S)
             for i, (s, d, t) in enumerate(raw) if s != d]  # fmt: skip
    rows = [{"ts": ts, "src": s, "dst": d, "amount": "1000", "txn_id": txn} for txn, s, d, ts in edges]
    root = tmp_path_factory.mktemp("cycles")
    if not rows:
        return
    make_store(root / "s", make_transactions(rows))
    result = build_account_features(Store(root / "s"), AS_OF, FeatureConfig())
    ours = {tuple(ids) for ids in result.cycles["txn_ids"].to_list()}
    assert ours == reference_cycles(edges, FeatureConfig().cycle_window)


# --- differential: DuckDB against plain Polars -------------------------------------------------------------------
ROW = st.tuples(
    st.sampled_from(["A", "B", "C", "D", None]),
    st.sampled_from(["A", "B", "C", "D", None]),
    st.integers(1, 1_200_000),  # cents
    st.integers(0, 40 * 24),  # hours before as_of
    st.sampled_from(["cash", "wire", "p2p", "card"]),
)


def polars_reference(txns: pl.DataFrame) -> pl.DataFrame:
    legs = pl.concat([
        txns.filter(pl.col("src_account").is_not_null()).select(
            account_id="src_account", counterparty="dst_account", direction=pl.lit("out"), ts="ts",
            amount="amount_base", channel="channel"),
        txns.filter(pl.col("dst_account").is_not_null()).select(
            account_id="dst_account", counterparty="src_account", direction=pl.lit("in"), ts="ts",
            amount="amount_base", channel="channel"),
    ]).filter((pl.col("ts") <= AS_OF) & (pl.col("ts") > AS_OF - 30 * D))  # fmt: skip
    day = pl.col("ts") > AS_OF - D
    week = pl.col("ts") > AS_OF - 7 * D
    incoming, outgoing = pl.col("direction") == "in", pl.col("direction") == "out"
    transfer = pl.col("counterparty").is_not_null() & (pl.col("channel") != "card")
    near = incoming & (pl.col("channel") == "cash") & pl.col("counterparty").is_null() & (pl.col("amount") >= 8000) & (
        pl.col("amount") < 10000)  # fmt: skip
    return legs.group_by("account_id").agg(
        count_in_24h=(incoming & day).sum(),
        count_out_7d=(outgoing & week).sum(),
        sum_in_30d=pl.col("amount").filter(incoming).sum(),
        distinct_counterparties_30d=pl.col("counterparty").drop_nulls().n_unique(),
        distinct_senders_7d=pl.col("counterparty").filter(incoming & week & transfer).drop_nulls().n_unique(),
        distinct_receivers_30d=pl.col("counterparty").filter(outgoing & transfer).drop_nulls().n_unique(),
        count_cash_near_threshold_5d=(near & (pl.col("ts") > AS_OF - 5 * D)).sum(),
        count_cash_near_threshold_30d=near.sum(),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.lists(ROW, min_size=1, max_size=30))
def test_activity_fan_and_structuring_match_a_polars_reference(
    tmp_path_factory: pytest.TempPathFactory, raw: list[tuple[str | None, str | None, int, int, str]]
) -> None:
    # cash moves between an account and no one: a cash row keeps only one side
    rows = [{"ts": AS_OF - h * H, "src": s if c != "cash" or d is None else None, "dst": d,
             "amount": f"{cents / 100:.2f}", "channel": c}
            for s, d, cents, h, c in raw if (s or d) and s != d]  # fmt: skip
    rows = [r for r in rows if r["src"] or r["dst"]]
    if not rows:
        return
    root = tmp_path_factory.mktemp("diff")
    txns = make_transactions(rows)
    make_store(root / "s", txns)
    ours = build_account_features(Store(root / "s"), AS_OF, FeatureConfig()).accounts
    expected = polars_reference(txns).sort("account_id")
    columns = [c for c in expected.columns if c != "account_id"]
    got = expected.select("account_id").join(ours.select("account_id", *columns), on="account_id", how="left")
    for column in columns:
        left = got[column].fill_null(0).cast(pl.Float64).to_list()
        right = expected[column].fill_null(0).cast(pl.Float64).to_list()
        assert left == pytest.approx(right), column


# --- point in time and order ---------------------------------------------------------------------------------------
BASE_ROWS = [
    *cycle_rows(3 * H),
    cash_in("D", "9200.00", AS_OF - 3 * H, branch="b1"),
    {"ts": AS_OF - 5 * H, "src": "D", "dst": "E", "amount": "120.00", "channel": "p2p"},
    {"ts": AS_OF - 9 * D, "src": "E", "dst": "A", "amount": "40.00", "channel": "card", "mcc": "7011", "city": "Miami"},
]


def test_appending_later_transactions_never_changes_features_as_of_t(tmp_path: Path) -> None:
    before = features_of(tmp_path, BASE_ROWS, name="a")
    later = [{**r, "ts": AS_OF + D + i * H, "txn_id": f"late{i}"} for i, r in enumerate(BASE_ROWS)]
    after = features_of(tmp_path, BASE_ROWS + later, name="b")
    assert before.equals(after)


def test_row_order_never_changes_output(tmp_path: Path) -> None:
    forward = features_of(tmp_path, BASE_ROWS, name="a")
    backward = features_of(tmp_path, list(reversed(BASE_ROWS)), name="b")
    assert forward.equals(backward)


def test_audits_fail_the_build_with_the_violating_rows(tmp_path: Path) -> None:
    txns = make_transactions([cash_in("A", "100.00", AS_OF - H)]).with_columns(amount_base=pl.lit(-1.0))
    make_store(tmp_path / "s", txns)
    with pytest.raises(AuditFailed, match=r"audit staging_amounts failed: 1 violating row\(s\)"):
        build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig())


# --- the transaction level: each side's history up to the transaction, no look-ahead ----------------------------
def test_transaction_features_count_each_sides_trailing_window(tmp_path: Path) -> None:
    from finwatch.features import build_transaction_features

    t0 = AS_OF - 3 * D
    rows = [
        {"ts": t0, "src": "A", "dst": "B", "amount": "100", "txn_id": "x1"},
        {"ts": t0 + D - S, "src": "A", "dst": "C", "amount": "100", "txn_id": "x2"},  # inside A's 24 h
        {"ts": t0 + D, "src": "A", "dst": "B", "amount": "100", "txn_id": "x3"},  # x1 is exactly 24 h before
    ]
    make_store(tmp_path / "s", make_transactions(rows))
    frame = build_transaction_features(Store(tmp_path / "s"), AS_OF, FeatureConfig()).transactions
    by_id = {r["txn_id"]: r for r in frame.iter_rows(named=True)}
    assert [by_id[i]["src_count_out_24h"] for i in ("x1", "x2", "x3")] == [1, 2, 2]
    assert [by_id[i]["src_distinct_receivers_7d"] for i in ("x1", "x2", "x3")] == [1, 2, 2]
    assert by_id["x3"]["dst_count_in_24h"] == 1


def test_only_the_closing_transaction_of_a_cycle_is_marked(tmp_path: Path) -> None:
    from finwatch.features import build_transaction_features

    make_store(tmp_path / "s", make_transactions(cycle_rows(2 * H)))
    frame = build_transaction_features(Store(tmp_path / "s"), AS_OF, FeatureConfig()).transactions.sort("txn_id")
    assert frame["closes_cycle"].to_list() == [False, False, True]
    assert frame["cycle_length"].to_list() == [0, 0, 3]
    assert frame["src_forwards_recent_inflow"].to_list() == [False, True, True]


def test_transaction_features_never_look_ahead(tmp_path: Path) -> None:
    from finwatch.features import build_transaction_features

    early = BASE_ROWS
    later = [{**r, "ts": r["ts"] + 2 * D, "txn_id": f"late{i}"} for i, r in enumerate(BASE_ROWS)]
    make_store(tmp_path / "a", make_transactions(early))
    make_store(tmp_path / "b", make_transactions(early + later))
    moment = AS_OF + 3 * D
    a = build_transaction_features(Store(tmp_path / "a"), moment, FeatureConfig()).transactions
    b = build_transaction_features(Store(tmp_path / "b"), moment, FeatureConfig()).transactions
    assert a.equals(b.filter(pl.col("txn_id").is_in(a["txn_id"].to_list())).sort(["ts", "txn_id"]))


@pytest.mark.parametrize(
    ("column", "age", "counted"),
    [
        pytest.param("count_in_7d", 7 * D - S, 1, id="one second inside the 7-day window"),
        pytest.param("count_in_7d", 7 * D, 0, id="exactly 7 days before as_of is outside"),
        pytest.param("count_in_30d", 30 * D - S, 1, id="one second inside the 30-day window"),
        pytest.param("count_in_30d", 30 * D, 0, id="exactly 30 days before as_of is outside"),
        pytest.param("count_cash_near_threshold_5d", 5 * D - S, 1, id="one second inside the 5-day window"),
        pytest.param("count_cash_near_threshold_5d", 5 * D, 0, id="exactly 5 days before as_of is outside"),
        pytest.param("distinct_senders_7d", 7 * D - S, 1, id="a sender one second inside the 7-day window"),
        pytest.param("distinct_senders_7d", 7 * D, 0, id="a sender exactly 7 days back is outside"),
    ],
)
def test_every_window_edge_to_the_second(tmp_path: Path, column: str, age: dt.timedelta, counted: int) -> None:
    rows = [
        cash_in("A", "9000.00", AS_OF - age),
        {"ts": AS_OF - age, "src": "Z", "dst": "A", "amount": "50"},
        {"ts": AS_OF - H, "src": "A", "dst": "Y", "amount": "1"},
    ]  # keeps A active in the lookback
    frame = features_of(tmp_path, rows)
    expected = counted * (2 if column.startswith("count_in") else 1)
    assert one(frame, "A", column) == expected


@pytest.mark.parametrize(
    ("delay", "share"),
    [
        pytest.param(24 * H, 1.0, id="re-sent exactly 24 h after the inflow counts"),
        pytest.param(24 * H + S, 0.0, id="re-sent one second after 24 h does not"),
    ],
)
def test_pass_through_resend_window(tmp_path: Path, delay: dt.timedelta, share: float) -> None:
    t0 = AS_OF - 3 * D
    rows = [{"ts": t0, "src": "X", "dst": "A", "amount": "20000"},
            {"ts": t0 + delay, "src": "A", "dst": "Y", "amount": "19800"}]  # fmt: skip
    frame = features_of(tmp_path, rows)
    assert one(frame, "A", "share_out_within_24h_of_in_30d") == pytest.approx(share)
    assert one(frame, "A", "retained_share_30d") == pytest.approx(0.01)


def test_feature_sets_name_columns_the_build_produces(tmp_path: Path) -> None:
    from finwatch.features import build_transaction_features, load_feature_set

    make_store(tmp_path / "s", make_transactions(BASE_ROWS))
    accounts = build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig()).accounts
    transactions = build_transaction_features(Store(tmp_path / "s"), AS_OF, FeatureConfig()).transactions
    assert transactions is not None
    account_set, transaction_set = load_feature_set("account_v1"), load_feature_set("transaction_v1")
    assert account_set.select(accounts).width == len(account_set.features) == accounts.width - 2
    assert transaction_set.select(transactions).width == len(transaction_set.features)


def test_the_evidence_of_a_cycle_is_the_whole_loop_and_the_largest_transfers_their_own(tmp_path: Path) -> None:
    rows = [*cycle_rows(2 * H), {"txn_id": "g1", "ts": AS_OF - 3 * H, "src": "A", "dst": "SHOP", "amount": "40",
                                  "channel": "card"}]  # fmt: skip
    make_store(tmp_path / "s", make_transactions(rows))
    result = build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig())
    evidence = result.evidence.filter(pl.col("account_id") == "A")
    by_family = {f: set(g["txn_id"].to_list()) for (f,), g in evidence.group_by("family")}
    assert by_family["cycles"] == {"c1", "c2", "c3"}  # every transfer of the loop, not only the one A sent
    assert by_family["largest_transfers"] == {"c1", "c3"}  # the largest sent and received; the card payment is not
    assert result.column_evidence["max_transfer_out_30d"] == ("largest_transfers",)
    assert result.column_evidence["cycles_30d"] == ("cycles",)
