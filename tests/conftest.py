"""Shared fixtures: worlds are generated once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from finwatch.config import RunConfig
from finwatch.experiment import train_model
from finwatch.ingest import IngestOptions, ingest
from finwatch.registry import Registry
from finwatch.store import Store
from finwatch.synth import World, WorldConfig, generate_world, save_world

DEFAULT_SEED = 7


def pytest_configure(config: pytest.Config) -> None:
    """Prefect's settings before anything imports Prefect: a throwaway home, then the flows' own defaults."""
    import os
    import tempfile

    if "PREFECT_HOME" not in os.environ:
        os.environ["PREFECT_HOME"] = _PREFECT_HOME[0] = tempfile.mkdtemp(prefix="finwatch-prefect-home-")
    import finwatch.flowrun  # noqa: F401  (sets the remaining defaults, then imports Prefect)


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    if _PREFECT_HOME[0]:
        shutil.rmtree(_PREFECT_HOME[0], ignore_errors=True)


_PREFECT_HOME: list[str | None] = [None]  # the throwaway home pytest_configure made, removed at the end


@pytest.fixture(scope="session")
def default_world() -> World:
    """The default-size world (about 20,000 accounts, 30 days, 1 M transactions), in memory."""
    return generate_world(WorldConfig(seed=DEFAULT_SEED))


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path]:
    """A small world written to disk with every export format."""
    world = generate_world(WorldConfig(seed=11, accounts=3_000, days=14))
    out = tmp_path_factory.mktemp("worlds") / "small"
    save_world(world, out)
    return world, out


def instance_transactions(world: World) -> pl.DataFrame:
    """Every labelled pattern transaction with its instance and typology."""
    labels = world.transaction_labels.filter(pl.col("label")).select(
        pl.col("subject_id").alias("txn_id"), "instance_id", "typology"
    )
    return labels.join(world.transactions, on="txn_id", how="inner").sort(["instance_id", "ts", "txn_id"])


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One local Prefect API for the whole session (starting one costs 10-16 s), with flow heartbeats off."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture(scope="session")
def scored(small_world_dir: tuple[World, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Registry]:
    """The small world loaded from its canonical tables, and an account-level model trained on it."""
    _world, folder = small_world_dir
    root = tmp_path_factory.mktemp("scored")
    store = root / "store"
    inputs = [folder / "truth" / "transactions.parquet", folder / "truth" / "accounts.parquet",
              folder / "labels" / "accounts.parquet", folder / "labels" / "transactions.parquet"]  # fmt: skip
    result = ingest(inputs, store, IngestOptions(fx=folder / "fx_rates.csv"))
    assert result.committed
    registry = Registry(root / "models")
    config = RunConfig().updated({"train.level": "account", "train.step_hours": 48,
                                  "train.model.params": {"n_estimators": 60}})  # fmt: skip
    model = train_model(Store(store), "finwatch", config, registry)
    registry.promote(model.ref, "champion")
    return store, registry


def finwatch(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600) -> Any:
    """The ``finwatch`` command in a child process (``env``: the whole environment; default: this one's)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "finwatch", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout, check=False)  # fmt: skip


def rewrite_leads(folder: Path, leads: pl.DataFrame) -> None:
    """Replace a run's leads.parquet with ``leads`` and record its new size in run.json, as a published run needs
    (a test that edits a run's leads to reach a case; ``finwatch runs verify`` still sees the sha256 changed)."""
    import json

    leads.write_parquet(folder / "leads.parquet")
    info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    info["files"]["leads.parquet"]["bytes"] = (folder / "leads.parquet").stat().st_size
    (folder / "run.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def run_score(
    store: Path, as_of: Any, registry: Registry, out: Path, model: str = "finwatch@champion", budget: float = 0.01
) -> Any:
    """``finwatch score`` as a library call: the built-in configuration with this model and budget."""
    from finwatch.leads import score_run

    config = RunConfig().updated({"score.model": model, "score.budget": budget})
    return score_run(Store(store), as_of, registry, out, config)
