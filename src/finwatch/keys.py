"""Secrets finwatch loads (pseudonym key, quarantine key, signing key): one way to read them, one quality check, and
a salted record that recognises a key without allowing it to be guessed offline.

- :func:`load_secret` reads a key from a file option, else a variable naming a file, else a variable holding the
  key itself; None when none is set. A variable that is set but empty, an unreadable file or anything other than a
  regular file (a FIFO or a device would be read forever) is refused.
- :func:`key_problem` refuses keys shorter than :data:`MIN_KEY_BYTES` or with an estimated entropy below
  :data:`MIN_KEY_BITS` (length × the empirical Shannon entropy of its bytes: ``aaaa…`` has none, a hex string
  about 3.9 bits a character). Every refusal is one line naming where the key came from (never the key) and how to
  make a good one (:data:`MAKE_ONE`).
- :func:`key_record` gives ``scrypt$n$r$p$salt$hash`` (a random 16-byte salt; scrypt costs about 0.1 s and 32 MiB a
  guess), which :func:`key_matches` checks by recomputing with the stored salt. It also accepts the unsalted
  fingerprint stores were created with before (16 hex digits of HMAC-SHA256(key, "finwatch key id")).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import secrets
import stat
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from finwatch.exceptions import ConfigError

__all__ = [
    "MAKE_ONE",
    "MIN_KEY_BITS",
    "MIN_KEY_BYTES",
    "entropy_bits",
    "key_matches",
    "key_problem",
    "key_record",
    "legacy_key_id",
    "load_secret",
]

#: 256 bits: HMAC-SHA256's own strength (``secrets.token_hex(32)`` prints 64 characters)
MIN_KEY_BYTES = 32
#: the least estimated entropy of a key (length × empirical Shannon entropy per byte)
MIN_KEY_BITS = 128
MAKE_ONE = 'make one with: python3 -c "import secrets; print(secrets.token_hex(32))"'
#: scrypt's cost: N (CPU and memory), r (block size), p (parallelism): 32 MiB and about 0.1 s per key tried
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_LEGACY = re.compile(r"[0-9a-f]{16}")
_RECORD = re.compile(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([0-9a-f]{32})\$([0-9a-f]{64})")


def entropy_bits(key: bytes) -> float:
    """The key's estimated entropy: its length × the empirical Shannon entropy of its bytes (in bits)."""
    if not key:
        return 0.0
    counts = Counter(key)
    per_byte = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values())
    return max(0.0, len(key) * per_byte)


def key_problem(key: bytes) -> str | None:
    """Why ``key`` is not good enough to be a secret of finwatch (empty, short, low entropy), or None."""
    if not key:
        return "is empty"
    if len(key) < MIN_KEY_BYTES:
        return f"is shorter than {MIN_KEY_BYTES} bytes ({len(key)} bytes)"
    bits = entropy_bits(key)
    if bits < MIN_KEY_BITS:
        return f"has too little entropy (about {bits:.0f} bits estimated, at least {MIN_KEY_BITS} needed)"
    return None


def checked(key: bytes, what: str, source: str) -> bytes:
    """``key`` if :func:`key_problem` finds nothing; else one line naming ``what`` and ``source``, never the key."""
    if problem := key_problem(key):
        raise ConfigError(f"{what} from {source} {problem}; {MAKE_ONE}")
    return key


def load_secret(
    what: str,
    key_file: Path | None,
    *,
    option: str,
    env: str,
    file_env: str | None = None,
    environ: Mapping[str, str] | None = None,
    strip_env: bool = True,
) -> bytes | None:
    """The secret ``what`` (e.g. ``"pseudonym key"``): from ``key_file`` (the command-line ``option``), else the file
    the variable ``file_env`` names, else the variable ``env``; None when none is set.

    Whitespace around a key read from a file is ignored (and around the variable's, unless ``strip_env`` is false).
    A variable that is set but empty is refused, as is a file that is not a regular file or cannot be read, and any
    key :func:`key_problem` refuses: one line naming the option, file or variable and the reason.
    """
    environ = os.environ if environ is None else environ
    for name in (file_env, env):
        if key_file is None and name is not None and name in environ and not environ[name].strip():
            raise ConfigError(f"${name} is set but empty: unset it or give a {what} ({MAKE_ONE})")
    source = f"{option} {key_file}"
    if key_file is None and file_env is not None and file_env in environ:
        key_file, source = Path(environ[file_env]), f"${file_env} ({environ[file_env]})"
    if key_file is not None:
        return checked(_read_key_file(Path(key_file), what, source), what, source)
    if env in environ:
        value = environ[env].strip() if strip_env else environ[env]
        return checked(value.encode("utf-8"), what, f"${env}")
    return None


def _read_key_file(path: Path, what: str, source: str) -> bytes:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f"{what} file {source}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):  # a FIFO or a device would be read forever
        raise ConfigError(f"{what} file {source}: not a regular file")
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{what} file {source}: cannot read ({exc.strerror or exc})") from None


def legacy_key_id(key: bytes) -> str:
    """The unsalted fingerprint stores recorded before key records (kept only to recognise such stores)."""
    return hmac.new(key, b"finwatch key id", hashlib.sha256).hexdigest()[:16]


def _scrypt(key: bytes, salt: bytes, n: int, r: int, p: int) -> str:
    return hashlib.scrypt(key, salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32).hex()


def key_record(key: bytes, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$<salt hex>$<hash hex>`` of ``key`` with a random 16-byte salt (or ``salt``)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${_scrypt(key, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)}"


def is_key_record(record: str) -> bool:
    """Whether ``record`` is a key record or an old-style fingerprint :func:`key_matches` can check."""
    return bool(_RECORD.fullmatch(record) or _LEGACY.fullmatch(record))


def key_matches(key: bytes, record: str) -> bool:
    """Whether ``record`` (:func:`key_record`, or an old unsalted fingerprint) was made from ``key``.

    Raises ``ValueError`` for a record of neither form, or with scrypt parameters beyond what finwatch would use.
    """
    if _LEGACY.fullmatch(record):
        return hmac.compare_digest(legacy_key_id(key), record)
    found = _RECORD.fullmatch(record)
    if not found:
        raise ValueError("not a key record (scrypt$N$r$p$salt$hash) or a 16-digit key fingerprint")
    n, r, p = (int(found[i]) for i in (1, 2, 3))
    if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16 or n * r * 128 > _SCRYPT_MAXMEM:
        raise ValueError(f"scrypt parameters N={n}, r={r}, p={p} are out of range")
    return hmac.compare_digest(_scrypt(key, bytes.fromhex(found[4]), n, r, p), found[5])
