"""The newcomer's first run: a default synthetic world through ingest, training and scoring, into one folder.

Layout of ``out``::

    world/          the synthetic world: exports in bank formats, canonical tables, ground truth
    store/          the store the world was ingested into
    models/         the registry with the trained model (promoted champion)
    runs/<as-of>/   the scoring run: leads.parquet, leads.csv, leads.json, run.json
    leads.csv, leads.parquet   the run's leads, copied to a fixed place for scripts
    report.html     the run's report (self-contained HTML), its case pages in report-cases/

The world is loaded from its canonical tables and ground truth (``finwatch-tables``), the fastest complete
route; ``finwatch ingest`` reads its bank exports (bank CSV, camt.053, ethereum-etl) just as well.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from finwatch._io import atomic_write_bytes
from finwatch.config import RunConfig
from finwatch.dataset import end_of_data
from finwatch.experiment import train_model
from finwatch.ingest import ingest, ingest_options
from finwatch.leads import Run, score_run
from finwatch.registry import Registry
from finwatch.report import build_report
from finwatch.runs import RunFolder
from finwatch.store import Store
from finwatch.synth import WorldConfig, generate_world, save_world

__all__ = ["DemoResult", "run_demo"]

MODEL = "finwatch"


@dataclass
class DemoResult:
    run: Run
    seconds: dict[str, float] = field(default_factory=dict)
    world_manifest: dict[str, object] = field(default_factory=dict)


def run_demo(
    out: Path, seed: int = 7, step: Callable[[str], None] | None = None, config: RunConfig | None = None
) -> DemoResult:
    """Synthetic world → store → account-level model → leads and report. ``step`` hears each stage start.

    ``config`` (default: the built-in one) is used for every stage; the demo sets its own ingest FX table (the
    world's), an account-level model with weekly as-of times and ``seed``, and scores with that model's champion.
    """
    say = step or (lambda _stage: None)
    seconds: dict[str, float] = {}
    began = time.perf_counter()

    say("generating the default world")
    world = generate_world(WorldConfig(seed=seed))
    world_dir = out / "world"
    manifest = save_world(world, world_dir)
    seconds["world"] = time.perf_counter() - began

    say("ingesting it into a store")
    mark = time.perf_counter()
    store = out / "store"
    shutil.rmtree(store, ignore_errors=True)  # a demo starts from scratch
    inputs = [world_dir / "truth" / "transactions.parquet", world_dir / "truth" / "accounts.parquet",
              world_dir / "labels" / "accounts.parquet", world_dir / "labels" / "transactions.parquet"]  # fmt: skip
    # weekly as-of times keep the demo quick; `finwatch train` defaults to every 72 hours
    config = (config or RunConfig()).updated({
        "ingest.fx": world_dir / "fx_rates.csv", "train.level": "account", "train.step_hours": 168,
        "train.seed": seed, "score.model": f"{MODEL}@champion",
    })  # fmt: skip
    ingest(inputs, store, ingest_options(config))
    seconds["ingest"] = time.perf_counter() - mark

    say("training an account-level model")
    mark = time.perf_counter()
    models = out / "models"
    shutil.rmtree(models, ignore_errors=True)
    registry = Registry(models)
    model = train_model(Store(store), MODEL, config, registry)
    registry.promote(model.ref, "champion")
    seconds["train"] = time.perf_counter() - mark

    say("scoring and raising leads")
    mark = time.perf_counter()
    as_of = end_of_data(Store(store))
    run = score_run(Store(store), as_of, registry, out / "runs" / f"{as_of:%Y-%m-%d}", config)
    for name in ("leads.csv", "leads.parquet"):
        atomic_write_bytes(out / name, (run.folder / name).read_bytes())
    seconds["score"] = time.perf_counter() - mark

    say("writing the report")
    mark = time.perf_counter()
    build_report(RunFolder(run.folder), out=out / "report.html")
    seconds["report"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - began
    return DemoResult(run, seconds, manifest)
