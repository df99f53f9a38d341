"""Reasons in plain language: the model's per-row contributions and the rules that fired, merged.

Model reasons come from XGBoost's exact contributions (``pred_contribs``: SHAP values of the margin) of the rows
being reported — only those rows, since exact contributions cost milliseconds per row. Each feature with a
positive contribution becomes a sentence from ``features/reasons.yaml`` filled with the row's value. Rule reasons
carry the rule's description, severity, citation and evidence transactions. Rules come first (each is a named,
cited test an analyst can re-run), then model reasons by contribution.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from finwatch.exceptions import ConfigError
from finwatch.features import reference_root
from finwatch.model import Scorer

__all__ = ["Reason", "merge", "model_reasons", "reason_templates", "render", "rule_reasons"]

Reason = dict[str, Any]


def reason_templates(reference_dir: Path | None = None) -> dict[str, str]:
    """Feature name → sentence template (``reasons.yaml`` of ``reference_dir``, default: the shipped ``features/``)."""
    return _templates((reference_dir or reference_root()) / "reasons.yaml")


@cache
def _templates(path: Path) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a mapping of feature name to sentence expected")
    return {str(k): str(v) for k, v in data.items()}


def render(feature: str, value: Any, boolean: bool = False, templates: Mapping[str, str] | None = None) -> str:
    """The sentence for ``feature`` at ``value`` (a feature without a template is named as it is).

    ``templates`` default to :func:`reason_templates` of the shipped catalogue.
    """
    for side, party in (("src", "the sender"), ("dst", "the receiver")):
        prefix = f"{side}_profile_"
        if feature.startswith(prefix):  # a party's account feature as of the start of the transaction's day
            inner = render(feature.removeprefix(prefix), value, boolean, templates)
            return f"{party}, as of the start of that day: {inner}"
    template = (reason_templates() if templates is None else templates).get(feature)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        shown: Any = "unknown"
        template = None
    elif boolean or isinstance(value, bool):
        shown = "yes" if value else "no"
    else:
        shown = float(value)
    if template is None:
        return f"{feature} = {shown}"
    try:
        return template.format(value=shown)
    except (ValueError, TypeError):
        return template.replace("{value}", str(shown)) if "{value}" in template else f"{template} ({shown})"


def model_reasons(
    scorer: Scorer,
    X: np.ndarray,
    *,
    booleans: Sequence[str] = (),
    top: int = 3,
    min_contribution: float = 0.0,
    templates: Mapping[str, str] | None = None,
) -> list[list[Reason]]:
    """For each row of ``X``: up to ``top`` features that raised its score most, as reasons.

    ``templates``: the sentences (:func:`reason_templates` of a catalogue; default: the shipped one).
    """
    if X.shape[0] == 0:
        return []
    contributions = scorer.contributions(X)[:, :-1]  # the last column is the bias
    names = scorer.feature_names_
    flags = set(booleans)
    out: list[list[Reason]] = []
    for row, contrib in zip(X, contributions, strict=True):
        order = np.lexsort((np.arange(contrib.size), -contrib))  # largest first, ties by feature order
        reasons: list[Reason] = []
        for index in order[:top]:
            c = float(contrib[index])
            if c <= min_contribution:
                break
            feature = names[index]
            raw = float(row[index])
            value: Any = None if math.isnan(raw) else (bool(raw) if feature in flags else raw)
            reasons.append({
                "source": "model",
                "feature": feature,
                "value": value,
                "contribution": round(c, 6),
                "text": render(feature, value, feature in flags, templates),
            })  # fmt: skip
        out.append(reasons)
    return out


def rule_reasons(hits: Sequence[Mapping[str, Any]]) -> list[Reason]:
    """Reasons from rule hits (rows of :func:`finwatch.rules.evaluate`), most severe first."""
    rank = {"high": 0, "medium": 1, "low": 2}
    ordered = sorted(hits, key=lambda h: (rank.get(str(h["severity"]), 3), str(h["rule_id"])))
    return [
        {
            "source": "rule",
            "rule_id": h["rule_id"],
            "typology": h["typology"],
            "severity": h["severity"],
            "text": f"{h['description']} (rule {h['rule_id']}, {h['severity']})",
            "citation": h["citation"],
            "evidence_txn_ids": list(h.get("evidence_txn_ids") or []),
        }
        for h in ordered
    ]


WINDOW_SUFFIX = re.compile(r"_(\d+[hd])$")


def measure(feature: str) -> str:
    """A feature's measure without its window: ``count_in_7d`` and ``count_in_30d`` are both ``count_in``."""
    return WINDOW_SUFFIX.sub("", feature)


def merge(rules: Sequence[Reason], model: Sequence[Reason], top: int = 5) -> list[Reason]:
    """One list of reasons: every rule that fired (most severe first), then the model's, up to ``top`` in all.

    Model reasons that say the same thing twice — the same measure over different windows — become one reason (the
    stronger contribution, with the other window's evidence added). A model reason about a feature a listed rule
    already reads is kept: the rule says the test failed, the model reason says how much that feature weighed.
    """
    kept: dict[str, Reason] = {}
    for reason in (r for r in model if r.get("source") == "model"):
        key = measure(str(reason["feature"]))
        if key not in kept:
            kept[key] = dict(reason)
            continue
        first = kept[key]
        extra = [t for t in reason.get("evidence_txn_ids", []) if t not in first.get("evidence_txn_ids", [])]
        first["evidence_txn_ids"] = list(first.get("evidence_txn_ids", [])) + extra
        first["also"] = [*first.get("also", []), reason["feature"]]
    merged = list(rules) + list(kept.values())
    return merged[: max(top, len(rules))]
