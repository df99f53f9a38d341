"""Ingest bank and crypto exports into the store: one adapter per format, validated, converted, atomic."""

from finwatch.ingest._base import Adapter, Parsed, ParseOptions, Sample, Source
from finwatch.ingest._pipeline import (
    FileReport,
    IngestOptions,
    IngestReport,
    Plan,
    commit,
    ingest,
    plan,
    stage,
    writing,
)
from finwatch.ingest._registry import ADAPTERS, FORMATS, detect, get_adapter

__all__ = [
    "ADAPTERS",
    "FORMATS",
    "Adapter",
    "FileReport",
    "IngestOptions",
    "IngestReport",
    "ParseOptions",
    "Parsed",
    "Plan",
    "Sample",
    "Source",
    "commit",
    "detect",
    "get_adapter",
    "ingest",
    "plan",
    "stage",
    "writing",
]
