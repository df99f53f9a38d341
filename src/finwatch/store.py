"""The store: hive-partitioned Parquet plus one manifest per ingest batch. This module alone reads and writes it.

Layout::

    store/
      store.json                                  settings fixed at creation (base currency, pseudonym key record)
      manifests/<batch>.json                      written last: the batch's files (sha256, rows) and inputs
      transactions/date=YYYY-MM-DD/<batch>.parquet
      accounts/<batch>.parquet   labels/<batch>.parquet   quarantine/<batch>.parquet
      fx/<batch>.parquet                          the FX table the batch's amount_base were converted with
      .staging/<batch>/                           work in progress (never read)

Readers trust manifests only: a file no manifest lists (left by a killed run) is invisible and is removed by the
next ingest. A batch's files are renamed into place before its manifest is written, so the store always shows
either the old or the new complete state. A :class:`Store` object reads the manifests once and keeps them until
they change (its own :meth:`Store.commit`, or another writer's manifest appearing), so one object can be passed
through a whole run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from finwatch._io import atomic_write_text, fsync_path, remove_leftovers, sha256_file
from finwatch.exceptions import ConfigError, FinwatchError, SchemaError, StoreError
from finwatch.faults import checkpoint
from finwatch.fx import FX_SCHEMA, FxTable
from finwatch.keys import key_matches, key_record
from finwatch.schema import ACCOUNT_SCHEMA, LABEL_SCHEMA, TRANSACTION_SCHEMA, conform, polars_schema

__all__ = ["QUARANTINE_SCHEMA", "TABLES", "Store", "StoreSettings", "write_partitions"]

STORE_FORMAT = 1
TABLES = ("transactions", "accounts", "labels", "quarantine", "fx")
#: Parquet settings: pyarrow's for the small tables, Polars' for the (large) transaction partitions
PARQUET: dict[str, Any] = {"compression": "zstd", "compression_level": 3}
PARQUET_POLARS: dict[str, Any] = {"compression": "zstd", "compression_level": 1, "statistics": True}
_BATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_OWN = {".lock", ".staging"}  # what a store folder holds while a first batch is being written

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
    """A store's settings. ``pseudonym_key_id`` is what ``store.json`` records of the pseudonym key: a salted scrypt
    hash (:func:`finwatch.keys.key_record`), or the unsalted fingerprint of stores created before; never the key.
    ``pseudonym_key`` is the key itself, given by ingest to check against a store (never written, never shown)."""

    base_currency: str
    pseudonym_key_id: str | None
    pseudonym_key: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def pseudonymised(self) -> bool:
        return self.pseudonym_key is not None or self.pseudonym_key_id is not None

    def to_json(self) -> dict[str, Any]:
        """``store.json``: with a key, a new key record (a fresh random salt)."""
        record = key_record(self.pseudonym_key) if self.pseudonym_key is not None else self.pseudonym_key_id
        return {"format": STORE_FORMAT, "base_currency": self.base_currency, "pseudonym_key_id": record}


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # the manifests as read, and the listing of manifests/ (names and inodes) they were read from
        self._manifests: tuple[tuple[tuple[str, int], ...], list[dict[str, Any]]] | None = None
        # fx_in_use(), for that listing
        self._fx: tuple[tuple[tuple[str, int], ...], tuple[FxTable, str] | None] | None = None

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

    def check(self, settings: StoreSettings) -> None:
        """Check that batches written with ``settings`` may go into this store; writes nothing.

        An existing store must have the same settings; a folder that is not a store must be empty (but for a lock
        file or a staging folder a killed first ingest left behind).
        """
        if self.exists:
            current = self.settings()
            if current.base_currency != settings.base_currency:
                raise StoreError(
                    f"{self.root}: the store's base currency is {current.base_currency}, not {settings.base_currency}"
                )
            if not _same_key(current, settings, self.root):
                if current.pseudonym_key_id is None:
                    have = "no pseudonym key"
                elif not settings.pseudonymised:
                    have = "a pseudonym key and none is given"
                else:
                    have = "a different pseudonym key"
                raise StoreError(f"{self.root}: the store was written with {have}; ids would not match")
            return
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root}: not a folder")
        if self.root.exists() and any(p.name not in _OWN for p in self.root.iterdir()):
            raise StoreError(f"{self.root}: folder is not empty and is not a finwatch store")

    def ensure(self, settings: StoreSettings) -> None:
        """Create the store with ``settings``, or check an existing one was made with the same."""
        self.check(settings)
        if not self.exists:
            self._create(settings)

    def _create(self, settings: StoreSettings) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / "store.json", json.dumps(settings.to_json(), indent=2, sort_keys=True) + "\n")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One writer at a time (an advisory lock on ``store/.lock``).

        When the store did not exist and nothing was committed while the lock was held (no ``store.json``), the
        lock file and the folders made for it are removed again: a refused first ingest leaves nothing behind.
        """
        made = [p for p in (self.root, *self.root.parents) if not p.exists()]  # the folders mkdir will make
        was_store = self.exists
        self.root.mkdir(parents=True, exist_ok=True)
        lock_file = self.root / ".lock"
        made_lock = not lock_file.exists()
        with lock_file.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(f"{self.root}: another finwatch process is writing this store") from None
            try:
                yield
            finally:
                if not was_store and not self.exists:
                    shutil.rmtree(self.root / ".staging", ignore_errors=True)
                    if made_lock:
                        lock_file.unlink(missing_ok=True)
                    for sub in sorted(self.root.rglob("*"), reverse=True):  # the empty folders of a failed commit
                        if sub.is_dir() and not any(sub.iterdir()):
                            sub.rmdir()
                    for folder in made:  # deepest first; a folder someone else filled meanwhile stays
                        try:
                            folder.rmdir()
                        except OSError:
                            break
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- manifests ----------------------------------------------------------------------------------------
    def manifests(self) -> list[dict[str, Any]]:
        """Every committed batch's manifest, in batch id order (read-only: the dicts are shared).

        Read once per object: later calls list ``manifests/`` (names and inodes, no file is opened) and read
        again only when that changed, i.e. after this object's :meth:`commit` or another writer's commit (a
        manifest is replaced by a rename, so a rewritten one has a new inode).
        """
        folder = self.root / "manifests"
        listing = _listing(folder)
        if self._manifests is not None and self._manifests[0] == listing:
            return list(self._manifests[1])
        out = []
        for name, _inode in listing:
            path = folder / name
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise StoreError(f"{path}: unreadable manifest ({exc})") from None
        self._manifests = (listing, out)
        return list(out)

    def ingested_inputs(self) -> dict[str, str]:
        """sha256 of every input file already ingested -> the batch that ingested it."""
        return {i["sha256"]: m["batch"] for m in self.manifests() for i in m["inputs"]}

    def manifest_sha256(self) -> str:
        """One hash naming the exact data in the store: the same content gives the same hash wherever it came from.

        It covers, per committed batch (in batch id order): the batch id (itself a hash of the inputs' content and
        the ingest settings), every stored file's table, store-relative path, row count and sha256, each input's
        sha256 and format, the base currency, the sha256 of the FX table and whether ids are pseudonymised. It
        never sees the names or paths of the input files or of the FX table, which manifests also hold: the same
        files ingested from another folder give the same hash. The one stored table that names its input files is
        the quarantine (its ``file`` column, so that a bad row can be found); its files count by table, path and
        rows only: their content is fixed by the inputs' sha256 and the batch id, which are hashed.
        """
        batches = []
        for manifest in sorted(self.manifests(), key=lambda m: str(m["batch"])):
            fx = manifest.get("fx_table") or {}
            files = [
                {"table": e["table"], "path": e["path"], "rows": e["rows"],
                 "sha256": None if e["table"] == "quarantine" else e["sha256"]}
                for e in manifest["files"]
            ]  # fmt: skip
            inputs = [{"sha256": i["sha256"], "format": i.get("format")} for i in manifest["inputs"]]
            batches.append(
                {
                    "batch": manifest["batch"],
                    "files": sorted(files, key=lambda e: (str(e["table"]), str(e["path"]))),
                    "inputs": sorted(inputs, key=lambda i: (str(i["sha256"]), str(i["format"]))),
                    "base_currency": manifest.get("base_currency"),
                    "fx_table_sha256": fx.get("sha256"),
                    "pseudonymised": manifest.get("pseudonymised"),
                }
            )
        text = json.dumps(batches, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()

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

    def scan(self, table: str, *, history: bool = False) -> pl.LazyFrame:
        """A lazy view of ``table`` over every committed batch (empty with the right schema if none).

        Files written before a column was added to the canonical schema (accounts before schema version 2 had no
        customer-data columns) read with that column as nulls of its type; columns the schema no longer has are
        ignored.

        Accounts: the rows of an ``account_id`` in the newest batch holding it (commit order, the manifests'
        ``sequence``) supersede its rows in earlier batches, all columns and all holders at once; ingest already
        kept only the last file's rows of an account within one batch. ``history=True`` returns every batch's
        rows instead. Other tables are the union of their batches either way.
        """
        schema = _schema(table)
        files = self.files(table)
        if not files:
            return pl.LazyFrame(schema=schema)
        options: dict[str, Any] = {
            "hive_partitioning": False,
            "schema": schema,
            "missing_columns": "insert",
            "extra_columns": "ignore",
            "glob": False,
        }  # paths as named, never patterns
        if table != "accounts" or history:
            return pl.scan_parquet(files, **options).select(list(schema.names()))
        rank = {
            self.root / entry["path"]: position
            for position, manifest in enumerate(sorted(self.manifests(), key=_newest))
            for entry in manifest["files"]
            if entry["table"] == table
        }
        ranked = [pl.scan_parquet(f, **options).with_columns(_rank=pl.lit(rank[f], pl.Int64)) for f in files]
        return (
            pl.concat(ranked, how="vertical")
            .filter(pl.col("_rank") == pl.col("_rank").max().over("account_id"))
            .select(list(schema.names()))
        )

    def fx_table(self) -> FxTable:
        """The FX table the store's amounts were converted with: the one the newest converting batch recorded.

        Batches committed before the store kept FX tables (no ``fx`` file) recorded only the table's name: the
        shipped default table is returned when every such batch with transactions used it; otherwise the rates
        are lost and :class:`StoreError` says so. A store without transactions gives the shipped default.
        """
        in_use = self.fx_in_use()
        return in_use[0] if in_use is not None else FxTable.load()

    def fx_in_use(self) -> tuple[FxTable, str] | None:
        """The FX table the store's amounts were converted with and the batch that recorded it (the newest).

        None when no batch converted amounts (no transactions yet): any table may then be the store's. Ingest
        converts every batch with this table (:mod:`finwatch.ingest`); see :meth:`fx_table` for old stores.
        """
        manifests = self.manifests()
        listing = self._manifests[0] if self._manifests is not None else ()
        if self._fx is not None and self._fx[0] == listing:
            return self._fx[1]
        recorded = [m for m in manifests if any(e["table"] == "fx" for e in m["files"])]
        converting = [m for m in manifests if any(e["table"] == "transactions" for e in m["files"])]
        in_use: tuple[FxTable, str] | None = None
        if recorded:
            newest = max(recorded, key=_newest)
            in_use = (self._read_fx(newest), str(newest["batch"]))
        elif converting:
            in_use = (self._fx_before_stored_tables(manifests), str(max(converting, key=_newest)["batch"]))
        self._fx = (listing, in_use)
        return in_use

    def _fx_before_stored_tables(self, manifests: list[dict[str, Any]]) -> FxTable:
        """The shipped default, when every batch that converted amounts says it used it."""
        for manifest in manifests:  # batches older than the fx table
            if not any(e["table"] == "transactions" for e in manifest["files"]):
                continue
            name = str((manifest.get("fx_table") or {}).get("name") or "")
            if not name.startswith("default"):
                raise StoreError(
                    f"{self.root}: batch {manifest['batch']} converted amounts with the FX table "
                    f"{name or '(unnamed)'}, which this store does not record (it predates stored FX tables); "
                    "re-ingest its inputs into a new store with --fx"
                )
        return FxTable.load()

    def _read_fx(self, manifest: dict[str, Any]) -> FxTable:
        entry = next(e for e in manifest["files"] if e["table"] == "fx")
        path = self.root / entry["path"]
        described = manifest.get("fx_table") or {}
        name = str(described.get("name") or f"of batch {manifest['batch']}")
        try:
            frame = pl.read_parquet(path, glob=False)
            return FxTable.from_frame(frame, name, described.get("sha256"))
        except FileNotFoundError:
            raise StoreError(f"{path}: listed in manifest {manifest['batch']} but missing") from None
        except (pl.exceptions.PolarsError, OSError, ConfigError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"{path}: the FX table of batch {manifest['batch']} is unreadable ({first})") from None

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

    # --- writing a batch (the caller holds lock()) --------------------------------------------------------
    def staging(self, batch: str) -> Path:
        _check_batch(batch)
        path = self.root / ".staging" / batch
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def remove_orphans(self) -> list[Path]:
        """Delete files no manifest lists (a killed run's leftovers), stale staging folders and the temporary files
        of a manifest or ``store.json`` write that was killed (the caller holds :meth:`lock`)."""
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
                    checkpoint("store.remove_orphans:removed", path)
            for sub in sorted(folder.rglob("*"), reverse=True):  # empty partition folders
                if sub.is_dir() and not any(sub.iterdir()):
                    sub.rmdir()
        for folder in (self.root, self.root / "manifests"):
            if folder.is_dir():
                removed += remove_leftovers(folder)
        if (self.root / ".staging").exists():
            shutil.rmtree(self.root / ".staging", ignore_errors=True)
            checkpoint("store.remove_orphans:staging", self.root / ".staging")
        return removed

    def write_batch(self, batch: str, tables: Mapping[str, pl.DataFrame], manifest: dict[str, Any]) -> Path:
        """Write ``tables`` as the batch ``batch`` and commit it (manifest last); returns the manifest's path.

        ``tables`` maps store tables to frames: transactions are written one file per day
        (:func:`write_partitions`), accounts and labels conformed to their canonical schemas, quarantine to
        :data:`QUARANTINE_SCHEMA`, fx as ``date, currency, base, rate``. An empty frame writes no file.
        ``manifest`` holds what describes the batch (inputs, base currency, ``fx_table`` name and sha256…);
        ``batch``, ``sequence`` and ``files`` are added.
        """
        unknown = sorted(set(tables) - set(TABLES))
        if unknown:
            raise FinwatchError(f"batch {batch}: unknown store table(s) {unknown}; tables: {', '.join(TABLES)}")
        staging = self.staging(batch)
        staged: dict[str, list[tuple[Path, str]]] = {}
        for table in TABLES:
            frame = tables.get(table)
            if frame is None or frame.is_empty():
                continue
            what = f"batch {batch}, table {table}"
            if table == "transactions":
                parts = write_partitions(frame, staging / table, what)
                staged[table] = [(p, f"{table}/{p.stem}/{batch}.parquet") for p in parts]
            else:
                target = staging / f"{table}.parquet"
                pq.write_table(_conformed(table, frame, what), target, **PARQUET)
                staged[table] = [(target, f"{table}/{batch}.parquet")]
        return self.commit(batch, staged, manifest)

    def commit(
        self,
        batch: str,
        staged: dict[str, list[tuple[Path, str]]],
        manifest: dict[str, Any],
        settings: StoreSettings | None = None,
    ) -> Path:
        """Move staged files into place, then write the manifest (the commit point) atomically.

        ``staged`` maps a table to ``(staged file, path relative to the store)`` pairs. The manifest gets the
        batch id, the files with their sha256 and rows, and ``sequence``: 1 + the highest of the other batches,
        which orders batches by commit (batch ids are hashes), with no clock involved. A new store gets its
        ``store.json`` (``settings``) first, written in the batch's staging folder and renamed into place: a commit
        killed after that leaves a store without the batch, whose files the next ingest removes (killed before, a
        folder holding no more than the lock and the staging folder, which is no store yet). When anything fails
        before the manifest is written, the files moved into place (and a ``store.json`` written now) are removed
        again and the error raised.
        """
        _check_batch(batch)
        sequence = 1 + max((int(m.get("sequence", 0)) for m in self.manifests() if m["batch"] != batch), default=0)
        entries: list[dict[str, Any]] = []
        moved: list[Path] = []
        created = False
        checkpoint("store.commit:staged", self.root / ".staging" / batch)
        try:
            if settings is not None and not self.exists:
                # first: files moved into a folder without store.json would make it "not a store" to the next ingest
                beside = self.root / ".staging" / batch
                Store(beside)._create(settings)  # (its temporary file in the staging folder too)
                os.replace(beside / "store.json", self.root / "store.json")
                created = True
                fsync_path(self.root)
                checkpoint("store.commit:store-json", self.root / "store.json")
            for table, items in sorted(staged.items()):
                for source, relative in items:
                    target = self.root / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    entries.append(
                        {"table": table, "path": relative, "sha256": sha256_file(source),
                         "rows": _parquet_rows(source)}
                    )  # fmt: skip
                    fsync_path(source)
                    os.replace(source, target)
                    moved.append(target)
                    checkpoint("store.commit:moved", target)
            _fsync_dir_tree(self.root, [str(e["path"]) for e in entries])
            manifest = {**manifest, "batch": batch, "sequence": sequence,
                        "files": sorted(entries, key=lambda e: (e["table"], e["path"]))}  # fmt: skip
            path = self.root / "manifests" / f"{batch}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        except BaseException:
            for target in moved:  # not committed: no file of this batch stays where readers look
                target.unlink(missing_ok=True)
            if created:
                (self.root / "store.json").unlink(missing_ok=True)
            raise
        finally:
            self._manifests = None
        shutil.rmtree(self.root / ".staging" / batch, ignore_errors=True)
        checkpoint("store.commit:done", self.root / ".staging" / batch)
        return path


def write_partitions(frame: pl.DataFrame, folder: Path, what: str) -> list[Path]:
    """Canonical transactions, sorted by time and id, one Parquet file per day: ``date=YYYY-MM-DD.parquet``.

    Returns the files written, in date order. Raises :class:`SchemaError` naming ``what`` when a required column
    holds nulls.
    """
    expected = polars_schema(TRANSACTION_SCHEMA)
    frame = frame.select(expected.names()).cast(expected).sort(["ts", "txn_id"])
    for column in (f.name for f in TRANSACTION_SCHEMA if not f.nullable):
        if frame[column].null_count():
            raise SchemaError(f"{what}: column {column!r} has nulls")
    folder.mkdir(parents=True, exist_ok=True)
    days = frame["ts"].dt.date()
    bounds = days.rle().struct.unnest()
    offset = 0
    written = []
    for day, length in zip(bounds["value"].to_list(), bounds["len"].to_list(), strict=True):
        path = folder / f"date={day:%Y-%m-%d}.parquet"
        frame.slice(offset, length).write_parquet(path, **PARQUET_POLARS)
        written.append(path)
        offset += length
    return written


def _schema(table: str) -> pl.Schema:
    if table not in TABLES:
        raise FinwatchError(f"unknown store table {table!r}; tables: {', '.join(TABLES)}")
    return {
        "transactions": polars_schema(TRANSACTION_SCHEMA),
        "accounts": polars_schema(ACCOUNT_SCHEMA),
        "labels": polars_schema(LABEL_SCHEMA),
        "quarantine": QUARANTINE_SCHEMA,
        "fx": FX_SCHEMA,
    }[table]


def _conformed(table: str, frame: pl.DataFrame, what: str) -> pa.Table:
    """``frame`` as the stored table ``table`` (not transactions, which are written by day)."""
    if table == "accounts":
        return conform(frame, ACCOUNT_SCHEMA, what=what)
    if table == "labels":
        return conform(frame, LABEL_SCHEMA, what=what)
    if table == "fx":
        return FxTable.from_frame(frame, what).to_frame().to_arrow()
    schema = _schema(table)
    missing = [c for c in schema.names() if c not in frame.columns]
    if missing:
        raise SchemaError(f"{what}: missing columns {missing}")
    try:
        return frame.select(schema.names()).cast(schema).to_arrow()
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SchemaError(f"{what}: columns cannot be read as {dict(schema)} ({first})") from None


def _same_key(current: StoreSettings, given: StoreSettings, root: Path) -> bool:
    """Whether ``given`` has the pseudonym key (or the absence of one) that ``current`` (the store's) records."""
    record = current.pseudonym_key_id
    if record is None or not given.pseudonymised:
        return record is None and not given.pseudonymised
    if given.pseudonym_key is None:  # records compared as they are (settings read from another store.json)
        return record == given.pseudonym_key_id
    try:
        return key_matches(given.pseudonym_key, record)
    except ValueError as exc:
        raise StoreError(f"{root}/store.json: pseudonym_key_id is unreadable ({exc})") from None


def _newest(manifest: dict[str, Any]) -> tuple[int, str]:
    return int(manifest.get("sequence", 0)), str(manifest["batch"])


def _check_batch(batch: str) -> None:
    if not _BATCH_ID.fullmatch(batch):
        raise FinwatchError(f"batch id {batch!r}: use letters, digits, '_', '.' and '-' (not first)")


def _listing(folder: Path) -> tuple[tuple[str, int], ...]:
    """The manifests in ``folder`` by name, with their inodes (a manifest rewritten by a rename gets a new one)."""
    try:
        with os.scandir(folder) as entries:
            found = [(e.name, e.inode()) for e in entries if e.name.endswith(".json") and e.is_file()]
    except FileNotFoundError:
        return ()
    except NotADirectoryError:
        return ()
    return tuple(sorted(found))


def _parquet_rows(path: Path) -> int:
    return int(pq.read_metadata(path).num_rows)


def _fsync_dir_tree(root: Path, relatives: list[str]) -> None:
    for folder in sorted({(root / r).parent for r in relatives}):
        fsync_path(folder)
