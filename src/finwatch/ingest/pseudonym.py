"""Keyed-HMAC pseudonyms for account ids and the identifying customer data: stable within a store, meaningless
without the key.

- ``account_id`` and the ids in ``links`` become ``p`` + 24 hex digits of HMAC-SHA256(key, id), as transactions'
  accounts do, so that every table joins on the same pseudonyms.
- The identifying customer fields (:data:`IDENTIFYING`: names, id number, street line, phone) become ``p`` + 24 hex
  digits of HMAC-SHA256(key, field name + unit separator + normalised value): the same value gives the same
  pseudonym in every row of that field (two accounts sharing a phone number or an id number still do), and the
  same text in two fields gives different pseudonyms. Values are normalised first (Unicode NFKC, case folded, runs
  of spaces as one space; a phone number to its digits with a leading ``+``; an id number to its letters and
  digits), so that the same value written differently is still one pseudonym.
- A person's ``birth_date`` keeps its year only (1 January of that year), enough for age bands; a business's date of
  incorporation is kept whole (not personal data, and a young company is a shell-company signal).
- The other columns (``id_type``, ``id_country``, ``postcode``, ``city``, ``country``, ``occupation``, ``status``,
  ``branch``, ``own_client``, …) stay as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import unicodedata
from pathlib import Path
from typing import Final

import polars as pl

from finwatch.exceptions import ConfigError
from finwatch.ingest._base import not_a_file
from finwatch.schema import HolderType

__all__ = ["IDENTIFYING", "KEY_ENV", "Pseudonymizer", "load_key", "normalised"]

KEY_ENV = "FINWATCH_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16
#: account columns replaced by keyed pseudonyms besides ``account_id`` and ``links``
IDENTIFYING: Final = ("holder_name", "given_name", "family_name", "id_number", "address", "phone")
_NOT_ID_CHARACTERS = re.compile(r"[^0-9a-z]")
_NOT_PHONE_DIGITS = re.compile(r"[^0-9]")


def normalised(field: str, value: str) -> str:
    """The form of ``value`` that is pseudonymised: spelling variants of one value become the same text."""
    text = " ".join(unicodedata.normalize("NFKC", value).casefold().split())
    if field == "phone":
        return ("+" if text.startswith("+") else "") + _NOT_PHONE_DIGITS.sub("", text)
    if field == "id_number":
        return _NOT_ID_CHARACTERS.sub("", text)
    return text


def load_key(key_file: Path | None, environ: dict[str, str] | None = None) -> bytes | None:
    """The key from ``key_file`` or, failing that, the environment variable; None when neither is set."""
    env = os.environ if environ is None else environ
    if key_file is not None:
        if problem := not_a_file(Path(key_file)):  # a FIFO or a device would be read forever
            raise ConfigError(f"--pseudonym-key-file {key_file}: {problem}")
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

    def field(self, name: str, value: str) -> str:
        """The pseudonym of a value of the identifying account field ``name``."""
        message = name.encode() + b"\x1f" + normalised(name, value).encode()
        return "p" + hmac.new(self._key, message, hashlib.sha256).hexdigest()[:24]

    def accounts(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Account rows with ids, links and the identifying customer data pseudonymised (see the module)."""
        out = self.columns(frame, ["account_id"]).with_columns(
            links=pl.col("links").list.eval(pl.element().map_elements(self.one, return_dtype=pl.String))
        )
        replaced = []
        for name in IDENTIFYING:
            values = out[name]
            mapping = {v: self.field(name, v) for v in values.drop_nulls().unique().to_list()}
            replaced.append(values.replace_strict(mapping, default=None, return_dtype=pl.String).alias(name))
        person = pl.col("holder_type") == HolderType.PERSON.value
        year_only = pl.date(pl.col("birth_date").dt.year(), 1, 1)
        return out.with_columns(replaced).with_columns(
            birth_date=pl.when(person).then(year_only).otherwise(pl.col("birth_date"))
        )
