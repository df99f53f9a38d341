"""Bank CSV exports, described by a small mapping file (TOML): columns, date format, decimals, sign convention.

Each row is a booking on one account (the statement's ``account``); its direction comes from the sign convention:

- ``negative-debit``: a negative amount left the account (most banks);
- ``negative-credit``: a negative amount came in (some card statements);
- ``indicator``: a column (``direction``) holds a debit or credit marker (``debit_values``, ``credit_values``);
- ``split``: separate ``debit_amount`` and ``credit_amount`` columns.

A debit becomes ``account → counterparty``, a credit ``counterparty → account``. When the export shows the
instructed amount in another currency, that is the canonical amount (what the payer sent). References become
``txn_id`` as they are (``reference_scope = "global"``: end-to-end ids) or prefixed with the institution
(``"institution"``); the two bookings of one transfer between two accounts of the file's banks then merge into one
transaction. Shipped mappings live in ``finwatch/data/mappings`` and are found by name or by matching the header.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from finwatch.exceptions import ConfigError
from finwatch.ingest._base import Adapter, Parsed, ParseOptions, Sample, Source, duckdb_connection, fetch
from finwatch.ingest._mapping import for_source, load_toml, matching, read_layout, read_mapped, resolve, shipped
from finwatch.schema import Channel

SIGNS = ("negative-debit", "negative-credit", "indicator", "split")
ROLES = ("timestamp", "account", "institution", "amount", "currency", "instructed_amount", "instructed_currency",
         "counterparty_account", "counterparty_institution", "counterparty_name", "channel", "mcc", "city",
         "country", "branch", "reference", "description", "direction", "debit_amount", "credit_amount")  # fmt: skip


@dataclass(frozen=True)
class Mapping:
    name: str
    source: str
    delimiter: str
    quote: str
    decimal: str
    thousands: str
    encoding: str
    timestamp_format: str
    timezone: str
    sign: str
    reference_scope: str
    default_channel: str | None
    currency: str | None
    columns: dict[str, str]
    channels: dict[str, str]
    debit_values: tuple[str, ...]
    credit_values: tuple[str, ...]

    @classmethod
    def load(cls, text: str, source: str) -> Mapping:
        data = load_toml(text, source)
        layout = read_layout(data, source, "transactions", ROLES)
        fmt: dict[str, Any] = data.get("format", {})
        columns: dict[str, str] = layout["columns"]
        sign = fmt.get("sign", "negative-debit")
        if sign not in SIGNS:
            raise ConfigError(f"mapping {source}: sign {sign!r} is not one of {', '.join(SIGNS)}")
        needed = {"timestamp", "account"} | ({"debit_amount", "credit_amount"} if sign == "split" else {"amount"})
        if sign == "indicator":
            needed.add("direction")
        if "currency" not in columns and not fmt.get("currency"):
            raise ConfigError(f"mapping {source}: map a currency column or set format.currency")
        missing = sorted(needed - set(columns))
        if missing:
            raise ConfigError(f"mapping {source}: [columns] must map {missing} for sign {sign!r}")
        channels = {str(k).upper(): str(v) for k, v in data.get("channels", {}).items()}
        bad = sorted({v for v in channels.values() if v not in {c.value for c in Channel}})
        default = fmt.get("default_channel")
        if default is not None and default not in {c.value for c in Channel}:
            bad.append(default)
        if bad:
            raise ConfigError(f"mapping {source}: {bad} are not channels ({', '.join(c.value for c in Channel)})")
        decimal, thousands = str(fmt.get("decimal", ".")), str(fmt.get("thousands", ""))
        if len(decimal) != 1 or decimal.isalnum() or thousands == decimal or any(c.isalnum() for c in thousands):
            raise ConfigError(
                f"mapping {source}: decimal must be one character other than a letter or digit, and "
                f"thousands another (or empty); got decimal {decimal!r}, thousands {thousands!r}"
            )
        scope = fmt.get("reference_scope", "institution")
        if scope not in ("global", "institution"):
            raise ConfigError(f"mapping {source}: reference_scope must be 'global' or 'institution'")
        return cls(
            **layout, decimal=decimal, thousands=thousands,
            timestamp_format=str(fmt.get("timestamp_format", "%Y-%m-%d %H:%M:%S")),
            timezone=str(fmt.get("timezone", "UTC")), sign=sign, reference_scope=scope, default_channel=default,
            currency=fmt.get("currency"), channels=channels,
            debit_values=tuple(str(v).upper() for v in fmt.get("debit_values", ["D", "DBIT", "DEBIT"])),
            credit_values=tuple(str(v).upper() for v in fmt.get("credit_values", ["C", "CRDT", "CREDIT"])),
        )  # fmt: skip


def shipped_mappings() -> dict[str, Mapping]:
    """The shipped bank-csv mappings (``kind = "transactions"``), by name."""
    return shipped("transactions", Mapping.load)


def resolve_mapping(option: Path | None) -> Mapping | None:
    return resolve(option, Mapping.load, shipped_mappings())


#: an amount as the mapping writes it, read only when it matches the mapping's number format (amount_pattern)
AMOUNT_SQL = """case when regexp_full_match(trim(f_{role}), $amount_pattern)
            then try_cast(replace(replace(trim(f_{role}), $thousands, ''), $decimal, '.') as decimal(38, 18)) end"""


def amount_pattern(decimal: str, thousands: str) -> str:
    """The regular expression (RE2) of an amount written with ``decimal`` and ``thousands`` separators: an optional
    sign, digits (grouped by threes with the thousands separator, when there is one), then optionally the decimal
    separator and digits. Any other separator, or one out of place, does not match: with ``decimal = ","``,
    ``12.50``, ``,5`` and ``12,`` are not amounts (and with ``thousands = "."``, ``1.234,56`` is one, ``1.23`` is
    not)."""

    def literal(text: str) -> str:  # each character as a one-character class: no escaping rules to get wrong
        return "".join("[" + ("\\" + c if c in "\\]^-[" else c) + "]" for c in text)

    digits = r"\d+" if not thousands else rf"(?:\d+|\d{{1,3}}(?:{literal(thousands)}\d{{3}})+)"
    point = literal(decimal)
    return rf"[+-]?{digits}(?:{point}\d+)?"  # digits before the separator, and after it when it is there


def number_format(decimal: str, thousands: str) -> str:
    """How a reason describes the mapping's number format."""
    grouping = f"thousands separator {thousands!r}" if thousands else "no thousands separator"
    return f"expected decimal separator {decimal!r}, {grouping}"


SQL = """
with src as (select * from rows_in),
parsed as (
    select
        source_row,
        try_strptime(trim(f_timestamp), $ts_format) as ts_local,
        {booked} as booked,
        {debit} as debit,
        {credit} as credit,
        {instructed} as instructed,
        upper(trim(f_direction)) as marker,
        *
    from src
),
directed as (
    select *,
        case $sign
            when 'negative-debit' then case when booked < 0 then 'D' when booked > 0 then 'C' end
            when 'negative-credit' then case when booked < 0 then 'C' when booked > 0 then 'D' end
            when 'indicator' then case when list_contains($debit_values, marker) then 'D'
                                       when list_contains($credit_values, marker) then 'C' end
            when 'split' then case when coalesce(debit, 0) <> 0 and coalesce(credit, 0) = 0 then 'D'
                                   when coalesce(credit, 0) <> 0 and coalesce(debit, 0) = 0 then 'C' end
        end as side,
        case $sign when 'split' then abs(coalesce(nullif(debit, 0), credit)) else abs(booked) end as magnitude
    from parsed
)
select
    case when nullif(trim(f_reference), '') is null then null
         when $scope = 'global' then trim(f_reference)
         else coalesce(nullif(trim(f_institution), ''), '?') || ':' || trim(f_reference) end as txn_id,
    timezone($tz, ts_local) as ts,
    case side when 'D' then nullif(trim(f_account), '') else nullif(trim(f_counterparty_account), '') end
        as src_account,
    case side when 'D' then nullif(trim(f_counterparty_account), '') else nullif(trim(f_account), '') end
        as dst_account,
    case side when 'D' then nullif(trim(f_institution), '') else nullif(trim(f_counterparty_institution), '') end
        as src_institution,
    case side when 'D' then nullif(trim(f_counterparty_institution), '') else nullif(trim(f_institution), '') end
        as dst_institution,
    coalesce(instructed, magnitude) as amount,
    case when instructed is not null then coalesce(nullif(trim(f_instructed_currency), ''), $currency)
         else coalesce(nullif(trim(f_currency), ''), $currency) end as currency,
    trim(f_channel) as channel_raw,
    nullif(trim(f_mcc), '') as mcc,
    nullif(trim(f_counterparty_name), '') as counterparty_name,
    nullif(trim(f_description), '') as description,
    nullif(trim(f_country), '') as country,
    nullif(trim(f_city), '') as city,
    nullif(trim(f_branch), '') as branch,
    cast(null as varchar) as chain,
    source_row,
    case
        when ts_local is null then 'unparsable timestamp ''' || coalesce(f_timestamp, '') || ''' (expected '
            || $ts_format || ')'
        when $sign <> 'split' and booked is null
            then 'unparsable amount ''' || coalesce(f_amount, '') || ''' (' || $number_format || ')'
        when $sign = 'split' and magnitude is null then 'unparsable debit/credit amounts (' || $number_format || ')'
        when f_instructed_amount is not null and trim(f_instructed_amount) <> '' and instructed is null
            then 'unparsable instructed amount ''' || f_instructed_amount || ''' (' || $number_format || ')'
        when nullif(trim(f_account), '') is null then 'missing account'
        when side is null and $sign = 'indicator'
            then 'unknown debit/credit marker ''' || coalesce(f_direction, '') || ''''
        when side is null then 'zero amount'
    end as _reason,
    _raw
from directed
order by source_row
"""


class BankCsvAdapter(Adapter):
    name = "bank-csv"
    summary = "a bank's CSV export, read through a mapping file (--mapping FILE or the name of a shipped one)"
    line_records = True

    @classmethod
    def sniff(cls, sample: Sample) -> str | None:
        if sample.is_dir:
            return None
        mapping = matching(sample.first_line, shipped_mappings())
        return None if mapping is None else f"bank CSV matching shipped mapping {mapping.name!r}"

    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        data = source.read_bytes()
        mapping = for_source(source, data, options.mapping, Mapping.load, shipped_mappings(), "")
        read = read_mapped(source, data, mapping, ROLES)
        rows_in = read.rows
        con = duckdb_connection()
        con.register("rows_in", rows_in)
        params = {
            "ts_format": mapping.timestamp_format, "thousands": mapping.thousands, "decimal": mapping.decimal,
            "amount_pattern": amount_pattern(mapping.decimal, mapping.thousands),
            "number_format": number_format(mapping.decimal, mapping.thousands),
            "sign": mapping.sign, "debit_values": list(mapping.debit_values),
            "credit_values": list(mapping.credit_values), "scope": mapping.reference_scope, "tz": mapping.timezone,
            "currency": mapping.currency,
        }  # fmt: skip
        rows = _channels(fetch(con, _sql(), params), mapping)
        rows = pl.concat([rows, read.rejected], how="diagonal").sort("source_row")
        return Parsed(rows, f"bank CSV, mapping {mapping.name!r} ({mapping.source})", notes=read.notes)


def _sql() -> str:
    """``SQL`` with each amount read through ``AMOUNT_SQL``."""
    sql = SQL
    for name, role in (("booked", "amount"), ("debit", "debit_amount"), ("credit", "credit_amount"),
                       ("instructed", "instructed_amount")):  # fmt: skip
        sql = sql.replace(f"{{{name}}}", AMOUNT_SQL.format(role=role))
    return sql


def _channels(rows: pl.DataFrame, mapping: Mapping) -> pl.DataFrame:
    """The mapping's channel table, else a canonical name as written, else the default; otherwise a reason."""
    canonical = sorted(c.value for c in Channel)
    raw = pl.col("channel_raw")
    lowered = raw.str.to_lowercase()
    channel = (
        raw.str.to_uppercase().replace_strict(mapping.channels, default=None, return_dtype=pl.String)
        .fill_null(pl.when(lowered.is_in(canonical)).then(lowered))
        .fill_null(pl.lit(mapping.default_channel, pl.String))
    )  # fmt: skip
    rows = rows.with_columns(channel=channel)
    return rows.with_columns(
        _reason=pl.when(pl.col("_reason").is_null() & pl.col("channel").is_null())
        .then(pl.format("unknown channel '{}'", raw.fill_null("")))
        .otherwise(pl.col("_reason"))
    ).drop("channel_raw")
