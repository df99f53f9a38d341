"""Dated exchange rates: convert exact amounts into the store's base currency (``amount_base``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import polars as pl

from finwatch.exceptions import ConfigError

__all__ = ["DEFAULT_FX", "FxTable"]

DEFAULT_FX = "fx_rates_default.csv"


@dataclass(frozen=True)
class FxTable:
    """Rates as ``date, currency, base, rate`` (rate = units of ``base`` per unit of ``currency``).

    A rate applies from its date until the next one for that currency; a date before a currency's first rate
    uses the first (tables rarely reach back to the oldest record of an export).
    """

    rates: pl.DataFrame  # date, currency, usd (units of the table base per unit), sorted
    table_base: str
    sha256: str
    name: str

    @classmethod
    def load(cls, path: Path | None = None) -> FxTable:
        if path is None:
            data = resources.files("finwatch.data").joinpath(DEFAULT_FX).read_bytes()
            name = f"default ({DEFAULT_FX})"
        else:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise ConfigError(f"--fx {path}: cannot read ({exc.strerror})") from None
            name = str(path)
        try:
            frame = pl.read_csv(
                data, schema={"date": pl.Date, "currency": pl.String, "base": pl.String, "rate": pl.Float64}
            )
        except (pl.exceptions.PolarsError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"FX table {name}: not `date,currency,base,rate` CSV ({first})") from None
        bases = frame["base"].unique().to_list()
        if len(bases) != 1:
            raise ConfigError(f"FX table {name}: one base currency expected, found {sorted(map(str, bases))}")
        bad = frame.filter(pl.col("rate").is_null() | (pl.col("rate") <= 0) | pl.col("date").is_null())
        if bad.height:
            raise ConfigError(f"FX table {name}: {bad.height} row(s) without a positive rate or a date")
        rates = frame.select("date", "currency", "rate").sort(["currency", "date"])
        return cls(rates, str(bases[0]), hashlib.sha256(data).hexdigest(), name)

    @property
    def currencies(self) -> set[str]:
        return set(self.rates["currency"].to_list()) | {self.table_base}

    def rate_to(self, pairs: pl.DataFrame, base: str) -> pl.DataFrame:
        """For ``pairs`` (``date``, ``currency``), add ``rate``: units of ``base`` per unit (null when unknown)."""
        one = self._lookup(pairs)
        if base == self.table_base:
            return one
        target = self._lookup(pairs.select("date").unique().with_columns(currency=pl.lit(base)))
        target = target.select("date", pl.col("rate").alias("base_rate"))
        return one.join(target, on="date", how="left").select(
            "date",
            "currency",
            rate=pl.when(pl.col("currency") == base).then(1.0).otherwise(pl.col("rate") / pl.col("base_rate")),
        )

    def _lookup(self, pairs: pl.DataFrame) -> pl.DataFrame:
        table = pl.concat(
            [
                self.rates,
                pl.DataFrame({"date": [None], "currency": [self.table_base], "rate": [1.0]}, schema=self.rates.schema),
            ]
        )
        keys = pairs.select("date", "currency").unique().sort(["currency", "date"])
        backward = keys.join_asof(
            table.filter(pl.col("date").is_not_null()),
            on="date",
            by="currency",
            strategy="backward",
            check_sortedness=False,
        )
        forward = keys.join_asof(
            table.filter(pl.col("date").is_not_null()),
            on="date",
            by="currency",
            strategy="forward",
            check_sortedness=False,
        )
        found = backward.join(forward.rename({"rate": "rate_after"}), on=["date", "currency"], how="left")
        return found.select(
            "date",
            "currency",
            rate=pl.when(pl.col("currency") == self.table_base).then(1.0).otherwise(pl.coalesce("rate", "rate_after")),
        )
