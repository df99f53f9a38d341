"""Prefect flow: ingest exports into the store, one task per file.

    python flows/ingest.py FILE... --store DIR [--format auto] [--fx FILE]

Thin wiring around ``finwatch.ingest``: a planning task hashes and recognises the inputs, one staging task per
file parses and validates it (retried only when the file system fails, never for bad content), and a final task
commits the batch. Tasks exchange paths and small reports, never the data. The pseudonym key is read inside the
flow from a file or ``$FINWATCH_PSEUDONYM_KEY`` so that it never becomes a recorded parameter.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from finwatch.config import RunConfig, load_config
from finwatch.ingest import (
    FileReport,
    IngestOptions,
    IngestReport,
    ParseOptions,
    Plan,
    commit,
    ingest_options,
    plan,
    stage,
    writing,
)
from finwatch.ingest.pseudonym import load_key


class IngestParameters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    paths: list[str]
    store: str
    mapping: str | None = None
    pseudonym_key_file: str | None = None
    config: RunConfig = RunConfig()  # its [ingest] section: format, base currency, FX table, skip_rejected


def _io_failure(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only when the file system failed, never because the content was bad."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # any other failure is final
        return False
    return False


@task(name="plan ingest")
def plan_task(paths: list[Path], store: Path, options: IngestOptions) -> Plan:
    return plan(paths, store, options)


@task(name="stage file", retries=2, retry_delay_seconds=2, retry_condition_fn=_io_failure)
def stage_task(plan_: Plan, index: int) -> FileReport:
    return stage(plan_.items[index], plan_)


@task(name="commit batch")
def commit_task(plan_: Plan, reports: list[FileReport]) -> IngestReport:
    return commit(plan_, reports)


@flow(name="finwatch-ingest")
def ingest_flow(parameters: IngestParameters) -> dict[str, Any]:
    options = ingest_options(
        parameters.config,
        ParseOptions(mapping=Path(parameters.mapping) if parameters.mapping else None),
        load_key(Path(parameters.pseudonym_key_file) if parameters.pseudonym_key_file else None),
    )
    store = Path(parameters.store)
    with writing(store, options):
        plan_ = plan_task([Path(p) for p in parameters.paths], store, options)
        reports = [stage_task(plan_, i) for i in range(len(plan_.items))]
        report = commit_task(plan_, reports)
    # aggregate figures only: no file names, account ids or amounts
    rows = [(f.format or "-", f.status, f.rows_read, f.accepted, f.quarantined) for f in report.files]
    table = "\n".join(f"| {a} | {b} | {c:,} | {d:,} | {e:,} |" for a, b, c, d, e in rows)
    create_markdown_artifact(
        key="ingest-summary",
        markdown="| format | status | read | accepted | quarantined |\n|---|---|---|---|---|\n" + table,
        description=f"batch {report.batch}: {len(report.files)} inputs",
    )
    return report.to_json()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--store", required=True)
    parser.add_argument("--format")
    parser.add_argument("--fx")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--jurisdiction")
    args = parser.parse_args(argv)
    config = load_config(args.config, {"jurisdiction": args.jurisdiction, "ingest.format": args.format,
                                       "ingest.fx": args.fx}).config  # fmt: skip
    result = ingest_flow(IngestParameters(paths=args.paths, store=args.store, config=config))
    print(result)
    return 0 if result["committed"] else 2


if __name__ == "__main__":
    sys.exit(main())
