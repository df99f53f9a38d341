"""Reading text exports safely: encoding checks, one line reader that accounts for every byte, CSV through DuckDB.

Every CSV goes through :func:`split_records` before DuckDB reads it. It splits the file into records at line
feeds, the way DuckDB will (a quoted field may continue on the next lines), and refuses, before any parsing, the
lines a reader could lose or misread: a line longer than :data:`MAX_LINE_BYTES`, a line with a control character
(C0 other than tab, line feed and carriage return, or a carriage return that does not end the line), and a line
whose quote does not close into a record of the header's fields within :data:`MAX_RECORD_LINES` lines (that line
alone is refused; the next line starts a new record). Refused lines are returned as rejected rows with their line
number, a reason and their text (cut to :data:`RAW_LIMIT` characters); DuckDB reads only the other records (a
copy of the file without the refused lines when there are any), and what it returns is checked against the
records handed to it: rows read = rows accepted + rows rejected, or the file is rejected.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from finwatch.exceptions import InputError
from finwatch.ingest._base import Source, fetch

__all__ = [
    "HOSTILE_XML_REASON",
    "MAX_LINE_BYTES",
    "MAX_RECORD_LINES",
    "RAW_LIMIT",
    "CsvRead",
    "RecordText",
    "Records",
    "clip_raw",
    "csv_header",
    "csv_records",
    "csv_source",
    "decode_utf8",
    "finish_csv",
    "read_csv",
    "refuse_dtd",
    "require_columns",
    "split_records",
    "xml_encoding",
]

#: a line (or a record whose quoted field spans lines) longer than this is refused before a CSV reader sees it
MAX_LINE_BYTES = 1_000_000
#: the most lines one record may span (a quoted field with line breaks); an open quote that does not close within
#: them is an unterminated quote: its line is refused and the next line starts a new record
MAX_RECORD_LINES = 100
#: characters of a rejected record's text kept in quarantine
RAW_LIMIT = 2_000
_DUCKDB_LINE = 2_000_000  # DuckDB's own default max_line_size
#: what DuckDB takes for a file name pattern
_PATTERN = re.compile(r"[*?\[\]{}]")


def decode_utf8(source: Source, data: bytes, encoding: str = "utf-8") -> str:
    """Text of a file; a wrong encoding is one clear error naming the line.

    A NUL byte in the first 64 KiB (what detection reads) makes the file binary data, not a text export; control
    characters after that are refused by the reader of the records that hold them (a line of a CSV, a field).
    """
    if not data.strip():
        raise InputError(source.display, "file is empty")
    nul = data.find(b"\x00", 0, 65536)
    if nul >= 0 and encoding.lower().replace("_", "-") not in ("utf-16", "utf-16-le", "utf-16-be"):
        raise InputError(
            source.display, "binary data (NUL bytes), not a text export", row=data.count(b"\n", 0, nul) + 1
        )
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


def clip_raw(text: str) -> str:
    """A rejected record's text as quarantine keeps it: at most :data:`RAW_LIMIT` characters, and says so."""
    if len(text) <= RAW_LIMIT:
        return text
    return f"{text[:RAW_LIMIT]}… (cut: {len(text)} characters)"


# --- XML ---------------------------------------------------------------------------------------------------------
_HOSTILE_XML = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_HOSTILE_BYTES = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
HOSTILE_XML_REASON = "XML with DOCTYPE/ENTITY declarations is refused (entity expansion or external entities)"
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))  # fmt: skip
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def xml_encoding(data: bytes) -> str:
    """The encoding an XML parser reads ``data`` in: its byte order mark, else the width of its first characters
    (XML 1.0, appendix F), else the encoding its declaration names, else UTF-8."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    head = data[:4]
    if len(head) == 4:
        if head[:3] == b"\x00\x00\x00" and head[3]:
            return "utf-32-be"
        if head[0] and head[1:] == b"\x00\x00\x00":
            return "utf-32-le"
        if head[0] == 0 and head[1] and head[2] == 0:
            return "utf-16-be"
        if head[0] and head[1] == 0 and head[3] == 0:
            return "utf-16-le"
    declared = _DECLARED.match(data[:1024])
    return declared[1].decode("ascii").lower() if declared else "utf-8"


def refuse_dtd(source: Source, data: bytes) -> None:
    """Refuse XML with a DOCTYPE or ENTITY declaration, found in the document's own encoding (UTF-16 and UTF-32
    with or without a byte order mark, or what its declaration names), not only in ASCII bytes."""
    encoding = xml_encoding(data)
    try:
        text = data.decode(encoding, errors="replace")
    except LookupError:
        raise InputError(source.display, f"XML in an encoding that cannot be checked ({encoding})") from None
    if _HOSTILE_XML.search(text) or _HOSTILE_BYTES.search(data):
        raise InputError(source.display, HOSTILE_XML_REASON)


# --- CSV ---------------------------------------------------------------------------------------------------------
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


@dataclass
class RecordText:
    """The text of a file's records (accepted or refused), found by their first line."""

    data: bytes
    first: np.ndarray  # first physical line (1-based) of each record, ascending
    spans: np.ndarray  # (n, 2): byte offsets [start, end) of each record's text, without its final line break

    def raw(self, rows: Sequence[int]) -> list[str | None]:
        """The text of the records starting at ``rows`` (None for a row that starts none), cut for quarantine."""
        wanted = np.asarray(rows, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.first, wanted), max(len(self.first) - 1, 0))
        found = (at < len(self.first)) & (self.first[at] == wanted) if len(self.first) else np.zeros(len(wanted), bool)
        spans = self.spans[at].tolist() if len(self.first) else []
        return [
            clip_raw(self.data[start:end].decode("utf-8", errors="replace").rstrip("\r")) if ok else None
            for ok, (start, end) in zip(found.tolist(), spans or [(0, 0)] * len(wanted), strict=True)
        ]


@dataclass
class Records:
    """A CSV split into records by :func:`split_records`: what DuckDB reads, and the lines refused before it."""

    path: Path  # what DuckDB reads: the file itself, or a copy with the header and the records only
    header_lines: int
    first: np.ndarray  # first physical line (1-based) of each record in ``path``, in order
    rejected: pl.DataFrame  # source_row, _reason, _raw: lines refused before reading
    text: RecordText
    temporary: bool  # ``path`` is a copy to delete


def split_records(
    source: Source,
    data: bytes,
    width: int,
    *,
    delimiter: str = ",",
    quote: str = '"',
    header_lines: int = 1,
    path: Path | None = None,
) -> Records:
    """Split ``data`` (UTF-8, the content of ``path``; None when it is on no disk as it is) into records.

    Every line after the header is blank, part of one record handed to the CSV reader, or part of one refused
    record (see the module's docstring). The caller deletes ``Records.path`` when ``Records.temporary``
    (:func:`csv_records` does).
    """
    limit, span_limit = MAX_LINE_BYTES, MAX_RECORD_LINES
    buf = np.frombuffer(data, dtype=np.uint8)
    size = len(buf)
    low = np.flatnonzero(buf < 32)  # positions of control bytes, line feeds included
    kinds = buf[low]
    newlines = low[kinds == 10]
    starts = np.concatenate([[0], newlines + 1]).astype(np.int64)
    ends = np.concatenate([newlines, [size]]).astype(np.int64)
    if len(starts) > 1 and starts[-1] == size:  # the file ends with a line feed: no line after it
        starts, ends = starts[:-1], ends[:-1]
    n_lines = len(starts)
    length = ends - starts
    ends_cr = (length > 0) & (buf[np.clip(ends - 1, 0, max(size - 1, 0))] == 13) if size else length > 0
    blank = (length == 0) | ((length == 1) & ends_cr)
    # control characters: C0 other than tab, LF and CR, and a CR that does not end its line
    crs = low[kinds == 13]
    stray = crs[(crs + 1 < size) & (buf[np.minimum(crs + 1, max(size - 1, 0))] != 10)]
    controls = np.sort(np.concatenate([low[(kinds != 9) & (kinds != 10) & (kinds != 13)], stray]))
    control_line = np.searchsorted(starts, controls, side="right") - 1
    control_lines, first_control = np.unique(control_line, return_index=True)
    control_code = dict(zip(control_lines.tolist(), buf[controls[first_control]].tolist(), strict=True))
    control = np.zeros(n_lines, dtype=bool)
    control[control_lines] = True
    quote_byte = quote.encode() if quote else b""
    if len(quote_byte) == 1:
        quotes = np.flatnonzero(buf == quote_byte[0])
        odd = (np.searchsorted(quotes, ends) - np.searchsorted(quotes, starts)) % 2 == 1
    else:
        odd = np.zeros(n_lines, dtype=bool)
    over = length > limit
    data_line = np.arange(n_lines) >= header_lines
    odd_lines = np.flatnonzero(odd)

    covered = np.zeros(n_lines, dtype=bool)
    several: list[tuple[int, int]] = []  # accepted records spanning lines: (first, last) line index
    refused: list[tuple[int, int, str]] = []
    after = header_lines  # the first line not yet part of a record
    for i in np.flatnonzero((over | odd | control) & data_line).tolist():
        if i < after:
            continue  # inside a record spanning lines
        last = i
        if over[i]:
            refused.append((i, i, f"line longer than {limit} bytes ({int(length[i])} bytes)"))
            after = i + 1
            continue
        if odd[i]:
            k = int(np.searchsorted(odd_lines, i, side="right"))
            j = int(odd_lines[k]) if k < len(odd_lines) else -1
            if (j < 0 or j - i + 1 > span_limit or over[i : j + 1].any() or ends[j] - starts[i] > limit
                    or not _splits(data[starts[i] : ends[j]], width, delimiter, quote)):  # fmt: skip
                refused.append((i, i, f"unterminated quote: the quoted field opened on this line does not close "
                                      f"into a record of {width} fields within {span_limit} lines"))  # fmt: skip
                after = i + 1
                continue
            last = j
        if control[i : last + 1].any():
            at = i + int(np.argmax(control[i : last + 1]))
            refused.append((i, last, _control_reason(control_code[at], last > i)))
        else:
            several.append((i, last))
        covered[i : last + 1] = True
        after = last + 1
    for i, last, _reason in refused:
        covered[i : last + 1] = True
    single = np.flatnonzero(data_line & ~blank & ~covered)
    firsts = np.concatenate([single, np.array([a for a, _ in several], dtype=np.int64)]).astype(np.int64)
    lasts = np.concatenate([single, np.array([b for _, b in several], dtype=np.int64)]).astype(np.int64)
    order = np.argsort(firsts, kind="stable")
    first, last_line = firsts[order], lasts[order]

    all_first = np.concatenate([first, np.array([r[0] for r in refused], dtype=np.int64)])
    all_last = np.concatenate([last_line, np.array([r[1] for r in refused], dtype=np.int64)])
    order = np.argsort(all_first, kind="stable")
    text = RecordText(data, all_first[order] + 1, np.stack([starts[all_first[order]], ends[all_last[order]]], axis=1))
    raws = text.raw([r[0] + 1 for r in refused])
    rejected = pl.DataFrame(
        {"source_row": [r[0] + 1 for r in refused], "_reason": [r[2] for r in refused], "_raw": raws},
        schema={"source_row": pl.Int64, "_reason": pl.String, "_raw": pl.String},
    )
    stray_blank = bool((data_line & blank & ~covered).any())
    # DuckDB's read_csv expands ``*``, ``?`` and ``[…]`` in a path (even a bound one): such a path gets the copy
    if path is not None and not refused and not stray_blank and not _PATTERN.search(str(path)):
        return Records(path, header_lines, first + 1, rejected, text, temporary=False)
    # a copy with the header and the records only (line breaks as they are): DuckDB numbers its records 1, 2, ...
    # after the header
    header_end = int(starts[header_lines]) if header_lines < n_lines else size
    pieces = [data[:header_end]]
    if len(first):
        rec_start = starts[first]
        rec_end = np.minimum(ends[last_line] + 1, size)  # with its line feed
        breaks = np.flatnonzero(rec_start[1:] != rec_end[:-1]) + 1  # contiguous records are copied as one piece
        for a, b in zip(np.concatenate([[0], breaks]).tolist(), np.concatenate([breaks, [len(first)]]).tolist(),
                        strict=True):  # fmt: skip
            pieces.append(data[int(rec_start[a]) : int(rec_end[b - 1])])  # only the file's last line has no LF
    handle = tempfile.NamedTemporaryFile(prefix="finwatch-", suffix=".csv", delete=False)  # noqa: SIM115
    with handle:
        handle.writelines(pieces)
    return Records(Path(handle.name), header_lines, first + 1, rejected, text, temporary=True)


def _control_reason(code: int, several_lines: bool) -> str:
    where = "record" if several_lines else "line"
    allowed = "text fields may hold tab and line breaks only"
    if code == 13:  # DuckDB would end a line there
        return f"carriage return inside a {where} (U+000D not ending a line; {allowed})"
    return f"control character U+{code:04X} in the {where} ({allowed})"


def _splits(record: bytes, width: int, delimiter: str, quote: str) -> bool:
    """Whether a record spanning lines reads as one record of ``width`` fields."""
    if len(delimiter) != 1 or len(quote) != 1:
        return True  # the CSV reader decides alone
    text = record.decode("utf-8", errors="replace")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote, doublequote=True,
                               strict=True))  # fmt: skip
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == width


@contextmanager
def csv_records(
    source: Source,
    data: bytes,
    width: int,
    *,
    delimiter: str = ",",
    quote: str = '"',
    header_lines: int = 1,
    path: Path | None = None,
) -> Iterator[Records]:
    """:func:`split_records`, deleting its copy of the file afterwards."""
    records = split_records(source, data, width, delimiter=delimiter, quote=quote, header_lines=header_lines,
                            path=path)  # fmt: skip
    try:
        yield records
    finally:
        if records.temporary:
            records.path.unlink(missing_ok=True)


@dataclass
class CsvRead:
    frame: pl.DataFrame  # the columns read as text, plus source_row (line number)
    rejected: pl.DataFrame  # source_row, _reason, _raw: lines that are not records of the header's columns
    notes: list[str]
    text: RecordText | None = None  # each record's text, by its first line

    def raw(self, rows: Sequence[int]) -> list[str | None]:
        return self.text.raw(rows) if self.text is not None else [None] * len(rows)


def csv_source(
    source: Source, columns: list[str], *, records: Records, delimiter: str = ",", quote: str = '"'
) -> tuple[str, dict[str, object]]:
    """SQL for a CTE body reading ``columns`` of ``records`` as text with a record number ``_rec``, and its
    parameters.

    Records that do not split into the columns go to DuckDB's ``reject_errors`` table (see :func:`finish_csv`).
    Column names are code constants or names from the file's header passed as parameters, never SQL text.
    """
    select = ", ".join(f"c{i} as f{i}" for i in range(len(columns)))
    sql = (  # only positional column numbers are formatted in; everything from the user is a bound parameter
        f"select row_number() over () as _rec, {select} from read_csv($path, header = false, skip = $skip, "  # noqa: S608
        "delim = $delim, quote = $quote, escape = $quote, columns = $columns, auto_detect = false, "
        "store_rejects = true, strict_mode = true, null_padding = false, max_line_size = $max_line)"
    )
    params: dict[str, object] = {
        "path": str(records.path), "skip": records.header_lines, "delim": delimiter, "quote": quote,
        "columns": {f"c{i}": "VARCHAR" for i in range(len(columns))},
        "max_line": max(_DUCKDB_LINE, MAX_LINE_BYTES + 4096),
    }  # fmt: skip
    return sql, params


def finish_csv(
    con: duckdb.DuckDBPyConnection, source: Source, records: Records, frame: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Turn ``_rec`` into ``source_row`` (the record's first physical line) and collect every rejected record.

    DuckDB numbers the records of ``records.path`` after the header (one number per record, however many lines
    it spans); the records it returned plus those it rejected must be exactly the records it was handed.
    """
    n = len(records.first)
    rejects = con.execute("select line, error_type, error_message from reject_errors order by line, column_idx")
    by_record: dict[int, str] = {}
    for line, error_type, message in rejects.fetchall():
        index = int(line) - records.header_lines - 1
        if not 0 <= index < n:
            raise _unsplittable(source, n, frame.height + len(by_record) + 1)
        by_record.setdefault(index, f"{str(error_type).lower()}: {message}")
    if frame.height + len(by_record) != n:
        raise _unsplittable(source, n, frame.height + len(by_record))
    kept = np.setdiff1d(np.arange(n), np.fromiter(by_record, dtype=np.int64, count=len(by_record)))
    lines = pl.Series(records.first[kept], dtype=pl.Int64).gather(frame["_rec"].cast(pl.Int64) - 1)
    frame = frame.with_columns(source_row=lines).drop("_rec")
    keys = sorted(by_record)
    rows = [int(records.first[k]) for k in keys]
    rejected = pl.DataFrame(
        {"source_row": rows, "_reason": [by_record[k] for k in keys], "_raw": records.text.raw(rows)},
        schema={"source_row": pl.Int64, "_reason": pl.String, "_raw": pl.String},
    )
    return frame, pl.concat([records.rejected, rejected]).sort("source_row")


def _unsplittable(source: Source, expected: int, found: int) -> InputError:
    return InputError(source.display, f"cannot be split into records reliably: the CSV reader read {found} records "
                      f"where the file has {expected}; check its quotes and line breaks")  # fmt: skip


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
    transcoded: bool = False,
) -> CsvRead:
    """Read ``columns`` (all as text) with DuckDB; records that do not fit are returned as rejected, not lost.

    ``data`` is the content of ``path`` (default: the source's file), or with ``transcoded`` the file's content in
    UTF-8, which is then copied for DuckDB.
    """
    con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
    on_disk = None if transcoded else (path or source.path)
    with csv_records(source, data, len(columns), delimiter=delimiter, quote=quote, header_lines=header_lines,
                     path=on_disk) as records:  # fmt: skip
        sql, params = csv_source(source, columns, records=records, delimiter=delimiter, quote=quote)
        frame = fetch(con, f"{sql} order by _rec", params)
        frame.columns = ["_rec", *columns]
        frame, rejected = finish_csv(con, source, records, frame)
    return CsvRead(frame, rejected, [], records.text)
