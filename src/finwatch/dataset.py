"""Labelled feature tables for training and evaluation, and the temporal split.

Two levels:

- **transaction**: every transaction in the store with its point-in-time features (``transaction_features``);
  a row is positive when the store's labels mark the transaction positive. Rows are split by the UTC day of
  their timestamp.
- **account**: account features computed as of several points in time (every ``step`` back from the end of the
  data); a row is one account at one as-of time. When the ground truth labels accounts, an account is positive at
  an as-of time when it is labelled positive and took part in a labelled transaction in the window
  (as_of − 30 d, as_of] — or, if none of its transactions is labelled (account-only ground truth such as AMLSim's
  nodes), whenever it is scored. For transaction-labelled data without account labels, an account is positive when
  it sent or received a positive-labelled transaction in the window. Rows are split by as-of time.

The split is temporal: whole units (days, or as-of times) in order, cut where the largest relative deviation from
the wanted fractions (60/20/20 by default) is smallest — the rule IBM's Multi-GNN uses to split AMLworld.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from finwatch.config import FeatureConfig, Level
from finwatch.exceptions import FinwatchError, StoreError
from finwatch.features import (
    PARTY_SIDES,
    build_account_features,
    build_transaction_features,
    feature_catalog,
)
from finwatch.store import Store

__all__ = [
    "KEYS",
    "LEVELS",
    "PARTS",
    "Dataset",
    "Split",
    "as_of_times",
    "build_dataset",
    "end_of_data",
    "midnight_after",
    "temporal_cuts",
]

LEVELS = tuple(Level)
PARTS = ("train", "validation", "test")
#: the columns that identify a row and its parties at each level (never features)
KEYS = {"transaction": ("txn_id", "ts", "src_account", "dst_account"), "account": ("account_id", "as_of")}
#: told (steps done, steps in all, what is being done) before each feature build of a dataset
Progress = Callable[[int, int, str], None]
#: bookkeeping columns a dataset adds
META = ("unit", "part", "label", "typologies", "rule_ids")


def temporal_cuts(counts: Sequence[int], fractions: Sequence[float] = (0.6, 0.2, 0.2)) -> tuple[int, int]:
    """Cut ``counts`` (rows per unit, in time order) into three consecutive non-empty parts.

    Returns (i, j): units ``[0, i)`` train, ``[i, j)`` validation, ``[j, n)`` test, chosen to minimise the largest
    relative deviation ``|share − fraction| / fraction`` (ties: the earliest cuts).
    """
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise FinwatchError(f"split fractions must be three positive numbers summing to 1, not {list(fractions)}")
    totals = np.asarray(counts, dtype=np.float64)
    if totals.size < 3:
        raise FinwatchError(f"a temporal split needs at least 3 time units (days or as-of times), got {totals.size}")
    total = totals.sum()
    if total <= 0:
        raise FinwatchError("a temporal split needs rows")
    prefix = np.concatenate([[0.0], np.cumsum(totals)])
    best: tuple[float, int, int] | None = None
    for i, j in itertools.combinations(range(1, totals.size), 2):
        shares = (prefix[i] / total, (prefix[j] - prefix[i]) / total, (total - prefix[j]) / total)
        score = max(abs(s - f) / f for s, f in zip(shares, fractions, strict=True))
        if best is None or score < best[0] - 1e-12:
            best = (score, i, j)
    assert best is not None
    return best[1], best[2]


@dataclass(frozen=True)
class Split:
    """Which time units belong to which part."""

    units: tuple[str, ...]  # ISO dates (transaction level) or ISO times (account level), ascending
    counts: tuple[int, ...]
    cuts: tuple[int, int]
    fractions: tuple[float, float, float]

    @classmethod
    def temporal(cls, units: Sequence[str], counts: Sequence[int], fractions: Sequence[float]) -> Split:
        cuts = temporal_cuts(counts, fractions)
        return cls(tuple(units), tuple(int(c) for c in counts), cuts, (fractions[0], fractions[1], fractions[2]))

    def part_of(self) -> dict[str, str]:
        i, j = self.cuts
        return {u: PARTS[0] if k < i else PARTS[1] if k < j else PARTS[2] for k, u in enumerate(self.units)}

    def to_json(self) -> dict[str, Any]:
        i, j = self.cuts
        total = sum(self.counts) or 1
        parts = {}
        for name, (lo, hi) in zip(PARTS, ((0, i), (i, j), (j, len(self.units))), strict=True):
            rows = sum(self.counts[lo:hi])
            parts[name] = {"first": self.units[lo], "last": self.units[hi - 1], "units": hi - lo, "rows": rows,
                           "share": round(rows / total, 6)}  # fmt: skip
        return {"rule": "temporal, whole units, min max relative deviation", "fractions": list(self.fractions),
                "parts": parts}  # fmt: skip


@dataclass
class Dataset:
    """Labelled rows of one level: keys, features, ``unit``, ``part``, ``label``, ``typologies``, ``rule_ids``."""

    level: Level
    frame: pl.DataFrame
    features: tuple[str, ...]  # every feature column the level computes
    split: Split
    manifest_sha256: str  # the store's manifests (which data this is)
    batches: list[str]
    catalog: dict[str, dict[str, Any]]
    as_of: dt.datetime
    rules_version: str | None = None
    notes: list[str] = field(default_factory=list)

    def rows(self, part: str) -> pl.DataFrame:
        if part == "all":
            return self.frame
        if part not in PARTS:
            raise FinwatchError(f"unknown split part {part!r}; choose {', '.join(PARTS)} or all")
        return self.frame.filter(pl.col("part") == part)

    def summary(self) -> dict[str, Any]:
        by_part = {
            p: {"rows": (r := self.rows(p)).height, "positive": int(r["label"].sum())} for p in PARTS
        }  # fmt: skip
        return {"level": self.level, "rows": self.frame.height, "positive": int(self.frame["label"].sum()),
                "parts": by_part, "split": self.split.to_json(), "as_of": self.as_of.isoformat(),
                "data_manifest_sha256": self.manifest_sha256}  # fmt: skip


def _store(store: Store) -> Store:
    if not store.exists:
        raise StoreError(f"{store.root}: not a finwatch store (run finwatch ingest first)")
    return store


def _span(store: Store) -> tuple[dt.datetime, dt.datetime]:
    span = store.scan("transactions").select(lo=pl.col("ts").min(), hi=pl.col("ts").max()).collect()
    lo, hi = span.row(0)
    if lo is None:
        raise StoreError(f"{store.root}: the store has no transactions")
    return lo, hi


def midnight_after(moment: dt.datetime) -> dt.datetime:
    """00:00 UTC of the day after ``moment``: the as-of time that covers its whole day."""
    return dt.datetime.combine(moment.astimezone(dt.UTC).date() + dt.timedelta(days=1), dt.time(), dt.UTC)


def end_of_data(store: Store) -> dt.datetime:
    """The midnight after a store's newest transaction: the default time to score it as of."""
    return midnight_after(_span(_store(store))[1])


def as_of_times(first: dt.datetime, last: dt.datetime, step: dt.timedelta) -> list[dt.datetime]:
    """Midnight after the last day of data, then every ``step`` back while at least ``step`` of data precedes."""
    if step <= dt.timedelta(0):
        raise FinwatchError("the as-of step must be positive")
    end = midnight_after(last)
    times = []
    moment = end
    while moment - step >= first:
        times.append(moment)
        moment -= step
    return sorted(times)


def _labels(store: Store) -> pl.DataFrame:
    labels = store.scan("labels").collect()
    if labels.is_empty():
        raise StoreError(
            f"{store.root}: the store holds no labels; ingest ground truth first (a dataset with labels, "
            "an AMLworld patterns file, or finwatch label tables)"
        )
    return labels


def _positive_legs(store: Store, labels: pl.DataFrame) -> pl.DataFrame:
    """account_id, ts, typology of every side of each positive-labelled transaction."""
    positive = (
        labels.filter((pl.col("subject_kind") == "transaction") & pl.col("label"))
        .group_by("subject_id")
        .agg(pl.col("typology").unique().sort())
        .rename({"subject_id": "txn_id", "typology": "typologies"})
    )
    txns = store.scan("transactions").select("txn_id", "ts", "src_account", "dst_account").collect()
    joined = txns.join(positive, on="txn_id", how="inner")
    return pl.concat(
        [joined.select(pl.col(side).alias("account_id"), "ts", "typologies") for side in ("src_account", "dst_account")]
    ).drop_nulls("account_id")


def build_dataset(
    store: Store,
    level: Level | str,
    config: FeatureConfig,
    *,
    as_of: dt.datetime | None = None,
    step: dt.timedelta = dt.timedelta(days=3),
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    with_rules: bool = True,
    profiles: Sequence[str] = (),
    progress: Progress | None = None,
) -> Dataset:
    """The labelled rows of ``level`` from a store, split in time. Raises StoreError when the store has no labels.

    ``profiles`` (transaction level): account features to add for both parties of each transaction, as of the
    start of its UTC day (``src_profile_<name>``, ``dst_profile_<name>``).
    """
    if level not in LEVELS:
        raise FinwatchError(f"unknown level {level!r}; choose {' or '.join(LEVELS)}")
    level = Level(level)
    store = _store(store)
    labels = _labels(store)
    first, last = _span(store)
    if level == "transaction":
        end = as_of or last
        return _transaction_dataset(store, labels, end, fractions, config, tuple(profiles), progress)
    times = as_of_times(first, as_of or last, step)
    if len(times) < 3:
        raise FinwatchError(
            f"{store.root}: {len(times)} as-of time(s) with a step of {step}; the data ({first:%Y-%m-%d} to "
            f"{last:%Y-%m-%d}) needs at least 3 for a temporal split — use a shorter step"
        )
    return _account_dataset(store, labels, times, fractions, config, with_rules, progress)


def _transaction_dataset(
    store: Store,
    labels: pl.DataFrame,
    as_of: dt.datetime,
    fractions: Sequence[float],
    config: FeatureConfig,
    profiles: tuple[str, ...],
    progress: Progress | None,
) -> Dataset:
    built = build_transaction_features(store, as_of, config)
    assert built.transactions is not None
    positive = (
        labels.filter((pl.col("subject_kind") == "transaction") & pl.col("label"))
        .group_by("subject_id")
        .agg(typologies=pl.col("typology").unique().sort())
        .rename({"subject_id": "txn_id"})
    )
    keys = KEYS["transaction"]
    features = tuple(c for c in built.transactions.columns if c not in keys)
    frame = (
        built.transactions.join(positive, on="txn_id", how="left")
        .with_columns(
            unit=pl.col("ts").dt.date().cast(pl.String),
            label=pl.col("typologies").is_not_null(),
            typologies=pl.col("typologies").fill_null(pl.lit([], pl.List(pl.String))),
            rule_ids=pl.lit([], pl.List(pl.String)),
        )
        .sort(["ts", "txn_id"])
    )
    if frame.is_empty():
        raise StoreError(f"{store.root}: no transactions up to {as_of.isoformat()}")
    if profiles:
        frame = _with_party_profiles(store, frame, profiles, config, progress)
        features += tuple(f"{side}_profile_{f}" for side in PARTY_SIDES for f in profiles)
    return _finish(store, Level.TRANSACTION, frame, features, fractions, as_of, built.models, None)


def _with_party_profiles(
    store: Store, frame: pl.DataFrame, profiles: tuple[str, ...], config: FeatureConfig, progress: Progress | None
) -> pl.DataFrame:
    """Each party's account features as of the start of the transaction's UTC day (nothing from that day on)."""
    days: list[pl.DataFrame] = []
    units = sorted(set(frame["unit"].to_list()))
    for done, unit in enumerate(units):
        if progress is not None:
            progress(done, len(units), f"party profiles as of {unit}")
        moment = dt.datetime.fromisoformat(unit).replace(tzinfo=dt.UTC)
        table = build_account_features(store, moment, config).accounts
        missing = [f for f in profiles if f not in table.columns]
        if missing:
            raise FinwatchError(f"party profiles name features the account level does not compute: {missing}")
        typed = [pl.col(f) if table.schema[f] == pl.Boolean else pl.col(f).cast(pl.Float64) for f in profiles]
        days.append(table.select("account_id", *typed).with_columns(unit=pl.lit(unit)))
    table = pl.concat(days)
    for side in PARTY_SIDES:
        renamed = table.rename({"account_id": f"{side}_account"} | {f: f"{side}_profile_{f}" for f in profiles})
        frame = frame.join(renamed, on=[f"{side}_account", "unit"], how="left")
    return frame


def _account_dataset(
    store: Store,
    labels: pl.DataFrame,
    times: list[dt.datetime],
    fractions: Sequence[float],
    config: FeatureConfig,
    with_rules: bool,
    progress: Progress | None,
) -> Dataset:
    from finwatch.rules import evaluate, load_rules

    legs = _positive_legs(store, labels)
    positive_accounts = labels.filter((pl.col("subject_kind") == "account") & pl.col("label"))["subject_id"].unique()
    if positive_accounts.len():
        # the ground truth names the accounts in patterns: a counterparty merely paid by or paying one of them
        # (a hotel, an ad platform, an exchange's hot wallet) is not positive for having touched its transactions
        legs = legs.filter(pl.col("account_id").is_in(positive_accounts.to_list()))
    labelled_txn_accounts = set(legs["account_id"].to_list())
    account_only = (
        labels.filter((pl.col("subject_kind") == "account") & pl.col("label"))
        .filter(~pl.col("subject_id").is_in(list(labelled_txn_accounts)))
        .group_by("subject_id")
        .agg(static=pl.col("typology").unique().sort())
        .rename({"subject_id": "account_id"})
    )
    pack = load_rules(config) if with_rules else None
    frames: list[pl.DataFrame] = []
    models: list[Any] = []
    features: tuple[str, ...] = ()
    for done, moment in enumerate(times):
        if progress is not None:
            progress(done, len(times), f"account features as of {moment:%Y-%m-%d %H:%M}")
        built = build_account_features(store, moment, config)
        models = built.models
        table = built.accounts
        features = tuple(c for c in table.columns if c not in KEYS["account"])
        window = (
            legs.filter((pl.col("ts") > moment - config.w_30d) & (pl.col("ts") <= moment))
            .explode("typologies")
            .group_by("account_id")
            .agg(window=pl.col("typologies").unique().sort())
        )
        if pack is not None:
            hits = evaluate(built, pack)
            fired = hits.group_by("account_id").agg(rule_ids=pl.col("rule_id").unique().sort())
        else:
            fired = pl.DataFrame(schema={"account_id": pl.String, "rule_ids": pl.List(pl.String)})
        frames.append(
            table.join(window, on="account_id", how="left")
            .join(account_only, on="account_id", how="left")
            .join(fired, on="account_id", how="left")
            .with_columns(
                typologies=pl.concat_list(
                    pl.col("window").fill_null(pl.lit([], pl.List(pl.String))),
                    pl.col("static").fill_null(pl.lit([], pl.List(pl.String))),
                )
                .list.unique()
                .list.sort(),
                rule_ids=pl.col("rule_ids").fill_null(pl.lit([], pl.List(pl.String))),
                unit=pl.lit(moment.isoformat()),
            )
            .drop("window", "static")
        )
    frame = pl.concat(frames, how="vertical_relaxed").with_columns(label=pl.col("typologies").list.len() > 0)
    frame = frame.sort(["as_of", "account_id"])
    return _finish(store, Level.ACCOUNT, frame, features, fractions, times[-1], models, pack.version if pack else None)


def _numeric(frame: pl.DataFrame, features: tuple[str, ...]) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Models take numbers: text columns (account ids, the channel name) are not features."""
    return frame, tuple(f for f in features if frame.schema[f].is_numeric() or frame.schema[f] == pl.Boolean)


def _finish(
    store: Store,
    level: Level,
    frame: pl.DataFrame,
    features: tuple[str, ...],
    fractions: Sequence[float],
    as_of: dt.datetime,
    models: list[Any],
    rules_version: str | None,
) -> Dataset:
    counts = frame.group_by("unit", maintain_order=True).len().sort("unit")
    split = Split.temporal(counts["unit"].to_list(), counts["len"].to_list(), fractions)
    part = split.part_of()
    frame = frame.with_columns(part=pl.col("unit").replace_strict(part, return_dtype=pl.String))
    keys = KEYS[level]
    frame, features = _numeric(frame, features)
    frame = frame.select([*keys, *features, *META])
    batches = sorted(str(m["batch"]) for m in store.manifests())
    return Dataset(level, frame, features, split, store.manifest_sha256(), batches, feature_catalog(models),
                   as_of, rules_version)  # fmt: skip
