"""Keyed-HMAC pseudonyms for account ids: stable within a store, meaningless without the key."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import polars as pl

from finwatch.exceptions import ConfigError

__all__ = ["KEY_ENV", "Pseudonymizer", "load_key"]

KEY_ENV = "FINWATCH_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16


def load_key(key_file: Path | None, environ: dict[str, str] | None = None) -> bytes | None:
    """The key from ``key_file`` or, failing that, the environment variable; None when neither is set."""
    env = os.environ if environ is None else environ
    if key_file is not None:
        try:
            key = Path(key_file).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"--pseudonym-key-file {key_file}: cannot read ({exc.strerror})") from None
        source = str(key_file)
    elif env.get(KEY_ENV):
        key, source = env[KEY_ENV].encode(), f"${KEY_ENV}"
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"pseudonym key from {source} is shorter than {MIN_KEY_BYTES} bytes")
    return key


class Pseudonymizer:
    """Maps account ids to ``p`` + 24 hex digits of HMAC-SHA256(key, id). The key is never stored."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(key_id={self.key_id})"

    @property
    def key_id(self) -> str:
        """A fingerprint that tells keys apart without revealing them."""
        return hmac.new(self._key, b"finwatch key id", hashlib.sha256).hexdigest()[:16]

    def one(self, value: str) -> str:
        return "p" + hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:24]

    def series(self, values: pl.Series) -> pl.Series:
        uniques = values.drop_nulls().unique()
        mapping = {v: self.one(v) for v in uniques.to_list()}
        return values.replace_strict(mapping, default=None, return_dtype=pl.String)

    def columns(self, frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
        return frame.with_columns([self.series(frame[n]).alias(n) for n in names if n in frame.columns])
