"""The scoring module every stage shares: rankings, rule weights, the combined score (alert counts: test_evaluate)."""

from __future__ import annotations

import numpy as np

from finwatch.scoring import SEVERITY_PRIOR, combine, rank, rule_scores, rule_weights


def test_rank_is_by_score_then_id() -> None:
    order = rank(np.array([0.5, 0.9, 0.5, 0.1]), ["b", "z", "a", "c"])
    assert order.tolist() == [1, 2, 0, 3]


def test_combined_score_rises_with_either() -> None:
    assert combine(np.array([0.0, 0.5, 0.5]), np.array([0.0, 0.0, 0.5])).tolist() == [0.0, 0.5, 0.75]


TRAINED = {
    "version": "old",
    "digests": {"FW-A": "a1", "FW-B": "b1", "FW-GONE": "g1"},
    "precision": {"FW-A": {"precision": 0.9, "hits": 8, "positive": 8}},
}


def test_rules_new_or_changed_since_training_weigh_their_severity_prior() -> None:
    digests = {"FW-A": "a1", "FW-B": "b2", "FW-NEW": "n1"}
    severities = {"FW-A": "high", "FW-B": "medium", "FW-NEW": "high"}
    weights, changes = rule_weights(TRAINED, digests, severities)
    assert weights == {"FW-A": 0.9, "FW-B": SEVERITY_PRIOR["medium"], "FW-NEW": SEVERITY_PRIOR["high"]}
    assert changes == {"new": ["FW-NEW"], "changed": ["FW-B"], "removed": ["FW-GONE"]}
    assert rule_scores(weights, [["FW-NEW"], [], ["FW-A", "FW-B"]]).tolist() == [0.5, 0.0, 0.9]


def test_a_rule_that_never_fired_in_training_weighs_zero() -> None:
    weights, changes = rule_weights(TRAINED, {"FW-A": "a1", "FW-B": "b1"}, {"FW-A": "high", "FW-B": "high"})
    assert weights == {"FW-A": 0.9, "FW-B": 0.0}
    assert changes == {"new": [], "changed": [], "removed": ["FW-GONE"]}


def test_models_without_rule_digests_keep_their_measured_weights() -> None:
    old = {"version": "old", "precision": {"FW-A": {"precision": 0.4}}}
    weights, changes = rule_weights(old, {"FW-A": "a1", "FW-B": "b1"}, {"FW-A": "low", "FW-B": "high"})
    assert weights == {"FW-A": 0.4, "FW-B": 0.0}
    assert changes == {"new": [], "changed": [], "removed": []}
