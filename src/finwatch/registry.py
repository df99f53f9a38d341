"""The model registry: ``<root>/<name>/<version>/{model.ubj, metadata.json, MODEL_CARD.md}`` and aliases.

Versions are whole numbers counted up per name. A version folder is written in a staging folder and renamed into
place (metadata last inside it), so a reader never sees half a model. ``<root>/<name>/aliases.json`` maps
``champion`` / ``challenger`` to versions. Loading checks the sha256 of ``model.ubj`` and ``MODEL_CARD.md``
against ``metadata.json`` and refuses a file that differs.

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

from finwatch._io import atomic_write_text
from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.model import KINDS, Scorer, scorer_kind

__all__ = ["ALIASES", "LoadedModel", "Registry", "RegistryError", "default_root"]

ALIASES = ("champion", "challenger")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROOT_ENV = "FINWATCH_MODELS"


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

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Registry:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

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
        """The model ``ref`` names, after checking its files against the sha256 sums in its metadata."""
        name, version = self.resolve(ref)
        folder = self.root / name / str(version)
        meta = self.metadata(f"{name}@{version}")
        files = meta.get("files")
        if not isinstance(files, dict) or "model.ubj" not in files:
            raise RegistryError(f"{folder / 'metadata.json'}: lists no file checksums")
        for file, expected in sorted(files.items()):
            path = folder / file
            if not path.is_file():
                raise RegistryError(f"{path}: missing")
            actual = _sha256(path.read_bytes())
            if actual != expected:
                raise RegistryError(
                    f"{path}: sha256 {actual[:16]}… differs from the registered {str(expected)[:16]}…; "
                    "the file was changed after registration — refusing to load it"
                )
        kind = scorer_kind(str(meta.get("scorer_kind", "xgboost")))  # versions before kinds were recorded: XGBoost
        try:
            scorer = kind.from_state((folder / "model.ubj").read_bytes(), meta["scorer"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"{folder}: cannot be loaded ({type(exc).__name__}: {exc})") from None
        return LoadedModel(name, version, folder, scorer, meta)

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
            versions = self.versions(name)
            version = (versions[-1] if versions else 0) + 1
            target = self.root / name / str(version)
            if target.exists():  # an unfinished folder of a killed run
                shutil.rmtree(target)
            staging = self.root / name / f".staging-{version}-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            model = scorer.model_bytes()
            (staging / "model.ubj").write_bytes(model)
            card_text = card.replace("{version}", str(version))
            (staging / "MODEL_CARD.md").write_text(card_text, encoding="utf-8")
            meta = {
                **metadata,
                "name": name,
                "version": version,
                "scorer_kind": next(k for k, cls in KINDS.items() if isinstance(scorer, cls)),
                "scorer": scorer.state(),
                "files": {"model.ubj": _sha256(model), "MODEL_CARD.md": _sha256(card_text.encode())},
            }
            (staging / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            for path in staging.iterdir():
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
            os.rename(staging, target)
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
