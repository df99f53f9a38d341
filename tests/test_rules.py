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
from finwatch.features import Features, build_account_features
from finwatch.rules import RulePack, evaluate, load_rules, run_rules, unmet_needs
from finwatch.store import Store
from finwatch.testing import make_accounts, make_store, make_transactions

AS_OF = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def write_rule(folder: Path, condition: str, **fields: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"id": "T-1", "version": "1", "typology": "structuring", "severity": "high", "description": "d",
             "condition": condition, "evidence": "structuring", "citation": "c", **fields}  # fmt: skip
    (folder / "r.yaml").write_text("- " + "\n  ".join(f"{k}: {v!r}" if k == "condition" else f"{k}: {v}"
                                                       for k, v in entry.items()) + "\n")  # fmt: skip
    return folder


def rules_in(folder: Path, config: FeatureConfig | None = None) -> RulePack:
    return load_rules(config or FeatureConfig(), folder=folder)


def test_the_shipped_pack_loads_with_citations_and_descriptions() -> None:
    pack = load_rules(FeatureConfig())
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
        rules_in(write_rule(tmp_path / "rules", condition))


def test_unknown_features_are_named(tmp_path: Path) -> None:
    make_store(tmp_path / "s", make_transactions([{"ts": AS_OF - H, "src": "A", "dst": "B", "amount": "5"}]))
    features = build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig())
    with pytest.raises(ConfigError, match=r"unknown features \['count_unicorns'\]"):
        evaluate(features, rules_in(write_rule(tmp_path / "rules", "count_unicorns > 1")))


def test_structuring_rule_fires_with_reasons_and_evidence(tmp_path: Path) -> None:
    rows = [{"ts": AS_OF - k * H, "src": None, "dst": "A", "amount": amount, "channel": "cash", "txn_id": f"d{k}"}
            for k, amount in ((1, "9500.00"), (5, "9800.00"), (30, "8700.00"), (40, "10000.00"))]  # fmt: skip
    rows.append({"ts": AS_OF - 2 * H, "src": None, "dst": "B", "amount": "9500.00", "channel": "cash"})
    make_store(tmp_path / "s", make_transactions(rows))
    hits = evaluate(build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig()), load_rules(FeatureConfig()))
    hit = hits.filter(pl.col("rule_id") == "FW-STR-001").row(0, named=True)
    assert hits.filter(pl.col("rule_id") == "FW-STR-001")["account_id"].to_list() == ["A"]
    assert hit["evidence_txn_ids"] == ["d5", "d1", "d30"]  # the near-threshold deposits, largest first
    assert '"count_cash_near_threshold_5d": 3' in hit["feature_values"]
    assert hit["severity"] == "high"
    assert "31 CFR 1010.314" in hit["citation"]


def test_a_rule_naming_an_evidence_family_the_sql_does_not_declare_is_refused(tmp_path: Path) -> None:
    folder = write_rule(tmp_path / "rules", "count_in_24h > 1", evidence="unicorns")
    with pytest.raises(ConfigError, match=r"r\.yaml: rule T-1: evidence 'unicorns' is not a family the SQL declares"):
        rules_in(folder)


def test_citations_quote_the_configured_law(tmp_path: Path) -> None:
    law = {"structuring": "Act s 77.3", "threshold": "Regulation s 126", "trafficking": "Alert OA-1"}
    pack = load_rules(FeatureConfig(law=law))
    citations = {r.id: r.citation for r in pack.rules}
    assert citations["FW-STR-001"].startswith("Act s 77.3; Regulation s 126; FFIEC")
    assert citations["FW-STR-003"].startswith("Act s 77.3; FinCEN Guidance FIN-2012-G001")
    assert all(citations[i].startswith("Alert OA-1") for i in ("FW-HT-001", "FW-HT-002", "FW-HT-003", "FW-HT-004"))
    assert not any("{" in c for c in citations.values())
    default = {r.id: r.citation for r in load_rules(FeatureConfig()).rules}
    assert "31 CFR 1010.314" in default["FW-STR-001"]
    assert "31 CFR 1010.311" in default["FW-STR-001"]
    assert "FIN-2020-A008" in default["FW-HT-001"]


@pytest.mark.parametrize(
    "citation",
    [
        pytest.param("{law.constitution}", id="a law key the configuration lacks"),
        pytest.param("{threshold}", id="a placeholder that is not law"),
    ],
)
def test_an_unknown_citation_placeholder_is_refused_at_load(tmp_path: Path, citation: str) -> None:
    folder = write_rule(tmp_path / "rules", "count_in_24h > 1", citation=f"'{citation} s 1'")
    with pytest.raises(ConfigError, match=r"rule T-1: citation placeholder .* is unknown"):
        rules_in(folder)


@pytest.mark.parametrize(
    ("amounts", "fires"),
    [
        pytest.param(("45000.00",), False, id="one 45,000 deposit is below a 50,000 threshold"),
        pytest.param(("45000.00", "41000.00"), True, id="two near deposits in a day reach a 50,000 threshold"),
    ],
)
def test_conditions_compare_with_the_threshold_the_features_were_built_with(
    tmp_path: Path, amounts: tuple[str, ...], fires: bool
) -> None:
    rows = [{"ts": AS_OF - (5 + k) * H, "src": None, "dst": "A", "amount": a, "channel": "cash"}
            for k, a in enumerate(amounts)]  # fmt: skip
    rows.append({"ts": AS_OF - 2 * H, "src": "A", "dst": "X", "amount": "40000.00", "channel": "wire"})
    make_store(tmp_path / "s", make_transactions(rows))
    config = FeatureConfig(threshold=50_000)
    hits = evaluate(build_account_features(Store(tmp_path / "s"), AS_OF, config), load_rules(config))
    assert ("FW-STR-003" in hits["rule_id"].to_list()) is fires


def test_a_threshold_condition_needs_the_features_parameters(tmp_path: Path) -> None:
    make_store(tmp_path / "s", make_transactions([{"ts": AS_OF - H, "src": "A", "dst": "B", "amount": "5"}]))
    built = build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig())
    bare = Features(built.as_of, built.accounts, built.cycles, built.evidence, built.models, built.batches)
    with pytest.raises(ConfigError, match="rule T-1: the features carry no value of threshold"):
        evaluate(bare, rules_in(write_rule(tmp_path / "rules", "sum_in_30d >= threshold")))


def test_rule_digests_follow_the_definition_not_the_law(tmp_path: Path) -> None:
    pack = load_rules(FeatureConfig())
    elsewhere = load_rules(FeatureConfig(law={"structuring": "Act s 77.3"}))
    assert pack.digests() == elsewhere.digests()  # the citation template, not the quoted law, is hashed
    assert set(pack.digests()) == {r.id for r in pack.rules}
    assert all(len(d) == 64 for d in pack.digests().values())
    assert pack.severities()["FW-STR-001"] == "high"
    a = rules_in(write_rule(tmp_path / "a", "count_in_24h > 1")).rules[0]
    b = rules_in(write_rule(tmp_path / "b", "count_in_24h > 2")).rules[0]
    c = rules_in(write_rule(tmp_path / "c", "count_in_24h > 1", severity="low")).rules[0]
    assert len({a.digest, b.digest, c.digest}) == 3
    assert rules_in(write_rule(tmp_path / "d", "count_in_24h > 1")).rules[0].digest == a.digest


def test_trafficking_evidence_recognises_merchants_by_name_without_mcc(tmp_path: Path) -> None:
    # an export without MCCs: ad sites and lodging are known only by the merchant's name (all in daytime hours,
    # so no transaction is evidence for being at night)
    card = {"channel": "card", "mcc": None}
    rows = [
        {"ts": AS_OF - 40 * H, "src": "V", "dst": "M1", "amount": "60", "counterparty_name": "SKIPTHEGAMES.COM",
         "txn_id": "ad1", **card},
        {"ts": AS_OF - 38 * H, "src": "V", "dst": "M1", "amount": "55", "counterparty_name": "SKIPTHEGAMES.COM",
         "txn_id": "ad2", **card},
        {"ts": AS_OF - 36 * H, "src": "V", "dst": "M2", "amount": "120", "counterparty_name": "MOTEL 6 #1432",
         "city": "Denver", "txn_id": "lodge1", **card},
        {"ts": AS_OF - 14 * H, "src": "V", "dst": "M3", "amount": "140", "counterparty_name": "HOLIDAY INN EXPRESS",
         "city": "Reno", "txn_id": "lodge2", **card},
        {"ts": AS_OF - 12 * H, "src": "V", "dst": "M4", "amount": "30", "counterparty_name": "CORNER BAKERY",
         "city": "Reno", "txn_id": "bread", **card},
    ]  # fmt: skip
    make_store(tmp_path / "s", make_transactions(rows))
    hits = evaluate(build_account_features(Store(tmp_path / "s"), AS_OF, FeatureConfig()), load_rules(FeatureConfig()))
    hit = hits.filter((pl.col("rule_id") == "FW-HT-001") & (pl.col("account_id") == "V")).row(0, named=True)
    assert set(hit["evidence_txn_ids"]) == {"ad1", "ad2", "lodge1", "lodge2"}


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


NO_ACCOUNTS = (
    "the store has no accounts table (ingest a customer extract with --format customers-csv, or a finwatch-tables "
    "accounts file)"
)


def test_rules_the_store_lacks_the_data_for_are_named_with_what_is_missing(tmp_path: Path) -> None:
    rows = [{"ts": AS_OF - k * H, "src": "A", "dst": "B", "amount": "500.00"} for k in (1, 2, 3)]
    make_store(tmp_path / "exports", make_transactions(rows))  # transactions only, no MCC nor merchant names
    result = run_rules(Store(tmp_path / "exports"), AS_OF, FeatureConfig())
    assert f"FW-SHL-001 (shell circulation) cannot fire: {NO_ACCOUNTS}" in result.notes
    assert (
        f"FW-HT-004 (labor trafficking) cannot fire: {NO_ACCOUNTS}; no stored transaction has a merchant category "
        "code (mcc) or a counterparty name"
    ) in result.notes
    assert "FW-CRY-001 (crypto layering) cannot fire: no stored transaction has a chain (on-chain transfers)" in (
        result.notes
    )
    assert not [n for n in result.notes if n.startswith(("FW-STR-001", "FW-FAN-001", "FW-CYC-001"))]  # no needs
    assert result.summary()["notes"] == result.notes
    assert result.summary()["rules_version"] == result.pack.version

    named = [{**r, "counterparty_name": "MOTEL 6"} for r in rows]
    accounts = make_accounts([{"account_id": "A", "holder_type": "business"}, {"account_id": "B"}])
    make_store(tmp_path / "kyc", make_transactions(named), accounts)
    notes = unmet_needs(load_rules(FeatureConfig()), Store(tmp_path / "kyc"))
    assert not [n for n in notes if n.startswith(("FW-SHL-001", "FW-HT-004"))], notes
    assert not [n for n in notes if "accounts table" in n]


def test_needs_name_stored_tables_and_columns_and_are_no_part_of_the_digest(tmp_path: Path) -> None:
    plain = rules_in(write_rule(tmp_path / "a", "count_in_24h > 1")).rules[0]
    needing = rules_in(write_rule(tmp_path / "b", "count_in_24h > 1", needs="[accounts, transactions.mcc or "
                                  "transactions.counterparty_name]")).rules[0]  # fmt: skip
    assert needing.needs == ("accounts", "transactions.mcc or transactions.counterparty_name")
    assert needing.digest == plain.digest
    with pytest.raises(ConfigError, match=r"rule T-1: needs 'accounts.unicorn' is not a stored table or a column"):
        rules_in(write_rule(tmp_path / "c", "count_in_24h > 1", needs="[accounts.unicorn]"))
    with pytest.raises(ConfigError, match="rule T-1: needs must be a list"):
        rules_in(write_rule(tmp_path / "d", "count_in_24h > 1", needs="accounts"))
