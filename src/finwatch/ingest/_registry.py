"""Adapters by name, and detection by content (not only by file extension)."""

from __future__ import annotations

from pathlib import Path

from finwatch.exceptions import ConfigError, InputError, UnknownFormatError
from finwatch.ingest._base import Adapter, Sample
from finwatch.ingest.adapters.amlsim import AmlSimAdapter
from finwatch.ingest.adapters.amlworld import AmlWorldAdapter
from finwatch.ingest.adapters.bank_csv import BankCsvAdapter
from finwatch.ingest.adapters.bitcoin_etl import BitcoinEtlAdapter
from finwatch.ingest.adapters.camt053 import Camt053Adapter
from finwatch.ingest.adapters.customers_csv import CustomersCsvAdapter
from finwatch.ingest.adapters.ethereum_etl import EthereumEtlAdapter
from finwatch.ingest.adapters.exchange_ledger import ExchangeLedgerAdapter
from finwatch.ingest.adapters.finwatch_tables import FinwatchTablesAdapter
from finwatch.ingest.adapters.mt940 import Mt940Adapter
from finwatch.ingest.adapters.ofx import OfxAdapter

__all__ = ["ADAPTERS", "FORMATS", "detect", "get_adapter"]

#: detection order: the most specific content signatures first; finwatch's own tables (Parquet, or the labels CSV
#: header) come last, so they can never take a file another format recognises. The two mapped CSVs (bank-csv,
#: customers-csv) only take a header that has every column of one of their shipped mappings
ADAPTERS: dict[str, type[Adapter]] = {
    a.name: a
    for a in (
        Camt053Adapter,
        OfxAdapter,
        Mt940Adapter,
        AmlSimAdapter,
        AmlWorldAdapter,
        EthereumEtlAdapter,
        BitcoinEtlAdapter,
        ExchangeLedgerAdapter,
        BankCsvAdapter,
        CustomersCsvAdapter,
        FinwatchTablesAdapter,
    )
}
FORMATS = tuple(sorted(ADAPTERS))
SAMPLE_BYTES = 64 * 1024


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]()
    except KeyError:
        raise ConfigError(f"unknown format {name!r}; formats: auto, {', '.join(FORMATS)}") from None


def sample(path: Path) -> Sample:
    if path.is_dir():
        names = tuple(sorted(p.name for p in path.iterdir() if p.is_file()))
        return Sample(path, b"", True, names)
    try:
        with path.open("rb") as handle:
            head = handle.read(SAMPLE_BYTES)
    except OSError as exc:
        raise InputError(str(path), f"cannot read ({exc.strerror})") from None
    return Sample(path, head, False)


def detect(path: Path) -> tuple[str, str]:
    """(adapter name, what was recognised) for the file or folder at ``path``."""
    s = sample(path)
    if not s.is_dir and not s.head.strip():
        raise InputError(str(path), "file is empty")
    for name, adapter in ADAPTERS.items():
        found = adapter.sniff(s)
        if found:
            return name, found
    if not s.is_dir and (b"\x00" in s.head or _mostly_binary(s.head)):
        raise UnknownFormatError(str(path), "binary data, not a known export format")
    first = s.first_line[:80] if not s.is_dir else ", ".join(s.names[:5])
    raise UnknownFormatError(
        str(path), f"unknown format (starts with {first!r}); pass --format, one of: {', '.join(FORMATS)}"
    )


def _mostly_binary(head: bytes) -> bool:
    if not head:
        return False
    text = sum(1 for b in head[:4096] if b in (9, 10, 13) or 32 <= b < 127 or b >= 128)
    try:
        head[:4096].decode("utf-8")
        return False
    except UnicodeDecodeError:
        return text / min(len(head), 4096) < 0.9
