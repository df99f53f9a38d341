"""Train, evaluate and compare registered models on a store: what ``finwatch train / evaluate / models`` run.

Three scorers are measured side by side on the same rows:

- **model**: the calibrated XGBoost probability;
- **rules**: for each row, the highest precision (measured on the training and validation parts when the model
  was trained, smoothed as (right + 1) / (fired + 2)) among the rules that fired for it — a rule is as strong as
  it has proven to be;
- **combined**: ``1 − (1 − model) × (1 − rules)``: either strong evidence raises the score.

Rules are account-level, so the rules and combined scorers exist for account-level models only. Every threshold
is chosen on the validation part at training time and stored with the model.
"""

from __future__ import annotations

import datetime as dt
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from finwatch import __version__
from finwatch import evaluate as ev
from finwatch.config import FeatureConfig, Level, RunConfig, TrainConfig
from finwatch.dataset import PARTS, Dataset, Progress, build_dataset
from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.explain import merge, model_reasons, render, rule_reasons
from finwatch.features import PARTY_SIDES, load_feature_set
from finwatch.model import Scorer, best_f1_threshold, make_scorer
from finwatch.registry import LoadedModel, Registry
from finwatch.rules import RulePack, load_rules
from finwatch.scoring import combine, matrix, rule_scores, rule_weights
from finwatch.store import Store

__all__ = ["compare_models", "evaluate_model", "scores", "train_model"]

SCORERS = ("model", "rules", "combined")


def _dataset(
    store: Store,
    level: Level,
    train: TrainConfig | dict[str, Any],
    features_config: FeatureConfig,
    as_of: dt.datetime | None,
    features: tuple[str, ...] = (),
    progress: Progress | None = None,
) -> Dataset:
    """The labelled rows a model with these input ``features`` needs (party profiles are built only if used)."""
    settings = train if isinstance(train, dict) else train.model_dump()
    prefix = tuple(f"{side}_profile_" for side in PARTY_SIDES)
    profiles = tuple(dict.fromkeys(f.removeprefix(p) for f in features for p in prefix if f.startswith(p)))
    step = dt.timedelta(hours=int(settings["step_hours"]))
    return build_dataset(store, level, features_config, as_of=as_of, step=step, fractions=tuple(settings["fractions"]),
                         profiles=profiles, progress=progress)  # fmt: skip


def _labels(rows: pl.DataFrame) -> np.ndarray:
    return rows["label"].to_numpy().astype(bool)


def _groups(rows: pl.DataFrame, level: str) -> np.ndarray | None:
    """Account level: each as-of time is one scoring run, so alert budgets apply per as-of time."""
    return rows["unit"].to_numpy() if level == Level.ACCOUNT else None


def _rule_precision(rows: pl.DataFrame) -> dict[str, dict[str, float]]:
    exploded = rows.select("rule_ids", "label").explode("rule_ids").drop_nulls("rule_ids")
    if exploded.is_empty():
        return {}
    table = exploded.group_by("rule_ids").agg(hits=pl.len(), positive=pl.col("label").sum()).sort("rule_ids")
    # Laplace's rule of succession: a rule right 3 times out of 3 is not certain; (positive + 1) / (hits + 2)
    return {
        r["rule_ids"]: {"hits": int(r["hits"]), "positive": int(r["positive"]),
                        "precision": round((r["positive"] + 1) / (r["hits"] + 2), 6)}
        for r in table.iter_rows(named=True)
    }  # fmt: skip


def scores(model: LoadedModel, rows: pl.DataFrame, pack: RulePack | None = None) -> dict[str, np.ndarray]:
    """Model, rules and combined scores of ``rows`` (rules and combined only for account-level models)."""
    out = {"model": model.scorer.predict_proba(matrix(rows, model.scorer.feature_names_))[:, 1]}
    trained = model.metadata.get("rules")
    if trained:
        if pack is not None:
            weights, _changes = rule_weights(trained, pack.digests(), pack.severities())
        else:
            weights = {r: float(v["precision"]) for r, v in trained["precision"].items()}
        out["rules"] = rule_scores(weights, rows["rule_ids"].to_list())
        out["combined"] = combine(out["model"], out["rules"])
    return out


def _typologies(rows: pl.DataFrame) -> list[list[str]]:
    return [list(t) for t in rows["typologies"].to_list()]


def train_model(
    store: Store, name: str, config: RunConfig, registry: Registry, progress: Progress | None = None
) -> LoadedModel:
    """Build the labelled dataset, fit on train with early stopping and threshold on validation, register."""
    settings = config.train
    if settings.split != "temporal":
        raise ConfigError(f"--split {settings.split!r}: only 'temporal' is supported (a random split leaks the future)")
    level = settings.level
    feature_set = load_feature_set(settings.feature_set or f"{level}_v1", config.features.reference_dir)
    if feature_set.level != level:
        raise ConfigError(f"feature set {feature_set.name} is for the {feature_set.level} level, not {level}")
    features = list(feature_set.names())
    data = _dataset(store, level, settings, config.features, settings.as_of, tuple(features), progress)
    train, valid = data.rows("train"), data.rows("validation")
    for part, rows in (("train", train), ("validation", valid)):
        if rows.is_empty() or not rows["label"].any():
            raise FinwatchError(f"the {part} part has no positive rows; more labelled data (or other fractions) needed")
    scorer = make_scorer(settings.model.kind, settings.model.params, seed=settings.seed,
                         alert_budget=settings.alert_budget)  # fmt: skip
    scorer.fit(matrix(train, features), _labels(train), eval_set=(matrix(valid, features), _labels(valid)),
               feature_names=features)  # fmt: skip
    y_valid = _labels(valid)
    p_valid = scorer.predict_proba(matrix(valid, features))[:, 1]
    groups = _groups(valid, level)
    validation = {"model": ev.metrics(y_valid, p_valid, scorer.threshold_, groups=groups)}
    rules = None
    if level == Level.ACCOUNT and data.rules_version is not None:
        rules = _measure_rules(train, valid, p_valid, groups, load_rules(config.features), validation)
    types = dict(zip(data.frame.columns, [str(t) for t in data.frame.dtypes], strict=True))
    metadata = {
        "level": level,
        "feature_set": {"name": feature_set.name, "version": feature_set.version},
        "features": [{"name": f, "type": types[f]} for f in features],
        "training_data": {**data.summary(), "store_batches": data.batches},
        "train": settings.model_dump(mode="json"),
        "config_sha256": config.digest(),
        "feature_config_sha256": config.features.digest(),
        "jurisdiction": config.jurisdiction,
        "seed": settings.seed,
        "libraries": _libraries(),
        "threshold": scorer.threshold_,
        "metrics": {"validation": validation},
        "rules": rules,
    }
    metadata["typical_positive"] = _typical_positive(train, features)
    card = _model_card(name, metadata, scorer)
    return registry.register(name, scorer, metadata, card)


def _typical_positive(rows: pl.DataFrame, features: list[str]) -> dict[str, float | None]:
    """The median of each feature over the positive ``rows`` (missing values left out; None when all are missing).

    A boolean's median is 1 when most positives have it (0.5 on a tie). The model card's feature sentences are
    filled with these values: what a typical positive training row looks like.
    """
    positive = rows.filter(pl.col("label"))
    medians = positive.select(pl.col(f).cast(pl.Float64).fill_nan(None).median() for f in features).row(0)
    return {f: None if v is None else float(v) for f, v in zip(features, medians, strict=True)}


def _measure_rules(
    train: pl.DataFrame,
    valid: pl.DataFrame,
    p_valid: np.ndarray,
    groups: np.ndarray | None,
    pack: RulePack,
    validation: dict[str, Any],
) -> dict[str, Any]:
    """Each rule's precision on train + validation, the rules-only and combined thresholds, and their metrics."""
    y_valid = _labels(valid)
    precision = _rule_precision(pl.concat([train, valid]))
    weights = {r: v["precision"] for r, v in precision.items()}
    r_valid = rule_scores(weights, valid["rule_ids"].to_list())
    c_valid = combine(p_valid, r_valid)
    # a rules-only alert needs a rule that fired: the threshold is never 0 (that would alert every row)
    fired = r_valid[r_valid > 0]
    rules_threshold = max(best_f1_threshold(y_valid, r_valid), float(fired.min()) if fired.size else 1.0)
    thresholds = {"rules": rules_threshold, "combined": best_f1_threshold(y_valid, c_valid)}
    validation["rules"] = ev.metrics(y_valid, r_valid, thresholds["rules"], groups=groups)
    validation["combined"] = ev.metrics(y_valid, c_valid, thresholds["combined"], groups=groups)
    return {"version": pack.version, "digests": pack.digests(), "precision": precision,
            "measured_on": ["train", "validation"], "thresholds": thresholds}  # fmt: skip


def _libraries() -> dict[str, str]:
    names = ("xgboost-cpu", "scikit-learn", "numpy", "polars", "duckdb", "pyarrow")
    found = {}
    for n in names:
        try:
            found[n] = package_version(n)
        except PackageNotFoundError:  # a missing distribution is recorded as unknown
            found[n] = "unknown"
    return {"finwatch": __version__, **found}


def _model_card(name: str, meta: dict[str, Any], scorer: Scorer) -> str:
    data = meta["training_data"]
    v = meta["metrics"]["validation"]["model"]
    parts = data["split"]["parts"]
    lines = [
        f"# Model card: {name} version {{version}}",
        "",
        "## Intended use",
        f"Ranks {meta['level']}s by how strongly their activity resembles money-laundering and human-trafficking",
        "typologies, so that analysts review the highest-ranked first. A score is a lead for human review, never a",
        "finding: every alert must be checked against its evidence before any report is filed.",
        "",
        "## Training data",
        f"- data manifest sha256: `{data['data_manifest_sha256']}` (store batches: {', '.join(data['store_batches'])})",
        f"- rows: {data['rows']:,}, positive: {data['positive']:,}; as of {data['as_of']}",
        f"- split: {data['split']['rule']}, fractions {data['split']['fractions']}",
    ]
    for part in PARTS:
        p = parts[part]
        lines.append(f"  - {part}: {p['first']} … {p['last']} ({p['units']} units, {p['rows']:,} rows, "
                     f"{data['parts'][part]['positive']:,} positive)")  # fmt: skip
    lines += [
        "",
        "## Model",
        *scorer.describe(),
        f"- feature set {meta['feature_set']['name']} v{meta['feature_set']['version']}: "
        f"{len(meta['features'])} features",
        f"- config sha256 `{meta['config_sha256']}`; libraries: "
        + ", ".join(f"{k} {val}" for k, val in meta["libraries"].items()),
        "",
        "## Validation metrics",
        f"- PR-AUC {v['pr_auc']:.4f}, ROC-AUC {_fmt(v['roc_auc'])}, F1 {v['f1']:.4f} "
        f"(precision {v['precision']:.4f}, recall {v['recall']:.4f}) at the threshold",
    ]
    for budget, m in v["at_budget"].items():
        lines.append(f"- alert budget {budget}: precision {m['precision']:.4f}, recall {m['recall']:.4f}")
    typical = meta["typical_positive"]
    lines += ["", "## Features", "",
              f"Each sentence describes the typical positive training row: the feature's median over the "
              f"{data['parts']['train']['positive']:,} positive rows of the train part (booleans: what most of them "
              f"show).", ""]  # fmt: skip
    lines += [f"- `{f['name']}`: {_typical(f['name'], typical.get(f['name']), f['type'] == 'Boolean')}"
              for f in meta["features"]]  # fmt: skip
    lines += [
        "",
        "## Limitations",
        "- Trained on the labelled data above; typologies absent from it are not learned. Labels from synthetic worlds",
        "  or public datasets differ from real case outcomes.",
        "- Test-part performance is measured with `finwatch evaluate`, not here; the test part was not used.",
        "- Scores drift when customer behaviour or data sources change: compare versions on fresh labelled data",
        "  (`finwatch models compare`) before promoting.",
        "",
    ]
    return "\n".join(lines)


def _typical(feature: str, value: float | None, boolean: bool) -> str:
    """The reason sentence of ``feature`` at its typical positive value (a boolean: yes when most have it)."""
    return render(feature, None if value is None else (value >= 0.5 if boolean else value), boolean)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _check_split(split: str) -> None:
    """Refuse an unknown part before any feature is computed."""
    if split not in (*PARTS, "all"):
        raise ConfigError(f"--split {split!r}: choose {', '.join(PARTS)} or all")


def _load_for(registry: Registry, ref: str, level: str | None) -> LoadedModel:
    loaded = registry.load(ref)
    if level is not None and loaded.metadata["level"] != level:
        raise ConfigError(f"{loaded.ref} is a {loaded.metadata['level']}-level model; --level {level} does not match")
    return loaded


def _eval_dataset(
    store: Store,
    loaded: LoadedModel,
    config: FeatureConfig,
    as_of: dt.datetime | None,
    *others: LoadedModel,
    progress: Progress | None = None,
) -> Dataset:
    """The rows to score with ``loaded``'s split settings, with the inputs of every model given."""
    settings = loaded.metadata.get("train") or loaded.metadata["options"]  # "options": versions before [train]
    inputs = tuple(dict.fromkeys(f for m in (loaded, *others) for f in m.scorer.feature_names_))
    return _dataset(store, Level(loaded.metadata["level"]), settings, config, as_of, inputs, progress)


def evaluate_model(
    store: Store,
    ref: str,
    registry: Registry,
    config: FeatureConfig,
    *,
    split: str = "test",
    level: Level | None = None,
    as_of: dt.datetime | None = None,
    plots: Path | None = None,
    examples: int = 5,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Metrics of a registered model (and, at account level, rules-only and combined) on a part of a store."""
    _check_split(split)
    loaded = _load_for(registry, ref, level)
    data = _eval_dataset(store, loaded, config, as_of, progress=progress)
    rows = data.rows(split)
    if rows.is_empty():
        raise FinwatchError(f"the {split} part of {store.root} has no rows")
    pack = load_rules(config)
    y = _labels(rows)
    groups = _groups(rows, data.level)
    typologies = _typologies(rows)
    thresholds = {"model": loaded.scorer.threshold_}
    if loaded.metadata.get("rules"):
        thresholds |= loaded.metadata["rules"]["thresholds"]
    all_scores = scores(loaded, rows, pack)
    measured = {k: ev.metrics(y, s, thresholds[k], typologies=typologies, groups=groups) for k, s in all_scores.items()}
    model = measured["model"]
    result: dict[str, Any] = {
        "model": loaded.ref,
        "level": data.level,
        "split": split,
        "f1": model["f1"],
        "pr_auc": model["pr_auc"],
        "roc_auc": model["roc_auc"],
        "threshold": model["threshold"],
        "n_test": model["n"],
        "n_test_positive": model["n_positive"],
        "data_manifest_sha256": data.manifest_sha256,
        "same_data_as_training": data.manifest_sha256 == loaded.metadata["training_data"]["data_manifest_sha256"],
        "split_detail": data.split.to_json(),
        "scorers": measured,
        "rules_version": data.rules_version,
        "examples": _examples(loaded, rows, all_scores["model"], examples, pack),
    }
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        ev.plot_pr_curves({k: (y, s) for k, s in all_scores.items()}, plots / "pr_curve.png",
                          title=f"{loaded.ref} on {split} ({model['n']:,} rows)")  # fmt: skip
        recall = {k: {t: r["recall_at_budget"]["1%"] for t, r in m.get("recall_by_typology", {}).items()}
                  for k, m in measured.items()}  # fmt: skip
        ev.plot_typology_recall(recall, plots / "typology_recall.png", title="recall per typology at a 1% alert budget")
        result["plots"] = ["pr_curve.png", "typology_recall.png"]
    return result


def _examples(
    loaded: LoadedModel, rows: pl.DataFrame, score: np.ndarray, n: int, pack: RulePack
) -> list[dict[str, Any]]:
    """The top-scored rows with their model reasons (what a lead would say)."""
    if n <= 0 or rows.is_empty():
        return []
    top = np.lexsort((np.arange(score.size), -score))[:n]
    picked = rows[top.tolist()]
    booleans = [f["name"] for f in loaded.metadata["features"] if f["type"] == "Boolean"]
    reasons = model_reasons(loaded.scorer, matrix(picked, loaded.scorer.feature_names_), booleans=booleans)
    rules = {r.id: r for r in pack.rules}
    key = "txn_id" if loaded.metadata["level"] == Level.TRANSACTION else "account_id"
    out = []
    for i, row, reason in zip(top.tolist(), picked.iter_rows(named=True), reasons, strict=True):
        fired = [
            {"rule_id": rules[r].id, "typology": rules[r].typology, "severity": rules[r].severity,
             "description": rules[r].description, "citation": rules[r].citation}
            for r in row["rule_ids"] if r in rules
        ]  # fmt: skip
        out.append({"id": row[key], "score": round(float(score[i]), 6), "label": bool(row["label"]),
                    "typologies": row["typologies"], "reasons": merge(rule_reasons(fired), reason)})  # fmt: skip
    return out


def compare_models(
    store: Store,
    ref_a: str,
    ref_b: str,
    registry: Registry,
    config: FeatureConfig,
    *,
    split: str = "test",
    as_of: dt.datetime | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    budget: float = 0.01,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Both models on the same rows, with paired bootstrap intervals for the differences (B − A)."""
    _check_split(split)
    a, b = registry.load(ref_a), registry.load(ref_b)
    if a.metadata["level"] != b.metadata["level"]:
        raise ConfigError(f"{a.ref} and {b.ref} score different levels; compare models of one level")
    data = _eval_dataset(store, a, config, as_of, b, progress=progress)  # the split follows A, the baseline
    rows = data.rows(split)
    if rows.is_empty():
        raise FinwatchError(f"the {split} part of {store.root} has no rows")
    y = _labels(rows)
    result = ev.compare(
        y, scores(a, rows)["model"], scores(b, rows)["model"], a.scorer.threshold_, b.scorer.threshold_,
        groups=_groups(rows, data.level), budget=budget, n_boot=n_boot, seed=seed,
    )  # fmt: skip
    metrics = {name: result.pop(name) for name in ev.COMPARED}
    return {"a": a.ref, "b": b.ref, "split": split, "data_manifest_sha256": data.manifest_sha256, **result,
            "metrics": metrics}  # fmt: skip
