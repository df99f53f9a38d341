"""Customer data (KYC) of the simulated banks' own clients: plausible, seeded and evidently synthetic.

The world's own clients are the holders of accounts at its domestic banks (the banks whose exports it writes). They
get a date of birth (persons, 18 or older when the account was opened; mules are young) or of incorporation
(businesses, before the account was opened; shell companies shortly before), an identity document numbered
``SYN-…``, a street line on an invented street, a postcode in the unassigned ZIP range 00100–00499, a phone number
in the NANP range reserved for fiction (``+1-AAA-555-01XX``; unique up to 80,000 clients), an occupation or business
activity, a status (``dormant`` when the account moved no money in the period, else ``open``) and their home branch.
Every person, own client or not, has a given and a family name (their ``holder_name`` split). Everything is drawn
from one generator, vectorised, in account order.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from finwatch.synth import _vocab as vocab
from finwatch.synth._context import Context
from finwatch.synth._population import (
    HOLDER_PERSON,
    KIND_BANK,
    ROLE_BUSINESS,
    ROLE_EXCHANGE_BANK,
    ROLE_FRESH_ADDRESS,
    ROLE_MERCHANT,
    ROLE_MULE,
    ROLE_PAYROLL_PROCESSOR,
    ROLE_SHELL,
)

__all__ = ["KYC_ORDER", "customer_data", "directors", "own_clients"]

KYC_ORDER = (
    "given_name", "family_name", "birth_date", "id_type", "id_number", "id_country", "address", "postcode", "phone",
    "occupation", "status", "branch", "own_client",
)  # fmt: skip
_ID_CODES = {"passport": "PP", "national_id": "NI", "driver_licence": "DL", "tax_id": "TX",
             "company_registration": "CR"}  # fmt: skip
_PHONE_AREAS = 800  # area codes 200-999, each with the 100 fictional numbers 555-0100 … 555-0199


def own_clients(ctx: Context) -> npt.NDArray[np.bool_]:
    """Accounts held at the world's domestic banks: the simulated banks' own clients."""
    pop = ctx.pop
    domestic = np.array([bool(b.export) for b in pop.banks] + [False], np.bool_)  # index -1: no bank
    own: npt.NDArray[np.bool_] = (pop.kind == KIND_BANK) & domestic[pop.bank]
    return own


def customer_data(ctx: Context, active: npt.NDArray[np.bool_], rng: np.random.Generator) -> dict[str, list[Any]]:
    """The customer-data columns of every account (nulls where the world's banks would not know them)."""
    pop = ctx.pop
    n = pop.n
    start = pop.config.start
    own = own_clients(ctx)
    person = (pop.holder == HOLDER_PERSON) & (pop.role != ROLE_FRESH_ADDRESS)
    first = np.asarray(vocab.FIRST_NAMES, dtype=object)[pop.name_a.astype(np.int64) % len(vocab.FIRST_NAMES)]
    last = np.asarray(vocab.LAST_NAMES, dtype=object)[pop.name_b.astype(np.int64) % len(vocab.LAST_NAMES)]

    clients = np.flatnonzero(own)
    m = len(clients)
    is_person = person[clients]
    role = pop.role[clients]
    home = vocab.CURRENCIES[pop.config.base_currency][1]

    # birth / incorporation: a number of days before the account was opened
    opened = pop.opened_day[clients].astype(np.int64)
    age_days = np.where(
        role == ROLE_MULE,
        (18 + rng.gamma(1.5, 3.0, m)) * 365.25,
        (18 + np.minimum(rng.gamma(2.0, 9.0, m), 60)) * 365.25,
    )
    company_days = np.where(role == ROLE_SHELL, rng.integers(5, 60, m), rng.gamma(1.5, 4.0 * 365.25, m))
    before_opening = np.where(is_person, age_days, company_days).astype(np.int64) + rng.integers(0, 365, m)
    born = [start + dt.timedelta(days=int(d)) for d in (opened - before_opening).tolist()]

    # identity documents
    # a bank records a person's national identity (or taxpayer) number, of their country, and a business's
    # registration number: what a goAML or FinCEN report asks of the institution's own client
    rng.choice(3, size=m, p=[0.5, 0.3, 0.2])  # draws kept so that every later value stays as it was
    rng.random(m)
    doc = np.where(is_person, "national_id", "company_registration")
    foreign_national = is_person & (rng.random(m) < 0.08)
    others = [c for c in vocab.CITIES if c != home]
    id_country = np.where(foreign_national, np.asarray(others, dtype=object)[rng.integers(0, len(others), m)], home)
    numbers = rng.choice(90_000_000, size=m, replace=False) + 10_000_000
    id_number = [f"SYN-{_ID_CODES[d]}-{k}" for d, k in zip(doc.tolist(), numbers.tolist(), strict=True)]

    # where they live and how to call them
    streets = vocab.SYNTHETIC_STREETS
    house = rng.integers(1, 1000, m)
    street = rng.integers(0, len(streets), m)
    address = [f"{h} {streets[s]}" for h, s in zip(house.tolist(), street.tolist(), strict=True)]
    postcode = [f"00{p}" for p in rng.integers(100, 500, m).tolist()]
    slots = _PHONE_AREAS * 100
    phone_slot = rng.choice(slots, size=m, replace=False) if m <= slots else rng.integers(0, slots, m)
    phone = [f"+1-{200 + s // 100}-555-01{s % 100:02d}" for s in phone_slot.tolist()]

    # occupation or activity, status, home branch
    age = (-(opened - before_opening)) / 365.25  # at the start of the period
    working = np.asarray(vocab.OCCUPATIONS, dtype=object)[rng.integers(0, len(vocab.OCCUPATIONS), m)]
    occupation = np.where(age < 25, np.where(rng.random(m) < 0.6, "Student", working), working)
    occupation = np.where(age >= 65, np.where(rng.random(m) < 0.8, "Retired", working), occupation)
    mule_jobs = np.asarray(vocab.MULE_OCCUPATIONS, dtype=object)
    occupation = np.where(role == ROLE_MULE, mule_jobs[rng.integers(0, len(mule_jobs), m)], occupation)
    activity = [
        _activity(int(role[k]), pop.mcc_codes[pop.mcc[i]] if pop.mcc[i] >= 0 else "", int(pop.name_b[i]))
        for k, i in enumerate(clients.tolist())
    ]
    occupation = np.where(is_person, occupation, np.asarray(activity, dtype=object))
    status = np.where(active[clients], "open", "dormant")
    branch_index = ctx.branch_of[pop.bank[clients].astype(np.int64), pop.city[clients].astype(np.int64)]
    branch = [pop.branches[b][2] if b >= 0 else None for b in branch_index.tolist()]

    out: dict[str, list[Any]] = {name: [None] * n for name in KYC_ORDER}
    nobody = np.full(n, None, dtype=object)
    out["given_name"] = np.where(person, first, nobody).tolist()
    out["family_name"] = np.where(person, last, nobody).tolist()
    out["own_client"] = own.tolist()
    for name, values in (("birth_date", born), ("id_type", doc.tolist()), ("id_number", id_number),
                         ("id_country", id_country.tolist()), ("address", address), ("postcode", postcode),
                         ("phone", phone), ("occupation", occupation.tolist()), ("status", status.tolist()),
                         ("branch", branch)):  # fmt: skip
        column = out[name]
        for i, value in zip(clients.tolist(), values, strict=True):
            column[i] = value
    return out


def _activity(role: int, mcc: str, name_b: int) -> str:
    """A business's activity: what its name says it trades in, else its role or industry code."""
    if role == ROLE_BUSINESS:  # "<word> <trade>": the trade in its name (see holder_names)
        trade = vocab.BUSINESS_TRADES[name_b % len(vocab.BUSINESS_TRADES)]
        return vocab.TRADE_ACTIVITIES.get(trade, trade)
    if role == ROLE_PAYROLL_PROCESSOR:
        return "Payroll services"
    if role == ROLE_EXCHANGE_BANK:
        return "Crypto-asset exchange"
    return vocab.ACTIVITIES.get(mcc, "Retail trade" if role == ROLE_MERCHANT else "General trading")


def directors(accounts: pl.DataFrame, seed: int) -> pl.DataFrame:
    """A director for each business client: one more holder row of the account, a person authorised to act for it.

    The business stays the account's first row (its ``source_row`` is lower), so that anything reading one holder
    per account still reads the business. The director shares the business's address and phone, is 30 to 70 years
    old when the account was opened and has a national id of the business's country. Drawn from its own generator.
    """
    firms = accounts.filter(pl.col("own_client").fill_null(False) & (pl.col("holder_type") != "person"))
    firms = firms.sort("account_id")
    m = firms.height
    rng = np.random.default_rng([seed, 0xD1])
    given = np.asarray(vocab.FIRST_NAMES, dtype=object)[rng.integers(0, len(vocab.FIRST_NAMES), m)]
    family = np.asarray(vocab.LAST_NAMES, dtype=object)[rng.integers(0, len(vocab.LAST_NAMES), m)]
    age_days = (30 + rng.random(m) * 40) * 365.25
    born = [d - dt.timedelta(days=int(a)) for d, a in zip(firms["opened_date"].to_list(), age_days.tolist(),
                                                             strict=True)]  # fmt: skip
    numbers = rng.choice(90_000_000, size=m, replace=False) + 10_000_000
    first_row = int(accounts["source_row"].max()) + 1 if accounts.height else 0  # type: ignore[arg-type]
    return firms.with_columns(
        holder_type=pl.lit("person"),
        holder_name=pl.Series([f"{g} {f}" for g, f in zip(given.tolist(), family.tolist(), strict=True)]),
        given_name=pl.Series(given.tolist(), dtype=pl.String),
        family_name=pl.Series(family.tolist(), dtype=pl.String),
        birth_date=pl.Series(born, dtype=pl.Date),
        id_type=pl.lit("national_id"),
        id_number=pl.Series([f"SYN-ND-{k}" for k in numbers.tolist()], dtype=pl.String),
        occupation=pl.lit("Director"),
        mcc=pl.lit(None, dtype=pl.String),
        links=pl.lit(None, dtype=pl.List(pl.String)),
        source_row=pl.int_range(first_row, first_row + m, dtype=pl.Int64),
    ).select(accounts.columns)
