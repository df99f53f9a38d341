"""Models: temporal splits, labelled datasets, the XGBoost scorer, the registry, reasons, and the CLI forms."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import f1_score, roc_auc_score

from finwatch.config import FeatureConfig
from finwatch.dataset import as_of_times, build_dataset, end_of_data, temporal_cuts
from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.explain import merge, model_reasons, render, rule_reasons
from finwatch.model import XGBScorer, best_f1_threshold, budget_threshold
from finwatch.registry import Registry, RegistryError
from finwatch.store import Store
from finwatch.testing import make_labels, make_store, make_transactions

SRC = Path(__file__).resolve().parents[1] / "src" / "finwatch"


# --- temporal split ------------------------------------------------------------------------------------------------
def test_thirty_equal_days_split_18_6_6() -> None:
    assert temporal_cuts([100] * 30) == (18, 24)


def _brute_force(counts: list[int], fractions: tuple[float, float, float]) -> float:
    total = sum(counts)
    best = float("inf")
    for i, j in itertools.combinations(range(1, len(counts)), 2):
        shares = (sum(counts[:i]) / total, sum(counts[i:j]) / total, sum(counts[j:]) / total)
        best = min(best, max(abs(s - f) / f for s, f in zip(shares, fractions, strict=True)))
    return best


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 1000), min_size=3, max_size=25))
def test_cuts_minimise_the_largest_relative_deviation(counts: list[int]) -> None:
    i, j = temporal_cuts(counts)
    assert 0 < i < j < len(counts)  # three non-empty parts, in time order
    total = sum(counts)
    shares = (sum(counts[:i]) / total, sum(counts[i:j]) / total, sum(counts[j:]) / total)
    achieved = max(abs(s - f) / f for s, f in zip(shares, (0.6, 0.2, 0.2), strict=True))
    assert achieved == pytest.approx(_brute_force(counts, (0.6, 0.2, 0.2)))


def test_a_heavy_last_day_moves_the_cuts() -> None:
    # the busy last day alone is 40 % of the rows: the test part is that day only
    _i, j = temporal_cuts([10] * 9 + [60])
    assert j == 9


@pytest.mark.parametrize(("counts", "fractions"), [([5, 5], (0.6, 0.2, 0.2)), ([5] * 5, (0.5, 0.5, 0.1))])
def test_impossible_splits_are_refused(counts: list[int], fractions: tuple[float, float, float]) -> None:
    with pytest.raises(FinwatchError):
        temporal_cuts(counts, fractions)


def test_as_of_times_step_back_from_the_midnight_after_the_data() -> None:
    first = dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)
    last = dt.datetime(2026, 1, 10, 23, 59, 59, tzinfo=dt.UTC)
    times = as_of_times(first, last, dt.timedelta(days=3))
    assert times[-1] == dt.datetime(2026, 1, 11, tzinfo=dt.UTC)
    # at least one step of data before each: Jan 2 would look back to Dec 30, before the first transaction
    assert times == [dt.datetime(2026, 1, d, tzinfo=dt.UTC) for d in (5, 8, 11)]


# --- labelled datasets ---------------------------------------------------------------------------------------------
def _day(d: int, hour: int = 12) -> str:
    return f"2026-01-{d:02d}T{hour:02d}:00:00Z"


@pytest.fixture(scope="module")
def labelled_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten days of background traffic; M receives a labelled transaction on day 6; Z is labelled only as an account."""
    rows = []
    for d in range(1, 11):
        for k in range(6):
            rows.append({"txn_id": f"b{d}-{k}", "ts": _day(d, 8 + k), "src": f"P{k}", "dst": f"Q{(k + d) % 6}",
                         "amount": "120.00"})  # fmt: skip
    rows.append({"txn_id": "bad", "ts": _day(6, 15), "src": "X", "dst": "M", "amount": "9500.00"})
    rows.append({"txn_id": "z1", "ts": _day(2, 15), "src": "Z", "dst": "Q1", "amount": "50.00"})
    labels = make_labels([
        {"subject_id": "bad", "typology": "fan_in"},
        {"subject_kind": "account", "subject_id": "Z", "typology": "shell_company"},
        {"subject_kind": "account", "subject_id": "M", "typology": "fan_in"},
    ])  # fmt: skip
    root = tmp_path_factory.mktemp("labelled") / "store"
    make_store(root, make_transactions(rows), labels=labels)
    return root


def test_transaction_rows_carry_their_label_and_day(labelled_store: Path) -> None:
    data = build_dataset(Store(labelled_store), "transaction", FeatureConfig())
    assert data.frame.height == 62
    positive = data.frame.filter(pl.col("label"))
    assert positive["txn_id"].to_list() == ["bad"]
    assert positive["typologies"].to_list() == [["fan_in"]]
    assert set(data.frame["part"]) == {"train", "validation", "test"}
    assert data.split.units[0] == "2026-01-01"
    # the parts follow time: every train day is before every validation day, which is before every test day
    last_train = data.rows("train")["ts"].max()
    assert last_train < data.rows("validation")["ts"].min()  # type: ignore[operator]
    assert data.rows("validation")["ts"].max() < data.rows("test")["ts"].min()  # type: ignore[operator]


def test_account_label_follows_the_window_of_its_labelled_transaction(labelled_store: Path) -> None:
    data = build_dataset(Store(labelled_store), "account", FeatureConfig(), step=dt.timedelta(days=1))
    m = data.frame.filter(pl.col("account_id") == "M").select("as_of", "label").sort("as_of")
    # M appears once it transacts (day 6) and is positive from the as-of time after its labelled transaction
    assert m["label"].to_list() == [True] * m.height
    assert m["as_of"].min() == dt.datetime(2026, 1, 7, tzinfo=dt.UTC)
    # Z: labelled only as an account (no labelled transactions of its own), positive whenever it is scored
    z = data.frame.filter(pl.col("account_id") == "Z")
    assert z.height > 0
    assert z["label"].all()
    assert data.frame.filter(~pl.col("account_id").is_in(["M", "Z", "X"]))["label"].sum() == 0


def test_a_store_without_labels_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "store"
    make_store(root, make_transactions([{"ts": _day(d), "src": "A", "dst": "B", "amount": "1"} for d in range(1, 6)]))
    with pytest.raises(FinwatchError, match="no labels"):
        build_dataset(Store(root), "transaction", FeatureConfig())


# --- the scorer ----------------------------------------------------------------------------------------------------
def _toy(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    logit = 2.5 * X[:, 0] - 1.5 * X[:, 1] + X[:, 2] * X[:, 3] - 4
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    return X, y


def test_follows_the_scikit_learn_contract() -> None:
    X, y = _toy()
    model = XGBScorer(n_estimators=60, random_state=3)
    assert clone(model).get_params() == model.get_params()
    assert model.fit(X, y) is model
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.allclose(proba.sum(axis=1), 1)
    assert set(np.unique(model.predict(X))) <= {False, True}
    assert list(model.classes_) == [False, True]
    assert model.n_features_in_ == 5


def test_same_data_and_seed_give_identical_model_bytes() -> None:
    X, y = _toy()
    a = XGBScorer(n_estimators=80, random_state=5).fit(X[:2400], y[:2400], eval_set=(X[2400:], y[2400:]))
    b = XGBScorer(n_estimators=80, random_state=5).fit(X[:2400], y[:2400], eval_set=(X[2400:], y[2400:]))
    c = XGBScorer(n_estimators=80, random_state=6).fit(X[:2400], y[:2400], eval_set=(X[2400:], y[2400:]))
    assert a.model_bytes() == b.model_bytes()
    assert a.model_bytes() != c.model_bytes()  # subsampling follows the seed


def test_threshold_is_the_best_f1_on_validation_and_calibration_keeps_the_ranking() -> None:
    X, y = _toy(4000, seed=1)
    model = XGBScorer(n_estimators=80).fit(X[:3000], y[:3000], eval_set=(X[3000:], y[3000:]))
    p = model.predict_proba(X[3000:])[:, 1]
    assert model.threshold_ == best_f1_threshold(y[3000:], p)
    best = f1_score(y[3000:], p >= model.threshold_)
    for t in np.unique(p)[::7]:
        assert f1_score(y[3000:], p >= t) <= best + 1e-12
    margin = model.decision_function(X[3000:])
    assert roc_auc_score(y[3000:], p) == pytest.approx(roc_auc_score(y[3000:], margin))


def test_an_alert_budget_sets_the_threshold_at_that_share_of_validation() -> None:
    X, y = _toy(4000, seed=2)
    model = XGBScorer(n_estimators=40, alert_budget=0.02).fit(X[:3000], y[:3000], eval_set=(X[3000:], y[3000:]))
    p = model.predict_proba(X[3000:])[:, 1]
    assert (p >= model.threshold_).sum() == 20


def test_best_f1_threshold_boundaries() -> None:
    y = np.array([True, True, False, False])
    assert best_f1_threshold(y, np.array([0.9, 0.8, 0.3, 0.1])) == 0.8
    # equal scores are alerted together: the threshold cannot split them
    assert best_f1_threshold(np.array([True, False, True]), np.array([0.5, 0.5, 0.2])) in (0.5, 0.2)
    assert budget_threshold(np.array([0.1, 0.2, 0.3, 0.4]), 0.5) == 0.3
    with pytest.raises(FinwatchError):
        budget_threshold(np.array([0.1]), 1.5)


def test_one_class_is_refused_with_a_clear_error() -> None:
    X, _ = _toy(100)
    with pytest.raises(FinwatchError, match="both classes"):
        XGBScorer().fit(X, np.zeros(100, dtype=bool))


def test_state_round_trip_predicts_the_same() -> None:
    X, y = _toy()
    model = XGBScorer(n_estimators=50).fit(X, y, feature_names=[f"x{i}" for i in range(5)])
    again = XGBScorer.from_state(model.model_bytes(), json.loads(json.dumps(model.state())))
    assert np.array_equal(again.predict_proba(X), model.predict_proba(X))
    assert again.threshold_ == model.threshold_


def test_contributions_add_up_to_the_margin_and_become_reasons() -> None:
    X, y = _toy()
    names = ["count_in_24h", "sum_in_24h", "closes_cycle", "amount_base", "hour_utc"]
    model = XGBScorer(n_estimators=50).fit(X, y, feature_names=names)
    contrib = model.contributions(X[:10])
    assert np.allclose(contrib.sum(axis=1), model.decision_function(X[:10]), atol=1e-4)
    top = int(np.argmax(model.predict_proba(X)[:, 1]))
    reasons = model_reasons(model, X[top : top + 1], booleans=["closes_cycle"], top=3)[0]
    assert reasons
    assert all(r["contribution"] > 0 for r in reasons)
    assert [r["contribution"] for r in reasons] == sorted((r["contribution"] for r in reasons), reverse=True)
    assert "count_in_24h" not in reasons[0]["text"] or reasons[0]["feature"] != "count_in_24h"  # sentences, not names


def test_reason_sentences_read_as_plain_language() -> None:
    assert render("count_in_24h", 14.0).startswith("14 ")
    assert "yes" in render("closes_cycle", True, boolean=True)
    assert render("not_a_feature", 2.0) == "not_a_feature = 2.0"
    hits = [
        {"rule_id": "FW-B", "typology": "fan_in", "severity": "low", "description": "Many small payers.",
         "citation": "FATF", "evidence_txn_ids": ["t2"]},
        {"rule_id": "FW-A", "typology": "structuring", "severity": "high", "description": "Deposits under 10,000.",
         "citation": "31 CFR 1010.314", "evidence_txn_ids": ["t1"]},
    ]  # fmt: skip
    reasons = rule_reasons(hits)
    assert [r["rule_id"] for r in reasons] == ["FW-A", "FW-B"]  # most severe first
    assert reasons[0]["citation"] == "31 CFR 1010.314"
    assert reasons[0]["evidence_txn_ids"] == ["t1"]


def test_nothing_is_pickled() -> None:
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for word in ("import pickle", "import joblib", "import cloudpickle", "from pickle", "from joblib"):
            assert word not in text, f"{path} uses {word}"


# --- the registry --------------------------------------------------------------------------------------------------
@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "models")


def _fitted(seed: int = 0) -> XGBScorer:
    X, y = _toy()
    return XGBScorer(n_estimators=30, random_state=seed).fit(X, y)


def _register(registry: Registry, seed: int = 0) -> int:
    meta = {"level": "transaction", "training_data": {"rows": 3000}, "threshold": 0.5}
    return registry.register("toy", _fitted(seed), meta, "# card {version}\n").version


def test_versions_count_up_and_references_resolve(registry: Registry) -> None:
    assert [_register(registry), _register(registry, 1)] == [1, 2]
    folder = registry.root / "toy" / "2"
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", "metadata.json", "model.ubj", "version.json"]
    assert (folder / "MODEL_CARD.md").read_text() == "# card 2\n"
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["files"]["model.ubj"] == hashlib.sha256((folder / "model.ubj").read_bytes()).hexdigest()
    assert registry.resolve("toy@latest") == ("toy", 2)
    assert registry.resolve("toy@v1") == ("toy", 1)
    assert registry.resolve("toy") == ("toy", 2)  # no champion yet: the latest
    registry.promote("toy@1", "champion")
    assert registry.resolve("toy") == ("toy", 1)
    assert registry.resolve("toy@champion") == ("toy", 1)
    assert json.loads((registry.root / "toy" / "aliases.json").read_text()) == {"champion": 1}


@pytest.mark.parametrize(
    ("ref", "message"),
    [("toy@9", "no version"), ("other", "no model named"), ("toy@challenger", "no challenger"), ("../x", "not a")],
)
def test_unknown_references_say_what_exists(registry: Registry, ref: str, message: str) -> None:
    _register(registry)
    with pytest.raises(RegistryError, match=message):
        registry.load(ref)


@pytest.mark.parametrize("file", ["model.ubj", "MODEL_CARD.md"])
def test_a_tampered_file_is_refused(registry: Registry, file: str) -> None:
    _register(registry)
    path = registry.root / "toy" / "1" / file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match="sha256"):
        registry.load("toy@1")
    with pytest.raises(RegistryError):
        registry.promote("toy@1", "champion")


def test_an_unfinished_version_folder_is_invisible(registry: Registry) -> None:
    _register(registry)
    (registry.root / "toy" / ".staging-2-123").mkdir()
    (registry.root / "toy" / "2").mkdir()  # no metadata: a killed run's leftovers
    assert registry.versions("toy") == [1]
    assert _register(registry) == 2
    assert registry.load("toy@2").version == 2


def _edit_metadata(registry: Registry, ref: str, change: Any) -> Path:
    name, version = registry.resolve(ref)
    path = registry.root / name / str(version) / "metadata.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def test_editing_what_scoring_uses_in_the_metadata_is_refused(registry: Registry) -> None:
    """Calibration, threshold and rule precisions live in metadata.json, which its own checksums do not cover."""
    _register(registry)
    for change in (lambda m: m["scorer"]["calibration"].update(a=2.0), lambda m: m["scorer"].update(threshold=0.01),
                   lambda m: m.update(rules={"version": "x", "precision": {"FW-X": 1.0}})):  # fmt: skip
        original = (registry.root / "toy" / "1" / "metadata.json").read_bytes()
        path = _edit_metadata(registry, "toy@1", change)
        with pytest.raises(RegistryError, match=re.escape(f"{path}: changed after registration")):
            registry.load("toy@1")
        with pytest.raises(RegistryError):
            registry.promote("toy@1", "champion")
        path.write_bytes(original)
    reformatted = _edit_metadata(registry, "toy@1", lambda m: None)  # the same content, laid out differently
    reformatted.write_text(json.dumps(json.loads(reformatted.read_text()), indent=4))
    assert registry.load("toy@1").version == 1


def test_replacing_the_model_and_its_checksum_is_refused(registry: Registry, tmp_path: Path) -> None:
    _register(registry)
    other = Registry(tmp_path / "other")
    meta = {"level": "transaction", "training_data": {"rows": 3000}, "threshold": 0.5}
    other.register("toy", _fitted(1), meta, "# card {version}\n")
    replacement = (other.root / "toy" / "1" / "model.ubj").read_bytes()
    folder = registry.root / "toy" / "1"
    (folder / "model.ubj").write_bytes(replacement)
    _edit_metadata(
        registry, "toy@1", lambda m: m["files"].update({"model.ubj": hashlib.sha256(replacement).hexdigest()})
    )
    with pytest.raises(RegistryError, match="changed after registration") as caught:
        registry.load("toy@1")
    assert f"{folder / 'metadata.json'}, {folder / 'model.ubj'}: changed" in str(caught.value)


def test_a_missing_or_forged_version_digest_is_refused(registry: Registry) -> None:
    _register(registry)
    path = registry.root / "toy" / "1" / "version.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "model_digest": "0" * 64}))
    with pytest.raises(RegistryError, match=re.escape(f"{path}: the digest does not match the parts it lists")):
        registry.load("toy@1")
    path.unlink()
    with pytest.raises(RegistryError, match=re.escape(f"{path}: missing — refusing to load toy@1")):
        registry.load("toy@1")
    (registry.root / "toy" / "2").mkdir()  # a version folder copied under another number
    for file in ("model.ubj", "metadata.json", "MODEL_CARD.md"):
        (registry.root / "toy" / "2" / file).write_bytes((registry.root / "toy" / "1" / file).read_bytes())
    with pytest.raises(RegistryError, match="describes toy@1, not toy@2"):
        registry.load("toy@2")


def test_a_signed_registry_refuses_what_its_key_did_not_sign(tmp_path: Path) -> None:
    from finwatch.digest import key_id
    from finwatch.registry import model_digest, model_parts

    key, other_key = b"k" * 32, b"o" * 32
    signed = Registry(tmp_path / "models", key=key)
    assert _register(signed) == 1
    assert signed.load("toy@1").signed
    version_json = signed.root / "toy" / "1" / "version.json"
    assert json.loads(version_json.read_text())["signature"]["key_id"] == key_id(key)
    with pytest.raises(RegistryError, match=f"signed with key {key_id(key)}, not with the configured key"):
        Registry(signed.root, key=other_key).load("toy@1")
    # someone without the key edits the metadata and recomputes the digest: only the signature tells
    meta_path = _edit_metadata(signed, "toy@1", lambda m: m["scorer"].update(threshold=0.01))
    folder = meta_path.parent
    parts = model_parts((folder / "model.ubj").read_bytes(), json.loads(meta_path.read_text()),
                        (folder / "MODEL_CARD.md").read_bytes())  # fmt: skip
    record = json.loads(version_json.read_text())
    version_json.write_text(json.dumps({**record, "parts": parts, "model_digest": model_digest(parts)}))
    assert Registry(signed.root, key_from_env=False).load("toy@1").metadata["scorer"]["threshold"] == 0.01
    with pytest.raises(RegistryError, match="changed after signing — refusing to load toy@1"):
        signed.load("toy@1")


def test_a_version_registered_before_digests_loads_and_can_be_sealed(registry: Registry) -> None:
    from finwatch.integrity import verify_model

    _register(registry)
    (registry.root / "toy" / "1" / "version.json").unlink()
    _edit_metadata(registry, "toy@1", lambda m: m.pop("registry_format"))
    assert len(registry.load("toy@1").digest) == 64
    report = verify_model(registry, "toy@1")
    assert not report.ok
    assert report.problems == [f"version digest: {registry.root / 'toy' / '1' / 'version.json'}: none (registered "
                               "before version digests; Registry.seal adds one)"]  # fmt: skip
    key = b"k" * 32
    with pytest.raises(RegistryError, match="not signed"):
        Registry(registry.root, key=key).load("toy@1")
    registry.seal("toy@1")
    assert verify_model(registry, "toy@1").ok
    assert Registry(registry.root, key=key).seal("toy@1").signed
    assert verify_model(registry, "toy@1", key=key).ok
    _edit_metadata(registry, "toy@1", lambda m: m["scorer"].update(threshold=0.01))
    with pytest.raises(RegistryError, match="changed after registration"):
        registry.seal("toy@1")  # a changed version is never sealed over


def test_verify_model_reports_every_check(registry: Registry) -> None:
    from finwatch.integrity import verify_model

    _register(registry)
    report = verify_model(registry, "toy@1")
    assert report.ok
    assert [c.name for c in report.checks] == ["metadata", "file checksums", "version digest", "signature", "scorer"]
    assert report.subject == f"toy@1 (digest {registry.load('toy@1').digest})"
    assert report.to_json()["ok"] is True
    card = registry.root / "toy" / "1" / "MODEL_CARD.md"
    card.write_text("# a better card\n")
    report = verify_model(registry, "toy@1")
    assert report.subject == "toy@1"
    assert report.lines()[-1] == "toy@1: 2 check(s) failed"
    assert [p.split(":")[0] for p in report.problems] == ["file checksums", "version digest"]
    assert "scorer" not in [c.name for c in report.checks]  # files that failed a check are not loaded


# --- the command forms ---------------------------------------------------------------------------------------------
def finwatch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "finwatch", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def aml_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small AMLworld-layout world, ingested with the documented command form."""
    root = tmp_path_factory.mktemp("aml")
    world = root / "world"
    done = finwatch("synth", "--out", str(world), "--accounts", "1500", "--days", "30", "--seed", "21",
                    "--exports", "amlworld")  # fmt: skip
    assert done.returncode == 0, done.stderr
    store = root / "store"
    csv = world / "amlworld" / "transactions.csv"
    done = finwatch("ingest", str(csv), "--store", str(store), "--format", "amlworld")
    assert done.returncode == 0, done.stderr
    done = finwatch("ingest", str(world / "amlworld" / "patterns.txt"), "--store", str(store), "--format", "amlworld")
    assert done.returncode == 0, done.stderr
    return store


@pytest.mark.parametrize("level", [pytest.param("transaction", marks=pytest.mark.slow), "account"])
def test_train_and_evaluate_command_forms(aml_store: Path, tmp_path: Path, level: str) -> None:
    models = tmp_path / "models"
    train = ["train", "--store", str(aml_store), "--level", level, "--split", "temporal", "--name", "aml"]
    fast = ["--rounds", "60"] + (["--step-hours", "168"] if level == "account" else [])  # fewer rounds, as-of times
    done = finwatch(*train, *fast, cwd=tmp_path)  # the registry defaults to ./models
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "1"  # prints the new version
    assert (models / "aml" / "1" / "model.ubj").is_file()
    out = tmp_path / "eval.json"
    evaluate = ["evaluate", "--store", str(aml_store), "--model", "aml@latest", "--split", "test", "--json", str(out)]
    if level == "account":
        evaluate += ["--level", "account"]
    done = finwatch(*evaluate, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    for key in ("f1", "pr_auc", "roc_auc", "threshold", "n_test", "n_test_positive"):
        assert key in result
    assert result["n_test_positive"] > 0
    assert 0 < result["pr_auc"] <= 1
    assert result["threshold"] == json.loads((models / "aml" / "1" / "metadata.json").read_text())["threshold"]
    assert result["same_data_as_training"] is True
    if level == "account":
        assert set(result["scorers"]) == {"model", "rules", "combined"}
    assert result["examples"]
    assert result["examples"][0]["reasons"]
    # retraining on the same data with the same seed gives the same model bytes
    assert finwatch(*train, *fast, cwd=tmp_path).returncode == 0
    assert (models / "aml" / "1" / "model.ubj").read_bytes() == (models / "aml" / "2" / "model.ubj").read_bytes()
    # the registry commands
    listed = finwatch("models", "list", cwd=tmp_path)
    assert listed.returncode == 0
    assert "aml" in listed.stdout
    assert finwatch("models", "promote", "aml@1", "champion", cwd=tmp_path).returncode == 0
    shown = finwatch("models", "show", "aml@champion", cwd=tmp_path)
    assert shown.returncode == 0
    assert "Model card: aml version 1" in shown.stdout
    compared = tmp_path / "compare.json"
    done = finwatch("models", "compare", "aml@1", "aml@2", "--store", str(aml_store), "--n-boot", "50",
                    "--json", str(compared), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(compared.read_text())["metrics"]["pr_auc"]["diff"] == 0  # identical models


@pytest.mark.slow
def test_evaluate_writes_plots_and_refuses_a_wrong_level(aml_store: Path, tmp_path: Path) -> None:
    models = str(tmp_path / "models")
    assert (
        finwatch("train", "--store", str(aml_store), "--name", "t", "--models", models, "--rounds", "40").returncode
        == 0
    )
    plots = tmp_path / "plots"
    done = finwatch("evaluate", "--store", str(aml_store), "--model", "t", "--models", models, "--plots", str(plots))
    assert done.returncode == 0, done.stderr
    assert (plots / "pr_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (plots / "typology_recall.png").is_file()
    done = finwatch("evaluate", "--store", str(aml_store), "--model", "t", "--models", models, "--level", "account")
    assert done.returncode == 2
    assert "transaction-level model" in done.stderr
    assert "Traceback" not in done.stderr
    (tmp_path / "models" / "t" / "1" / "model.ubj").write_bytes(b"tampered")
    done = finwatch("evaluate", "--store", str(aml_store), "--model", "t@1", "--models", models)
    assert done.returncode == 2
    assert "refusing to load" in done.stderr
    assert "Traceback" not in done.stderr


def test_party_profiles_are_account_features_as_of_the_start_of_the_day(labelled_store: Path) -> None:
    data = build_dataset(
        Store(labelled_store), "transaction", FeatureConfig(), profiles=("count_in_24h", "count_out_30d")
    )
    assert {"src_profile_count_out_30d", "dst_profile_count_in_24h"} <= set(data.features)
    bad = data.frame.filter(pl.col("txn_id") == "bad").row(0, named=True)
    # M's first transaction is this one (day 6, 15:00): as of 00:00 that day M had nothing, so no profile
    assert bad["dst_profile_count_in_24h"] is None
    # P0 pays out every day at 08:00: as of the start of day 6 it has paid on days 1-5 only, not that morning
    p0 = data.frame.filter(pl.col("txn_id") == "b6-0").row(0, named=True)
    assert p0["src_profile_count_out_30d"] == 5
    assert render("src_profile_count_in_24h", 3.0).startswith("the sender, as of the start of that day: ")


def test_rules_come_first_then_model_reasons() -> None:
    rules = rule_reasons([{"rule_id": "FW-A", "typology": "fan_in", "severity": "medium", "description": "Many payers.",
                           "citation": "FATF"}])  # fmt: skip
    model = [{"source": "model", "feature": f"f{i}", "contribution": 1.0 / (i + 1), "text": f"t{i}"} for i in range(6)]
    merged = merge(rules, model, top=4)
    assert [r["source"] for r in merged] == ["rule", "model", "model", "model"]
    assert merged[1]["feature"] == "f0"
    many = rule_reasons([{"rule_id": f"FW-{i}", "typology": "x", "severity": "low", "description": "d", "citation": "c"}
                         for i in range(6)])  # fmt: skip
    assert len(merge(many, model, top=4)) == 6  # every rule that fired is listed, even beyond top


def test_an_unknown_split_is_refused_before_any_work(tmp_path: Path) -> None:
    from finwatch.exceptions import ConfigError
    from finwatch.experiment import compare_models, evaluate_model

    with pytest.raises(ConfigError, match="choose train, validation, test or all"):
        evaluate_model(Store(tmp_path), "nothing", Registry(tmp_path), FeatureConfig(), split="tset")
    with pytest.raises(ConfigError, match="choose train, validation, test or all"):
        compare_models(Store(tmp_path), "a", "b", Registry(tmp_path), FeatureConfig(), split="tset")


class LinearScorer(BaseEstimator):  # type: ignore[misc]
    """A throwaway second model kind: logistic regression on arcsinh-scaled features, saved as JSON (never pickled)."""

    def __init__(self, c: float = 1.0, random_state: int = 0, alert_budget: float | None = None) -> None:
        self.c = c
        self.random_state = random_state
        self.alert_budget = alert_budget

    def fit(self, X: Any, y: Any, *, eval_set: Any = None, feature_names: Any = None) -> LinearScorer:
        from sklearn.linear_model import LogisticRegression

        X = np.arcsinh(np.nan_to_num(np.asarray(X, dtype=np.float64)))
        model = LogisticRegression(C=self.c, random_state=self.random_state, max_iter=500).fit(X, y)
        self.coef_, self.intercept_ = model.coef_[0], float(model.intercept_[0])
        self.feature_names_ = list(feature_names)
        valid = self.predict_proba(eval_set[0])[:, 1]
        self.threshold_ = budget_threshold(valid, self.alert_budget) if self.alert_budget else float(np.median(valid))
        self.threshold_rule_ = "median of validation"
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        margin = np.arcsinh(np.nan_to_num(np.asarray(X, dtype=np.float64))) @ self.coef_ + self.intercept_
        p = 1 / (1 + np.exp(-margin))
        return np.column_stack([1 - p, p])

    def contributions(self, X: Any) -> np.ndarray:
        X = np.arcsinh(np.nan_to_num(np.asarray(X, dtype=np.float64)))
        return np.column_stack([X * self.coef_, np.full(X.shape[0], self.intercept_)])

    def model_bytes(self) -> bytes:
        return json.dumps({"coef": self.coef_.tolist(), "intercept": self.intercept_}).encode()

    def state(self) -> dict[str, Any]:
        return {"params": self.get_params(), "feature_names": self.feature_names_, "threshold": self.threshold_}

    @classmethod
    def from_state(cls, model: bytes, state: dict[str, Any]) -> LinearScorer:
        scorer = cls(**state["params"])
        saved = json.loads(model)
        scorer.coef_, scorer.intercept_ = np.array(saved["coef"]), float(saved["intercept"])
        scorer.feature_names_, scorer.threshold_ = state["feature_names"], float(state["threshold"])
        scorer.threshold_rule_ = "median of validation"
        return scorer

    def describe(self) -> list[str]:
        return [f"- logistic regression, C={self.c}, {len(self.coef_)} coefficients"]


def test_a_second_model_kind_is_one_class_and_one_registration_line(
    scored: tuple[Path, Registry], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finwatch import model as kinds
    from finwatch.config import RunConfig
    from finwatch.experiment import train_model
    from finwatch.leads import score_run

    store, _registry = scored
    monkeypatch.setitem(kinds.KINDS, "linear", LinearScorer)  # the one registration line
    config = RunConfig().updated({"train.level": "account", "train.step_hours": 48, "train.model.kind": "linear",
                                  "train.model.params": {"c": 0.5}, "score.model": "lin@latest"})  # fmt: skip
    registry = Registry(tmp_path / "models")
    trained = train_model(Store(store), "lin", config, registry)
    assert trained.metadata["scorer_kind"] == "linear"
    loaded = registry.load("lin@latest")
    assert isinstance(loaded.scorer, LinearScorer)
    assert loaded.scorer.c == 0.5
    assert "logistic regression" in (loaded.path / "MODEL_CARD.md").read_text()
    run = score_run(Store(store), end_of_data(Store(store)), registry, tmp_path / "run", config)
    assert run.leads.height > 0
    assert run.summary["model"] == "lin@1"
    with pytest.raises(ConfigError, match="'depth' is not a parameter of the linear kind"):
        train_model(Store(store), "lin", config.updated({"train.model.params": {"depth": 3}}), registry)


def test_the_model_card_describes_the_typical_positive_with_its_median_values(scored: tuple[Path, Registry]) -> None:
    """Each feature sentence of the card holds the feature's median over the positive rows of the train part."""
    store, registry = scored
    loaded = registry.load("finwatch@1")
    card = (loaded.path / "MODEL_CARD.md").read_text(encoding="utf-8").splitlines()
    # the training rows again, built independently with the fixture's settings (account level, 48-hour steps)
    data = build_dataset(Store(store), "account", FeatureConfig(), step=dt.timedelta(hours=48))
    positive = data.rows("train").filter(pl.col("label"))
    assert positive.height == loaded.metadata["training_data"]["parts"]["train"]["positive"] > 0
    not_one = 0
    for feature in loaded.metadata["features"]:
        name, boolean = feature["name"], feature["type"] == "Boolean"
        values = positive[name].cast(pl.Float64).to_numpy()
        values = values[~np.isnan(values)]
        median = float(np.median(values)) if values.size else None
        value = median >= 0.5 if boolean and median is not None else median
        assert f"- `{name}`: {render(name, value, boolean)}" in card, name
        not_one += median is not None and not boolean and median != 1.0
    assert not_one > 10  # the sentences are not all filled with 1
    night = positive["share_night_30d"].drop_nulls().to_numpy()
    line = next(line for line in card if line.startswith("- `share_night_30d`"))
    assert f"{np.median(night):.0%} of the account's transactions" in line
