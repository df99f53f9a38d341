"""Injected patterns (labelled suspicious) and innocent look-alikes (labelled not suspicious).

Each typology function recruits accounts, writes its transactions to the ledger tagged with the instance id, and
returns the instance's participants with their roles. Recruits come from existing accounts (which keep their
normal behaviour: camouflage) or from new mule accounts, in a proportion set by ``difficulty``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from finwatch.synth import _vocab as vocab
from finwatch.synth._context import DAY, HOUR, Context, IntArray
from finwatch.synth._ledger import CHANNEL
from finwatch.synth._normal import CATEGORY_INDEX, block_time, card_payments, crypto_buy, crypto_sell
from finwatch.synth.config import LOOKALIKES, TYPOLOGIES

MINUTE = 60


@dataclass
class Instance:
    id: int
    typology: str
    start: int = 0  # unix seconds of the first transaction
    end: int = 0  # unix seconds of the last transaction
    roles: dict[int, str] = field(default_factory=dict)  # account index -> role (labelled positive)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.typology}-{self.id:05d}"


class Recruiter:
    """Hands out accounts for patterns, never the same one twice while unused ones remain."""

    def __init__(self, ctx: Context, rng: np.random.Generator) -> None:
        self.ctx, self.rng = ctx, rng
        g = ctx.pop.groups
        no_payroll = g["regular_businesses"][~ctx.pop.has_payroll[g["regular_businesses"]]]
        self._pools: dict[str, IntArray] = {
            "existing_person": rng.permutation(g["ordinary_persons"]),
            "mule": rng.permutation(g["mules"]),
            "business": rng.permutation(g["regular_businesses"]),
            "shell": rng.permutation(g["shells"]),
            "crypto_user": rng.permutation(g["crypto_users"]),
            "fresh_address": g["fresh_addresses"].copy(),
            "no_payroll_business": rng.permutation(no_payroll),
            "foreign": rng.permutation(g["foreign"]),
        }
        self._cursor = dict.fromkeys(self._pools, 0)
        self.existing_share = 0.2 + 0.6 * ctx.pop.config.difficulty

    def take(self, pool: str, k: int) -> IntArray:
        members, start = self._pools[pool], self._cursor[pool]
        if pool == "fresh_address" and start + k > len(members):
            raise RuntimeError("fresh address reserve exhausted")  # sized generously in the population
        idx = (start + np.arange(k)) % len(members)
        self._cursor[pool] = start + k
        return members[idx]

    def people(self, k: int) -> IntArray:
        """``k`` distinct persons: existing customers or freshly opened mule accounts."""
        existing = self.rng.random(k) < self.existing_share
        out = np.empty(k, np.int64)
        out[existing] = self.take("existing_person", int(existing.sum()))
        out[~existing] = self.take("mule", int((~existing).sum()))
        return out

    def parties(self, k: int) -> IntArray:
        """Persons or, one time in five, businesses (AMLworld patterns mix both)."""
        out = self.people(k)
        biz = self.rng.random(k) < 0.2
        out[biz] = self.take("business", int(biz.sum()))
        return out


class Injector:
    def __init__(self, ctx: Context, rng: np.random.Generator) -> None:
        self.ctx, self.rng = ctx, rng
        self.recruit = Recruiter(ctx, rng)
        self.cfg = ctx.pop.config
        self.threshold = float(self.cfg.reporting_threshold)
        self.instances: list[Instance] = []
        self.hard = self.cfg.difficulty
        self.room = self.ctx.days - 2  # longest span, in days, a pattern may take

    # --- helpers ----------------------------------------------------------------------------------------
    def _start(self, span_days: float) -> int:
        """A start time that leaves ``span_days`` before the end of the period."""
        latest = max(1, int((self.ctx.days - span_days) * DAY) - 1)
        return self.ctx.epoch + int(self.rng.integers(0, latest))

    def _units(self, amount_base: np.ndarray | float) -> np.ndarray:
        return np.maximum(np.round(np.asarray(amount_base, np.float64) * 100), 1).astype(np.int64)

    def _send(
        self,
        inst: Instance,
        ts: Any,
        src: Any,
        dst: Any,
        amount_base: Any,
        chan: Any = "ach",
        desc: str = "TRANSFER",
        **extra: Any,
    ) -> None:
        ctx = self.ctx
        ts = np.atleast_1d(np.asarray(ts, np.int64))  # patterns are sized to fit: no clipping (checked later)
        src_arr = np.broadcast_to(np.asarray(src, np.int64), ts.shape)
        # money leaves in the sender's currency; base-currency amounts stay exact to the cent
        cur = np.where(src_arr >= 0, ctx.pop.currency[np.maximum(src_arr, 0)], ctx.base)
        base_units = np.broadcast_to(self._units(amount_base), ts.shape)
        converted = ctx.usd_to_units(ctx.base_to_usd(base_units / 100, ts), cur, ts)
        ctx.ledger.add(
            ts=ts,
            src=src,
            dst=dst,
            units=np.where(cur == ctx.base, base_units, converted),
            cur=cur,
            chan=chan,
            desc=desc,
            inst=inst.id,
            **extra,
        )

    def _transfer_channel(self, n: int) -> np.ndarray:
        codes = np.array([CHANNEL["wire"], CHANNEL["ach"], CHANNEL["ach"], CHANNEL["p2p"]])
        return self.rng.choice(codes, size=n)

    def _mark(self, inst: Instance, accounts: Any, role: str) -> None:
        for a in np.atleast_1d(np.asarray(accounts)).tolist():
            inst.roles.setdefault(int(a), role)

    def _amounts(self, n: int, low: float = 1_500, high: float = 9_500) -> np.ndarray:
        """Laundering-size amounts; easier worlds use rounder numbers."""
        amounts = self.rng.uniform(low, high, size=n)
        if self.rng.random() > self.hard:
            amounts = np.round(amounts, -2)
        return np.round(amounts, 2)

    # --- the AMLSim / AMLworld eight -----------------------------------------------------------------------
    def fan_in(self, inst: Instance) -> None:
        k = int(self.rng.integers(5, 11))
        span = 1 + 9 * self.hard * self.rng.random()
        sources, target = self.recruit.parties(k), self.recruit.parties(1)[0]
        t0 = self._start(span)
        ts = np.sort(t0 + self.rng.integers(0, int(span * DAY), size=k))
        self._send(inst, ts, sources, target, self._amounts(k), self._transfer_channel(k))
        self._mark(inst, target, "collector")
        self._mark(inst, sources, "source")
        inst.params = {"degree": k}

    def fan_out(self, inst: Instance) -> None:
        k = int(self.rng.integers(5, 11))
        span = 1 + 9 * self.hard * self.rng.random()
        source, targets = self.recruit.parties(1)[0], self.recruit.parties(k)
        ts = np.sort(self._start(span) + self.rng.integers(0, int(span * DAY), size=k))
        self._send(inst, ts, source, targets, self._amounts(k), self._transfer_channel(k))
        self._mark(inst, source, "distributor")
        self._mark(inst, targets, "receiver")
        inst.params = {"degree": k}

    def scatter_gather(self, inst: Instance) -> None:
        k = int(self.rng.integers(3, 8))
        accounts = self.recruit.parties(k + 2)
        a, mids, c = accounts[0], accounts[1:-1], accounts[-1]
        t0 = self._start(6)
        out_ts = t0 + np.sort(self.rng.integers(0, 2 * DAY, size=k))
        amount = self._amounts(k, 2_000, 9_000)
        back_ts = out_ts + self.rng.integers(HOUR, 48 * HOUR, size=k)
        self._send(inst, out_ts, a, mids, amount, self._transfer_channel(k))
        self._send(
            inst,
            back_ts,
            mids,
            c,
            np.round(amount * self.rng.uniform(0.9, 0.99, k), 2),
            self._transfer_channel(k),
        )
        self._mark(inst, a, "origin")
        self._mark(inst, mids, "intermediate")
        self._mark(inst, c, "beneficiary")
        inst.params = {"intermediates": k}

    def gather_scatter(self, inst: Instance) -> None:
        k_in, k_out = int(self.rng.integers(3, 7)), int(self.rng.integers(3, 7))
        sources, hub, sinks = (
            self.recruit.parties(k_in),
            self.recruit.parties(1)[0],
            self.recruit.parties(k_out),
        )
        t0 = self._start(7)
        in_ts = np.sort(t0 + self.rng.integers(0, 3 * DAY, size=k_in))
        amount_in = self._amounts(k_in)
        self._send(inst, in_ts, sources, hub, amount_in, self._transfer_channel(k_in))
        share = self.rng.dirichlet(np.ones(k_out)) * amount_in.sum() * self.rng.uniform(0.9, 0.98)
        out_ts = np.sort(in_ts.max() + self.rng.integers(HOUR, 3 * DAY, size=k_out))
        self._send(inst, out_ts, hub, sinks, np.round(share, 2), self._transfer_channel(k_out))
        self._mark(inst, hub, "hub")
        self._mark(inst, sources, "source")
        self._mark(inst, sinks, "receiver")
        inst.params = {"in_degree": k_in, "out_degree": k_out}

    def _path(
        self,
        inst: Instance,
        accounts: np.ndarray,
        t0: int,
        max_gap: int,
        amount: float,
        decay: tuple[float, float],
        chan: Any = None,
        desc: str = "TRANSFER",
    ) -> np.ndarray:
        """Hops accounts[i] -> accounts[i+1] at strictly increasing times with small amount decay."""
        hops = len(accounts) - 1
        gaps = self.rng.integers(10 * MINUTE, max(11 * MINUTE, max_gap), size=hops)
        ts = t0 + np.cumsum(gaps) - gaps[0]
        amounts = np.round(amount * np.cumprod(self.rng.uniform(1 - decay[1], 1 - decay[0], size=hops)), 2)
        self._send(
            inst,
            ts,
            accounts[:-1],
            accounts[1:],
            amounts,
            self._transfer_channel(hops) if chan is None else chan,
            desc,
        )
        return ts

    def cycle(self, inst: Instance) -> None:
        length = int(self.rng.integers(2, 7))  # accounts on the cycle = hops
        members = self.recruit.parties(length)
        max_gap = min(int((6 + 30 * self.hard) * HOUR), self.room * DAY // (length + 1))
        t0 = self._start(length * max_gap / DAY + 1)
        ts = self._path(
            inst,
            np.append(members, members[0]),
            t0,
            max_gap,
            float(self._amounts(1, 3_000, 40_000)[0]),
            (0.0, 0.02 + 0.03 * self.hard),
        )
        self._mark(inst, members, "cycle_member")
        inst.params = {"length": length, "window_seconds": int(ts[-1] - ts[0])}

    def bipartite(self, inst: Instance) -> None:
        kx, ky = int(self.rng.integers(2, 5)), int(self.rng.integers(2, 5))
        xs, ys = self.recruit.parties(kx), self.recruit.parties(ky)
        src, dst = np.repeat(xs, ky), np.tile(ys, kx)
        keep = self.rng.random(len(src)) < 0.85
        keep[:: max(1, ky)] = True  # every sender sends at least once
        src, dst = src[keep], dst[keep]
        ts = np.sort(self._start(5) + self.rng.integers(0, 4 * DAY, size=len(src)))
        self._send(inst, ts, src, dst, self._amounts(len(src)), self._transfer_channel(len(src)))
        self._mark(inst, xs, "sender")
        self._mark(inst, ys, "receiver")
        inst.params = {"senders": kx, "receivers": ky}

    def stack(self, inst: Instance) -> None:
        layers = [self.recruit.parties(int(self.rng.integers(2, 5))) for _ in range(3)]
        t = self._start(8)
        for depth, (upper, lower) in enumerate(itertools.pairwise(layers)):
            src, dst = np.repeat(upper, len(lower)), np.tile(lower, len(upper))
            ts = np.sort(t + self.rng.integers(0, 2 * DAY, size=len(src)))
            self._send(inst, ts, src, dst, self._amounts(len(src)), self._transfer_channel(len(src)))
            t = int(ts.max()) + int(self.rng.integers(HOUR, DAY))
            self._mark(inst, upper, f"layer_{depth}")
        self._mark(inst, layers[-1], f"layer_{len(layers) - 1}")
        inst.params = {"layers": [len(layer) for layer in layers]}

    def random(self, inst: Instance) -> None:
        hops = int(self.rng.integers(4, 9))
        members = self.recruit.parties(hops)
        walk = np.append(members, members[self.rng.integers(0, hops - 1)])  # ends at an earlier member
        max_gap = int(1.5 * DAY)
        self._path(
            inst,
            walk,
            self._start(hops * 1.5 + 1),
            max_gap,
            float(self._amounts(1, 2_000, 20_000)[0]),
            (0.0, 0.05),
        )
        self._mark(inst, members, "walk_member")
        inst.params = {"hops": hops}

    # --- cash ----------------------------------------------------------------------------------------------
    def _cash(
        self,
        inst: Instance,
        ts: Any,
        account: Any,
        amounts: Any,
        *,
        deposit: bool,
        desc: str,
        cities: Any = None,
        **extra: Any,
    ) -> None:
        """Cash in or out at branches of the account's bank (amounts in the base currency)."""
        ts = np.atleast_1d(np.asarray(ts, np.int64))
        self.ctx.cash(
            self.rng,
            ts=ts,
            account=account,
            units=np.broadcast_to(self._units(amounts), ts.shape),
            deposit=deposit,
            desc=desc,
            cities=cities,
            inst=inst.id,
            **extra,
        )

    def _below_threshold(self, n: int, low_share: float) -> np.ndarray:
        """Amounts in [low_share × threshold, threshold − 0.01], always strictly below the threshold."""
        cents = int(Decimal(str(self.threshold)) * 100)
        low = int(cents * low_share)
        return self.rng.integers(low, cents, size=n) / 100  # integers() excludes the upper bound

    def _bank_cities(self, account: int) -> np.ndarray:
        return np.array(self.ctx.pop.banks[self.ctx.pop.bank[account]].cities, np.int64)

    def _spread(self, cities: np.ndarray, n: int) -> np.ndarray:
        """``n`` cities drawn so that at least two differ whenever two are available."""
        order = np.resize(self.rng.permutation(cities), n)
        return self.rng.permutation(order)

    def structuring(self, inst: Instance) -> None:
        account = self.recruit.parties(1)[0]
        n = int(self.rng.integers(3, 10))
        span = 2 + 8 * self.hard
        ts = np.sort(self._start(span + 2) + self.rng.integers(0, int(span * DAY), size=n))
        ts = self.ctx.times(self.rng, n, "office", days=self.ctx.day_of(ts))  # banking hours on those days
        amounts = self._below_threshold(n, 0.9 - 0.3 * self.hard)
        cities = self._spread(self._bank_cities(account), n)
        self._cash(inst, np.sort(ts), account, amounts, deposit=True, desc="CASH DEPOSIT", cities=cities)
        self._mark(inst, account, "depositor_account")
        if self.rng.random() < 0.6:  # the cash leaves by wire soon after
            dst = self.recruit.take("foreign", 1)[0]
            self._send(
                inst,
                ts.max() + self.rng.integers(HOUR, 2 * DAY),
                account,
                dst,
                np.round(amounts.sum() * 0.9, 2),
                "wire",
                "WIRE TRANSFER",
            )
        inst.params = {"deposits": n}

    def smurfing(self, inst: Instance) -> None:
        collector = self.recruit.parties(1)[0]
        # distinct third parties (names) who bring the cash, each to a different counter
        names = len(vocab.FIRST_NAMES) * len(vocab.LAST_NAMES)
        depositors = self.rng.choice(names, size=int(self.rng.integers(4, 10)), replace=False)
        n = len(depositors) * int(self.rng.integers(1, 3))
        ts = self.ctx.times(
            self.rng,
            n,
            "office",
            days=self.ctx.day_of(np.full(n, self._start(6))) + self.rng.integers(0, 3, size=n),
        )
        party = depositors[np.arange(n) % len(depositors)]
        amounts = self._below_threshold(n, 0.3 + 0.4 * (1 - self.hard))
        cities = self._spread(self._bank_cities(collector), n)
        self._cash(inst, ts, collector, amounts, deposit=True, desc="CASH DEPOSIT", cities=cities, party=party)
        self._mark(inst, collector, "collector_account")
        dst = self.recruit.take("foreign", 1)[0]
        self._send(
            inst,
            ts.max() + self.rng.integers(2 * HOUR, 2 * DAY),
            collector,
            dst,
            np.round(amounts.sum() * 0.92, 2),
            "wire",
            "WIRE TRANSFER",
        )
        inst.params = {"depositors": len(depositors), "deposits": n}

    def funnel_account(self, inst: Instance) -> None:
        account = self.recruit.people(1)[0]
        bank_cities = self._bank_cities(account)
        out_city = int(self.rng.choice(bank_cities))
        in_cities = bank_cities[bank_cities != out_city]
        n = int(self.rng.integers(4, 11))
        t0 = self._start(10)
        ts = np.sort(
            self.ctx.times(self.rng, n, "day", days=self.ctx.day_of(np.full(n, t0)) + self.rng.integers(0, 7, size=n))
        )
        amounts = np.round(self.rng.uniform(800, 4_500, size=n), 2)
        self._cash(inst, ts, account, amounts, deposit=True, desc="CASH DEPOSIT", cities=self._spread(in_cities, n))
        total, k = amounts.sum() * self.rng.uniform(0.85, 0.97), int(self.rng.integers(2, 5))
        out_ts = np.sort(ts.max() + self.rng.integers(HOUR, 2 * DAY, size=k))
        self._cash(
            inst,
            out_ts,
            account,
            np.round(self.rng.dirichlet(np.ones(k)) * total, 2),
            deposit=False,
            desc="CASH WITHDRAWAL",
            cities=np.full(k, out_city),
        )
        self._mark(inst, account, "funnel_account")
        inst.params = {"deposit_cities": sorted({int(c) for c in in_cities}), "withdrawal_city": out_city}

    # --- flows through ------------------------------------------------------------------------------------
    def pass_through(self, inst: Instance) -> None:
        account = self.recruit.parties(1)[0]
        rounds = int(self.rng.integers(2, 6))
        retained = self.rng.uniform(0.002, self.cfg.pass_through_retained_max * 0.8)
        t = self._start(min(12, self.room))
        total_in = total_out = 0.0
        for _ in range(rounds):
            senders = self.recruit.take("foreign", int(self.rng.integers(1, 4)))
            amount_in = self._amounts(len(senders), 5_000, 45_000)
            in_ts = t + np.sort(self.rng.integers(0, 6 * HOUR, size=len(senders)))
            self._send(inst, in_ts, senders, account, amount_in, "wire", "WIRE TRANSFER")
            receivers = self.recruit.parties(int(self.rng.integers(1, 4)))
            out_total = float(np.round(amount_in.sum() * (1 - retained), 2))
            parts = np.round(self.rng.dirichlet(np.ones(len(receivers))) * out_total, 2)
            out_ts = in_ts.max() + np.sort(self.rng.integers(20 * MINUTE, 20 * HOUR, size=len(receivers)))
            self._send(inst, out_ts, account, receivers, parts, "wire", "WIRE TRANSFER")
            total_in += float(amount_in.sum())
            total_out += float(parts.sum())
            t = int(out_ts.max()) + int(self.rng.integers(DAY // 2, 2 * DAY))
        self._mark(inst, account, "pass_through_account")
        inst.params = {"rounds": rounds, "retained_share": round(1 - total_out / total_in, 6)}

    def shell_circulation(self, inst: Instance) -> None:
        origin = self.recruit.take("business", 1)[0]
        shells = self.recruit.take("shell", int(self.rng.integers(2, 7)))
        loop = np.concatenate([[origin], shells, [origin]])
        max_gap = min(int((12 + 48 * self.hard) * HOUR), self.room * DAY // len(loop))
        ts = self._path(
            inst,
            loop,
            self._start(len(loop) * max_gap / DAY + 1),
            max_gap,
            float(self._amounts(1, 20_000, 250_000)[0]),
            (0.005, 0.03),
            chan=CHANNEL["wire"],
            desc="CONSULTING FEES",
        )
        self._mark(inst, origin, "origin_company")
        self._mark(inst, shells, "shell_company")
        inst.params = {"companies": len(shells), "window_seconds": int(ts[-1] - ts[0])}

    # --- human trafficking --------------------------------------------------------------------------------
    def sex_trafficking(self, inst: Instance) -> None:
        ctx, rng = self.ctx, self.rng
        victim = self.recruit.take("crypto_user", 1)[0]
        span = min(int(rng.integers(8, 16)), self.room)
        day0 = int(ctx.day_of(np.array([self._start(span + 1)]))[0])

        def days(n: int) -> IntArray:
            return day0 + rng.integers(0, span, size=n)

        cat = CATEGORY_INDEX
        # online advertisements, bought late at night
        n_ads = int(rng.integers(3, 9))
        card_payments(
            ctx,
            rng,
            np.full(n_ads, victim),
            np.full(n_ads, cat["online_ads"]),
            ctx.times(rng, n_ads, "night", days=days(n_ads)),
            np.full(n_ads, ctx.pop.city[victim], np.int64),
            inst=inst.id,
        )
        # short lodging stays in several cities within a week
        cities = rng.choice(ctx.pop.groups["domestic_cities"], size=int(rng.integers(2, 5)), replace=False)
        stay_days = day0 + np.sort(rng.integers(0, min(7, span), size=len(cities) + 1))
        stay_city = np.append(cities, cities[0])
        card_payments(
            ctx,
            rng,
            np.full(len(stay_days), victim),
            np.full(len(stay_days), cat["lodging"]),
            ctx.times(rng, len(stay_days), "night", days=stay_days),
            stay_city,
            inst=inst.id,
            usd=ctx.base_to_usd(
                rng.uniform(70, 180, size=len(stay_days)) * rng.integers(1, 3, size=len(stay_days)),
                ctx.epoch + stay_days * DAY,
            ),
        )
        # many small P2P payments from distinct people, evenings and nights
        n_in = int(rng.integers(10, 30))
        buyers = ctx.pick(rng, ctx.pop.groups["ordinary_persons"], n_in)
        in_ts = ctx.times(rng, n_in, "night", days=days(n_in))
        in_amount = np.round(rng.uniform(60, 350, size=n_in), -1 if rng.random() > self.hard else 2)
        self._send(inst, in_ts, buyers, victim, in_amount, "p2p", "P2P TRANSFER")
        # prepaid cards and late-night cash
        n_pre = int(rng.integers(1, 4))
        card_payments(
            ctx,
            rng,
            np.full(n_pre, victim),
            np.full(n_pre, cat["prepaid_cards"]),
            ctx.times(rng, n_pre, "evening", days=days(n_pre)),
            np.full(n_pre, ctx.pop.city[victim], np.int64),
            inst=inst.id,
        )
        n_atm = int(rng.integers(2, 6))
        atm_ts = ctx.times(rng, n_atm, "night", days=days(n_atm))
        atm_city = rng.choice(stay_city, size=n_atm)
        self._cash(
            inst,
            atm_ts,
            victim,
            rng.choice([100, 200, 300, 400], size=n_atm).astype(float),
            deposit=False,
            desc="ATM WITHDRAWAL",
            cities=atm_city,
        )
        # rapid cash-out to a crypto exchange, hours after the inflows
        cash_out_ts = ctx.clip(np.array([in_ts.max() + int(rng.integers(HOUR, 8 * HOUR))]))
        crypto_buy(
            ctx,
            rng,
            np.array([victim]),
            cash_out_ts,
            ctx.base_to_usd(in_amount.sum() * rng.uniform(0.6, 0.9), cash_out_ts),
            inst=inst.id,
        )
        self._mark(inst, victim, "victim_account")
        inst.params = {"p2p_senders": len(np.unique(buyers)), "lodging_cities": len(cities)}

    def labor_trafficking(self, inst: Instance) -> None:
        ctx, rng = self.ctx, self.rng
        business = self.recruit.take("no_payroll_business", 1)[0]
        span = min(int(rng.integers(10, 25)), self.room)
        day0 = int(ctx.day_of(np.array([self._start(span + 1)]))[0])
        workers = int(rng.integers(6, 20))
        cities = rng.choice(ctx.pop.groups["domestic_cities"], size=int(rng.integers(1, 4)), replace=False)
        n_lodging = workers + int(rng.integers(0, workers))
        lodging_days = day0 + rng.integers(0, span, size=n_lodging)
        card_payments(
            ctx,
            rng,
            np.full(n_lodging, business),
            np.full(n_lodging, CATEGORY_INDEX["lodging"]),
            ctx.times(rng, n_lodging, "day", days=lodging_days),
            rng.choice(cities, size=n_lodging),
            inst=inst.id,
            usd=ctx.base_to_usd(rng.uniform(250, 900, size=n_lodging), ctx.epoch + lodging_days * DAY),
        )
        n_travel = workers
        travel_cat = np.where(rng.random(n_travel) < 0.7, CATEGORY_INDEX["bus"], CATEGORY_INDEX["airline"])
        card_payments(
            ctx,
            rng,
            np.full(n_travel, business),
            travel_cat,
            ctx.times(rng, n_travel, "day", days=day0 + rng.integers(0, span, size=n_travel)),
            np.full(n_travel, ctx.pop.city[business], np.int64),
            inst=inst.id,
        )
        clients = self.recruit.take("business", int(rng.integers(1, 4)))
        n_in = int(rng.integers(2, 6))
        self._send(
            inst,
            ctx.times(rng, n_in, "office", days=day0 + rng.integers(0, span, size=n_in)),
            rng.choice(clients, size=n_in),
            business,
            self._amounts(n_in, 4_000, 30_000),
            "ach",
            "INVOICE PAYMENT",
        )
        n_cash = int(rng.integers(2, 6))
        cash_ts = ctx.times(rng, n_cash, "day", days=day0 + rng.integers(0, span, size=n_cash))
        self._cash(
            inst,
            cash_ts,
            business,
            np.round(rng.uniform(1_000, 6_000, n_cash), -2),
            deposit=False,
            desc="CASH WITHDRAWAL",
        )
        self._mark(inst, business, "exploiting_business")
        inst.params = {"workers": workers, "lodging_payments": n_lodging}

    # --- crypto ----------------------------------------------------------------------------------------------
    def crypto_layering(self, inst: Instance) -> None:
        ctx, rng = self.ctx, self.rng
        origin, cash_out = self.recruit.take("crypto_user", 2)
        hops = int(rng.integers(4, 11))
        chain = self.recruit.take("fresh_address", hops + 1)
        peels = self.recruit.take("fresh_address", hops)
        t0 = self._start(hops * 0.5 + 4)
        usd = float(rng.uniform(5_000, 45_000))
        arrive = crypto_buy(
            ctx, rng, np.array([origin]), np.array([t0]), np.array([usd]), to_address=chain[:1], inst=inst.id
        )
        t = int(arrive[0])
        balance = usd * 0.99
        for i in range(hops):
            t = int(block_time(ctx, np.array([t + int(rng.integers(5 * MINUTE, 6 * HOUR))]))[0])
            peel = balance * rng.uniform(0.02, 0.1)
            balance -= peel
            ts = ctx.clip(np.array([t, t]))
            ctx.ledger.add(
                ts=ts,
                src=chain[i],
                dst=np.array([chain[i + 1], peels[i]]),
                units=ctx.usd_to_units(np.array([balance, peel]), ctx.eth, ts),
                cur=ctx.eth,
                chan="crypto",
                inst=inst.id,
            )
        t_out = ctx.clip(np.array([t + int(rng.integers(10 * MINUTE, 4 * HOUR))]))
        crypto_sell(
            ctx,
            rng,
            np.array([cash_out]),
            t_out,
            np.array([balance * 0.98]),
            from_address=chain[-1:],
            inst=inst.id,
        )
        g = ctx.pop.groups
        deposit = g["deposit_addresses"][np.searchsorted(g["crypto_users"], cash_out)]
        self._mark(inst, origin, "origin_account")
        self._mark(inst, chain, "chain_address")
        self._mark(inst, [deposit, cash_out], "cash_out")
        inst.params = {"hops": hops}

    # --- the driver -------------------------------------------------------------------------------------------
    def run(self) -> list[Instance]:
        cfg = self.cfg
        budget = cfg.prevalence * self.ctx.pop.n
        weights = np.array([cfg.typology_mix[t] for t in TYPOLOGIES])
        credit = np.zeros(len(TYPOLOGIES))
        positive: set[int] = set()
        functions: dict[str, Callable[[Instance], None]] = {t: getattr(self, t) for t in TYPOLOGIES}
        while len(positive) < budget:
            credit += weights  # smooth weighted round robin: deterministic, proportional to the mix
            pick = int(np.argmax(credit))
            credit[pick] -= weights.sum()
            inst = Instance(id=len(self.instances), typology=TYPOLOGIES[pick])
            before = self.ctx.ledger.rows
            functions[inst.typology](inst)
            assert self.ctx.ledger.rows > before
            self.instances.append(inst)
            positive.update(inst.roles)
        return self.instances


def inject_lookalikes(ctx: Context, rng: np.random.Generator) -> dict[str, IntArray]:
    """Innocent accounts that resemble patterns, so that no single rule is a perfect detector."""
    pop, cfg = ctx.pop, ctx.pop.config
    g = pop.groups
    count = max(5, round(0.0015 * pop.n * (0.5 + cfg.difficulty)))
    code = {name: LOOKALIKES.index(name) + 1 for name in LOOKALIKES}
    out: dict[str, IntArray] = {}
    threshold = float(cfg.reporting_threshold)

    # a legitimate cash business banking ~9,000 most days (sometimes more), which also runs payroll
    shops = rng.choice(g["cash_fronts"], size=min(count, len(g["cash_fronts"])), replace=False)
    s_idx, day = np.nonzero(rng.random((len(shops), ctx.days)) < 0.8)
    who = shops[s_idx]
    ts = ctx.times(rng, len(who), "office", days=day.astype(np.int64))
    amount = np.round(threshold * rng.uniform(0.75, 1.08, size=len(who)), 2)
    ctx.cash(
        rng,
        ts=ts,
        account=who,
        units=np.round(amount * 100).astype(np.int64),
        deposit=True,
        desc="CASH DEPOSIT - TAKINGS",
        lookalike=code["lookalike_cash_business"],
    )
    out["lookalike_cash_business"] = np.sort(shops)

    # frequent business travellers: flights, hotels in several cities, rides, late dinners
    travellers = rng.choice(g["ordinary_persons"], size=count, replace=False)
    for person in travellers.tolist():
        trips = int(rng.integers(2, 6))
        starts = np.sort(rng.integers(0, ctx.days - 3, size=trips))
        for d in starts.tolist():
            nights = int(rng.integers(1, 4))
            city = int(rng.choice(g["domestic_cities"]))
            cats = np.array(
                [CATEGORY_INDEX["airline"]]
                + [CATEGORY_INDEX["lodging"]] * nights
                + [CATEGORY_INDEX["rideshare"]] * 2
                + [CATEGORY_INDEX["restaurant"]] * nights
            )
            days_ = np.array([d, *list(range(d, d + nights)), d, d + nights, *list(range(d, d + nights))])
            profile_ts = ctx.times(rng, len(cats), "evening", days=np.clip(days_, 0, ctx.days - 1))
            card_payments(
                ctx,
                rng,
                np.full(len(cats), person),
                cats,
                profile_ts,
                np.full(len(cats), city),
                lookalike=code["lookalike_business_traveller"],
            )
    out["lookalike_business_traveller"] = np.sort(travellers)

    # active crypto traders: frequent buys and sells through their exchange
    traders = rng.choice(g["crypto_users"], size=min(count, len(g["crypto_users"])), replace=False)
    n = rng.poisson(0.5 * ctx.days, size=len(traders))
    who = np.repeat(traders, n)
    ts = ctx.times(rng, len(who), "flat")
    usd = 800 * rng.lognormal(0, 0.8, size=len(who))
    buy = rng.random(len(who)) < 0.5
    crypto_buy(ctx, rng, who[buy], ts[buy], usd[buy], lookalike=code["lookalike_crypto_trader"])
    crypto_sell(ctx, rng, who[~buy], ts[~buy], usd[~buy], lookalike=code["lookalike_crypto_trader"])
    out["lookalike_crypto_trader"] = np.sort(traders)

    out["lookalike_landlord"] = np.sort(g["landlords"])
    out["lookalike_payroll_processor"] = np.sort(g["payroll_processors"])
    return out
