"""The world as a whole: size, prevalence, labels, knobs and camouflage."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from finwatch.exceptions import ConfigError
from finwatch.schema import ACCOUNT_SCHEMA, LABEL_SCHEMA, TRANSACTION_SCHEMA, polars_schema
from finwatch.synth import LOOKALIKES, TYPOLOGIES, World, WorldConfig, generate_world, typology_mix
from finwatch.synth._population import DOMESTIC_BANKS


def test_default_world_is_about_a_million_transactions(default_world: World) -> None:
    assert default_world.accounts.height == 20_000
    assert 900_000 <= default_world.transactions.height <= 1_200_000
    days = default_world.transactions["ts"].dt.date().unique()
    assert days.min() == dt.date(2026, 1, 5)
    assert days.max() == dt.date(2026, 2, 3)


def test_every_typology_has_at_least_20_instances_at_default_size(default_world: World) -> None:
    counts = dict(default_world.instances.group_by("typology").len().iter_rows())
    assert set(counts) == set(TYPOLOGIES)
    assert min(counts.values()) >= 20, counts


def test_every_instance_labels_accounts_and_transactions(default_world: World) -> None:
    acc = default_world.account_labels.filter(pl.col("label"))
    txn = default_world.transaction_labels.filter(pl.col("label"))
    instances = set(default_world.instances["instance_id"])
    assert set(acc["instance_id"]) == instances
    assert set(txn["instance_id"]) == instances


@pytest.mark.parametrize("prevalence", [0.1, 0.05, 0.2])
def test_prevalence_is_within_20_percent_of_the_knob(prevalence: float, default_world: World) -> None:
    world = (
        default_world
        if prevalence == 0.1
        else generate_world(WorldConfig(seed=3, accounts=8_000, prevalence=prevalence))
    )
    positive = world.account_labels.filter(pl.col("label"))["subject_id"].n_unique()
    measured = positive / world.accounts.height
    assert abs(measured - prevalence) <= 0.2 * prevalence, measured


def test_tables_have_the_canonical_schemas(default_world: World) -> None:
    assert default_world.transactions.schema == polars_schema(TRANSACTION_SCHEMA)
    assert default_world.accounts.schema == polars_schema(ACCOUNT_SCHEMA)
    assert default_world.account_labels.schema == polars_schema(LABEL_SCHEMA)
    assert default_world.transaction_labels.schema == polars_schema(LABEL_SCHEMA)


def test_ids_are_unique_and_labels_point_at_real_rows(default_world: World) -> None:
    txns, accounts = default_world.transactions, default_world.accounts
    assert txns["txn_id"].n_unique() == txns.height
    assert accounts["account_id"].n_unique() == accounts.height
    assert set(default_world.transaction_labels["subject_id"]) <= set(txns["txn_id"])
    assert set(default_world.account_labels["subject_id"]) <= set(accounts["account_id"])
    known = set(accounts["account_id"])
    used = set(txns["src_account"].drop_nulls()) | set(txns["dst_account"].drop_nulls())
    assert used <= known


def test_amounts_are_positive_and_base_amounts_consistent(default_world: World) -> None:
    txns = default_world.transactions
    assert txns.filter(pl.col("amount") <= 0).height == 0
    base = txns.filter(pl.col("currency") == "USD")
    assert (base["amount"].cast(pl.Float64) - base["amount_base"]).abs().max() < 1e-6


def test_population_has_every_kind_of_party(default_world: World) -> None:
    accounts = default_world.accounts
    kinds = dict(accounts.group_by("kind").len().iter_rows())
    assert set(kinds) == {"bank_account", "crypto_address", "exchange_account"}
    holders = set(accounts["holder_type"])
    assert holders == {"person", "business", "merchant", "exchange"}
    mccs = set(accounts["mcc"].drop_nulls())
    # lodging, ads, airlines, bus, ride-share, prepaid, crypto exchange, fast food, drug stores, cash fronts, shells
    assert {
        "7011",
        "7311",
        "4511",
        "4131",
        "4121",
        "6540",
        "6051",
        "5814",
        "5912",
        "7297",
        "7230",
        "6799",
    } <= mccs
    banks = accounts.filter(pl.col("kind") == "bank_account")
    assert banks["institution"].n_unique() >= 10  # domestic and foreign banks
    assert banks.filter(pl.col("country") == "US")["city"].n_unique() >= 5
    linked = accounts.filter(pl.col("kind") == "exchange_account")["links"]
    assert linked.list.len().min() == 3  # bank account, deposit address, withdrawal address


def test_normal_behaviour_has_daily_and_weekly_rhythm(default_world: World) -> None:
    card = default_world.transactions.filter(pl.col("channel") == "card")
    by_hour = dict(card.group_by(pl.col("ts").dt.hour()).len().iter_rows())
    assert by_hour[12] > 5 * by_hour[4]  # lunch time against the small hours
    patterns = default_world.transaction_labels.filter(pl.col("label"))["subject_id"]
    b2b = default_world.transactions.filter(
        (pl.col("description") == "INVOICE PAYMENT") & ~pl.col("txn_id").is_in(patterns.to_list())
    )
    assert b2b.height > 10_000
    assert b2b.filter(pl.col("ts").dt.weekday() >= 6).height == 0  # ordinary invoices are paid on weekdays


def test_normal_amounts_are_heavy_tailed(default_world: World) -> None:
    b2b = default_world.transactions.filter(pl.col("description") == "INVOICE PAYMENT")["amount_base"]
    assert b2b.quantile(0.999) > 10 * b2b.median()


def test_normal_behaviour_covers_the_everyday_flows(default_world: World) -> None:
    txns = default_world.transactions
    descriptions = set(txns["description"].drop_nulls())
    assert {
        "PAYROLL",
        "RENT",
        "CARD PURCHASE",
        "P2P TRANSFER",
        "INVOICE PAYMENT",
        "ATM WITHDRAWAL",
        "CASH DEPOSIT",
        "CRYPTO PURCHASE",
        "CRYPTO SALE PROCEEDS",
        "FAMILY SUPPORT",
    } <= descriptions
    assert txns.filter(pl.col("currency") != "USD")["currency"].n_unique() >= 4  # foreign currency and ETH
    assert txns.filter(pl.col("chain") == "ethereum").height > 10_000


def test_patterns_hide_in_existing_accounts_and_in_new_mules(default_world: World) -> None:
    positive = default_world.account_labels.filter(pl.col("label") & (pl.col("subject_id").str.starts_with("8")))
    accounts = default_world.accounts.join(
        positive.select(pl.col("subject_id").alias("account_id")).unique(), on="account_id"
    )
    start = dt.date(2026, 1, 5)
    new = accounts.filter(pl.col("opened_date") >= start - dt.timedelta(days=90))
    old = accounts.filter(pl.col("opened_date") < start - dt.timedelta(days=400))
    assert new.height > 100
    assert old.height > 100
    # laundering accounts also behave normally: most of them have unlabelled transactions too
    labelled = set(default_world.transaction_labels.filter(pl.col("label"))["subject_id"])
    txns = default_world.transactions.filter(~pl.col("txn_id").is_in(list(labelled)))
    active = set(txns["src_account"].drop_nulls()) | set(txns["dst_account"].drop_nulls())
    share = len(set(accounts["account_id"]) & active) / accounts.height
    assert share > 0.6


def test_every_lookalike_is_present_and_labelled_innocent(default_world: World) -> None:
    negatives = default_world.account_labels.filter(~pl.col("label"))
    counts = dict(negatives.group_by("typology").len().iter_rows())
    assert set(counts) == set(LOOKALIKES)
    assert min(counts.values()) >= 5


def test_lookalike_cash_business_trips_a_just_below_threshold_rule(default_world: World) -> None:
    """No single rule is a perfect detector: legitimate shops also bank 80–100 % of the threshold daily."""
    shops = default_world.account_labels.filter(pl.col("typology") == "lookalike_cash_business")["subject_id"]
    deposits = default_world.transactions.filter(
        (pl.col("channel") == "cash")
        & pl.col("dst_account").is_in(shops.to_list())
        & pl.col("amount_base").is_between(8_000, 10_000, closed="left")
    )
    per_shop = deposits.group_by("dst_account").len()
    assert per_shop.height == shops.n_unique()
    assert per_shop["len"].min() >= 5
    payroll = default_world.transactions.filter(
        (pl.col("description") == "PAYROLL") & pl.col("src_account").is_in(shops.to_list())
    )
    assert payroll["src_account"].n_unique() >= 0.8 * shops.n_unique()


def test_lookalike_landlords_receive_many_small_rents(default_world: World) -> None:
    landlords = default_world.account_labels.filter(pl.col("typology") == "lookalike_landlord")["subject_id"]
    rents = default_world.transactions.filter(
        (pl.col("description") == "RENT") & pl.col("dst_account").is_in(landlords.to_list())
    )
    senders = rents.group_by("dst_account").agg(pl.col("src_account").n_unique())
    assert senders["src_account"].median() >= 8


def test_lookalike_travellers_stay_in_several_cities(default_world: World) -> None:
    people = default_world.account_labels.filter(pl.col("typology") == "lookalike_business_traveller")["subject_id"]
    stays = default_world.transactions.filter((pl.col("mcc") == "7011") & pl.col("src_account").is_in(people.to_list()))
    cities = stays.group_by("src_account").agg(pl.col("city").n_unique())
    assert cities["city"].median() >= 2


def test_typology_mix_switches_typologies_off() -> None:
    world = generate_world(WorldConfig(seed=5, accounts=2_000, typology_mix={"cycle": 1.0, "structuring": 2.0}))
    counts = dict(world.instances.group_by("typology").len().iter_rows())
    assert set(counts) == {"cycle", "structuring"}
    assert counts["structuring"] > counts["cycle"]


def test_config_rejects_unknown_typologies_and_currencies() -> None:
    with pytest.raises(ValueError, match="unknown typologies"):
        WorldConfig(typology_mix={"teleportation": 1.0})
    with pytest.raises(ValueError, match="not simulated"):
        WorldConfig(base_currency="XYZ")
    assert issubclass(ConfigError, Exception)


def test_base_currency_knob_moves_domestic_accounts() -> None:
    world = generate_world(WorldConfig(seed=2, accounts=1_500, base_currency="EUR", typology_mix={"structuring": 1}))
    banks = world.accounts.filter((pl.col("kind") == "bank_account") & (pl.col("country") == "DE"))
    assert banks.height > 1_000
    assert set(banks["currency"]) == {"EUR"}
    cash = world.transactions.filter(pl.col("channel") == "cash")
    assert set(cash["currency"]) == {"EUR"}


# --- customer data (KYC) ------------------------------------------------------------------------------------------
def test_own_clients_are_the_domestic_banks_account_holders_with_complete_customer_data(
    default_world: World,
) -> None:
    accounts = default_world.accounts
    domestic = [bic for _name, bic, *_ in DOMESTIC_BANKS]
    at_home = (pl.col("kind") == "bank_account") & pl.col("institution").is_in(domestic)
    assert accounts.filter(at_home)["own_client"].all()
    assert not accounts.filter(~at_home)["own_client"].any()
    own = accounts.filter(pl.col("own_client"))
    required = ["birth_date", "id_type", "id_number", "id_country", "address", "postcode", "phone", "occupation",
                "status", "branch"]  # fmt: skip
    assert own.select(required).null_count().sum_horizontal().item() == 0
    assert accounts.filter(~pl.col("own_client")).select(required).null_count().min_horizontal().item() == (
        accounts.height - own.height)  # nothing is known of other banks' clients  # fmt: skip
    assert own["id_number"].n_unique() == own["phone"].n_unique() == own.height
    assert set(own["status"]) <= {"open", "dormant"}
    assert own.filter(~pl.col("branch").str.starts_with(pl.col("institution").str.slice(0, 6))).is_empty()


def test_persons_have_names_ages_and_occupations_businesses_incorporation_and_activity(default_world: World) -> None:
    accounts = default_world.accounts
    persons = accounts.filter((pl.col("holder_type") == "person") & (pl.col("holder_name").is_not_null()))
    full = pl.concat_str(["given_name", "family_name"], separator=" ")
    assert persons.filter(full != pl.col("holder_name")).is_empty()  # every person, own client or not
    assert accounts.filter(pl.col("holder_type") != "person")["given_name"].null_count() == accounts.filter(
        pl.col("holder_type") != "person").height  # fmt: skip
    own = accounts.filter(pl.col("own_client"))
    people = own.filter(pl.col("holder_type") == "person")
    adult_at_opening = pl.col("birth_date").dt.offset_by("18y") <= pl.col("opened_date")
    assert people.filter(~adult_at_opening).is_empty()
    assert set(people["id_type"]) == {"national_id"}  # what goAML's ssn and FinCEN's TIN of a client need
    assert people.filter(pl.col("id_country") != "US").height > 0  # foreign nationals, with their own country's id
    firms = own.filter(pl.col("holder_type") != "person")
    assert firms.filter(pl.col("birth_date") > pl.col("opened_date")).is_empty()  # incorporated first
    assert set(firms["id_type"]) == {"company_registration"}
    assert firms.filter(pl.col("mcc") == "6799")["occupation"].unique().to_list() == ["Investment holding"]
    assert firms.filter(pl.col("holder_type") == "exchange")["occupation"].unique().to_list() == [
        "Crypto-asset exchange"]  # fmt: skip
    young = pl.col("birth_date") > pl.col("opened_date").dt.offset_by("-25y")
    assert people.filter(young & (pl.col("occupation") == "Retired")).is_empty()


def test_customer_data_come_from_a_generator_of_their_own() -> None:
    """The world's other draws are those of the five generators it had before customer data: same seed, same world."""
    config = WorldConfig(seed=9, accounts=800, days=14)
    assert generate_world(config).accounts.equals(generate_world(config).accounts)

    def first_draws(children: list[np.random.SeedSequence]) -> list[int]:
        return [int(np.random.default_rng(c).integers(1 << 62)) for c in children]

    six = np.random.SeedSequence(config.seed).spawn(6)
    assert first_draws(six[:5]) == first_draws(np.random.SeedSequence(config.seed).spawn(5))


# --- the typology mix of `finwatch synth --typology-mix` -------------------------------------------------------
def test_a_partial_mix_keeps_the_other_typologies_at_weight_1() -> None:
    mix = typology_mix({"sex_trafficking": 3, "structuring": 2})
    assert list(mix) == list(TYPOLOGIES)
    assert mix["sex_trafficking"] == 3.0
    assert mix["structuring"] == 2.0
    assert {mix[t] for t in TYPOLOGIES if t not in ("sex_trafficking", "structuring")} == {1.0}
    assert WorldConfig(typology_mix=mix).typology_mix == mix


def test_only_listed_gives_the_other_typologies_weight_0() -> None:
    mix = typology_mix({"sex_trafficking": 3, "structuring": 2}, only_listed=True)
    assert {t for t, w in mix.items() if w > 0} == {"sex_trafficking", "structuring"}
    assert sum(mix.values()) == 5.0


def test_an_unknown_name_in_a_mix_is_refused_in_one_line_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown typologies \['teleport'\]") as refused:
        typology_mix({"teleport": 1, "cycle": 2})
    assert "\n" not in str(refused.value)
    assert all(name in str(refused.value) for name in TYPOLOGIES)


def _instances(mix: dict[str, float]) -> dict[str, int]:
    world = generate_world(WorldConfig(seed=4, accounts=1_000, days=14, prevalence=0.3, typology_mix=mix))
    return dict(world.instances.group_by("typology").len().iter_rows())


def test_a_world_with_a_partial_mix_has_all_sixteen_typologies() -> None:
    counts = _instances(typology_mix({"sex_trafficking": 3, "structuring": 2}))
    assert set(counts) == set(TYPOLOGIES)
    ones = [counts[t] for t in TYPOLOGIES if t not in ("sex_trafficking", "structuring")]
    assert counts["sex_trafficking"] > counts["structuring"] > max(ones)


def test_a_world_with_only_the_listed_typologies() -> None:
    counts = _instances(typology_mix({"sex_trafficking": 3, "structuring": 2}, only_listed=True))
    assert set(counts) == {"sex_trafficking", "structuring"}
