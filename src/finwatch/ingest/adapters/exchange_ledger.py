"""Temporary: replaced by the real adapter."""

from __future__ import annotations

from finwatch.ingest._base import Adapter, Parsed, ParseOptions, Sample, Source


class ExchangeLedgerAdapter(Adapter):
    name = "exchange-ledger"
    summary = "exchange-ledger"

    @classmethod
    def sniff(cls, sample: Sample) -> str | None:
        return None

    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        raise NotImplementedError
