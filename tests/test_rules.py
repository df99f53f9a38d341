"""The rule pack: a parsed condition language, plain-language reasons, citations and evidence ids."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from finwatch.config import FeatureConfig
from finwatch.exceptions import ConfigError
from finwatch.features import build_account_features
from finwatch.rules import evaluate, load_rules
from finwatch.store import Store
from finwatch.testing import make_store, make_transactions

AS_OF = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def write_rule(folder: Path, condition: str, **fields: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"id": "T-1", "version": "1", "typology": "structuring", "severity": "high", "description": "d",
             "condition": condition, "evidence": "structuring", "citation": "c", **fields}  # fmt: skip
    (folder / "r.yaml").write_text("- " + "\n  ".join(f"{k}: {v!r}" if k == "condition" else f"{k}: {v}"
                                                       for k, v in entry.items()) + "\n")  # fmt: skip
    return folder


def test_the_shipped_pack_loads_with_citations_and_descriptions() -> None:
    pack = load_rules()
    assert len(pack.rules) >= 15
    assert len(pack.version) == 16
    assert all(r.citation and r.description and r.typology for r in pack.rules)
    assert any("FIN-2020-A008" in r.citation for r in pack.rules)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        pytest.param("__import__('os').system('true')", "not a comparison", id="a call is not allowed"),
        pytest.param("count_in_24h ** 2 > 3", "not a feature name or a number", id="arithmetic is not allowed"),
        pytest.param("count_in_24h >", "condition is not valid", id="syntax error"),
        pytest.param("1 < count_in_24h < 3", "not a comparison", id="chained comparisons are not allowed"),
    ],
)
def test_conditions_outside_the_small_language_are_refused(tmp_path: Path, condition: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_rules(write_rule(tmp_path / "rules", condition))


def test_unknown_features_are_named(tmp_path: Path) -> None:
    make_store(tmp_path / "s", make_transactions([{"ts": AS_OF - H, "src": "A", "dst": "B", "amount": "5"}]))
    features = build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig())
    with pytest.raises(ConfigError, match=r"unknown features \['count_unicorns'\]"):
        evaluate(features, load_rules(write_rule(tmp_path / "rules", "count_unicorns > 1")))


def test_structuring_rule_fires_with_reasons_and_evidence(tmp_path: Path) -> None:
    rows = [{"ts": AS_OF - k * H, "src": None, "dst": "A", "amount": amount, "channel": "cash", "txn_id": f"d{k}"}
            for k, amount in ((1, "9500.00"), (5, "9800.00"), (30, "8700.00"), (40, "10000.00"))]  # fmt: skip
    rows.append({"ts": AS_OF - 2 * H, "src": None, "dst": "B", "amount": "9500.00", "channel": "cash"})
    make_store(tmp_path / "s", make_transactions(rows))
    hits = evaluate(build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig()), load_rules())
    hit = hits.filter(pl.col("rule_id") == "FW-STR-001").row(0, named=True)
    assert hits.filter(pl.col("rule_id") == "FW-STR-001")["account_id"].to_list() == ["A"]
    assert hit["evidence_txn_ids"] == ["d5", "d1", "d30"]  # the near-threshold deposits, largest first
    assert '"count_cash_near_threshold_5d": 3' in hit["feature_values"]
    assert hit["severity"] == "high"
    assert "31 CFR 1010.314" in hit["citation"]


def test_rules_command_writes_hits(tmp_path: Path) -> None:
    rows = [{"ts": AS_OF - k * H, "src": None, "dst": "A", "amount": "9500.00", "channel": "cash"} for k in (1, 2, 3)]
    make_store(tmp_path / "s", make_transactions(rows))
    done = subprocess.run([sys.executable, "-m", "finwatch", "rules", "--store", str(tmp_path / "s"), "--as-of",
                           "2026-02-01"], capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    hits = pl.read_parquet(tmp_path / "s" / "rules" / "20260201T000000Z" / "rule_hits.parquet")
    assert "FW-STR-001" in hits["rule_id"].to_list()
    bad = subprocess.run([sys.executable, "-m", "finwatch", "features", "--store", str(tmp_path / "s"), "--as-of",
                          "yesterday"], capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    assert bad.returncode == 2
    assert "is not an ISO date" in bad.stderr
    assert "Traceback" not in bad.stderr
