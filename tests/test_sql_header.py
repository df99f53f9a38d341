"""SQL headers: entries of ``parameters`` and ``columns``, and lines that continue an entry's text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from finwatch.exceptions import ConfigError
from finwatch.features._sql import load_model, load_models, sql_root

#: a column entry names one or more columns: ``a / b``, ``a / _30d`` (shorthand suffix), ``a, b``, ``(also 7d, 30d)``
COLUMN_KEY = re.compile(r"^[a-z][a-z0-9_]*( / _?[a-z0-9_]+|, [a-z][a-z0-9_]*)*( \(also [a-z0-9, ]+\))?$")
PARAMETER_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
LAYERS = ("staging", "features", "marts", "evidence", "audits")


def write_sql(tmp_path: Path, header: str, body: str = "select 1 as x") -> Path:
    path = tmp_path / "m.sql"
    path.write_text(header + body + "\n", encoding="utf-8")
    return path


def test_a_line_indented_further_continues_the_entry_before_it(tmp_path: Path) -> None:
    path = write_sql(
        tmp_path,
        "-- name: m\n"
        "-- grain: account\n"
        "-- parameters:\n"
        "--   as_of: timestamp,\n"
        "--     required\n"
        "--   limit: 10\n"
        "-- columns:\n"
        "--   share_x_30d: share of volume with high-risk counterparties (held in, or transacting\n"
        "--     from, a high-risk jurisdiction)\n"
        "--   count_y_30d: payments\n",
        "select $as_of as a, $limit as b",
    )
    model = load_model(path)
    assert model.columns == {
        "share_x_30d": "share of volume with high-risk counterparties (held in, or transacting from, a high-risk "
        "jurisdiction)",
        "count_y_30d": "payments",
    }
    assert model.parameters == {"as_of": None, "limit": "10"}


def test_several_continuation_lines_are_joined_in_order(tmp_path: Path) -> None:
    path = write_sql(
        tmp_path,
        "-- name: m\n-- grain: account\n-- columns:\n--   x: one\n--     two: with a colon\n--       three\n",
    )
    assert load_model(path).columns == {"x": "one two: with a colon three"}


def test_a_continuation_line_without_an_entry_before_it_is_refused(tmp_path: Path) -> None:
    path = write_sql(tmp_path, "-- name: m\n-- grain: account\n-- columns:\n--     orphan text\n")
    with pytest.raises(ConfigError, match="continues an entry"):
        load_model(path)


def test_an_entry_after_a_continuation_is_a_new_entry(tmp_path: Path) -> None:
    path = write_sql(tmp_path, "-- name: m\n-- grain: account\n-- columns:\n--   a: x\n--     y\n--   b: z\n")
    assert load_model(path).columns == {"a": "x y", "b": "z"}


@pytest.mark.parametrize("layer", LAYERS)
def test_every_shipped_header_key_names_columns_or_a_parameter(layer: str) -> None:
    models = load_models(sql_root() / layer)
    assert models
    for model in models:
        bad_columns = [k for k in model.columns if not COLUMN_KEY.match(k)]
        bad_parameters = [k for k in model.parameters if not PARAMETER_KEY.match(k)]
        assert not bad_columns, f"{model.path.name}: column keys that are not column names: {bad_columns}"
        assert not bad_parameters, f"{model.path.name}: parameter keys that are not names: {bad_parameters}"
        assert all(model.columns.values()), f"{model.path.name}: a column without a meaning"


def test_wrapped_meanings_of_the_shipped_headers_are_kept_whole() -> None:
    columns = {k: v for m in load_models(sql_root() / "features") for k, v in m.columns.items()}
    assert columns["peel_chain_length_30d"].endswith("to an address with no earlier history)")
    assert "from, a high-risk jurisdiction)" in columns["share_volume_high_risk_1hop_30d"]
    assert "not more than received" in columns["scatter_gather_intermediates_7d"]
    marts = {k: v for m in load_models(sql_root() / "marts") for k, v in m.columns.items()}
    assert "(a relay: scatter-gather, stack, pass-through)" in marts["src_forwards_recent_inflow"]
