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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from finwatch._io import atomic_write_bytes
from finwatch.config import RunConfig
from finwatch.dataset import Progress, end_of_data
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
    out: Path,
    seed: int = 7,
    step: Callable[[str], None] | None = None,
    config: RunConfig | None = None,
    progress: Progress | None = None,
    world: WorldConfig | None = None,
) -> DemoResult:
    """Synthetic world → store → account-level model → leads and report.

    ``step`` hears each stage (synth, ingest, train, score, report) start and end, e.g. ``"train: training an
    account-level model"`` then ``"train: done in 31.2 s"``; ``progress`` hears the steps within a stage
    (``done, total, what``, ``what`` starting with the stage's name).
    ``config`` (default: the built-in one) is used for every stage; the demo sets its own ingest FX table (the
    world's), an account-level model with weekly as-of times and ``seed``, and scores with that model's champion.
    ``world`` replaces the default world (20,000 accounts, 30 days, ``seed``), e.g. by a smaller one.
    """
    say = step or (lambda _text: None)
    seconds: dict[str, float] = {}
    began = time.perf_counter()

    @contextmanager
    def stage(name: str, key: str, what: str) -> Iterator[None]:
        say(f"{name}: {what}")
        mark = time.perf_counter()
        yield
        seconds[key] = time.perf_counter() - mark
        say(f"{name}: done in {seconds[key]:.1f} s")

    def within(name: str) -> Progress | None:
        if progress is None:
            return None
        inner = progress
        return lambda done, total, what: inner(done, total, f"{name}: {what}")

    world = world or WorldConfig(seed=seed)
    with stage("synth", "world", f"generating a world of {world.accounts:,} accounts over {world.days} days"):
        world_dir = out / "world"
        manifest = save_world(generate_world(world), world_dir)

    # weekly as-of times keep the demo quick; `finwatch train` defaults to every 72 hours
    config = (config or RunConfig()).updated({
        "ingest.fx": world_dir / "fx_rates.csv", "train.level": "account", "train.step_hours": 168,
        "train.seed": seed, "score.model": f"{MODEL}@champion",
    })  # fmt: skip
    with stage("ingest", "ingest", "loading the world into a store"):
        store = out / "store"
        shutil.rmtree(store, ignore_errors=True)  # a demo starts from scratch
        inputs = [world_dir / "truth" / "transactions.parquet", world_dir / "truth" / "accounts.parquet",
                  world_dir / "labels" / "accounts.parquet", world_dir / "labels" / "transactions.parquet"]  # fmt: skip
        ingest(inputs, store, ingest_options(config), progress=within("ingest"))

    with stage("train", "train", "training an account-level model"):
        models = out / "models"
        shutil.rmtree(models, ignore_errors=True)
        registry = Registry(models)
        model = train_model(Store(store), MODEL, config, registry, progress=within("train"))
        registry.promote(model.ref, "champion")

    with stage("score", "score", "scoring and raising leads"):
        as_of = end_of_data(Store(store))
        run = score_run(Store(store), as_of, registry, out / "runs" / f"{as_of:%Y-%m-%d}", config)
        for name in ("leads.csv", "leads.parquet"):
            atomic_write_bytes(out / name, (run.folder / name).read_bytes())

    with stage("report", "report", "writing the report"):
        build_report(RunFolder(run.folder), out=out / "report.html")
    seconds["total"] = time.perf_counter() - began
    return DemoResult(run, seconds, manifest)
