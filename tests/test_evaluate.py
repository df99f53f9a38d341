"""Evaluation: agreement with scikit-learn, rankings and budgets to the row, the paired bootstrap, stable PNGs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from finwatch.evaluate import (
    BUDGETS,
    _Ranked,
    _weighted_average_precision,
    _weighted_roc_auc,
    compare,
    metrics,
    plot_pr_curves,
    plot_typology_recall,
)
from finwatch.exceptions import FinwatchError
from finwatch.model import budget_threshold
from finwatch.scoring import alert_count

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def scored(n: int, seed: int, *, prevalence: float = 0.1, signal: float = 1.0, decimals: int | None = None
           ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Labels and probability-like scores; ``decimals`` rounds the scores so that many tie."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prevalence
    score = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + signal * y - 1.5)))
    return y, (np.round(score, decimals) if decimals is not None else score)


def assert_plain_json(value: Any) -> None:
    """Only the types json.dumps writes natively, no numpy scalars, no NaN."""
    if isinstance(value, dict):
        assert all(type(k) is str for k in value)
        for v in value.values():
            assert_plain_json(v)
    elif isinstance(value, list):
        for v in value:
            assert_plain_json(v)
    else:
        assert type(value) in (str, int, float, bool, type(None)), f"{value!r} is a {type(value)}"
        assert not (type(value) is float and math.isnan(value))


# --- metrics ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("decimals", [None, 1], ids=["distinct scores", "tied scores"])
def test_agrees_with_sklearn(decimals: int | None) -> None:
    y, score = scored(600, seed=3, decimals=decimals)
    m = metrics(y, score, 0.3)
    predicted = score >= 0.3
    assert m["n"] == 600
    assert m["n_positive"] == int(y.sum())
    assert m["prevalence"] == pytest.approx(y.mean())
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, score), abs=1e-15)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-15)
    assert m["f1"] == pytest.approx(f1_score(y, predicted))
    assert m["precision"] == pytest.approx(precision_score(y, predicted))
    assert m["recall"] == pytest.approx(recall_score(y, predicted))
    assert m["brier"] == pytest.approx(brier_score_loss(y, score))
    tn, fp, fn, tp = confusion_matrix(y, predicted).ravel()
    assert m["confusion"] == {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
    assert m["threshold"] == 0.3
    assert m["recall_by_typology"] is None
    assert_plain_json(m)
    json.dumps(m, allow_nan=False)


def test_a_perfect_scorer_and_a_random_one() -> None:
    y = np.zeros(1000, bool)
    y[::20] = True  # 50 positives
    perfect = metrics(y, y * 0.9 + 0.05, 0.5)
    assert perfect["pr_auc"] == 1.0
    assert perfect["roc_auc"] == 1.0
    assert perfect["f1"] == perfect["precision"] == perfect["recall"] == 1.0
    assert perfect["at_k"]["10"] == {"alerts": 10, "tp": 10, "precision": 1.0, "recall": 0.2}
    assert perfect["at_k"]["100"]["tp"] == 50
    assert perfect["at_budget"]["2%"] == {"budget": 0.02, "alerts": 20, "tp": 20, "precision": 1.0, "recall": 0.4}
    assert perfect["brier"] == pytest.approx(0.05**2)

    rng = np.random.default_rng(0)
    y = rng.random(40_000) < 0.05
    noise = metrics(y, rng.random(40_000), 0.5)
    assert noise["roc_auc"] == pytest.approx(0.5, abs=0.02)
    assert noise["pr_auc"] == pytest.approx(noise["prevalence"], abs=0.01)
    assert noise["recall"] == pytest.approx(0.5, abs=0.03)


def test_a_score_equal_to_the_threshold_is_an_alert() -> None:
    m = metrics(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.4999999, 0.1]), 0.5)
    assert m["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    assert m["precision"] == m["recall"] == m["f1"] == 0.5


def test_top_k_breaks_ties_by_row_order() -> None:
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    score = np.array([0.2, 0.5, 0.5, 0.5, 0.5, 0.9, 0.5, 0.1])
    m = metrics(y, score, 0.5, ks=(1, 2, 3, 4, 20))
    # ranking: row 5 (0.9), then the 0.5s in row order 1, 2, 3, 4, 6, then 0 and 7
    assert [m["at_k"][k]["tp"] for k in ("1", "2", "3", "4")] == [0, 1, 2, 2]
    assert m["at_k"]["20"] == {"alerts": 8, "tp": 4, "precision": 0.5, "recall": 1.0}
    # the same rows in reverse order: row 6 (a negative) is now the first of the tied rows
    backwards = metrics(y[::-1], score[::-1], 0.5, ks=(2, 3, 4))
    assert [backwards["at_k"][k]["tp"] for k in ("2", "3", "4")] == [0, 1, 1]
    assert metrics(y, score, 0.5, ks=(3,)) == metrics(y, score, 0.5, ks=(3,))


def test_budget_applies_to_each_group_with_its_own_top_rows() -> None:
    # 150 rows on one date with high scores, 30 on the next with low ones; the positives are each date's top rows
    rng = np.random.default_rng(5)
    first = np.linspace(0.99, 0.5, 150)
    second = np.linspace(0.3, 0.01, 30)
    score = np.concatenate([first, second])
    dates = np.array(["2026-01-01"] * 150 + ["2026-01-02"] * 30, dtype="datetime64[D]")
    y = np.zeros(180, bool)
    y[[0, 1, 2, 150]] = True
    shuffle = rng.permutation(180)
    score, dates, y = score[shuffle], dates[shuffle], y[shuffle]

    grouped = metrics(y, score, 0.5, groups=dates)
    # 2 % of 150 is 3 alerts, 2 % of 30 is 0.6: rounded up to 1
    assert grouped["n_groups"] == 2
    assert grouped["at_budget"]["2%"] == {"budget": 0.02, "alerts": 4, "tp": 4, "precision": 1.0, "recall": 1.0}
    # 1 % of 150 is 1.5 → 2, 1 % of 30 → 1; 0.5 % → 1 + 1
    assert grouped["at_budget"]["1%"]["alerts"] == 3
    assert grouped["at_budget"]["1%"]["tp"] == 3
    assert grouped["at_budget"]["0.5%"] == {"budget": 0.005, "alerts": 2, "tp": 2, "precision": 1.0, "recall": 0.5}
    # one ranking over all 180 rows: ceil(3.6) = 4 alerts, all from the first date
    pooled = metrics(y, score, 0.5)
    assert pooled["n_groups"] == 1
    assert pooled["at_budget"]["2%"] == {"budget": 0.02, "alerts": 4, "tp": 3, "precision": 0.75, "recall": 0.75}


def test_budget_counts_are_not_inflated_by_rounding_and_ties_go_to_earlier_rows() -> None:
    y = np.zeros(100, bool)
    y[:7] = True
    m = metrics(y, np.full(100, 0.5), 0.5, budgets=(0.07, 0.0701, 1.0))
    assert m["at_budget"]["7%"] == {"budget": 0.07, "alerts": 7, "tp": 7, "precision": 1.0, "recall": 1.0}
    assert m["at_budget"]["7.01%"]["alerts"] == 8
    assert m["at_budget"]["100%"]["alerts"] == 100
    # within a group too: group labels in any order, each group's earliest rows win ties
    groups = np.array(["b", "a"] * 50)
    m = metrics(y, np.full(100, 0.5), 0.5, groups=groups, budgets=(0.02,))
    assert m["at_budget"]["2%"] == {"budget": 0.02, "alerts": 2, "tp": 2, "precision": 1.0, "recall": 2 / 7}


def _alerts_three_ways(budget: float, n: int) -> tuple[int, int, int]:
    """Alerts of ``budget`` on ``n`` rows with distinct scores: the rule, evaluation's report, the model's threshold."""
    score = np.random.default_rng(n).permutation(n).astype(np.float64) / n
    at_budget = metrics(np.zeros(n, bool), score, 0.5, ks=(), budgets=[budget])["at_budget"]
    (reported,) = (entry["alerts"] for entry in at_budget.values())
    thresholded = int(np.sum(score >= budget_threshold(score, budget)))
    return alert_count(budget, n), reported, thresholded


@pytest.mark.parametrize(
    ("budget", "n", "expected"),
    [
        pytest.param(0.07, 100, 7, id="7 % of 100 rows is 7, not 8"),
        pytest.param(0.001, 100, 1, id="a budget under one row alerts one"),
        pytest.param(0.0701, 100, 8, id="7.01 % of 100 rows is 8"),
        pytest.param(0.1, 30, 3, id="10 % of 30 rows is 3, not 4"),
        pytest.param(0.01, 101, 2, id="1 % of 101 rows rounds up to 2"),
        pytest.param(0.29, 100, 29, id="0.29 × 100 is 29 despite 28.999999999999996"),
    ],
)
def test_alert_count_cases(budget: float, n: int, expected: int) -> None:
    rule, reported, thresholded = _alerts_three_ways(budget, n)
    assert rule == expected
    assert reported == expected
    assert thresholded == expected


@settings(max_examples=300, deadline=None)
@given(
    budget=st.floats(min_value=0.0, max_value=1.0, exclude_min=True, exclude_max=True),
    n=st.integers(min_value=1, max_value=5000),
)
def test_evaluation_and_thresholds_alert_what_the_alert_count_rule_says(budget: float, n: int) -> None:
    rule, reported, thresholded = _alerts_three_ways(budget, n)
    assert reported == rule
    assert thresholded == rule


def test_recall_by_typology_counts_each_typology_of_a_positive_row() -> None:
    rows = [  # (label, typologies, score)
        (1, ["structuring"], 0.90),
        (1, ("structuring", "smurfing", "smurfing"), 0.80),  # a name repeated on a row counts once
        (1, ["smurfing"], 0.20),
        (1, [], 0.95),
        (0, None, 0.70),
        (0, ["mule"], 0.60),  # a typology seen on negatives only
        (1, "layering", 0.10),  # a bare string is one name
        (0, [], 0.00),
    ]
    y = np.array([r[0] for r in rows])
    score = np.array([r[2] for r in rows])
    m = metrics(y, score, 0.5, typologies=[r[1] for r in rows], budgets=(0.25, 0.5))
    # 25 % of 8 rows: rows 3 and 0; 50 %: rows 3, 0, 1, 4
    assert m["recall_by_typology"] == {
        "layering": {"n_positive": 1, "recall_at_threshold": 0.0, "recall_at_budget": {"25%": 0.0, "50%": 0.0}},
        "mule": {"n_positive": 0, "recall_at_threshold": None, "recall_at_budget": {"25%": None, "50%": None}},
        "smurfing": {"n_positive": 2, "recall_at_threshold": 0.5, "recall_at_budget": {"25%": 0.0, "50%": 0.5}},
        "structuring": {"n_positive": 2, "recall_at_threshold": 1.0, "recall_at_budget": {"25%": 0.5, "50%": 1.0}},
    }
    m = metrics(y, score, 0.5, typologies=[r[1] for r in rows])
    assert set(m["recall_by_typology"]["structuring"]["recall_at_budget"]) == {"0.5%", "1%", "2%"}
    assert len(BUDGETS) == 3


def test_reliability_bins_and_brier_need_probabilities() -> None:
    y = np.array([0, 1, 0, 1, 1])
    score = np.array([0.05, 0.05, 0.15, 0.95, 1.0])
    m = metrics(y, score, 0.5)
    assert m["reliability"] == [
        {"bin_lower": 0.0, "bin_upper": 0.1, "n": 2, "mean_score": 0.05, "observed_rate": 0.5},
        {"bin_lower": 0.1, "bin_upper": 0.2, "n": 1, "mean_score": 0.15, "observed_rate": 0.0},
        {"bin_lower": 0.9, "bin_upper": 1.0, "n": 2, "mean_score": pytest.approx(0.975), "observed_rate": 1.0},
    ]
    assert len(metrics(y, score, 0.5, bins=1)["reliability"]) == 1
    margins = metrics(y, score * 10 - 2, 0.5)  # a margin, not a probability
    assert margins["brier"] is None
    assert margins["reliability"] is None
    assert margins["pr_auc"] == m["pr_auc"]


def test_one_class_only() -> None:
    score = np.linspace(0, 1, 50)
    negatives = metrics(np.zeros(50, bool), score, 0.5, typologies=[[]] * 50)
    assert negatives["roc_auc"] is None
    assert negatives["pr_auc"] is None
    assert negatives["recall"] is None
    assert negatives["precision"] == 0.0
    assert negatives["at_k"]["10"]["recall"] is None
    assert negatives["recall_by_typology"] == {}
    assert_plain_json(negatives)
    positives = metrics(np.ones(50, bool), score, 0.5)
    assert positives["roc_auc"] is None
    assert positives["pr_auc"] == 1.0
    assert_plain_json(positives)
    none_alerted = metrics(np.array([True, False]), np.array([0.1, 0.2]), 0.9)
    assert none_alerted["precision"] is None
    assert none_alerted["f1"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"score": np.array([0.1, np.nan, 0.3, 0.4])}, r"score: 1 scores are NaN \(first at row 1\)", id="nan"
        ),
        pytest.param({"score": np.array([0.1, np.inf, 0.3, 0.4])}, "infinite", id="inf"),
        pytest.param({"score": np.array([0.1, 0.2, 0.3])}, "3 scores for 4 labels", id="length"),
        pytest.param({"score": np.ones((4, 1))}, "1-D", id="2-D score"),
        pytest.param({"score": np.array(["a", "b", "c", "d"])}, "expected numbers", id="text score"),
        pytest.param({"y": np.array([0, 1, 2, 0])}, r"bool or 0/1.*row 2", id="label 2"),
        pytest.param({"y": np.array([], bool), "score": np.array([])}, "no rows", id="empty"),
        pytest.param({"threshold": float("nan")}, "threshold: must be finite", id="nan threshold"),
        pytest.param({"groups": np.array([1.0, np.nan, 1.0, 2.0])}, "1 rows have no group", id="missing group"),
        pytest.param({"groups": np.array([1, 2])}, "2 values for 4 rows", id="groups length"),
        pytest.param({"budgets": (0.0,)}, r"share of rows in \(0, 1\]", id="zero budget"),
        pytest.param({"budgets": (0.01, 0.01)}, "repeat", id="repeated budget"),
        pytest.param({"ks": (0,)}, "at least 1", id="k 0"),
        pytest.param({"bins": 0}, "at least 1", id="no bins"),
        pytest.param({"typologies": [["a"], [1], [], []]}, "row 1", id="typology not a string"),
        pytest.param({"typologies": [["a"]]}, "1 entries for 4 rows", id="typologies length"),
    ],
)
def test_bad_input_is_a_finwatch_error(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"y": np.array([0, 1, 1, 0]), "score": np.array([0.1, 0.2, 0.3, 0.4]), "threshold": 0.5}
    args.update(kwargs)
    with pytest.raises(FinwatchError, match=message):
        metrics(args.pop("y"), args.pop("score"), args.pop("threshold"), **args)


# --- weighted metrics: the bootstrap's arithmetic -----------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_weighted_ap_and_roc_auc_equal_sklearn_with_sample_weight(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    y, score = scored(n, seed, prevalence=0.2, decimals=[None, 1, 2][seed % 3])
    weights = rng.integers(0, 4, n)  # zeros included
    weights[np.argsort(-score, kind="stable")[:5]] = 0  # the top of the ranking carries no weight
    assert _weighted_average_precision(y, score, weights) == pytest.approx(
        average_precision_score(y, score, sample_weight=weights), rel=1e-12, abs=1e-15)  # fmt: skip
    assert _weighted_roc_auc(y, score, weights) == pytest.approx(
        roc_auc_score(y, score, sample_weight=weights), rel=1e-12, abs=1e-15)  # fmt: skip
    counts = np.bincount(rng.integers(0, n, n), minlength=n)  # a bootstrap resample
    assert _weighted_average_precision(y, score, counts) == pytest.approx(
        average_precision_score(y, score, sample_weight=counts), rel=1e-12, abs=1e-15)  # fmt: skip
    assert _weighted_roc_auc(y, score, counts) == pytest.approx(
        roc_auc_score(y, score, sample_weight=counts), rel=1e-12, abs=1e-15)  # fmt: skip


def test_weighted_metrics_without_both_classes_are_undefined() -> None:
    y = np.array([1, 0, 1, 0])
    score = np.array([0.9, 0.8, 0.7, 0.1])
    assert math.isnan(_weighted_average_precision(y, score, np.array([0, 3, 0, 1])))
    assert math.isnan(_weighted_roc_auc(y, score, np.array([2, 0, 1, 0])))
    assert _weighted_average_precision(y, score, np.array([2, 0, 1, 0])) == 1.0


@pytest.mark.parametrize("grouped", [False, True])
def test_weighted_rows_equal_the_resample_written_out(grouped: bool) -> None:
    rng = np.random.default_rng(11)
    n = 500
    y, score = scored(n, 11, prevalence=0.15, decimals=2)
    groups = rng.integers(0, 4, n)
    codes = groups if grouped else None
    for budget in (0.01, 0.03, 0.1):
        ranked = _Ranked(y, score, 0.35, codes, 4)
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        rows = np.repeat(np.arange(n), counts)  # copies of a row stay together and in row order
        expected = metrics(y[rows], score[rows], 0.35, groups=groups[rows] if grouped else None, budgets=(budget,))
        at_budget = expected["at_budget"][f"{budget * 100:g}%"]
        got = ranked.weighted(counts, budget)
        assert got[0] == pytest.approx(expected["pr_auc"], rel=1e-12)
        assert got[1] == pytest.approx(expected["roc_auc"], rel=1e-12)
        assert got[2] == pytest.approx(expected["f1"], rel=1e-12)
        assert got[3] == pytest.approx(at_budget["precision"], rel=1e-12)
        assert got[4] == pytest.approx(at_budget["recall"], rel=1e-12)


# --- compare ------------------------------------------------------------------------------------------------------
FIELDS = {"a", "b", "diff", "a_low", "a_high", "b_low", "b_high", "diff_low", "diff_high", "n_valid", "b_better",
          "a_better"}  # fmt: skip
METRICS = ("pr_auc", "roc_auc", "f1", "precision_at_budget", "recall_at_budget")


def test_compare_point_estimates_equal_metrics() -> None:
    y, a = scored(2000, 1, decimals=2)
    _, b = scored(2000, 2, signal=2.0)
    groups = np.repeat(np.array(["2026-01-01", "2026-01-08", "2026-01-15"]), [900, 700, 400])
    for g in (None, groups):
        result = compare(y, a, b, 0.3, 0.4, groups=g, budget=0.02, n_boot=20)
        for name, score, threshold in (("a", a, 0.3), ("b", b, 0.4)):
            m = metrics(y, score, threshold, groups=g, budgets=(0.02,))
            assert result["pr_auc"][name] == pytest.approx(m["pr_auc"], rel=1e-12)
            assert result["roc_auc"][name] == pytest.approx(m["roc_auc"], rel=1e-12)
            assert result["f1"][name] == pytest.approx(m["f1"], rel=1e-12)
            assert result["precision_at_budget"][name] == m["at_budget"]["2%"]["precision"]
            assert result["recall_at_budget"][name] == m["at_budget"]["2%"]["recall"]


def test_compare_identical_models() -> None:
    y, score = scored(1500, 4)
    result = compare(y, score, score, 0.3, 0.3, n_boot=200)
    for name in METRICS:
        entry = result[name]
        assert set(entry) == FIELDS
        assert entry["a"] == entry["b"]
        assert entry["diff"] == entry["diff_low"] == entry["diff_high"] == 0.0
        assert entry["a_low"] == entry["b_low"] <= entry["a"] <= entry["a_high"] == entry["b_high"]
        assert entry["n_valid"] == 200
        assert not entry["b_better"]
        assert not entry["a_better"]
    assert {k: result[k] for k in ("n", "n_boot", "seed", "level", "budget")} == {
        "n": 1500, "n_boot": 200, "seed": 0, "level": 0.95, "budget": 0.01}  # fmt: skip
    assert_plain_json(result)
    json.dumps(result, allow_nan=False)


def test_compare_finds_the_clearly_better_model() -> None:
    y, weak = scored(3000, 6, signal=0.3)
    _, strong = scored(3000, 7, signal=3.0)
    strong = np.where(y, strong, strong / 3)  # same labels, better separation
    result = compare(y, weak, strong, 0.3, 0.3, n_boot=300)
    for name in ("pr_auc", "roc_auc", "precision_at_budget"):
        assert result[name]["b_better"], name
        assert result[name]["diff_low"] > 0
        assert result[name]["b_low"] <= result[name]["b"] <= result[name]["b_high"]
    swapped = compare(y, strong, weak, 0.3, 0.3, n_boot=300)
    assert swapped["pr_auc"]["a_better"]
    assert not swapped["pr_auc"]["b_better"]
    assert swapped["pr_auc"]["diff"] == pytest.approx(-result["pr_auc"]["diff"])


def test_compare_is_reproducible_by_seed() -> None:
    y, a = scored(1000, 8)
    _, b = scored(1000, 9, signal=1.5)
    groups = np.arange(1000) % 3
    first = compare(y, a, b, 0.3, 0.3, groups=groups, n_boot=100, seed=42)
    assert compare(y, a, b, 0.3, 0.3, groups=groups, n_boot=100, seed=42) == first
    other = compare(y, a, b, 0.3, 0.3, groups=groups, n_boot=100, seed=43)
    assert other["pr_auc"]["diff"] == first["pr_auc"]["diff"]
    assert other["pr_auc"]["diff_low"] != first["pr_auc"]["diff_low"]
    assert other["pr_auc"]["diff_low"] == pytest.approx(first["pr_auc"]["diff_low"], abs=0.1)
    narrow = compare(y, a, b, 0.3, 0.3, groups=groups, n_boot=100, seed=42, level=0.5)
    assert first["pr_auc"]["diff_low"] < narrow["pr_auc"]["diff_low"] < narrow["pr_auc"]["diff_high"]
    assert narrow["pr_auc"]["diff_high"] < first["pr_auc"]["diff_high"]


def test_compare_with_one_class_reports_undefined_metrics() -> None:
    score = np.linspace(0, 1, 200)
    result = compare(np.zeros(200, bool), score, score[::-1], 0.5, 0.5, n_boot=30)
    assert result["roc_auc"]["a"] is None
    assert result["roc_auc"]["diff_low"] is None
    assert result["roc_auc"]["n_valid"] == 0
    assert result["roc_auc"]["b_better"] is False
    assert result["precision_at_budget"]["a"] == 0.0
    assert_plain_json(result)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"score_b": np.array([0.1, 0.2])}, "score_b: 2 scores for 4 labels", id="length"),
        pytest.param({"score_a": np.array([0.1, 0.2, np.nan, 0.1])}, "score_a: 1 scores are NaN", id="nan"),
        pytest.param({"level": 1.0}, r"level: .*\(0, 1\)", id="level"),
        pytest.param({"n_boot": 0}, "n_boot: must be at least 1", id="no resample"),
        pytest.param({"budget": 1.5}, "budget", id="budget"),
        pytest.param({"seed": -1}, "seed", id="seed"),
    ],
)
def test_compare_refuses_bad_input(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"y": np.array([0, 1, 1, 0]), "score_a": np.array([0.1, 0.2, 0.3, 0.4]),
                            "score_b": np.array([0.4, 0.3, 0.2, 0.1]), "n_boot": 5}  # fmt: skip
    args.update(kwargs)
    with pytest.raises(FinwatchError, match=message):
        compare(args.pop("y"), args.pop("score_a"), args.pop("score_b"), 0.5, 0.5, **args)


# --- plots --------------------------------------------------------------------------------------------------------
def test_pr_curves_png_is_written_atomically_and_reproducibly(tmp_path: Path) -> None:
    y, a = scored(800, 12, decimals=2)
    _, b = scored(800, 13, signal=2.0)
    curves = {"baseline": (y, a), "xgboost": (y, b)}
    first = plot_pr_curves(curves, tmp_path / "one" / "pr.png", title="Validation, January")
    second = plot_pr_curves(curves, tmp_path / "two.png", title="Validation, January")
    assert first == tmp_path / "one" / "pr.png"
    assert first.read_bytes().startswith(PNG_SIGNATURE)
    assert first.read_bytes() == second.read_bytes()
    plot_pr_curves(curves, first, title="Validation, January")  # overwriting in place
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["pr.png", "two.png"]
    y2, c = scored(500, 14, prevalence=0.3)
    other = plot_pr_curves({"a": (y, a), "b": (y2, c)}, tmp_path / "other.png")  # one baseline each
    assert other.read_bytes().startswith(PNG_SIGNATURE)
    assert other.read_bytes() != first.read_bytes()
    with pytest.raises(FinwatchError, match="no positive"):
        plot_pr_curves({"a": (np.zeros(5), np.ones(5))}, tmp_path / "x.png")
    with pytest.raises(FinwatchError, match="is a folder"):
        plot_pr_curves(curves, tmp_path / "one")


def test_typology_recall_png_is_reproducible(tmp_path: Path) -> None:
    recall = {
        "rules": {"structuring": 0.8, "fan_in": 0.25, "cycles": 0.0},
        "xgboost": {"structuring": 0.9, "fan_in": 0.6, "cycles": float("nan"), "mule": 1.0},
    }
    first = plot_typology_recall(recall, tmp_path / "a.png", title="Recall at 1 %")
    second = plot_typology_recall(recall, tmp_path / "b.png", title="Recall at 1 %")
    assert first.read_bytes().startswith(PNG_SIGNATURE)
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]
    with pytest.raises(FinwatchError, match=r"recall lies in \[0, 1\]"):
        plot_typology_recall({"m": {"structuring": 1.5}}, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()
