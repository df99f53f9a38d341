"""Shared helpers for behaviour generators: clock, FX, amounts, branches."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from finwatch.synth import _vocab as vocab
from finwatch.synth._ledger import Ledger
from finwatch.synth._population import Population

IntArray = npt.NDArray[Any]  # integer arrays (numpy typing of dtypes is too coarse to help here)
FloatArray = npt.NDArray[Any]

DAY = 86_400
HOUR = 3_600
ETH_SCALE = 15  # Ether amounts are kept in units of 10^-15 ETH (1,000 wei) while simulating
FIAT_SCALE = 2
BLOCK_SECONDS = 12


@dataclass
class Context:
    pop: Population
    ledger: Ledger
    epoch: int  # unix seconds of the first simulated day, 00:00 UTC
    days: int
    weekday: IntArray  # weekday of each simulated day (0 = Monday)
    month_day: IntArray
    units_per_usd: FloatArray  # [currency, day]: units of the currency one US dollar buys
    base: int  # index of the base currency
    eth: int
    branch_of: npt.NDArray[np.int32]  # [bank, city] -> a branch index, -1 when the bank has none there
    bank_branches: list[IntArray]

    @classmethod
    def create(cls, pop: Population, ledger: Ledger, rng: np.random.Generator) -> Context:
        cfg = pop.config
        start = dt.datetime(cfg.start.year, cfg.start.month, cfg.start.day, tzinfo=dt.UTC)
        days = cfg.days
        dates = [cfg.start + dt.timedelta(days=d) for d in range(days)]
        weekday = np.array([d.weekday() for d in dates], np.int64)
        month_day = np.array([d.day for d in dates], np.int64)
        # daily FX: a random walk around each currency's start rate (Ether is far more volatile)
        n_cur = len(pop.currencies)
        start_rates = np.array([vocab.CURRENCIES[c][2] for c in pop.currencies[:-1]] + [1.0 / vocab.ETH_USD])
        vol = np.full(n_cur, 0.004)
        vol[-1] = 0.03
        vol[pop.currencies.index("USD")] = 0.0
        steps = rng.normal(0.0, 1.0, size=(n_cur, days)) * vol[:, None]
        steps[:, 0] = 0.0
        units_per_usd = start_rates[:, None] * np.exp(np.cumsum(steps, axis=1))
        n_banks, n_cities = len(pop.banks), len(pop.cities)
        branch_of = np.full((n_banks, n_cities), -1, np.int32)
        bank_branches: list[IntArray] = [np.empty(0, np.int64) for _ in range(n_banks)]
        for i, (b, c, _bid) in enumerate(pop.branches):
            if branch_of[b, c] < 0:
                branch_of[b, c] = i
            bank_branches[b] = np.append(bank_branches[b], i)
        return cls(
            pop=pop,
            ledger=ledger,
            epoch=int(start.timestamp()),
            days=days,
            weekday=weekday,
            month_day=month_day,
            units_per_usd=units_per_usd,
            base=pop.currencies.index(cfg.base_currency),
            eth=pop.currencies.index("ETH"),
            branch_of=branch_of,
            bank_branches=bank_branches,
        )

    # --- time -------------------------------------------------------------------------------------------
    def day_weights(self, weekend: float = 1.0, weekdays_only: bool = False) -> FloatArray:
        w = np.where(self.weekday >= 5, 0.0 if weekdays_only else weekend, 1.0).astype(np.float64)
        return w / w.sum()

    def times(
        self,
        rng: np.random.Generator,
        n: int,
        profile: str = "day",
        day_weights: FloatArray | None = None,
        days: IntArray | None = None,
    ) -> IntArray:
        """``n`` timestamps: a day (given, or drawn with weights), an hour from ``profile``, a uniform second."""
        if days is None:
            p = day_weights if day_weights is not None else self.day_weights()
            days = rng.choice(self.days, size=n, p=p)
        hours_p = np.asarray(vocab.HOUR_PROFILES[profile], np.float64)
        hours = rng.choice(24, size=n, p=hours_p / hours_p.sum())
        return self.epoch + days.astype(np.int64) * DAY + hours * HOUR + rng.integers(0, HOUR, size=n)

    def clip(self, ts: IntArray) -> IntArray:
        """Keep timestamps inside the simulated period."""
        return np.clip(ts, self.epoch, self.epoch + self.days * DAY - 1)

    def day_of(self, ts: IntArray) -> IntArray:
        return np.clip((ts - self.epoch) // DAY, 0, self.days - 1)

    # --- money ------------------------------------------------------------------------------------------
    def usd_to_units(self, usd: FloatArray, cur: IntArray | int, ts: IntArray) -> IntArray:
        """Convert US-dollar values to minor units of ``cur`` at the day's rate (never below one unit)."""
        cur_arr = np.broadcast_to(np.asarray(cur), np.shape(usd))
        rate = self.units_per_usd[cur_arr, self.day_of(ts)]
        scale = np.where(cur_arr == self.eth, 10.0**ETH_SCALE, 10.0**FIAT_SCALE)
        return np.maximum(np.round(usd * rate * scale), 1).astype(np.int64)

    def base_to_usd(self, amount_base: FloatArray | float, ts: IntArray) -> FloatArray:
        return np.asarray(amount_base) / self.units_per_usd[self.base, self.day_of(ts)]

    def units_to_usd(self, units: IntArray, cur: IntArray | int, ts: IntArray) -> FloatArray:
        cur_arr = np.broadcast_to(np.asarray(cur), np.shape(units))
        scale = np.where(cur_arr == self.eth, 10.0**ETH_SCALE, 10.0**FIAT_SCALE)
        return units / scale / self.units_per_usd[cur_arr, self.day_of(ts)]

    # --- places -----------------------------------------------------------------------------------------
    def branch(self, rng: np.random.Generator, accounts: IntArray, cities: IntArray) -> npt.NDArray[np.int32]:
        """A branch (or ATM) of each account's bank in the given city, else any branch of that bank."""
        banks = self.pop.bank[accounts]
        out = self.branch_of[banks, cities].copy()
        missing = np.flatnonzero(out < 0)
        if len(missing):
            counts = np.array([len(b) for b in self.bank_branches])
            padded = np.zeros((len(counts), counts.max()), np.int64)
            for b, members in enumerate(self.bank_branches):
                padded[b, : len(members)] = members
            mb = banks[missing]
            out[missing] = padded[mb, rng.integers(0, 1 << 30, size=len(missing)) % counts[mb]]
        return out

    def cash(
        self,
        rng: np.random.Generator,
        *,
        ts: IntArray,
        account: IntArray | int,
        units: IntArray,
        deposit: bool,
        desc: str,
        cities: IntArray | None = None,
        **extra: Any,
    ) -> None:
        """Cash paid into (``deposit``) or taken out of accounts at a branch or ATM of their bank.

        The branch is in ``cities`` (default: each account's home city) when the bank has one there; the
        transaction's city is the branch's. Amounts are minor units of the base currency.
        """
        accounts = np.broadcast_to(np.asarray(account, np.int64), np.shape(ts))
        where = self.pop.city[accounts].astype(np.int64) if cities is None else np.asarray(cities, np.int64)
        br = self.branch(rng, accounts, where)
        self.ledger.add(
            ts=ts,
            src=-1 if deposit else accounts,
            dst=accounts if deposit else -1,
            units=units,
            cur=self.base,
            chan="cash",
            city=self.branch_city(br),
            branch=br,
            desc=desc,
            **extra,
        )

    def branch_city(self, branches: npt.NDArray[np.int32]) -> npt.NDArray[np.int16]:
        return np.array([self.pop.branches[b][1] for b in branches], np.int16)

    def pick(self, rng: np.random.Generator, group: IntArray, n: int) -> IntArray:
        return group[rng.integers(0, len(group), size=n)]


def lognormal_usd(rng: np.random.Generator, median: float, sigma: float, n: int) -> FloatArray:
    return median * rng.lognormal(0.0, sigma, size=n)


def poisson_counts(rng: np.random.Generator, rate_per_day: FloatArray, days: int) -> IntArray:
    return rng.poisson(np.maximum(rate_per_day, 0.0) * days).astype(np.int64)
