"""Assemble a world: population → normal behaviour → patterns → canonical tables and labels."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from finwatch.exceptions import SchemaError
from finwatch.schema import (
    ACCOUNT_SCHEMA,
    AMOUNT_SCALE,
    LABEL_SCHEMA,
    TRANSACTION_SCHEMA,
    polars_schema,
)
from finwatch.synth import _vocab as vocab
from finwatch.synth._context import ETH_SCALE, FIAT_SCALE, Context
from finwatch.synth._kyc import customer_data
from finwatch.synth._ledger import CHANNELS, Ledger
from finwatch.synth._normal import generate_normal
from finwatch.synth._population import (
    HOLDER_BUSINESS,
    HOLDER_EXCHANGE,
    HOLDER_MERCHANT,
    HOLDER_PERSON,
    KIND_BANK,
    KIND_CRYPTO,
    KIND_EXCHANGE_ACCOUNT,
    Population,
    build_population,
    holder_names,
)
from finwatch.synth._typologies import Injector, Instance, inject_lookalikes
from finwatch.synth.config import LOOKALIKES, WorldConfig

_KIND = {KIND_BANK: "bank_account", KIND_CRYPTO: "crypto_address", KIND_EXCHANGE_ACCOUNT: "exchange_account"}
_HOLDER = {
    HOLDER_PERSON: "person",
    HOLDER_BUSINESS: "business",
    HOLDER_MERCHANT: "merchant",
    HOLDER_EXCHANGE: "exchange",
}


@dataclass
class World:
    """A generated world. ``raw`` keeps the simulator's integer columns that exporters need."""

    config: WorldConfig
    pop: Population
    ctx: Context
    raw: pl.DataFrame  # one row per transaction, in txn_id order, simulator columns + canonical strings
    transactions: pl.DataFrame  # canonical
    accounts: pl.DataFrame  # canonical
    account_labels: pl.DataFrame
    transaction_labels: pl.DataFrame
    instances: pl.DataFrame
    fx: pl.DataFrame  # date, currency, rate (base-currency units per currency unit)
    names: list[str]

    @property
    def source(self) -> str:
        return f"finwatch-synth seed={self.config.seed}"


def config_digest(config: WorldConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()


def generate_world(config: WorldConfig) -> World:
    # a sixth generator for customer data: the first five (and so the rest of the world) are as before it existed
    seeds = np.random.SeedSequence(config.seed).spawn(6)
    rng_pop, rng_ctx, rng_normal, rng_patterns, rng_lookalikes, rng_kyc = (np.random.default_rng(s) for s in seeds)
    pop = build_population(config, rng_pop)
    ledger = Ledger()
    ctx = Context.create(pop, ledger, rng_ctx)
    generate_normal(ctx, rng_normal)
    lookalikes = inject_lookalikes(ctx, rng_lookalikes)
    instances = Injector(ctx, rng_patterns).run()
    names = holder_names(pop)
    fx = _fx_table(ctx)
    raw = _raw_frame(ctx, ledger, fx, names)
    transactions = _canonical_transactions(raw, config)
    kyc = customer_data(ctx, _active(raw, pop.n), rng_kyc)
    accounts = _accounts(pop, names, config, kyc)
    account_labels, transaction_labels, instance_table = _labels(pop, raw, instances, lookalikes, config)
    return World(
        config,
        pop,
        ctx,
        raw,
        transactions,
        accounts,
        account_labels,
        transaction_labels,
        instance_table,
        fx,
        names,
    )


def _fx_table(ctx: Context) -> pl.DataFrame:
    """Daily rates into the base currency, rounded to 10 significant digits (the table a user would get)."""
    cfg = ctx.pop.config
    rows = []
    base_per_usd = ctx.units_per_usd[ctx.base]
    for c, code in enumerate(ctx.pop.currencies):
        rate = base_per_usd / ctx.units_per_usd[c]
        for d in range(ctx.days):
            rows.append((cfg.start + dt.timedelta(days=d), code, float(f"{rate[d]:.10g}")))
    # ordered by currency index, then day (lookups gather at currency * days + day)
    return pl.DataFrame(rows, schema={"date": pl.Date, "currency": pl.String, "rate": pl.Float64}, orient="row")


def _units_to_decimal(units: pl.Expr, scale: pl.Expr) -> pl.Expr:
    """Exact: integer minor units times 10^-scale, as the canonical decimal type."""
    dec = pl.Decimal(38, AMOUNT_SCALE)
    fiat = pl.lit(f"{10**-FIAT_SCALE:.{FIAT_SCALE}f}").cast(pl.Decimal(38, FIAT_SCALE))
    eth = pl.lit(f"{10**-ETH_SCALE:.{ETH_SCALE}f}").cast(pl.Decimal(38, ETH_SCALE))
    return pl.when(scale == ETH_SCALE).then(units.cast(dec) * eth).otherwise(units.cast(dec) * fiat).cast(dec)


def _raw_frame(ctx: Context, ledger: Ledger, fx: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    pop = ctx.pop
    frame = ledger.freeze().with_row_index("gen")
    end = ctx.epoch + ctx.days * 86_400
    outside = frame.filter((pl.col("ts") < ctx.epoch) | (pl.col("ts") >= end))
    if outside.height:  # a generator bug, not a user error: every event must fall inside the period
        raise RuntimeError(f"{outside.height} simulated transactions fall outside the period")
    frame = frame.sort(["ts", "gen"]).drop("gen").with_row_index("row")
    ids = pl.Series("ids", pop.ids, dtype=pl.String)
    name_s = pl.Series("names", names, dtype=pl.String)
    bank_bic = [b.bic for b in pop.banks]
    inst_bic = pl.Series([bank_bic[b] if b >= 0 else None for b in pop.bank.tolist()], dtype=pl.String)
    city_name = pl.Series([c for c, _ in pop.cities], dtype=pl.String)
    city_country = pl.Series([k for _, k in pop.cities], dtype=pl.String)
    bank_country = pl.Series([pop.banks[b].country if b >= 0 else None for b in pop.bank.tolist()], dtype=pl.String)
    is_eth = frame["cur"] == ctx.eth
    scale = pl.when(pl.col("cur") == ctx.eth).then(ETH_SCALE).otherwise(FIAT_SCALE)

    def gather(series: pl.Series, idx: str) -> pl.Series:
        col = frame[idx].cast(pl.Int64)
        return series.gather(col.set(col < 0, None))

    day = ((frame["ts"] - ctx.epoch) // 86_400).cast(pl.Int32)
    dates = pl.Series([pop.config.start + dt.timedelta(days=int(d)) for d in range(ctx.days)], dtype=pl.Date)
    frame = frame.with_columns(
        txn_id=pl.format("T{}", pl.col("row").cast(pl.String).str.zfill(10)),
        ts_utc=pl.from_epoch(pl.col("ts"), time_unit="s").dt.replace_time_zone("UTC").dt.cast_time_unit("us"),
        date=dates.gather(day),
        src_account=gather(ids, "src"),
        dst_account=gather(ids, "dst"),
        src_institution=gather(inst_bic, "src"),
        dst_institution=gather(inst_bic, "dst"),
        src_name=gather(name_s, "src"),
        dst_name=gather(name_s, "dst"),
        src_country=gather(bank_country, "src"),
        dst_country=gather(bank_country, "dst"),
        currency=pl.Series(pop.currencies, dtype=pl.String).gather(frame["cur"].cast(pl.Int64)),
        channel=pl.Series(CHANNELS, dtype=pl.String).gather(frame["chan"].cast(pl.Int64)),
        mcc_code=gather(pl.Series(pop.mcc_codes, dtype=pl.String), "mcc"),
        city_name=gather(city_name, "city"),
        city_country=gather(city_country, "city"),
        branch_id=gather(pl.Series([b[2] for b in pop.branches], dtype=pl.String), "branch"),
        description=gather(pl.Series(ledger.descriptions, dtype=pl.String), "desc"),
        party_name=pl.format(
            "{} {}",
            pl.Series(vocab.FIRST_NAMES).gather(frame["party"] % len(vocab.FIRST_NAMES)),
            pl.Series(vocab.LAST_NAMES).gather((frame["party"] // len(vocab.FIRST_NAMES)) % len(vocab.LAST_NAMES)),
        ),
        chain=pl.when(is_eth).then(pl.lit("ethereum")),
        amount=_units_to_decimal(pl.col("units"), scale),
    )
    frame = frame.with_columns(
        party_name=pl.when(pl.col("party") >= 0).then(pl.col("party_name")),
        day=day,
        # the fx table is ordered by currency, then day: a gather instead of a join keeps memory flat
        fx_rate=fx["rate"].gather(frame["cur"].cast(pl.Int64) * ctx.days + day.cast(pl.Int64)),
    )
    return frame.with_columns(
        amount_base=pl.col("amount").cast(pl.Float64) * pl.col("fx_rate"),
        counterparty_name=pl.when(pl.col("chan") == CHANNELS.index("card"))
        .then(pl.col("dst_name"))
        .otherwise(pl.col("party_name")),
        country=pl.coalesce(
            pl.col("city_country"),
            pl.when(pl.col("dst_country") != pl.col("src_country")).then(
                pl.when(pl.col("dst_country") != pop.banks[0].country)
                .then(pl.col("dst_country"))
                .otherwise(pl.col("src_country"))
            ),
        ),
    )


def _canonical_transactions(raw: pl.DataFrame, config: WorldConfig) -> pl.DataFrame:
    digest = config_digest(config)
    frame = raw.select(
        "txn_id",
        pl.col("ts_utc").alias("ts"),
        "src_account",
        "dst_account",
        "src_institution",
        "dst_institution",
        "amount",
        "currency",
        "amount_base",
        "channel",
        pl.col("mcc_code").alias("mcc"),
        "counterparty_name",
        "description",
        "country",
        pl.col("city_name").alias("city"),
        pl.col("branch_id").alias("branch"),
        "chain",
        source_format=pl.lit("synth"),
        source_file_sha256=pl.lit(digest),
        source_row=pl.col("row").cast(pl.Int64),
    )
    return _checked(frame, TRANSACTION_SCHEMA, "synthetic transactions")


def _checked(frame: pl.DataFrame, schema: pa.Schema, what: str) -> pl.DataFrame:
    """Cast to the canonical types in Polars (an Arrow round trip would copy every string column) and check."""
    expected = polars_schema(schema)
    frame = frame.select(expected.names()).cast(expected)
    if frame.schema != expected:
        raise SchemaError(f"{what}: schema {frame.schema} != {expected}")
    for field in schema:
        if not field.nullable and frame[field.name].null_count():
            raise SchemaError(f"{what}: column {field.name!r} has nulls")
    return frame


def _active(raw: pl.DataFrame, n: int) -> npt.NDArray[np.bool_]:
    """Accounts that moved money in the period (on either side of a transaction)."""
    sides = pl.concat([raw["src"], raw["dst"]]).cast(pl.Int64)
    counts = np.bincount(sides.filter(sides >= 0).to_numpy(), minlength=n)
    return np.asarray(counts > 0, np.bool_)


def _accounts(pop: Population, names: list[str], config: WorldConfig, kyc: dict[str, list[Any]]) -> pl.DataFrame:
    g = pop.groups
    links: list[list[str] | None] = [None] * pop.n
    for row, customer in enumerate(g["exchange_customers"].tolist()):
        links[customer] = [
            pop.ids[g["crypto_users"][row]],
            pop.ids[g["deposit_addresses"][row]],
            pop.ids[g["user_addresses"][row]],
        ]
    for e, bank_account in enumerate(g["exchange_banks"].tolist()):
        links[bank_account] = [pop.ids[g["hot_wallets"][e]]]
    institution = []
    for i in range(pop.n):
        if pop.bank[i] >= 0:
            institution.append(pop.banks[pop.bank[i]].bic)
        elif (pop.exchange_of[i] >= 0 and pop.kind[i] != KIND_CRYPTO) or pop.role[i] == 51:
            institution.append(vocab.CRYPTO_EXCHANGES[pop.exchange_of[i]])
        else:
            institution.append(None)
    frame = pl.DataFrame(
        {
            "account_id": pop.ids,
            "kind": [_KIND[int(k)] for k in pop.kind],
            "holder_type": [_HOLDER[int(h)] for h in pop.holder],
            "holder_name": [n or None for n in names],
            "institution": institution,
            "country": [pop.cities[c][1] if c >= 0 else None for c in pop.city.tolist()],
            "city": [pop.cities[c][0] if c >= 0 else None for c in pop.city.tolist()],
            "currency": [pop.currencies[c] for c in pop.currency.tolist()],
            "mcc": [pop.mcc_codes[m] if m >= 0 else None for m in pop.mcc.tolist()],
            "opened_date": [config.start + dt.timedelta(days=int(d)) for d in pop.opened_day.tolist()],
            "links": links,
            **kyc,
            "source_format": "synth",
            "source_file_sha256": config_digest(config),
            "source_row": np.arange(pop.n, dtype=np.int64),
        },
        schema_overrides={
            "links": pl.List(pl.String),
            "institution": pl.String,
            "mcc": pl.String,
            "holder_name": pl.String,
            "country": pl.String,
            "city": pl.String,
            **{name: dtype for name, dtype in polars_schema(ACCOUNT_SCHEMA).items() if name in kyc},
        },
    )
    return _checked(frame, ACCOUNT_SCHEMA, "synthetic accounts")


def _labels(
    pop: Population,
    raw: pl.DataFrame,
    instances: list[Instance],
    lookalikes: dict[str, np.ndarray],
    config: WorldConfig,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    source = f"finwatch-synth seed={config.seed}"
    inst_names = pl.Series([i.name for i in instances], dtype=pl.String)
    inst_typ = pl.Series([i.typology for i in instances], dtype=pl.String)
    acc_rows: list[tuple[object, ...]] = [
        ("account", pop.ids[a], True, i.typology, i.name, role, source)
        for i in instances
        for a, role in sorted(i.roles.items())
    ]
    acc_rows += [
        ("account", pop.ids[int(a)], False, name, None, None, source)
        for name, members in lookalikes.items()
        for a in members.tolist()
    ]
    schema = polars_schema(LABEL_SCHEMA)
    account_labels = pl.DataFrame(acc_rows, schema=schema, orient="row").sort(
        ["subject_id", "typology", "instance_id"], nulls_last=True
    )
    lookalike_names = pl.Series([None, *LOOKALIKES], dtype=pl.String)
    pos = raw.filter(pl.col("inst") >= 0)
    neg = raw.filter((pl.col("inst") < 0) & (pl.col("lookalike") > 0))
    txn_labels = pl.concat(
        [
            pos.select(
                subject_kind=pl.lit("transaction"),
                subject_id="txn_id",
                label=pl.lit(True),
                typology=inst_typ.gather(pos["inst"].cast(pl.Int64)),
                instance_id=inst_names.gather(pos["inst"].cast(pl.Int64)),
                role=pl.lit(None, pl.String),
                source=pl.lit(source),
            ),
            neg.select(
                subject_kind=pl.lit("transaction"),
                subject_id="txn_id",
                label=pl.lit(False),
                typology=lookalike_names.gather(neg["lookalike"].cast(pl.Int64)),
                instance_id=pl.lit(None, pl.String),
                role=pl.lit(None, pl.String),
                source=pl.lit(source),
            ),
        ]
    ).sort("subject_id")
    per_inst = pos.group_by("inst").agg(
        n_transactions=pl.len(), first_ts=pl.col("ts_utc").min(), last_ts=pl.col("ts_utc").max()
    )
    inst_table = (
        pl.DataFrame(
            {
                "inst": np.arange(len(instances), dtype=np.int32),
                "instance_id": [i.name for i in instances],
                "typology": [i.typology for i in instances],
                "n_accounts": [len(i.roles) for i in instances],
                "params": [json.dumps(i.params, sort_keys=True) for i in instances],
            }
        )
        .join(per_inst, on="inst", how="left")
        .drop("inst")
        .sort("instance_id")
    )
    return (
        _checked(account_labels, LABEL_SCHEMA, "account labels"),
        _checked(txn_labels, LABEL_SCHEMA, "transaction labels"),
        inst_table,
    )
