"""Label-aware evaluation of suspicious-activity scores, and a paired bootstrap to compare two models.

Conventions used throughout:

* ``y`` holds the labels (bool or 0/1; ``True`` is the suspicious, minority class) and ``score`` the model output,
  higher meaning more suspicious. A row is *alerted at a threshold* when ``score >= threshold``: a score exactly
  equal to the threshold is an alert.
* Rankings (top-k, alert budgets) order rows by score, highest first; equal scores are ordered by original row
  position (earlier row first), so a result never depends on the sort algorithm or the platform.
* An *alert budget* is the share of rows an investigation team can review. A budget alerts the top
  ``ceil(budget × rows)`` rows (always at least one). With ``groups`` (for example the as-of date of each account
  scoring) the budget applies to every group on its own: a group of ``m`` rows alerts its own top
  ``ceil(budget × m)`` rows, whatever the scores in the other groups, so each date gets its share of the review
  capacity. Many small groups therefore alert a little more than ``budget`` overall; ``alerts`` reports the actual
  count. The product is computed so that floating-point noise cannot add an alert (0.07 × 100 alerts 7 rows).
* A ratio with nothing to divide by is ``None``, never 0 or NaN: precision without an alert, recall without a
  positive, ROC-AUC with one class only, average precision without a positive.
* Results are plain JSON (``json.dumps`` works: ``int``, ``float``, ``bool``, ``str``, ``None``, lists, dicts) and
  deterministic: the bootstrap draws from ``numpy.random.default_rng(seed)``.

The plots are drawn on a ``matplotlib.figure.Figure`` with the Agg canvas (pyplot's global state is left alone),
at a fixed size and resolution with matplotlib's default style, and written atomically without a ``Software``
stamp, so the same inputs give byte-identical PNG files.
"""

from __future__ import annotations

import io
import math
import operator
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from finwatch._io import atomic_write_bytes
from finwatch.exceptions import FinwatchError
from finwatch.scoring import alert_counts

__all__ = ["BUDGETS", "COMPARED", "compare", "metrics", "plot_pr_curves", "plot_typology_recall"]

BUDGETS: tuple[float, ...] = (0.005, 0.01, 0.02)  # alert budgets: share of rows alerted
COMPARED = ("pr_auc", "roc_auc", "f1", "precision_at_budget", "recall_at_budget")  # the metrics `compare` reports

_FIGSIZE = (8.0, 6.0)  # inches
_DPI = 100

Bools = NDArray[np.bool_]
Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Index = NDArray[np.intp]


# --- validation ---------------------------------------------------------------------------------------------------
def _labels(y: Any) -> Bools:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise FinwatchError(f"y: expected a 1-D array of labels, got shape {arr.shape}")
    if arr.size == 0:
        raise FinwatchError("y: no rows to evaluate")
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf":
        raise FinwatchError(f"y: expected bool or 0/1 labels, got dtype {arr.dtype}")
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise FinwatchError(f"y: labels must be bool or 0/1; {int(bad.sum())} are not (first at row {first}: "
                            f"{arr[first]!r})")  # fmt: skip
    return np.asarray(arr == 1)


def _scores(score: Any, n: int, name: str = "score") -> Floats:
    arr = np.asarray(score)
    if arr.ndim != 1:
        raise FinwatchError(f"{name}: expected a 1-D array of scores, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise FinwatchError(f"{name}: {arr.shape[0]} scores for {n} labels; one score per row is needed")
    if arr.dtype.kind not in "biuf":
        raise FinwatchError(f"{name}: expected numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    for what, bad in (("NaN", np.isnan(out)), ("infinite", np.isinf(out))):
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise FinwatchError(f"{name}: {int(bad.sum())} scores are {what} (first at row {first})")
    return out


def _real(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise FinwatchError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(out):
        raise FinwatchError(f"{name}: must be finite, got {value!r}")
    return out


def _integer(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise FinwatchError(f"{name}: expected an integer, got {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise FinwatchError(f"{name}: expected an integer, got {value!r}") from None
    if out < minimum:
        raise FinwatchError(f"{name}: must be at least {minimum}, got {out}")
    return out


def _budget(value: Any, name: str = "budget") -> float:
    out = _real(value, name)
    if not 0.0 < out <= 1.0:
        raise FinwatchError(f"{name}: a budget is a share of rows in (0, 1], got {value!r}")
    return out


def _budget_label(budget: float) -> str:
    """0.005 → "0.5%", 0.01 → "1%"."""
    return f"{budget * 100:g}%"


def _group_codes(groups: Any, n: int) -> tuple[Index, int]:
    """Dense codes 0..G-1 in sorted group order, and G."""
    arr = np.asarray(groups)
    if arr.ndim != 1:
        raise FinwatchError(f"groups: expected a 1-D array, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise FinwatchError(f"groups: {arr.shape[0]} values for {n} rows; one group per row is needed")
    if arr.dtype.kind == "f":
        missing = np.isnan(arr)
    elif arr.dtype.kind in "mM":
        missing = np.isnat(arr)
    elif arr.dtype.kind == "O":
        missing = np.fromiter((g is None or (isinstance(g, float) and math.isnan(g)) for g in arr), bool, n)
    else:
        missing = np.zeros(n, bool)
    if missing.any():
        raise FinwatchError(f"groups: {int(missing.sum())} rows have no group (first at row "
                            f"{int(np.flatnonzero(missing)[0])})")  # fmt: skip
    try:
        _, codes = np.unique(arr, return_inverse=True)
    except TypeError as exc:
        raise FinwatchError(f"groups: values cannot be ordered ({exc})") from None
    codes = np.asarray(codes, dtype=np.intp).reshape(n)
    return codes, int(codes.max()) + 1


def _typology_sets(typologies: Sequence[Sequence[str]], n: int) -> list[tuple[str, ...]]:
    """One tuple of typology names per row. ``None`` means no typology; a bare string is one name."""
    if isinstance(typologies, str) or not hasattr(typologies, "__len__"):
        raise FinwatchError("typologies: expected one sequence of typology names per row")
    if len(typologies) != n:
        raise FinwatchError(f"typologies: {len(typologies)} entries for {n} rows; one entry per row is needed")
    out: list[tuple[str, ...]] = []
    for row, names in enumerate(typologies):
        if names is None:
            out.append(())
            continue
        entry = (names,) if isinstance(names, str) else tuple(names)
        if not all(isinstance(t, str) and t for t in entry):
            raise FinwatchError(f"typologies: row {row} holds {names!r}; typology names are non-empty strings")
        out.append(entry)
    return out


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


# --- rankings -----------------------------------------------------------------------------------------------------
def _rank(score: Floats) -> Index:
    """Rows by score, highest first; equal scores keep their row order."""
    return np.argsort(-score, kind="stable")


def _budget_alerts(order: Index, codes: Index | None, n_groups: int, budget: float) -> Bools:
    """The rows each group alerts under ``budget``: its top rows in ``order``, as many as
    :func:`finwatch.scoring.alert_counts` allows for the group's size."""
    n = order.shape[0]
    alerted = np.zeros(n, bool)
    if codes is None:
        alerted[order[: int(alert_counts(budget, np.array([n]))[0])]] = True
        return alerted
    by_group = order[np.argsort(codes[order], kind="stable")]
    sizes = np.bincount(codes, minlength=n_groups).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    group = codes[by_group]
    rank_in_group = np.arange(n) - starts[group]
    alerted[by_group[rank_in_group < alert_counts(budget, sizes)[group]]] = True
    return alerted


# --- metrics ------------------------------------------------------------------------------------------------------
def metrics(
    y: np.ndarray,
    score: np.ndarray,
    threshold: float,
    *,
    typologies: Sequence[Sequence[str]] | None = None,
    groups: np.ndarray | None = None,
    ks: Sequence[int] = (10, 100, 500),
    budgets: Sequence[float] = BUDGETS,
    bins: int = 10,
) -> dict[str, Any]:
    """Ranking, threshold, budget, calibration and per-typology metrics of one scorer on labelled rows.

    Returns a JSON-ready dict:

    * ``n``, ``n_positive``, ``prevalence``, ``n_groups`` (1 without ``groups``);
    * ``pr_auc`` (``sklearn.metrics.average_precision_score``; ``None`` without a positive) and ``roc_auc``
      (``None`` unless both classes occur);
    * ``threshold``, ``precision``, ``recall``, ``f1`` of the positive class for alerts ``score >= threshold``, and
      ``confusion`` ``{tp, fp, fn, tn}``;
    * ``at_k``: ``{"10": {alerts, tp, precision, recall}, ...}`` for the top ``k`` rows (``alerts`` is ``min(k, n)``);
    * ``at_budget``: ``{"0.5%": {budget, alerts, tp, precision, recall}, ...}``, per group when ``groups`` is given
      (see the module documentation);
    * ``brier`` (mean squared difference between score and label) and ``reliability``, a list of
      ``{bin_lower, bin_upper, n, mean_score, observed_rate}`` for ``bins`` equal-width bins over [0, 1] (each bin
      holds ``bin_lower <= score < bin_upper``, the last one also 1.0; empty bins are left out); both are ``None``
      when a score lies outside [0, 1], i.e. the score is not a probability;
    * ``recall_by_typology``: ``None`` without ``typologies``; otherwise, for every typology name that occurs,
      ``{n_positive, recall_at_threshold, recall_at_budget: {"0.5%": ..., ...}}`` over the positive rows that carry
      that typology (a row with several typologies counts for each). ``typologies`` holds one sequence of names per
      row; ``None`` is read as no typology and a bare string as a single name. Typologies on negative rows are
      listed with ``n_positive`` 0 and recall ``None``.
    """
    labels = _labels(y)
    n = int(labels.shape[0])
    scores = _scores(score, n)
    threshold = _real(threshold, "threshold")
    k_values = [_integer(k, "ks", 1) for k in ks]
    named_budgets = _named_budgets(budgets)
    bins = _integer(bins, "bins", 1)
    codes, n_groups = _group_codes(groups, n) if groups is not None else (None, 1)
    rows_typologies = _typology_sets(typologies, n) if typologies is not None else None

    n_pos = int(labels.sum())
    predicted = scores >= threshold
    order = _rank(scores)
    alerted = {name: _budget_alerts(order, codes, n_groups, b) for name, b in named_budgets.items()}
    return {
        "n": n,
        "n_positive": n_pos,
        "prevalence": n_pos / n,
        "n_groups": n_groups,
        **_ranking_areas(labels, scores),
        "threshold": threshold,
        **_at_threshold(labels, predicted),
        "at_k": _at_k(labels, order, k_values),
        "at_budget": _at_budget(labels, named_budgets, alerted),
        **_calibration(labels, scores, bins),
        "recall_by_typology": (
            _recall_by_typology(labels, predicted, alerted, rows_typologies) if rows_typologies is not None else None
        ),
    }


def _named_budgets(budgets: Sequence[float]) -> dict[str, float]:
    """Valid budgets by their label ("0.5%": 0.005); two budgets with one label are refused."""
    values = [_budget(b, "budgets") for b in budgets]
    names = [_budget_label(b) for b in values]
    if len(set(names)) != len(names):
        raise FinwatchError(f"budgets: {list(budgets)!r} repeat a budget")
    return dict(zip(names, values, strict=True))


def _ranking_areas(labels: Bools, scores: Floats) -> dict[str, float | None]:
    """``pr_auc`` (average precision; None without a positive) and ``roc_auc`` (None unless both classes occur)."""
    n_pos = int(labels.sum())
    n_neg = int(labels.shape[0]) - n_pos
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pr_auc = float(average_precision_score(labels, scores)) if n_pos else None
        roc_auc = float(roc_auc_score(labels, scores)) if n_pos and n_neg else None
    return {"pr_auc": pr_auc, "roc_auc": roc_auc}


def _at_threshold(labels: Bools, predicted: Bools) -> dict[str, Any]:
    """``precision``, ``recall``, ``f1`` and ``confusion`` of the alerts ``predicted``."""
    n_pos = int(labels.sum())
    n_neg = int(labels.shape[0]) - n_pos
    tp = int(np.count_nonzero(predicted & labels))
    fp = int(np.count_nonzero(predicted & ~labels))
    fn = n_pos - tp
    tn = n_neg - fp
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, n_pos),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def _at_k(labels: Bools, order: Index, k_values: Sequence[int]) -> dict[str, dict[str, Any]]:
    """Alerts, true positives, precision and recall of the top ``k`` rows of ``order``, for each ``k``."""
    n_pos = int(labels.sum())
    out: dict[str, dict[str, Any]] = {}
    for k in k_values:
        top = order[:k]
        hits = int(labels[top].sum())
        out[str(k)] = {"alerts": int(top.shape[0]), "tp": hits, "precision": _ratio(hits, top.shape[0]),
                       "recall": _ratio(hits, n_pos)}  # fmt: skip
    return out


def _at_budget(
    labels: Bools, named_budgets: Mapping[str, float], alerted: Mapping[str, Bools]
) -> dict[str, dict[str, Any]]:
    """Budget, alerts, true positives, precision and recall of each budget's alerted rows."""
    n_pos = int(labels.sum())
    out: dict[str, dict[str, Any]] = {}
    for name, b in named_budgets.items():
        alerts = int(alerted[name].sum())
        hits = int(np.count_nonzero(alerted[name] & labels))
        out[name] = {"budget": b, "alerts": alerts, "tp": hits, "precision": _ratio(hits, alerts),
                     "recall": _ratio(hits, n_pos)}  # fmt: skip
    return out


def _calibration(labels: Bools, scores: Floats, bins: int) -> dict[str, Any]:
    """``brier`` and ``reliability``, both None unless every score lies in [0, 1] (is a probability)."""
    if not (scores.min() >= 0.0 and scores.max() <= 1.0):
        return {"brier": None, "reliability": None}
    return {"brier": float(np.mean((scores - labels) ** 2)), "reliability": _reliability(labels, scores, bins)}


def _reliability(labels: Bools, scores: Floats, bins: int) -> list[dict[str, Any]]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    score_sums = np.bincount(which, weights=scores, minlength=bins)
    positive_sums = np.bincount(which, weights=labels.astype(np.float64), minlength=bins)
    return [
        {"bin_lower": float(edges[i]), "bin_upper": float(edges[i + 1]), "n": int(counts[i]),
         "mean_score": float(score_sums[i] / counts[i]), "observed_rate": float(positive_sums[i] / counts[i])}
        for i in range(bins)
        if counts[i]
    ]  # fmt: skip


def _recall_by_typology(
    labels: Bools, predicted: Bools, alerted: Mapping[str, Bools], rows: list[tuple[str, ...]]
) -> dict[str, dict[str, Any]]:
    positives: dict[str, list[int]] = {}
    for row, names in enumerate(rows):
        for name in names:
            members = positives.setdefault(name, [])
            if labels[row] and (not members or members[-1] != row):  # a name repeated on one row counts once
                members.append(row)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(positives):
        rows_of = np.asarray(positives[name], dtype=np.intp)
        size = int(rows_of.shape[0])
        out[name] = {
            "n_positive": size,
            "recall_at_threshold": _ratio(int(predicted[rows_of].sum()), size),
            "recall_at_budget": {b: _ratio(int(mask[rows_of].sum()), size) for b, mask in alerted.items()},
        }
    return out


# --- weighted metrics for the bootstrap ---------------------------------------------------------------------------
class _Ranked:
    """One scorer's rows sorted once, so that its metrics under any integer row weights (bootstrap counts) are
    running sums, computed in buffers allocated here once (an instance is not safe to share between threads).

    ``order`` lists rows by score, highest first, equal scores in row order; ``ends`` is the last position of each
    run of equal scores (the distinct thresholds); the ``n_alerted`` rows with ``score >= threshold`` form a prefix
    of ``order``. With groups, ``by_group`` lists rows by group and then as ``order``, each group from
    ``group_starts[g]`` to ``group_starts[g + 1]``.
    """

    def __init__(
        self, labels: Bools, scores: Floats, threshold: float, codes: Index | None = None, n_groups: int = 1
    ) -> None:
        n = labels.shape[0]
        self.order: Index = _rank(scores)
        self.labels: Bools = labels[self.order]
        self.positive_flags: Ints = self.labels.astype(np.int64)
        ordered = scores[self.order]
        self.ends: Index = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
        self.n_alerted = int(np.count_nonzero(scores >= threshold))
        self.by_group: Index | None = None
        self.group_labels: Bools = self.labels
        self.group_flags: Ints = self.positive_flags
        self.group_starts: Index = np.array([0, n], np.intp)
        if codes is not None:
            self.by_group = self.order[np.argsort(codes[self.order], kind="stable")]
            self.group_labels = labels[self.by_group]
            self.group_flags = self.group_labels.astype(np.int64)
            sizes = np.bincount(codes, minlength=n_groups)
            self.group_starts = np.concatenate(([0], np.cumsum(sizes))).astype(np.intp)
        m = self.ends.shape[0]
        self._weights = np.empty(n, np.int64)
        self._positive_weights = np.empty(n, np.int64)
        self._total = np.zeros(n + 1, np.int64)  # entry i: weight at positions < i
        self._positive = np.zeros(n + 1, np.int64)  # entry i: positive weight at positions < i
        self._tps = np.empty(m, np.int64)
        self._seen = np.empty(m, np.int64)
        self._fps = np.empty(m, np.int64)
        self._gained = np.empty(m, np.int64)
        self._clipped = np.empty(m, np.int64)
        self._precision = np.empty(m, np.float64)

    def _accumulate(self, weights: Ints, order: Index, flags: Ints) -> None:
        np.take(weights, order, out=self._weights)
        np.multiply(self._weights, flags, out=self._positive_weights)
        np.cumsum(self._weights, out=self._total[1:])
        np.cumsum(self._positive_weights, out=self._positive[1:])

    def weighted(self, weights: Ints, budget: float) -> Floats:
        """``pr_auc, roc_auc, f1, precision_at_budget, recall_at_budget`` under ``weights`` (NaN: undefined).

        Average precision and the ROC area follow scikit-learn with ``sample_weight``: precision at each distinct
        score weighted by the recall it adds, and the Mann-Whitney statistic with ties counted one half.
        """
        out = np.full(len(COMPARED), np.nan)
        self._accumulate(weights, self.order, self.positive_flags)
        if self.ends.shape[0] == self._weights.shape[0]:  # no tied scores: every position is a threshold
            tps, seen = self._positive[1:], self._total[1:]
        else:
            tps, seen = self._tps, self._seen
            np.take(self._positive, self.ends + 1, out=tps)
            np.take(self._total, self.ends + 1, out=seen)
        fps = np.subtract(seen, tps, out=self._fps)
        n_pos, n_neg = int(tps[-1]), int(fps[-1])
        if n_pos:
            gained = self._gained
            gained[0] = tps[0]
            np.subtract(tps[1:], tps[:-1], out=gained[1:])
            precision = np.divide(tps, np.maximum(seen, 1, out=self._clipped), out=self._precision)
            # (a float sum of a product: np.dot of an integer and a float array takes a slow generic path)
            out[0] = float(np.multiply(precision, gained, out=precision).sum()) / n_pos
            if n_neg:
                # a positive beats the negatives ranked strictly below it and ties with those at its own score:
                # twice its wins are 2 N - (negatives down to the previous threshold) - (negatives down to its own)
                twice = 2 * n_pos * n_neg - int(np.dot(gained, fps)) - int(np.dot(gained[1:], fps[:-1]))
                out[1] = twice / (2 * n_pos * n_neg)
        tp = int(self._positive[self.n_alerted])
        alerts = int(self._total[self.n_alerted])
        if alerts + n_pos:  # 2 tp + fp + fn
            out[2] = 2 * tp / (alerts + n_pos)
        if self.by_group is not None:
            self._accumulate(weights, self.by_group, self.group_flags)
        k, hits = _budget_hits(self._total, self._positive, self.group_labels, self.group_starts, budget)
        if k:
            out[3] = hits / k
        if n_pos:
            out[4] = hits / n_pos
        return out


def _budget_hits(total: Ints, positive: Ints, labels: Bools, starts: Index, budget: float) -> tuple[int, int]:
    """Alerts and true positives when each group [starts[g], starts[g + 1]) alerts ceil(budget × its weight).

    A row of weight w stands for w copies of itself, adjacent in the ranking, so the last alerted row may be taken
    in part: exactly what sorting the resampled rows themselves would give.
    """
    before = total[starts[:-1]]
    sizes = total[starts[1:]] - before
    keep = sizes > 0
    before, sizes = before[keep], sizes[keep]
    first = starts[:-1][keep]
    k = alert_counts(budget, sizes)
    target = before + k
    cut = np.searchsorted(total[1:], target, side="left")  # the position whose copies complete the budget
    hits = positive[cut] - positive[first] + (target - total[cut]) * labels[cut]
    return int(k.sum()), int(hits.sum())


def _weighted_average_precision(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> float:
    """Average precision with integer row weights (NaN without positive weight)."""
    labels = _labels(y)
    ranked = _Ranked(labels, _scores(score, labels.shape[0]), 0.0)
    return float(ranked.weighted(np.asarray(weights, np.int64), 1.0)[0])


def _weighted_roc_auc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> float:
    """ROC-AUC with integer row weights (NaN unless both classes have weight)."""
    labels = _labels(y)
    ranked = _Ranked(labels, _scores(score, labels.shape[0]), 0.0)
    return float(ranked.weighted(np.asarray(weights, np.int64), 1.0)[1])


# --- paired bootstrap ---------------------------------------------------------------------------------------------
def compare(
    y: np.ndarray,
    score_a: np.ndarray,
    score_b: np.ndarray,
    threshold_a: float,
    threshold_b: float,
    *,
    groups: np.ndarray | None = None,
    budget: float = 0.01,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Model A against model B on the same labelled rows, with a paired bootstrap.

    Each of the ``n_boot`` resamples draws ``n`` rows with replacement (``numpy.random.default_rng(seed)``) and
    scores both models on that same resample, so the interval of the difference accounts for their correlation.
    Rows are resampled independently; with ``groups`` the budget metrics are computed per group of the resample as
    in :func:`metrics`. Rows that are not independent (the same account on several dates) make the intervals too
    narrow.

    Returns, for each of ``pr_auc``, ``roc_auc``, ``f1`` (each model at its own threshold), ``precision_at_budget``
    and ``recall_at_budget``: ``{a, b, diff, a_low, a_high, b_low, b_high, diff_low, diff_high, n_valid, b_better,
    a_better}`` where ``a``, ``b`` and ``diff = b - a`` are measured on the original rows (``None`` where
    undefined), the bounds are percentile intervals at ``level`` over the resamples in which the metric is defined
    (for the difference: defined for both models, ``n_valid`` resamples), and ``b_better`` (``a_better``) says the
    whole interval of the difference lies above (below) 0. Alongside:
    ``n``, ``n_positive``, ``n_boot``, ``seed``, ``level``, ``budget``, ``threshold_a``, ``threshold_b``.
    """
    labels = _labels(y)
    n = int(labels.shape[0])
    a_scores = _scores(score_a, n, "score_a")
    b_scores = _scores(score_b, n, "score_b")
    threshold_a = _real(threshold_a, "threshold_a")
    threshold_b = _real(threshold_b, "threshold_b")
    budget = _budget(budget)
    n_boot = _integer(n_boot, "n_boot", 1)
    seed = _integer(seed, "seed", 0)
    level = _real(level, "level")
    if not 0.0 < level < 1.0:
        raise FinwatchError(f"level: a confidence level lies in (0, 1), got {level!r}")
    codes, n_groups = _group_codes(groups, n) if groups is not None else (None, 1)

    ranked_a = _Ranked(labels, a_scores, threshold_a, codes, n_groups)
    ranked_b = _Ranked(labels, b_scores, threshold_b, codes, n_groups)
    ones = np.ones(n, np.int64)
    points = (ranked_a.weighted(ones, budget), ranked_b.weighted(ones, budget))
    replicates = _bootstrap(ranked_a, ranked_b, n, budget, n_boot, seed)
    out: dict[str, Any] = {
        name: _paired_summary(points[0][j], points[1][j], replicates[:, 0, j], replicates[:, 1, j], level)
        for j, name in enumerate(COMPARED)
    }
    out.update({"n": n, "n_positive": int(labels.sum()), "n_boot": n_boot, "seed": seed, "level": level,
                "budget": budget, "threshold_a": threshold_a, "threshold_b": threshold_b})  # fmt: skip
    return out


def _bootstrap(ranked_a: _Ranked, ranked_b: _Ranked, n: int, budget: float, n_boot: int, seed: int) -> Floats:
    """``(n_boot, 2, len(COMPARED))``: both models' metrics on the same resamples of ``n`` rows (NaN: undefined)."""
    rng = np.random.default_rng(seed)
    replicates = np.empty((n_boot, 2, len(COMPARED)))
    for i in range(n_boot):
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n)
        replicates[i, 0] = ranked_a.weighted(counts, budget)
        replicates[i, 1] = ranked_b.weighted(counts, budget)
    return replicates


def _interval(values: Floats, level: float) -> tuple[float | None, float | None]:
    """The percentile interval at ``level`` of the finite ``values`` (None, None when there are none)."""
    values = values[np.isfinite(values)]
    if not values.size:
        return None, None
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def _finite(x: np.float64) -> float | None:
    return float(x) if math.isfinite(x) else None


def _paired_summary(
    point_a: np.float64, point_b: np.float64, rep_a: Floats, rep_b: Floats, level: float
) -> dict[str, Any]:
    """One metric of both models: point values, their intervals, and the interval of ``b - a`` over the resamples
    where both are defined."""
    paired = np.isfinite(rep_a) & np.isfinite(rep_b)
    a_low, a_high = _interval(rep_a, level)
    b_low, b_high = _interval(rep_b, level)
    d_low, d_high = _interval((rep_b - rep_a)[paired], level)
    a, b = _finite(point_a), _finite(point_b)
    return {
        "a": a,
        "b": b,
        "diff": b - a if a is not None and b is not None else None,
        "a_low": a_low,
        "a_high": a_high,
        "b_low": b_low,
        "b_high": b_high,
        "diff_low": d_low,
        "diff_high": d_high,
        "n_valid": int(paired.sum()),
        "b_better": d_low is not None and d_low > 0.0,
        "a_better": d_high is not None and d_high < 0.0,
    }


# --- plots --------------------------------------------------------------------------------------------------------
def _figure() -> Figure:
    figure = Figure(figsize=_FIGSIZE, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _legend(figure: Figure, ax: Any, ncols: int) -> None:
    """Below the plot, where it cannot hide a curve or a bar."""
    handles, labels = ax.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False, fontsize="small")


def _save_png(figure: Figure, path: Path) -> Path:
    """Write beside the destination, then rename into place: readers never see half a file."""
    target = Path(path)
    if target.is_dir():
        raise FinwatchError(f"{target}: is a folder; expected the path of a PNG file")
    target.parent.mkdir(parents=True, exist_ok=True)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=_DPI, metadata={"Software": None})
    atomic_write_bytes(target, image.getvalue())  # a killed write's temporary file goes with the next write there
    return target


def plot_pr_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str = "") -> Path:
    """Precision-recall curves, one per entry ``name: (y, score)``, with the average precision in the legend.

    The dashed line is the prevalence, the precision of a random ranking: one grey line when every entry has the
    same prevalence, otherwise one per entry in its colour. The legend sits below the plot. Returns ``path``.
    """
    if not curves:
        raise FinwatchError("curves: nothing to plot; pass at least one name: (y, score)")
    prepared: list[tuple[str, Bools, Floats]] = []
    for name, pair in curves.items():
        if len(pair) != 2:
            raise FinwatchError(f"curves[{name!r}]: expected a pair (y, score)")
        labels = _labels(pair[0])
        if not labels.any():
            raise FinwatchError(f"curves[{name!r}]: no positive label; a precision-recall curve needs one")
        prepared.append((str(name), labels, _scores(pair[1], labels.shape[0], f"curves[{name!r}] score")))

    figure = _figure()
    ax = figure.add_subplot()
    prevalences = [float(labels.mean()) for _, labels, _ in prepared]
    shared = len(set(prevalences)) == 1
    for (name, labels, scores), prevalence in zip(prepared, prevalences, strict=True):
        precision, recall, _ = precision_recall_curve(labels, scores)
        ap = float(average_precision_score(labels, scores))
        (line,) = ax.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP = {ap:.3f})")
        if not shared:
            ax.axhline(prevalence, color=line.get_color(), linestyle="--", linewidth=1,
                       label=f"prevalence = {prevalence:.2%}")  # fmt: skip
    if shared:
        label = f"prevalence = {prevalences[0]:.2%}"
        ax.axhline(prevalences[0], color="grey", linestyle="--", linewidth=1, label=label)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    # each column holds one entry's curve and, when prevalences differ, its baseline below it
    _legend(figure, ax, min(3, len(prepared) + 1) if shared else (len(prepared) if len(prepared) <= 3 else 2))
    if title:
        ax.set_title(title)
    return _save_png(figure, path)


def plot_typology_recall(recall: Mapping[str, Mapping[str, float]], path: Path, title: str = "") -> Path:
    """Horizontal bars of recall per typology, one bar per entry (model) within each typology's group.

    ``recall`` maps an entry name to ``{typology: recall}``, for example
    ``{name: {t: r["recall_at_budget"]["1%"] for t, r in metrics(...)["recall_by_typology"].items()}}``. A missing
    typology or a ``None``/NaN recall is drawn as "n/a". Typologies are listed in sorted order. Returns ``path``.
    """
    if not recall:
        raise FinwatchError("recall: nothing to plot; pass at least one name: {typology: recall}")
    typologies = sorted({t for values in recall.values() for t in values})
    if not typologies:
        raise FinwatchError("recall: no typology to plot")
    table = np.full((len(recall), len(typologies)), np.nan)
    for i, (name, values) in enumerate(recall.items()):
        for j, typology in enumerate(typologies):
            raw: Any = values.get(typology)
            if raw is None or (isinstance(raw, float) and math.isnan(raw)):
                continue
            value = _real(raw, f"recall[{name!r}][{typology!r}]")
            if not 0.0 <= value <= 1.0:
                raise FinwatchError(f"recall[{name!r}][{typology!r}]: a recall lies in [0, 1], got {raw!r}")
            table[i, j] = value

    figure = _figure()
    ax = figure.add_subplot()
    height = 0.8 / len(recall)
    positions = np.arange(len(typologies), dtype=np.float64)
    for i, name in enumerate(recall):
        row = table[i]
        missing = np.isnan(row)
        bars = ax.barh(positions - 0.4 + height * (i + 0.5), np.where(missing, 0.0, row), height=height, label=name)
        ax.bar_label(bars, labels=["n/a" if m else f"{v:.2f}" for v, m in zip(row, missing, strict=True)],
                     padding=2, fontsize="small")  # fmt: skip
    ax.set_yticks(positions, labels=typologies)
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.1)
    ax.set_xlabel("recall")
    _legend(figure, ax, min(4, len(recall)))
    if title:
        ax.set_title(title)
    return _save_png(figure, path)
