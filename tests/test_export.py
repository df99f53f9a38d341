"""goAML drafts against UNODC's real goAML 5.0.1 schema, and the narrative every report format shares."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xmlschema
import yaml
from lxml import etree

from finwatch.config import US_LAW
from finwatch.dataset import end_of_data
from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.export import GoamlSchema, check_mapping, export_goaml, load_mapping, narrative
from finwatch.registry import Registry
from finwatch.runs import RunFolder
from finwatch.store import Store
from finwatch.testing import make_transactions
from tests.conftest import rewrite_leads, run_score

FIXTURES = Path(__file__).parent / "fixtures" / "goaml"
XSD = FIXTURES / "goAMLSchema-5.0.1.xsd"  # UNODC's schema, unchanged (see ATTRIBUTION.md)
EXAMPLE_REPORT = FIXTURES / "report-example.xml"
EXAMPLE = Path(__file__).resolve().parents[1] / "features" / "goaml" / "mapping.example.yaml"
LEGS = ("t_from_my_client", "t_from", "t_to_my_client", "t_to")


# --- fixtures --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def schema() -> GoamlSchema:
    return GoamlSchema(XSD)


@pytest.fixture(scope="module")
def validator() -> xmlschema.XMLSchema11:
    """An independent check: the real schema, loaded by xmlschema itself."""
    return xmlschema.XMLSchema11(str(XSD), defuse="always", allow="local")


@pytest.fixture(scope="module")
def run_dir(scored: tuple[Path, Registry], tmp_path_factory: pytest.TempPathFactory) -> Path:
    store, registry = scored
    folder = tmp_path_factory.mktemp("goaml") / "runs" / "r1"
    run_score(store, end_of_data(Store(store)), registry, folder, "finwatch@champion", budget=0.02)
    return folder


@pytest.fixture(scope="module")
def complete(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the run's store whose customer extract is complete for every client the run raised: an ssn-bearing
    id for each person and a signatory for each business (the synthetic extract has neither for some)."""
    folder = tmp_path_factory.mktemp("complete") / "store"
    shutil.copytree(RunFolder(run_dir).store().root, folder)
    store = Store(folder)
    subjects = pl.read_parquet(run_dir / "leads.parquet")["subject_id"].to_list()
    rows = store.scan("accounts").filter(pl.col("account_id").is_in(subjects) & pl.col("own_client")).collect()
    person = pl.col("holder_type") == "person"
    fixed = rows.with_columns(
        id_type=pl.when(person).then(pl.lit("national_id")).otherwise(pl.lit("company_registration")),
        id_number=pl.col("id_number").str.replace(r"^SYN-[A-Z]{2}-", "SYN-NI-"),
    )
    signatories = fixed.filter(~person).with_columns(
        holder_type=pl.lit("person"), holder_name=pl.lit("Dana Signer"), given_name=pl.lit("Dana"),
        family_name=pl.lit("Signer"), birth_date=pl.lit(dt.date(1980, 5, 17)), id_type=pl.lit("national_id"),
        id_number=pl.lit("SYN-NI-00000001"), occupation=pl.lit("Managing director"),
        source_row=pl.col("source_row") + 1_000_000,
    )  # fmt: skip
    _add_accounts(store, pl.concat([fixed, signatories]), "complete-kyc")
    return folder


def _add_accounts(store: Store, accounts: pl.DataFrame, name: str) -> None:
    """A later customer extract: its rows replace the earlier rows of the same accounts."""
    manifest = {"base_currency": store.settings().base_currency, "pseudonymised": False,
                "inputs": [{"file": name, "sha256": name, "format": "test"}]}  # fmt: skip
    with store.lock():
        store.write_batch(name, {"accounts": accounts}, manifest)


def mapping(tmp_path: Path, edit: Any = None, **report: Any) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["report"].update(report)
    if edit is not None:
        edit(data)
    path = tmp_path / "fiu-mapping.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def legs(draft: etree._Element, account: str) -> list[etree._Element]:
    """The legs (t_from…, t_to…) of ``draft`` that hold ``account``, or the cash party of a transaction that does."""
    found = []
    for transaction in draft.iter("transaction"):
        both = [leg for leg in transaction if leg.tag in LEGS]
        if any(leg.findtext("*/account") == account for leg in both):
            found += [leg for leg in both if leg.findtext("*/account") in (account, None)]
    return found


# --- drafts ----------------------------------------------------------------------------------------------------------
def test_every_draft_is_valid_against_goaml_5_0_1_when_the_customer_data_is_complete(
    run_dir: Path, complete: Path, schema: GoamlSchema, validator: xmlschema.XMLSchema11, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    problems = export_goaml(RunFolder(run_dir), schema, EXAMPLE, out, store=complete)
    leads = pl.read_parquet(run_dir / "leads.parquet")
    assert set(problems) == set(leads["lead_id"].to_list())
    assert all(not p for p in problems.values()), {k: v[:3] for k, v in problems.items() if v}
    report = json.loads((out / "validation.json").read_text())
    assert (report["drafts"], report["valid"], report["unknown_codes"]) == (leads.height, leads.height, [])
    for lead in leads.iter_rows(named=True):
        path = out / f"{lead['lead_id']}.xml"
        assert validator.is_valid(str(path)), next(validator.iter_errors(str(path)))
        draft = etree.parse(str(path)).getroot()
        assert draft.findtext("entity_reference") == lead["lead_id"]
        numbers = [t.findtext("transactionnumber") for t in draft.iter("transaction")]
        assert sorted(numbers) == sorted(lead["evidence_txn_ids"])
        for transaction in draft.iter("transaction"):
            for tag in ("transaction_location", "transaction_description", "amount_local"):
                assert transaction.findtext(tag), (lead["lead_id"], tag)
            assert re.fullmatch(r"\d+\.\d{2}", transaction.findtext("amount_local") or "")
            assert all(leg.findtext(f"{leg.tag.split('_')[1]}_country") for leg in transaction if leg.tag in LEGS)
        assert draft.findtext("rentity_branch")
        assert draft.find("location/city") is not None
        text = (out / f"{lead['lead_id']}.txt").read_text()
        for part in ("WHO:", "WHAT:", "WHEN:", "WHERE:", "HOW:", "WHY:"):
            assert part in text


def test_each_client_subject_is_filed_as_the_institutions_client_with_a_signatory(
    run_dir: Path, complete: Path, schema: GoamlSchema, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    export_goaml(RunFolder(run_dir), schema, EXAMPLE, out, store=complete)
    accounts = Store(complete).scan("accounts").collect()
    leads = pl.read_parquet(run_dir / "leads.parquet").join(
        accounts.unique("account_id", keep="first").select("account_id", "own_client", "holder_type", "institution"),
        left_on="subject_id", right_on="account_id", how="left",
    )  # fmt: skip
    clients = leads.filter(pl.col("own_client"))
    assert 0 < clients.height < leads.height  # clients, and crypto addresses that are not
    for lead in clients.iter_rows(named=True):
        draft = etree.parse(str(out / f"{lead['lead_id']}.xml")).getroot()
        mine = legs(draft, lead["subject_id"])
        assert mine, lead["lead_id"]
        assert all(leg.tag.endswith("_my_client") for leg in mine), lead["lead_id"]
        account = next(a for leg in mine for a in leg if a.tag.endswith("_account"))
        assert account.tag in ("from_account", "to_account")
        assert account.findtext("swift") == lead["institution"]  # a BIC, written as swift
        assert account.find("signatory/t_person/first_name") is not None
        assert account.findtext("signatory/t_person/ssn")
        assert (account.find("t_entity") is not None) == (lead["holder_type"] != "person")
        assert all(account.findtext(tag) for tag in ("client_number", "opened", "status_code"))
    for lead in leads.filter(~pl.col("own_client")).iter_rows(named=True):
        draft = etree.parse(str(out / f"{lead['lead_id']}.xml")).getroot()
        assert all(leg.tag in ("t_from", "t_to") for leg in legs(draft, lead["subject_id"]))


def test_the_store_as_synthesised_gets_only_valid_drafts(run_dir: Path, schema: GoamlSchema, tmp_path: Path) -> None:
    """The synthetic bank records a national id for each person and a director for each business client: with the
    example mapping every draft of a run on the world as generated is valid against goAML 5.0.1."""
    out = tmp_path / "out"
    problems = export_goaml(RunFolder(run_dir), schema, EXAMPLE, out)
    assert problems
    assert {lead: p for lead, p in problems.items() if p} == {}


def test_every_missing_field_is_listed_in_one_pass(
    run_dir: Path, complete: Path, schema: GoamlSchema, validator: xmlschema.XMLSchema11, tmp_path: Path
) -> None:
    store_copy = tmp_path / "store"
    shutil.copytree(complete, store_copy)
    store = Store(store_copy)
    leads = pl.read_parquet(run_dir / "leads.parquet")
    clients = store.scan("accounts").filter(pl.col("own_client") & (pl.col("holder_type") == "person")).collect()
    lead = leads.filter(pl.col("subject_id").is_in(clients["account_id"].to_list())).row(0, named=True)
    row = clients.filter(pl.col("account_id") == lead["subject_id"])
    _add_accounts(store, row.with_columns(phone=None, birth_date=None, occupation=None), "gaps")
    out = tmp_path / "out"
    problems = export_goaml(RunFolder(run_dir), schema, EXAMPLE, out, store=store_copy)[lead["lead_id"]]
    person = re.compile(r"^/report/transaction(\[\d+\])?/t_(from|to)_my_client/(from|to)_account/signatory/t_person")
    ours: dict[str, set[str]] = {}
    for problem in problems:
        if found := person.match(problem["path"]):
            ours.setdefault(found.group(0), set()).add(problem["path"][found.end() + 1 :])
    assert ours, problems
    assert all(names == {"birthdate", "occupation", "phones"} for names in ours.values()), problems
    assert "phone/tph_number" in next(p["reason"] for p in problems if p["path"].endswith("/phones"))
    # the validator alone names one missing child per parent: the first
    theirs = Counter(str(e.path) for e in validator.iter_errors(str(out / f"{lead['lead_id']}.xml"))
                     if person.fullmatch(str(e.path)))  # fmt: skip
    assert set(theirs) == set(ours)
    assert set(theirs.values()) == {1}
    report = json.loads((out / "validation.json").read_text())["leads"][lead["lead_id"]]
    assert report["valid"] is False
    assert report["problems"] == problems


def test_a_blanked_mapping_value_is_listed_for_every_lead(
    run_dir: Path, complete: Path, schema: GoamlSchema, tmp_path: Path
) -> None:
    def blank_city(data: dict[str, Any]) -> None:
        data["report"]["location"]["city"] = ""

    problems = export_goaml(RunFolder(run_dir), schema, mapping(tmp_path, blank_city), tmp_path / "out", store=complete)
    assert {lead: [p["path"] for p in listed] for lead, listed in problems.items()} == {
        lead: ["/report/location/city"] for lead in problems
    }


def test_placeholders_and_the_counterparties_institutions_are_recorded(
    run_dir: Path, complete: Path, schema: GoamlSchema, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    export_goaml(RunFolder(run_dir), schema, EXAMPLE, out, store=complete)
    report = json.loads((out / "validation.json").read_text())["leads"]
    sources = {p["source"] for lead in report.values() for p in lead["placeholders"]}
    assert "unknown.institution_name" in sources  # a BIC whose bank the mapping does not name
    bics = re.compile(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?")
    for path in out.glob("*.xml"):
        for account in etree.parse(str(path)).iter("from_account", "to_account"):
            assert account.findtext("swift") or account.findtext("institution_code")
            assert not bics.fullmatch(account.findtext("institution_name") or "")  # a BIC is never written as a name
            if account.findtext("swift"):
                assert bics.fullmatch(account.findtext("swift") or "")


# --- the schema's code lists drive the mapping ------------------------------------------------------------------------
def test_the_example_mapping_holds_only_codes_of_the_shipped_schema(schema: GoamlSchema) -> None:
    assert check_mapping(load_mapping(EXAMPLE), schema) == []
    assert schema.allowed("report/report_indicators/indicator") == ["-"]
    assert len(schema.allowed("report/transaction/transmode_code") or []) == 27
    assert {"conduction_type", "funds_type", "country_type", "currency_type", "gender_type"} <= set(schema.code_lists())


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        pytest.param(("transmode", "cash"), "CASH", "transmode.cash: 'CASH' is not a code of conduction_type "
                     "(27 allowed values)", id="transaction mode"),
        pytest.param(("indicators", "structuring"), ["STR01"], "indicators.structuring: 'STR01' is not a code of "
                     "report_indicator_type (1 allowed values)", id="indicator"),
        pytest.param(("report", "report_code"), "SUSP", "report.report_code: 'SUSP' is not a code of report_type "
                     "(13 allowed values)", id="report code"),
        pytest.param(("report", "rentity_id"), 0, "report.rentity_id: '0' is refused by the schema's int (value has "
                     "to be greater or equal than 1)", id="not a code list"),
        pytest.param(("report", "fiu_reference"), "X", "report.fiu_reference: 'X' is refused by the schema's report "
                     "(not an element there in this schema)", id="not an element"),
    ],
)  # fmt: skip
def test_check_mapping_names_each_unknown_code(
    schema: GoamlSchema, tmp_path: Path, key: tuple[str, str], value: Any, line: str
) -> None:
    def edit(data: dict[str, Any]) -> None:
        data[key[0]][key[1]] = value

    unknown = check_mapping(load_mapping(mapping(tmp_path, edit)), schema)
    assert len(unknown) == 1
    assert unknown[0].line().startswith(f"fiu-mapping.yaml: {line}")


def test_an_fius_own_code_list_drives_the_mapping(run_dir: Path, complete: Path, tmp_path: Path) -> None:
    """An FIU's variant of the schema with its own transaction modes: the example's are refused, the FIU's work."""
    tree = etree.parse(str(XSD))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    (restriction,) = tree.xpath("//xs:simpleType[@name='conduction_type']/xs:restriction", namespaces=ns)
    for child in list(restriction):
        restriction.remove(child)
    fiu_codes = {"cash": "CSH", "wire": "WIR", "ach": "ACH", "card": "CRD", "cheque": "CHQ", "p2p": "P2P",
                 "crypto": "VAT", "internal": "INT", "default": "OTH"}  # fmt: skip
    for code in sorted(set(fiu_codes.values())):
        etree.SubElement(restriction, f"{{{ns['xs']}}}enumeration", value=code)
    variant = tmp_path / "fiu-goaml.xsd"
    tree.write(str(variant), xml_declaration=True, encoding="UTF-8")
    fiu = GoamlSchema(variant)
    refused = check_mapping(load_mapping(EXAMPLE), fiu)
    assert {u.key for u in refused} == {f"transmode.{k}" for k in fiu_codes}
    assert all(u.allowed == len(fiu_codes) for u in refused)

    def fiu_modes(data: dict[str, Any]) -> None:
        data["transmode"] = fiu_codes

    own = mapping(tmp_path, fiu_modes)
    assert check_mapping(load_mapping(own), fiu) == []
    problems = export_goaml(RunFolder(run_dir), fiu, own, tmp_path / "out", store=complete)
    assert all(not p for p in problems.values())
    drafts = [etree.parse(str(p)).getroot() for p in sorted((tmp_path / "out").glob("*.xml"))]
    assert {t.findtext("transmode_code") for d in drafts for t in d.iter("transaction")} <= set(fiu_codes.values())


# --- the schema walk -------------------------------------------------------------------------------------------------
def _as_data(node: etree._Element) -> dict[str, Any]:
    grouped: dict[str, list[Any]] = {}
    for child in node:
        grouped.setdefault(child.tag, []).append(_as_data(child) if len(child) else (child.text or ""))
    return {tag: values if len(values) > 1 else values[0] for tag, values in grouped.items()}


def _pruned(node: etree._Element) -> etree._Element:
    for child in list(node):
        _pruned(child)
        if not len(child) and not (child.text or "").strip():
            node.remove(child)
    return node


def test_the_writer_orders_unodcs_example_report_and_finds_all_the_validator_finds(schema: GoamlSchema) -> None:
    example = etree.parse(str(EXAMPLE_REPORT)).getroot()
    written = schema.validate(schema.write("report", _as_data(example)))
    expected = [e.tag for e in _pruned(copy.deepcopy(example)).iter()]
    assert [e.tag for e in written.document.iter()] == expected
    kinds = {p.kind for p in written.problems}
    assert kinds == {
        "missing",
        "invalid",
    }  # the example's empty and out-of-range values; nothing only the validator saw


def test_a_missing_element_names_what_it_must_hold(schema: GoamlSchema) -> None:
    written = schema.write("report", {"rentity_id": "1", "transaction": [{"transactionnumber": "T1"}]})
    reasons = {p.path: p.reason for p in written.problems}
    assert reasons["/report/location"] == (
        "missing: location is required (with address_type, address, city, country_code)"
    )
    assert reasons["/report/transaction/(involved_parties|t_from_my_client|t_from)"].startswith(
        "missing: one of involved_parties, t_from_my_client, t_from"
    )
    assert "/report/transaction/transaction_location" in reasons


# --- the narrative ---------------------------------------------------------------------------------------------------
@pytest.fixture
def small_case() -> tuple[dict[str, Any], pl.DataFrame]:
    txns = make_transactions([
        {"txn_id": "c1", "ts": "2026-01-02T09:00:00Z", "src": None, "dst": "A", "amount": "9500.00",
         "channel": "cash", "description": "CASH DEPOSIT", "city": "Seattle", "country": "US"},
        {"txn_id": "w1", "ts": "2026-01-03T10:00:00Z", "src": "A", "dst": "B", "amount": "8000.00", "currency": "EUR",
         "amount_base": "8700.00", "channel": "wire", "dst_institution": "DEUTDEFF"},
        {"txn_id": "h1", "ts": "2026-01-04T23:00:00Z", "src": "A", "dst": "M", "amount": "180.00", "channel": "card",
         "mcc": "7011", "counterparty_name": "Starlite Motel"},
        {"txn_id": "a1", "ts": "2026-01-05T23:30:00Z", "src": "A", "dst": "N", "amount": "60.00", "channel": "card",
         "mcc": "7311", "counterparty_name": "NightAds Online"},
        {"txn_id": "x1", "ts": "2026-01-06T08:00:00Z", "src": "C", "dst": "A", "amount": "1200.00", "channel": "p2p"},
        {"txn_id": "old", "ts": "2025-11-01T08:00:00Z", "src": "C", "dst": "A", "amount": "5.00", "channel": "p2p"},
    ])  # fmt: skip
    reasons = [{"source": "rule", "rule_id": "FW-HT-001", "text": "Ad-site payments with lodging", "citation": "CITE",
                "evidence_txn_ids": ["h1", "a1"]}]  # fmt: skip
    lead = {"lead_id": "L-1", "run_id": "r", "subject_id": "A", "as_of": "2026-01-10T00:00:00+00:00",
            "typologies": ["sex_trafficking"], "reasons": json.dumps(reasons), "evidence_txn_ids": ["c1", "w1", "h1",
            "a1"], "cycle_paths": json.dumps([{"accounts": ["A", "B", "A"], "txn_ids": ["w1", "z9"]}]),
            "model": "m@1", "rules_version": "v", "data_manifest_sha256": "d"}  # fmt: skip
    return lead, txns


def test_the_narrative_says_who_what_when_where_how_and_why(small_case: tuple[dict[str, Any], pl.DataFrame]) -> None:
    lead, txns = small_case
    holder = {"holder_name": "Ann Example", "holder_type": "person", "institution": "EXAMUS33", "own_client": True}
    text = narrative(lead, txns, US_LAW, holder, "USD")
    assert text.startswith("HUMAN TRAFFICKING FIN-2020-A008\n")
    who, what = (next(line for line in text.splitlines() if line.startswith(p)) for p in ("WHO:", "WHAT:"))
    assert who.startswith("WHO: Ann Example (person), account A at EXAMUS33; the institution's client.")
    assert "Suspicious activity (4 supporting transactions): in USD 9,500.00 in 1 transaction; out EUR 8,000.00 " \
           "(≈ USD 8,700.00) in 1 transaction, USD 240.00 in 2 transactions." in what  # fmt: skip
    assert "The 30 days to 2026-01-10: in USD 10,700.00 in 2 transactions;" in what  # the old one is outside
    assert "WHEN: 2026-01-02 09:00 to 2026-01-05 23:30 UTC" in text
    assert "WHERE: Seattle, US." in text
    assert "Trafficking indicators: ad site NightAds Online (MCC 7311); lodging Starlite Motel (MCC 7011)." in text
    assert "Cycle: A (this account) → B → A (this account) (transactions w1, z9)" in text
    assert "- 2026-01-02 09:00 in    USD 9,500.00, cash, from cash [c1]" in text
    assert "- 2026-01-03 10:00 out   EUR 8,000.00 (≈ USD 8,700.00), wire, to B [w1]" in text
    assert "- Ad-site payments with lodging [CITE] — transactions h1, a1" in text
    assert "None" not in text


def test_the_narrative_without_customer_data_and_under_another_jurisdiction(
    small_case: tuple[dict[str, Any], pl.DataFrame],
) -> None:
    lead, txns = small_case
    eu = {"trafficking_key_term": "", "trafficking": "Directive 2011/36/EU"}
    text = narrative(lead, txns.select("txn_id", "ts", "src_account", "dst_account", "amount_base", "channel"), eu,
                     currency="EUR", indicators={"sex_trafficking": ["HT-07", "-"]})  # fmt: skip
    assert text.startswith("HUMAN TRAFFICKING (FIU indicator HT-07)\n")
    assert "WHO: account A (a pseudonymous id: the store holds no customer data for it)." in text
    assert "in EUR 9,500.00 in 1 transaction; out EUR 8,940.00 in 3 transactions" in text  # base amounts only
    fincen = narrative(lead, txns, None, None, "USD", indicators={"sex_trafficking": ["HT01"]})
    assert fincen.startswith("HUMAN TRAFFICKING FIN-2020-A008 (FIU indicator HT01)\n")
    assert narrative({**lead, "typologies": ["structuring"]}, txns).startswith("WHO:")


def test_trafficking_drafts_open_with_the_runs_key_term(
    run_dir: Path, complete: Path, schema: GoamlSchema, tmp_path: Path
) -> None:
    copied = tmp_path / "runs" / "copy"
    shutil.copytree(run_dir, copied)
    leads = pl.read_parquet(copied / "leads.parquet")
    first = leads["lead_id"][0]
    leads = leads.with_columns(
        typologies=pl.when(pl.col("lead_id") == first).then(pl.lit(["sex_trafficking"], pl.List(pl.String)))
        .otherwise(pl.lit([], pl.List(pl.String)))
    )  # fmt: skip
    rewrite_leads(copied, leads)
    export_goaml(RunFolder(copied), schema, EXAMPLE, tmp_path / "out", store=complete)
    key_term = US_LAW["trafficking_key_term"]
    assert (tmp_path / "out" / f"{first}.txt").read_text().startswith(key_term)
    assert key_term not in (tmp_path / "out" / f"{leads['lead_id'][1]}.txt").read_text()
    reason = etree.parse(str(tmp_path / "out" / f"{first}.xml")).findtext("reason") or ""
    assert reason.startswith(key_term)


# --- refusals and the command ----------------------------------------------------------------------------------------
def test_a_hostile_schema_and_a_bad_mapping_are_refused(run_dir: Path, schema: GoamlSchema, tmp_path: Path) -> None:
    evil = tmp_path / "evil.xsd"
    evil.write_text(XSD.read_text().replace("<xs:schema", '<!DOCTYPE x [<!ENTITY e "boom">]>\n<xs:schema', 1))
    with pytest.raises(FinwatchError, match="not a usable XSD"):
        export_goaml(RunFolder(run_dir), evil, EXAMPLE, tmp_path / "out")
    bad = tmp_path / "bad.yaml"
    bad.write_text("report: {rentity_id: 1}\n")
    with pytest.raises(ConfigError, match="misses"):
        export_goaml(RunFolder(run_dir), schema, bad, tmp_path / "out")
    with pytest.raises(ConfigError, match="currency_code_local is EUR but the store's amounts are in USD"):
        export_goaml(RunFolder(run_dir), schema, mapping(tmp_path, currency_code_local="EUR"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _finwatch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "finwatch", "export", "goaml", *args], capture_output=True, text=True,
                          cwd=cwd)  # fmt: skip


def test_the_command_exits_2_with_invalid_drafts_unless_allowed(run_dir: Path, tmp_path: Path) -> None:
    # a later customer extract without one client's identification: that client's drafts become invalid
    gaps = tmp_path / "store"
    shutil.copytree(RunFolder(run_dir).info["store"], gaps)
    store = Store(gaps)
    subjects = pl.read_parquet(run_dir / "leads.parquet")["subject_id"].to_list()
    clients = store.scan("accounts").filter(pl.col("own_client") & (pl.col("holder_type") == "person")).collect()
    row = clients.filter(pl.col("account_id").is_in(subjects)).head(1)
    _add_accounts(store, row.with_columns(id_type=None, id_number=None, id_country=None), "gaps")
    args = ["--run", str(run_dir), "--xsd", str(XSD), "--mapping", str(EXAMPLE), "--store", str(gaps)]
    done = _finwatch(*args, "--out", str(tmp_path / "strict"))
    assert done.returncode == 2, done.stderr
    counts = re.search(r"(\d+) drafts, (\d+) valid", done.stdout)
    assert counts
    assert 0 < int(counts.group(2)) < int(counts.group(1))
    assert "missing: ssn is required" in done.stderr
    assert "Traceback" not in done.stderr
    config = tmp_path / "finwatch.toml"
    config.write_text(f'[export]\ngoaml_xsd = "{XSD}"\ngoaml_mapping = "{EXAMPLE}"\n')
    done = _finwatch("--run", str(run_dir), "--config", str(config), "--out", str(tmp_path / "lenient"),
                     "--allow-invalid", "--store", str(gaps))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{counts.group(0)} against goAMLSchema-5.0.1.xsd" in done.stdout
    done = _finwatch("--run", str(run_dir), "--xsd", str(tmp_path / "missing.xsd"), "--mapping", str(EXAMPLE))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_check_mapping_refuses_an_unknown_code_in_one_line(run_dir: Path, tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["funds"]["cash"] = "CASH"

    done = _finwatch("--run", str(run_dir), "--xsd", str(XSD), "--mapping", str(mapping(tmp_path, edit)),
                     "--out", str(tmp_path / "out"), "--check-mapping")  # fmt: skip
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["error: fiu-mapping.yaml: funds.cash: 'CASH' is not a code of funds_type (28 allowed values)"]
    assert not (tmp_path / "out").exists()
