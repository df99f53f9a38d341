"""Customer extracts (KYC): a CSV of one row per account and holder, described by a mapping file (TOML).

The mapping is a bank-csv mapping of ``kind = "customers"`` (see ``finwatch.ingest._mapping``): ``[columns]`` maps
the roles below to the extract's header names, ``[format]`` gives the layout (delimiter, quote, encoding), the date
format and defaults for roles the extract has no column for, and ``[holder_types]``, ``[id_types]`` and
``[statuses]`` translate the extract's codes into canonical values (a canonical value written as it is, in any case,
needs no entry). Each accepted row becomes one account row of the store with its customer data; an account with two
holders has two rows, the first being the primary holder.

Rows are quarantined, never guessed: a missing account id, an unknown holder type, account kind, id type or status,
an unparsable or future birth date, an unparsable opening date, an id country that is not an ISO 3166 alpha-2
code, an ``own_client`` value that is not one of the mapping's true or false values, the same record twice. The
reasons never quote the personal values of a row (its birth date); the raw text does, and is withheld from the
quarantine (or encrypted with the quarantine key) when the store is pseudonymised. Detection by content only takes a
file whose header has every column of a shipped customers mapping; any other extract is read with
``--format customers-csv --mapping FILE``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from finwatch.exceptions import ConfigError
from finwatch.ingest._base import (
    PARSED_SCHEMA,
    Adapter,
    Parsed,
    ParseOptions,
    Sample,
    Source,
    conform_accounts,
    conform_parsed,
    ingest_date,
)
from finwatch.ingest._mapping import for_source, load_toml, matching, read_layout, read_mapped, resolve, shipped
from finwatch.schema import AccountKind, AccountStatus, HolderType, IdType

__all__ = ["ROLES", "CustomerMapping", "CustomersCsvAdapter", "resolve_customer_mapping", "shipped_customer_mappings"]

ROLES: Final = (
    "account", "account_kind", "holder_type", "holder_name", "given_name", "family_name", "birth_date", "id_type",
    "id_number", "id_country", "address", "postcode", "city", "country", "phone", "occupation", "status", "branch",
    "own_client", "institution", "currency", "mcc", "opened_date",
)  # fmt: skip
HOLDER_TYPES: Final = tuple(h.value for h in HolderType)
ACCOUNT_KINDS: Final = tuple(k.value for k in AccountKind)
ID_TYPES: Final = tuple(i.value for i in IdType)
STATUSES: Final = tuple(s.value for s in AccountStatus)
TRUE_VALUES: Final = ("true", "1", "yes", "y")
FALSE_VALUES: Final = ("false", "0", "no", "n")
#: a mapping's translation tables (value in the file -> canonical value), by name, with their canonical values
TABLES: Final = {"holder_types": HOLDER_TYPES, "id_types": ID_TYPES, "statuses": STATUSES}


@dataclass(frozen=True)
class CustomerMapping:
    name: str
    source: str
    delimiter: str
    quote: str
    encoding: str
    columns: dict[str, str]
    date_format: str
    defaults: dict[str, Any]  # role -> value for roles without a column (account_kind, holder_type, ...)
    holder_types: dict[str, str]  # value in the file (upper case) -> canonical
    id_types: dict[str, str]
    statuses: dict[str, str]
    true_values: tuple[str, ...]  # lower case
    false_values: tuple[str, ...]

    @classmethod
    def load(cls, text: str, source: str) -> CustomerMapping:
        data = load_toml(text, source)
        layout = read_layout(data, source, "customers", ROLES)
        fmt: dict[str, Any] = data.get("format", {})
        if "account" not in layout["columns"]:
            raise ConfigError(f"mapping {source}: [columns] must map 'account'")
        defaults: dict[str, Any] = {"account_kind": str(fmt.get("account_kind", AccountKind.BANK_ACCOUNT.value))}
        for role in ("holder_type", "institution", "currency", "country"):
            if fmt.get(role) is not None:
                defaults[role] = str(fmt[role])
        if "holder_type" not in layout["columns"] and "holder_type" not in defaults:
            raise ConfigError(f"mapping {source}: map a holder_type column or set format.holder_type")
        if "own_client" in fmt:
            if not isinstance(fmt["own_client"], bool):
                raise ConfigError(f"mapping {source}: format.own_client must be true or false")
            defaults["own_client"] = fmt["own_client"]
        for role, allowed in (("account_kind", ACCOUNT_KINDS), ("holder_type", HOLDER_TYPES)):
            if role in defaults and defaults[role] not in allowed:
                raise ConfigError(f"mapping {source}: format.{role} {defaults[role]!r} is not one of "
                                  f"{', '.join(allowed)}")  # fmt: skip
        tables: dict[str, dict[str, str]] = {}
        for table, allowed in TABLES.items():
            entries = {str(k).strip().upper(): str(v) for k, v in data.get(table, {}).items()}
            bad = sorted({v for v in entries.values() if v not in allowed})
            if bad:
                raise ConfigError(f"mapping {source}: [{table}] values {bad} are not one of {', '.join(allowed)}")
            tables[table] = entries
        true_values = tuple(str(v).strip().lower() for v in fmt.get("true_values", TRUE_VALUES))
        false_values = tuple(str(v).strip().lower() for v in fmt.get("false_values", FALSE_VALUES))
        if set(true_values) & set(false_values):
            raise ConfigError(f"mapping {source}: true_values and false_values overlap")
        return cls(
            **layout, date_format=str(fmt.get("date_format", "%Y-%m-%d")), defaults=defaults,
            holder_types=tables["holder_types"], id_types=tables["id_types"], statuses=tables["statuses"],
            true_values=true_values, false_values=false_values,
        )  # fmt: skip


def shipped_customer_mappings() -> dict[str, CustomerMapping]:
    """The shipped customers mappings (``kind = "customers"``), by name."""
    return shipped("customers", CustomerMapping.load)


def resolve_customer_mapping(option: Path | None) -> CustomerMapping | None:
    return resolve(option, CustomerMapping.load, shipped_customer_mappings())


def _text(role: str) -> pl.Expr:
    """A field as trimmed text; empty text is null."""
    value = pl.col(f"f_{role}").str.strip_chars()
    return pl.when(value != "").then(value)


def _coded(role: str, table: dict[str, str], allowed: tuple[str, ...], default: str | None) -> pl.Expr:
    """The canonical value of a coded field: the mapping's table, else a canonical value as written (any case);
    null when the value is unknown; the default when the field is empty."""
    raw = _text(role)
    lowered = raw.str.to_lowercase()
    return (
        pl.when(raw.is_null())
        .then(pl.lit(default, pl.String))
        .otherwise(
            raw.str.to_uppercase()
            .replace_strict(table, default=None, return_dtype=pl.String)
            .fill_null(pl.when(lowered.is_in(allowed)).then(lowered))
        )
    )


def _unknown(role: str, column: str, what: str, allowed: tuple[str, ...]) -> tuple[pl.Expr, pl.Expr]:
    """(condition, reason) for a coded field that has a value but no canonical one."""
    condition = _text(role).is_not_null() & pl.col(column).is_null()
    return condition, pl.format("unknown {} '{}' (one of {})", pl.lit(what), _text(role), pl.lit(", ".join(allowed)))


class CustomersCsvAdapter(Adapter):
    name = "customers-csv"
    summary = (
        "a customer extract (KYC): one row per account and holder, read through a mapping file of kind "
        '"customers" (--mapping FILE or the name of a shipped one)'
    )
    line_records = True

    @classmethod
    def sniff(cls, sample: Sample) -> str | None:
        if sample.is_dir:
            return None
        mapping = matching(sample.first_line, shipped_customer_mappings())
        return None if mapping is None else f"customer extract matching shipped mapping {mapping.name!r}"

    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        data = source.read_bytes()
        mapping = for_source(source, data, options.mapping, CustomerMapping.load, shipped_customer_mappings(),
                             "customers ")  # fmt: skip
        read = read_mapped(source, data, mapping, ROLES)
        checked = _checked(read.rows, mapping, ingest_date())
        good = checked.filter(pl.col("_reason").is_null())
        accounts = conform_accounts(good)
        bad = checked.filter(pl.col("_reason").is_not_null()).select("source_row", "_reason", "_raw")
        if read.rejected.height:
            bad = pl.concat([bad, read.rejected.select("source_row", "_reason", "_raw")])
        rows = conform_parsed(bad.sort("source_row")) if bad.height else pl.DataFrame(schema=PARSED_SCHEMA)
        total = read.rows.height + read.rejected.height
        detected = (f"customer extract, mapping {mapping.name!r} ({mapping.source}): {total} rows, "
                    f"{accounts['account_id'].n_unique()} accounts")  # fmt: skip
        return Parsed(
            rows=rows, detected=detected, accounts=accounts, notes=read.notes, reference_records=accounts.height,
            personal=True,
        )  # fmt: skip


def _checked(rows: pl.DataFrame, mapping: CustomerMapping, today: dt.date) -> pl.DataFrame:
    """Canonical account columns (customer data included) and ``_reason`` for every row split into fields."""
    defaults = mapping.defaults
    own = _text("own_client").str.to_lowercase()
    parsed = rows.with_columns(
        account_id=_text("account"),
        kind=_coded("account_kind", {}, ACCOUNT_KINDS, defaults.get("account_kind")),
        holder_type=_coded("holder_type", mapping.holder_types, HOLDER_TYPES, defaults.get("holder_type")),
        id_type=_coded("id_type", mapping.id_types, ID_TYPES, None),
        status=_coded("status", mapping.statuses, STATUSES, None),
        birth_date=_text("birth_date").str.strptime(pl.Date, mapping.date_format, strict=False),
        opened_date=_text("opened_date").str.strptime(pl.Date, mapping.date_format, strict=False),
        own_client=pl.when(own.is_null())
        .then(pl.lit(defaults.get("own_client"), pl.Boolean))
        .when(own.is_in(mapping.true_values))
        .then(pl.lit(True))
        .when(own.is_in(mapping.false_values))
        .then(pl.lit(False)),
        id_country=_text("id_country").str.to_uppercase(),
    )
    checks = [
        (pl.col("account_id").is_null(), pl.lit("missing account")),
        (pl.col("holder_type").is_null() & _text("holder_type").is_null(), pl.lit("missing holder type")),
        _unknown("holder_type", "holder_type", "holder type", HOLDER_TYPES),
        _unknown("account_kind", "kind", "account kind", ACCOUNT_KINDS),
        (_text("birth_date").is_not_null() & pl.col("birth_date").is_null(),
         pl.lit(f"unparsable birth_date (expected {mapping.date_format})")),
        (pl.col("birth_date") > pl.lit(today), pl.lit("birth_date in the future")),
        (_text("opened_date").is_not_null() & pl.col("opened_date").is_null(),
         pl.format("unparsable opened_date '{}' (expected {})", _text("opened_date"), pl.lit(mapping.date_format))),
        _unknown("id_type", "id_type", "id type", ID_TYPES),
        (pl.col("id_country").is_not_null() & ~pl.col("id_country").str.contains(r"^[A-Z]{2}$"),
         pl.format("id_country '{}' is not an ISO 3166 alpha-2 code", pl.col("id_country"))),
        _unknown("status", "status", "status", STATUSES),
        (own.is_not_null() & pl.col("own_client").is_null(),
         pl.format("own_client '{}' is not a boolean (true: {}; false: {})", _text("own_client"),
                   pl.lit(", ".join(mapping.true_values)), pl.lit(", ".join(mapping.false_values)))),
    ]  # fmt: skip
    reason: pl.Expr = pl.lit(None, pl.String)
    for condition, text in reversed(checks):  # the first failing check names the row's problem
        reason = pl.when(condition.fill_null(False)).then(text).otherwise(reason)
    checked = parsed.with_columns(_reason=reason)
    first = pl.col("source_row").min().over("_raw")
    checked = checked.with_columns(
        _reason=pl.when(pl.col("_reason").is_null() & (pl.col("source_row") != first))
        .then(pl.format("duplicate of row {} (same record)", first))
        .otherwise(pl.col("_reason"))
    )
    given, family = _text("given_name"), _text("family_name")
    full = pl.concat_str([given, family], separator=" ", ignore_nulls=True)
    is_person = pl.col("holder_type") == HolderType.PERSON.value
    return checked.with_columns(
        holder_name=pl.coalesce(_text("holder_name"), pl.when(is_person & (full != "")).then(full)),
        given_name=given,
        family_name=family,
        institution=pl.coalesce(_text("institution"), pl.lit(defaults.get("institution"), pl.String)),
        country=pl.coalesce(_text("country").str.to_uppercase(), pl.lit(defaults.get("country"), pl.String)),
        city=_text("city"),
        currency=pl.coalesce(_text("currency").str.to_uppercase(), pl.lit(defaults.get("currency"), pl.String)),
        mcc=_text("mcc"),
        links=pl.lit(None, pl.List(pl.String)),
        id_number=_text("id_number"),
        address=_text("address"),
        postcode=_text("postcode"),
        phone=_text("phone"),
        occupation=_text("occupation"),
        branch=_text("branch"),
    )
