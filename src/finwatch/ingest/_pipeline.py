"""Ingest: plan (hash and detect) → stage each file (parse, validate, convert) → commit one batch to the store.

Every record read ends up either accepted (new to the store, or the same transaction already there) or in
quarantine with its reason: per file, ``rows_read == accepted + quarantined`` always holds.

A store converts every amount with one FX table: the one its converting batches recorded
(:meth:`Store.fx_in_use`). Without ``fx`` a batch converts with it (the shipped default for a store without
transactions); an ``fx`` table with other rates is refused for files with transactions to convert (labels and
accounts convert nothing and may come with any).

With a pseudonym key, one step right after validation pseudonymises every adapter's transactions (accounts,
counterparty names, descriptions: :meth:`Pseudonymizer.transactions`), accounts and labels; the quarantine keeps
rejected records' text encrypted with the quarantine key, or withheld (:class:`QuarantineSeal`), and reasons and
notes quote no values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from finwatch import __version__
from finwatch._io import sha256_file
from finwatch.exceptions import ConfigError, InputError, StoreError, UnknownFormatError
from finwatch.fx import FxTable
from finwatch.ingest._base import (
    PARSED_SCHEMA,
    Parsed,
    ParseOptions,
    Source,
    conform_accounts,
    conform_parsed,
    control_reason,
    duckdb_connection,
    fetch,
    not_a_file,
    wrapped_os_error,
)
from finwatch.ingest._mapping import shipped_names
from finwatch.ingest._registry import ADAPTERS, detect, get_adapter
from finwatch.ingest.pseudonym import Pseudonymizer, ReferenceWords, mask_quoted, reference_words
from finwatch.ingest.quarantine import QuarantineSeal
from finwatch.keys import checked
from finwatch.schema import ACCOUNT_SCHEMA, LABEL_SCHEMA, Channel, conform, polars_schema
from finwatch.store import PARQUET, PARQUET_POLARS, QUARANTINE_SCHEMA, Store, StoreSettings, write_partitions

__all__ = ["FileReport", "IngestOptions", "IngestReport", "Plan", "commit", "ingest", "plan", "stage", "writing"]

DEBUG_ENV = "FINWATCH_DEBUG"  # set to let unexpected errors while reading a file raise with their traceback
TS_MIN = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
TS_MAX = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
CHANNELS = [c.value for c in Channel]
#: transaction columns a pseudonym key replaces (:meth:`Pseudonymizer.transactions`)
PSEUDONYMISED = ("src_account", "dst_account", "counterparty_name", "description")
TEXT_COLUMNS = [name for name, dtype in PARSED_SCHEMA.items() if dtype == pl.String() and not name.startswith("_")]
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")  # how Python shows an object without a name
CONTENT_COLUMNS = ("ts", "src_account", "dst_account", "src_institution", "dst_institution", "amount", "currency",
                   "channel", "description", "chain")  # fmt: skip


@dataclass(frozen=True)
class IngestOptions:
    format: str = "auto"
    parse: ParseOptions = field(default_factory=ParseOptions)
    base_currency: str = "USD"
    fx: Path | None = None  # FX table CSV; None: the store's own table (the shipped default for a new store)
    pseudonym_key: bytes | None = field(default=None, repr=False)
    quarantine_key: bytes | None = field(default=None, repr=False)  # encrypts quarantined records' text
    #: words a pseudonymised store keeps in descriptions and counterparty names (what the features match)
    reference_words: tuple[str, ...] = field(default_factory=reference_words)
    max_amount_base: float = 1e12  # above this (in the base currency) an amount is absurd
    skip_rejected: bool = False  # commit the good files when some are rejected
    config_sha256: str | None = None  # digest of the run configuration's [ingest] section, recorded in the manifest


@dataclass
class FileReport:
    file: str
    sha256: str
    format: str = ""
    detected: str = ""
    rows_read: int = 0
    accepted: int = 0  # new + merged
    new: int = 0
    merged: int = 0  # the same transaction was already in the store, in an earlier file, or earlier in this file
    merged_in_file: int = 0  # of which: the other side of a transaction earlier in the same file
    quarantined: int = 0
    status: str = "pending"  # ingested | already ingested | rejected
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def check(self) -> None:
        if self.status == "ingested" and self.rows_read != self.accepted + self.quarantined:
            raise AssertionError(f"{self.file}: {self.rows_read} read != {self.accepted} + {self.quarantined}")


@dataclass
class IngestReport:
    store: str
    batch: str | None
    files: list[FileReport]
    committed: bool

    @property
    def rejected(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "rejected"]

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "batch": self.batch, "committed": self.committed,
                "files": [asdict(f) for f in self.files]}  # fmt: skip


@dataclass
class Planned:
    source: Source
    adapter: str
    detected: str
    report: FileReport
    labels_only: bool = False  # the file's records label transactions (AMLworld patterns)
    reference_records: int = 0  # label or account records read and accepted (not transactions)


@dataclass
class Plan:
    store: Path
    batch: str
    options: IngestOptions
    items: list[Planned]  # files to stage, in the order given
    skipped: list[FileReport]  # already ingested, or rejected at detection
    fx: FxTable  # the table the batch converts amounts with
    fx_refusal: str | None = None  # why files with amounts to convert are refused (another table than the store's)

    @property
    def staging(self) -> Path:
        return self.store / ".staging" / self.batch


def _source(path: Path) -> Source:
    """The input at ``path``, hashed: a regular file, or a folder (its regular files). Anything else (a device, a
    FIFO, a socket) is refused before it is opened: reading it would never end."""
    if not path.exists():
        raise InputError(str(path), "no such file or folder")
    problem = not_a_file(path, folder_ok=True)
    if problem:
        raise InputError(str(path), problem)
    try:
        if path.is_dir():
            digest = hashlib.sha256()
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                digest.update(child.relative_to(path).as_posix().encode() + b"\0" + sha256_file(child).encode())
            return Source(path, digest.hexdigest(), str(path))
        return Source(path, sha256_file(path), str(path))
    except OSError as exc:
        raise InputError(str(exc.filename or path), f"cannot be read ({exc.strerror or exc})") from None


def plan(paths: list[Path], store_dir: Path, options: IngestOptions) -> Plan:
    """Hash and recognise every input; skip those the store already holds. Raises nothing for bad files."""
    store = Store(store_dir)
    known = store.ingested_inputs() if store.exists else {}
    items: list[Planned] = []
    skipped: list[FileReport] = []
    seen: set[str] = set()
    for path in paths:
        try:
            source = _source(Path(path))
        except InputError as exc:
            skipped.append(FileReport(str(path), "", status="rejected", error=str(exc)))
            continue
        report = FileReport(source.display, source.sha256)
        if source.sha256 in known or source.sha256 in seen:
            report.status = "already ingested"
            report.notes.append(f"same content as batch {known.get(source.sha256, 'of this run')}: nothing added")
            skipped.append(report)
            continue
        seen.add(source.sha256)
        try:
            if options.format == "auto":
                name, detected = detect(source.path)
            else:
                adapter = get_adapter(options.format)
                name, detected = adapter.name, f"{adapter.name} (as requested)"
                if source.path.is_dir() and not adapter.reads_directories:
                    raise InputError(source.display, f"is a folder: the {adapter.name} format reads a file")
        except (UnknownFormatError, InputError) as exc:
            report.status, report.error = "rejected", str(exc)
            skipped.append(report)
            continue
        except OSError:
            raise
        except Exception as exc:  # a recogniser tripping over odd content is a rejection, never a traceback
            if os.environ.get(DEBUG_ENV):
                raise
            report.status, report.error = "rejected", f"{source.display}: cannot be recognised ({type(exc).__name__})"
            skipped.append(report)
            continue
        report.format, report.detected = name, detected
        items.append(Planned(source, name, detected, report))
    fx, fx_refusal = _fx_table(Path(store_dir), options)
    described: dict[str, Any] = {
        "fx": fx.sha256, "base": options.base_currency, "format": options.format,
        "parse": _parse_settings(options.parse), "max": options.max_amount_base,
        "key": "pseudonymised" if options.pseudonym_key else None, "version": __version__,
    }  # fmt: skip
    # never anything computed from a key: the batch id would let anyone test guesses of it
    if options.pseudonym_key:
        described["reference_words"] = sorted(options.reference_words)
    if options.pseudonym_key or options.quarantine_key:
        described["quarantine"] = _seal(options).mode
    settings = json.dumps(described, sort_keys=True)
    digest = hashlib.sha256(settings.encode())
    for item in items:
        digest.update(item.source.sha256.encode())
    return Plan(Path(store_dir), digest.hexdigest()[:16], options, items, skipped, fx, fx_refusal)


def _fx_table(store_dir: Path, options: IngestOptions) -> tuple[FxTable, str | None]:
    """The FX table the batch converts with, and why converting amounts with it is refused (None: it is not).

    The store's own table (:meth:`Store.fx_in_use`) unless ``options.fx`` is given; a given table with the same
    rates is the same table. One with other rates is the batch's, with the refusal that :func:`stage` raises for
    a file with amounts to convert. A store whose rates are lost (it predates stored FX tables) refuses them all.
    """
    if options.fx is not None and (problem := not_a_file(Path(options.fx))):
        raise ConfigError(f"--fx {options.fx}: {problem}")
    given = FxTable.load(options.fx) if options.fx is not None else None
    store = Store(store_dir)
    try:
        in_use = store.fx_in_use()
    except StoreError as exc:
        return given or FxTable.load(), str(exc)
    if in_use is None:
        return given or FxTable.load(), None
    table, batch = in_use
    if given is None:
        return table, None
    if given.sha256 == table.sha256 or (given.table_base == table.table_base and given.rates.equals(table.rates)):
        return given, None
    return given, (
        f"{store.root}: the store's amounts were converted with the FX table {table.name} "
        f"(sha256 {table.sha256[:12]}, recorded by batch {batch}) and the FX table {given.name} "
        f"(sha256 {given.sha256[:12]}) has other rates: a store converts with one table. Leave out --fx "
        "(ingest.fx) to convert with the store's table, or ingest into a new store to use the other rates "
        "(with all the inputs, to re-convert what this store holds)"
    )


def _parse_settings(parse: ParseOptions) -> dict[str, str]:
    """Parse options as the batch id sees them: a file option by its content, never by its path."""
    out = {}
    for key, value in sorted(asdict(parse).items()):
        out[key] = _file_option(key, value) if isinstance(value, Path) else str(value)
    return out


def _file_option(key: str, value: Path) -> str:
    if key == "mapping" and str(value) in shipped_names():  # a shipped mapping is named, not a path
        return f"shipped mapping {value}"
    if not_a_file(value):  # a device or a FIFO is never hashed (it would never end); the adapter rejects it
        return "not a file"
    try:
        return f"sha256 {sha256_file(value)}"
    except OSError:  # the adapter that needs it rejects the file; the batch id must still not name the path
        return "unreadable file"


# --- staging one file ----------------------------------------------------------------------------------------
def stage(item: Planned, plan_: Plan) -> FileReport:
    """Parse, validate and convert one file into the batch's staging folder. Bad input → report, not raise.

    A failure of the file system (a full disk, a missing permission), also when a library reports it in its own
    error, raises ``OSError`` naming the file and the system's reason.
    """
    report = item.report
    display = item.source.display
    try:
        adapter = ADAPTERS[item.adapter]()
        parsed = adapter.parse(item.source, plan_.options.parse)
    except InputError as exc:
        report.status, report.error = "rejected", _named(str(exc), display)
        return report
    except ConfigError as exc:  # a mapping that cannot describe this file (unreadable, wrong kind)
        report.status, report.error = "rejected", f"{display}: {_named(str(exc), display)}"
        return report
    except Exception as exc:  # any other failure to read a file is a rejection, never a traceback
        if isinstance(exc, OSError) or (
            isinstance(exc, pl.exceptions.PolarsError | duckdb.Error) and wrapped_os_error(exc) is not None
        ):  # the file system failed, not the content: the caller (or the flow's retry) deals with it
            raise _os_error(exc, display, "while reading it") from exc
        if os.environ.get(DEBUG_ENV):
            raise
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        report.status = "rejected"
        report.error = f"{display}: cannot be read as {item.adapter} ({type(exc).__name__}: {_named(message, display)})"
        return report
    report.detected = parsed.detected or report.detected
    report.notes.extend(parsed.notes)
    try:
        _stage_parsed(item, parsed, plan_)
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException, duckdb.Error) as exc:
        if wrapped_os_error(exc) is None:
            raise
        raise _os_error(exc, display, f"while writing its rows to the store {plan_.store}") from exc
    report.status = "staged"
    return report


def _named(message: str, display: str) -> str:
    """``message`` with any Python object's repr (``<_io.BytesIO object at 0x…>``) replaced by the file's name."""
    return _OBJECT_REPR.sub(lambda _m: display, message)


def _os_error(exc: BaseException, where: str, doing: str) -> OSError:
    """The system error behind ``exc`` as an ``OSError`` naming ``where`` and what was being done, e.g.
    ``exports/bank.csv: No space left on device (while writing its rows to the store /data/store)``."""
    code, reason = wrapped_os_error(exc) or (0, str(exc))
    return OSError(code, f"{reason} ({doing})", where)


def _seal(options: IngestOptions) -> QuarantineSeal:
    return QuarantineSeal(options.quarantine_key, pseudonymised=options.pseudonym_key is not None)


def _stage_parsed(item: Planned, parsed: Parsed, plan_: Plan) -> None:
    options = plan_.options
    pseudo = Pseudonymizer(options.pseudonym_key) if options.pseudonym_key else None
    by_content = parsed.label_rows is not None
    if plan_.fx_refusal is not None and not by_content and parsed.rows.height:
        raise StoreError(plan_.fx_refusal)
    rows = conform_parsed(parsed.label_rows if by_content else parsed.rows)  # type: ignore[arg-type]
    rows = _validate(rows, options)
    clear: pl.DataFrame | None = None
    if pseudo is not None:  # the one place every adapter's transactions are pseudonymised
        rows = rows.with_row_index("_n")
        clear = rows.select(PSEUDONYMISED)  # row _n: the values as read, for the raw text of rejected records
        rows = pseudo.transactions(rows, ReferenceWords(options.reference_words))
    rows = _ids(rows)
    rows = _convert(rows, plan_.fx, options)
    source = item.source
    lineage = {"source_format": item.adapter, "source_file_sha256": source.sha256}
    merged = rows.filter(pl.col("_merged") & pl.col("_reason").is_null())
    good = rows.filter(pl.col("_reason").is_null() & ~pl.col("_merged"))
    bad = rows.filter(pl.col("_reason").is_not_null())
    if clear is not None:
        bad = bad.with_columns([clear[c].gather(bad["_n"]).alias(c) for c in PSEUDONYMISED])
    bad = _with_raw(bad, item)
    if pseudo is not None:
        item.report.notes[:] = _scrubbed_notes(item.report.notes, pseudo, parsed, clear)
    item.report.merged_in_file = merged.height
    out = plan_.staging / f"{_index(plan_, item):04d}"
    out.mkdir(parents=True, exist_ok=True)
    labels = _labels(parsed, pseudo)
    if parsed.row_labels is not None and parsed.row_labels.height:
        flagged = good.join(parsed.row_labels, on="source_row", how="inner")
        labels = pl.concat([labels, flagged.select(
            subject_kind=pl.lit("transaction"), subject_id="txn_id", label=pl.lit(True), typology="typology",
            instance_id="instance_id", role=pl.lit(None, pl.String),
            source=pl.lit(f"{item.adapter} {Path(source.display).name}"),
        )])  # fmt: skip
    if by_content:  # records that label transactions by their content (AMLworld patterns), not new transactions
        assert parsed.label_rows is not None
        labels = pl.concat([labels, _content_labels(good, parsed.label_rows, source.display)])
        good = good.clear()
        item.report.notes.append(f"{labels.height} label rows from {rows.height} pattern records")
        merged = merged.clear()
    accepted = good.with_columns(**{k: pl.lit(v) for k, v in lineage.items()})
    write_partitions(accepted, out / "transactions", source.display)
    quarantine = _seal(options).seal(bad.select(
        file=pl.lit(source.display), file_sha256=pl.lit(source.sha256), source_format=pl.lit(item.adapter),
        row=pl.col("source_row"), raw=pl.col("_raw"), reason=pl.col("_reason"),
    ))  # fmt: skip
    quarantine.cast(dict(QUARANTINE_SCHEMA)).write_parquet(out / "quarantine.parquet")  # type: ignore[arg-type]
    if parsed.accounts is not None and parsed.accounts.height:
        accounts = conform_accounts(parsed.accounts)
        if pseudo is not None:
            accounts = pseudo.accounts(accounts)
        accounts = accounts.with_columns(**{k: pl.lit(v) for k, v in lineage.items()})
        pq.write_table(conform(accounts.select(list(ACCOUNT_SCHEMA.names)), ACCOUNT_SCHEMA, what=source.display),
                       out / "accounts.parquet", **PARQUET)  # fmt: skip
    if labels.height:
        pq.write_table(conform(labels, LABEL_SCHEMA, what=source.display), out / "labels.parquet", **PARQUET)
    item.report.rows_read = rows.height + parsed.reference_records
    item.report.quarantined = bad.height
    item.report.accepted = (rows.height - bad.height if by_content else 0) + parsed.reference_records
    item.labels_only = by_content
    item.reference_records = parsed.reference_records


def _with_raw(bad: pl.DataFrame, item: Planned) -> pl.DataFrame:
    """Fill the raw text of rejected records the adapter did not keep: the file's line, or the record as read."""
    missing = bad.filter(pl.col("_raw").is_null())
    if missing.is_empty():
        return bad
    adapter = ADAPTERS[item.adapter]
    if adapter.line_records and item.source.path.is_file():
        wanted = set(missing["source_row"].to_list())
        lines: dict[int, str] = {}
        with item.source.path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if number in wanted:
                    lines[number] = line.decode("utf-8", errors="replace").rstrip("\r\n")
                    if len(lines) == len(wanted):
                        break
        raw = pl.col("source_row").replace_strict(lines, default=None, return_dtype=pl.String)
    else:
        fields = [c for c in bad.columns if not c.startswith("_")]
        raw = pl.struct(fields).struct.json_encode()
    return bad.with_columns(_raw=pl.coalesce(pl.col("_raw"), raw))


def _scrubbed_notes(notes: list[str], pseudo: Pseudonymizer, parsed: Parsed, clear: pl.DataFrame | None) -> list[str]:
    """The file's notes as a pseudonymised store's report may show them: an account id the file holds (a side of
    its transactions, an account, a link, a labelled account) named by its pseudonym, and quoted values masked.
    A number of fewer than six digits is taken for a count, never for an account id."""
    if not notes:
        return notes
    ids: set[str] = set()
    if clear is not None:
        ids.update(clear["src_account"].drop_nulls().to_list(), clear["dst_account"].drop_nulls().to_list())
    if parsed.accounts is not None and parsed.accounts.height:
        ids.update(parsed.accounts["account_id"].drop_nulls().cast(pl.String).to_list())
        if "links" in parsed.accounts.columns:
            ids.update(parsed.accounts["links"].explode().drop_nulls().cast(pl.String).to_list())
    if parsed.labels is not None and parsed.labels.height:
        ids.update(parsed.labels.filter(pl.col("subject_kind") == "account")["subject_id"].drop_nulls().to_list())
    ids.discard("")

    def pseudonymised(found: re.Match[str]) -> str:
        token = found[0]
        bare = token.rstrip(".:!?")  # "statement 1 of DE89…: opening …"
        if bare not in ids or (bare.isdigit() and len(bare) < 6):  # a short number in a note is a count
            return token
        return pseudo.one(bare) + token[len(bare) :]

    return [_TOKEN.sub(pseudonymised, mask_quoted(note)) for note in notes]


_TOKEN = re.compile(r"[^\s,;()\[\]{}<>'\"]+")  # what may be an account id in a note: a run of other characters


def _content_labels(good: pl.DataFrame, label_rows: pl.DataFrame, file: str) -> pl.DataFrame:
    """Transaction and account labels for pattern records, identified by the same content ids as transactions."""
    meta = label_rows.select("source_row", "typology", "instance_id")
    rows = good.join(meta, on="source_row", how="left")
    source = f"patterns file {Path(file).name}"
    txn = rows.select(
        subject_kind=pl.lit("transaction"), subject_id="txn_id", label=pl.lit(True), typology="typology",
        instance_id="instance_id", role=pl.lit(None, pl.String), source=pl.lit(source),
    )  # fmt: skip
    accounts = pl.concat(
        [rows.select(subject_id=pl.col(side), typology="typology", instance_id="instance_id")
         for side in ("src_account", "dst_account")]
    ).drop_nulls("subject_id").unique(maintain_order=True)  # fmt: skip
    acc = accounts.select(
        subject_kind=pl.lit("account"), subject_id="subject_id", label=pl.lit(True), typology="typology",
        instance_id="instance_id", role=pl.lit(None, pl.String), source=pl.lit(source),
    )  # fmt: skip
    return pl.concat([txn, acc]).select(list(LABEL_SCHEMA.names))


def _index(plan_: Plan, item: Planned) -> int:
    return next(i for i, it in enumerate(plan_.items) if it is item)


def _validate(rows: pl.DataFrame, options: IngestOptions) -> pl.DataFrame:
    """Reasons for records no adapter flagged but which cannot be stored."""
    checks = [
        (pl.col("ts").is_null(), "missing or unparsable timestamp"),
        ((pl.col("ts") < TS_MIN) | (pl.col("ts") >= TS_MAX), "timestamp outside 1970–2099"),
        (pl.col("amount").is_null(), "missing or unparsable amount"),
        (pl.col("amount") < 0, "negative amount"),
        (pl.col("amount") == 0, "zero amount"),
        (pl.col("currency").is_null() | (pl.col("currency") == ""), "missing currency"),
        (~pl.col("channel").is_in(CHANNELS) | pl.col("channel").is_null(), "unknown channel"),
        (pl.col("src_account").is_null() & pl.col("dst_account").is_null(), "no account on either side"),
    ]
    reason = pl.coalesce(pl.col("_reason"), control_reason(TEXT_COLUMNS))  # a NUL in an id: a phantom account
    for condition, text in checks:
        reason = pl.when(reason.is_null() & condition.fill_null(False)).then(pl.lit(text)).otherwise(reason)
    return rows.with_columns(_reason=reason)


def _ids(rows: pl.DataFrame) -> pl.DataFrame:
    """Content-hash ids where the source has none; a repeated source id within the file is a duplicate row."""
    had_ids = rows["txn_id"].null_count() < rows.height
    if rows["txn_id"].null_count():
        # only the content columns travel to DuckDB; ids come back in row order. A pseudonymised description is
        # hashed as its keyed stand-in (_content_description): the masked text would make distinct records equal,
        # the text itself would let the id confirm a guess of it
        con = duckdb_connection()
        content = " || chr(31) || ".join(f"coalesce(cast({c} as varchar), '')" for c in CONTENT_COLUMNS)
        columns = [pl.col("_content_description").alias(c) if c == "description" and "_content_description" in
                   rows.columns else pl.col(c) for c in CONTENT_COLUMNS]  # fmt: skip
        con.register("frame", rows.select(*columns, "txn_id").with_row_index("_i"))
        ids = fetch(
            con,
            f"""
            with hashed as (
                select _i, md5({content}) as h from frame where txn_id is null
            ), repeated as (
                select h from hashed group by h having count(*) > 1
            ), numbered as (
                select _i, h, row_number() over (partition by h order by _i) - 1 as k
                from hashed where h in (select h from repeated)
            )
            select hashed._i,
                   'h' || case when coalesce(k, 0) = 0 then left(hashed.h, 24)
                               else left(md5(hashed.h || '#' || k), 24) end as hid
            from hashed left join numbered using (_i)
            """,  # noqa: S608 - column names are code constants, no user input
        )
        hid = pl.Series("hid", [None] * rows.height, dtype=pl.String).scatter(ids["_i"], ids["hid"])
        frame = rows.with_columns(txn_id=pl.coalesce(pl.col("txn_id"), hid))
    else:
        frame = rows
    frame = frame.with_row_index("_i")
    if not had_ids:  # content ids are unique by construction
        return frame.drop("_i").with_columns(_merged=pl.lit(False))
    # a source id seen again in the same file: the other side of the same transaction (same time, amount and
    # currency, a different record) is merged; the same record again is a duplicate row; anything else conflicts
    ok = pl.col("_reason").is_null()
    first = (
        frame.filter(ok)
        .sort("_i")
        .group_by("txn_id", maintain_order=True)
        .agg(f_i=pl.col("_i").first(), f_row=pl.col("source_row").first(), f_ts=pl.col("ts").first(),
             f_amount=pl.col("amount").first(), f_currency=pl.col("currency").first(), f_raw=pl.col("_raw").first())
    )  # fmt: skip
    frame = frame.join(first, on="txn_id", how="left")
    repeat = ok & (pl.col("_i") != pl.col("f_i"))
    same = (
        (pl.col("ts") == pl.col("f_ts"))
        & (pl.col("amount") == pl.col("f_amount"))
        & (pl.col("currency") == pl.col("f_currency"))
    )
    # the same text is the same record only when it also reads as the same transaction: a camt.053 detail without
    # its own amount has the same text in two entries of other amounts (a conflict, not a duplicate)
    identical = same & pl.col("_raw").is_not_null() & (pl.col("_raw") == pl.col("f_raw"))
    frame = frame.with_columns(
        _reason=pl.when(repeat & identical)
        .then(pl.format("duplicate of row {} (same record, id {})", pl.col("f_row"), pl.col("txn_id")))
        .when(repeat & ~same)
        .then(pl.format("conflicts with row {} (same id {}, other {}: {} here, {} at row {})", pl.col("f_row"),
                        pl.col("txn_id"), _differs(), _key_text(""), _key_text("f_"), pl.col("f_row")))
        .otherwise(pl.col("_reason")),
        _merged=(repeat & same & ~identical).fill_null(False),
    )  # fmt: skip
    return frame.sort("_i").drop("_i", "f_i", "f_row", "f_ts", "f_amount", "f_currency", "f_raw")


def _differs() -> pl.Expr:
    """Which of time, amount and currency differ between a record and the first record of its id (``f_``)."""
    parts = [pl.when(pl.col(c) != pl.col(f"f_{c}")).then(pl.lit(w)) for c, w in (("ts", "time"), ("amount", "amount"),
             ("currency", "currency"))]  # fmt: skip
    return pl.concat_str(parts, separator=", ", ignore_nulls=True)


def _key_text(prefix: str) -> pl.Expr:
    """A record's amount, currency and time as a reason quotes them: ``250.5 EUR on 2026-01-05 09:00:00``."""
    amount = pl.col(f"{prefix}amount").cast(pl.String).str.replace(r"(\.\d*?)0+$", "${1}").str.strip_suffix(".")
    return pl.format("{} {} on {}", amount, pl.col(f"{prefix}currency"),
                     pl.col(f"{prefix}ts").dt.strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip


def _convert(rows: pl.DataFrame, fx: FxTable, options: IngestOptions) -> pl.DataFrame:
    base = options.base_currency
    ok = pl.col("_reason").is_null()
    pairs = rows.filter(ok).select(date=pl.col("ts").dt.date(), currency="currency").unique()
    rates = fx.rate_to(pairs, base) if pairs.height else pairs.with_columns(rate=pl.lit(None, pl.Float64))
    rows = rows.with_columns(date=pl.col("ts").dt.date()).join(rates, on=["date", "currency"], how="left")
    rows = rows.with_columns(
        amount_base=pl.when(pl.col("currency") == base)
        .then(pl.col("amount").cast(pl.Float64))
        .otherwise(pl.col("amount").cast(pl.Float64) * pl.col("rate"))
    )
    reason = (
        pl.when(ok & pl.col("amount_base").is_null())
        .then(pl.format("no FX rate for {} (supply one with --fx)", pl.col("currency")))
        .when(ok & (pl.col("amount_base") > options.max_amount_base))
        .then(pl.format("absurd amount: {} {} exceeds the limit of {} {}", pl.col("amount"), pl.col("currency"),
                        pl.lit(f"{options.max_amount_base:,.0f}"), pl.lit(base)))
        .otherwise(pl.col("_reason"))
    )  # fmt: skip
    return rows.with_columns(_reason=reason).drop("date", "rate")


def _labels(parsed: Parsed, pseudo: Pseudonymizer | None) -> pl.DataFrame:
    labels = parsed.labels if parsed.labels is not None else pl.DataFrame(schema=polars_schema(LABEL_SCHEMA))
    if pseudo is not None and labels.height:
        is_account = pl.col("subject_kind") == "account"
        mapped = pseudo.series(labels["subject_id"])
        labels = labels.with_columns(subject_id=pl.when(is_account).then(mapped).otherwise(pl.col("subject_id")))
    return labels.select(list(LABEL_SCHEMA.names))


# --- committing the batch ------------------------------------------------------------------------------------
Staged = list[tuple[int, Planned]]  # the staged files of a plan, with their index (their staging folder's name)
Files = dict[str, list[tuple[Path, str]]]  # table -> (staged file, path in the store), as Store.commit takes them
TXN_KEYS = ["txn_id", "ts", "amount", "currency"]  # what decides whether a record is new, merged or a conflict


def commit(plan_: Plan, reports: list[FileReport]) -> IngestReport:
    """Commit the staged files as one batch, or nothing when a file was rejected (unless ``skip_rejected``).

    A new store gets its ``store.json`` with the batch, never before: a refused first ingest writes nothing. A
    failure of the file system raises ``OSError`` naming the store and the system's reason; nothing is committed.
    """
    try:
        return _commit(plan_)
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException, duckdb.Error) as exc:
        if wrapped_os_error(exc) is None:
            raise
        files = ", ".join(it.source.display for it in plan_.items if it.report.status == "staged")
        raise _os_error(exc, str(plan_.store), f"while committing batch {plan_.batch} of {files}") from exc


def _commit(plan_: Plan) -> IngestReport:
    store = Store(plan_.store)
    staged = [(i, it) for i, it in enumerate(plan_.items) if it.report.status == "staged"]
    all_reports = [it.report for it in plan_.items] + plan_.skipped
    rejected = [r for r in all_reports if r.status == "rejected"]
    if (rejected and not plan_.options.skip_rejected) or not staged:
        for _i, it in staged:
            it.report.status = "not committed" if rejected else it.report.status
        _cleanup(plan_)
        return IngestReport(str(plan_.store), None, all_reports, committed=False)

    parts = {i: sorted((plan_.staging / f"{i:04d}" / "transactions").glob("date=*.parquet")) for i, _ in staged}
    existing, states = _decide_states(store, parts)
    out = plan_.staging / "final"
    out.mkdir(parents=True, exist_ok=True)
    files: Files = {"transactions": _keep_new_transactions(plan_, parts, states)}
    quarantined = _quarantine(plan_, staged, parts, states)
    _count(staged, states, quarantined)
    files["quarantine"] = _write_quarantine(plan_, quarantined, out)
    files.update(_reference_tables(plan_, staged, out))
    stored_ids = pl.concat([existing["txn_id"], states.filter(pl.col("_state") == "new")["txn_id"]])
    _note_label_matches(plan_, staged, stored_ids, lambda: _stored_accounts(store, files))
    if files["transactions"]:  # the rates this batch's amount_base were computed with
        files["fx"] = _write_fx(plan_, plan_.fx, out)
    store.commit(plan_.batch, {k: v for k, v in files.items() if v}, _manifest(plan_, staged, plan_.fx),
                 settings=_settings(plan_.options))  # fmt: skip
    return IngestReport(str(plan_.store), plan_.batch, all_reports, committed=True)


def _decide_states(store: Store, parts: dict[int, list[Path]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The store's transaction keys, and the ``_state`` (new, merged, conflict) of each staged record by ``_file``.

    The first occurrence of an id wins; a later one with the same time, amount and currency is the same
    transaction (merged), otherwise a conflict. Only the key columns are read to decide.
    """
    existing = store.scan("transactions").select(TXN_KEYS).collect().with_columns(_file=pl.lit(-1, pl.Int32))
    batch_keys = [
        pl.scan_parquet(files, glob=False).select(TXN_KEYS).collect().with_columns(_file=pl.lit(i, pl.Int32))
        for i, files in parts.items() if files
    ]  # fmt: skip
    batch = pl.concat(batch_keys) if batch_keys else existing.clear()
    if existing.is_empty() and len(batch_keys) <= 1:
        # a new store and one file: ids are already unique within a file, so every record is new
        return existing, batch.with_columns(_state=pl.lit("new"))
    return existing, _states(existing, batch)


def _keep_new_transactions(plan_: Plan, parts: dict[int, list[Path]], states: pl.DataFrame) -> list[tuple[Path, str]]:
    """Each staged day file with only its new records (rewritten only when some are not new; dropped if none)."""
    kept_files = []
    for i, files in parts.items():
        dropped = states.filter((pl.col("_file") == i) & (pl.col("_state") != "new"))["txn_id"]
        for part in files:
            relative = f"transactions/{part.stem}/{plan_.batch}-{i:04d}.parquet"
            if dropped.len():
                kept = pl.read_parquet(part, glob=False).filter(~pl.col("txn_id").is_in(dropped.to_list()))
                if kept.is_empty():
                    continue
                kept.write_parquet(part, **PARQUET_POLARS)
            kept_files.append((part, relative))
    return kept_files


def _quarantine(
    plan_: Plan, staged: Staged, parts: dict[int, list[Path]], states: pl.DataFrame
) -> dict[int, pl.DataFrame]:
    """Per staged file: the records it quarantined while staging, plus those that conflict with an earlier record
    (of the store, or of an earlier file of the batch), with both records' amounts and where the earlier one is."""
    conflicts = states.filter(pl.col("_state") == "conflict")
    if conflicts.height:
        conflicts = conflicts.with_columns(_where=_earlier_records(plan_, conflicts))
    out = {}
    for i, it in staged:
        frame = pl.read_parquet(plan_.staging / f"{i:04d}" / "quarantine.parquet", glob=False)
        mine = conflicts.filter(pl.col("_file") == i)
        conflicting = (
            pl.scan_parquet(parts[i], glob=False).filter(pl.col("txn_id").is_in(mine["txn_id"].to_list())).collect()
            if mine.height else pl.DataFrame()
        )  # fmt: skip
        if conflicting.height:
            earlier = mine.select("txn_id", "f_ts", "f_amount", "f_currency", "f_file", "_where")
            conflicting = conflicting.join(earlier, on="txn_id", how="left")
            frame = pl.concat([frame, _seal(plan_.options).seal(conflicting.select(
                file=pl.lit(it.source.display), file_sha256=pl.lit(it.source.sha256),
                source_format=pl.lit(it.adapter), row=pl.col("source_row"),
                raw=pl.struct(pl.exclude("f_ts", "f_amount", "f_currency", "f_file", "_where"))
                .struct.json_encode(),
                reason=pl.format("conflicts with an earlier record of id {} (other {}: {} here, {} in {})",
                                 pl.col("txn_id"), _differs(), _key_text(""), _key_text("f_"), pl.col("_where")),
            )).cast(dict(QUARANTINE_SCHEMA))])  # type: ignore[arg-type]  # fmt: skip
        out[i] = frame
    return out


def _earlier_records(plan_: Plan, conflicts: pl.DataFrame) -> pl.Expr:
    """Where the first record of each conflicting id is, as a reason names it: an earlier file of this batch, or the
    stored batch and input file that hold it (found by id, for the conflicting ids only)."""
    in_batch = {i: f"{it.source.display} of this batch" for i, it in enumerate(plan_.items)}
    stored_ids = conflicts.filter(pl.col("f_file") < 0)["txn_id"]
    in_store: dict[str, str] = {}
    if stored_ids.len():
        store = Store(plan_.store)
        inputs = {str(entry["sha256"]): f"batch {manifest['batch']} ({entry.get('file', '')})"
                  for manifest in store.manifests() for entry in manifest["inputs"]}  # fmt: skip
        holders = (
            store.scan("transactions").filter(pl.col("txn_id").is_in(stored_ids.implode()))
            .select("txn_id", "source_file_sha256").collect().unique("txn_id", keep="first")
        )  # fmt: skip
        in_store = {txn: inputs.get(sha, "an earlier batch") for txn, sha in holders.iter_rows()}
    return (
        pl.when(pl.col("f_file") >= 0)
        .then(
            pl.col("f_file").replace_strict(in_batch, default="an earlier file of this batch", return_dtype=pl.String)
        )
        .otherwise(pl.col("txn_id").replace_strict(in_store, default="an earlier batch", return_dtype=pl.String))
    )


def _count(staged: Staged, states: pl.DataFrame, quarantined: dict[int, pl.DataFrame]) -> None:
    """Each staged file's final figures; ``rows read = accepted + quarantined`` is asserted."""
    for i, it in staged:
        rep = it.report
        if not it.labels_only:
            by_state = states.filter(pl.col("_file") == i)["_state"].value_counts() if states.height else None
            counts = {} if by_state is None else dict(zip(by_state["_state"].to_list(), by_state["count"].to_list(),
                                                          strict=True))  # fmt: skip
            rep.new, rep.merged = counts.get("new", 0), counts.get("merged", 0) + rep.merged_in_file
            rep.accepted = rep.new + rep.merged + it.reference_records
        rep.quarantined = quarantined[i].height
        rep.status = "ingested"
        rep.check()


def _write_quarantine(plan_: Plan, quarantined: dict[int, pl.DataFrame], out: Path) -> list[tuple[Path, str]]:
    frames = list(quarantined.values())
    quarantine = pl.concat(frames) if frames else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    if not quarantine.height:
        return []
    target = out / "quarantine.parquet"
    quarantine.write_parquet(target)
    return [(target, f"quarantine/{plan_.batch}.parquet")]


def _reference_tables(plan_: Plan, staged: Staged, out: Path) -> Files:
    """The batch's accounts and labels: every staged file's, identical rows once.

    An account's rows come from the last file of the batch (in the order given) that has it: a later file
    supersedes an earlier one, as a later batch supersedes an earlier one for readers (``Store.scan``).
    """
    files: Files = {}
    for table, schema in (("accounts", ACCOUNT_SCHEMA), ("labels", LABEL_SCHEMA)):
        parts = [plan_.staging / f"{i:04d}" / f"{table}.parquet" for i, _ in staged]
        present = [pl.read_parquet(p, glob=False) for p in parts if p.is_file()]
        if not present:
            continue
        if table == "accounts":
            present = _latest_file_per_account(present)
        frame = pl.concat(present, how="vertical_relaxed").unique(maintain_order=True)
        target = out / f"{table}.parquet"
        pq.write_table(conform(frame, schema, what=table), target, **PARQUET)
        files[table] = [(target, f"{table}/{plan_.batch}.parquet")]
    return files


def _latest_file_per_account(frames: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """Each file's account rows without the accounts a later file of the batch has."""
    kept: list[pl.DataFrame] = []
    later = pl.Series("account_id", [], dtype=pl.String)
    for frame in reversed(frames):
        kept.append(frame.filter(~pl.col("account_id").is_in(later.implode())))
        later = pl.concat([later, frame["account_id"]]).unique()
    return kept[::-1]


def _note_label_matches(
    plan_: Plan, staged: Staged, transactions: pl.Series, accounts: Callable[[], pl.Series]
) -> None:
    """Per file with labels: how many of its labelled transactions match, and how many label rows name nothing.

    ``transactions`` and ``accounts()`` are the ids the store holds once the batch is committed (accounts: those of
    the accounts table and of every transaction's sides; read only when a label names an account). Labels may
    come before the transactions they label: the note says so rather than refusing them.
    """
    account_ids: pl.Series | None = None
    for i, it in staged:
        labels_file = plan_.staging / f"{i:04d}" / "labels.parquet"
        if not labels_file.is_file():
            continue
        labels = pl.read_parquet(labels_file, glob=False)
        ids = labels.filter(pl.col("subject_kind") == "transaction")["subject_id"]
        if it.labels_only or (it.reference_records and ids.len()):
            found = ids.is_in(transactions.implode()).sum()
            what = "pattern transactions" if it.labels_only else "labelled transactions"
            it.report.notes.append(f"{found} of {ids.len()} {what} match stored transactions")
        for kind, hint in (("account", "the accounts' transactions"), ("transaction", "the transactions")):
            named = labels.filter(pl.col("subject_kind") == kind)["subject_id"]
            if not named.len():
                continue
            if kind == "account" and account_ids is None:
                account_ids = accounts()
            known = account_ids if kind == "account" else transactions
            assert known is not None
            missing = named.len() - int(named.is_in(known.implode()).sum())
            if missing:
                it.report.notes.append(
                    f"{missing} of {labels.height} label rows name {kind}s not in the store (fine if {hint} come "
                    "in a later ingest; otherwise check the ids)"
                )


def _stored_accounts(store: Store, files: Files) -> pl.Series:
    """Every account id the store holds once this batch's ``files`` are committed: accounts and transaction sides."""
    new_transactions = [path for path, _ in files.get("transactions", [])]
    new_accounts = [path for path, _ in files.get("accounts", [])]
    sources = [store.scan("transactions"), *(pl.scan_parquet(p, glob=False) for p in new_transactions)]
    frames = [
        frame
        for source in sources
        for frame in (source.select(account_id="src_account"), source.select(account_id="dst_account"))
    ]
    frames += [store.scan("accounts", history=True).select("account_id")]
    frames += [pl.scan_parquet(p, glob=False).select("account_id") for p in new_accounts]
    return pl.concat(frames).drop_nulls().unique().collect()["account_id"]


def _write_fx(plan_: Plan, fx: FxTable, out: Path) -> list[tuple[Path, str]]:
    """The FX table as the store keeps it, so that the rates outlive the ``--fx`` file."""
    target = out / "fx.parquet"
    pq.write_table(fx.to_frame().to_arrow(), target, **PARQUET)
    return [(target, f"fx/{plan_.batch}.parquet")]


def _manifest(plan_: Plan, staged: Staged, fx: FxTable) -> dict[str, Any]:
    """What describes the batch besides its files (which :meth:`Store.commit` adds)."""
    return {
        "finwatch": __version__,
        "ingest_config_sha256": plan_.options.config_sha256,
        "base_currency": plan_.options.base_currency,
        "fx_table": {"name": fx.name, "sha256": fx.sha256},
        "pseudonymised": plan_.options.pseudonym_key is not None,
        "inputs": [
            {"file": it.source.display, "sha256": it.source.sha256, "format": it.adapter,
             "detected": it.report.detected,
             "rows_read": it.report.rows_read, "accepted": it.report.accepted, "new": it.report.new,
             "merged": it.report.merged, "quarantined": it.report.quarantined}
            for _i, it in staged
        ],
    }  # fmt: skip


def _states(existing: pl.DataFrame, batch: pl.DataFrame) -> pl.DataFrame:
    """``_state`` of each batch record: new, merged (same id, time, amount, currency seen before) or conflict."""
    seen = pl.concat([existing, batch]).with_columns(_seq=pl.int_range(pl.len()))
    first = (
        seen.group_by("txn_id")
        .agg(pl.all().sort_by("_seq").first())
        .rename({"ts": "f_ts", "amount": "f_amount", "currency": "f_currency", "_file": "f_file", "_seq": "f_seq"})
    )
    batch = batch.with_columns(_seq=pl.int_range(pl.len()) + existing.height).join(first, on="txn_id", how="left")
    same = (
        (pl.col("ts") == pl.col("f_ts"))
        & (pl.col("amount") == pl.col("f_amount"))
        & (pl.col("currency") == pl.col("f_currency"))
    )
    return batch.with_columns(
        _state=pl.when(pl.col("_seq") == pl.col("f_seq"))
        .then(pl.lit("new"))
        .when(same)
        .then(pl.lit("merged"))
        .otherwise(pl.lit("conflict"))
    )


def _cleanup(plan_: Plan) -> None:
    shutil.rmtree(plan_.staging, ignore_errors=True)


def _settings(options: IngestOptions) -> StoreSettings:
    """The store's settings for these options: the key itself goes along to be checked (or, for a new store,
    recorded as a salted hash), never into ``store.json``."""
    return StoreSettings(options.base_currency, None, options.pseudonym_key)


@contextmanager
def writing(store_dir: Path, options: IngestOptions) -> Iterator[Store]:
    """Check the store (an existing one must have the same settings), hold its write lock, and clear a killed
    run's leftovers. Nothing is written to a new store until a batch is committed: a run that commits nothing
    leaves no ``store.json``, lock file or folder behind. The staging folder is removed however the run ends."""
    for what, key in (("pseudonym key", options.pseudonym_key), ("quarantine key", options.quarantine_key)):
        if key is not None:  # keys given to the library are held to what load_key and the command line require
            checked(key, what, "the ingest options")
    if options.quarantine_key is not None and options.quarantine_key == options.pseudonym_key:
        raise ConfigError(
            "the quarantine key is the pseudonym key: give another (whoever may read rejected records need not be "
            "able to compute pseudonyms)"
        )
    store = Store(store_dir)
    store.check(_settings(options))
    with store.lock():
        store.remove_orphans()
        try:
            yield store
        finally:
            shutil.rmtree(store.root / ".staging", ignore_errors=True)


def ingest(
    paths: list[Path],
    store_dir: Path,
    options: IngestOptions,
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> IngestReport:
    """Ingest ``paths`` into the store at ``store_dir`` as one batch (the library entry point of the CLI).

    ``progress(done, total, what)`` is told of each step before it starts: ``staging <file name>`` for each file
    to stage, then ``committing batch`` (``total`` counts both: the files to stage plus one).
    """
    with writing(store_dir, options):
        plan_ = plan(paths, store_dir, options)
        total = len(plan_.items) + 1
        try:
            reports = []
            for done, item in enumerate(plan_.items):
                if progress is not None:
                    progress(done, total, f"staging {Path(item.source.display).name}")
                reports.append(stage(item, plan_))
            if progress is not None:
                progress(total - 1, total, "committing batch")
            return commit(plan_, reports)
        except BaseException:
            _cleanup(plan_)  # a refused or failed batch leaves nothing behind (a killed one: the next ingest clears it)
            raise
