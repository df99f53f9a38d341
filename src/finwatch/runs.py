"""A scoring run's folder: written by ``finwatch score``, read by ``finwatch report`` and ``finwatch export``.

Layout::

    <runs>/<run>/
      leads.parquet   leads.csv   leads.json   the ranked leads
      run.json        written last: run id, versions (the model's digests too), the store (absolute path and data
                      manifest hash), figures, the sha256 and size of each lead file and, with a signing key, a
                      signature of run.json's own content

A folder is written in a hidden staging folder beside it and published in one step (``finwatch._io``): the
destination holds the old run or the new one, never a part (and, where the file system can exchange two folders
atomically, never nothing either). Runs of one nightly job share a
parent folder: :meth:`RunFolder.earlier` finds the published runs beside a run (:attr:`RunFolder.published`);
staging and retired folders (``.<name>.partial-*``, ``.<name>.old-*``) are never read, and the next write into the
folder removes those a killed run left.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from finwatch._io import atomic_directory, atomic_write_bytes, naming_errors, sha256_file
from finwatch.digest import canonical_json, sign
from finwatch.exceptions import FinwatchError, StoreError
from finwatch.store import Store

__all__ = [
    "LEAD_FILES",
    "LIST_COLUMNS",
    "RUN_FILE",
    "RunFolder",
    "read_leads",
    "run_folder_for",
    "run_id_for",
    "run_manifest",
]

RUN_FILE = "run.json"
LEADS_FILE = "leads.parquet"
#: the lead files whose sha256 and size run.json records (``files``); exports rewrite leads.csv later, the others
#: never change once published
LEAD_FILES = (LEADS_FILE, "leads.csv", "leads.json")
FIXED_FILES = (LEADS_FILE, "leads.json")
#: list-valued lead columns: JSON arrays in leads.csv (:func:`finwatch.sanitize.csv_list`)
LIST_COLUMNS = ("typologies", "rules_fired", "evidence_txn_ids", "counterparties", "channels")
#: JSON-text lead columns: decoded in leads.json
JSON_COLUMNS = ("reasons", "cycle_paths")


def run_folder_for(as_of: dt.datetime, runs: Path = Path("runs")) -> Path:
    """Where a run as of a time goes unless told: ``<runs>/2026-02-04T000000Z`` (the nightly pipeline's layout)."""
    return runs / f"{as_of.astimezone(dt.UTC):%Y-%m-%dT%H%M%SZ}"


def run_id_for(
    data_manifest_sha256: str,
    model: str,
    scoring_digest: str,
    rules_version: str,
    as_of: str,
    budget: float,
    feature_config_sha256: str,
) -> str:
    """A run's id: the same data, model (name@version and its scoring digest, which covers everything scoring reads
    of it), rules, time, budget and feature settings give the same id; a change to any of them gives another."""
    text = json.dumps(
        [data_manifest_sha256, model, scoring_digest, rules_version, as_of, budget, feature_config_sha256]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_manifest(info: dict[str, Any]) -> bytes:
    """What a run's signature covers: run.json without its signature, as canonical JSON."""
    return canonical_json({k: v for k, v in info.items() if k != "signature"})


@dataclass(frozen=True)
class RunFolder:
    path: Path
    _as_of: str | None = None  # the as-of time of a run not written yet (see :meth:`planned`)

    # --- reading ---------------------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        return (self.path / RUN_FILE).is_file() and (self.path / LEADS_FILE).is_file()

    @property
    def published(self) -> bool:
        """Whether this is a run as published (:meth:`damage` finds nothing). A staging or retired folder
        (``.<name>.partial-*``, ``.<name>.old-*``), a half-copied or a damaged run is not.
        (:func:`finwatch.integrity.verify_run` checks the files' sha256 too.)"""
        return self.damage() is None

    def damage(self) -> str | None:
        """Why this folder is not a run as published, or None when it is: a visible folder holding a readable
        run.json (with a run id and an as-of time), leads.parquet with Parquet's magic at both ends, and every file
        run.json lists, each of its recorded size — leads.csv, which exports rewrite filling in the paths of the
        drafts (:meth:`refresh_csv`), of at least that size."""
        if self.path.name.startswith(".") or not self.path.is_dir():
            return f"{self.path}: not a run folder"
        if not self.complete:
            missing = RUN_FILE if not (self.path / RUN_FILE).is_file() else LEADS_FILE
            return f"{self.path / missing}: missing; not a complete run"
        try:
            info = self.info
            if not isinstance(info.get("run_id"), str) or not isinstance(info.get("as_of"), str):
                return f"{self.path / RUN_FILE}: no run id or as-of time"
            files = info.get("files", {})  # absent: a run written before file hashes were recorded
            if not isinstance(files, dict):
                return f"{self.path / RUN_FILE}: files is not a table of the lead files"
            for name, entry in files.items():
                path = self.path / str(name)
                if not path.is_file():
                    return f"{path}: missing; the run is incomplete"
                size, recorded = path.stat().st_size, entry.get("bytes") if isinstance(entry, dict) else None
                if not isinstance(recorded, int) or (size < recorded if name == "leads.csv" else size != recorded):
                    return f"{path}: {size} bytes, run.json records {recorded}; the file is damaged"
            if not _parquet_framed(self.path / LEADS_FILE):
                return f"{self.path / LEADS_FILE}: not a complete Parquet file; the file is damaged"
        except (FinwatchError, OSError) as exc:
            return str(exc)
        return None

    def require_published(self) -> None:
        """Refuse (:class:`FinwatchError`) a folder that is not a run as published, naming what is wrong."""
        problem = self.damage()
        if problem is not None:
            raise FinwatchError(problem)

    @cached_property
    def info(self) -> dict[str, Any]:
        if not self.complete:
            raise FinwatchError(f"{self.path}: not a finwatch run folder (run.json and leads.parquet expected)")
        try:
            data = json.loads((self.path / RUN_FILE).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FinwatchError(f"{self.path / RUN_FILE}: unreadable ({exc})") from None
        if not isinstance(data, dict):
            raise FinwatchError(f"{self.path / RUN_FILE}: not a run record")
        return data

    @property
    def as_of(self) -> str:
        return str(self.info["as_of"])

    def leads(self, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """The leads; a folder that is not a run as published (:meth:`require_published`) or leads.parquet that
        cannot be read is refused with a :class:`FinwatchError` naming the file."""
        self.require_published()
        return read_leads(self.path / LEADS_FILE, columns)

    def store(self, override: Path | None = None) -> Store:
        """The run's store: ``override`` (a moved store) or the absolute path the run recorded.

        Refused when that store does not hold every batch the run was computed from.
        """
        recorded = self.info.get("store")
        store = Store(Path(override) if override is not None else Path(recorded or ""))
        if not store.exists:
            hint = "" if override is not None else "; give it with --store"
            raise StoreError(f"the run's store {store.root} is not there{hint}")
        missing = sorted(set(self.info.get("store_batches", [])) - {str(m["batch"]) for m in store.manifests()})
        if missing:
            raise StoreError(
                f"{store.root} does not hold the data run {self.info['run_id']} was scored on "
                f"(batches {', '.join(missing[:3])}{'…' if len(missing) > 3 else ''} missing)"
            )
        return store

    def earlier(self) -> list[RunFolder]:
        """Published runs (:attr:`published`) in the same parent folder with an earlier as-of time, oldest first.

        Hidden folders — a killed run's staging or retired folder — are never looked into; a folder reached twice
        (a link to a run beside it) counts once.
        """
        parent = self.path.parent
        if not parent.is_dir():
            return []
        seen = {self.path.resolve()}
        runs = []
        for child in sorted(parent.iterdir()):
            if child.name.startswith(".") or child.resolve() in seen:
                continue
            other = RunFolder(child)
            if other.published and other.as_of < self.as_of_text:
                seen.add(child.resolve())
                runs.append(other)
        return sorted(runs, key=lambda r: (r.as_of, r.path.name))

    def previous(self) -> RunFolder | None:
        earlier = self.earlier()
        return earlier[-1] if earlier else None

    @property
    def as_of_text(self) -> str:
        """This run's as-of time (from run.json, or from a run being written: see :meth:`planned`)."""
        return self._as_of if self._as_of is not None else self.as_of

    @classmethod
    def planned(cls, path: Path, as_of: dt.datetime) -> RunFolder:
        """A run about to be written at ``path`` as of ``as_of`` (to find its earlier runs before it exists)."""
        return cls(path, as_of.isoformat())

    def first_raised(self) -> dict[str, str]:
        """Lead id → the earliest as-of time of an earlier run beside this one that raised it."""
        first: dict[str, str] = {}
        for run in self.earlier():
            try:
                ids = run.leads(["lead_id"])["lead_id"].to_list()
            except FinwatchError:
                continue  # damaged beyond what :attr:`published` sees: not an earlier run
            for lid in ids:
                first.setdefault(lid, run.as_of)
        return first

    def refresh_csv(self) -> None:
        """Rewrite leads.csv with the paths of the drafts exported since the run (atomically)."""
        csv = _flat(_drafts(self.path, self.leads())).write_csv()
        atomic_write_bytes(self.path / "leads.csv", csv.encode("utf-8"))

    # --- writing ---------------------------------------------------------------------------------------------
    @staticmethod
    def write(path: Path, leads: pl.DataFrame, summary: dict[str, Any], key: bytes | None = None) -> RunFolder:
        """Write the leads (Parquet, CSV, JSON) and ``run.json`` (last) atomically; same input → same bytes.

        run.json is ``summary`` with the sha256 and size of each lead file as written (``files``, replacing any
        given) and, with a signing ``key``, a signature of its content (:func:`run_manifest`) under ``signature``.
        A failed write names the file and the reason ("runs/x/leads.parquet: No space left on device").
        """
        with atomic_directory(path, marker=RUN_FILE) as staging:
            with naming_errors(staging / LEADS_FILE):
                parquet = io.BytesIO()  # Polars reports a failed write to a file without the system's reason
                leads.write_parquet(parquet)
                (staging / LEADS_FILE).write_bytes(parquet.getvalue())
            with naming_errors(staging / "leads.csv"):
                _flat(_drafts(staging, leads)).write_csv(staging / "leads.csv")
            records = [
                {k: (json.loads(v) if k in JSON_COLUMNS else v) for k, v in row.items()} for row in leads.to_dicts()
            ]
            with naming_errors(staging / "leads.json"):
                text = json.dumps(records, indent=2, sort_keys=True) + "\n"
                (staging / "leads.json").write_text(text, encoding="utf-8")
            info = {k: v for k, v in summary.items() if k not in ("files", "signature")}
            info["files"] = {name: {"sha256": sha256_file(staging / name), "bytes": (staging / name).stat().st_size}
                             for name in LEAD_FILES}  # fmt: skip
            info = json.loads(json.dumps(info))  # as a reader will see it
            if key is not None:
                info["signature"] = sign(key, "run", run_manifest(info))
            with naming_errors(staging / RUN_FILE):
                (staging / RUN_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return RunFolder(path)


def read_leads(path: Path, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """A run's leads.parquet (the path taken literally, never as a pattern); a file that cannot be read is refused
    with a :class:`FinwatchError` naming it."""
    try:
        return pl.read_parquet(path, columns=list(columns) if columns else None, glob=False)
    except FileNotFoundError:
        raise FinwatchError(f"{path}: missing; the run is incomplete") from None
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FinwatchError(f"{path}: unreadable, the file is damaged ({first})") from None


def _parquet_framed(path: Path) -> bool:
    """Whether ``path`` begins and ends with Parquet's magic ``PAR1`` (a truncated or zeroed file does not)."""
    with path.open("rb") as handle:
        head = handle.read(4)
        if handle.seek(0, 2) < 12:
            return False
        handle.seek(-4, 2)
        return head == b"PAR1" and handle.read(4) == b"PAR1"


def _drafts(folder: Path, leads: pl.DataFrame) -> pl.DataFrame:
    """The paths (relative to the run folder) of each lead's goAML draft and FinCEN SAR batch, where exported."""
    goaml = folder / "goaml"
    sar = folder / "fincen" / "sar-batch.xml"
    return leads.with_columns(
        goaml_draft=pl.Series([f"goaml/{lid}.xml" if (goaml / f"{lid}.xml").is_file() else None
                               for lid in leads["lead_id"].to_list()], dtype=pl.String),
        fincen_sar=pl.lit("fincen/sar-batch.xml" if sar.is_file() else None, dtype=pl.String),
    )  # fmt: skip


def _flat(leads: pl.DataFrame) -> pl.DataFrame:
    """leads.csv for a case system: reasons as their sentences with citations joined with " | ", lists as JSON arrays,
    and every text cell and list element safe to open in a spreadsheet (:func:`finwatch.sanitize.csv_cell`: control
    and bidirectional characters as visible escapes, an apostrophe before what would start a formula)."""
    from finwatch.sanitize import csv_cell, csv_list

    flat = leads.with_columns(reasons=pl.col("reasons").map_elements(_reason_text, return_dtype=pl.String))
    lists = [c for c in LIST_COLUMNS if c in flat.columns]
    text = [c for c, t in flat.schema.items() if t == pl.String]
    return flat.with_columns(
        *(pl.Series(c, [csv_list(v) for v in flat[c].to_list()], dtype=pl.String) for c in lists),
        *(pl.Series(c, [csv_cell(v) for v in flat[c].to_list()], dtype=pl.String) for c in text),
    )


def _reason_text(reasons: str) -> str:
    return " | ".join(r["text"] + (f" [{r['citation']}]" if r.get("citation") else "") for r in json.loads(reasons))
