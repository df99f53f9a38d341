"""Digests and keyed signatures: what makes the registry's models and the runs tamper-evident.

- A **digest** is the sha256 of canonical JSON (keys sorted, no spaces, ASCII): the same content gives the same
  digest whatever the file's formatting. Anyone who can edit the files can also recompute a digest, so a digest
  alone detects accidental and naive changes, not a deliberate forgery.
- A **signature** is HMAC-SHA256 of a digest (or a manifest) under a secret key that finwatch never stores. Nobody
  without the key can make a valid one. The key comes from a file or the environment (:func:`load_signing_key`);
  an empty key, one shorter than :data:`MIN_KEY_BYTES` or one of low entropy is refused (:mod:`finwatch.keys`).
  Each signature records the key's fingerprint (:func:`key_id`), which tells keys apart without revealing them.
- A :class:`Verification` lists the checks made on one model version or run, each passed or failed with the reason.

See docs/security.md for the threat model.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finwatch.keys import MIN_KEY_BYTES, checked, load_secret

__all__ = [
    "ALGORITHM",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "MIN_KEY_BYTES",
    "Check",
    "Verification",
    "canonical_json",
    "check_key",
    "key_id",
    "load_signing_key",
    "sha256_bytes",
    "sign",
    "signature_problem",
]

KEY_ENV = "FINWATCH_SIGNING_KEY"
KEY_FILE_ENV = "FINWATCH_SIGNING_KEY_FILE"
ALGORITHM = "hmac-sha256"


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON: keys sorted, no spaces, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_key(key: bytes, source: str) -> bytes:
    """``key`` if it is good enough to sign with (:func:`finwatch.keys.key_problem`: at least
    :data:`MIN_KEY_BYTES` bytes and 128 bits of estimated entropy); refused (naming ``source``, never the key)."""
    return checked(key, "signing key", source)


def load_signing_key(key_file: Path | None = None, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The signing key: from ``key_file``, else the file ``$FINWATCH_SIGNING_KEY_FILE`` names, else
    ``$FINWATCH_SIGNING_KEY``; None when none is set. Whitespace around the key is ignored; a variable that is set
    but empty, or a key :func:`finwatch.keys.key_problem` refuses (short, low entropy), is refused."""
    return load_secret("signing key", key_file, option="--key-file", env=KEY_ENV, file_env=KEY_FILE_ENV,
                       environ=environ)  # fmt: skip


def key_id(key: bytes) -> str:
    """A fingerprint of ``key`` that tells keys apart without revealing them."""
    return hmac.new(key, b"finwatch signing key id", hashlib.sha256).hexdigest()[:16]


def _mac(key: bytes, purpose: str, payload: bytes) -> str:
    return hmac.new(key, purpose.encode("ascii") + b"\0" + payload, hashlib.sha256).hexdigest()


def sign(key: bytes, purpose: str, payload: bytes) -> dict[str, str]:
    """A signature of ``payload`` for ``purpose`` (``"model"``, ``"run"``: a signature of one never passes as the
    other's): the algorithm, the key's fingerprint and the HMAC."""
    return {"algorithm": ALGORITHM, "key_id": key_id(key), "value": _mac(key, purpose, payload)}


def signature_problem(key: bytes, purpose: str, payload: bytes, signature: Any) -> str | None:
    """None when ``signature`` is ``key``'s signature of ``payload`` for ``purpose``; else what is wrong."""
    if signature is None:
        return "not signed"
    if not isinstance(signature, dict):
        return "the signature is not a signature record"
    if signature.get("algorithm") != ALGORITHM:
        return f"signature algorithm {signature.get('algorithm')!r} is not {ALGORITHM}"
    if signature.get("key_id") != key_id(key):
        return f"signed with key {signature.get('key_id')}, not with the configured key {key_id(key)}"
    if not hmac.compare_digest(_mac(key, purpose, payload), str(signature.get("value", ""))):
        return "the signature does not match the content: changed after signing"
    return None


@dataclass(frozen=True)
class Check:
    """One check: what was checked, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Verification:
    """Every check made on one model version or run (``subject``); it passes when all of them do."""

    subject: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def problems(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]

    def lines(self) -> list[str]:
        """One line per check (``ok`` or ``FAILED``), then the verdict."""
        width = max((len(c.name) for c in self.checks), default=0)
        out = [f"{'ok    ' if c.ok else 'FAILED'}  {c.name:<{width}}  {c.detail}" for c in self.checks]
        failed = len(self.problems)
        out.append(f"{self.subject}: " + ("verified" if not failed else f"{failed} check(s) failed"))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "ok": self.ok,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]}  # fmt: skip
