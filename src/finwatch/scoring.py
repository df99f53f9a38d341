"""Scoring, shared by training, evaluation, thresholds and leads: the feature matrix, rule weights, the combined
score and the one alert-count rule. Pure functions on arrays and frames; nothing here reads a store or trains.

- **Alert count**: a budget alerts ``ceil(budget × n)`` rows, at least one, with the product rounded to 9 decimals
  first so that floating-point noise cannot add an alert (7 % of 100 rows is 7, not 8).
- **Rule weights**: a rule weighs its precision measured when the model was trained (smoothed as
  (right + 1) / (fired + 2)). A rule that is new since training, or whose definition changed, weighs the prior of its
  severity (:data:`SEVERITY_PRIOR`) until the model is retrained: a new rule counts from the first night.
- **Combined score**: ``1 − (1 − model) × (1 − rules)``: either strong evidence raises the score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from finwatch.exceptions import FinwatchError

__all__ = [
    "SEVERITY_PRIOR",
    "alert_count",
    "alert_counts",
    "combine",
    "matrix",
    "rank",
    "rule_scores",
    "rule_weights",
]

#: the weight of a rule that has not been measured with the model in use: roughly the precision rules of that
#: severity reach on the shipped worlds (high-severity rules are written to fire on few, clear cases)
SEVERITY_PRIOR: Mapping[str, float] = {"high": 0.5, "medium": 0.3, "low": 0.1}


def alert_counts(budget: float, sizes: np.ndarray) -> np.ndarray:
    """``ceil(budget × size)``, at least 1, for each group size (the product rounded to 9 decimals first)."""
    raw = np.round(budget * np.asarray(sizes, dtype=np.float64), 9)
    return np.maximum(np.ceil(raw).astype(np.int64), 1)


def alert_count(budget: float, n: int) -> int:
    """How many of ``n`` rows a ``budget`` (a share in (0, 1]) alerts: the rule every stage uses."""
    if not 0 < budget <= 1:
        raise FinwatchError(f"an alert budget is a share between 0 and 100 %, not {budget}")
    if n <= 0:
        return 0
    return min(n, int(alert_counts(budget, np.array([n]))[0]))


def rank(score: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Row positions by score, highest first; equal scores by id (so a ranking never depends on row order)."""
    return np.lexsort((np.asarray(ids), -np.asarray(score)))


def matrix(rows: pl.DataFrame, features: Sequence[str]) -> np.ndarray:
    """Features as float32 (booleans as 0/1, nulls as NaN: tree models treat NaN as missing)."""
    missing = [f for f in features if f not in rows.columns]
    if missing:
        raise FinwatchError(f"the data lacks features the model needs: {missing}")
    if not features:
        return np.zeros((rows.height, 0), dtype=np.float32)
    return rows.select([pl.col(f).cast(pl.Float32) for f in features]).to_numpy().astype(np.float32, copy=False)


def rule_weights(
    trained: Mapping[str, Any] | None, digests: Mapping[str, str], severities: Mapping[str, str]
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Each rule's weight, and how the pack differs from the one the model was trained with.

    ``trained`` is the ``rules`` block of a model's metadata (``precision`` per rule id, ``digests`` per rule id);
    ``digests`` and ``severities`` describe the pack in use. Returns ``(weights, changes)`` where ``changes`` has
    ``new``, ``changed`` (both weighted by their severity prior) and ``removed`` rule ids.
    """
    trained = trained or {}
    precision = {r: float(v["precision"]) for r, v in (trained.get("precision") or {}).items()}
    before: Mapping[str, str] = trained.get("digests") or {}
    weights: dict[str, float] = {}
    new: list[str] = []
    changed: list[str] = []
    for rule_id in sorted(digests):
        if before and rule_id not in before:
            new.append(rule_id)
        elif before and before[rule_id] != digests[rule_id]:
            changed.append(rule_id)
        else:  # measured at training time; a rule that never fired on the training data weighs 0
            weights[rule_id] = precision.get(rule_id, 0.0)
            continue
        weights[rule_id] = SEVERITY_PRIOR.get(severities.get(rule_id, "low"), SEVERITY_PRIOR["low"])
    removed = sorted(set(before) - set(digests))
    return weights, {"new": new, "changed": changed, "removed": removed}


def rule_scores(weights: Mapping[str, float], fired: Sequence[Sequence[str]]) -> np.ndarray:
    """Per row, the highest weight among the rules that fired for it (0 when none did)."""
    return np.array([max((weights.get(r, 0.0) for r in rules), default=0.0) for rules in fired], dtype=np.float64)


def combine(model: np.ndarray, rules: np.ndarray) -> np.ndarray:
    """Either strong evidence raises the score: 1 − (1 − model) × (1 − rules)."""
    out: np.ndarray = 1 - (1 - model) * (1 - rules)
    return out
