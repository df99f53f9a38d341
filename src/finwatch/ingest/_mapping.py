"""Mapping files (TOML) that describe a CSV export, shared by the adapters that read one (bank-csv, customers-csv).

A mapping has a ``[format]`` table (``name``, ``kind``, ``delimiter``, ``quote``, ``encoding`` here, plus the
adapter's own keys) and a ``[columns]`` table mapping the adapter's roles to the header names of the export.
``kind`` says which adapter a mapping is for: ``transactions`` (bank-csv, the default) or ``customers``
(customers-csv). Shipped mappings live in ``finwatch/data/mappings`` and are found by name, or by a header that
has every column they map. This module reads the file the same way for every kind: transcoded to UTF-8, split by
DuckDB (lines that do not split are kept as rejected, with their line numbers), every mapped role as the text column
``f_<role>`` (null when the mapping leaves the role out), and ``_raw``, the record's text.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar

import polars as pl

from finwatch.exceptions import ConfigError, InputError
from finwatch.ingest._base import Source, duckdb_connection, not_a_file
from finwatch.ingest._text import decode_utf8, read_csv

__all__ = [
    "KINDS",
    "Layout",
    "MappedRows",
    "load_toml",
    "mapping_header",
    "matching",
    "read_layout",
    "read_mapped",
    "resolve",
    "shipped",
    "shipped_names",
]

#: ``[format] kind`` of a mapping -> the adapter that reads exports described by it
KINDS = {"transactions": "bank-csv", "customers": "customers-csv"}


class Layout(Protocol):
    """What every mapping says about the CSV itself."""

    @property
    def name(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def delimiter(self) -> str: ...
    @property
    def quote(self) -> str: ...
    @property
    def encoding(self) -> str: ...
    @property
    def columns(self) -> dict[str, str]: ...


M = TypeVar("M", bound=Layout)


def load_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"mapping {source}: not valid TOML ({exc})") from None


def _kind(data: dict[str, Any], source: str) -> str:
    kind = data.get("format", {}).get("kind", "transactions")
    if kind not in KINDS:
        raise ConfigError(f"mapping {source}: kind {kind!r} is not one of {', '.join(KINDS)}")
    return str(kind)


def read_layout(data: dict[str, Any], source: str, kind: str, roles: tuple[str, ...]) -> dict[str, Any]:
    """The layout keys every mapping shares (``name, source, delimiter, quote, encoding, columns``), checked: the
    mapping is of ``kind`` and maps only known ``roles``."""
    found = _kind(data, source)
    if found != kind:
        raise ConfigError(
            f"mapping {source} describes {'a customer extract' if found == 'customers' else 'bank transactions'} "
            f"([format] kind = {found!r}): read it with --format {KINDS[found]}"
        )
    fmt: dict[str, Any] = data.get("format", {})
    columns: dict[str, Any] = data.get("columns", {})
    unknown = sorted(set(columns) - set(roles))
    if unknown:
        raise ConfigError(f"mapping {source}: unknown column roles {unknown}; roles: {', '.join(roles)}")
    return {
        "name": str(fmt.get("name", Path(source).stem)), "source": source,
        "delimiter": str(fmt.get("delimiter", ",")), "quote": str(fmt.get("quote", '"')),
        "encoding": str(fmt.get("encoding", "utf-8")), "columns": {k: str(v) for k, v in columns.items()},
    }  # fmt: skip


def _shipped_files() -> list[tuple[str, dict[str, Any], str]]:
    """(source, TOML document, text) of every shipped mapping, by file name."""
    folder = resources.files("finwatch.data").joinpath("mappings")
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            text = entry.read_text(encoding="utf-8")
            source = f"shipped:{entry.name}"
            out.append((source, load_toml(text, source), text))
    return out


def shipped(kind: str, load: Callable[[str, str], M]) -> dict[str, M]:
    """The shipped mappings of ``kind``, by name, loaded with ``load(text, source)``."""
    out = {}
    for source, data, text in _shipped_files():
        if _kind(data, source) == kind:
            mapping = load(text, source)
            out[mapping.name] = mapping
    return out


def shipped_names() -> set[str]:
    """The names of every shipped mapping, of any kind."""
    return {str(data.get("format", {}).get("name", Path(source).stem)) for source, data, _ in _shipped_files()}


def resolve(option: Path | None, load: Callable[[str, str], M], known: dict[str, M]) -> M | None:
    """The mapping ``--mapping`` names: a shipped one (of ``known``) by name, else a file; None when not given."""
    if option is None:
        return None
    if str(option) in known:
        return known[str(option)]
    if problem := not_a_file(Path(option)):  # a FIFO or a device would be read forever
        raise ConfigError(f"--mapping {option}: {problem}")
    try:
        text = Path(option).read_text(encoding="utf-8")
    except OSError as exc:
        names = ", ".join(known)
        raise ConfigError(f"--mapping {option}: cannot read ({exc.strerror}); shipped mappings: {names}") from None
    return load(text, str(option))


def for_source(
    source: Source, data: bytes, option: Path | None, load: Callable[[str, str], M], known: dict[str, M], what: str
) -> M:
    """The mapping ``option`` names, or the shipped one (of ``known``) whose columns the file's header has."""
    mapping = resolve(option, load, known)
    if mapping is not None:
        return mapping
    head = data[:65536].decode("utf-8", errors="replace").lstrip("\ufeff")
    found = matching(head.split("\n", 1)[0].strip("\r"), known)
    if found is None:
        raise InputError(source.display, f"no {what}mapping matches this CSV's header; pass --mapping FILE", row=1)
    return found


def mapping_header(line: str, mapping: Layout) -> list[str]:
    """A header line split the way ``mapping`` says (empty when it cannot be split)."""
    try:
        return next(csv.reader(io.StringIO(line), delimiter=mapping.delimiter, quotechar=mapping.quote or '"'))
    except (csv.Error, StopIteration):
        return []


def matching(first_line: str, candidates: dict[str, M]) -> M | None:
    """The first candidate whose every mapped column the header line has."""
    for candidate in candidates.values():
        if set(candidate.columns.values()) <= set(mapping_header(first_line, candidate)):
            return candidate
    return None


@dataclass
class MappedRows:
    rows: pl.DataFrame  # source_row, _raw, f_<role> for every role (text; null when unmapped or empty field)
    rejected: pl.DataFrame  # source_row, _reason, _raw: lines that do not split into the header's columns
    header: list[str]
    notes: list[str]


def read_mapped(source: Source, data: bytes, mapping: Layout, roles: tuple[str, ...]) -> MappedRows:
    """Read an export through ``mapping``: a missing mapped column or a repeated header name rejects the file."""
    text = decode_utf8(source, data, mapping.encoding)
    transcoded = mapping.encoding.lower().replace("_", "-") not in ("utf-8", "utf8")
    if transcoded:
        data = text.encode("utf-8")  # DuckDB reads UTF-8: it is handed a transcoded copy
    header = mapping_header(text.split("\n", 1)[0].strip("\r"), mapping)
    missing = sorted({c for c in mapping.columns.values() if c not in header})
    if missing:
        raise InputError(source.display, f"missing required columns {missing} (mapping {mapping.name})", row=1)
    if len(set(header)) != len(header):
        repeated = sorted({h for h in header if header.count(h) > 1})
        raise InputError(source.display, f"header names {repeated} appear more than once", row=1)
    con = duckdb_connection()
    read = read_csv(con, source, data, header, delimiter=mapping.delimiter, quote=mapping.quote, transcoded=transcoded)
    frame = read.frame
    fields = {f"f_{role}": pl.col(name) if name in frame.columns else pl.lit(None, pl.String)
              for role, name in mapping.columns.items()}  # fmt: skip
    for role in roles:
        fields.setdefault(f"f_{role}", pl.lit(None, pl.String))
    rows = frame.select(
        "source_row",
        _raw=pl.concat_str([pl.col(c).fill_null("") for c in dict.fromkeys(header)], separator=mapping.delimiter),
        **fields,
    )
    return MappedRows(rows, read.rejected, header, read.notes)
