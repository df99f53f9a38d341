"""One test per typology: every injected instance has the typology's defining shape."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from decimal import Decimal

import polars as pl
import pytest

from finwatch.synth import World
from tests.conftest import instance_transactions

THRESHOLD = Decimal(10_000)


@pytest.fixture(scope="module")
def by_typology(default_world: World) -> dict[str, list[pl.DataFrame]]:
    labelled = instance_transactions(default_world)
    out: dict[str, list[pl.DataFrame]] = {}
    for (typology, _inst), frame in labelled.group_by(["typology", "instance_id"], maintain_order=True):
        out.setdefault(str(typology), []).append(frame.sort(["ts", "txn_id"]))
    return out


def _params(world: World, frame: pl.DataFrame) -> dict[str, object]:
    row = world.instances.filter(pl.col("instance_id") == frame["instance_id"][0])
    return json.loads(row["params"][0])


def _fiat(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("chain").is_null())


def test_fan_in_many_sources_one_collector(by_typology: dict[str, list[pl.DataFrame]], default_world: World) -> None:
    for frame in by_typology["fan_in"]:
        assert frame["dst_account"].n_unique() == 1
        assert frame["src_account"].n_unique() == _params(default_world, frame)["degree"] >= 5


def test_fan_out_one_source_many_receivers(by_typology: dict[str, list[pl.DataFrame]], default_world: World) -> None:
    for frame in by_typology["fan_out"]:
        assert frame["src_account"].n_unique() == 1
        assert frame["dst_account"].n_unique() == _params(default_world, frame)["degree"] >= 5


def _first_in(frame: pl.DataFrame, account: str) -> dt.datetime:
    return frame.filter(pl.col("dst_account") == account)["ts"].min()  # type: ignore[return-value]


def test_scatter_gather_every_intermediate_forwards_after_receiving(
    by_typology: dict[str, list[pl.DataFrame]], default_world: World
) -> None:
    for frame in by_typology["scatter_gather"]:
        origin = frame["src_account"][0]
        mids = frame.filter(pl.col("src_account") == origin)["dst_account"].unique()
        back = frame.filter(pl.col("src_account").is_in(mids.to_list()))
        assert back["dst_account"].n_unique() == 1
        assert back["dst_account"][0] != origin
        assert mids.len() == _params(default_world, frame)["intermediates"] >= 3
        for row in back.iter_rows(named=True):
            assert row["ts"] > _first_in(frame, row["src_account"])


def test_gather_scatter_hub_pays_out_after_it_has_gathered(
    by_typology: dict[str, list[pl.DataFrame]],
) -> None:
    for frame in by_typology["gather_scatter"]:
        hub = frame["dst_account"].mode()[0]
        inflow = frame.filter(pl.col("dst_account") == hub)
        outflow = frame.filter(pl.col("src_account") == hub)
        assert inflow.height >= 3
        assert outflow.height >= 3
        assert outflow["ts"].min() > inflow["ts"].max()
        assert outflow["amount"].sum() < inflow["amount"].sum()


def test_cycle_returns_to_its_origin_in_time_order(
    by_typology: dict[str, list[pl.DataFrame]], default_world: World
) -> None:
    for frame in by_typology["cycle"]:
        params = _params(default_world, frame)
        src, dst, ts = frame["src_account"].to_list(), frame["dst_account"].to_list(), frame["ts"].to_list()
        assert len(src) == params["length"]
        assert 2 <= len(src) <= 6
        assert all(dst[i] == src[i + 1] for i in range(len(src) - 1))  # a path ...
        assert dst[-1] == src[0]  # ... that closes on its origin
        assert len(set(src)) == len(src)  # a simple cycle
        assert all(a < b for a, b in itertools.pairwise(ts))  # strictly increasing timestamps
        assert (ts[-1] - ts[0]).total_seconds() == params["window_seconds"] <= 7 * 86_400
        amounts = frame["amount_base"].to_list()
        assert all(0.95 * a <= b <= a for a, b in itertools.pairwise(amounts))  # small decay


def test_bipartite_edges_go_from_senders_to_receivers(by_typology: dict[str, list[pl.DataFrame]]) -> None:
    for frame in by_typology["bipartite"]:
        senders, receivers = set(frame["src_account"]), set(frame["dst_account"])
        assert not senders & receivers
        assert len(senders) >= 2
        assert len(receivers) >= 2


def test_stack_forwards_layer_by_layer(by_typology: dict[str, list[pl.DataFrame]]) -> None:
    for frame in by_typology["stack"]:
        senders, receivers = set(frame["src_account"]), set(frame["dst_account"])
        top, middle, bottom = senders - receivers, senders & receivers, receivers - senders
        assert top
        assert middle
        assert bottom
        for row in frame.filter(pl.col("src_account").is_in(list(middle))).iter_rows(named=True):
            assert row["ts"] > _first_in(frame, row["src_account"])


def test_random_walk_is_a_time_ordered_chain(by_typology: dict[str, list[pl.DataFrame]]) -> None:
    for frame in by_typology["random"]:
        src, dst = frame["src_account"].to_list(), frame["dst_account"].to_list()
        assert len(src) >= 4
        assert all(dst[i] == src[i + 1] for i in range(len(src) - 1))
        assert frame["ts"].is_sorted()
        assert frame["ts"].n_unique() == frame.height


def test_structuring_every_deposit_is_below_the_threshold(by_typology: dict[str, list[pl.DataFrame]]) -> None:
    for frame in by_typology["structuring"]:
        deposits = frame.filter((pl.col("channel") == "cash") & pl.col("src_account").is_null())
        assert deposits.height >= 3
        assert deposits["dst_account"].n_unique() == 1
        assert all(a < THRESHOLD for a in deposits["amount"].to_list())
        assert all(a >= Decimal("0.6") * THRESHOLD for a in deposits["amount"].to_list())
        assert sum(deposits["amount"].to_list()) > THRESHOLD  # together they would have been reported
        assert deposits["branch"].n_unique() >= 2  # across branches


def test_smurfing_many_depositors_below_the_threshold_into_one_account(
    by_typology: dict[str, list[pl.DataFrame]],
) -> None:
    for frame in by_typology["smurfing"]:
        deposits = frame.filter(pl.col("channel") == "cash")
        assert deposits["dst_account"].n_unique() == 1
        assert deposits["counterparty_name"].n_unique() >= 4  # distinct depositors
        assert deposits["branch"].n_unique() >= 2
        assert all(a < THRESHOLD for a in deposits["amount"].to_list())
        assert sum(deposits["amount"].to_list()) > THRESHOLD


def test_funnel_account_cash_in_one_city_out_in_another(by_typology: dict[str, list[pl.DataFrame]]) -> None:
    for frame in by_typology["funnel_account"]:
        cash_in = frame.filter(pl.col("src_account").is_null())
        cash_out = frame.filter(pl.col("dst_account").is_null())
        assert cash_in.height >= 4
        assert cash_out.height >= 2
        assert not set(cash_in["city"]) & set(cash_out["city"])
        assert cash_out["ts"].min() > cash_in["ts"].max()


def test_pass_through_keeps_less_than_the_configured_share(
    by_typology: dict[str, list[pl.DataFrame]], default_world: World
) -> None:
    limit = default_world.config.pass_through_retained_max
    for frame in by_typology["pass_through"]:
        account = frame["dst_account"].mode()[0]
        inflow = frame.filter(pl.col("dst_account") == account)
        outflow = frame.filter(pl.col("src_account") == account)
        retained = 1 - outflow["amount_base"].sum() / inflow["amount_base"].sum()
        assert 0 < retained < limit
        for row in outflow.iter_rows(named=True):  # out within hours of the money coming in
            last_in = inflow.filter(pl.col("ts") <= row["ts"])["ts"].max()
            assert last_in is not None
            assert (row["ts"] - last_in) <= dt.timedelta(hours=24)


def test_shell_circulation_round_trips_through_two_to_six_shells(
    by_typology: dict[str, list[pl.DataFrame]], default_world: World
) -> None:
    shells = set(default_world.accounts.filter(pl.col("mcc") == "6799")["account_id"])
    for frame in by_typology["shell_circulation"]:
        src, dst = frame["src_account"].to_list(), frame["dst_account"].to_list()
        assert dst[-1] == src[0]
        assert all(dst[i] == src[i + 1] for i in range(len(src) - 1))
        middle = src[1:]
        assert 2 <= len(middle) <= 6
        assert set(middle) <= shells
        assert src[0] not in shells
        amounts = frame["amount_base"].to_list()
        assert all(0.97 * a <= b <= 0.995 * a + 0.01 for a, b in itertools.pairwise(amounts))
        assert frame["ts"].is_sorted()


def test_sex_trafficking_ads_lodging_night_p2p_and_crypto_cash_out(
    by_typology: dict[str, list[pl.DataFrame]], default_world: World
) -> None:
    exchanges = set(default_world.accounts.filter(pl.col("mcc") == "6051")["account_id"])
    for frame in by_typology["sex_trafficking"]:
        victim = frame.filter(pl.col("mcc") == "7311")["src_account"].unique()
        assert victim.len() == 1
        v = victim[0]
        assert frame.filter(pl.col("mcc") == "7311").height >= 3
        lodging = frame.filter(pl.col("mcc") == "7011")
        assert lodging["city"].n_unique() >= 2
        assert lodging["ts"].max() - lodging["ts"].min() <= dt.timedelta(days=7)
        p2p = frame.filter((pl.col("channel") == "p2p") & (pl.col("dst_account") == v))
        assert p2p["src_account"].n_unique() >= 10
        assert p2p["amount_base"].max() <= 400
        night = frame.filter(pl.col("ts").dt.hour() < 5)
        assert night.height >= 1
        cash_out = frame.filter(pl.col("dst_account").is_in(list(exchanges)))
        assert cash_out.height == 1
        delay = cash_out["ts"][0] - p2p["ts"].max()
        assert dt.timedelta(0) < delay <= dt.timedelta(hours=8)


def test_labor_trafficking_business_pays_lodging_and_travel_without_payroll(
    by_typology: dict[str, list[pl.DataFrame]], default_world: World
) -> None:
    payroll_payers = set(default_world.transactions.filter(pl.col("description") == "PAYROLL")["src_account"])
    for frame in by_typology["labor_trafficking"]:
        business = frame.filter(pl.col("mcc") == "7011")["src_account"].unique()
        assert business.len() == 1
        assert business[0] not in payroll_payers
        assert frame.filter(pl.col("mcc") == "7011").height >= 6
        assert frame.filter(pl.col("mcc").is_in(["4131", "4511"])).height >= 6


def test_crypto_layering_peels_through_fresh_addresses_to_an_exchange(
    by_typology: dict[str, list[pl.DataFrame]], default_world: World
) -> None:
    deposit_addresses = set(
        default_world.accounts.filter(pl.col("kind") == "exchange_account")["links"].list.get(1).to_list()
    )
    all_txns = default_world.transactions
    for frame in by_typology["crypto_layering"]:
        chain = frame.filter(pl.col("chain") == "ethereum").sort(["ts", "amount"], descending=[False, True])
        hops = _params(default_world, frame)["hops"]
        hot_wallet_leg, *layering = chain.iter_rows(named=True)
        address = hot_wallet_leg["dst_account"]
        for _ in range(int(hops)):  # each hop: most of the balance to a fresh address, a small peel elsewhere
            out = [r for r in layering if r["src_account"] == address]
            assert len(out) == 2
            big, peel = sorted(out, key=lambda r: r["amount"], reverse=True)
            assert peel["amount"] <= Decimal("0.12") * (big["amount"] + peel["amount"])
            nxt = big["dst_account"]
            first_seen = all_txns.filter((pl.col("src_account") == nxt) | (pl.col("dst_account") == nxt))["ts"].min()
            assert first_seen == big["ts"]  # fresh: no history before the chain reaches it
            address = nxt
        final = [r for r in layering if r["src_account"] == address]
        assert len(final) == 1
        assert final[0]["dst_account"] in deposit_addresses
        assert _fiat(frame).filter(pl.col("description") == "CRYPTO SALE PROCEEDS").height == 1


def test_custom_threshold_moves_structuring_below_it() -> None:
    from finwatch.synth import WorldConfig, generate_world

    world = generate_world(
        WorldConfig(
            seed=4,
            accounts=2_000,
            reporting_threshold=Decimal(5_000),
            typology_mix={"structuring": 1, "smurfing": 1},
        )
    )
    frames = instance_transactions(world).filter(pl.col("channel") == "cash")
    assert frames.height > 50
    assert frames["amount"].max() < Decimal(5_000)
