"""Plain-language reasons (``features/reasons.yaml``): one sentence for every feature a model can use."""

from __future__ import annotations

import datetime as dt
import re
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from finwatch.config import FeatureConfig
from finwatch.features import build_account_features, build_transaction_features, reference_root
from finwatch.schema import Channel
from finwatch.store import Store
from finwatch.testing import make_store, make_transactions

AS_OF = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
KEYS = {"account_id", "as_of", "txn_id", "ts", "src_account", "dst_account", "channel"}
CHANNELS = {f"channel_{c.value}" for c in Channel}
REASONS = reference_root() / "reasons.yaml"


def load_reasons() -> dict[str, str]:
    data = yaml.safe_load(REASONS.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def feature_types(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataType]:
    """Every numeric or boolean column of both marts, computed on a tiny store, with its type."""
    rows: list[dict[str, Any]] = [
        {"ts": AS_OF - 30 * H, "src": None, "dst": "A", "amount": "9500", "channel": "cash"},
        {"ts": AS_OF - 20 * H, "src": "A", "dst": "B", "amount": "9000"},
        {"ts": AS_OF - 10 * H, "src": "B", "dst": "A", "amount": "8500"},
        {"ts": AS_OF - 5 * H, "src": "A", "dst": "M", "amount": "40", "channel": "card"},
    ]
    store = tmp_path_factory.mktemp("reasons") / "store"
    make_store(store, make_transactions(rows))
    accounts = build_account_features(Store(store), AS_OF, FeatureConfig()).accounts
    transactions = build_transaction_features(Store(store), AS_OF, FeatureConfig()).transactions
    assert transactions is not None
    types: dict[str, pl.DataType] = {}
    for frame in (accounts, transactions):
        for name, dtype in frame.schema.items():
            if name not in KEYS and (dtype.is_numeric() or dtype == pl.Boolean):
                types[name] = dtype
    types.update(dict.fromkeys(CHANNELS, pl.Boolean()))
    return types


def test_reasons_are_strings_and_each_feature_appears_once() -> None:
    reasons = load_reasons()
    assert all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in reasons.items())
    named = re.findall(r"^([A-Za-z0-9_]+):", REASONS.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert len(named) == len(set(named)), "a feature has two sentences (YAML keeps only the last)"


def test_every_feature_has_a_reason(feature_types: dict[str, pl.DataType]) -> None:
    missing = sorted(set(feature_types) - set(load_reasons()))
    assert not missing, f"features without a sentence in reasons.yaml: {missing}"


def test_no_reason_names_an_unknown_feature(feature_types: dict[str, pl.DataType]) -> None:
    unknown = sorted(set(load_reasons()) - set(feature_types))
    assert not unknown, f"reasons.yaml names features no mart has: {unknown}"


def test_every_feature_of_every_feature_set_has_a_reason() -> None:
    reasons = load_reasons()
    sets = sorted((reference_root() / "feature_sets").glob("*.yaml"))
    assert sets
    for path in sets:
        features = yaml.safe_load(path.read_text(encoding="utf-8"))["features"]
        missing = [f for f in features if f not in reasons]
        assert not missing, f"{path.name}: features without a sentence: {missing}"


def test_each_reason_quotes_only_the_value() -> None:
    for name, template in load_reasons().items():
        fields = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
        assert fields == {"value"}, f"{name}: {template!r} must use {{value}} and nothing else"


@pytest.mark.parametrize("value", [0, 7, 1234.5678, 0.25, -0.1, Decimal("3")])
def test_each_reason_formats_a_number(value: Any) -> None:
    for name, template in load_reasons().items():
        text = template.format(value=value)
        assert text, name
        assert "{" not in text, name


def test_boolean_reasons_format_yes_and_no(feature_types: dict[str, pl.DataType]) -> None:
    reasons = load_reasons()
    booleans = [name for name, dtype in feature_types.items() if dtype == pl.Boolean]
    assert {"closes_cycle", "is_business", *CHANNELS} <= set(booleans)
    for name in booleans:
        said_yes, said_no = (reasons[name].format(value=answer) for answer in ("yes", "no"))
        assert said_yes.replace("yes", "no") == said_no, f"{name}: the answer must be quoted as it is"
        assert said_yes != said_no, name


def test_numbers_read_as_an_analyst_expects() -> None:
    reasons = load_reasons()
    assert (
        reasons["count_in_24h"].format(value=1234)
        == "1,234 incoming transactions in the 24 hours up to the scoring time"
    )
    assert reasons["share_night_30d"].format(value=0.5).startswith("50% of ")
    assert reasons["sum_in_30d"].format(value=98765.4).startswith("98,765.40 in base currency ")
    assert reasons["closes_cycle"].format(value="yes").endswith(": yes")


def test_sentences_come_from_the_catalogue_given(tmp_path: Path) -> None:
    from finwatch.explain import reason_templates, render

    (tmp_path / "reasons.yaml").write_text('count_in_24h: "{value:,.0f} Eingänge in 24 Stunden"\n', encoding="utf-8")
    templates = reason_templates(tmp_path)
    assert templates == {"count_in_24h": "{value:,.0f} Eingänge in 24 Stunden"}
    assert render("count_in_24h", 1234.0, templates=templates) == "1,234 Eingänge in 24 Stunden"
    assert render("src_profile_count_in_24h", 3.0, templates=templates).endswith(": 3 Eingänge in 24 Stunden")
    assert render("count_out_24h", 2.0, templates=templates) == "count_out_24h = 2.0"  # not in this catalogue
    assert reason_templates() == load_reasons()  # the default: the shipped features/reasons.yaml
    assert render("count_in_24h", 1234.0) == "1,234 incoming transactions in the 24 hours up to the scoring time"


def test_model_reasons_use_the_templates_given(tmp_path: Path) -> None:
    import numpy as np

    from finwatch.explain import model_reasons
    from finwatch.model import XGBScorer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] > 0.5).astype(int)
    model = XGBScorer(n_estimators=20).fit(X, y, feature_names=["count_in_24h", "sum_in_24h"])
    top = int(np.argmax(model.predict_proba(X)[:, 1]))
    templates = {"count_in_24h": "custom sentence {value:.0f}"}
    reasons = model_reasons(model, X[top : top + 1], top=1, templates=templates)[0]
    assert reasons[0]["feature"] == "count_in_24h"
    assert reasons[0]["text"] == f"custom sentence {X[top, 0]:.0f}"
