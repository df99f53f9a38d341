"""Prefect flow: ingest exports into the store, one task per file.

    python flows/ingest.py FILE... --store DIR [--format auto] [--fx FILE] [--config finwatch.toml]

The options, units and exit codes are those of ``finwatch ingest``: a rerun with nothing new succeeds, a rejected
file fails the run with the line naming file, row and reason (nothing is written unless --skip-rejected). Thin
wiring around ``finwatch.ingest``: a planning task hashes and recognises the inputs, one staging task per file
parses and validates it (retried only when the file system fails, never for bad content), and a final task commits
the batch. Tasks exchange paths and small reports, never the data. The pseudonym key is read inside the flow from
a file or ``$FINWATCH_PSEUDONYM_KEY`` so that it never becomes a recorded parameter.
"""

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from finwatch._paths import check_writable
from finwatch.config import load_config
from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.flowrun import command, finwatch_flow, finwatch_task, summary_artifact
from finwatch.ingest import (
    FORMATS,
    FileReport,
    IngestOptions,
    IngestReport,
    ParseOptions,
    Plan,
    commit,
    ingest_options,
    load_quarantine_key,
    plan,
    stage,
    write_report,
    writing,
)
from finwatch.ingest.pseudonym import load_key


@finwatch_task("plan ingest")
def plan_task(paths: list[Path], store: Path, options: IngestOptions) -> Plan:
    return plan(paths, store, options)


@finwatch_task("stage file")
def stage_task(plan_: Plan, index: int) -> FileReport:
    return stage(plan_.items[index], plan_)


@finwatch_task("commit batch", io_retries=0)
def commit_task(plan_: Plan, reports: list[FileReport]) -> IngestReport:
    return commit(plan_, reports)


@finwatch_flow("finwatch-ingest")
def ingest_flow(
    paths: Annotated[list[str], Field(description="Export files (or an AMLSim folder) to ingest.")],
    store: Annotated[str, Field(description="Store folder (created on first use).")],
    format: Annotated[str | None, Field(description="auto (detect by content) or one format name.")] = None,
    mapping: Annotated[str | None, Field(description="bank-csv: mapping file (TOML) or a shipped mapping.")] = None,
    blocks: Annotated[str | None, Field(description="ethereum-etl token transfers: blocks file.")] = None,
    currency: Annotated[str | None, Field(description="Currency of formats that have none (AMLSim).")] = None,
    start: Annotated[str | None, Field(description="Date of step 0 for relative time (AMLSim).")] = None,
    account: Annotated[str | None, Field(description="Own account id of formats that omit it.")] = None,
    fx: Annotated[str | None, Field(description="FX table CSV (date,currency,base,rate).")] = None,
    base_currency: Annotated[str | None, Field(description="Base currency of the store (amount_base).")] = None,
    pseudonym_key_file: Annotated[str | None, Field(description="Key for keyed-HMAC account pseudonyms.")] = None,
    quarantine_key_file: Annotated[
        str | None, Field(description="Pseudonymised stores: key that encrypts quarantined records.")
    ] = None,
    skip_rejected: Annotated[bool, Field(description="Commit the readable files even if some are rejected.")] = False,
    report: Annotated[str | None, Field(description="Also write the report as JSON here.")] = None,
    config: Annotated[str | None, Field(description="Configuration file (default ./finwatch.toml).")] = None,
    jurisdiction: Annotated[str | None, Field(description="Preset of reporting law: us, ca, au or eu.")] = None,
) -> dict[str, Any]:
    settings = load_config(Path(config) if config else None, {
        "jurisdiction": jurisdiction, "ingest.format": None if format == "auto" else format, "ingest.fx": fx,
        "ingest.base_currency": base_currency, "ingest.skip_rejected": skip_rejected or None}).config  # fmt: skip
    if settings.ingest.format != "auto" and settings.ingest.format not in FORMATS:
        raise ConfigError(f"--format {settings.ingest.format!r}: choose auto or one of {', '.join(FORMATS)}")
    try:
        start_date = dt.date.fromisoformat(start) if start else None
    except ValueError:
        raise ConfigError(f"--start: {start!r} is not a date (YYYY-MM-DD)") from None
    parse = ParseOptions(mapping=Path(mapping) if mapping else None, blocks=Path(blocks) if blocks else None,
                         currency=currency, start=start_date, account=account)  # fmt: skip
    key = load_key(Path(pseudonym_key_file) if pseudonym_key_file else None)
    sealing = load_quarantine_key(Path(quarantine_key_file) if quarantine_key_file else None)
    options = ingest_options(settings, parse, key, sealing)
    target = Path(store)
    if report:
        check_writable(Path(report), "--report")  # before anything is committed
    with writing(target, options):
        plan_ = plan_task([Path(p) for p in paths], target, options)
        reports = [stage_task(plan_, i) for i in range(len(plan_.items))]
        batch = commit_task(plan_, reports)
    if report:
        write_report(Path(report), batch)
    summary = summarise_report(batch)
    summary_artifact("ingest-summary", {k: summary[k] for k in ("inputs", "read", "accepted", "new", "quarantined",
                                                                 "rejected")},
                     f"batch {batch.batch or '(nothing new)'} of {batch.store}")  # fmt: skip
    if batch.rejected and not (options.skip_rejected and batch.committed):
        first = batch.rejected[0]
        more = f" (and {len(batch.rejected) - 1} more rejected input(s))" if len(batch.rejected) > 1 else ""
        written = "" if batch.committed else "; nothing was written to the store (--skip-rejected commits the rest)"
        raise FinwatchError(f"{first.error or first.file + ': rejected'}{more}{written}")
    return summary


def summarise_report(report: IngestReport) -> dict[str, Any]:
    """Counts of a batch (no file contents): what the flow returns and its artifact shows."""
    files = report.files
    return {
        "store": report.store, "batch": report.batch, "committed": report.committed, "inputs": len(files),
        "read": sum(f.rows_read for f in files), "accepted": sum(f.accepted for f in files),
        "new": sum(f.new for f in files), "quarantined": sum(f.quarantined for f in files),
        "already_ingested": sum(f.status == "already ingested" for f in files),
        "rejected": len(report.rejected),
        "notes": [f"{Path(f.file).name}: {note}" for f in files if f.status != "already ingested" for note in f.notes],
    }  # fmt: skip


def summary(result: dict[str, Any]) -> list[str]:
    counts = (f"{result['inputs']} input(s): {result['read']:,} read, {result['accepted']:,} accepted "
              f"({result['new']:,} new), {result['quarantined']:,} quarantined")  # fmt: skip
    if result["committed"]:
        head = f"batch {result['batch']} committed to {result['store']}: {counts}"
    else:
        head = f"nothing new to ingest into {result['store']}: {counts}, {result['already_ingested']} already ingested"
    return [head, *(f"note: {n}" for n in result["notes"])]


if __name__ == "__main__":
    sys.exit(command(ingest_flow, summary))
