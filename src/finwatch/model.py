"""The scorer: gradient-boosted trees (XGBoost) behind the scikit-learn estimator contract.

- Class imbalance: positives are weighted by ``scale_pos_weight`` (``"balanced"``: negatives / positives,
  ``"sqrt"``: its square root, or a number).
- Early stopping on a validation part (given as ``eval_set``, or the last ``validation_fraction`` of the rows in
  their given order — time order for finwatch's datasets); the saved model holds the trees up to the best round.
- Calibration: Platt scaling (a logistic curve on the raw margin) fitted on the validation part; it is strictly
  increasing, so rankings and rank metrics are those of the trees. Stored as JSON.
- Threshold: chosen on the validation part — the best F1, or the score that alerts a fixed share of rows
  (``alert_budget``) — never on test data.
- Deterministic: same rows, parameters and ``random_state`` give the same ``model.ubj`` bytes. Models are saved in
  XGBoost's own UBJ format plus a JSON sidecar; nothing is pickled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.scoring import alert_count

__all__ = ["KINDS", "Scorer", "XGBScorer", "best_f1_threshold", "budget_threshold", "make_scorer", "scorer_kind"]


@runtime_checkable
class Scorer(Protocol):
    """What training, scoring and explaining need of a model kind (``XGBScorer`` is the reference).

    A kind is one module with a class meeting this protocol and one line in :data:`KINDS`. Its model is saved as
    bytes in its own format (never pickle) plus a JSON-ready ``state``; ``describe`` gives the model card's lines.
    """

    feature_names_: list[str]
    threshold_: float
    threshold_rule_: str

    def fit(
        self, X: Any, y: Any, *, eval_set: tuple[Any, Any] | None = None, feature_names: Sequence[str] | None = None
    ) -> Self: ...

    def predict_proba(self, X: Any) -> np.ndarray: ...

    def contributions(self, X: Any) -> np.ndarray: ...

    def model_bytes(self) -> bytes: ...

    def state(self) -> dict[str, Any]: ...

    @classmethod
    def from_state(cls, model: bytes, state: dict[str, Any]) -> Self: ...

    def describe(self) -> list[str]: ...

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
    return out


def _fit_platt(margin: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """a, b of p = sigmoid(a · margin + b), by Newton's method on the log loss with Platt's smoothed targets."""
    n_pos = float(y.sum())
    n_neg = float(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return 1.0, 0.0
    target = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    a, b = 1.0, 0.0
    for _ in range(100):
        p = _sigmoid(a * margin + b)
        w = np.maximum(p * (1 - p), 1e-12)
        g = np.array([np.sum((p - target) * margin), np.sum(p - target)])
        h = np.array([[np.sum(w * margin * margin), np.sum(w * margin)], [np.sum(w * margin), np.sum(w)]])
        h += np.eye(2) * 1e-9
        step = np.linalg.solve(h, g)
        a, b = a - float(step[0]), b - float(step[1])
        if np.max(np.abs(step)) < 1e-10:
            break
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0:
        return 1.0, 0.0  # degenerate validation data: keep the trees' own probabilities
    return a, b


def best_f1_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """The score that maximises F1 when rows scoring at or above it are alerted (ties: the higher threshold)."""
    order = np.argsort(-score, kind="stable")
    s, t = score[order], y[order].astype(np.float64)
    tp = np.cumsum(t)
    fp = np.cumsum(1 - t)
    last_of_value = np.r_[s[1:] != s[:-1], True]  # a threshold admits every row with an equal score
    tp, fp, s = tp[last_of_value], fp[last_of_value], s[last_of_value]
    total_pos = t.sum()
    if total_pos == 0:
        return float(s[0]) if s.size else 0.5
    f1 = 2 * tp / (tp + fp + total_pos)
    best = int(np.flatnonzero(f1 == f1.max())[0])
    return float(s[best])


def budget_threshold(score: np.ndarray, budget: float) -> float:
    """The score at or above which ``budget`` (a share, e.g. 0.01) of the rows are alerted."""
    if not 0 < budget < 1:
        raise FinwatchError(f"alert budget must be a share between 0 and 1, not {budget}")
    k = alert_count(budget, int(score.size))
    return float(np.sort(score)[::-1][k - 1])


class XGBScorer(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A calibrated, thresholded gradient-boosted tree classifier for suspicious-activity scoring."""

    def __init__(
        self,
        n_estimators: int = 500,
        max_depth: int = 6,
        learning_rate: float = 0.1,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        max_bin: int = 256,
        scale_pos_weight: float | str = "sqrt",
        early_stopping_rounds: int = 40,
        validation_fraction: float = 0.2,
        alert_budget: float | None = None,
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.scale_pos_weight = scale_pos_weight
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.alert_budget = alert_budget
        self.random_state = random_state
        self.n_jobs = n_jobs

    # --- fitting ---------------------------------------------------------------------------------------------
    def _weight(self, y: np.ndarray) -> float:
        n_pos = float(y.sum())
        ratio = (y.size - n_pos) / n_pos if n_pos else 1.0
        if self.scale_pos_weight == "balanced":
            return ratio
        if self.scale_pos_weight == "sqrt":
            return math.sqrt(ratio)
        if isinstance(self.scale_pos_weight, str):
            raise FinwatchError(
                f"scale_pos_weight must be 'balanced', 'sqrt' or a number, not {self.scale_pos_weight!r}"
            )
        return float(self.scale_pos_weight)

    def _params(self, y: np.ndarray) -> dict[str, Any]:
        return {
            "objective": "binary:logistic",
            "eval_metric": "aucpr",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "max_bin": self.max_bin,
            "scale_pos_weight": self._weight(y),
            "seed": self.random_state,
            "nthread": self.n_jobs,
            "verbosity": 0,
        }

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> XGBScorer:
        X_arr, y_arr = _check_xy(X, y)
        classes = np.unique(y_arr)
        if classes.size != 2:
            raise FinwatchError(f"training needs both classes; the labels hold only {classes.tolist()}")
        self.classes_ = np.array([False, True]) if y_arr.dtype == bool else classes
        y01 = (y_arr == self.classes_[1]).astype(np.float32)
        if eval_set is None:
            cut = round(X_arr.shape[0] * (1 - self.validation_fraction))
            X_tr, y_tr, X_va, y_va = X_arr[:cut], y01[:cut], X_arr[cut:], y01[cut:]
        else:
            X_va, y_va = _check_xy(*eval_set)
            X_tr, y_tr = X_arr, y01
            y_va = (y_va == self.classes_[1]).astype(np.float32)
        if X_va.shape[0] == 0 or y_tr.sum() == 0:
            raise FinwatchError("the training part needs positives and the validation part needs rows")
        self.n_features_in_ = X_arr.shape[1]
        names = list(feature_names) if feature_names is not None else [f"f{i}" for i in range(X_arr.shape[1])]
        if len(names) != X_arr.shape[1]:
            raise FinwatchError(f"{len(names)} feature names for {X_arr.shape[1]} columns")
        self.feature_names_ = names
        dtrain = xgb.DMatrix(X_tr, label=y_tr, feature_names=names, nthread=self.n_jobs)
        dvalid = xgb.DMatrix(X_va, label=y_va, feature_names=names, nthread=self.n_jobs)
        booster = xgb.train(
            self._params(y_tr),
            dtrain,
            num_boost_round=self.n_estimators,
            evals=[(dvalid, "validation")],
            early_stopping_rounds=self.early_stopping_rounds if y_va.sum() > 0 else None,
            verbose_eval=False,
        )
        best = getattr(booster, "best_iteration", None)
        self.best_iteration_ = int(best) if best is not None else booster.num_boosted_rounds() - 1
        self.booster_ = booster[: self.best_iteration_ + 1]
        margin = self._margin(X_va)
        self.calibration_ = dict(zip(("a", "b"), _fit_platt(margin, y_va), strict=True))
        proba = self._calibrate(margin)
        if self.alert_budget is not None:
            self.threshold_ = budget_threshold(proba, self.alert_budget)
            self.threshold_rule_ = f"alert budget {self.alert_budget:g} of validation rows"
        else:
            self.threshold_ = best_f1_threshold(y_va, proba)
            self.threshold_rule_ = "best F1 on the validation part"
        self.validation_ = {"rows": int(y_va.size), "positive": int(y_va.sum())}
        return self

    # --- scoring ---------------------------------------------------------------------------------------------
    def _margin(self, X: np.ndarray) -> np.ndarray:
        matrix = xgb.DMatrix(X, feature_names=self.feature_names_, nthread=self.n_jobs)
        return np.asarray(self.booster_.predict(matrix, output_margin=True), dtype=np.float64)

    def _calibrate(self, margin: np.ndarray) -> np.ndarray:
        return _sigmoid(self.calibration_["a"] * margin + self.calibration_["b"])

    def decision_function(self, X: Any) -> np.ndarray:
        """The trees' raw margin (log-odds before calibration)."""
        check_is_fitted(self, "booster_")
        return self._margin(self._check_x(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "booster_")
        p = self._calibrate(self._margin(self._check_x(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        alerted = self.predict_proba(X)[:, 1] >= self.threshold_
        return np.asarray(self.classes_[alerted.astype(int)])

    def contributions(self, X: Any) -> np.ndarray:
        """Exact per-feature contributions to the margin (SHAP values, last column the bias); explain few rows."""
        check_is_fitted(self, "booster_")
        matrix = xgb.DMatrix(self._check_x(X), feature_names=self.feature_names_, nthread=self.n_jobs)
        return np.asarray(self.booster_.predict(matrix, pred_contribs=True), dtype=np.float64)

    def _check_x(self, X: Any) -> np.ndarray:
        arr = np.asarray(X, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
            raise FinwatchError(f"expected {self.n_features_in_} feature columns, got shape {arr.shape}")
        return arr

    def describe(self) -> list[str]:
        """The model card's lines about this model."""
        check_is_fitted(self, "booster_")
        return [
            f"- XGBoost gradient-boosted trees, {self.best_iteration_ + 1} rounds (early stopping on validation "
            f"PR-AUC), depth {self.max_depth}, positive weight {self.scale_pos_weight}, seed {self.random_state}",
            f"- calibration: Platt scaling on validation (a={self.calibration_['a']:.4f}, "
            f"b={self.calibration_['b']:.4f})",
            f"- threshold {self.threshold_:.6f}: {self.threshold_rule_}",
        ]

    # --- persistence (UBJ + JSON, never pickle) --------------------------------------------------------------
    def model_bytes(self) -> bytes:
        check_is_fitted(self, "booster_")
        return bytes(self.booster_.save_raw(raw_format="ubj"))

    def state(self) -> dict[str, Any]:
        """Everything besides the trees that scoring needs, as JSON-ready values."""
        check_is_fitted(self, "booster_")
        return {
            "params": self.get_params(),
            "feature_names": list(self.feature_names_),
            "classes": [_plain(c) for c in self.classes_],
            "best_iteration": self.best_iteration_,
            "calibration": {"method": "platt", **self.calibration_},
            "threshold": self.threshold_,
            "threshold_rule": self.threshold_rule_,
            "validation": self.validation_,
        }

    @classmethod
    def from_state(cls, model: bytes, state: dict[str, Any]) -> XGBScorer:
        scorer = cls(**state["params"])
        booster = xgb.Booster(params={"nthread": scorer.n_jobs})
        booster.load_model(bytearray(model))
        scorer.booster_ = booster
        scorer.feature_names_ = list(state["feature_names"])
        scorer.n_features_in_ = len(scorer.feature_names_)
        scorer.classes_ = np.array(state["classes"])
        scorer.best_iteration_ = int(state["best_iteration"])
        scorer.calibration_ = {"a": float(state["calibration"]["a"]), "b": float(state["calibration"]["b"])}
        scorer.threshold_ = float(state["threshold"])
        scorer.threshold_rule_ = str(state["threshold_rule"])
        scorer.validation_ = dict(state["validation"])
        return scorer


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _check_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    X_arr = np.asarray(X, dtype=np.float32)
    y_arr = np.asarray(y)
    if X_arr.ndim != 2:
        raise FinwatchError(f"features must be a 2-D table, got shape {X_arr.shape}")
    if y_arr.shape != (X_arr.shape[0],):
        raise FinwatchError(f"{y_arr.shape[0] if y_arr.ndim else 0} labels for {X_arr.shape[0]} rows")
    return X_arr, y_arr


#: scorer kinds by the name a configuration (``[train.model] kind``) and model metadata (``scorer_kind``) use
KINDS: dict[str, type[Scorer]] = {"xgboost": XGBScorer}


def scorer_kind(kind: str) -> type[Scorer]:
    try:
        return KINDS[kind]
    except KeyError:
        raise ConfigError(f"model kind {kind!r} is not known; kinds: {', '.join(KINDS)}") from None


def make_scorer(kind: str, params: Mapping[str, Any], *, seed: int, alert_budget: float | None) -> Scorer:
    """A new, unfitted scorer of ``kind`` with ``params`` (unknown parameters refused, naming the kind's)."""
    cls = scorer_kind(kind)
    known = set(cls().get_params())
    unknown = sorted(set(params) - known)
    if unknown:
        names = ", ".join(sorted(known))
        raise ConfigError(
            f"train.model.params: {unknown[0]!r} is not a parameter of the {kind} kind; parameters: {names}"
        )
    try:
        return cls(**{**params, "random_state": seed, "alert_budget": alert_budget})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"train.model: the {kind} kind refuses its parameters ({exc})") from None
