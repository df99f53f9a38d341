"""Reading text exports safely: encoding checks, CSV through DuckDB with rejected lines kept, line numbers."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from finwatch.exceptions import InputError
from finwatch.ingest._base import Source, fetch

__all__ = [
    "CsvRead",
    "csv_header",
    "csv_source",
    "decode_utf8",
    "finish_csv",
    "line_numbers",
    "read_csv",
    "require_columns",
]


def decode_utf8(source: Source, data: bytes, encoding: str = "utf-8") -> str:
    """Text of a file; a wrong encoding is one clear error naming the line."""
    if not data.strip():
        raise InputError(source.display, "file is empty")
    if b"\x00" in data[:65536] and encoding.lower().replace("_", "-") not in ("utf-16", "utf-16-le", "utf-16-be"):
        raise InputError(source.display, "binary data (NUL bytes), not a text export")
    try:
        return data.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            source.display,
            f"not valid {encoding} (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "re-export as UTF-8 or declare the file's encoding in the mapping",
            row=line,
        ) from None
    except LookupError:
        raise InputError(source.display, f"unknown encoding {encoding!r}") from None


def csv_header(text: str) -> list[str]:
    """The first line's column names, stripped and lower-cased (empty when it is not CSV)."""
    end = text.find("\n")
    first = (text if end < 0 else text[:end]).strip("\r")
    try:
        return [name.strip().lower() for name in next(csv.reader(io.StringIO(first)))]
    except (csv.Error, StopIteration):
        return []


def require_columns(
    source: Source, names: list[str], required: tuple[str, ...], optional: tuple[str, ...], what: str
) -> None:
    """Refuse a header that lacks a required column or repeats a name, naming the file and line 1."""
    missing = [c for c in required if c not in names]
    if missing:
        raise InputError(
            source.display,
            f"missing required columns {missing} ({what} has {', '.join(required)}, and optionally "
            f"{', '.join(optional)})",
            row=1,
        )
    if len(set(names)) != len(names):
        raise InputError(source.display, "repeated column names in the header", row=1)


def line_numbers(data: bytes, header_lines: int, skipped: set[int]) -> np.ndarray:
    """Physical line numbers (1-based) of the data records a CSV reader returned, in order.

    The reader skips blank lines and rejected lines (``skipped``); every other line after the header is a record.
    Quoted fields spanning lines are not supported by this mapping (callers check the count).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [len(buf)]])
    lengths = ends - starts
    # a line holding only "\r" (CRLF blank line) is blank too
    blank = (lengths == 0) | ((lengths == 1) & (buf[np.minimum(starts, len(buf) - 1)] == 13))
    numbers = np.arange(1, len(starts) + 1)
    keep = ~blank & (numbers > header_lines)
    if skipped:
        keep &= ~np.isin(numbers, np.fromiter(skipped, dtype=np.int64))
    return np.asarray(numbers[keep], dtype=np.int64)


@dataclass
class CsvRead:
    frame: pl.DataFrame  # the columns read as text, plus source_row (line number)
    rejected: pl.DataFrame  # source_row, _reason, _raw: lines the reader could not split into the columns
    notes: list[str]


def csv_source(
    source: Source,
    columns: list[str],
    *,
    delimiter: str = ",",
    quote: str = '"',
    header_lines: int = 1,
    path: Path | None = None,
) -> tuple[str, dict[str, object]]:
    """SQL for a CTE body reading ``columns`` as text with a record number ``_rec``, and its parameters.

    Lines that do not split into the columns go to DuckDB's ``reject_errors`` table (see :func:`finish_csv`).
    Column names are code constants or names from the file's header passed as parameters, never SQL text.
    """
    select = ", ".join(f"c{i} as f{i}" for i in range(len(columns)))
    sql = (  # only positional column numbers are formatted in; everything from the user is a bound parameter
        f"select row_number() over () as _rec, {select} from read_csv($path, header = false, skip = $skip, "  # noqa: S608
        "delim = $delim, quote = $quote, escape = $quote, columns = $columns, auto_detect = false, "
        "store_rejects = true, strict_mode = true, null_padding = false)"
    )
    params: dict[str, object] = {
        "path": str(path or source.path), "skip": header_lines, "delim": delimiter, "quote": quote,
        "columns": {f"c{i}": "VARCHAR" for i in range(len(columns))},
    }  # fmt: skip
    return sql, params


def finish_csv(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    data: bytes,
    frame: pl.DataFrame,
    header_lines: int = 1,
    notes: list[str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Turn ``_rec`` into ``source_row`` (physical line numbers) and collect the rejected lines."""
    notes = notes if notes is not None else []
    rejects = con.execute(
        "select line, error_type, csv_line, error_message from reject_errors order by line, column_idx"
    ).fetchall()
    by_line: dict[int, tuple[str, str]] = {}
    for line, error_type, raw, message in rejects:
        by_line.setdefault(int(line), (f"{str(error_type).lower()}: {message}", str(raw).strip("\r\n")))
    n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    simple = not by_line and b"\n\n" not in data and b"\n\r\n" not in data
    if simple and n_lines - header_lines == frame.height:
        lines = frame["_rec"].cast(pl.Int64) + header_lines
    else:
        found = line_numbers(data, header_lines, set(by_line))
        if len(found) == frame.height:
            lines = pl.Series(found, dtype=pl.Int64).gather(frame["_rec"].cast(pl.Int64) - 1)
        else:  # quoted fields span lines: number records instead (1 = the first record after the header)
            lines = frame["_rec"].cast(pl.Int64) + header_lines
            notes.append("quoted fields span lines: rows are numbered by record (header = 1), not by line")
    frame = frame.with_columns(source_row=lines).drop("_rec")
    keys = sorted(by_line)
    rejected = pl.DataFrame(
        {"source_row": keys, "_reason": [by_line[k][0] for k in keys], "_raw": [by_line[k][1] for k in keys]},
        schema={"source_row": pl.Int64, "_reason": pl.String, "_raw": pl.String},
    )
    return frame, rejected


def read_csv(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    data: bytes,
    columns: list[str],
    *,
    delimiter: str = ",",
    quote: str = '"',
    header_lines: int = 1,
    path: Path | None = None,
) -> CsvRead:
    """Read ``columns`` (all as text) with DuckDB; lines that do not fit are returned as rejected, not lost."""
    con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
    sql, params = csv_source(source, columns, delimiter=delimiter, quote=quote, header_lines=header_lines, path=path)
    frame = fetch(con, f"{sql} order by _rec", params)
    frame.columns = ["_rec", *columns]
    notes: list[str] = []
    frame, rejected = finish_csv(con, source, data, frame, header_lines, notes)
    return CsvRead(frame, rejected, notes)
