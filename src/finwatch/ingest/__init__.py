"""Ingest bank and crypto exports into the store: one adapter per format, validated, converted, atomic."""

from __future__ import annotations

import json
from pathlib import Path

from finwatch._io import atomic_write_text
from finwatch.config import RunConfig
from finwatch.exceptions import FinwatchError
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
from finwatch.ingest.pseudonym import reference_words
from finwatch.ingest.quarantine import load_quarantine_key, reveal_quarantine

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
    "ingest_options",
    "load_quarantine_key",
    "plan",
    "reveal_quarantine",
    "stage",
    "write_report",
    "writing",
]


def ingest_options(
    config: RunConfig,
    parse: ParseOptions | None = None,
    pseudonym_key: bytes | None = None,
    quarantine_key: bytes | None = None,
) -> IngestOptions:
    """The options of one ingest call from the run configuration's ``[ingest]`` section and the keys (never stored).

    A pseudonymised store keeps the reference words of the configuration's ``[features]`` (its reference lists'
    merchant names and its payroll keywords) in descriptions and counterparty names.
    """
    section = config.ingest
    return IngestOptions(
        format=section.format,
        parse=parse or ParseOptions(),
        base_currency=section.base_currency,
        fx=section.fx,
        pseudonym_key=pseudonym_key,
        quarantine_key=quarantine_key,
        reference_words=reference_words(config.features.reference_dir, config.features.payroll_keywords),
        max_amount_base=section.max_amount_base,
        skip_rejected=section.skip_rejected,
        config_sha256=section.digest(),
    )


def write_report(path: Path, report: IngestReport) -> None:
    """Write ``report`` as JSON to ``path`` (``--report``). It is written after the commit: when it cannot be, the
    one-line error says whether the batch was committed, so that nobody ingests it again believing nothing was."""
    try:
        atomic_write_text(Path(path), json.dumps(report.to_json(), indent=2) + "\n")
    except OSError as exc:
        done = (f"batch {report.batch} was committed to {report.store}" if report.committed
                else "nothing was committed")  # fmt: skip
        raise FinwatchError(f"--report {path}: cannot be written ({exc.strerror or exc}); {done}") from None
