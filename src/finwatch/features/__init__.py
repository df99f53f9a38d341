"""Point-in-time account features computed in DuckDB from the SQL under ``sql/``, with evidence and audits."""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from finwatch._duckdb import connect, fetch
from finwatch._paths import reference_root, sql_root
from finwatch.config import FeatureConfig
from finwatch.exceptions import FinwatchError, StoreError
from finwatch.features._sql import SqlModel, bind, load_models
from finwatch.store import Store

__all__ = [
    "AuditFailed",
    "FeatureConfig",
    "FeatureSet",
    "Features",
    "build_account_features",
    "build_transaction_features",
    "feature_catalog",
    "load_feature_set",
    "reference_root",
    "sql_parameters",
    "write_features",
]

LAYERS = (("staging", ""), ("features", "feat_"), ("marts", ""), ("evidence", ""))
#: which models each level builds (None: every model of the layer)
LEVELS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "account": {"staging": None, "features": None, "marts": ("account_features",), "evidence": None},
    "transaction": {"staging": None, "features": ("cycles",), "marts": ("transaction_features",), "evidence": ()},
}
COUNT_COLUMNS = r"^(count|sum|distinct|repeated|cycles|max_cycle|max_lodging|peel|scatter|gather|active|max_cash)_.*$"


class AuditFailed(FinwatchError):
    """An audit query returned rows: the build is not trusted."""


def _reference(name: str) -> list[dict[str, str]]:
    with (reference_root() / "reference" / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def sql_parameters(config: FeatureConfig, as_of: dt.datetime) -> dict[str, Any]:
    """The values the SQL binds: the configuration's, the as-of time and the reference lists."""
    mcc = _reference("mcc.csv")
    names = _reference("merchant_names.csv")
    risky = _reference("high_risk_jurisdictions.csv")
    values: dict[str, Any] = config.model_dump(
        exclude={"high_risk_lists", "memory_limit", "law", "sql_dir", "reference_dir", "threshold_currency"}
    )
    values["threshold"] = float(config.threshold)
    values["night_hours"] = list(config.night_hours)
    values["payroll_keywords"] = list(config.payroll_keywords)
    values["as_of"] = as_of
    values["lookback"] = config.w_30d
    for category in ("ads", "lodging", "travel", "prepaid", "crypto"):
        values[f"mcc_{category}"] = [r["mcc"] for r in mcc if r["category"] == category]
        values[f"names_{category}"] = [r["pattern"] for r in names if r["category"] == category]
    values["high_risk_countries"] = sorted({r["country"] for r in risky if r["list"] in config.high_risk_lists})
    return values


@dataclass
class Features:
    as_of: dt.datetime
    accounts: pl.DataFrame  # one row per account active in the lookback (empty for the transaction level)
    cycles: pl.DataFrame  # evidence: one row per temporal cycle
    evidence: pl.DataFrame  # account_id, family, txn_id, ts, amount_base: transactions behind each family
    models: list[SqlModel]
    batches: list[str]  # the store batches the features were computed from
    transactions: pl.DataFrame | None = None  # the transaction level: one row per transaction up to as_of


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
    """Run staging → features → marts for ``as_of`` (UTC), then every audit; raise AuditFailed on violations."""
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
    values = sql_parameters(config, as_of.astimezone(dt.UTC)) | {"files": files}
    if level == "transaction":
        values["lookback"] = dt.timedelta(days=365 * 100)
    with _connection(config) as con:
        con.register("store_accounts", store.scan("accounts").collect())
        root = sql_root()
        models: list[SqlModel] = []
        built: set[str] = set()
        for layer, prefix in LAYERS:
            wanted = LEVELS[level][layer]
            for model in load_models(root / layer):
                if wanted is not None and model.name not in wanted:
                    continue
                table = prefix + model.name
                # the table name comes from the file's own header, never from user input; values are bound
                con.execute(f"create or replace temp table {table} as {model.body}", bind(model, values))
                models.append(model)
                built.add(table)
        for audit in load_models(root / "audits"):
            if not _tables(audit.body) <= built:
                continue  # audits of tables this level does not build
            violations = con.sql(audit.body, params=bind(audit, values)).fetchall()
            if violations:
                shown = "; ".join(str(v) for v in violations[:5])
                raise AuditFailed(f"audit {audit.name} failed: {len(violations)} violating row(s): {shown}")
        batches = sorted(m["batch"] for m in store.manifests())
        cycles = fetch(con, "select * from feat_cycles")
        if level == "transaction":
            transactions = fetch(con, "select * from transaction_features")
            return Features(as_of, pl.DataFrame(), cycles, pl.DataFrame(), models, batches, transactions)
        # an account absent from a family's table had none of its events: counts and sums are 0, flags false;
        # ratios (shares, imbalance, age) stay null because they are undefined, not zero
        accounts = fetch(con, "select * from account_features").with_columns(
            pl.col(COUNT_COLUMNS).fill_null(0), pl.col(pl.Boolean).fill_null(False)
        )
        evidence = fetch(con, "select * from evidence order by account_id, family, ts, txn_id")
        return Features(as_of, accounts, cycles, evidence, models, batches)


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


def load_feature_set(name: str) -> FeatureSet:
    import yaml

    path = reference_root() / "feature_sets" / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FinwatchError(f"unknown feature set {name!r}; known: {', '.join(known)}") from None
    profiles = None
    if data.get("party_profiles"):
        profiles = load_feature_set(str(data["party_profiles"]))
        if data["level"] != "transaction" or profiles.level != "account":
            raise FinwatchError(f"feature set {name}: party profiles are account features of a transaction's parties")
    return FeatureSet(data["name"], int(data["version"]), data["level"], tuple(data["features"]), profiles)


def _tables(sql: str) -> set[str]:
    """Tables an audit reads (``from x`` / ``join x``)."""
    import re

    return set(re.findall(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*)", sql.lower()))


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
