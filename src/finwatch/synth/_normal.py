"""Everyday money: card spending, P2P, payroll, rent, bills, cash, B2B invoices, remittances and crypto.

Rates are per account and day, scaled by each account's heavy-tailed ``activity`` multiplier and the config's
``activity`` knob; timestamps follow daily and weekly rhythms. Everything is vectorised per behaviour.
"""

from __future__ import annotations

import numpy as np

from finwatch.synth import _vocab as vocab
from finwatch.synth._context import (
    BLOCK_SECONDS,
    DAY,
    HOUR,
    Context,
    IntArray,
    lognormal_usd,
    poisson_counts,
)
from finwatch.synth._ledger import CHANNEL
from finwatch.synth._population import ROLE_MULE

CATEGORY_INDEX = {c.key: i for i, c in enumerate(vocab.MERCHANT_CATEGORIES)}


def block_time(ctx: Context, ts: IntArray) -> IntArray:
    """Round down to a block boundary: on-chain events happen when their block is mined."""
    return ts - (ts - ctx.epoch) % BLOCK_SECONDS


def merchants_for(ctx: Context, rng: np.random.Generator, categories: IntArray, cities: IntArray) -> IntArray:
    """A merchant of each category, in the given city where one exists there."""
    pop = ctx.pop
    merchants = pop.groups["merchants"]
    out = np.empty(len(categories), np.int64)
    for cat in np.unique(categories):
        of_cat = merchants[pop.merchant_category[merchants] == cat]
        rows = np.flatnonzero(categories == cat)
        local_city = pop.city[of_cat]
        for city in np.unique(cities[rows]):
            sub = rows[cities[rows] == city]
            local = of_cat[local_city == city]
            pool = local if len(local) else of_cat
            out[sub] = pool[rng.integers(0, len(pool), size=len(sub))]
    return out


def card_payments(
    ctx: Context,
    rng: np.random.Generator,
    payers: IntArray,
    categories: IntArray,
    ts: IntArray,
    cities: IntArray,
    *,
    inst: int | IntArray = -1,
    lookalike: int = 0,
    usd: np.ndarray | None = None,
) -> IntArray:
    """Card payments from ``payers`` to merchants of ``categories``; returns the merchants paid."""
    pop = ctx.pop
    merchants = merchants_for(ctx, rng, categories, cities)
    if usd is None:
        med = np.array([c.median for c in vocab.MERCHANT_CATEGORIES])[categories]
        sig = np.array([c.sigma for c in vocab.MERCHANT_CATEGORIES])[categories]
        usd = med * rng.lognormal(0.0, 1.0, size=len(payers)) ** sig
    cur = pop.currency[payers]
    mcc = pop.mcc[merchants]
    ctx.ledger.add(
        ts=ts,
        src=payers,
        dst=merchants,
        units=ctx.usd_to_units(usd, cur, ts),
        cur=cur,
        chan="card",
        mcc=mcc,
        city=pop.city[merchants],
        desc="CARD PURCHASE",
        inst=inst,
        lookalike=lookalike,
    )
    return merchants


def generate_normal(ctx: Context, rng: np.random.Generator) -> None:
    pop, cfg = ctx.pop, ctx.pop.config
    g = pop.groups
    act = pop.activity * cfg.activity
    persons = np.concatenate([g["ordinary_persons"], g["landlords"], g["mules"]])
    businesses = np.concatenate([g["regular_businesses"], g["cash_fronts"], g["shells"], g["payroll_processors"]])
    days = ctx.days

    # --- card spending (persons ~1.3/day, businesses ~0.3/day); weekends busier ---------------------------
    everyday = np.array([c.share for c in vocab.MERCHANT_CATEGORIES])
    everyday = everyday / everyday.sum()
    for holders, rate in ((persons, 1.8), (businesses, 0.4)):
        n = poisson_counts(rng, act[holders] * rate, days)
        payer = np.repeat(holders, n)
        cats = rng.choice(len(vocab.MERCHANT_CATEGORIES), size=len(payer), p=everyday)
        hours_profile = np.array([c.hours for c in vocab.MERCHANT_CATEGORIES])[cats]
        ts = np.empty(len(payer), np.int64)
        dayw = ctx.day_weights(weekend=1.25)
        for prof in np.unique(hours_profile):
            rows = np.flatnonzero(hours_profile == prof)
            ts[rows] = ctx.times(rng, len(rows), str(prof), dayw)
        home = pop.city[payer].astype(np.int64)
        away = rng.random(len(payer)) < 0.04
        home[away] = ctx.pick(rng, g["domestic_cities"], int(away.sum()))
        card_payments(ctx, rng, payer, cats, ts, home)

    # --- P2P among contacts ---------------------------------------------------------------------------------
    contacts = persons[rng.integers(0, len(persons), size=(len(persons), 6))]
    n = poisson_counts(rng, act[persons] * 0.12, days)
    row = np.repeat(np.arange(len(persons)), n)
    src = persons[row]
    dst = contacts[row, rng.integers(0, 6, size=len(row))]
    keep = src != dst
    src, dst = src[keep], dst[keep]
    ts = ctx.times(rng, len(src), "evening")
    usd = lognormal_usd(rng, 45, 0.9, len(src))
    ctx.ledger.add(
        ts=ts,
        src=src,
        dst=dst,
        units=ctx.usd_to_units(usd, ctx.base, ts),
        cur=ctx.base,
        chan="p2p",
        desc="P2P TRANSFER",
    )

    _payroll(ctx, rng, persons)
    _rent_and_bills(ctx, rng, persons, businesses)
    _cash(ctx, rng, persons, act)
    _b2b(ctx, rng, act)
    _remittances(ctx, rng, persons)
    _crypto(ctx, rng, act)


def _pay_days(ctx: Context, biweekly_phase: int | None) -> IntArray:
    """Day indexes of a payroll run: every other Friday, or the 1st and 15th (earlier Friday on weekends)."""
    if biweekly_phase is not None:
        fridays = np.flatnonzero(ctx.weekday == 4)
        return fridays[(np.arange(len(fridays)) + biweekly_phase) % 2 == 0]
    out = []
    for d in np.flatnonzero(np.isin(ctx.month_day, (1, 15))):
        shift = {5: 1, 6: 2}.get(int(ctx.weekday[d]), 0)
        out.append(max(0, int(d) - shift))
    return np.array(sorted(set(out)), np.int64)


def _payroll(ctx: Context, rng: np.random.Generator, persons: IntArray) -> None:
    pop, g = ctx.pop, ctx.pop.groups
    employers = np.flatnonzero(pop.has_payroll)
    employed = persons[rng.random(len(persons)) < 0.7]
    mule_rows = pop.role[employed] == ROLE_MULE
    employed = employed[~mule_rows | (rng.random(len(employed)) < pop.config.difficulty)]
    size = rng.lognormal(0.0, 1.0, size=len(employers))
    employer_of = employers[rng.choice(len(employers), size=len(employed), p=size / size.sum())]
    salary = lognormal_usd(rng, 1_900, 0.45, len(employed))
    schedule = rng.integers(0, 3, size=len(employers))  # 0/1: biweekly phase, 2: semi-monthly
    sched_of = dict(zip(employers.tolist(), schedule.tolist(), strict=True))
    offset = dict(zip(employers.tolist(), rng.integers(0, 4 * HOUR, size=len(employers)).tolist(), strict=True))
    processors = g["payroll_processors"]
    for kind in (0, 1, 2):
        pay_days = _pay_days(ctx, kind if kind < 2 else None)
        if not len(pay_days):
            continue
        rows = np.flatnonzero(np.array([sched_of[e] for e in employer_of.tolist()], np.int64) == kind)
        if not len(rows):
            continue
        emp = np.repeat(employer_of[rows], len(pay_days))
        who = np.repeat(employed[rows], len(pay_days))
        day = np.tile(pay_days, len(rows))
        pay = np.repeat(salary[rows], len(pay_days)) * rng.normal(1.0, 0.03, size=len(who))
        ts = ctx.epoch + day * DAY + HOUR + np.array([offset[e] for e in emp.tolist()], np.int64)
        # one batch booking per employer and pay day (camt.053 shows it as one entry with many details)
        key = emp * ctx.days + day
        uniq, inverse = np.unique(key, return_inverse=True)
        first = ctx.ledger.new_batch()
        for _ in range(len(uniq) - 1):
            ctx.ledger.new_batch()
        # a few employers outsource payroll: the processor pays employees, funded by the employer hours before
        via = (
            np.isin(emp, employers[:: max(1, len(employers) // max(1, 3 * len(processors)))])
            if len(processors)
            else np.zeros(len(emp), bool)
        )
        payer = emp.copy()
        if len(processors):
            payer[via] = processors[emp[via] % len(processors)]
        ctx.ledger.add(
            ts=ts,
            src=payer,
            dst=who,
            units=ctx.usd_to_units(pay, ctx.base, ts),
            cur=ctx.base,
            chan="ach",
            desc="PAYROLL",
            batch=first + inverse,
        )
        if via.any():
            fund_key, fund_inv = np.unique(key[via], return_inverse=True)
            total = np.bincount(fund_inv, weights=pay[via]) * 1.02
            fund_emp = (fund_key // ctx.days).astype(np.int64)
            fund_ts = ctx.epoch + (fund_key % ctx.days) * DAY - rng.integers(2 * HOUR, 10 * HOUR, len(fund_key))
            fund_ts = ctx.clip(fund_ts)
            ctx.ledger.add(
                ts=fund_ts,
                src=fund_emp,
                dst=processors[fund_emp % len(processors)],
                units=ctx.usd_to_units(total, ctx.base, fund_ts),
                cur=ctx.base,
                chan="wire",
                desc="PAYROLL FUNDING",
                lookalike=_lookalike_code("lookalike_payroll_processor"),
            )


def _lookalike_code(name: str) -> int:
    from finwatch.synth.config import LOOKALIKES

    return LOOKALIKES.index(name) + 1


def _rent_and_bills(ctx: Context, rng: np.random.Generator, persons: IntArray, businesses: IntArray) -> None:
    pop, g = ctx.pop, ctx.pop.groups
    firsts = np.flatnonzero(ctx.month_day == 1)
    renters = persons[rng.random(len(persons)) < 0.55]
    to_landlord = rng.random(len(renters)) < 0.3
    landlord = np.where(
        to_landlord,
        g["landlords"][rng.integers(0, len(g["landlords"]), size=len(renters))],
        g["regular_businesses"][rng.integers(0, len(g["regular_businesses"]), size=len(renters))],
    )
    rent = np.where(
        to_landlord, lognormal_usd(rng, 850, 0.3, len(renters)), lognormal_usd(rng, 1_450, 0.35, len(renters))
    )
    for d in firsts:
        day = np.clip(d + rng.integers(-2, 3, size=len(renters)), 0, ctx.days - 1)
        ts = ctx.times(rng, len(renters), "day", days=day)
        ctx.ledger.add(
            ts=ts,
            src=renters,
            dst=landlord,
            units=ctx.usd_to_units(rent, ctx.base, ts),
            cur=ctx.base,
            chan=np.where(to_landlord, CHANNEL["p2p"], CHANNEL["ach"]),
            desc="RENT",
        )
    # utilities and phone bills, monthly, by direct debit
    utilities = pop.groups["merchants"][pop.merchant_category[pop.groups["merchants"]] == CATEGORY_INDEX["utilities"]]
    telecom = pop.groups["merchants"][pop.merchant_category[pop.groups["merchants"]] == CATEGORY_INDEX["telecom"]]
    payers = np.concatenate([persons, businesses])
    for pool, median in ((utilities, 95.0), (telecom, 60.0)):
        payee = pool[rng.integers(0, len(pool), size=len(payers))]
        due = rng.integers(0, 28, size=len(payers))
        inside = due < ctx.days
        ts = ctx.times(rng, int(inside.sum()), "office", days=due[inside])
        usd = lognormal_usd(rng, median, 0.3, len(ts))
        ctx.ledger.add(
            ts=ts,
            src=payers[inside],
            dst=payee[inside],
            units=ctx.usd_to_units(usd, ctx.base, ts),
            cur=ctx.base,
            chan="ach",
            mcc=pop.mcc[payee[inside]],
            desc="DIRECT DEBIT",
        )


def _cash(ctx: Context, rng: np.random.Generator, persons: IntArray, act: np.ndarray) -> None:
    g = ctx.pop.groups
    # ATM withdrawals: round amounts, mostly in the home city
    n = poisson_counts(rng, act[persons] * 0.07, ctx.days)
    who = np.repeat(persons, n)
    ts = ctx.times(rng, len(who), "evening")
    amount_base = rng.choice([20, 40, 60, 80, 100, 100, 200, 200, 300, 400, 500], size=len(who)).astype(float)
    ctx.cash(rng, ts=ts, account=who, units=(amount_base * 100).astype(np.int64), deposit=False, desc="ATM WITHDRAWAL")
    # occasional cash deposits, heavy-tailed (a car sale, a tip jar); rarely above the reporting threshold
    n = poisson_counts(rng, act[persons] * 0.012, ctx.days)
    who = np.repeat(persons, n)
    ts = ctx.times(rng, len(who), "office", ctx.day_weights(weekdays_only=True))
    usd = lognormal_usd(rng, 350, 1.1, len(who))
    ctx.cash(rng, ts=ts, account=who, units=ctx.usd_to_units(usd, ctx.base, ts), deposit=True, desc="CASH DEPOSIT")
    # cash-intensive businesses bank their takings most weekdays
    fronts = g["cash_fronts"]
    day_mask = rng.random((len(fronts), ctx.days)) < 0.55
    f_idx, day = np.nonzero(day_mask)
    who = fronts[f_idx]
    ts = ctx.times(rng, len(who), "office", days=day.astype(np.int64))
    usd = lognormal_usd(rng, 1_300, 0.55, len(who)) * act[who]
    ctx.cash(
        rng, ts=ts, account=who, units=ctx.usd_to_units(usd, ctx.base, ts), deposit=True, desc="CASH DEPOSIT - TAKINGS"
    )


def _b2b(ctx: Context, rng: np.random.Generator, act: np.ndarray) -> None:
    pop, g = ctx.pop, ctx.pop.groups
    buyers = np.concatenate([g["regular_businesses"], g["cash_fronts"], g["merchants"]])
    sellers = np.concatenate([g["regular_businesses"], g["merchants"]])
    foreign_sellers = g["foreign"][pop.role[g["foreign"]] == 31]
    suppliers = sellers[rng.integers(0, len(sellers), size=(len(buyers), 5))]
    n = poisson_counts(rng, act[buyers] * 0.6 * 7 / 5, ctx.days)
    row = np.repeat(np.arange(len(buyers)), n)
    src = buyers[row]
    dst = suppliers[row, rng.integers(0, 5, size=len(row))]
    abroad = rng.random(len(row)) < 0.08
    dst[abroad] = foreign_sellers[rng.integers(0, len(foreign_sellers), size=int(abroad.sum()))]
    keep = src != dst
    src, dst, abroad = src[keep], dst[keep], abroad[keep]
    ts = ctx.times(rng, len(src), "office", ctx.day_weights(weekdays_only=True))
    usd = lognormal_usd(rng, 2_200, 1.1, len(src))
    cur = pop.currency[src]  # paid in the buyer's currency; a foreign supplier's bank converts
    chan = np.where(
        abroad | (usd > 25_000),
        CHANNEL["wire"],
        np.where(rng.random(len(src)) < 0.2, CHANNEL["cheque"], CHANNEL["ach"]),
    )
    ctx.ledger.add(
        ts=ts,
        src=src,
        dst=dst,
        units=ctx.usd_to_units(usd, cur, ts),
        cur=cur,
        chan=chan,
        desc="INVOICE PAYMENT",
    )


def _remittances(ctx: Context, rng: np.random.Generator, persons: IntArray) -> None:
    pop, g = ctx.pop, ctx.pop.groups
    foreign_people = g["foreign"][pop.role[g["foreign"]] == 30]
    senders = persons[rng.random(len(persons)) < 0.06]
    receiver = foreign_people[rng.integers(0, len(foreign_people), size=len(senders))]
    day = rng.integers(0, ctx.days, size=len(senders))
    ts = ctx.times(rng, len(senders), "evening", days=day)
    usd = lognormal_usd(rng, 320, 0.6, len(senders))
    ctx.ledger.add(
        ts=ts,
        src=senders,
        dst=receiver,
        units=ctx.usd_to_units(usd, ctx.base, ts),
        cur=ctx.base,
        chan="wire",
        desc="FAMILY SUPPORT",
    )


def crypto_buy(
    ctx: Context,
    rng: np.random.Generator,
    users: IntArray,
    ts: IntArray,
    usd: np.ndarray,
    *,
    to_address: IntArray | None = None,
    inst: int | IntArray = -1,
    lookalike: int = 0,
) -> IntArray:
    """Fiat to an exchange, then Ether from the exchange's hot wallet to the user's address. Returns arrival times."""
    pop, g = ctx.pop, ctx.pop.groups
    owner_row = np.searchsorted(g["crypto_users"], users)
    assert np.array_equal(g["crypto_users"][np.clip(owner_row, 0, len(g["crypto_users"]) - 1)], users), (
        "not a crypto user"
    )
    exchange = pop.exchange_of[g["exchange_customers"][owner_row]]
    ctx.ledger.add(
        ts=ts,
        src=users,
        dst=g["exchange_banks"][exchange],
        units=ctx.usd_to_units(usd, ctx.base, ts),
        cur=ctx.base,
        chan="ach",
        mcc=pop.mcc[g["exchange_banks"][exchange]],
        desc="CRYPTO PURCHASE",
        inst=inst,
        lookalike=lookalike,
    )
    arrive = block_time(ctx, ctx.clip(ts + rng.integers(10 * 60, 6 * HOUR, size=len(users))))
    dst = g["user_addresses"][owner_row] if to_address is None else to_address
    ctx.ledger.add(
        ts=arrive,
        src=g["hot_wallets"][exchange],
        dst=dst,
        units=ctx.usd_to_units(usd * 0.99, ctx.eth, arrive),
        cur=ctx.eth,
        chan="crypto",
        inst=inst,
        lookalike=lookalike,
    )
    return arrive


def crypto_sell(
    ctx: Context,
    rng: np.random.Generator,
    users: IntArray,
    ts: IntArray,
    usd: np.ndarray,
    *,
    from_address: IntArray | None = None,
    inst: int | IntArray = -1,
    lookalike: int = 0,
) -> None:
    """Ether to the user's exchange deposit address, then fiat from the exchange to the user's bank account."""
    pop, g = ctx.pop, ctx.pop.groups
    owner_row = np.searchsorted(g["crypto_users"], users)
    exchange = pop.exchange_of[g["exchange_customers"][owner_row]]
    ts = block_time(ctx, ts)
    src = g["user_addresses"][owner_row] if from_address is None else from_address
    ctx.ledger.add(
        ts=ts,
        src=src,
        dst=g["deposit_addresses"][owner_row],
        units=ctx.usd_to_units(usd, ctx.eth, ts),
        cur=ctx.eth,
        chan="crypto",
        inst=inst,
        lookalike=lookalike,
    )
    paid = ctx.clip(ts + rng.integers(HOUR, 2 * DAY, size=len(users)))
    ctx.ledger.add(
        ts=paid,
        src=g["exchange_banks"][exchange],
        dst=users,
        units=ctx.usd_to_units(usd * 0.985, ctx.base, paid),
        cur=ctx.base,
        chan="ach",
        desc="CRYPTO SALE PROCEEDS",
        inst=inst,
        lookalike=lookalike,
    )


def _crypto(ctx: Context, rng: np.random.Generator, act: np.ndarray) -> None:
    g = ctx.pop.groups
    users = g["crypto_users"]
    for fn, rate, median in ((crypto_buy, 0.15, 400.0), (crypto_sell, 0.1, 500.0)):
        n = poisson_counts(rng, act[users] * rate, ctx.days)
        who = np.repeat(users, n)
        ts = ctx.times(rng, len(who), "evening")
        fn(ctx, rng, who, ts, lognormal_usd(rng, median, 1.0, len(who)))
    # exchanges settle with each other daily between hot wallets: hundreds of ETH (far beyond 2^64 wei)
    hot = g["hot_wallets"]
    day = np.repeat(np.arange(ctx.days), len(hot))
    src = np.tile(hot, ctx.days)
    dst = np.tile(np.roll(hot, 1), ctx.days)
    ts = block_time(ctx, ctx.times(rng, len(day), "office", days=day))
    usd = lognormal_usd(rng, 400_000, 0.6, len(day))
    ctx.ledger.add(ts=ts, src=src, dst=dst, units=ctx.usd_to_units(usd, ctx.eth, ts), cur=ctx.eth, chan="crypto")
    # transfers between users' own addresses
    addresses = g["user_addresses"]
    n = poisson_counts(rng, act[ctx.pop.owner[addresses]] * 0.25, ctx.days)
    src = np.repeat(addresses, n)
    dst = addresses[rng.integers(0, len(addresses), size=len(src))]
    keep = src != dst
    ts = block_time(ctx, ctx.times(rng, int(keep.sum()), "flat"))
    usd = lognormal_usd(rng, 150, 1.0, len(ts))
    ctx.ledger.add(
        ts=ts,
        src=src[keep],
        dst=dst[keep],
        units=ctx.usd_to_units(usd, ctx.eth, ts),
        cur=ctx.eth,
        chan="crypto",
    )
