"""finwatch's own canonical tables: transactions, ground-truth labels and account reference data.

Four inputs:

- **transactions as Parquet** with ``TRANSACTION_SCHEMA`` (``finwatch.table = transactions``; ``finwatch synth``
  writes ``truth/transactions.parquet``): the fast, lossless way to move transactions between stores or to load a
  synthetic world completely (each bank-format export covers only some of its banks). ``txn_id``, ``ts``,
  ``amount``, ``currency`` and ``channel`` are required columns; the accounts, institutions and context columns are
  optional (missing ones are null). ``amount_base`` and the lineage columns are not read: the pipeline recomputes
  them, as for any export. Amounts must be exact (decimal or integer columns; floating point is refused);
- **labels as Parquet** with ``LABEL_SCHEMA`` (``finwatch synth`` writes ``labels/accounts.parquet`` and
  ``labels/transactions.parquet``; their Arrow schema metadata says ``finwatch.table = labels``);
- **labels as CSV** with the header ``subject_kind,subject_id,label,typology`` and optionally ``instance_id``,
  ``role`` and ``source`` (columns in any order; other columns are ignored), e.g. the confirmed case outcomes a
  bank's case-management system exports. ``label`` reads ``true/false``, ``1/0`` and ``yes/no`` in any case;
- **accounts as Parquet** with ``ACCOUNT_SCHEMA`` (``finwatch.table = accounts``; ``finwatch synth`` writes
  ``truth/accounts.parquet``). Accounts give ``holder_type`` (person, business, merchant, exchange), which some
  rules need, and the holders' customer data (schema version 2; a file written before has no such columns, which
  are then null). Lineage columns in the file are replaced by this file's lineage.

Detection: a Parquet file (magic bytes ``PAR1``) whose schema metadata names the transactions, labels or accounts
table, or a CSV with the labels header. A Parquet file without that metadata is read only when the format is given
(``--format finwatch-tables``): its columns then decide between labels, accounts and transactions.

Every record is a row read: accepted (into ``transactions``, ``labels`` or ``accounts``), or quarantined with its
reason. A transaction needs a ``txn_id``, ``ts``, ``amount``, ``currency`` and a known ``channel`` (values are taken
as they are: the table is canonical already); the pipeline checks the rest as for any export (positive amounts,
timestamps in 1970–2099, an account on at least one side, an FX rate). A label needs ``subject_kind`` account or
transaction (any case), a ``subject_id``, a readable ``label`` and a ``typology``; an account needs an
``account_id``, a known ``kind`` and a known ``holder_type``, and where given a known ``id_type`` and ``status``, a
two-letter ``id_country`` and a ``birth_date`` not after the day of the ingest. Label and account values are
trimmed; an empty text is missing. A label without ``source`` gets ``finwatch-tables <file name>``. Row numbers are
physical lines for CSV (header = line 1) and 1-based record numbers for Parquet, whose quarantined records keep
their values as JSON. Account ids (of transactions, of account labels, of accounts and their links) and the
accounts' identifying customer data are pseudonymised by the pipeline when a key is set (the raw values of a
quarantined record are then withheld or encrypted); transaction ids never are. A file that cannot be read at all
(damaged Parquet, missing columns, a column of the wrong type) is rejected with one message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from finwatch.exceptions import InputError
from finwatch.ingest._base import (
    PARSED_ACCOUNT_COLUMNS,
    PARSED_SCHEMA,
    Adapter,
    Parsed,
    ParseOptions,
    Sample,
    Source,
    conform_parsed,
    control_reason,
    duckdb_connection,
    ingest_date,
    json_raw,
)
from finwatch.ingest._text import csv_header, decode_utf8, read_csv, require_columns
from finwatch.schema import (
    ACCOUNT_SCHEMA,
    LABEL_SCHEMA,
    TRANSACTION_SCHEMA,
    AccountKind,
    AccountStatus,
    Channel,
    HolderType,
    IdType,
    SubjectKind,
    polars_schema,
)

__all__ = ["FinwatchTablesAdapter"]

MAGIC: Final = b"PAR1"
TABLE_KEY: Final = b"finwatch.table"
LABEL_REQUIRED: Final = ("subject_kind", "subject_id", "label", "typology")
LABEL_OPTIONAL: Final = ("instance_id", "role", "source")
ACCOUNT_REQUIRED: Final = ("account_id", "kind", "holder_type")
ACCOUNT_OPTIONAL: Final = tuple(c for c in PARSED_ACCOUNT_COLUMNS if c not in (*ACCOUNT_REQUIRED, "source_row"))
TRUE_TEXT: Final = ("true", "1", "yes")
FALSE_TEXT: Final = ("false", "0", "no")
SUBJECT_KINDS: Final = tuple(k.value for k in SubjectKind)
ACCOUNT_KINDS: Final = tuple(k.value for k in AccountKind)
HOLDER_TYPES: Final = tuple(h.value for h in HolderType)
ID_TYPES: Final = tuple(i.value for i in IdType)
STATUSES: Final = tuple(s.value for s in AccountStatus)
CHANNELS: Final = tuple(c.value for c in Channel)
TXN_REQUIRED: Final = ("txn_id", "ts", "amount", "currency", "channel")
TXN_OPTIONAL: Final = tuple(c for c in PARSED_SCHEMA if c not in (*TXN_REQUIRED, "source_row", "_reason", "_raw"))
#: canonical columns the pipeline recomputes for every file: present in the table, not read
TXN_RECOMPUTED: Final = tuple(c for c in TRANSACTION_SCHEMA.names if c not in (*TXN_REQUIRED, *TXN_OPTIONAL))
KINDS: Final = ("transactions", "labels", "accounts")


def _table_kind(schema: pa.Schema) -> str | None:
    """``labels`` or ``accounts`` from a Parquet schema's finwatch metadata (other values are returned as is)."""
    metadata = schema.metadata or {}
    value = metadata.get(TABLE_KEY)
    return value.decode("utf-8", errors="replace") if value is not None else None


def _text(name: str) -> pl.Expr:
    """A column as trimmed text; empty text is null."""
    value = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(value != "").then(value)


def _text_columns(frame: pl.DataFrame, names: tuple[str, ...]) -> list[str]:
    """The text columns among ``names`` (a NUL in one of them would be stored as it is)."""
    return [n for n in names if frame.schema.get(n) == pl.String()]


def _message(exc: Exception) -> str:
    text = str(exc).strip().removeprefix("Could not open Parquet input source '<Buffer>': ")
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind))


def _read(source: Source, file: pq.ParquetFile, columns: list[str]) -> pa.Table:
    """The named columns of an opened Parquet file; a damaged data page rejects the file."""
    try:
        return file.read(columns=columns, use_threads=True)
    except (pa.ArrowException, OSError, ValueError) as exc:  # read from memory: any failure is the content's
        raise InputError(source.display, f"not a readable Parquet file ({_message(exc)})") from None


class FinwatchTablesAdapter(Adapter):
    name = "finwatch-tables"
    summary = (
        "finwatch's own tables: transactions and accounts (Parquet), labels (Parquet or CSV); ground truth and "
        "reference data"
    )

    @classmethod
    def sniff(cls, sample: Sample) -> str | None:
        if sample.is_dir:
            return None
        if sample.head.startswith(MAGIC):
            try:
                metadata = pq.read_metadata(sample.path)  # the footer only
                kind = _table_kind(metadata.schema.to_arrow_schema())
            except Exception:  # a damaged footer: parse names the problem
                return "Parquet file (not readable)"
            if kind == "transactions":
                return f"finwatch transactions ({metadata.num_rows} rows)"
            return f"finwatch {kind} table (Parquet)" if kind in ("labels", "accounts") else None
        names = csv_header(sample.text.lstrip())
        if set(LABEL_REQUIRED) <= set(names):
            return "finwatch labels CSV"
        return None

    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        data = source.read_bytes()
        if data.startswith(MAGIC):
            return self._parquet(source, data)
        return self._labels_csv(source, data)

    # --- Parquet --------------------------------------------------------------------------------------------
    def _parquet(self, source: Source, data: bytes) -> Parsed:
        try:  # the footer first: a transactions table is read column by column, only the columns it needs
            file = pq.ParquetFile(pa.BufferReader(data))
            schema = file.schema_arrow
        except (pa.ArrowException, OSError, ValueError) as exc:  # read from memory: any failure is the content's
            raise InputError(source.display, f"not a readable Parquet file ({_message(exc)})") from None
        if len(set(schema.names)) != len(schema.names):
            raise InputError(source.display, "repeated column names")
        names = set(schema.names)
        kind = _table_kind(schema)
        if kind is None:  # no finwatch metadata (format given explicitly): the columns decide
            kind = (
                "labels" if set(LABEL_REQUIRED) <= names
                else "accounts" if "account_id" in names
                else "transactions" if {"txn_id", "ts", "amount"} <= names
                else None
            )  # fmt: skip
        if kind not in KINDS:
            what = f"its finwatch.table is {kind!r}" if kind else "it has no finwatch.table metadata"
            raise InputError(
                source.display,
                f"not a finwatch transactions, labels or accounts table ({what}); only those tables are read as "
                f"{self.name}",
            )
        if kind == "transactions":
            return self._transactions(source, file, schema)
        table = _read(source, file, schema.names)
        if kind == "labels":
            frame = self._columns(source, table, LABEL_REQUIRED, LABEL_OPTIONAL, text=True)
            return self._labels(source, frame)
        frame = self._columns(source, table, ACCOUNT_REQUIRED, ACCOUNT_OPTIONAL, text=False)
        return self._accounts(source, frame)

    def _transactions(self, source: Source, file: pq.ParquetFile, schema: pa.Schema) -> Parsed:
        """Canonical transactions as ``PARSED_SCHEMA`` rows, vectorised: the pipeline validates, converts and
        stores them like any export's."""
        missing = [c for c in TXN_REQUIRED if c not in schema.names]
        if missing:
            raise InputError(
                source.display, f"missing required columns {missing} (required: {', '.join(TXN_REQUIRED)})"
            )
        amount_type = schema.field("amount").type
        if pa.types.is_floating(amount_type):
            raise InputError(
                source.display, f"column 'amount' is {amount_type}, which is not exact (decimal or integer amounts)"
            )
        present = [c for c in (*TXN_REQUIRED, *TXN_OPTIONAL) if c in schema.names]
        table = _read(source, file, present)
        arrays = {}
        for name in present:
            target = TRANSACTION_SCHEMA.field(name).type
            column = table.column(name)
            keep = column.type.equals(target) or (target == pa.string() and _is_text(column.type))
            try:
                arrays[name] = column if keep else column.cast(target, safe=True)
            except (pa.ArrowException, ValueError) as exc:
                raise InputError(
                    source.display, f"column {name!r} cannot be read as {target} ({_message(exc)})"
                ) from None
        frame = pl.from_arrow(pa.table(arrays))
        assert isinstance(frame, pl.DataFrame)
        txn_id, channel, currency = pl.col("txn_id"), pl.col("channel"), pl.col("currency")
        reason = (
            pl.when(txn_id.is_null() | (txn_id.str.strip_chars() == ""))
            .then(pl.lit("missing txn_id"))
            .when(pl.col("ts").is_null())
            .then(pl.lit("missing ts"))
            .when(pl.col("amount").is_null())
            .then(pl.lit("missing amount"))
            .when(currency.is_null() | (currency.str.strip_chars() == ""))
            .then(pl.lit("missing currency"))
            .when(channel.is_null())
            .then(pl.lit("missing channel"))
            .when(~channel.is_in(CHANNELS))
            .then(pl.format("unknown channel '{}' (one of {})", channel, pl.lit(", ".join(CHANNELS))))
        )
        rows = frame.with_columns(
            [pl.lit(None, PARSED_SCHEMA[c]).alias(c) for c in TXN_OPTIONAL if c not in frame.columns]
        ).with_columns(
            source_row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
            _reason=reason,
            _raw=pl.lit(None, pl.String),  # the pipeline keeps a rejected record's values as JSON
        )
        parsed = Parsed(rows=conform_parsed(rows), detected=f"finwatch transactions ({frame.height} rows)")
        ignored = [c for c in schema.names if c not in (*present, *TXN_RECOMPUTED)]
        if ignored:
            parsed.notes.append(f"columns ignored: {', '.join(ignored)}")
        return parsed

    @staticmethod
    def _columns(
        source: Source, table: pa.Table, required: tuple[str, ...], optional: tuple[str, ...], *, text: bool
    ) -> pl.DataFrame:
        """The known columns of ``table`` (missing optional ones as nulls), as text or as their canonical types,
        with ``source_row`` (1-based record number) and ``_raw`` (the record as JSON)."""
        missing = [c for c in required if c not in table.column_names]
        if missing:
            raise InputError(source.display, f"missing required columns {missing} (required: {', '.join(required)})")
        schema = LABEL_SCHEMA if text else ACCOUNT_SCHEMA
        present = [c for c in (*required, *optional) if c in table.column_names]
        arrays = {}
        for name in present:
            target = pa.string() if text else schema.field(name).type
            column = table.column(name)
            try:
                arrays[name] = column if column.type.equals(target) else column.cast(target, safe=True)
            except (pa.ArrowException, ValueError) as exc:
                raise InputError(
                    source.display, f"column {name!r} cannot be read as {target} ({_message(exc)})"
                ) from None
        frame = pl.from_arrow(pa.table(arrays)) if arrays else pl.DataFrame()
        assert isinstance(frame, pl.DataFrame)
        for name in (*required, *optional):
            if name not in frame.columns:
                dtype = pl.String() if text else polars_schema(schema)[name]
                frame = frame.with_columns(pl.lit(None, dtype).alias(name))
        return (
            frame.select(*required, *optional)
            .with_row_index("source_row", offset=1)
            .with_columns(pl.col("source_row").cast(pl.Int64), _raw=pl.lit(None, pl.String))
        )

    # --- CSV ------------------------------------------------------------------------------------------------
    def _labels_csv(self, source: Source, data: bytes) -> Parsed:
        text = decode_utf8(source, data)
        names = csv_header(text)
        require_columns(source, names, LABEL_REQUIRED, LABEL_OPTIONAL, "a labels CSV")
        con = duckdb_connection()
        con.execute("set enable_progress_bar = false")
        read = read_csv(con, source, data, names)
        frame = read.frame.with_columns(
            [pl.lit(None, pl.String).alias(c) for c in LABEL_OPTIONAL if c not in read.frame.columns]
        ).select(*LABEL_REQUIRED, *LABEL_OPTIONAL, "source_row")
        raw = dict(zip(frame["source_row"].to_list(), read.raw(frame["source_row"].to_list()), strict=True))
        frame = frame.with_columns(_raw=pl.col("source_row").replace_strict(raw, default=None, return_dtype=pl.String))
        parsed = self._labels(source, frame, rejected=read.rejected)
        ignored = [c for c in names if c not in (*LABEL_REQUIRED, *LABEL_OPTIONAL)]
        if ignored:
            parsed.notes.append(f"columns ignored: {', '.join(ignored)}")
        parsed.notes.extend(read.notes)
        return parsed

    # --- records --------------------------------------------------------------------------------------------
    def _labels(self, source: Source, frame: pl.DataFrame, rejected: pl.DataFrame | None = None) -> Parsed:
        kind, subject, flag, typology = (_text(c) for c in LABEL_REQUIRED)
        flag_lower = flag.str.to_lowercase()
        reason = (
            pl.when(kind.is_null())
            .then(pl.lit("missing subject_kind"))
            .when(~kind.str.to_lowercase().is_in(SUBJECT_KINDS))
            .then(pl.format("unknown subject_kind '{}' (account or transaction)", kind))
            .when(subject.is_null())
            .then(pl.lit("missing subject_id"))
            .when(flag.is_null())
            .then(pl.lit("missing label"))
            .when(~flag_lower.is_in((*TRUE_TEXT, *FALSE_TEXT)))
            .then(pl.format("unparsable label '{}' (true/false, 1/0 or yes/no)", flag))
            .when(typology.is_null())
            .then(pl.lit("missing typology"))
        )
        checked = frame.with_columns(
            _reason=pl.coalesce(reason, control_reason(_text_columns(frame, LABEL_REQUIRED + LABEL_OPTIONAL)))
        )
        good = checked.filter(pl.col("_reason").is_null())
        default_source = f"{self.name} {Path(source.display).name}"
        labels = good.select(
            subject_kind=kind.str.to_lowercase(),
            subject_id=subject,
            label=flag_lower.is_in(TRUE_TEXT),
            typology=typology,
            instance_id=_text("instance_id"),
            role=_text("role"),
            source=pl.coalesce(_text("source"), pl.lit(default_source)),
        ).select(list(LABEL_SCHEMA.names))
        bad = self._rejected(checked, [*LABEL_REQUIRED, *LABEL_OPTIONAL], rejected)
        return Parsed(
            rows=bad,
            detected=f"finwatch labels ({frame.height + (0 if rejected is None else rejected.height)} rows)",
            labels=labels,
            reference_records=labels.height,
        )

    def _accounts(self, source: Source, frame: pl.DataFrame) -> Parsed:
        account, kind, holder = (_text(c) for c in ACCOUNT_REQUIRED)
        id_type, id_country, status = _text("id_type"), _text("id_country"), _text("status")
        reason = (
            pl.when(account.is_null())
            .then(pl.lit("missing account_id"))
            .when(kind.is_null())
            .then(pl.lit("missing kind"))
            .when(~kind.is_in(ACCOUNT_KINDS))
            .then(pl.format("unknown kind '{}' (one of {})", kind, pl.lit(", ".join(ACCOUNT_KINDS))))
            .when(holder.is_null())
            .then(pl.lit("missing holder_type"))
            .when(~holder.is_in(HOLDER_TYPES))
            .then(pl.format("unknown holder_type '{}' (one of {})", holder, pl.lit(", ".join(HOLDER_TYPES))))
            .when(pl.col("birth_date") > pl.lit(ingest_date()))
            .then(pl.lit("birth_date in the future"))
            .when(id_type.is_not_null() & ~id_type.is_in(ID_TYPES))
            .then(pl.format("unknown id_type '{}' (one of {})", id_type, pl.lit(", ".join(ID_TYPES))))
            .when(id_country.is_not_null() & ~id_country.str.contains(r"^[A-Z]{2}$"))
            .then(pl.format("id_country '{}' is not an ISO 3166 alpha-2 code", id_country))
            .when(status.is_not_null() & ~status.is_in(STATUSES))
            .then(pl.format("unknown status '{}' (one of {})", status, pl.lit(", ".join(STATUSES))))
        )
        checked = frame.with_columns(
            _reason=pl.coalesce(reason, control_reason(_text_columns(frame, ACCOUNT_REQUIRED + ACCOUNT_OPTIONAL)))
        )
        accounts = (
            checked.filter(pl.col("_reason").is_null())
            .with_columns(
                account_id=account, kind=kind, holder_type=holder, id_type=id_type, id_country=id_country, status=status
            )
            .select(PARSED_ACCOUNT_COLUMNS)
        )
        bad = self._rejected(checked, [*ACCOUNT_REQUIRED, *ACCOUNT_OPTIONAL], None)
        return Parsed(
            rows=bad,
            detected=f"finwatch accounts ({frame.height} rows)",
            accounts=accounts,
            reference_records=accounts.height,
            personal=True,
        )

    @staticmethod
    def _rejected(checked: pl.DataFrame, fields: list[str], rejected: pl.DataFrame | None) -> pl.DataFrame:
        """Rejected records as ``PARSED_SCHEMA`` rows: ``source_row``, ``_reason`` and ``_raw`` (JSON when the
        record has no line of text)."""
        bad = checked.filter(pl.col("_reason").is_not_null())
        as_json = [
            json_raw({k: record[k] for k in fields}) if record["_raw"] is None else None
            for record in bad.iter_rows(named=True)
        ]
        bad = bad.select("source_row", "_reason", _raw=pl.coalesce(pl.col("_raw"), pl.Series(as_json, dtype=pl.String)))
        if rejected is not None and rejected.height:
            bad = pl.concat([bad, rejected.select("source_row", "_reason", "_raw")]).sort("source_row")
        return conform_parsed(bad) if bad.height else pl.DataFrame(schema=PARSED_SCHEMA)
