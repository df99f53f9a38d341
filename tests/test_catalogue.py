"""A catalogue of one's own: a new family file, its reason sentence and a rule, without touching finwatch's code."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from finwatch.config import US_LAW, FeatureConfig
from finwatch.exceptions import ConfigError
from finwatch.explain import reason_templates, render
from finwatch.features import build_account_features, reference_root, sql_root
from finwatch.rules import evaluate, load_rules
from finwatch.store import Store
from finwatch.testing import make_store, make_transactions

AS_OF = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)

#: named to sort before ``fan``, which it reads: only an order derived from what files read builds it
FAMILY = """\
-- name: alpha_round_transfers
-- grain: account
-- time_column: ts
-- windows: 30d
-- typology: structuring (round amounts)
-- source: a throwaway family of the catalogue test
-- parameters:
--   as_of: timestamp, required
--   w_30d: interval 30 days
-- evidence:
--   round_transfers: round_out
-- zero_when_absent: count_round_out_30d{extra}
-- columns:
--   count_round_out_30d: transfers out of a whole multiple of 1,000 to accounts that pay others on
--   max_receiver_fan_out_30d: the most distinct receivers such a counterparty paid
with round_out as (
    select l.account_id, l.txn_id, l.ts, l.amount_base, f.distinct_receivers_30d
    from stg_legs l join feat_fan f on f.account_id = l.counterparty
    where l.direction = 'out' and l.ts > $as_of - $w_30d and l.amount_base % 1000 = 0
),
final as (
    select account_id, count(*) as count_round_out_30d, max(distinct_receivers_30d) as max_receiver_fan_out_30d,
    from round_out
    group by account_id
)
select * from final
"""
REASONS = """
count_round_out_30d: "{value:,.0f} transfers of a whole multiple of 1,000 in the 30 days up to the scoring time"
max_receiver_fan_out_30d: "a receiver of such a transfer paid {value:,.0f} distinct accounts"
"""
RULE = """\
- id: T-RND-001
  version: 1
  typology: structuring
  severity: low
  description: Three or more round transfers to accounts that pay others on.
  condition: count_round_out_30d >= 3
  evidence: round_transfers
  citation: "{law.suspicious_report}; the catalogue test"
"""
ROWS: list[dict[str, Any]] = [
    {"ts": AS_OF - 40 * H, "src": "A", "dst": "R", "amount": "1000.00", "txn_id": "r1"},
    {"ts": AS_OF - 30 * H, "src": "A", "dst": "R", "amount": "2000.00", "txn_id": "r2"},
    {"ts": AS_OF - 20 * H, "src": "A", "dst": "R", "amount": "3000.00", "txn_id": "r3"},
    {"ts": AS_OF - 10 * H, "src": "A", "dst": "R", "amount": "1500.00", "txn_id": "odd"},
    {"ts": AS_OF - 5 * H, "src": "R", "dst": "X", "amount": "4500.00", "txn_id": "on"},
]


def catalogue(tmp_path: Path, family: str | None = FAMILY.replace("{extra}", "")) -> FeatureConfig:
    """A copy of the shipped sql/ and features/ with the throwaway family, its sentences and its rule."""
    sql, reference = tmp_path / "sql", tmp_path / "features"
    shutil.copytree(sql_root(), sql)
    shutil.copytree(reference_root(), reference)
    if family is not None:
        (sql / "features" / "alpha_round_transfers.sql").write_text(family, encoding="utf-8")
    with (reference / "reasons.yaml").open("a", encoding="utf-8") as handle:
        handle.write(REASONS)
    (reference / "rules" / "round.yaml").write_text(RULE, encoding="utf-8")
    return FeatureConfig(sql_dir=sql, reference_dir=reference)


def features(tmp_path: Path, config: FeatureConfig) -> Any:
    make_store(tmp_path / "s", make_transactions(ROWS))
    return build_account_features(Store(tmp_path / "s"), AS_OF, config)


def test_a_new_family_needs_no_code_change(tmp_path: Path) -> None:
    config = catalogue(tmp_path)
    built = features(tmp_path, config)
    accounts = built.accounts.sort("account_id")
    assert accounts["account_id"].to_list() == ["A", "R", "X"]
    assert accounts["count_round_out_30d"].to_list() == [3, 0, 0]  # zero for accounts the family never saw
    assert accounts["max_receiver_fan_out_30d"].to_list() == [1, None, None]  # undefined stays null
    assert "count_in_24h" in accounts.columns  # the shipped families are still joined
    evidence = built.evidence.filter(pl.col("family") == "round_transfers")
    assert evidence.sort("txn_id")["txn_id"].to_list() == ["r1", "r2", "r3"]

    hits = evaluate(built, load_rules(config))
    hit = hits.filter(pl.col("rule_id") == "T-RND-001").row(0, named=True)
    assert hit["account_id"] == "A"
    assert hit["evidence_txn_ids"] == ["r3", "r2", "r1"]  # largest first
    assert hit["citation"] == f"{US_LAW['suspicious_report']}; the catalogue test"
    sentence = render("count_round_out_30d", 3.0, templates=reason_templates(config.reference_dir))
    assert sentence == "3 transfers of a whole multiple of 1,000 in the 30 days up to the scoring time"


def test_the_shipped_sql_does_not_know_the_new_evidence_family(tmp_path: Path) -> None:
    config = catalogue(tmp_path)
    with pytest.raises(ConfigError, match=r"rule T-RND-001: evidence 'round_transfers' is not a family the SQL"):
        load_rules(FeatureConfig(reference_dir=config.reference_dir))


def test_a_model_reading_an_unknown_table_fails_at_load(tmp_path: Path) -> None:
    config = catalogue(tmp_path, FAMILY.replace("{extra}", "").replace("join feat_fan f", "join feat_fans f"))
    with pytest.raises(ConfigError, match=r"alpha_round_transfers\.sql: reads table feat_fans, which no SQL model"):
        features(tmp_path, config)
    with pytest.raises(ConfigError, match="reads table feat_fans"):
        load_rules(config)


def test_a_zero_column_the_family_does_not_produce_fails_the_build(tmp_path: Path) -> None:
    config = catalogue(tmp_path, FAMILY.replace("{extra}", ", count_unicorns_30d"))
    message = r"alpha_round_transfers\.sql: zero_when_absent lists count_unicorns_30d, which the family does not"
    with pytest.raises(ConfigError, match=message):
        features(tmp_path, config)


def test_two_families_producing_one_column_are_refused(tmp_path: Path) -> None:
    family = FAMILY.replace("{extra}", "").replace("as max_receiver_fan_out_30d", "as count_in_24h")
    with pytest.raises(ConfigError, match=r"column count_in_24h is also produced by"):
        features(tmp_path, catalogue(tmp_path, family))


def test_training_reads_feature_sets_from_the_configured_catalogue(scored: tuple[Path, Any], tmp_path: Path) -> None:
    """A feature set of one's own catalogue (``[features] reference_dir``) is what training uses."""
    from finwatch.config import RunConfig
    from finwatch.experiment import train_model
    from finwatch.registry import Registry

    store, _registry = scored
    catalogue = tmp_path / "features"
    shutil.copytree(reference_root(), catalogue)
    (catalogue / "feature_sets" / "mine_v1.yaml").write_text(
        "name: mine_v1\nversion: 1\nlevel: account\nfeatures:\n  - count_in_30d\n  - count_out_30d\n"
    )
    config = RunConfig().updated({"features.reference_dir": catalogue, "train.level": "account",
                                  "train.step_hours": 48, "train.feature_set": "mine_v1",
                                  "train.model.params": {"n_estimators": 20}})  # fmt: skip
    model = train_model(Store(store), "mine", config, Registry(tmp_path / "models"))
    assert [f["name"] for f in model.metadata["features"]] == ["count_in_30d", "count_out_30d"]
    assert model.metadata["feature_set"] == {"name": "mine_v1", "version": 1}
