"""A scoring run's folder: written by ``finwatch score``, read by ``finwatch report`` and ``finwatch export``.

Layout::

    <runs>/<run>/
      leads.parquet   leads.csv   leads.json   the ranked leads
      run.json        written last: run id, versions, the store (absolute path and data manifest hash), figures

A folder is written in a hidden staging folder beside it and renamed into place (``finwatch._io``), so a folder
holding ``run.json`` is complete. Runs of one nightly job share a parent folder: :meth:`RunFolder.earlier` finds
the complete runs beside a run (half-written ``.<name>.partial-*`` folders are never read).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from finwatch._io import atomic_directory, atomic_write_bytes
from finwatch.exceptions import FinwatchError, StoreError
from finwatch.store import Store

__all__ = ["LIST_COLUMNS", "RUN_FILE", "RunFolder", "run_folder_for"]

RUN_FILE = "run.json"
LEADS_FILE = "leads.parquet"
#: list-valued lead columns: joined with ";" in leads.csv
LIST_COLUMNS = ("typologies", "rules_fired", "evidence_txn_ids", "counterparties", "channels")
#: a spreadsheet reads a cell starting with one of these as a formula: such cells get a leading apostrophe
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: JSON-text lead columns: decoded in leads.json
JSON_COLUMNS = ("reasons", "cycle_paths")


def run_folder_for(as_of: dt.datetime, runs: Path = Path("runs")) -> Path:
    """Where a run as of a time goes unless told: ``<runs>/2026-02-04T000000Z`` (the nightly pipeline's layout)."""
    return runs / f"{as_of.astimezone(dt.UTC):%Y-%m-%dT%H%M%SZ}"


@dataclass(frozen=True)
class RunFolder:
    path: Path
    _as_of: str | None = None  # the as-of time of a run not written yet (see :meth:`planned`)

    # --- reading ---------------------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        return (self.path / RUN_FILE).is_file() and (self.path / LEADS_FILE).is_file()

    @cached_property
    def info(self) -> dict[str, Any]:
        if not self.complete:
            raise FinwatchError(f"{self.path}: not a finwatch run folder (run.json and leads.parquet expected)")
        try:
            data: dict[str, Any] = json.loads((self.path / RUN_FILE).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FinwatchError(f"{self.path / RUN_FILE}: unreadable ({exc})") from None
        return data

    @property
    def as_of(self) -> str:
        return str(self.info["as_of"])

    def leads(self, columns: Sequence[str] | None = None) -> pl.DataFrame:
        self.info  # noqa: B018 - refuses a folder that is not a complete run
        return pl.read_parquet(self.path / LEADS_FILE, columns=list(columns) if columns else None)

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
        """Complete runs in the same parent folder with an earlier as-of time, oldest first."""
        runs = []
        for candidate in sorted(self.path.parent.glob(f"*/{RUN_FILE}")):
            other = RunFolder(candidate.parent)
            if other.path.resolve() == self.path.resolve() or other.path.name.startswith("."):
                continue
            try:
                if other.complete and other.as_of < self.as_of_text:
                    runs.append(other)
            except FinwatchError:
                continue  # an unreadable run is not a run
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
            for lid in run.leads(["lead_id"])["lead_id"].to_list():
                first.setdefault(lid, run.as_of)
        return first

    def refresh_csv(self) -> None:
        """Rewrite leads.csv with the paths of the drafts exported since the run (atomically)."""
        csv = _flat(_drafts(self.path, self.leads())).write_csv()
        atomic_write_bytes(self.path / "leads.csv", csv.encode("utf-8"))

    # --- writing ---------------------------------------------------------------------------------------------
    @staticmethod
    def write(path: Path, leads: pl.DataFrame, summary: dict[str, Any]) -> RunFolder:
        """Write the leads (Parquet, CSV, JSON) and ``run.json`` (last) atomically; same input → same bytes."""
        with atomic_directory(path, marker=RUN_FILE) as staging:
            leads.write_parquet(staging / LEADS_FILE)
            _flat(_drafts(staging, leads)).write_csv(staging / "leads.csv")
            records = [
                {k: (json.loads(v) if k in JSON_COLUMNS else v) for k, v in row.items()} for row in leads.to_dicts()
            ]
            (staging / "leads.json").write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            (staging / RUN_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return RunFolder(path)


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
    """leads.csv for a case system: lists joined with ";", reasons as their sentences with citations joined with
    " | ", and every text cell safe to open in a spreadsheet (a cell that would start a formula is quoted)."""
    flat = leads.with_columns(
        *(pl.col(c).list.join(";") for c in LIST_COLUMNS if c in leads.columns),
        reasons=pl.col("reasons").map_elements(_reason_text, return_dtype=pl.String),
    )
    text = [c for c, t in flat.schema.items() if t == pl.String]
    return flat.with_columns(
        pl.when(pl.any_horizontal([pl.col(c).str.starts_with(p) for p in FORMULA_STARTS]))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c in text
    )


def _reason_text(reasons: str) -> str:
    return " | ".join(r["text"] + (f" [{r['citation']}]" if r.get("citation") else "") for r in json.loads(reasons))
