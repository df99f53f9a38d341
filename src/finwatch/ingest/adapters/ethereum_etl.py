"""ethereum-etl exports: transactions and token transfers, each as CSV or JSON lines.

Layouts (as ``ethereum-etl export_blocks_and_transactions`` / ``export_token_transfers`` write them):

- transactions: ``hash, nonce, block_hash, block_number, transaction_index, from_address, to_address, value, gas,
  gas_price, input, block_timestamp, ...`` (newer versions add fee and receipt columns);
- token transfers: ``token_address, from_address, to_address, value, transaction_hash, log_index, block_number``
  (newer versions add ``block_timestamp`` and ``block_hash``).

A JSON lines file may hold both kinds: each line's ``type`` (``transaction`` / ``token_transfer``), or else its
keys, says which; lines of other types (blocks, logs) are kept as rows with a reason. A JSON array of such records
is read too (``source_row`` is then the 1-based record index).

Amounts are exact. ``value`` is a uint256 in wei, far beyond 64 bits, and is never read as a number: its decimal
digits are split into 18 fractional digits and the rest, so ``amount = value / 10^18`` exactly. The canonical
``decimal(38, 18)`` holds at most 20 integer digits (values below 10^38 wei); larger values get the reason
"amount exceeds the representable range" instead of being rounded.

- Transactions: ``txn_id`` is the transaction hash, currency ``ETH``. An empty ``to_address`` is a contract
  creation: ``dst_account`` is null and the description names the created contract when the receipt gives it.
- Token transfers: ``txn_id`` is ``<transaction_hash>:<log_index>``, currency ``ERC20:<token_address>``, and the
  amount is ``value / 10^18``. That assumes the common 18 decimals; a token with ``d`` other decimals (USDC has 6)
  is off by a power of ten but still exact, so multiplying by ``10^(18 - d)`` rescales it exactly once the
  token's decimals are known. ERC-721 transfers look the same in this export (``value`` is then the token id)
  and are not told apart.
- Timestamps come from ``block_timestamp`` (unix seconds or ISO 8601 text) when the row has one, else from the
  blocks file given as ``ParseOptions.blocks`` (ethereum-etl blocks, JSON lines or CSV, with ``number`` and
  ``timestamp``); a row with neither gets a reason.
- Addresses are lowercased (Ethereum addresses are case-insensitive; the mixed case of EIP-55 is only a checksum),
  so the same address is one account whatever the export's spelling.
- Records that move nothing are kept with a reason: a zero value (most contract calls), and a failed transaction
  (``receipt_status`` 0), whose value never left the sender. A transactions CSV without receipt columns cannot
  tell a failed transaction from a successful one: its value is taken as moved.

Chain ``ethereum``, channel ``crypto``. CSV goes through DuckDB (``read_csv`` keeps lines that do not fit), JSON
lines through DuckDB's JSON functions, which keep the exact digits of integers beyond 64 bits.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from finwatch.exceptions import InputError
from finwatch.ingest._base import (
    TIMESTAMP,
    Adapter,
    Parsed,
    ParseOptions,
    Sample,
    Source,
    duckdb_connection,
    fetch,
    json_raw,
    not_a_file,
)
from finwatch.ingest._text import decode_utf8, read_csv

#: every field the transform reads (missing ones are null)
FIELDS = ("type", "hash", "from_address", "to_address", "value", "block_number", "block_timestamp",
          "receipt_status", "receipt_contract_address", "token_address", "transaction_hash", "log_index")  # fmt: skip
TX_REQUIRED = ("hash", "from_address", "to_address", "value")
TT_REQUIRED = ("token_address", "from_address", "to_address", "value", "transaction_hash", "log_index")
TX_KEYS = frozenset({"hash", "from_address", "to_address", "value"})
TT_KEYS = frozenset({"token_address", "from_address", "to_address", "value", "transaction_hash", "log_index"})
KINDS = {"transaction": "transactions", "token_transfer": "token transfers"}
KEY = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"\s*:')
TYPE = re.compile(r'"type"\s*:\s*"([a-z_]+)"')

TRANSFORM = """
with src as (select * from rows_in),
blocks as (select number, min(ts) as ts from blocks_in group by number),
p as (
    select
        src.*,
        nullif(trim(value), '') as v,
        nullif(trim(block_timestamp), '') as bts,
        try_cast(nullif(trim(block_number), '') as bigint) as bn,
        lower(nullif(trim(from_address), '')) as src_addr,
        lower(nullif(trim(to_address), '')) as dst_addr,
        lower(nullif(trim(hash), '')) as tx_hash,
        lower(nullif(trim(transaction_hash), '')) as tt_hash,
        lower(nullif(trim(token_address), '')) as token,
        coalesce(cast(try_cast(trim(log_index) as bigint) as varchar), nullif(trim(log_index), '')) as log_i
    from src
),
q as (
    select
        p.*,
        case when regexp_full_match(coalesce(v, ''), '[0-9]+') then coalesce(nullif(ltrim(v, '0'), ''), '0')
        end as digits,
        case when bts is null then null
             when regexp_full_match(bts, '[0-9]{1,11}') then to_timestamp(cast(bts as bigint))
             else try_cast(bts as timestamptz) end as ts_own,
        b.ts as ts_block
    from p left join blocks b on b.number = p.bn
),
final as (
    select
        case when kind = 'transaction' then tx_hash else tt_hash || ':' || log_i end as txn_id,
        coalesce(ts_own, ts_block) as ts,
        src_addr as src_account,
        dst_addr as dst_account,
        case when digits is not null and length(digits) <= 38 then cast(
            (case when length(digits) > 18 then left(digits, length(digits) - 18) else '0' end)
            || '.' || lpad(right(digits, 18), 18, '0') as decimal(38, 18)) end as amount,
        case when kind = 'transaction' then 'ETH' else 'ERC20:' || token end as currency,
        'crypto' as channel,
        'ethereum' as chain,
        concat_ws('; ',
            'block ' || coalesce(cast(bn as varchar), nullif(trim(block_number), '')),
            case when kind = 'transaction' and dst_addr is null then 'contract creation'
                 || coalesce(' of ' || lower(nullif(trim(receipt_contract_address), '')), '') end,
            case when kind = 'token_transfer' then 'token amount assumes 18 decimals' end
        ) as description,
        source_row,
        case
            when _pre is not null then _pre
            when kind = 'transaction' and tx_hash is null then 'missing hash'
            when kind = 'token_transfer' and (tt_hash is null or log_i is null)
                then 'missing transaction_hash or log_index'
            when kind = 'token_transfer' and token is null then 'missing token_address'
            when v is null then 'missing value'
            when regexp_full_match(v, '-[0-9]+') then 'negative value ' || v
            when digits is null then 'unparsable value ''' || v || ''' (expected a whole number of wei)'
            when length(digits) > 38 then 'amount exceeds the representable range: ' || v
                || ' wei is 10^20 units or more (decimal(38,18) holds at most 20 integer digits)'
            when bts is not null and ts_own is null then 'unparsable block_timestamp ''' || bts || ''''
            when ts_own is null and ts_block is null then case
                when $has_blocks then 'block ' || coalesce(nullif(trim(block_number), ''), '(missing)')
                    || ' is not in the blocks file'
                else 'no timestamp: the record has no block_timestamp and no blocks file was given' end
            when src_addr is null then 'missing from_address'
            when trim(coalesce(receipt_status, '')) = '0'
                then 'failed transaction (receipt_status 0): no value moved'
            when digits = '0' then case when kind = 'transaction'
                then 'zero value: no Ether moved (a contract call)' else 'zero-value token transfer' end
        end as _reason,
        _raw
    from q
)
select * from final order by source_row
"""

# JSON functions fail on invalid JSON even inside a CASE branch not taken: invalid lines are replaced by '{}'
# (between two queries) before any JSON function other than json_valid reads them. One json_extract_string
# with a list of paths parses each line once.
JSON_LINES = """
select
    source_row,
    {fields},
    case when not ok then 'invalid JSON (truncated or malformed line)'
         when json_type(js) <> 'OBJECT' then 'not a JSON object'
    end as _pre0
from (select source_row, ok, js, json_extract_string(js, [{paths}]) as v from lines_in)
"""


def _json_fields(con: duckdb.DuckDBPyConnection, lines: pl.DataFrame, fields: tuple[str, ...]) -> pl.DataFrame:
    """``fields`` of each JSON line as text (exact digits for any integer), with ``_pre0`` for invalid lines."""
    table = lines.to_arrow()
    con.register("lines_raw", table)
    valid = con.sql("select json_valid(line) as ok from lines_raw").to_arrow_table()["ok"]
    table = pa.table({"source_row": table["source_row"], "ok": valid,
                      "js": pc.if_else(valid, table["line"], pa.scalar("{}", table["line"].type))})  # fmt: skip
    con.unregister("lines_raw")
    con.register("lines_in", table)
    # field names are constants of this module, not user input
    paths = ", ".join(f"'$.{f}'" for f in fields)
    columns = ", ".join(f"v[{i}] as {f}" for i, f in enumerate(fields, start=1))
    return fetch(con, JSON_LINES.format(fields=columns, paths=paths))


def _text_of(frame: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name) if name in frame.columns else pl.lit(None, pl.String).alias(name)


def _raw_lines(data: bytes, numbers: list[int]) -> list[str]:
    """The text of the given physical lines (1-based)."""
    if not numbers:
        return []
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [len(buf)]])
    return [data[starts[n - 1] : ends[n - 1]].decode("utf-8", errors="replace").rstrip("\r") for n in numbers]


def _header(text: str) -> list[str]:
    end = text.find("\n")
    first = (text if end < 0 else text[:end]).strip("\r")
    try:
        return [name.strip() for name in next(csv.reader(io.StringIO(first)))]
    except (csv.Error, StopIteration):
        return []


def _csv_kind(names: list[str] | set[str]) -> str | None:
    have = set(names)
    if {"token_address", "transaction_hash", "log_index"} <= have:
        return "token_transfer"
    if "hash" in have and ("nonce" in have or "gas" in have or "transaction_index" in have):
        return "transaction"
    return None


def _json_lines(text: str) -> pl.DataFrame:
    """Non-blank lines with their line numbers; a JSON array becomes one line per element (its index)."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = json.loads(text, parse_int=int)
        except json.JSONDecodeError as exc:
            raise InputError("", f"invalid JSON array ({exc.msg})", row=exc.lineno) from None
        if not isinstance(records, list):
            raise InputError("", "not a JSON array or JSON lines")
        lines = [json_raw(r) if isinstance(r, dict) else json.dumps(r) for r in records]
        return pl.DataFrame({"line": lines, "source_row": list(range(1, len(lines) + 1))},
                            schema={"line": pl.String, "source_row": pl.Int64})  # fmt: skip
    series = pl.Series("line", text.split("\n"), dtype=pl.String).str.strip_suffix("\r")
    frame = pl.DataFrame({"line": series}).with_columns(source_row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
    return frame.filter(pl.col("line").str.strip_chars() != "")


class EthereumEtlAdapter(Adapter):
    name = "ethereum-etl"
    summary = "ethereum-etl transactions or token transfers (CSV or JSON lines), values exact to the wei"

    @classmethod
    def sniff(cls, sample: Sample) -> str | None:
        if sample.is_dir:
            return None
        line = sample.first_line
        if line.startswith("{"):
            kind = _json_kind(line)
            return f"ethereum-etl {KINDS[kind]} JSON lines" if kind else None
        if line.startswith("["):
            kind = _json_kind(line.lstrip("[ \t"))
            return f"ethereum-etl {KINDS[kind]} JSON array" if kind else None
        names = [n.strip().strip('"') for n in line.split(",")]
        kind = _csv_kind(names)
        if kind is None:
            return None
        needed = TX_KEYS if kind == "transaction" else TT_KEYS
        return f"ethereum-etl {KINDS[kind]} CSV" if len(needed & set(names)) >= len(needed) - 1 else None

    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        data = source.read_bytes()
        text = decode_utf8(source, data)
        con = duckdb_connection()
        con.execute("set enable_progress_bar = false")  # large exports must not draw on the terminal
        blocks = _blocks(con, options.blocks)
        lines: pl.DataFrame | None = None
        rejected: pl.DataFrame | None = None
        if text.lstrip().startswith(("{", "[")):
            try:
                lines = _json_lines(text)
                rows_in, detected = self._json(con, lines, text)
            except InputError as exc:
                raise InputError(source.display, exc.reason, exc.row) from None
        else:
            rows_in, rejected, detected = self._csv(con, source, data, text)
        con.register("rows_in", rows_in)
        con.register("blocks_in", blocks)
        rows = fetch(con, TRANSFORM, {"has_blocks": options.blocks is not None})
        con.close()
        # the original text of every record with a reason
        bad = rows.filter(pl.col("_reason").is_not_null()).select("source_row")
        if bad.height:
            if lines is not None:
                raw = bad.join(lines.rename({"line": "_raw_line"}), on="source_row", how="left")
            else:
                raw = bad.with_columns(
                    _raw_line=pl.Series(_raw_lines(data, bad["source_row"].to_list()), dtype=pl.String)
                )
            rows = (
                rows.join(raw, on="source_row", how="left", maintain_order="left")
                .with_columns(_raw=pl.col("_raw_line"))
                .drop("_raw_line")
            )
        if rejected is not None:
            rows = pl.concat([rows, rejected], how="diagonal_relaxed").sort("source_row")
        return Parsed(rows, detected, notes=_notes(rows))

    def _csv(
        self, con: duckdb.DuckDBPyConnection, source: Source, data: bytes, text: str
    ) -> tuple[pl.DataFrame, pl.DataFrame, str]:
        names = _header(text)
        kind = _csv_kind(names)
        if kind is None:
            raise InputError(
                source.display,
                "not an ethereum-etl transactions or token transfers CSV: the header names neither "
                "hash and nonce nor token_address, transaction_hash and log_index",
                row=1,
            )
        required = TX_REQUIRED if kind == "transaction" else TT_REQUIRED
        missing = [c for c in required if c not in names]
        if missing:
            raise InputError(source.display, f"missing required columns {missing}", row=1)
        if len(set(names)) != len(names):
            raise InputError(source.display, "repeated column names in the header", row=1)
        read = read_csv(con, source, data, names)
        frame = read.frame
        rows_in = frame.select(
            *[_text_of(frame, f) for f in FIELDS if f != "type"],
            "source_row",
            kind=pl.lit(kind),
            _pre=pl.lit(None, pl.String),
            _raw=pl.lit(None, pl.String),
        )
        rejected = read.rejected.with_columns(
            channel=pl.lit("crypto"),
            chain=pl.lit("ethereum"),
            currency=pl.lit("ETH" if kind == "transaction" else None),
        )
        return rows_in, rejected, f"ethereum-etl {KINDS[kind]} CSV"

    def _json(self, con: duckdb.DuckDBPyConnection, lines: pl.DataFrame, text: str) -> tuple[pl.DataFrame, str]:
        frame = _json_fields(con, lines, FIELDS)
        frame = frame.with_columns(
            kind=pl.coalesce(
                "type",
                pl.when(pl.col("token_address").is_not_null())
                .then(pl.lit("token_transfer"))
                .when(pl.col("hash").is_not_null())
                .then(pl.lit("transaction")),
            ),
            _raw=pl.lit(None, pl.String),
        ).drop("type")
        frame = frame.with_columns(
            _pre=pl.when(pl.col("_pre0").is_not_null())
            .then(pl.col("_pre0"))
            .when(pl.col("kind").is_null())
            .then(pl.lit("not an ethereum-etl transaction or token transfer record"))
            .when(~pl.col("kind").is_in(list(KINDS)))
            .then(pl.format("ethereum-etl {} record, not a transaction or token transfer", pl.col("kind")))
        ).drop("_pre0")
        kinds = frame.filter(pl.col("_pre").is_null())["kind"].value_counts()
        counts = dict(zip(kinds["kind"].to_list(), kinds["count"].to_list(), strict=True))
        if not counts:
            raise InputError("", "no ethereum-etl transaction or token transfer in the file", row=None)
        form = "JSON array" if text.lstrip().startswith("[") else "JSON lines"
        if len(counts) == 1:
            detected = f"ethereum-etl {KINDS[next(iter(counts))]} {form}"
        else:
            detected = f"ethereum-etl {form} ({', '.join(f'{n} {KINDS[k]}' for k, n in sorted(counts.items()))})"
        return frame, detected


def _json_kind(line: str) -> str | None:
    match = TYPE.search(line)
    if match and match[1] in KINDS:
        return match[1]
    keys = set(KEY.findall(line))
    if keys >= TT_KEYS:
        return "token_transfer"
    if keys >= TX_KEYS and ("nonce" in keys or "gas" in keys):
        return "transaction"
    return None


def _notes(rows: pl.DataFrame) -> list[str]:
    reasons = rows["_reason"].drop_nulls()
    notes = [f"{rows.height} records read, {rows.height - reasons.len()} moved value"]
    if reasons.len():
        # the reason up to its first colon or parenthesis names its kind
        kinds = reasons.str.extract(r"^([^:(']*)").str.strip_chars().value_counts(sort=True)
        listed = ", ".join(f"{n} {k}" for k, n in zip(kinds[kinds.columns[0]], kinds["count"], strict=True))
        notes.append(f"kept with a reason: {listed}")
    return notes


BLOCKS = """
select
    source_row,
    try_cast(nullif(trim(number), '') as bigint) as number,
    case when regexp_full_match(trim(coalesce(timestamp, '')), '[0-9]{1,11}') then to_timestamp(cast(trim(timestamp)
         as bigint)) else try_cast(nullif(trim(timestamp), '') as timestamptz) end as ts,
    number as number_text,
    timestamp as ts_text
from blocks_raw
"""


def _blocks(con: duckdb.DuckDBPyConnection, path: Path | None) -> pl.DataFrame:
    """Block number → timestamp from an ethereum-etl blocks file (JSON lines or CSV); empty without one."""
    empty = pl.DataFrame(schema={"number": pl.Int64, "ts": TIMESTAMP})
    if path is None:
        return empty
    source = Source(Path(path), "", f"{path} (blocks file)")
    if problem := not_a_file(source.path):  # a FIFO or a device would be read forever
        raise InputError(source.display, problem)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InputError(source.display, f"cannot read ({exc.strerror})") from None
    text = decode_utf8(source, data)
    if text.lstrip().startswith(("{", "[")):
        try:
            lines = _json_lines(text)
        except InputError as exc:
            raise InputError(source.display, exc.reason, exc.row) from None
        raw = _json_fields(con, lines, ("number", "timestamp"))
        bad = raw.filter(pl.col("_pre0").is_not_null())
        if bad.height:
            raise InputError(source.display, str(bad["_pre0"][0]), row=bad["source_row"][0])
    else:
        names = _header(text)
        missing = [c for c in ("number", "timestamp") if c not in names]
        if missing:
            raise InputError(source.display, f"not an ethereum-etl blocks file: missing columns {missing}", row=1)
        read = read_csv(con, source, data, names)
        if read.rejected.height:
            first = read.rejected.row(0, named=True)
            raise InputError(source.display, str(first["_reason"]), row=first["source_row"])
        raw = read.frame.select("source_row", "number", "timestamp")
    con.register("blocks_raw", raw)
    blocks = fetch(con, BLOCKS)
    bad = blocks.filter(pl.col("number").is_null() | pl.col("ts").is_null())
    if bad.height:
        row: dict[str, Any] = bad.row(0, named=True)
        raise InputError(
            source.display,
            f"unparsable block number {row['number_text']!r} or timestamp {row['ts_text']!r}",
            row=row["source_row"],
        )
    return blocks.select("number", "ts")
