"""What the quarantine keeps of a rejected record's text, and how an authorised analyst reads it back.

A quarantined record's ``raw`` column is kept in one of three forms:

- **clear** (no pseudonym key, no quarantine key): the record's text, as before;
- **withheld** (a pseudonymised store without a quarantine key): :data:`WITHHELD` and the sha256 of the record's
  text, so that each record stays traceable to its bytes (``file_sha256`` + ``row`` + this hash);
- **encrypted** (with a quarantine key, pseudonymised or not): ``aes-256-gcm:`` and base64 of nonce, ciphertext and
  tag. The plaintext is canonical JSON ``{"raw": text, "reason": reason}`` (the reason with the values it quotes,
  which a pseudonymised store otherwise masks). The AES key is HMAC-SHA256(quarantine key, a fixed text), the
  associated data binds the record to its file's sha256 and row (a ciphertext moved to another row does not
  decrypt), and the 12-byte nonce is HMAC-SHA256(another key derived likewise, associated data + sha256 of the
  plaintext): deterministic, so the same inputs and keys give byte-identical stores, and never reused for two
  plaintexts.

:func:`reveal_quarantine` decrypts a store's quarantine with the quarantine key; a wrong key is refused in one line.
The quarantine key is separate from the pseudonym key (the same key for both is refused): an analyst who may read
rejected records need not be able to compute pseudonyms, and the other way round.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import polars as pl
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from finwatch.exceptions import ConfigError
from finwatch.ingest._text import RAW_LIMIT, clip_raw
from finwatch.ingest.pseudonym import mask_quoted
from finwatch.keys import load_secret
from finwatch.store import Store

__all__ = [
    "ENCRYPTED",
    "QUARANTINE_KEY_ENV",
    "WITHHELD",
    "QuarantineSeal",
    "load_quarantine_key",
    "reveal_quarantine",
    "withheld",
]

QUARANTINE_KEY_ENV = "FINWATCH_QUARANTINE_KEY"
#: prefix of an encrypted ``raw``
ENCRYPTED: Final = "aes-256-gcm:"
#: the ``raw`` of a record withheld from a pseudonymised store, before the sha256 of its text
WITHHELD: Final = "(withheld: pseudonymised store) sha256 of the record's text: "
_AES_LABEL = b"finwatch quarantine aes-256-gcm v1"
_NONCE_LABEL = b"finwatch quarantine nonce v1"


def load_quarantine_key(key_file: Path | None, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The quarantine key from ``key_file`` (``--quarantine-key-file``) or ``$FINWATCH_QUARANTINE_KEY``; None when
    neither is set. Weak keys are refused like every secret (:func:`finwatch.keys.load_secret`)."""
    return load_secret("quarantine key", key_file, option="--quarantine-key-file", env=QUARANTINE_KEY_ENV,
                       environ=environ)  # fmt: skip


def withheld(text: str) -> str:
    """The ``raw`` of a withheld record: :data:`WITHHELD` and the sha256 of its text (UTF-8)."""
    return WITHHELD + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _associated(file_sha256: str, row: int) -> bytes:
    return f"finwatch quarantine\x1f{file_sha256}\x1f{row}".encode()


class QuarantineSeal:
    """How one batch keeps quarantined records: clear, withheld or encrypted (see the module)."""

    def __init__(self, key: bytes | None, pseudonymised: bool) -> None:
        self.pseudonymised = pseudonymised
        self._aes = AESGCM(hmac.new(key, _AES_LABEL, hashlib.sha256).digest()) if key is not None else None
        self._nonce_key = hmac.new(key, _NONCE_LABEL, hashlib.sha256).digest() if key is not None else None

    def __repr__(self) -> str:  # never show the key
        return f"QuarantineSeal(mode={self.mode!r})"

    @property
    def mode(self) -> str:
        """``encrypted``, ``withheld`` or ``clear``: what ``raw`` holds."""
        if self._aes is not None:
            return "encrypted"
        return "withheld" if self.pseudonymised else "clear"

    def encrypt(self, file_sha256: str, row: int, raw: str, reason: str) -> str:
        assert self._aes is not None
        assert self._nonce_key is not None
        associated = _associated(file_sha256, row)
        plaintext = json.dumps({"raw": raw, "reason": reason}, sort_keys=True, ensure_ascii=False).encode("utf-8")
        digest = hashlib.sha256(plaintext).digest()
        nonce = hmac.new(self._nonce_key, associated + b"\x1f" + digest, hashlib.sha256).digest()[:12]
        sealed = self._aes.encrypt(nonce, plaintext, associated)
        return ENCRYPTED + base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, file_sha256: str, row: int, raw: str) -> dict[str, str] | None:
        """``{"raw", "reason"}`` of an encrypted ``raw``; None when this key does not decrypt it."""
        assert self._aes is not None
        try:
            data = base64.b64decode(raw.removeprefix(ENCRYPTED), validate=True)
            plaintext = self._aes.decrypt(data[:12], data[12:], _associated(file_sha256, row))
        except (InvalidTag, binascii.Error, ValueError):
            return None
        record = json.loads(plaintext)
        return {"raw": str(record["raw"]), "reason": str(record["reason"])}

    def seal(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Quarantine rows (``file_sha256, row, raw, reason`` among the columns; ``raw`` not yet cut) as the store
        keeps them: clear text cut to ``RAW_LIMIT`` characters; the sha256 of the whole text when withheld; the cut
        text encrypted. In a pseudonymised store the values a reason quotes are masked
        (:func:`finwatch.ingest.pseudonym.mask_quoted`)."""
        if self.mode == "clear" or not frame.height:
            size = pl.col("raw").str.len_chars()
            return frame.with_columns(
                raw=pl.when(size > RAW_LIMIT)
                .then(pl.format("{}… (cut: {} characters)", pl.col("raw").str.slice(0, RAW_LIMIT), size))
                .otherwise(pl.col("raw"))
            )
        raws, reasons = [], []
        for sha, row, raw, reason in frame.select("file_sha256", "row", "raw", "reason").iter_rows():
            text, why = raw if raw is not None else "", reason or ""
            if self.mode == "encrypted":
                raws.append(self.encrypt(sha, int(row), clip_raw(text), why))
            else:
                raws.append(withheld(text))
            reasons.append(mask_quoted(why) if self.pseudonymised else why)
        return frame.with_columns(raw=pl.Series(raws, dtype=pl.String), reason=pl.Series(reasons, dtype=pl.String))


def reveal_quarantine(store: Store, key: bytes) -> pl.DataFrame:
    """The store's quarantine with every encrypted record decrypted with the quarantine ``key``: ``raw`` and
    ``reason`` as the record was rejected (withheld and clear records stay as they are).

    Refused in one line (:class:`ConfigError`) when ``key`` does not decrypt an encrypted record (another key, or a
    changed record), naming the first such record's file and row.
    """
    seal = QuarantineSeal(key, pseudonymised=True)
    frame = store.scan("quarantine").collect()
    raws, reasons = frame["raw"].to_list(), frame["reason"].to_list()
    opened = 0
    for i, (file, sha, row, raw) in enumerate(frame.select("file", "file_sha256", "row", "raw").iter_rows()):
        if raw is None or not raw.startswith(ENCRYPTED):
            continue
        record = seal.decrypt(sha, int(row), raw)
        if record is None:
            what = "its encrypted records" if opened == 0 else "all of its encrypted records"
            raise ConfigError(
                f"{store.root}: the quarantine key given does not decrypt {what} (encrypted with another "
                f"quarantine key, or changed): first refused at {file}, row {row}"
            )
        raws[i], reasons[i] = record["raw"], record["reason"]
        opened += 1
    return frame.with_columns(raw=pl.Series(raws, dtype=pl.String), reason=pl.Series(reasons, dtype=pl.String))
