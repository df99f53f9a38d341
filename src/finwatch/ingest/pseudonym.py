"""Keyed-HMAC pseudonyms for account ids, names and the identifying customer data: stable within a store,
meaningless without the key (docs/security.md, "Pseudonymisation policy").

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
- Transactions (:meth:`Pseudonymizer.transactions`): ``src_account`` and ``dst_account`` as account ids;
  ``counterparty_name`` as ``holder_name`` (a counterparty named like an account holder gets the holder's
  pseudonym), followed by the reference words the name holds; ``description`` keeps only its reference words,
  every other stretch of text (names, account numbers, any digit) becoming ``…`` (:class:`ReferenceWords`).
  Reference words are what the features match in those columns: the merchant-name patterns
  (``features/reference/merchant_names.csv``) and the payroll keywords, so features read the same values.
- The key comes from :func:`load_key`, which refuses weak keys (:mod:`finwatch.keys`); a store records a salted
  scrypt hash of it (:func:`finwatch.keys.key_record`), never the key or a fast fingerprint of it.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Final

import polars as pl

from finwatch._paths import reference_root
from finwatch.config import FeatureConfig
from finwatch.keys import MIN_KEY_BYTES, load_secret
from finwatch.schema import HolderType

__all__ = [
    "IDENTIFYING",
    "KEY_ENV",
    "MASK",
    "MIN_KEY_BYTES",
    "Pseudonymizer",
    "ReferenceWords",
    "load_key",
    "mask_quoted",
    "normalised",
    "reference_words",
]

KEY_ENV = "FINWATCH_PSEUDONYM_KEY"
#: what stands for a stretch of masked text in ``description`` and ``counterparty_name``
MASK: Final = "…"
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


def load_key(key_file: Path | None, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The key from ``key_file`` (``--pseudonym-key-file``) or, failing that, ``$FINWATCH_PSEUDONYM_KEY``; None when
    neither is set. A variable set but empty, an unreadable file, and a short or low-entropy key are refused
    (:func:`finwatch.keys.load_secret`). The variable's value is used as it is (whitespace included), as before."""
    return load_secret("pseudonym key", key_file, option="--pseudonym-key-file", env=KEY_ENV, environ=environ,
                       strip_env=False)  # fmt: skip


def reference_words(
    reference_dir: Path | None = None, payroll_keywords: Iterable[str] | None = None
) -> tuple[str, ...]:
    """The words a pseudonymised store keeps in ``description`` and ``counterparty_name``: the merchant-name patterns
    of ``reference_dir`` (default: the shipped ``features/``) and the payroll keywords (default: the features'
    default), i.e. what the feature SQL matches in those columns. Sorted, without duplicates or empty words."""
    keywords = FeatureConfig().payroll_keywords if payroll_keywords is None else tuple(payroll_keywords)
    return tuple(sorted({w for w in (*_merchant_patterns(reference_dir or reference_root()), *keywords) if w.strip()}))


@functools.lru_cache(maxsize=8)
def _merchant_patterns(folder: Path) -> tuple[str, ...]:
    with (folder / "reference" / "merchant_names.csv").open(encoding="utf-8", newline="") as handle:
        return tuple(row["pattern"] for row in csv.DictReader(handle))


class ReferenceWords:
    """Masks text down to its reference words: every occurrence of a word (case-insensitive, as the features'
    ``contains(upper(text), WORD)``) is kept as written, every stretch between them becomes :data:`MASK`.

    For any word of the list, the masked text contains it exactly when the text does (overlapping occurrences are
    kept whole, and :data:`MASK` is in no word), so features that match these words read the same values.
    """

    def __init__(self, words: Iterable[str]) -> None:
        self.words = tuple(sorted({w for w in words if w.strip()}, key=lambda w: (-len(w), w)))
        alternatives = "|".join(re.escape(w) for w in self.words)
        # a lookahead finds an occurrence at every position, the longest word first: overlapping ones included
        self._pattern = re.compile(f"(?=({alternatives}))", re.IGNORECASE) if self.words else None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The stretches of ``text`` that reference words cover, merged, in order."""
        merged: list[tuple[int, int]] = []
        if self._pattern is None:
            return merged
        for found in self._pattern.finditer(text):
            start, end = found.start(1), found.end(1)
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def mask(self, text: str) -> str:
        """``text`` with only its reference words: ``"Gehalt 01/2026 Max Muster"`` → ``"Gehalt…"``."""
        out, position = [], 0
        for start, end in self.spans(text):
            if start > position:
                out.append(MASK)
            out.append(text[start:end])
            position = end
        if position < len(text):
            out.append(MASK)
        return "".join(out)


_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


def mask_quoted(text: str) -> str:
    """``text`` (a quarantine reason, a note) with every quoted value holding a letter or digit replaced by
    ``'…'``: ``unparsable amount 'Jane Doe'`` → ``unparsable amount '…'``. A reason quotes the value that failed;
    in a shifted or hostile record that value may be a name or an account number."""
    return _QUOTED.sub(lambda m: f"{m[0][0]}{MASK}{m[0][0]}" if any(c.isalnum() for c in m[0]) else m[0], text)


class Pseudonymizer:
    """Maps account ids to ``p`` + 24 hex digits of HMAC-SHA256(key, id). The key is never stored."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:  # never show the key, nor a fingerprint one could test guesses against
        return "Pseudonymizer(<key>)"

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

    def text_id(self, value: str) -> str:
        """A keyed stand-in for a whole text (``description``) where only its identity matters (content ids)."""
        return "p" + hmac.new(self._key, b"description\x1f" + value.encode(), hashlib.sha256).hexdigest()[:24]

    def counterparty(self, value: str, words: ReferenceWords) -> str:
        """A counterparty name: the pseudonym ``holder_name`` has for it, then its reference words if it has any
        (``"MOTEL 6 DALLAS"`` → ``"p… MOTEL…"``), so that merchant-name features still match."""
        pseudonym = self.field("holder_name", value)
        return f"{pseudonym} {words.mask(value)}" if words.spans(value) else pseudonym

    def transactions(self, frame: pl.DataFrame, words: ReferenceWords) -> pl.DataFrame:
        """Transactions (``PARSED_SCHEMA`` rows) as a pseudonymised store keeps them (see the module), plus
        ``_content_description``: :meth:`text_id` of the description, what content ids hash in its place."""
        out = self.columns(frame, ["src_account", "dst_account"])
        return out.with_columns(
            _mapped(frame["counterparty_name"], lambda v: self.counterparty(v, words)),
            _mapped(frame["description"], words.mask),
            _mapped(frame["description"], self.text_id).alias("_content_description"),
        )

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


def _mapped(values: pl.Series, function: Callable[[str], str]) -> pl.Series:
    """``function`` of each distinct value (nulls stay null), mapped back onto ``values``."""
    mapping = {v: function(v) for v in values.drop_nulls().unique().to_list()}
    return values.replace_strict(mapping, default=None, return_dtype=pl.String)
