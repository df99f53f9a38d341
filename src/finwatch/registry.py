"""The model registry: ``<root>/<name>/<version>/{model.ubj, metadata.json, MODEL_CARD.md, version.json}`` and
aliases.

Versions are whole numbers counted up per name. A version folder is written in a staging folder and renamed into
place (:func:`finwatch._io.atomic_directory`), so a reader never sees half a model.
``<root>/<name>/aliases.json`` maps ``champion`` / ``challenger`` to versions.

``version.json`` holds the version's **model digest**: one sha256 over the model's bytes, its complete metadata
(everything scoring uses: calibration, threshold, rule precisions, features) and its card, computed at
registration (:func:`model_digest`). With a signing key configured it also holds an HMAC-SHA256 signature of that
digest (:mod:`finwatch.digest`). Loading checks the files against the sha256 sums in ``metadata.json``, then
recomputes the digest and compares it with ``version.json``, then, with a key configured, checks the signature; a
version that fails any check is refused, naming the file.

The **scoring digest** (:func:`scoring_digest`) covers what scoring reads of a version: the trees and the metadata's
``level``, ``scorer_kind``, ``scorer`` (calibration, threshold, parameters), ``rules`` (the precisions that weigh
the rules) and ``features``. Runs record both digests; the run id and every lead carry the scoring digest, which —
unlike the model digest, whose metadata records training's configuration and paths — is the same for the same
model trained on the same data anywhere.

References: ``NAME`` (the champion if one is set, else the latest), ``NAME@latest``, ``NAME@champion``,
``NAME@challenger``, ``NAME@3`` or ``NAME@v3``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finwatch._io import atomic_directory, atomic_write_text
from finwatch.digest import Check, canonical_json, key_id, load_signing_key, sha256_bytes, sign, signature_problem
from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.model import KINDS, Scorer, scorer_kind

__all__ = [
    "ALIASES",
    "DIGEST_FILE",
    "SCORING_FIELDS",
    "LoadedModel",
    "Registry",
    "RegistryError",
    "VersionCheck",
    "default_root",
    "model_digest",
    "scoring_digest",
]

ALIASES = ("champion", "challenger")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROOT_ENV = "FINWATCH_MODELS"
#: the version's digest (and signature), beside the files it covers
DIGEST_FILE = "version.json"
#: ``registry_format`` in metadata.json: 2 = registered with a version digest (a version without one is refused)
REGISTRY_FORMAT = 2
#: the files a version digest covers, by their part name
MODEL_FILE, METADATA_FILE, CARD_FILE = "model.ubj", "metadata.json", "MODEL_CARD.md"
#: what scoring reads of a version's metadata (besides the trees): the scoring digest covers these
SCORING_FIELDS = ("level", "scorer_kind", "scorer", "rules", "features")


class RegistryError(FinwatchError):
    """A model reference that does not resolve, or a registry file that fails its check."""


def default_root() -> Path:
    return Path(os.environ.get(ROOT_ENV, "models"))


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: int
    path: Path
    scorer: Scorer
    metadata: dict[str, Any]
    digest: str = ""  # the model digest (see the module); runs record it
    signed: bool = False  # its signature was checked with the registry's key
    scoring_digest: str = ""  # what scoring reads of it (see the module); runs and leads record it

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_parts(model: bytes, metadata: dict[str, Any], card: bytes | None) -> dict[str, str | None]:
    """The sha256 of each part a model digest covers: the model's bytes, the canonical JSON of its complete
    metadata, and its card (None when absent)."""
    return {MODEL_FILE: _sha256(model), METADATA_FILE: sha256_bytes(canonical_json(metadata)),
            CARD_FILE: _sha256(card) if card is not None else None}  # fmt: skip


def model_digest(parts: dict[str, str | None]) -> str:
    """One sha256 over a version's parts (:func:`model_parts`)."""
    return sha256_bytes(canonical_json({"format": "finwatch model digest 1", "parts": parts}))


def scoring_digest(model: bytes, metadata: dict[str, Any]) -> str:
    """One sha256 over what scoring reads of a version: the trees and the metadata's :data:`SCORING_FIELDS`."""
    used = {field: metadata.get(field) for field in SCORING_FIELDS}
    return sha256_bytes(canonical_json({"format": "finwatch scoring digest 1", MODEL_FILE: _sha256(model),
                                        METADATA_FILE: used}))  # fmt: skip


@dataclass(frozen=True)
class VersionCheck:
    """Every check of one version (:meth:`Registry.check`) and its digests as its files stand (None: unreadable)."""

    name: str
    version: int
    digest: str | None
    scoring_digest: str | None
    checks: list[Check]


@dataclass(frozen=True)
class _Version:
    """One version's files as read once: the checks and the scorer use these bytes, never a second read."""

    name: str
    version: int
    folder: Path
    files: dict[str, bytes]  # every regular file of the folder by name
    metadata: dict[str, Any] | None
    problem: str | None  # why metadata.json is unusable

    def parts(self) -> dict[str, str | None]:
        return model_parts(self.files.get(MODEL_FILE, b""), self.metadata or {}, self.files.get(CARD_FILE))


class Registry:
    """The registry under ``root`` (default: ``$FINWATCH_MODELS`` or ``./models``).

    ``key`` signs new versions and is required of every version loaded; without one, the key comes from
    :func:`finwatch.digest.load_signing_key` (``$FINWATCH_SIGNING_KEY_FILE`` or ``$FINWATCH_SIGNING_KEY``) unless
    ``key_from_env`` is False. The registry never stores the key.
    """

    def __init__(self, root: Path | None = None, *, key: bytes | None = None, key_from_env: bool = True) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.key = key if key is not None else (load_signing_key() if key_from_env else None)

    def __repr__(self) -> str:  # never show the key
        return f"Registry({str(self.root)!r}, signed={self.key is not None})"

    # --- reading ---------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and NAME.match(p.name) and self.versions(p.name)
        )

    def versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / "metadata.json").is_file())

    def aliases(self, name: str) -> dict[str, int]:
        path = self.root / name / "aliases.json"
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return {str(k): int(v) for k, v in data.items()}
        except (ValueError, TypeError, AttributeError):
            raise RegistryError(f"{path}: not a valid aliases file") from None

    def resolve(self, ref: str) -> tuple[str, int]:
        name, sep, tag = ref.partition("@")
        if not NAME.match(name):
            raise RegistryError(f"{ref!r} is not a model reference (NAME, NAME@latest, NAME@champion or NAME@3)")
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"no model named {name!r} in {self.root} (models: {known})")
        aliases = self.aliases(name)
        if not sep:
            return name, aliases.get("champion", versions[-1])
        if tag == "latest":
            return name, versions[-1]
        if tag in ALIASES:
            if tag not in aliases:
                raise RegistryError(f"{name} has no {tag} (promote one with: finwatch models promote {name}@N {tag})")
            return name, aliases[tag]
        number = tag[1:] if tag[:1] in ("v", "V") else tag
        if not number.isdigit() or int(number) not in versions:
            raise RegistryError(f"{name} has no version {tag!r}; versions: {', '.join(map(str, versions))}")
        return name, int(number)

    def metadata(self, ref: str) -> dict[str, Any]:
        name, version = self.resolve(ref)
        path = self.root / name / str(version) / "metadata.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise RegistryError(f"{path}: not valid JSON") from None
        return data

    def load(self, ref: str) -> LoadedModel:
        """The model ``ref`` names, after checking it (:meth:`check`); the first failed check is refused."""
        name, version = self.resolve(ref)
        read = self._read(name, version)
        checks, scorer = self._checks(read, self.key, strict=False)
        failed = next((c for c in checks if not c.ok), None)
        if failed is not None or scorer is None or read.metadata is None:
            raise RegistryError(failed.detail if failed else f"{read.folder}: cannot be loaded")
        digest = model_digest(read.parts())
        scoring = scoring_digest(read.files[MODEL_FILE], read.metadata)
        return LoadedModel(name, version, read.folder, scorer, read.metadata, digest, self.key is not None, scoring)

    def check(self, ref: str, key: bytes | None = None) -> VersionCheck:
        """Every check of the version ``ref`` names, passed or not, and its digests.

        The checks: metadata.json is readable and names this version; the files match the sha256 sums in it; the
        version digest in version.json matches the files (the changed file named); the signature, with ``key`` or
        the registry's key (without either it is not checked); the scorer loads from the files.
        """
        name, version = self.resolve(ref)
        read = self._read(name, version)
        checks, _scorer = self._checks(read, key if key is not None else self.key, strict=True)
        if read.metadata is None:
            return VersionCheck(name, version, None, None, checks)
        scoring = scoring_digest(read.files.get(MODEL_FILE, b""), read.metadata)
        return VersionCheck(name, version, model_digest(read.parts()), scoring, checks)

    def _read(self, name: str, version: int) -> _Version:
        folder = self.root / name / str(version)
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        path = folder / METADATA_FILE
        try:
            data = json.loads(files.get(METADATA_FILE, b"").decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return _Version(name, version, folder, files, None, f"{path}: not valid JSON")
        if not isinstance(data, dict):
            return _Version(name, version, folder, files, None, f"{path}: not a metadata record")
        if (data.get("name"), data.get("version")) != (name, version):
            where = f"{data.get('name')}@{data.get('version')}"
            return _Version(name, version, folder, files, None, f"{path}: describes {where}, not {name}@{version}")
        return _Version(name, version, folder, files, data, None)

    def _checks(self, read: _Version, key: bytes | None, *, strict: bool) -> tuple[list[Check], Scorer | None]:
        """The checks of one version in order, and its scorer when every check before it passed.

        Not ``strict`` (loading): a version registered before version digests (no ``registry_format`` in its
        metadata, no version.json) passes the digest check while no key is configured.
        """
        folder, meta = read.folder, read.metadata
        checks = [Check("metadata", meta is not None, read.problem or f"{folder / METADATA_FILE}: names this version")]
        if meta is None:
            return checks, None
        checks.append(self._file_sums(folder, read.files, meta))
        checks.append(self._digest_check(read, strict=strict))
        checks.append(self._signature_check(read, key))
        if not all(c.ok for c in checks):
            return checks, None  # bytes that failed a check are not handed to a model loader
        try:
            kind = scorer_kind(str(meta.get("scorer_kind", "xgboost")))  # versions before kinds were recorded: XGBoost
            scorer = kind.from_state(read.files[MODEL_FILE], meta["scorer"])
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            checks.append(Check("scorer", False, f"{folder}: cannot be loaded ({type(exc).__name__}: {exc})"))
            return checks, None
        checks.append(Check("scorer", True, f"{kind.__name__} with {len(scorer.feature_names_)} features"))
        return checks, scorer

    @staticmethod
    def _file_sums(folder: Path, files: dict[str, bytes], meta: dict[str, Any]) -> Check:
        sums = meta.get("files")
        if not isinstance(sums, dict) or MODEL_FILE not in sums:
            return Check("file checksums", False, f"{folder / METADATA_FILE}: lists no file checksums")
        for file, expected in sorted(sums.items()):
            path = folder / file
            if file not in files:
                return Check("file checksums", False, f"{path}: missing")
            actual = _sha256(files[file])
            if actual != expected:
                return Check(
                    "file checksums", False,
                    f"{path}: sha256 {actual[:16]}… differs from the registered {str(expected)[:16]}…; "
                    "the file was changed after registration — refusing to load it",
                )  # fmt: skip
        return Check("file checksums", True, f"{', '.join(sorted(sums))} match metadata.json")

    @staticmethod
    def _digest_check(read: _Version, *, strict: bool) -> Check:
        folder, meta = read.folder, read.metadata or {}
        path = folder / DIGEST_FILE
        parts = read.parts()
        if DIGEST_FILE not in read.files:
            if meta.get("registry_format", 1) != 1:  # registered with a digest, or not by finwatch
                return Check("version digest", False, f"{path}: missing — refusing to load {read.name}@{read.version}")
            detail = f"{path}: none (registered before version digests; Registry.seal adds one)"
            return Check("version digest", not strict, detail)
        try:
            record = json.loads(read.files[DIGEST_FILE].decode("utf-8"))
            recorded, recorded_parts = str(record["model_digest"]), dict(record["parts"])
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
            return Check("version digest", False, f"{path}: not a version digest record")
        changed = [name for name in sorted(parts) if recorded_parts.get(name) != parts[name]]
        if changed:
            files = ", ".join(str(folder / name) for name in changed)
            return Check("version digest", False, f"{files}: changed after registration (no longer matches the "
                         f"version digest in {DIGEST_FILE}) — refusing to load it")  # fmt: skip
        if recorded != model_digest(parts):
            return Check("version digest", False, f"{path}: the digest does not match the parts it lists")
        return Check("version digest", True, f"sha256 {recorded}")

    @staticmethod
    def _signature_check(read: _Version, key: bytes | None) -> Check:
        path = read.folder / DIGEST_FILE
        record: Any = None
        if DIGEST_FILE in read.files:
            try:
                record = json.loads(read.files[DIGEST_FILE].decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                record = None
        signature = record.get("signature") if isinstance(record, dict) else None
        if key is None:
            return Check("signature", True, "present, not checked (no key configured)" if signature else "not signed")
        problem = signature_problem(key, "model", model_digest(read.parts()).encode("ascii"), signature)
        if problem is not None:
            return Check("signature", False, f"{path}: {problem} — refusing to load {read.name}@{read.version}")
        return Check("signature", True, f"valid (key {key_id(key)})")

    # --- writing ---------------------------------------------------------------------------------------------
    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def register(self, name: str, scorer: Scorer, metadata: dict[str, Any], card: str) -> LoadedModel:
        """Store a fitted scorer as the next version of ``name``; returns it as loaded back."""
        if not NAME.match(name):
            raise ConfigError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (up to 64 characters)")
        with self._lock(name):
            for leftover in (self.root / name).glob(".staging-*"):  # registrations killed by earlier releases
                shutil.rmtree(leftover, ignore_errors=True)
            versions = self.versions(name)
            version = (versions[-1] if versions else 0) + 1
            target = self.root / name / str(version)
            if target.exists():  # an unfinished folder of a killed run
                shutil.rmtree(target)
            model = scorer.model_bytes()
            card_bytes = card.replace("{version}", str(version)).encode("utf-8")
            meta = {
                **metadata,
                "name": name,
                "version": version,
                "registry_format": REGISTRY_FORMAT,
                "scorer_kind": next(k for k, cls in KINDS.items() if isinstance(scorer, cls)),
                "scorer": scorer.state(),
                "files": {MODEL_FILE: _sha256(model), CARD_FILE: _sha256(card_bytes)},
            }
            meta_text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
            contents = {MODEL_FILE: model, CARD_FILE: card_bytes, METADATA_FILE: meta_text.encode("utf-8"),
                        DIGEST_FILE: self._digest_record(model, json.loads(meta_text), card_bytes)}  # fmt: skip
            # (a killed registration's staging folder is removed by the next write into the model's folder)
            with atomic_directory(target, marker=METADATA_FILE) as staging:
                for file, data in contents.items():
                    (staging / file).write_bytes(data)
        return self.load(f"{name}@{version}")

    def _digest_record(self, model: bytes, metadata: dict[str, Any], card: bytes | None) -> bytes:
        """version.json: the parts' sha256, the model digest and, with a key, its signature."""
        parts = model_parts(model, metadata, card)
        digest = model_digest(parts)
        record: dict[str, Any] = {"format": 1, "model_digest": digest, "parts": parts}
        if self.key is not None:
            record["signature"] = sign(self.key, "model", digest.encode("ascii"))
        return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")

    def seal(self, ref: str) -> LoadedModel:
        """Write version.json for the version ``ref`` names — its digest and, with a key, its signature — and
        return it loaded back. For a version registered before digests or without a signature, after its files
        passed their checks; a version whose files or digest no longer match is refused, never sealed over. Seal
        only a version you trust: a seal vouches for what the files hold now."""
        name, version = self.resolve(ref)
        with self._lock(name):
            read = self._read(name, version)
            checks, _scorer = self._checks(read, None, strict=False)
            failed = next((c for c in checks if not c.ok), None)
            if failed is not None or read.metadata is None:
                raise RegistryError(failed.detail if failed else f"{read.folder}: cannot be loaded")
            record = self._digest_record(read.files.get(MODEL_FILE, b""), read.metadata, read.files.get(CARD_FILE))
            atomic_write_text(read.folder / DIGEST_FILE, record.decode("utf-8"))
        return self.load(f"{name}@{version}")

    def promote(self, ref: str, alias: str) -> tuple[str, int, int | None]:
        """Point ``alias`` of the model at the version ``ref`` names; returns (name, version, previous)."""
        if alias not in ALIASES:
            raise ConfigError(f"alias {alias!r}: choose {' or '.join(ALIASES)}")
        name, version = self.resolve(ref)
        self.load(f"{name}@{version}")  # refuse to promote a model that fails its checks
        with self._lock(name):
            aliases = self.aliases(name)
            previous = aliases.get(alias)
            aliases[alias] = version
            atomic_write_text(self.root / name / "aliases.json", json.dumps(aliases, indent=2, sort_keys=True) + "\n")
        return name, version, previous
