"""Point-in-time account features computed in DuckDB from the SQL under ``sql/``, with evidence and audits."""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from finwatch._duckdb import connect, fetch
from finwatch._paths import reference_root, sql_root
from finwatch.config import FeatureConfig
from finwatch.exceptions import ConfigError, FinwatchError, StoreError
from finwatch.features._sql import (
    ACCOUNT_FAMILIES,
    EVIDENCE,
    EXTERNAL_TABLES,
    Catalogue,
    SqlModel,
    bind,
    load_catalogue,
)
from finwatch.store import Store

__all__ = [
    "AuditFailed",
    "Catalogue",
    "FeatureConfig",
    "FeatureSet",
    "Features",
    "build_account_features",
    "build_transaction_features",
    "evidence_families",
    "feature_catalog",
    "load_catalogue",
    "load_feature_set",
    "reference_root",
    "reporting_threshold",
    "sql_parameters",
    "sql_root",
    "write_features",
]

#: configuration fields the SQL never binds (or binds in another form, set by sql_parameters)
NOT_BOUND = {"high_risk_lists", "memory_limit", "law", "sql_dir", "reference_dir", "threshold_currency",
             "aggregation_window"}  # fmt: skip
EVIDENCE_SCHEMA = "account_id varchar, family varchar, txn_id varchar, ts timestamptz, amount_base double"


class AuditFailed(FinwatchError):
    """An audit query returned rows: the build is not trusted."""


def _reference(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / "reference" / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def sql_parameters(config: FeatureConfig, as_of: dt.datetime, *, threshold: float | None = None) -> dict[str, Any]:
    """The values the SQL binds: the configuration's, the as-of time and the reference lists.

    ``threshold`` is the reporting threshold in the store's base currency (:func:`reporting_threshold`); by default
    the configured amount as it is. Without an ``aggregation_window`` cash adds up over the UTC calendar day
    (``aggregate_by_day``; the window bound is then a placeholder no query reads).
    """
    folder = config.reference_dir or reference_root()
    mcc = _reference(folder, "mcc.csv")
    names = _reference(folder, "merchant_names.csv")
    risky = _reference(folder, "high_risk_jurisdictions.csv")
    values: dict[str, Any] = config.model_dump(exclude=NOT_BOUND)
    values["threshold"] = float(config.threshold) if threshold is None else threshold
    values["aggregate_by_day"] = config.aggregation_window is None
    values["aggregation_window"] = config.aggregation_window or dt.timedelta(days=1)
    values["night_hours"] = list(config.night_hours)
    values["payroll_keywords"] = list(config.payroll_keywords)
    values["as_of"] = as_of
    values["lookback"] = config.w_30d
    for category in ("ads", "lodging", "travel", "prepaid", "crypto"):
        values[f"mcc_{category}"] = [r["mcc"] for r in mcc if r["category"] == category]
        values[f"names_{category}"] = [r["pattern"] for r in names if r["category"] == category]
    values["high_risk_countries"] = sorted({r["country"] for r in risky if r["list"] in config.high_risk_lists})
    return values


def reporting_threshold(store: Store, config: FeatureConfig, as_of: dt.datetime) -> float:
    """The reporting threshold in the store's base currency, converted at the as-of date when it is in another."""
    currency = config.threshold_currency
    base = store.settings().base_currency
    if currency is None or currency == base:
        return float(config.threshold)
    day = as_of.astimezone(dt.UTC).date()
    rates = store.fx_table().rate_to(pl.DataFrame({"date": [day], "currency": [currency]}), base)
    rate = rates["rate"][0] if rates.height else None
    if rate is None or not rate > 0:
        raise ConfigError(
            f"the reporting threshold of {config.threshold} {currency} cannot be converted to {base}: no FX rate "
            f"from {currency} to {base} on {day.isoformat()}; add one to the FX table"
        )
    return float(config.threshold * Decimal(repr(float(rate))))


def evidence_families(config: FeatureConfig) -> set[str]:
    """The evidence families the SQL catalogue declares (what a rule's ``evidence`` may name)."""
    return set(load_catalogue(config.sql_dir).evidence)


@dataclass
class Features:
    as_of: dt.datetime
    accounts: pl.DataFrame  # one row per account active in the lookback (empty for the transaction level)
    cycles: pl.DataFrame  # evidence: one row per temporal cycle
    evidence: pl.DataFrame  # account_id, family, txn_id, ts, amount_base: transactions behind each family
    models: list[SqlModel]
    batches: list[str]  # the store batches the features were computed from
    transactions: pl.DataFrame | None = None  # the transaction level: one row per transaction up to as_of
    parameters: dict[str, Any] = field(default_factory=dict)  # the values bound (threshold in the base currency)
    #: account feature column → the evidence families of the family that computes it (what supports a reason)
    column_evidence: dict[str, tuple[str, ...]] = field(default_factory=dict)


@contextmanager
def _connection(config: FeatureConfig) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection that spills beyond the memory limit to a private temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="finwatch-duckdb-") as spill:
        con = connect()
        try:
            con.execute("set temp_directory = $d", {"d": spill})
            if config.memory_limit:
                con.execute("set memory_limit = $m", {"m": config.memory_limit})
            yield con
        finally:
            con.close()


def build_account_features(store: Store, as_of: dt.datetime, config: FeatureConfig) -> Features:
    """Build what the account mart and the evidence need for ``as_of`` (UTC), then the audits of those tables.

    Raises AuditFailed on violations.
    """
    return _build(store, as_of, config, "account")


def build_transaction_features(store: Store, as_of: dt.datetime, config: FeatureConfig) -> Features:
    """Every transaction up to ``as_of`` with both sides' trailing-window features and motif membership.

    Cycles are searched over the whole history (not the 30-day lookback) and a transaction is marked only when
    it closes one: nothing after a transaction is used for it.
    """
    return _build(store, as_of, config, "transaction")


def _build(store: Store, as_of: dt.datetime, config: FeatureConfig, level: str) -> Features:
    if as_of.tzinfo is None:
        raise FinwatchError("as_of must be a timezone-aware time (UTC)")
    if not store.exists:
        raise StoreError(f"{store.root}: not a finwatch store (run finwatch ingest first)")
    files = [str(p) for p in store.files("transactions")]
    if not files:
        raise StoreError(f"{store.root}: the store has no transactions")
    catalogue = load_catalogue(config.sql_dir)
    moment = as_of.astimezone(dt.UTC)
    values = sql_parameters(config, moment, threshold=reporting_threshold(store, config, moment))
    if level == "transaction":
        values["lookback"] = dt.timedelta(days=365 * 100)
    bound = {k: v for k, v in values.items() if k != "files"}
    values["files"] = files
    with _connection(config) as con:
        con.register("store_accounts", store.scan("accounts").collect())
        models: list[SqlModel] = []
        built: set[str] = set()
        owners: dict[str, SqlModel] = {}
        for node in catalogue.level(level):
            if node.table == ACCOUNT_FAMILIES:
                owners = _join_families(con, catalogue)
            elif node.table == EVIDENCE:
                _build_evidence(con, catalogue, values)
            elif node.model is not None:
                # the table name comes from the file's own header, never from user input; values are bound
                con.execute(f"create or replace temp table {node.table} as {node.model.body}", bind(node.model, values))
                _decimals_to_double(con, node.table, node.model)
                _check_zero_columns(con, node.table, node.model)
                models.append(node.model)
            built.add(node.table)
        for audit in catalogue.audits:
            if not audit.reads <= built | EXTERNAL_TABLES:
                continue  # it audits tables of the other level (a table no model builds failed at load)
            violations = con.sql(audit.body, params=bind(audit, values)).fetchall()
            if violations:
                shown = "; ".join(str(v) for v in violations[:5])
                raise AuditFailed(f"audit {audit.name} failed: {len(violations)} violating row(s): {shown}")
        batches = sorted(m["batch"] for m in store.manifests())
        cycles = fetch(con, "select * from feat_cycles") if "feat_cycles" in built else pl.DataFrame()
        if level == "transaction":
            transactions = fetch(con, "select * from transaction_features")
            return Features(as_of, pl.DataFrame(), cycles, pl.DataFrame(), models, batches, transactions, bound)
        accounts = _zero_when_absent(fetch(con, "select * from account_features"), catalogue.families)
        evidence = fetch(con, "select * from evidence order by account_id, family, ts, txn_id")
        column_evidence = {column: tuple(sorted(model.evidence)) for column, model in sorted(owners.items())}
        return Features(as_of, accounts, cycles, evidence, models, batches, None, bound, column_evidence)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    query = "select column_name from duckdb_columns() where table_name = $t order by column_index"
    return [str(r[0]) for r in con.execute(query, {"t": table}).fetchall()]


def _decimals_to_double(con: duckdb.DuckDBPyConnection, table: str, model: SqlModel) -> None:
    """A feature family's or mart's exact DECIMAL columns (an amount or a sum of ``amount_base`` left uncast) as DOUBLE.

    Staging converts ``amount_base`` to an exact decimal so that sums never depend on row order or threads; what the
    features and marts hand on is floats, as the shipped SQL casts them (``sum(amount_base)::double``).
    """
    if model.path.parent.name == "staging":
        return
    query = (
        "select column_name from duckdb_columns() where table_name = $t and data_type like 'DECIMAL%' "
        "order by column_index"
    )
    for (column,) in con.execute(query, {"t": table}).fetchall():
        quoted = '"' + str(column).replace('"', '""') + '"'
        con.execute(f"alter table {table} alter column {quoted} set data type double")


def _check_zero_columns(con: duckdb.DuckDBPyConnection, table: str, model: SqlModel) -> None:
    if not model.zero_when_absent:
        return
    produced = set(_columns(con, table))
    missing = [c for c in model.zero_when_absent if c not in produced]
    if missing:
        raise ConfigError(
            f"{model.path.name}: zero_when_absent lists {', '.join(missing)}, which the family does not produce"
        )


def _join_families(con: duckdb.DuckDBPyConnection, catalogue: Catalogue) -> dict[str, SqlModel]:
    """``account_families``: every account-grain family's columns, one row per account any family has.

    Returns each column's family.
    """
    families = catalogue.families
    owner: dict[str, SqlModel] = {}
    for model in families:
        for column in _columns(con, f"feat_{model.name}"):
            if column != "account_id" and column in owner:
                raise ConfigError(
                    f"{model.path.name}: column {column} is also produced by {owner[column].path.name}; "
                    "the account mart needs one column per name"
                )
            owner[column] = model
    if not families:
        con.execute(
            f"create or replace temp table {ACCOUNT_FAMILIES} as select null::varchar as account_id where false"
        )
        return owner
    # every table name comes from a header (checked to be an identifier), never from user input
    tables = [f"feat_{m.name}" for m in families]
    ids = " union ".join(f"select account_id from {t}" for t in tables)  # noqa: S608 - names from headers
    joins = " ".join(f"left join {t} using (account_id)" for t in tables)
    query = f"create or replace temp table {ACCOUNT_FAMILIES} as select * from ({ids}) as ids {joins}"  # noqa: S608
    con.execute(query)
    owner.pop("account_id", None)
    return owner


def _build_evidence(con: duckdb.DuckDBPyConnection, catalogue: Catalogue, values: dict[str, Any]) -> None:
    """``evidence``: the union of every family's declared evidence CTE, run with the family's own parameters."""
    con.execute(f"create or replace temp table {EVIDENCE} ({EVIDENCE_SCHEMA})")
    for family, model in sorted(catalogue.evidence.items()):
        query, used = model.evidence_query(family)
        params = bind(model, values | {"evidence_family": family}, used)
        try:
            con.execute(f"insert into {EVIDENCE} {query}", params)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(
                f"{model.path.name}: evidence {family} must yield account_id, txn_id, ts, amount_base ({first})"
            ) from None


def _zero_when_absent(accounts: pl.DataFrame, families: tuple[SqlModel, ...]) -> pl.DataFrame:
    """An account absent from a family's table had none of its events: the columns the family lists are 0 (false);
    the others (shares, ratios, ages) stay null because they are undefined, not zero."""
    fills = [
        pl.col(c).fill_null(False if accounts.schema[c] == pl.Boolean else 0)
        for m in families
        for c in m.zero_when_absent
        if c in accounts.columns
    ]
    return accounts.with_columns(fills) if fills else accounts


@dataclass(frozen=True)
class FeatureSet:
    """A versioned list of the features a model uses (``features/feature_sets/<name>.yaml``).

    ``features`` are columns of the level's mart. A transaction-level set may add ``party_profiles``: an
    account-level set whose features are taken for both parties of each transaction as of the start of its UTC
    day (``src_profile_<feature>``, ``dst_profile_<feature>``).
    """

    name: str
    version: int
    level: str
    features: tuple[str, ...]
    profiles: FeatureSet | None = None

    def select(self, table: pl.DataFrame) -> pl.DataFrame:
        missing = [f for f in self.features if f not in table.columns]
        if missing:
            raise FinwatchError(f"feature set {self.name} v{self.version}: the table lacks {missing}")
        return table.select(self.features)

    def names(self) -> tuple[str, ...]:
        """Every model input: the mart's features, then each party's profile features."""
        if self.profiles is None:
            return self.features
        sides = tuple(f"{side}_profile_{f}" for side in PARTY_SIDES for f in self.profiles.features)
        return self.features + sides


PARTY_SIDES = ("src", "dst")


def load_feature_set(name: str, reference_dir: Path | None = None) -> FeatureSet:
    import yaml

    path = (reference_dir or reference_root()) / "feature_sets" / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FinwatchError(f"unknown feature set {name!r}; known: {', '.join(known)}") from None
    profiles = None
    if data.get("party_profiles"):
        profiles = load_feature_set(str(data["party_profiles"]), reference_dir)
        if data["level"] != "transaction" or profiles.level != "account":
            raise FinwatchError(f"feature set {name}: party profiles are account features of a transaction's parties")
    return FeatureSet(data["name"], int(data["version"]), data["level"], tuple(data["features"]), profiles)


def feature_catalog(models: list[SqlModel]) -> dict[str, dict[str, Any]]:
    """Each feature family's documentation from its header: typology, source, windows, column meanings."""
    return {
        m.name: {"typology": list(m.typology), "source": m.source, "windows": list(m.windows), "columns": m.columns}
        for m in models
    }


def write_features(features: Features, out: Path, config: FeatureConfig) -> Path:
    """Write account features and cycle evidence atomically with a manifest (last)."""
    from finwatch._io import atomic_directory

    with atomic_directory(out, marker="features.json") as staging:
        if features.transactions is not None:
            features.transactions.write_parquet(staging / "transaction_features.parquet")
        else:
            features.accounts.write_parquet(staging / "account_features.parquet")
            features.evidence.write_parquet(staging / "evidence.parquet")
        features.cycles.write_parquet(staging / "cycles.parquet")
        manifest = {
            "as_of": features.as_of.isoformat(),
            "config_sha256": config.digest(),
            "store_batches": features.batches,
            "rows": {
                "account_features": features.accounts.height,
                "cycles": features.cycles.height,
                "transaction_features": features.transactions.height if features.transactions is not None else 0,
            },
            "catalog": feature_catalog(features.models),
        }
        (staging / "features.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return out
