"""The store: hive-partitioned Parquet plus one manifest per ingest batch. This module alone reads and writes it.

Layout::

    store/
      store.json                                  settings fixed at creation (base currency, pseudonym key id)
      manifests/<batch>.json                      written last: the batch's files (sha256, rows) and inputs
      transactions/date=YYYY-MM-DD/<batch>.parquet
      accounts/<batch>.parquet   labels/<batch>.parquet   quarantine/<batch>.parquet
      .staging/<batch>/                           work in progress (never read)

Readers trust manifests only: a file no manifest lists (left by a killed run) is invisible and is removed by the
next ingest. A batch's files are renamed into place before its manifest is written, so the store always shows
either the old or the new complete state.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from finwatch._io import atomic_write_text, fsync_path, sha256_file
from finwatch.exceptions import FinwatchError, StoreError
from finwatch.schema import ACCOUNT_SCHEMA, LABEL_SCHEMA, TRANSACTION_SCHEMA, polars_schema

__all__ = ["QUARANTINE_SCHEMA", "Store", "StoreSettings"]

STORE_FORMAT = 1
TABLES = ("transactions", "accounts", "labels", "quarantine")

QUARANTINE_SCHEMA = pl.Schema(
    {
        "file": pl.String,
        "file_sha256": pl.String,
        "source_format": pl.String,
        "row": pl.Int64,
        "raw": pl.String,
        "reason": pl.String,
    }
)


@dataclass(frozen=True)
class StoreSettings:
    base_currency: str
    pseudonym_key_id: str | None  # fingerprint of the HMAC key, never the key

    def to_json(self) -> dict[str, Any]:
        return {"format": STORE_FORMAT, "base_currency": self.base_currency, "pseudonym_key_id": self.pseudonym_key_id}


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # --- settings and locking ----------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return (self.root / "store.json").is_file()

    def settings(self) -> StoreSettings:
        try:
            data = json.loads((self.root / "store.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"{self.root}: not a finwatch store (store.json missing)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{self.root}/store.json: unreadable ({exc})") from None
        if data.get("format") != STORE_FORMAT:
            raise StoreError(f"{self.root}: store format {data.get('format')!r} is not supported")
        return StoreSettings(data["base_currency"], data.get("pseudonym_key_id"))

    def ensure(self, settings: StoreSettings) -> None:
        """Create the store with ``settings``, or check an existing one was made with the same."""
        if self.exists:
            current = self.settings()
            if current.base_currency != settings.base_currency:
                raise StoreError(
                    f"{self.root}: the store's base currency is {current.base_currency}, not {settings.base_currency}"
                )
            if current.pseudonym_key_id != settings.pseudonym_key_id:
                have = "no pseudonym key" if current.pseudonym_key_id is None else "a different pseudonym key"
                raise StoreError(f"{self.root}: the store was written with {have}; ids would not match")
            return
        if self.root.exists() and any(self.root.iterdir()):
            raise StoreError(f"{self.root}: folder is not empty and is not a finwatch store")
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / "store.json", json.dumps(settings.to_json(), indent=2, sort_keys=True) + "\n")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One writer at a time (an advisory lock on ``store/.lock``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(f"{self.root}: another finwatch process is writing this store") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- manifests ----------------------------------------------------------------------------------------
    def manifests(self) -> list[dict[str, Any]]:
        folder = self.root / "manifests"
        if not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json")):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise StoreError(f"{path}: unreadable manifest ({exc})") from None
        return out

    def ingested_inputs(self) -> dict[str, str]:
        """sha256 of every input file already ingested -> the batch that ingested it."""
        return {i["sha256"]: m["batch"] for m in self.manifests() for i in m["inputs"]}

    def files(self, table: str) -> list[Path]:
        """The Parquet files of ``table`` that manifests vouch for (verified to exist)."""
        if table not in TABLES:
            raise FinwatchError(f"unknown store table {table!r}; tables: {', '.join(TABLES)}")
        out = []
        for manifest in self.manifests():
            for entry in manifest["files"]:
                if entry["table"] == table:
                    path = self.root / entry["path"]
                    if not path.is_file():
                        raise StoreError(f"{path}: listed in manifest {manifest['batch']} but missing")
                    out.append(path)
        return sorted(out)

    def scan(self, table: str) -> pl.LazyFrame:
        """A lazy view of ``table`` over every committed batch (empty with the right schema if none)."""
        schema = {
            "transactions": polars_schema(TRANSACTION_SCHEMA),
            "accounts": polars_schema(ACCOUNT_SCHEMA),
            "labels": polars_schema(LABEL_SCHEMA),
            "quarantine": QUARANTINE_SCHEMA,
        }[table]
        files = self.files(table)
        if not files:
            return pl.LazyFrame(schema=schema)
        return pl.scan_parquet(files, hive_partitioning=False).select(list(schema.names()))

    def verify(self) -> list[str]:
        """Problems found re-hashing every file manifests list (empty when the store is intact)."""
        problems = []
        for manifest in self.manifests():
            for entry in manifest["files"]:
                path = self.root / entry["path"]
                if not path.is_file():
                    problems.append(f"{entry['path']}: missing")
                elif sha256_file(path) != entry["sha256"]:
                    problems.append(f"{entry['path']}: sha256 differs from manifest {manifest['batch']}")
        return problems

    # --- writing a batch ----------------------------------------------------------------------------------
    def staging(self, batch: str) -> Path:
        path = self.root / ".staging" / batch
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def remove_orphans(self) -> list[Path]:
        """Delete files no manifest lists (a killed run's leftovers) and stale staging folders."""
        listed = {self.root / e["path"] for m in self.manifests() for e in m["files"]}
        removed = []
        for table in TABLES:
            folder = self.root / table
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*.parquet")):
                if path not in listed:
                    path.unlink()
                    removed.append(path)
            for sub in sorted(folder.rglob("*"), reverse=True):  # empty partition folders
                if sub.is_dir() and not any(sub.iterdir()):
                    sub.rmdir()
        shutil.rmtree(self.root / ".staging", ignore_errors=True)
        return removed

    def commit(self, batch: str, staged: dict[str, list[tuple[Path, str]]], manifest: dict[str, Any]) -> Path:
        """Move staged files into place, then write the manifest (the commit point) atomically.

        ``staged`` maps a table to ``(staged file, path relative to the store)`` pairs.
        """
        entries: list[dict[str, Any]] = []
        for table, items in sorted(staged.items()):
            for source, relative in items:
                target = self.root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                entries.append(
                    {"table": table, "path": relative, "sha256": sha256_file(source), "rows": _parquet_rows(source)}
                )
                fsync_path(source)
                os.replace(source, target)
        _fsync_dir_tree(self.root, [str(e["path"]) for e in entries])
        manifest = {**manifest, "batch": batch, "files": sorted(entries, key=lambda e: (e["table"], e["path"]))}
        path = self.root / "manifests" / f"{batch}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(self.root / ".staging" / batch, ignore_errors=True)
        return path


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_metadata(path).num_rows)


def _fsync_dir_tree(root: Path, relatives: list[str]) -> None:
    for folder in sorted({(root / r).parent for r in relatives}):
        fsync_path(folder)
