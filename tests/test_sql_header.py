"""SQL headers and the catalogue: header entries, the tables a file reads, and the build order derived from them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from finwatch.exceptions import ConfigError
from finwatch.features._sql import load_catalogue, load_model, load_models, scan, sql_root

#: a column entry names one or more columns: ``a / b``, ``a / _30d`` (shorthand suffix), ``a, b``, ``(also 7d, 30d)``
COLUMN_KEY = re.compile(r"^[a-z][a-z0-9_]*( / _?[a-z0-9_]+|, [a-z][a-z0-9_]*)*( \(also [a-z0-9, ]+\))?$")
PARAMETER_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
LAYERS = ("staging", "features", "marts", "audits")
FAMILIES = {
    "structuring",
    "cycles",
    "largest_transfers",
    "fan_in",
    "fan_out",
    "flow_through",
    "funnel",
    "trafficking",
    "crypto",
    "geography",
}


def write_sql(tmp_path: Path, header: str, body: str = "select 1 as x") -> Path:
    path = tmp_path / "m.sql"
    path.write_text(header + body + "\n", encoding="utf-8")
    return path


def test_a_line_indented_further_continues_the_entry_before_it(tmp_path: Path) -> None:
    path = write_sql(
        tmp_path,
        "-- name: m\n"
        "-- grain: account\n"
        "-- parameters:\n"
        "--   as_of: timestamp,\n"
        "--     required\n"
        "--   limit: 10\n"
        "-- columns:\n"
        "--   share_x_30d: share of volume with high-risk counterparties (held in, or transacting\n"
        "--     from, a high-risk jurisdiction)\n"
        "--   count_y_30d: payments\n",
        "select $as_of as a, $limit as b",
    )
    model = load_model(path)
    assert model.columns == {
        "share_x_30d": "share of volume with high-risk counterparties (held in, or transacting from, a high-risk "
        "jurisdiction)",
        "count_y_30d": "payments",
    }
    assert model.parameters == {"as_of": None, "limit": "10"}


def test_several_continuation_lines_are_joined_in_order(tmp_path: Path) -> None:
    path = write_sql(
        tmp_path,
        "-- name: m\n-- grain: account\n-- columns:\n--   x: one\n--     two: with a colon\n--       three\n",
    )
    assert load_model(path).columns == {"x": "one two: with a colon three"}


def test_a_continuation_line_without_an_entry_before_it_is_refused(tmp_path: Path) -> None:
    path = write_sql(tmp_path, "-- name: m\n-- grain: account\n-- columns:\n--     orphan text\n")
    with pytest.raises(ConfigError, match="continues an entry"):
        load_model(path)


def test_an_entry_after_a_continuation_is_a_new_entry(tmp_path: Path) -> None:
    path = write_sql(tmp_path, "-- name: m\n-- grain: account\n-- columns:\n--   a: x\n--     y\n--   b: z\n")
    assert load_model(path).columns == {"a": "x y", "b": "z"}


@pytest.mark.parametrize("layer", LAYERS)
def test_every_shipped_header_key_names_columns_or_a_parameter(layer: str) -> None:
    models = load_models(sql_root() / layer)
    assert models
    for model in models:
        bad_columns = [k for k in model.columns if not COLUMN_KEY.match(k)]
        bad_parameters = [k for k in model.parameters if not PARAMETER_KEY.match(k)]
        assert not bad_columns, f"{model.path.name}: column keys that are not column names: {bad_columns}"
        assert not bad_parameters, f"{model.path.name}: parameter keys that are not names: {bad_parameters}"
        assert all(model.columns.values()), f"{model.path.name}: a column without a meaning"


def test_wrapped_meanings_of_the_shipped_headers_are_kept_whole() -> None:
    columns = {k: v for m in load_models(sql_root() / "features") for k, v in m.columns.items()}
    assert columns["peel_chain_length_30d"].endswith("to an address with no earlier history)")
    assert "from, a high-risk jurisdiction)" in columns["share_volume_high_risk_1hop_30d"]
    assert "not more than received" in columns["scatter_gather_intermediates_7d"]
    marts = {k: v for m in load_models(sql_root() / "marts") for k, v in m.columns.items()}
    assert "(a relay: scatter-gather, stack, pass-through)" in marts["src_forwards_recent_inflow"]


# --- which tables a body reads ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        pytest.param("select extract(hour from ts at time zone 'UTC') as h from t", {"t"}, id="extract(hour from ts)"),
        pytest.param("with a as (select * from t) select * from a", {"t"}, id="a CTE name is not a table"),
        pytest.param(
            "with recursive a as (select 1 as x union all select x + 1 from a where x < 3), b as (select * from a) "
            "select * from b join u using (x)",
            {"u"},
            id="recursive CTEs",
        ),
        pytest.param(
            "select * from (select x from t) as s join (select y from u) v on true", {"t", "u"}, id="from (select ...)"
        ),
        pytest.param("select * from read_parquet($files)", set(), id="a table function is not a table"),
        pytest.param("select * from a x left join b y using (k), c", {"a", "b", "c"}, id="joins and comma joins"),
        pytest.param(
            "select * from t where exists (select 1 from u where u.k = t.k) and k in (select k from v)",
            {"t", "u", "v"},
            id="subqueries in conditions",
        ),
        pytest.param(
            "select least((select count(*) from t), 3), substring('from x' from 2) -- from y\nfrom u",
            {"t", "u"},
            id="strings, comments and from inside functions",
        ),
        pytest.param("select unnest(accounts) as a from feat_cycles", {"feat_cycles"}, id="unnest in the select list"),
    ],
)
def test_the_tables_a_body_reads(sql: str, reads: set[str]) -> None:
    assert set(scan(sql)[0]) == reads


def test_zero_when_absent_continues_on_indented_lines(tmp_path: Path) -> None:
    path = write_sql(
        tmp_path,
        "-- name: m\n-- grain: account\n-- zero_when_absent: count_a_30d, count_b_30d,\n--   sum_c_30d\n"
        "-- columns:\n--   count_a_30d: a\n",
        "with final as (select 1 as count_a_30d) select * from final",
    )
    assert load_model(path).zero_when_absent == ("count_a_30d", "count_b_30d", "sum_c_30d")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            "with final as (select 1 as x) select * from final",
            "'moves' is not a CTE of this file",
            id="an evidence CTE the file does not define",
        ),
        pytest.param(
            "with moves as (select 1 as x) select x from moves",
            "then `select \\* from final`",
            id="a file with evidence must end with select * from final",
        ),
    ],
)
def test_evidence_must_name_a_cte_of_the_file(tmp_path: Path, body: str, message: str) -> None:
    path = write_sql(tmp_path, "-- name: m\n-- grain: account\n-- evidence:\n--   hops: moves\n", body)
    with pytest.raises(ConfigError, match=message):
        load_model(path)


# --- the catalogue: build order from what each file reads ----------------------------------------------------------
def write_catalogue(root: Path, files: dict[str, str]) -> Path:
    for layer in ("staging", "features", "marts", "audits"):
        (root / layer).mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        stem = Path(name).stem
        (root / name).write_text(f"-- name: {stem}\n-- grain: account\n{body}\n", encoding="utf-8")
    return root


def test_tables_are_built_after_the_tables_they_read_whatever_their_names(tmp_path: Path) -> None:
    root = write_catalogue(tmp_path, {
        "staging/stg.sql": "select * from store_accounts",
        "features/a.sql": "select * from feat_c",  # reads a family whose file name sorts after it
        "features/b.sql": "select * from stg",
        "features/c.sql": "select * from feat_b",
        "marts/account_features.sql": "select * from feat_a",
    })  # fmt: skip
    order = [n.table for n in load_catalogue(root).nodes if n.model is not None]
    assert order == ["stg", "feat_b", "feat_c", "feat_a", "account_features"]


def test_the_shipped_order_builds_relations_after_fan_and_pass_through() -> None:
    order = [n.table for n in load_catalogue().nodes]
    assert order.index("feat_relations") > max(order.index("feat_fan"), order.index("feat_pass_through"))
    assert order.index("stg_legs") > order.index("stg_transactions")
    assert order.index("evidence") > order.index("feat_trafficking")


@pytest.mark.parametrize(
    ("layer", "body"),
    [
        pytest.param("features", "select * from stg_nowhere", id="a model"),
        pytest.param("audits", "select * from stg_nowhere where x < 0", id="an audit"),
        pytest.param(
            "features",
            "with a as (select * from stg) select * from a join stg_nowhere using (k)",
            id="a join after a CTE",
        ),
    ],
)
def test_reading_a_table_no_model_builds_fails_at_load(tmp_path: Path, layer: str, body: str) -> None:
    root = write_catalogue(tmp_path, {"staging/stg.sql": "select * from store_accounts", f"{layer}/bad.sql": body})
    with pytest.raises(ConfigError, match=r"bad\.sql: reads table stg_nowhere, which no SQL model builds"):
        load_catalogue(root)


def test_tables_reading_each_other_are_refused(tmp_path: Path) -> None:
    root = write_catalogue(
        tmp_path, {"features/a.sql": "select * from feat_b", "features/b.sql": "select * from feat_a"}
    )
    with pytest.raises(ConfigError, match="feat_a, feat_b read each other in a cycle"):
        load_catalogue(root)


def test_each_level_builds_the_closure_of_its_mart() -> None:
    catalogue = load_catalogue()
    account = {n.table for n in catalogue.level("account")}
    transaction = {n.table for n in catalogue.level("transaction")}
    families = {f"feat_{m.name}" for m in catalogue.families}
    assert families | {"account_features", "evidence", "account_families", "stg_accounts"} <= account
    assert transaction == {"stg_transactions", "stg_legs", "feat_cycles", "transaction_features"}


def test_every_evidence_family_is_declared_once_next_to_its_features() -> None:
    declared = load_catalogue().evidence
    assert set(declared) == FAMILIES
    assert declared["trafficking"].name == "trafficking"
    assert declared["structuring"].name == "structuring"
    assert declared["cycles"].name == "cycle_members"
    assert not (sql_root() / "evidence").exists()


@pytest.mark.parametrize("layer", ["staging", "features", "marts"])
def test_every_model_ends_with_select_star_from_final(layer: str) -> None:
    for model in load_models(sql_root() / layer):
        assert model.final_select is not None
        tail = " ".join(model.body[model.final_select :].split())
        assert tail.startswith("select * from final"), f"{model.path.name}: ends with {tail!r}"


def test_no_sql_header_speaks_of_a_fixed_threshold_amount() -> None:
    for path in sorted(sql_root().rglob("*.sql")):
        text = path.read_text(encoding="utf-8")
        assert "10,000" not in text, path.name
        assert "10000" not in text, path.name
