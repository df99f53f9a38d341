"""FinCEN SAR batches: one activity per lead, valid against FinCEN's own schema (a copy in tests/fixtures/fincen)."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xmlschema
import yaml
from lxml import etree

from finwatch.dataset import end_of_data
from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.fincen import (
    KEY_TERM,
    NARRATIVE_LIMITS,
    Classification,
    export_fincen_sar,
    load_codes,
    load_filer,
    load_schema,
    narrative_parts,
    schema_enumeration,
)
from finwatch.fx import FxTable
from finwatch.registry import Registry
from finwatch.runs import RunFolder
from finwatch.schema import ACCOUNT_SCHEMA
from finwatch.store import Store
from finwatch.synth import TYPOLOGIES
from finwatch.testing import make_accounts, make_store, make_transactions
from tests.conftest import rewrite_leads, run_score

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "fincen"
XSD = FIXTURES / "EFL_SARXBatchSchema.xsd"
SAMPLE = FIXTURES / "sar_batch-example.xml"
EXAMPLE = ROOT / "features" / "fincen" / "filer.example.yaml"
NS = {"f": "www.fincen.gov/base"}


@pytest.fixture(scope="module")
def run_dir(scored: tuple[Path, Registry], tmp_path_factory: pytest.TempPathFactory) -> Path:
    store, registry = scored
    folder = tmp_path_factory.mktemp("fincen") / "runs" / "r1"
    run_score(store, end_of_data(Store(store)), registry, folder, "finwatch@champion", budget=0.02)
    return folder


@pytest.fixture(scope="module")
def batch(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sar") / "fincen"
    result = export_fincen_sar(RunFolder(run_dir), EXAMPLE, out, xsd=XSD)
    assert result.valid, result.errors[:5]
    return out / "sar-batch.xml"


def parties(activity: etree._Element, code: str) -> list[etree._Element]:
    return [p for p in activity.findall("f:Party", NS) if p.findtext("f:ActivityPartyTypeCode", namespaces=NS) == code]


def narrative_of(activity: etree._Element) -> list[str]:
    return [n.findtext("f:ActivityNarrativeText", namespaces=NS) or ""
            for n in activity.findall("f:ActivityNarrativeInformation", NS)]  # fmt: skip


# --- the batch of a scored run ---------------------------------------------------------------------------------------
def test_the_batch_is_valid_against_fincens_schema(batch: Path) -> None:
    schema = xmlschema.XMLSchema11(str(XSD), defuse="always", allow="local")
    assert schema.is_valid(str(batch))
    assert json.loads((batch.parent / "validation.json").read_text())["errors"] == []


def test_one_activity_per_lead_and_the_batch_counts(batch: Path, run_dir: Path) -> None:
    leads = pl.read_parquet(run_dir / "leads.parquet")
    root = etree.parse(str(batch)).getroot()
    activities = root.findall("f:Activity", NS)
    subjects = [p for a in activities for p in parties(a, "33")]
    amounts = [int(a.findtext("f:SuspiciousActivity/f:TotalSuspiciousAmountText", "0", NS)) for a in activities]
    assert int(root.get("ActivityCount")) == leads.height == len(activities)
    assert int(root.get("PartyCount")) == len(subjects)
    assert int(root.get("TotalAmount")) == sum(amounts)
    assert (root.get("ActivityAttachmentCount"), root.get("AttachmentCount")) == ("0", "0")
    for activity in activities:  # the parties FinCEN requires in every report, once each but the subjects
        assert [len(parties(activity, c)) for c in ("35", "37", "30", "8", "34")] == [1, 1, 1, 1, 1]
        assert len(parties(activity, "33")) >= 1


def test_seq_nums_are_unique_and_increase_through_the_batch(batch: Path) -> None:
    numbers = [int(n.get("SeqNum")) for n in etree.parse(str(batch)).getroot().iter() if n.get("SeqNum")]
    assert numbers == sorted(set(numbers))
    assert numbers[0] == 1


def test_each_activity_covers_its_leads_evidence(batch: Path, run_dir: Path) -> None:
    run = RunFolder(run_dir)
    txns = run.store().scan("transactions").collect()
    root = etree.parse(str(batch)).getroot()
    for lead, activity in zip(run.leads().sort("rank").iter_rows(named=True), root.findall("f:Activity", NS),
                              strict=True):  # fmt: skip
        mine = txns.filter(pl.col("txn_id").is_in(lead["evidence_txn_ids"]))
        found = activity.find("f:SuspiciousActivity", NS)
        assert found.findtext("f:SuspiciousActivityFromDateText", namespaces=NS) == f"{mine['ts'].min():%Y%m%d}"
        assert found.findtext("f:SuspiciousActivityToDateText", namespaces=NS) == f"{mine['ts'].max():%Y%m%d}"
        # the store's base currency is USD: whole dollars, rounded up
        expected = math.ceil(round(float(mine["amount_base"].sum()), 2))
        assert int(found.findtext("f:TotalSuspiciousAmountText", namespaces=NS)) == expected


def test_every_subject_has_a_name_when_the_accounts_table_has_one(batch: Path, run_dir: Path) -> None:
    run = RunFolder(run_dir)
    accounts = run.store().scan("accounts").select("account_id", "holder_name").collect()
    names = {k: " ".join(filter(None, v)) for k, v in accounts.group_by("account_id").agg("holder_name").iter_rows()}
    root = etree.parse(str(batch)).getroot()
    named = 0
    for lead, activity in zip(run.leads().sort("rank").iter_rows(named=True), root.findall("f:Activity", NS),
                              strict=True):  # fmt: skip
        if not names.get(lead["subject_id"]):
            continue
        named += 1
        for subject in parties(activity, "33"):
            name = subject.find("f:PartyName", NS)
            last = name.findtext("f:RawEntityIndividualLastName", namespaces=NS)
            assert last
            assert last in names[lead["subject_id"]]
            assert name.find("f:EntityLastNameUnknownIndicator", NS) is None
    assert named > 0


def test_narrative_parts_fit_fincens_blocks(batch: Path) -> None:
    for activity in etree.parse(str(batch)).getroot().findall("f:Activity", NS):
        blocks = activity.findall("f:ActivityNarrativeInformation", NS)
        assert [b.findtext("f:ActivityNarrativeSequenceNumber", namespaces=NS) for b in blocks] == [
            str(n) for n in range(1, len(blocks) + 1)
        ]
        assert all(0 < len(text) <= 4000 for text in narrative_of(activity))


def test_trafficking_leads_carry_fincens_key_term(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "runs" / "copy"
    shutil.copytree(run_dir, copy)
    leads = pl.read_parquet(copy / "leads.parquet").sort("rank")
    first, second = leads["lead_id"][0], leads["lead_id"][1]
    leads = leads.with_columns(
        typologies=pl.when(pl.col("lead_id") == first).then(pl.lit(["labor_trafficking"], pl.List(pl.String)))
        .otherwise(pl.lit(["structuring"], pl.List(pl.String)))
    )  # fmt: skip
    rewrite_leads(copy, leads)
    result = export_fincen_sar(RunFolder(copy), EXAMPLE, tmp_path / "out", xsd=XSD)
    assert result.valid, result.errors[:5]
    activities = etree.parse(str(result.path)).getroot().findall("f:Activity", NS)
    trafficking, other = activities[0], activities[1]
    assert narrative_of(trafficking)[0].startswith(KEY_TERM)
    assert trafficking.findtext("f:FilingInstitutionNotetoFinCEN", namespaces=NS) == KEY_TERM
    codes = [(c.findtext("f:SuspiciousActivityTypeID", namespaces=NS),
              c.findtext("f:SuspiciousActivitySubtypeID", namespaces=NS))
             for c in trafficking.iter(f"{{{NS['f']}}}SuspiciousActivityClassification")]  # fmt: skip
    assert codes == [("9", "927")]  # human trafficking, SAR field 38(h)
    assert KEY_TERM not in " ".join(narrative_of(other))
    assert other.find("f:FilingInstitutionNotetoFinCEN", NS) is None
    assert second != first


def test_rerun_gives_identical_bytes(run_dir: Path, batch: Path, tmp_path: Path) -> None:
    again = export_fincen_sar(RunFolder(run_dir), EXAMPLE, tmp_path / "again", xsd=XSD)
    assert again.path.read_bytes() == batch.read_bytes()
    assert (tmp_path / "again" / "validation.json").read_bytes() == (batch.parent / "validation.json").read_bytes()


# --- the filer file --------------------------------------------------------------------------------------------------
def filer_file(tmp_path: Path, edit: Any) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    edit(data)
    path = tmp_path / "filer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_example_filer_file_validates_and_is_fictional() -> None:
    filer = load_filer(EXAMPLE)
    assert filer.activity == filer.filing  # same_as_filer
    assert "Example" in filer.filing.name
    assert "Example" in filer.transmitter_name
    assert all("55501" in phone for phone in (filer.transmitter_phone, filer.contact_phone))
    assert filer.filing.tin[:2] in ("07", "08", "09")
    assert filer.transmitter_tin[:2] in ("07", "08", "09")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(lambda d: d["filing_institution"].pop("tin"), "filing_institution.tin: missing",
                     id="filing institution TIN missing"),
        pytest.param(lambda d: d["transmitter"].pop("tcc"), "transmitter.tcc: missing", id="TCC missing"),
        pytest.param(lambda d: d.pop("contact_office"), "contact_office: missing", id="contact office missing"),
        pytest.param(lambda d: d["contact_office"].pop("phone"), "contact_office.phone: missing",
                     id="contact office phone missing"),
        pytest.param(lambda d: d["filing_institution"]["address"].pop("state"),
                     "filing_institution.address.state: missing", id="US address without a state"),
        pytest.param(lambda d: d.pop("activity_institution"), "activity_institution: missing",
                     id="activity institution missing"),
        pytest.param(lambda d: d["filing_institution"].update(primary_regulator="sheriff"),
                     "filing_institution.primary_regulator: 'sheriff' is not one of", id="unknown regulator"),
        pytest.param(lambda d: d["filing_institution"].update(tin=70000001),
                     "filing_institution.tin: write it in quotes", id="TIN read as a number by YAML"),
        pytest.param(lambda d: d["filing_institution"].update(tin="12345"),
                     "filing_institution.tin: '12345' is not a TIN of 9 digits", id="TIN too short"),
        pytest.param(lambda d: d["transmitter"].update(tcc="PBSA"), "transmitter.tcc: 'PBSA' is not a Transmitter",
                     id="TCC too short"),
        pytest.param(lambda d: d["transmitter"]["address"].update(zip="2200"),
                     "transmitter.address.zip: '2200' is not a US ZIP code", id="US ZIP of four digits"),
        pytest.param(lambda d: d["contact_office"].update(phone_extention="12"),
                     "contact_office.phone_extention: unknown field", id="misspelt field"),
        pytest.param(lambda d: d.update(activity_institution={"name": "Elsewhere Bank"}),
                     "activity_institution.tin_type: missing", id="activity institution incomplete"),
    ],
)  # fmt: skip
def test_a_filer_file_missing_or_breaking_a_field_is_refused_naming_it(tmp_path: Path, edit: Any, message: str) -> None:
    path = filer_file(tmp_path, edit)
    with pytest.raises(ConfigError) as caught:
        load_filer(path)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


def test_a_filer_file_with_python_tags_is_not_run(tmp_path: Path) -> None:
    path = tmp_path / "filer.yaml"
    path.write_text("transmitter: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_filer(path)


def test_a_refused_filer_file_writes_nothing(run_dir: Path, tmp_path: Path) -> None:
    path = filer_file(tmp_path, lambda d: d["filing_institution"].pop("tin"))
    with pytest.raises(ConfigError, match=r"filing_institution\.tin: missing"):
        export_fincen_sar(RunFolder(run_dir), path, tmp_path / "out", xsd=XSD)
    assert not (tmp_path / "out").exists()


# --- the schema and the codes ----------------------------------------------------------------------------------------
def test_an_xsd_with_an_entity_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.xsd"
    text = XSD.read_text(encoding="utf-8")
    evil.write_text(text.replace("<xsd:schema", '<!DOCTYPE x [<!ENTITY e "boom">]>\n<xsd:schema', 1), encoding="utf-8")
    with pytest.raises(FinwatchError, match="DOCTYPE or entities"):
        load_schema(evil)


def test_an_xsd_that_is_not_fincens_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.xsd"
    other.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="report" type="xs:string"/>'
        "</xs:schema>"
    )
    with pytest.raises(FinwatchError, match="not FinCEN's SAR batch schema"):
        load_schema(other)


def test_the_shipped_schema_is_the_one_the_tests_validate_against() -> None:
    assert (ROOT / "features" / "fincen" / "EFL_SARXBatchSchema.xsd").read_bytes() == XSD.read_bytes()


def test_every_code_in_the_mapping_is_one_of_the_schemas() -> None:
    schema = load_schema(XSD)
    codes = load_codes()
    entries = [*codes.default, *(e for es in codes.classifications.values() for e in es)]
    types = schema_enumeration(schema, "ValidateSuspiciousActivityTypeID")
    subtypes = schema_enumeration(schema, "ValidateSuspiciousActivitySubtypeID")
    for entry in entries:
        assert str(entry.type_id) in types, entry
        assert str(entry.subtype_id) in subtypes, entry
        # FinCEN's pairing (SAR XML user guide): subtype NNN belongs to type NNN // 100, "Other" T999 to type T
        assert entry.subtype_id // 100 == entry.type_id or entry.subtype_id == entry.type_id * 1000 + 999, entry
        assert entry.other is None or len(entry.other) <= 50
    regulators = schema_enumeration(schema, "ValidateFederalRegulatorCodeType")
    identifications = schema_enumeration(schema, "ValidatePartyIdentificationCodeType")
    organisations = schema_enumeration(schema, "ValidateOrganizationCodeType")
    assert set(codes.primary_regulators.values()) <= regulators
    assert set(codes.tin_types.values()) | set(codes.institution_ids.values()) <= identifications
    assert {str(i["code"]) for i in codes.identification.values() if "code" in i} <= identifications
    assert set(codes.institution_types.values()) <= organisations
    assert codes.key_term_subtypes == {927}


def test_every_finwatch_typology_has_a_classification() -> None:
    rules = {r["typology"] for f in (ROOT / "features" / "rules").glob("*.yaml") for r in yaml.safe_load(f.read_text())}
    assert set(TYPOLOGIES) | rules <= set(load_codes().classifications)


def test_the_parties_are_those_of_fincens_sample() -> None:
    sample = etree.parse(str(SAMPLE)).getroot()  # no namespace in the sample (see ATTRIBUTION.md)
    codes = {p.findtext("ActivityPartyTypeCode") for p in sample.find("Activity").findall("Party")}
    assert codes == {"35", "37", "30", "8", "34", "33"}
    shown = sample.find("Activity/SuspiciousActivity/SuspiciousActivityClassification")
    entry = Classification(int(shown.findtext("SuspiciousActivityTypeID")),
                           int(shown.findtext("SuspiciousActivitySubtypeID")))  # fmt: skip
    assert entry.subtype_id // 100 == entry.type_id  # 1/106: the pairing rule holds for FinCEN's own sample


def test_one_entry_per_subtype_with_other_texts_merged() -> None:
    codes = load_codes()
    entries = codes.for_typologies(["shell_circulation", "crypto_layering", "cycle"])
    assert [(e.type_id, e.subtype_id) for e in entries] == [(8, 807), (8, 8999), (9, 925)]
    assert entries[1].other == "Shell company activity; Virtual currency layering"
    assert codes.for_typologies([]) == codes.default


# --- narrative blocks ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("length", "blocks"),
    [
        pytest.param(4000, 1, id="4,000 characters fit one block"),
        pytest.param(4001, 2, id="4,001 characters need two"),
        pytest.param(16_500, 5, id="16,500 characters need the fifth block"),
    ],
)
def test_narrative_blocks_hold_at_most_4000_characters(length: int, blocks: int) -> None:
    parts = narrative_parts(("word " * length)[: length - 1] + "x")
    assert len(parts) == blocks
    assert all(len(p) <= limit for p, limit in zip(parts, NARRATIVE_LIMITS, strict=False))


def test_a_narrative_longer_than_fincen_allows_is_cut_and_says_so() -> None:
    lines = "\n".join(f"line {n}: " + "evidence " * 10 for n in range(400))
    parts = narrative_parts(lines)
    assert len(parts) == 5
    assert all(len(p) <= limit for p, limit in zip(parts, NARRATIVE_LIMITS, strict=True))
    assert parts[-1].endswith("[Narrative truncated at FinCEN's 17,000 characters.]")
    assert parts[0].startswith("line 0:")


# --- customer data, currencies ---------------------------------------------------------------------------------------
def hand_made_run(template: Path, folder: Path, store: Store, leads: list[dict[str, Any]]) -> RunFolder:
    """A run over ``store`` whose leads copy a real lead row with another subject, typologies and evidence."""
    base = pl.read_parquet(template / "leads.parquet").sort("rank").head(1)
    rows = [
        base.with_columns(
            pl.Series("lead_id", [f"L-{n}"]),
            pl.Series("rank", [n], dtype=base.schema["rank"]),
            pl.Series("subject_id", [spec["subject"]]),
            pl.Series("typologies", [spec["typologies"]], dtype=pl.List(pl.String)),
            pl.Series("evidence_txn_ids", [spec["evidence"]], dtype=pl.List(pl.String)),
        )
        for n, spec in enumerate(leads, start=1)
    ]
    summary = json.loads((template / "run.json").read_text())
    summary.update(store=str(store.root.resolve()), store_batches=[m["batch"] for m in store.manifests()])
    return RunFolder.write(folder, pl.concat(rows), summary)


CRYPTO = "0x" + "ab" * 20


@pytest.fixture(scope="module")
def kyc_batch(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> etree._Element:
    if "given_name" not in ACCOUNT_SCHEMA.names:
        pytest.skip("the accounts table has no customer-data columns")
    root = tmp_path_factory.mktemp("kyc")
    txns = make_transactions([
        {"txn_id": "k1", "ts": "2026-01-06T10:00:00Z", "src": None, "dst": "ACC-1", "amount": "9500.25",
         "channel": "cash"},
        {"txn_id": "k2", "ts": "2026-01-08T10:00:00Z", "src": "ACC-1", "dst": "B-1", "amount": "9000",
         "channel": "wire"},
    ])  # fmt: skip
    accounts = make_accounts([
        {"account_id": "ACC-1", "holder_name": "Janice Mann", "given_name": "Janice", "family_name": "Mann",
         "birth_date": dt.date(1980, 10, 25), "id_type": "passport", "id_number": "P1234567", "id_country": "GB",
         "address": "123 Viers Mill Road", "postcode": "20905", "city": "Rockville", "country": "US",
         "phone": "+1 (619) 555-0176", "occupation": "Mechanic", "own_client": True, "status": "closed",
         "institution": "EXMPUS33"},
        {"account_id": "ACC-1", "holder_name": "Jon Mann", "given_name": "Jon", "family_name": "Mann",
         "id_type": "tax_id", "id_number": "123-45-6789", "id_country": "US", "country": "US",
         "institution": "EXMPUS33"},
        {"account_id": "B-1", "holder_type": "business", "holder_name": "Example Trading LLC", "id_type": "tax_id",
         "id_number": "12-3456789", "id_country": "US", "country": "US", "own_client": False,
         "institution": "OTHRGB2L"},
        {"account_id": CRYPTO, "kind": "crypto_address"},
    ])  # fmt: skip
    store = make_store(root / "store", txns, accounts)
    run = hand_made_run(run_dir, root / "runs" / "kyc", store, [
        {"subject": "ACC-1", "typologies": ["structuring"], "evidence": ["k1", "k2"]},
        {"subject": "B-1", "typologies": ["shell_circulation", "crypto_layering"], "evidence": ["k2"]},
        {"subject": CRYPTO, "typologies": [], "evidence": []},
    ])  # fmt: skip
    result = export_fincen_sar(run, EXAMPLE, root / "out", xsd=XSD)
    assert result.valid, result.errors[:5]
    return etree.parse(str(result.path)).getroot()


def text(node: etree._Element, path: str) -> str | None:
    return node.findtext(path, namespaces=NS)


def test_customer_data_fills_a_persons_subject(kyc_batch: etree._Element) -> None:
    janice, jon = parties(kyc_batch.findall("f:Activity", NS)[0], "33")  # joint account: primary holder first
    assert text(janice, "f:PartyName/f:RawIndividualFirstName") == "Janice"
    assert text(janice, "f:PartyName/f:RawEntityIndividualLastName") == "Mann"
    assert text(janice, "f:IndividualBirthDateText") == "19801025"
    assert janice.find("f:BirthDateUnknownIndicator", NS) is None
    assert (text(janice, "f:Address/f:RawStreetAddress1Text"), text(janice, "f:Address/f:RawCityText"),
            text(janice, "f:Address/f:RawZIPCode"), text(janice, "f:Address/f:StateCodeUnknownIndicator")) == (
        "123 Viers Mill Road", "Rockville", "20905", "Y")  # fmt: skip
    assert text(janice, "f:PhoneNumber/f:PhoneNumberText") == "16195550176"
    tin, document = janice.findall("f:PartyIdentification", NS)
    assert text(tin, "f:TINUnknownIndicator") == "Y"
    assert (text(document, "f:PartyIdentificationTypeCode"), text(document, "f:PartyIdentificationNumberText"),
            text(document, "f:OtherIssuerCountryText")) == ("6", "P1234567", "GB")  # fmt: skip
    assert text(janice, "f:PartyOccupationBusiness/f:OccupationBusinessText") == "Mechanic"
    assert text(janice, "f:PartyAssociation/f:CustomerIndicator") == "Y"
    assert text(janice, "f:PartyAssociation/f:SubjectRelationshipFinancialInstitutionTINText") == "080000002"
    held = janice.find("f:PartyAccountAssociation/f:Party", NS)
    assert (text(held, "f:ActivityPartyTypeCode"), text(held, "f:PartyIdentification/f:PartyIdentificationNumberText"),
            text(held, "f:Account/f:AccountNumberText"),
            text(held, "f:Account/f:PartyAccountAssociation/f:AccountClosedIndicator")) == (
        "41", "080000002", "ACC-1", "Y")  # fmt: skip
    assert text(jon, "f:PartyIdentification/f:PartyIdentificationNumberText") == "123456789"
    assert text(jon, "f:PartyIdentification/f:PartyIdentificationTypeCode") == "1"  # SSN/ITIN
    assert text(jon, "f:BirthDateUnknownIndicator") == "Y"
    assert jon.find("f:PartyAssociation", NS) is None  # own_client unknown: no relationship stated


def test_customer_data_fills_an_entitys_subject(kyc_batch: etree._Element) -> None:
    (entity,) = parties(kyc_batch.findall("f:Activity", NS)[1], "33")
    assert text(entity, "f:PartyAsEntityOrganizationIndicator") == "Y"
    assert text(entity, "f:PartyName/f:RawEntityIndividualLastName") == "Example Trading LLC"
    assert entity.find("f:UnknownGenderIndicator", NS) is None
    assert entity.find("f:BirthDateUnknownIndicator", NS) is None
    assert text(entity, "f:PartyIdentification/f:PartyIdentificationTypeCode") == "2"  # EIN
    assert text(entity, "f:PartyIdentification/f:PartyIdentificationNumberText") == "123456789"
    assert text(entity, "f:PartyAssociation/f:NoRelationshipToInstitutionIndicator") == "Y"
    held = entity.find("f:PartyAccountAssociation/f:Party", NS)
    assert text(held, "f:NonUSFinancialInstitutionIndicator") == "Y"  # OTHRGB2L: a British BIC


def test_a_subject_without_any_data_is_marked_unknown(kyc_batch: etree._Element) -> None:
    activity = kyc_batch.findall("f:Activity", NS)[2]
    (subject,) = parties(activity, "33")
    for flag in ("f:AllCriticalSubjectInformationUnavailableIndicator", "f:NoKnownAccountInvolvedIndicator",
                 "f:PartyName/f:EntityLastNameUnknownIndicator", "f:Address/f:CityUnknownIndicator",
                 "f:PartyIdentification/f:TINUnknownIndicator"):  # fmt: skip
        assert text(subject, flag) == "Y", flag
    assert text(activity, "f:SuspiciousActivity/f:AmountUnknownIndicator") == "Y"
    assert text(activity, ".//f:SuspiciousActivitySubtypeID") == "9999"  # no typology: the model's ranking


def test_batch_counts_with_joint_holders(kyc_batch: etree._Element) -> None:
    assert kyc_batch.get("PartyCount") == "4"  # two holders of ACC-1, B-1, the crypto address
    amounts = [text(a, "f:SuspiciousActivity/f:TotalSuspiciousAmountText") for a in kyc_batch.findall("f:Activity", NS)]
    assert amounts == ["18501", "9000", None]  # 18,500.25 rounded up to whole dollars
    assert kyc_batch.get("TotalAmount") == "27501"


def euro_run(run_dir: Path, root: Path, fx: FxTable | None) -> RunFolder:
    txns = make_transactions([{"txn_id": "e1", "ts": "2026-01-06T10:00:00Z", "src": None, "dst": "EU-1",
                               "amount": "1000", "currency": "EUR", "channel": "cash"}])  # fmt: skip
    accounts = make_accounts([{"account_id": "EU-1", "holder_name": "Erika Beispiel", "country": "DE"}])
    store = make_store(root / "store", txns, accounts, base_currency="EUR", fx=fx)
    return hand_made_run(run_dir, root / "runs" / "eu", store,
                         [{"subject": "EU-1", "typologies": ["structuring"], "evidence": ["e1"]}])  # fmt: skip


def test_a_euro_store_reports_us_dollars_at_the_stores_rate(run_dir: Path, tmp_path: Path) -> None:
    run = euro_run(run_dir, tmp_path, None)
    result = export_fincen_sar(run, EXAMPLE, tmp_path / "out", xsd=XSD)
    rate = FxTable.load().rate_to(pl.DataFrame({"date": [dt.date(2026, 1, 6)], "currency": ["EUR"]}), "USD")["rate"][0]
    assert result.total_amount == math.ceil(round(1000 * rate, 2))
    assert result.valid


def test_a_store_without_a_usd_rate_is_refused(run_dir: Path, tmp_path: Path) -> None:
    fx = FxTable.from_frame(pl.DataFrame({"date": [dt.date(2020, 1, 1)], "currency": ["GBP"], "base": ["EUR"],
                                          "rate": [1.1]}), "no dollars")  # fmt: skip
    run = euro_run(run_dir, tmp_path, fx)
    with pytest.raises(FinwatchError, match="no USD rate for EUR on 2026-01-06"):
        export_fincen_sar(run, EXAMPLE, tmp_path / "out", xsd=XSD)
    assert not (tmp_path / "out").exists()


# --- the command -----------------------------------------------------------------------------------------------------
def finwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "finwatch", *args], capture_output=True, text=True)


def test_the_command_writes_and_checks_the_batch(run_dir: Path, tmp_path: Path) -> None:
    leads = pl.read_parquet(run_dir / "leads.parquet").height
    done = finwatch("export", "fincen-sar", "--run", str(run_dir), "--filer", str(EXAMPLE), "--xsd", str(XSD),
                    "--out", str(tmp_path / "sar"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{leads} activities, valid against EFL_SARXBatchSchema.xsd" in done.stdout
    assert (tmp_path / "sar" / "sar-batch.xml").is_file()
    assert (tmp_path / "sar" / "validation.json").is_file()


def test_the_command_refuses_a_bad_filer_file_in_one_line(run_dir: Path, tmp_path: Path) -> None:
    path = filer_file(tmp_path, lambda d: d["filing_institution"].pop("tin"))
    done = finwatch("export", "fincen-sar", "--run", str(run_dir), "--filer", str(path), "--out", str(tmp_path / "x"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {path}: filing_institution.tin: missing"]


def test_an_invalid_batch_fails_the_command_unless_allowed(run_dir: Path, tmp_path: Path) -> None:
    strict = tmp_path / "strict.xsd"  # party names of at most 5 characters: the example filer's are longer
    source = XSD.read_text(encoding="utf-8")
    anchor = (
        '<xsd:simpleType name="RestrictString150">\n\t\t<xsd:restriction base="xsd:string">\n'
        '\t\t\t<xsd:maxLength value="150"/>'
    )
    assert anchor in source
    strict.write_text(source.replace(anchor, anchor.replace('value="150"', 'value="5"')), encoding="utf-8")
    command = ["export", "fincen-sar", "--run", str(run_dir), "--filer", str(EXAMPLE), "--xsd", str(strict),
               "--out", str(tmp_path / "sar")]  # fmt: skip
    done = finwatch(*command)
    assert done.returncode == 2  # as finwatch export goaml does for invalid drafts
    assert "invalid" in done.stdout
    assert "RawPartyFullName" in done.stderr
    report = json.loads((tmp_path / "sar" / "validation.json").read_text())
    assert not report["valid"]
    assert any("RawPartyFullName" in e["path"] for e in report["errors"])
    assert finwatch(*command, "--allow-invalid").returncode == 0
