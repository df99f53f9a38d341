"""Reading text exports safely: encoding checks, CSV through DuckDB with rejected lines kept, line numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from finwatch.exceptions import InputError
from finwatch.ingest._base import Source, fetch

__all__ = ["CsvRead", "decode_utf8", "line_numbers", "read_csv"]


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
    return numbers[keep]


@dataclass
class CsvRead:
    frame: pl.DataFrame  # the columns read as text, plus source_row (line number)
    rejected: pl.DataFrame  # source_row, _reason, _raw: lines the reader could not split into the columns


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
    spec = {f"c{i}": "VARCHAR" for i in range(len(columns))}  # positional: header names may repeat
    frame = fetch(
        con,
        "select * from read_csv($path, header = false, skip = $skip, delim = $delim, quote = $quote, "
        "escape = $quote, columns = $columns, auto_detect = false, store_rejects = true, strict_mode = true, "
        "null_padding = false)",
        {"path": str(path or source.path), "skip": header_lines, "delim": delimiter, "quote": quote,
         "columns": spec},
    )
    frame.columns = columns
    rejects = con.execute(
        "select line, error_type, csv_line, error_message from reject_errors order by line, column_idx"
    ).fetchall()
    by_line: dict[int, tuple[str, str]] = {}
    for line, error_type, raw, message in rejects:
        # DuckDB counts lines after the skipped header from the skip point; make them physical line numbers
        by_line.setdefault(int(line), (f"{str(error_type).lower()}: {message}", str(raw).strip("\r\n")))
    lines = line_numbers(data, header_lines, set(by_line))
    if len(lines) != frame.height:
        raise InputError(
            source.display,
            f"could not map {frame.height} records to lines ({len(lines)} candidate lines): quoted fields "
            "spanning lines are not supported",
        )
    frame = frame.with_columns(source_row=pl.Series(lines, dtype=pl.Int64))
    rejected = pl.DataFrame(
        {
            "source_row": [k for k in sorted(by_line)],
            "_reason": [by_line[k][0] for k in sorted(by_line)],
            "_raw": [by_line[k][1] for k in sorted(by_line)],
        },
        schema={"source_row": pl.Int64, "_reason": pl.String, "_raw": pl.String},
    )
    return CsvRead(frame, rejected)
