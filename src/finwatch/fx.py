"""Dated exchange rates: convert exact amounts into a store's base currency (``amount_base``).

A bottom-layer module (it imports nothing of finwatch but its exceptions): ingest converts with an
:class:`FxTable`, and the store keeps the table each batch converted with, so that later stages read the rates
from the store instead of a file that may have moved or changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import polars as pl

from finwatch.exceptions import ConfigError

__all__ = ["DEFAULT_FX", "FX_SCHEMA", "FxTable"]

DEFAULT_FX = "fx_rates_default.csv"

#: columns of an FX table, as the ``--fx`` CSV holds them and as the store keeps them
FX_SCHEMA = pl.Schema({"date": pl.Date, "currency": pl.String, "base": pl.String, "rate": pl.Float64})


@dataclass(frozen=True)
class FxTable:
    """Rates as ``date, currency, base, rate`` (rate = units of ``base`` per unit of ``currency``).

    A rate applies from its date until the next one for that currency; a date before a currency's first rate
    uses the first (tables rarely reach back to the oldest record of an export).
    """

    rates: pl.DataFrame  # date, currency, rate (units of the table base per unit), sorted
    table_base: str
    sha256: str  # of the CSV file the table was read from (what names it in manifests and batch ids)
    name: str

    @classmethod
    def load(cls, path: Path | None = None) -> FxTable:
        """The table in the CSV file ``path``, or the shipped default table when ``path`` is None."""
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
            frame = pl.read_csv(data, schema=FX_SCHEMA)
        except (pl.exceptions.PolarsError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"FX table {name}: not `date,currency,base,rate` CSV ({first})") from None
        return cls.from_frame(frame, name, sha256=hashlib.sha256(data).hexdigest())

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, name: str, sha256: str | None = None) -> FxTable:
        """The table in ``frame`` (columns ``date, currency, base, rate``), e.g. as a store keeps it.

        ``sha256`` names the file the rates came from; without it, the sha256 of the rates written as CSV.
        """
        missing = [c for c in FX_SCHEMA.names() if c not in frame.columns]
        if missing:
            raise ConfigError(f"FX table {name}: missing columns {missing}; expected date, currency, base, rate")
        try:
            frame = frame.select(FX_SCHEMA.names()).cast(FX_SCHEMA)
        except pl.exceptions.PolarsError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"FX table {name}: columns are not date, text, text, number ({first})") from None
        bases = frame["base"].unique().to_list()
        if len(bases) != 1:
            raise ConfigError(f"FX table {name}: one base currency expected, found {sorted(map(str, bases))}")
        bad = frame.filter(pl.col("rate").is_null() | (pl.col("rate") <= 0) | pl.col("date").is_null())
        if bad.height:
            raise ConfigError(f"FX table {name}: {bad.height} row(s) without a positive rate or a date")
        rates = frame.select("date", "currency", "rate").sort(["currency", "date"])
        if sha256 is None:
            sha256 = hashlib.sha256(frame.sort(["currency", "date"]).write_csv().encode()).hexdigest()
        return cls(rates, str(bases[0]), sha256, name)

    def to_frame(self) -> pl.DataFrame:
        """The rates as ``date, currency, base, rate``, sorted by currency and date (what the store keeps)."""
        return self.rates.select("date", "currency", base=pl.lit(self.table_base), rate="rate").cast(FX_SCHEMA)

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
        dated = table.filter(pl.col("date").is_not_null())
        backward, forward = (
            keys.join_asof(dated, on="date", by="currency", strategy=strategy, check_sortedness=False)
            for strategy in ("backward", "forward")
        )
        found = backward.join(forward.rename({"rate": "rate_after"}), on=["date", "currency"], how="left")
        return found.select(
            "date",
            "currency",
            rate=pl.when(pl.col("currency") == self.table_base).then(1.0).otherwise(pl.coalesce("rate", "rate_after")),
        )
