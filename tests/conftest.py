"""Shared fixtures: worlds are generated once per test session."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from finwatch.synth import World, WorldConfig, generate_world, save_world

DEFAULT_SEED = 7


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
