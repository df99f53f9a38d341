"""Who is in the world: banks with branches, persons, businesses, merchants, exchanges and crypto addresses.

Accounts are held column-wise in numpy arrays indexed by an integer account number; strings (ids, names) are
made once at the end. Everything is drawn from one seeded generator, so the same config gives the same world.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from finwatch.synth import _vocab as vocab
from finwatch.synth.config import WorldConfig

IntArray = npt.NDArray[Any]  # integer arrays (numpy typing of dtypes is too coarse to help here)

# account kinds / holder types as small integer codes (decoded by the exporters)
KIND_BANK, KIND_CRYPTO, KIND_EXCHANGE_ACCOUNT = 0, 1, 2
HOLDER_PERSON, HOLDER_BUSINESS, HOLDER_MERCHANT, HOLDER_EXCHANGE = 0, 1, 2, 3

# finer roles used by the simulator (not exported as such; they shape behaviour)
ROLE_PERSON, ROLE_LANDLORD, ROLE_MULE = 0, 1, 2
ROLE_BUSINESS, ROLE_SHELL, ROLE_CASH_FRONT, ROLE_PAYROLL_PROCESSOR = 10, 11, 12, 13
ROLE_MERCHANT = 20
ROLE_FOREIGN_PERSON, ROLE_FOREIGN_BUSINESS = 30, 31
ROLE_EXCHANGE_BANK, ROLE_EXCHANGE_HOT_WALLET = 40, 41
ROLE_CRYPTO_USER_ADDRESS, ROLE_DEPOSIT_ADDRESS, ROLE_FRESH_ADDRESS, ROLE_EXCHANGE_CUSTOMER = 50, 51, 52, 53

DOMESTIC_BANKS = (
    # name, BIC, AMLworld-style numeric code, export format, camt.053 version
    ("First Federal Bank", "FFEDUS33", "0110", "camt053", "001.02"),
    ("Union Savings Bank", "UNSVUS44", "0213", "bank-csv", ""),
    ("Metro Commerce Bank", "MTCBUS6L", "0342", "camt053", "001.08"),
    ("Pacific Coast Bank", "PCCBUS6S", "0419", "bank-csv", ""),
    ("Heartland Credit Union", "HLCUUS41", "0527", "camt053", "001.02"),
    ("Atlantic Trust", "ATLTUS3N", "0618", "bank-csv", ""),
    ("Lone Star National", "LSNBUS44", "0736", "camt053", "001.04"),
    ("Summit Community Bank", "SMCBUS5D", "0851", "bank-csv", ""),
)
FOREIGN_BANKS = (
    ("Banco del Norte", "BNORMXMM", "2104", "MX"),
    ("Maple Dominion Bank", "MAPLCATT", "2215", "CA"),
    ("Thames Merchant Bank", "THMBGB2L", "2320", "GB"),
    ("Rheinland Handelsbank", "RHHBDEFF", "2433", "DE"),
    ("Pearl River Bank", "PRRBCNSH", "2547", "CN"),
    ("Manila Union Bank", "MNUBPHMM", "2652", "PH"),
    ("Gulf Crescent Bank", "GFCBAEAD", "2761", "AE"),
    ("Alpine Private Bank", "ALPBCHZZ", "2870", "CH"),
)


@dataclass(frozen=True)
class Bank:
    name: str
    bic: str
    code: str
    country: str
    export: str  # "bank-csv", "camt053" or "" (foreign: not an export this world's user receives)
    camt_version: str
    cities: tuple[int, ...]  # indexes into Population.cities


@dataclass
class Population:
    """Column-wise account table plus the reference data behavior needs."""

    config: WorldConfig
    cities: list[tuple[str, str]]  # (city, country)
    banks: list[Bank]
    branches: list[tuple[int, int, str]]  # (bank, city, branch id)
    currencies: list[str]  # index -> code; the last one is ETH
    kind: npt.NDArray[np.int8]
    holder: npt.NDArray[np.int8]
    role: npt.NDArray[np.int16]
    bank: npt.NDArray[np.int16]  # -1 for crypto addresses
    city: npt.NDArray[np.int16]
    currency: npt.NDArray[np.int8]
    mcc: npt.NDArray[np.int16]  # index into mcc_codes, -1 for none
    mcc_codes: list[str]
    merchant_category: npt.NDArray[np.int16]  # index into vocab.MERCHANT_CATEGORIES, -1 for none
    opened_day: npt.NDArray[np.int32]  # days relative to config.start (negative: before the period)
    has_payroll: npt.NDArray[np.bool_]
    activity: npt.NDArray[np.float64]  # per-account multiplier on normal behaviour rates
    name_a: npt.NDArray[np.int16]
    name_b: npt.NDArray[np.int16]
    exchange_of: npt.NDArray[np.int16]  # for exchange-related accounts: which exchange
    owner: IntArray  # crypto user address / deposit address / exchange customer -> the person's bank account
    groups: dict[str, IntArray] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.kind.shape[0])

    def in_city(self, group: str, city: int) -> IntArray:
        members = self.groups[group]
        return members[self.city[members] == city]


def _hex_ids(seed: int, salt: str, count: int, width: int) -> list[str]:
    """Distinct, reproducible hexadecimal identifiers."""
    out: list[str] = []
    seen: set[str] = set()
    counter = 0
    while len(out) < count:
        digest = hashlib.blake2b(f"{seed}:{salt}:{counter}".encode(), digest_size=32).hexdigest()
        counter += 1
        for start in range(0, 64 - width + 1, width):
            candidate = digest[start : start + width]
            if candidate not in seen:
                seen.add(candidate)
                out.append(candidate)
                if len(out) == count:
                    break
    return out


def build_population(config: WorldConfig, rng: np.random.Generator) -> Population:
    home_country = vocab.CURRENCIES[config.base_currency][1]
    cities: list[tuple[str, str]] = [(c, country) for country, names in vocab.CITIES.items() for c in names]
    city_index = {pair: i for i, pair in enumerate(cities)}
    domestic_cities = [city_index[(c, home_country)] for c in vocab.CITIES[home_country]]

    banks: list[Bank] = []
    branches: list[tuple[int, int, str]] = []
    for name, bic, code, export, version in DOMESTIC_BANKS:
        k = int(rng.integers(3, min(8, len(domestic_cities)) + 1))
        chosen = tuple(sorted(int(c) for c in rng.choice(domestic_cities, size=k, replace=False)))
        banks.append(Bank(name, bic, code, home_country, export, version, chosen))
    for name, bic, code, country in FOREIGN_BANKS:
        if country == home_country:
            continue
        here = [city_index[(c, country)] for c in vocab.CITIES[country]]
        banks.append(Bank(name, bic, code, country, "", "", tuple(here[:2])))
    for b, holder_bank in enumerate(banks):
        for c in holder_bank.cities:
            for j in range(1 + int(rng.integers(0, 3))):
                branches.append((b, c, f"{holder_bank.bic[:6]}-{c:03d}-{j + 1:02d}"))
    domestic_bank_ids = np.array([i for i, b in enumerate(banks) if b.export], dtype=np.int16)
    foreign_bank_ids = np.array([i for i, b in enumerate(banks) if not b.export], dtype=np.int16)

    n = config.accounts
    # fresh addresses for peel chains: each crypto-layering instance uses ~16 and labels ~11 accounts
    crypto_share = config.typology_mix.get("crypto_layering", 0.0) / sum(config.typology_mix.values())
    n_fresh = 60 + round(config.prevalence * n * crypto_share * 3)
    n_foreign = max(20, round(0.03 * n))
    n_merchant = max(len(vocab.MERCHANT_CATEGORIES) * 3, round(0.025 * n))
    n_business = max(60, round(0.06 * n))
    n_exchange = len(vocab.CRYPTO_EXCHANGES)
    rest = n - n_fresh - n_foreign - n_merchant - n_business - 2 * n_exchange
    n_crypto_users = round(rest * 0.05 / 1.15)
    n_person = rest - 3 * n_crypto_users

    kind = np.zeros(n, np.int8)
    holder = np.zeros(n, np.int8)
    role = np.zeros(n, np.int16)
    groups: dict[str, IntArray] = {}
    cursor = 0

    def take(count: int, name: str, k: int, h: int, r: int) -> IntArray:
        nonlocal cursor
        idx = np.arange(cursor, cursor + count, dtype=np.int64)
        cursor += count
        kind[idx], holder[idx], role[idx] = k, h, r
        groups[name] = idx
        return idx

    persons = take(n_person, "persons", KIND_BANK, HOLDER_PERSON, ROLE_PERSON)
    businesses = take(n_business, "businesses", KIND_BANK, HOLDER_BUSINESS, ROLE_BUSINESS)
    merchants = take(n_merchant, "merchants", KIND_BANK, HOLDER_MERCHANT, ROLE_MERCHANT)
    foreign = take(n_foreign, "foreign", KIND_BANK, HOLDER_PERSON, ROLE_FOREIGN_PERSON)
    exchange_banks = take(n_exchange, "exchange_banks", KIND_BANK, HOLDER_EXCHANGE, ROLE_EXCHANGE_BANK)
    hot_wallets = take(n_exchange, "hot_wallets", KIND_CRYPTO, HOLDER_EXCHANGE, ROLE_EXCHANGE_HOT_WALLET)
    user_addresses = take(n_crypto_users, "user_addresses", KIND_CRYPTO, HOLDER_PERSON, ROLE_CRYPTO_USER_ADDRESS)
    deposit_addresses = take(n_crypto_users, "deposit_addresses", KIND_CRYPTO, HOLDER_EXCHANGE, ROLE_DEPOSIT_ADDRESS)
    customers = take(n_crypto_users, "exchange_customers", KIND_EXCHANGE_ACCOUNT, HOLDER_PERSON, ROLE_EXCHANGE_CUSTOMER)
    fresh = take(n - cursor, "fresh_addresses", KIND_CRYPTO, HOLDER_PERSON, ROLE_FRESH_ADDRESS)
    assert cursor == n
    assert len(fresh) == n_fresh

    # foreign counterparties: two thirds persons (remittance receivers), one third businesses (suppliers)
    foreign_business = foreign[rng.random(len(foreign)) < 0.35]
    holder[foreign_business], role[foreign_business] = HOLDER_BUSINESS, ROLE_FOREIGN_BUSINESS

    # business sub-roles
    draw = rng.random(n_business)
    role[businesses[draw < 0.10]] = ROLE_SHELL
    role[businesses[(draw >= 0.10) & (draw < 0.22)]] = ROLE_CASH_FRONT
    role[businesses[(draw >= 0.22) & (draw < 0.225)]] = ROLE_PAYROLL_PROCESSOR
    groups["shells"] = businesses[role[businesses] == ROLE_SHELL]
    groups["cash_fronts"] = businesses[role[businesses] == ROLE_CASH_FRONT]
    groups["payroll_processors"] = businesses[role[businesses] == ROLE_PAYROLL_PROCESSOR]
    groups["regular_businesses"] = businesses[role[businesses] == ROLE_BUSINESS]

    # persons: landlords and a reserve of new accounts that patterns may recruit as mules
    draw = rng.random(n_person)
    role[persons[draw < 0.012]] = ROLE_LANDLORD
    mule_share = min(0.5, config.prevalence * 1.2)
    role[persons[(draw >= 0.012) & (draw < 0.012 + mule_share)]] = ROLE_MULE
    groups["landlords"] = persons[role[persons] == ROLE_LANDLORD]
    groups["mules"] = persons[role[persons] == ROLE_MULE]
    groups["ordinary_persons"] = persons[role[persons] == ROLE_PERSON]
    groups["crypto_users"] = np.sort(rng.choice(groups["ordinary_persons"], size=n_crypto_users, replace=False))

    # institutions, places, currencies
    bank = np.full(n, -1, np.int16)
    bank_accounts = np.flatnonzero(kind == KIND_BANK)
    bank[bank_accounts] = rng.choice(domestic_bank_ids, size=len(bank_accounts))
    bank[foreign] = rng.choice(foreign_bank_ids, size=len(foreign))
    city = np.full(n, -1, np.int16)
    for b_id, member_bank in enumerate(banks):
        members = bank_accounts[bank[bank_accounts] == b_id]
        city[members] = rng.choice(np.array(member_bank.cities, np.int16), size=len(members))
    currencies = [*vocab.CURRENCIES, "ETH"]
    cur_index = {c: i for i, c in enumerate(currencies)}
    currency = np.full(n, cur_index[config.base_currency], np.int8)
    for f in foreign:
        country = banks[bank[f]].country
        currency[f] = cur_index[next(c for c, v in vocab.CURRENCIES.items() if v[1] == country)]
    crypto = np.flatnonzero(kind == KIND_CRYPTO)
    currency[crypto] = cur_index["ETH"]

    # the exchange side of crypto users: one exchange account, one deposit address, one self-custody address
    exchange_of = np.full(n, -1, np.int16)
    owner = np.full(n, -1, np.int64)
    which = rng.integers(0, n_exchange, size=n_crypto_users).astype(np.int16)
    for arr in (user_addresses, deposit_addresses, customers):
        owner[arr] = groups["crypto_users"]
    exchange_of[deposit_addresses] = which
    exchange_of[customers] = which
    exchange_of[user_addresses] = which
    exchange_of[exchange_banks] = np.arange(n_exchange)
    exchange_of[hot_wallets] = np.arange(n_exchange)
    city[customers] = city[groups["crypto_users"]]

    # merchant categories and industry codes
    mcc_codes = sorted(
        {c.mcc for c in vocab.MERCHANT_CATEGORIES}
        | {k[1] for k in vocab.CASH_FRONT_KINDS}
        | {vocab.CRYPTO_EXCHANGE_MCC}
        | {"7361", "1520", "8742", "5045", "4214", "6799"}
    )
    mcc_idx = {m: i for i, m in enumerate(mcc_codes)}
    mcc = np.full(n, -1, np.int16)
    merchant_category = np.full(n, -1, np.int16)
    # every category gets merchants in every domestic city where possible; the rest spread by share
    per_cat = np.array([max(c.share, 0.006) for c in vocab.MERCHANT_CATEGORIES])
    cats = np.concatenate(
        [
            np.repeat(np.arange(len(vocab.MERCHANT_CATEGORIES)), 3),
            rng.choice(
                len(vocab.MERCHANT_CATEGORIES),
                size=n_merchant - 3 * len(vocab.MERCHANT_CATEGORIES),
                p=per_cat / per_cat.sum(),
            ),
        ]
    )
    merchant_category[merchants] = cats
    mcc[merchants] = [mcc_idx[vocab.MERCHANT_CATEGORIES[c].mcc] for c in cats]
    front_kind = rng.integers(0, len(vocab.CASH_FRONT_KINDS), size=len(groups["cash_fronts"]))
    mcc[groups["cash_fronts"]] = [mcc_idx[vocab.CASH_FRONT_KINDS[k][1]] for k in front_kind]
    general = ["7361", "1520", "8742", "5045", "4214"]
    mcc[groups["regular_businesses"]] = [
        mcc_idx[general[k]] for k in rng.integers(0, 5, len(groups["regular_businesses"]))
    ]
    mcc[groups["shells"]] = mcc_idx["6799"]
    mcc[groups["payroll_processors"]] = mcc_idx["8742"]
    mcc[exchange_banks] = mcc_idx[vocab.CRYPTO_EXCHANGE_MCC]

    # opening dates: most accounts are years old; mules are new; fresh addresses do not exist yet
    opened_day = (-rng.gamma(2.0, 700.0, size=n)).astype(np.int32) - 1
    opened_day[groups["mules"]] = -rng.integers(1, 90, size=len(groups["mules"]))
    opened_day[groups["shells"]] = -rng.integers(20, 400, size=len(groups["shells"]))
    opened_day[fresh] = 0

    has_payroll = np.zeros(n, np.bool_)
    has_payroll[groups["regular_businesses"]] = rng.random(len(groups["regular_businesses"])) < 0.75
    has_payroll[groups["cash_fronts"]] = True
    has_payroll[merchants] = True
    has_payroll[exchange_banks] = True

    activity = rng.lognormal(mean=-0.18, sigma=0.6, size=n)
    activity[groups["mules"]] *= 0.1 + 0.8 * config.difficulty
    activity[groups["shells"]] *= 0.3

    name_a = rng.integers(0, 1 << 15, size=n).astype(np.int16)
    name_b = rng.integers(0, 1 << 15, size=n).astype(np.int16)
    for arr in (user_addresses, customers):  # a person's crypto accounts carry the person's name
        name_a[arr], name_b[arr] = name_a[owner[arr]], name_b[owner[arr]]

    pop = Population(
        config=config,
        cities=cities,
        banks=banks,
        branches=branches,
        currencies=currencies,
        kind=kind,
        holder=holder,
        role=role,
        bank=bank,
        city=city,
        currency=currency,
        mcc=mcc,
        mcc_codes=mcc_codes,
        merchant_category=merchant_category,
        opened_day=opened_day,
        has_payroll=has_payroll,
        activity=activity,
        name_a=name_a,
        name_b=name_b,
        exchange_of=exchange_of,
        owner=owner,
        groups=groups,
    )
    pop.groups["domestic_cities"] = np.array(domestic_cities, np.int64)
    pop.ids = _account_ids(pop, config.seed)
    return pop


def _account_ids(pop: Population, seed: int) -> list[str]:
    ids: list[str] = [""] * pop.n
    bank_idx = np.flatnonzero(pop.kind == KIND_BANK)
    for i, h in zip(bank_idx, _hex_ids(seed, "bank", len(bank_idx), 9), strict=True):
        ids[i] = "8" + h.upper()
    crypto_idx = np.flatnonzero(pop.kind == KIND_CRYPTO)
    for i, h in zip(crypto_idx, _hex_ids(seed, "eth", len(crypto_idx), 40), strict=True):
        ids[i] = "0x" + h
    ex_idx = np.flatnonzero(pop.kind == KIND_EXCHANGE_ACCOUNT)
    for i, h in zip(ex_idx, _hex_ids(seed, "exchange", len(ex_idx), 12), strict=True):
        ids[i] = "EX" + h.upper()
    return ids


def holder_names(pop: Population) -> list[str]:
    """Display names: persons get first and last names, companies a trade name; deterministic."""
    names: list[str] = []
    fn, ln = vocab.FIRST_NAMES, vocab.LAST_NAMES
    words, trades = vocab.BUSINESS_WORDS, vocab.BUSINESS_TRADES
    front_suffix = {k[1]: k[2] for k in vocab.CASH_FRONT_KINDS}
    for i in range(pop.n):
        a, b, r = int(pop.name_a[i]), int(pop.name_b[i]), int(pop.role[i])
        if r == ROLE_MERCHANT:
            cat = vocab.MERCHANT_CATEGORIES[pop.merchant_category[i]]
            names.append(f"{cat.names[a % len(cat.names)]} #{b % 900 + 100}")
        elif r == ROLE_SHELL:
            names.append(f"{words[a % len(words)]} {vocab.SHELL_SUFFIXES[b % len(vocab.SHELL_SUFFIXES)]}")
        elif r == ROLE_CASH_FRONT:
            names.append(f"{words[a % len(words)]} {front_suffix[pop.mcc_codes[pop.mcc[i]]]}")
        elif r in (ROLE_BUSINESS, ROLE_FOREIGN_BUSINESS, ROLE_PAYROLL_PROCESSOR):
            suffix = "Payroll Services" if r == ROLE_PAYROLL_PROCESSOR else trades[b % len(trades)]
            names.append(f"{words[a % len(words)]} {suffix}")
        elif r in (ROLE_EXCHANGE_BANK, ROLE_EXCHANGE_HOT_WALLET, ROLE_DEPOSIT_ADDRESS):
            names.append(vocab.CRYPTO_EXCHANGES[pop.exchange_of[i]])
        elif r == ROLE_FRESH_ADDRESS:
            names.append("")
        else:
            names.append(f"{fn[a % len(fn)]} {ln[b % len(ln)]}")
    return names
