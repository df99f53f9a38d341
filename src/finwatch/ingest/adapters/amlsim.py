"""IBM AMLSim output: a folder holding ``transactions.csv``, account attributes and alert labels (or the bare file).

Transactions (``transactions.csv``), two layouts, told apart by header (column names are matched case-blind, in
any order; other columns are ignored):

* ``sourceNodeId,targetNodeId,value,time`` (the graph samples shipped with AMLSim): ``time`` is an integer step.
* ``tran_id,orig_acct,bene_acct,tx_type,base_amt,tran_timestamp,is_sar,alert_id`` (the converted output of
  ``convert_logs.py``): only ``orig_acct,bene_acct,base_amt,tran_timestamp`` are required. ``tran_id`` becomes
  ``txn_id`` (a blank id gets the pipeline's content hash, as does every row of the other layout).

Time. A step is a day: ``ts`` is ``ParseOptions.start`` (default **2017-01-01**, AMLSim's own ``base_date``) plus
that many days, at 00:00 UTC. ``tran_timestamp`` may also be a full timestamp (``2017-01-05T00:00:00Z``; one
without an offset is UTC) or a ``YYYYMMDD`` date; any other all-digit value is a step. A negative step, a step
beyond 100,000 days or an unparsable time is a rejected row.

Amounts are read from the text, never through a float: ``123.45``, ``+5``, ``.5`` and exponent forms such as
``1e3`` or ``2.5E-2`` are exact decimals. A value needing more than 18 decimal places, one too large for the
amount type, a negative or zero value, or anything else (``1,000``, ``nan``) is a rejected row with its reason.
AMLSim has no currency: every amount is in ``ParseOptions.currency`` (default USD).

Channel from ``tx_type`` (case-blind, ``_`` or space read as ``-``): TRANSFER and WIRE → wire; CHECK/CHEQUE →
cheque; CREDIT, DEBIT, PAYMENT and ACH → ach (account-to-account credit and debit transfers, not card
payments); CARD → card; CASH-IN/CASH-OUT → cash. Without ``tx_type`` (or with a blank one) the channel is wire;
any other type is kept as wire with ``description`` ``tx_type <TYPE>``. The simulator writes a cash deposit
(CASH-IN) as account → branch and a withdrawal (CASH-OUT) as branch → account: the account keeps its side, the
cash side is null and the branch id goes to ``branch``.

Accounts come from ``accounts.csv`` (or, without it, ``nodes.csv``), one ``bank_account`` per row: the id
(``acct_id``, ``account_id`` or ``nodeid``), institution from ``bank_id``, holder name from first and last name
(else ``dsply_nm``), holder type ``business`` when ``business_type``/``business``/``type`` says so (O, B, C,
ORGANIZATION, COMPANY, BUSINESS), else ``person``; ``country``, ``city``, currency (``acct_rptng_crncy``) and
opening date (``open_dt``, a date or a step) where present. The institution also fills the transactions'
``src_institution``/``dst_institution``.

Labels (account labels, source ``AMLSim <folder name>``):

* an alert file, the first present of ``alerts.csv``, ``alert_accounts.csv``, ``sar_accounts.csv``: one label
  per account and alert; typology from ``alert_type`` (or ``reason``/``check_name``) in lower snake case
  (``fan-in``, ``FanIn`` → ``fan_in``), instance ``<typology>-<alert id>``, role ``subject``/``member`` when the
  file marks the alert's main account (``is_subject``/``isMain``). An alert whose ``is_sar`` is false is one of
  AMLSim's false alerts, i.e. an innocent look-alike: label false, typology ``lookalike_<typology>``.
* an account flag in the accounts file (``isFraud``, ``is_fraud``, ``is_sar``, ``prior_sar_count`` — the
  converted output stores the SAR flag under that name): a flagged account without a positive alert label gets
  a label true with no instance (the file does not say which pattern it belongs to). Its typology is the single
  pattern kind ``metadata.txt`` names (``patterns: 200 fan-in`` → fan_in), else ``unspecified``.

Rows flagged ``is_sar`` in the converted layout are also labelled as transactions (``row_labels``), with the
typology and instance of their ``alert_id``. ``metadata.txt``'s transaction and node counts are checked against
what was read (a mismatch is a note). A bare transactions file is read alone: no accounts or account labels.

Lines that do not split into the header's columns (too few or too many fields, an unterminated quote) are
rejected rows. A carriage return inside a line (not part of a CRLF ending) makes the file unreadable: the CSV
reader would take it for a line break and the line numbers would no longer be the file's.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import duckdb
import polars as pl

from finwatch.exceptions import InputError
from finwatch.ingest._base import (
    Adapter,
    Parsed,
    ParseOptions,
    Sample,
    Source,
    conform_accounts,
    conform_parsed,
    duckdb_connection,
    fetch,
)
from finwatch.ingest._text import CsvRead, decode_utf8, read_csv
from finwatch.schema import LABEL_SCHEMA, polars_schema

__all__ = ["DEFAULT_START", "AmlSimAdapter"]

#: step 0 when ``ParseOptions.start`` is not given: AMLSim's default ``base_date``
DEFAULT_START: Final = dt.date(2017, 1, 1)
DEFAULT_CURRENCY: Final = "USD"
MAX_STEP: Final = 100_000  # days; far beyond any simulation, small enough for date arithmetic
TRANSACTIONS: Final = "transactions.csv"
ACCOUNT_FILES: Final = ("accounts.csv", "nodes.csv")
ALERT_FILES: Final = ("alerts.csv", "alert_accounts.csv", "sar_accounts.csv")
METADATA: Final = "metadata.txt"
SNIFF_BYTES: Final = 64 * 1024

CHANNELS: Final = {
    "TRANSFER": "wire", "WIRE": "wire", "CHECK": "cheque", "CHEQUE": "cheque", "CREDIT": "ach", "DEBIT": "ach",
    "PAYMENT": "ach", "ACH": "ach", "CARD": "card", "CASH-IN": "cash", "CASHIN": "cash", "CASH-OUT": "cash",
    "CASHOUT": "cash",
}  # fmt: skip
TRUE_TEXT: Final = ("1", "true", "t", "yes", "y")
FALSE_TEXT: Final = ("0", "false", "f", "no", "n")
BUSINESS_TEXT: Final = ("O", "B", "C", "ORG", "ORGANIZATION", "ORGANISATION", "COMPANY", "BUSINESS", "CORPORATE")


@dataclass(frozen=True)
class Layout:
    name: str
    src: str
    dst: str
    amount: str
    time: str
    steps_only: bool  # the time column holds only integer steps
    optional: tuple[tuple[str, tuple[str, ...]], ...] = ()  # field → accepted column names

    @property
    def required(self) -> tuple[str, ...]:
        return (self.src, self.dst, self.amount, self.time)

    @property
    def header(self) -> str:
        return ",".join(self.required)


LAYOUTS: Final = (
    Layout("sourceNodeId", "sourceNodeId", "targetNodeId", "value", "time", steps_only=True),
    Layout(
        "orig_acct", "orig_acct", "bene_acct", "base_amt", "tran_timestamp", steps_only=False,
        optional=(("txn", ("tran_id",)), ("type", ("tx_type",)), ("sar", ("is_sar", "is_fraud")),
                  ("alert", ("alert_id",))),
    ),
)  # fmt: skip
OPTIONAL_FIELDS: Final = ("txn", "type", "sar", "alert")

NUMBER = r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
TRANSFORM = f"""
with p as (
    select
        source_row,
        nullif(trim(src_raw), '') as o,
        nullif(trim(dst_raw), '') as b,
        nullif(trim(amount_raw), '') as a,
        nullif(trim(time_raw), '') as t,
        nullif(trim(txn_raw), '') as txn,
        nullif(trim(type_raw), '') as type_text,
        upper(regexp_replace(coalesce(trim(type_raw), ''), '[_ ]+', '-', 'g')) as ttype,
        nullif(lower(trim(sar_raw)), '') as sar_text,
        nullif(trim(alert_raw), '') as alert_text
    from rows_in
),
q as (
    select
        p.*,
        ch.channel as mapped,
        ttype in ('CASH-IN', 'CASHIN') as cash_in,
        ttype in ('CASH-OUT', 'CASHOUT') as cash_out,
        regexp_full_match(a, '\\+?{NUMBER}') as a_ok,
        regexp_full_match(a, '-{NUMBER}') as a_neg,
        length(rtrim(regexp_extract(a, '\\.([0-9]*)', 1), '0'))
            - coalesce(try_cast(regexp_extract(a, '[eE]([+-]?[0-9]+)$', 1) as integer), 0) as a_scale,
        case when regexp_full_match(t, '[0-9]+') and ($steps_only or length(t) <> 8)
             then try_cast(t as bigint) end as step
    from p left join channels ch on ch.name = p.ttype
),
r as (
    select
        q.*,
        case when a_ok and a_scale <= 18 then try_cast(a as decimal(38, 18)) end as amt,
        case
            when step is not null then
                case when step <= {MAX_STEP}
                     then timezone('UTC', cast($start as date) + to_days(cast(step as integer))) end
            when $steps_only then null
            when regexp_full_match(t, '[0-9]{{8}}') then timezone('UTC', try_strptime(t, '%Y%m%d'))
            else try_cast(t as timestamptz)
        end as ts
    from q
)
select
    txn as txn_id,
    ts,
    case when cash_in then null when cash_out then b else o end as src_account,
    case when cash_in then o when cash_out then null else b end as dst_account,
    amt as amount,
    $currency as currency,
    coalesce(mapped, 'wire') as channel,
    case when mapped is null and type_text is not null then 'tx_type ' || type_text end as description,
    case when cash_in then b when cash_out then o end as branch,
    source_row,
    coalesce(sar_text in ('1', 'true', 't', 'yes', 'y'), false) as _sar,
    case when alert_text not in ('-1', '') then alert_text end as _alert,
    case
        when cash_in and o is null then 'missing account ' || $src_col || ' of a cash deposit'
        when cash_out and b is null then 'missing account ' || $dst_col || ' of a cash withdrawal'
        when not (cash_in or cash_out) and o is null then 'missing source account ' || $src_col
        when not (cash_in or cash_out) and b is null then 'missing target account ' || $dst_col
        when a is null then 'missing amount ' || $amount_col
        when a_neg then 'negative amount ' || $amount_col || ' ''' || left(a, 40) || ''''
        when not a_ok then 'unparsable amount ' || $amount_col || ' ''' || left(a, 40) || ''''
        when a_scale > 18 then 'amount ' || $amount_col || ' ''' || left(a, 40) || ''' has more than 18 decimal places'
        when amt is null then 'amount ' || $amount_col || ' ''' || left(a, 40) || ''' is out of range'
        when amt = 0 then 'zero amount ' || $amount_col || ' ''' || left(a, 40) || ''''
        when t is null then 'missing time ' || $time_col
        when regexp_full_match(t, '-[0-9]+') then 'negative time step ' || $time_col || ' ''' || left(t, 40) || ''''
        when step is not null and ts is null
            then 'time step ' || $time_col || ' ''' || left(t, 40) || ''' is beyond {MAX_STEP:,} days'
        when ts is null then 'unparsable time ' || $time_col || ' ''' || left(t, 40) || ''''
        when sar_text is not null and sar_text not in {TRUE_TEXT + FALSE_TEXT}
            then 'is_sar must be true or false, not ''' || left(sar_text, 40) || ''''
    end as _reason
from r
order by source_row
"""  # noqa: S608 - the formatted parts are module constants; file values are bound as parameters


# --- header and small files ----------------------------------------------------------------------------------
def _split_header(line: str) -> list[str]:
    try:
        fields = next(csv.reader([line]), [])
    except csv.Error:
        return []
    return [f.strip().lstrip("\ufeff") for f in fields]


def _match(names: list[str]) -> tuple[Layout | None, Layout, list[str]]:
    """The layout the header fits (or None), the closest layout, and the required columns it lacks."""
    lower = {n.lower() for n in names}
    best, best_missing = LAYOUTS[0], list(LAYOUTS[0].required)
    for layout in LAYOUTS[::-1]:  # the richer layout wins a tie
        missing = [c for c in layout.required if c.lower() not in lower]
        if not missing:
            return layout, layout, []
        if len(missing) < len(best_missing) or (len(missing) == len(best_missing) and layout is LAYOUTS[-1]):
            best, best_missing = layout, missing
    return None, best, best_missing


def _index(names: list[str], *aliases: str) -> int | None:
    lower = [n.lower() for n in names]
    for alias in aliases:
        if alias.lower() in lower:
            return lower.index(alias.lower())
    return None


def _first_line(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return ""
    return head.decode("utf-8", errors="replace").lstrip("\ufeff").lstrip().split("\n", 1)[0].strip("\r")


def typology_name(text: str) -> str:
    """An alert or pattern type in lower snake case: ``fan-in``, ``FanIn``, ``FAN_IN`` → ``fan_in``."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text.strip())
    return re.sub(r"[^0-9a-z]+", "_", snake.lower()).strip("_") or "unspecified"


def _typology_expr(column: pl.Expr) -> pl.Expr:
    """``typology_name`` as a Polars expression."""
    snake = column.str.strip_chars().str.replace_all(r"([a-z0-9])([A-Z])", "${1}_${2}").str.to_lowercase()
    name = snake.str.replace_all(r"[^0-9a-z]+", "_").str.strip_chars("_")
    return pl.when(name.is_null() | (name == "")).then(pl.lit("unspecified")).otherwise(name)


def _text(column: str) -> pl.Expr:
    value = pl.col(column).str.strip_chars()
    return pl.when(value == "").then(pl.lit(None, pl.String)).otherwise(value)


def _flag(column: str) -> pl.Expr:
    """A SAR/fraud flag: true, yes, 1 … or a positive count."""
    value = pl.col(column).str.strip_chars().str.to_lowercase()
    count = value.cast(pl.Int64, strict=False)
    return (value.is_in(list(TRUE_TEXT)) | (count > 0)).fill_null(False)


@dataclass
class Table:
    """An auxiliary CSV of the folder, all text: columns ``c0``… in header order, plus ``source_row``."""

    name: str
    display: str
    header: list[str]
    read: CsvRead

    def column(self, *aliases: str) -> str | None:
        index = _index(self.header, *aliases)
        return None if index is None else f"c{index}"


def _read_table(path: Path, display: str, notes: list[str]) -> Table | None:
    source = Source(path, "", display)
    data = path.read_bytes()
    if not data.strip():
        notes.append(f"{path.name} is empty: ignored")
        return None
    text = decode_utf8(source, data)
    header = _split_header(text.split("\n", 1)[0].strip("\r"))
    if not header or not any(header):
        raise InputError(display, "no header line", row=1)
    read = _read(source, data, len(header))
    if read.rejected.height:
        notes.append(f"{path.name}: {read.rejected.height} malformed line(s) skipped "
                     f"(first at line {read.rejected['source_row'][0]})")  # fmt: skip
    return Table(path.name, display, header, read)


def _read(source: Source, data: bytes, width: int) -> CsvRead:
    """``read_csv`` of a file of ``width`` columns, with the cases it cannot number lines for as input errors."""
    stray = re.search(rb"\r(?!\n|$)", data)
    if stray:
        raise InputError(source.display, "carriage return inside a line (old Mac line endings or a stray \\r): "
                         "not supported", row=data.count(b"\n", 0, stray.start()) + 1)  # fmt: skip
    try:
        return read_csv(duckdb_connection(), source, data, [f"c{i}" for i in range(width)], path=source.path)
    except duckdb.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(source.display, f"cannot be read as CSV ({message})") from None


def _metadata(path: Path, notes: list[str]) -> dict[str, str]:
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        notes.append(f"{path.name} cannot be read ({exc.strerror}): ignored")
        return {}
    meta: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta.setdefault(key.strip().lower(), value.strip())
    return meta


def _count(text: str | None) -> int | None:
    match = re.match(r"\s*([0-9][0-9,]*)", text or "")
    return int(match[1].replace(",", "")) if match else None


def _pattern_kinds(text: str | None) -> list[str]:
    """Pattern kinds named by ``patterns: 200 fan-in, 200 cycle`` (in order, without repeats)."""
    kinds = [typology_name(kind) for _n, kind in re.findall(r"([0-9][0-9,]*)\s+([A-Za-z][A-Za-z_-]*)", text or "")]
    return list(dict.fromkeys(kinds))


# --- the adapter ---------------------------------------------------------------------------------------------
class AmlSimAdapter(Adapter):
    name = "amlsim"
    summary = "IBM AMLSim output folder (transactions.csv with accounts/nodes, alerts) or its transactions.csv"
    reads_directories = True

    @classmethod
    def sniff(cls, sample: Sample) -> str | None:
        if sample.is_dir:
            if TRANSACTIONS not in sample.names:
                return None
            layout, _closest, _missing = _match(_split_header(_first_line(sample.path / TRANSACTIONS)))
            if layout is None:
                return None
            extras = [n for n in (*ACCOUNT_FILES, *ALERT_FILES, METADATA) if n in sample.names]
            with_ = f" with {', '.join(extras)}" if extras else ""
            return f"AMLSim output folder, {layout.name} layout{with_}"
        layout, _closest, _missing = _match(_split_header(sample.first_line))
        return f"AMLSim transactions CSV, {layout.name} layout" if layout else None

    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        folder = source.path if source.path.is_dir() else None
        notes: list[str] = []
        if folder is not None:
            path = folder / TRANSACTIONS
            display = str(Path(source.display) / TRANSACTIONS)
            if not path.is_file():
                raise InputError(source.display, f"no {TRANSACTIONS} in this folder (an AMLSim output folder holds "
                                 f"{TRANSACTIONS}, and accounts.csv or nodes.csv)")  # fmt: skip
        else:
            path, display = source.path, source.display
        tx_source = Source(path, source.sha256, display)
        data = path.read_bytes()
        text = decode_utf8(tx_source, data)
        names = _split_header(text.split("\n", 1)[0].strip("\r"))
        layout, closest, missing = _match(names)
        if layout is None:
            if len(missing) == len(closest.required):
                expected = " or ".join(lay.header for lay in LAYOUTS)
                raise InputError(display, f"not an AMLSim transactions header (expected {expected}; "
                                 f"found {','.join(names[:8])[:120]!r})", row=1)  # fmt: skip
            raise InputError(display, f"missing required AMLSim columns {missing} ({closest.name} layout: "
                             f"{closest.header})", row=1)  # fmt: skip

        start = options.start or DEFAULT_START
        currency = (options.currency or DEFAULT_CURRENCY).strip().upper()
        accounts, flagged, alerts, meta = None, None, None, {}
        if folder is not None:
            meta = _metadata(folder / METADATA, notes) if (folder / METADATA).is_file() else {}
            accounts, flagged = self._accounts(folder, source.display, start, notes)
            alerts = self._alerts(folder, source.display, notes)

        read = _read(tx_source, data, len(names))
        rows = self._transform(read, names, layout, start, currency)
        rows = self._institutions(rows, accounts)
        lines = pl.Series("line", text.split("\n"), dtype=pl.String)
        rows = pl.concat([rows, read.rejected.drop("_raw")], how="diagonal_relaxed").sort("source_row")
        if rows.filter((pl.col("source_row") < 2) | (pl.col("source_row") > lines.len())).height:
            raise InputError(display, "records could not be matched to lines")
        rows = rows.with_columns(_raw=lines.gather(rows["source_row"] - 1).str.strip_suffix("\r"))

        kinds = _pattern_kinds(meta.get("patterns"))
        default_typology = kinds[0] if len(kinds) == 1 else "unspecified"
        if len(kinds) > 1:
            notes.append(f"{METADATA} names {len(kinds)} pattern kinds ({', '.join(kinds)}): flagged accounts "
                         "without an alert are labelled 'unspecified'")  # fmt: skip
        row_labels = self._row_labels(rows, alerts, default_typology) if layout.optional else None
        labels = None
        if folder is not None:
            labels = self._labels(alerts, flagged, default_typology, f"AMLSim {folder.name}", notes)
        if meta:
            self._check_counts(meta, rows.height, accounts, flagged, notes)

        parts = [f"AMLSim output folder, {layout.name} layout" if folder is not None else
                 f"AMLSim transactions CSV, {layout.name} layout (bare file: no accounts or alert labels)"]  # fmt: skip
        if accounts is not None:
            parts.append(f"{accounts.height:,} accounts")
        if labels is not None and labels.height:
            parts.append(f"{labels.height:,} account labels")
        return Parsed(
            rows=conform_parsed(rows),
            detected=", ".join(parts),
            accounts=accounts,
            labels=labels,
            row_labels=row_labels,
            notes=notes,
        )

    # --- transactions ----------------------------------------------------------------------------------------
    @staticmethod
    def _transform(read: CsvRead, names: list[str], layout: Layout, start: dt.date, currency: str) -> pl.DataFrame:
        def column(*aliases: str) -> pl.Expr:
            index = _index(names, *aliases)
            return pl.lit(None, pl.String) if index is None else pl.col(f"c{index}")

        optional = dict(layout.optional)
        rows_in = read.frame.select(
            "source_row",
            src_raw=column(layout.src),
            dst_raw=column(layout.dst),
            amount_raw=column(layout.amount),
            time_raw=column(layout.time),
            **{f"{field}_raw": column(*optional.get(field, ())) for field in OPTIONAL_FIELDS},
        )
        con = duckdb_connection()
        con.register("rows_in", rows_in)
        con.register("channels", pl.DataFrame({"name": list(CHANNELS), "channel": list(CHANNELS.values())}))
        params = {"start": start.isoformat(), "currency": currency, "steps_only": layout.steps_only,
                  "src_col": layout.src, "dst_col": layout.dst, "amount_col": layout.amount,
                  "time_col": layout.time}  # fmt: skip
        return fetch(con, TRANSFORM, params)

    @staticmethod
    def _institutions(rows: pl.DataFrame, accounts: pl.DataFrame | None) -> pl.DataFrame:
        if accounts is None or accounts["institution"].null_count() == accounts.height:
            return rows
        banks = accounts.select("account_id", "institution").unique("account_id", keep="first")
        for side in ("src", "dst"):
            rows = rows.join(
                banks.rename({"account_id": f"{side}_account", "institution": f"{side}_institution"}),
                on=f"{side}_account", how="left",
            )  # fmt: skip
        return rows

    # --- accounts --------------------------------------------------------------------------------------------
    @staticmethod
    def _accounts(
        folder: Path, display: str, start: dt.date, notes: list[str]
    ) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
        """(accounts, flagged account ids with their line) from accounts.csv or nodes.csv, if either is there."""
        present = [name for name in ACCOUNT_FILES if (folder / name).is_file()]
        if not present:
            notes.append("no accounts.csv or nodes.csv: no account attributes")
            return None, None
        if len(present) > 1:
            notes.append(f"{present[0]} read for accounts; {', '.join(present[1:])} ignored")
        table = _read_table(folder / present[0], str(Path(display) / present[0]), notes)
        if table is None:
            return None, None
        id_col = table.column("acct_id", "account_id", "accountid", "nodeid", "node_id", "id")
        if id_col is None:
            raise InputError(table.display, f"no account id column (acct_id, account_id or nodeid) in "
                             f"{','.join(table.header[:8])[:120]!r}", row=1)  # fmt: skip
        frame = table.read.frame

        def text(*aliases: str) -> pl.Expr:
            col = table.column(*aliases)
            return pl.lit(None, pl.String) if col is None else _text(col)

        first, last = text("first_name"), text("last_name")
        full = pl.concat_str([first, last], separator=" ", ignore_nulls=True)
        holder = pl.when(first.is_not_null() | last.is_not_null()).then(full).otherwise(text("dsply_nm"))
        kind_text = text("business_type", "business", "type").str.to_uppercase()
        opened = text("open_dt")
        opened_date = (
            pl.when(opened.str.contains(r"^[0-9]{8}$"))
            .then(opened.str.strptime(pl.Date, "%Y%m%d", strict=False))
            .when(opened.str.contains(r"^[0-9]{1,6}$"))
            .then(pl.lit(start) + pl.duration(days=opened.cast(pl.Int64, strict=False)))
            .otherwise(opened.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False))
            .cast(pl.Date)
        )
        accounts = frame.select(
            account_id=_text(id_col),
            kind=pl.lit("bank_account"),
            holder_type=pl.when(kind_text.is_in(list(BUSINESS_TEXT))).then(pl.lit("business")).otherwise(
                pl.lit("person")),
            holder_name=holder,
            institution=text("bank_id", "bankid", "bank"),
            country=text("country"),
            city=text("city"),
            currency=text("acct_rptng_crncy", "currency"),
            mcc=pl.lit(None, pl.String),
            opened_date=opened_date,
            links=pl.lit(None, pl.List(pl.String)),
            source_row=pl.col("source_row"),
        )  # fmt: skip
        blank = accounts.filter(pl.col("account_id").is_null())
        if blank.height:
            notes.append(f"{table.name}: {blank.height} row(s) without an account id skipped "
                         f"(first at line {blank['source_row'][0]})")  # fmt: skip
        accounts = conform_accounts(accounts.filter(pl.col("account_id").is_not_null()))
        flags = ("isfraud", "is_fraud", "issar", "is_sar", "prior_sar_count")
        flag_col = table.column(*flags)
        if flag_col is None:
            return accounts, None
        flag_name = table.header[_index(table.header, *flags) or 0]
        flagged = (
            frame.select(account_id=_text(id_col), flag=_flag(flag_col))
            .filter(pl.col("account_id").is_not_null() & pl.col("flag"))
            .select("account_id", source=pl.lit(f"{table.name} {flag_name}"))
            .unique("account_id", keep="first", maintain_order=True)
        )
        return accounts, flagged

    # --- labels ----------------------------------------------------------------------------------------------
    @staticmethod
    def _alerts(folder: Path, display: str, notes: list[str]) -> pl.DataFrame | None:
        """Alert membership: account_id, alert_id, typology, label, role (from the first alert file present)."""
        present = [name for name in ALERT_FILES if (folder / name).is_file()]
        if not present:
            return None
        if len(present) > 1:
            notes.append(f"{present[0]} read for alerts; {', '.join(present[1:])} ignored")
        table = _read_table(folder / present[0], str(Path(display) / present[0]), notes)
        if table is None:
            return None
        account = table.column("acct_id", "account_id", "accountid", "acct", "nodeid")
        kind = table.column("alert_type", "reason", "check_name", "typology", "type")
        missing = [name for name, col in (("acct_id", account), ("alert_type", kind)) if col is None]
        if account is None or kind is None:
            raise InputError(table.display, f"missing required alert columns {missing}", row=1)
        alert = table.column("alert_id", "alertid")
        sar = table.column("is_sar", "issar", "escalated_to_case_investigation")
        subject = table.column("is_subject", "ismain", "is_main")
        alerts = table.read.frame.select(
            "source_row",
            account_id=_text(account),
            alert_id=pl.lit(None, pl.String) if alert is None else _text(alert),
            typology=_typology_expr(pl.col(kind)),
            label=pl.lit(True) if sar is None else _flag(sar),
            role=pl.lit(None, pl.String) if subject is None else pl.when(_flag(subject)).then(pl.lit("subject"))
            .otherwise(pl.lit("member")),
        )  # fmt: skip
        blank = alerts.filter(pl.col("account_id").is_null())
        if blank.height:
            notes.append(f"{table.name}: {blank.height} row(s) without an account id skipped "
                         f"(first at line {blank['source_row'][0]})")  # fmt: skip
        return alerts.filter(pl.col("account_id").is_not_null()).drop("source_row")

    @staticmethod
    def _labels(
        alerts: pl.DataFrame | None, flagged: pl.DataFrame | None, default_typology: str, source: str,
        notes: list[str],
    ) -> pl.DataFrame:  # fmt: skip
        frames = []
        schema = polars_schema(LABEL_SCHEMA)
        positive = pl.DataFrame(schema={"account_id": pl.String})
        if alerts is not None and alerts.height:
            instance = pl.when(pl.col("alert_id").is_not_null()).then(
                pl.format("{}-{}", pl.col("typology"), pl.col("alert_id")))  # fmt: skip
            frames.append(alerts.select(
                subject_kind=pl.lit("account"), subject_id="account_id", label="label",
                typology=pl.when(pl.col("label")).then(pl.col("typology"))
                .otherwise(pl.format("lookalike_{}", pl.col("typology"))),
                instance_id=instance, role="role", source=pl.lit(source),
            ))  # fmt: skip
            positive = alerts.filter("label").select("account_id")
        if flagged is not None and flagged.height:
            extra = flagged.join(positive, on="account_id", how="anti").with_columns(typology=pl.lit(default_typology))
            frames.append(extra.select(
                subject_kind=pl.lit("account"), subject_id="account_id", label=pl.lit(True), typology="typology",
                instance_id=pl.lit(None, pl.String), role=pl.lit(None, pl.String), source=pl.lit(source),
            ))  # fmt: skip
            if extra.height:
                how = flagged["source"][0]
                kinds = ", ".join(sorted(set(extra["typology"].to_list())))
                notes.append(f"{extra.height:,} account label(s) from {how} (typology {kinds}; no alert ids, "
                             "so no pattern instances)")  # fmt: skip
        if not frames:
            return pl.DataFrame(schema=schema)
        labels = pl.concat([f.cast(dict(schema)) for f in frames]).unique(maintain_order=True)  # type: ignore[arg-type]
        return labels.select(list(schema.names()))

    @staticmethod
    def _row_labels(rows: pl.DataFrame, alerts: pl.DataFrame | None, default_typology: str) -> pl.DataFrame:
        flagged = rows.filter(pl.col("_sar") & pl.col("_reason").is_null()).select("source_row", "_alert")
        if alerts is not None and alerts.height:
            types = alerts.filter(pl.col("alert_id").is_not_null()).select(_alert="alert_id", typology="typology")
            flagged = flagged.join(types.unique("_alert", keep="first"), on="_alert", how="left")
        else:
            flagged = flagged.with_columns(typology=pl.lit(None, pl.String))
        return flagged.select(
            "source_row",
            typology=pl.col("typology").fill_null(default_typology),
            instance_id=pl.when(pl.col("_alert").is_not_null()).then(
                pl.format("{}-{}", pl.col("typology").fill_null(default_typology), pl.col("_alert"))),
        )  # fmt: skip

    @staticmethod
    def _check_counts(
        meta: dict[str, str], rows: int, accounts: pl.DataFrame | None, flagged: pl.DataFrame | None,
        notes: list[str],
    ) -> None:  # fmt: skip
        expected = _count(meta.get("transactions"))
        if expected is not None and expected != rows:
            notes.append(f"{METADATA} says {expected:,} transactions; {TRANSACTIONS} has {rows:,} records")
        nodes = _count(meta.get("nodes"))
        if nodes is not None and accounts is not None and nodes != accounts.height:
            notes.append(f"{METADATA} says {nodes:,} nodes; {accounts.height:,} accounts were read")
        fraud = re.search(r"([0-9][0-9,]*)\s+fraud", meta.get("nodes", ""))
        if fraud and flagged is not None and int(fraud[1].replace(",", "")) != flagged.height:
            notes.append(f"{METADATA} says {fraud[1]} fraud nodes; {flagged.height:,} accounts are flagged")
