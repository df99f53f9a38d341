"""FinCEN SAR batches: one ``EFilingBatchXML`` (form ``SARX``) per run, an ``Activity`` per lead.

``finwatch export fincen-sar --run RUN --filer FILER.yaml`` writes ``RUN/fincen/sar-batch.xml`` for FinCEN's BSA
E-Filing System and validates it against FinCEN's SAR batch schema (``features/fincen/EFL_SARXBatchSchema.xsd``,
version 1.2, XSD 1.1; ``--xsd`` gives another). Per lead, one activity with:

- the parties FinCEN requires in every report: transmitter (35), transmitter contact (37), filing institution (30),
  contact office (8) and the institution where the activity occurred (34), from the filer file; and a subject (33)
  per holder of the lead's account, from the store's accounts table (customer-data columns read by name: a column
  that is missing or null is unknown, and the schema's *UnknownIndicator elements say so), with the account number
  at its institution;
- the suspicious activity: first and last evidence transaction, the evidence's total in whole US dollars (rounded
  up, as FinCEN asks; converted with the store's FX table when the store's base currency is not USD), and the
  classifications of the lead's typologies (``features/fincen/sar-codes.yaml``);
- the narrative (:func:`finwatch.export.narrative`) in parts of at most 4,000 characters. Where a human-trafficking
  classification applies, the narrative and field 2 (note to FinCEN) carry the key term
  "HUMAN TRAFFICKING FIN-2020-A008" (FinCEN advisory FIN-2020-A008).

``SeqNum`` values are unique and increase through the batch in document order; the batch attributes count the
activities, the subjects (``PartyCount``: parties of type 33, as FinCEN's SAR user guide defines it) and the total
amount. The filing date is the run's as-of date, so the same run gives the same bytes. ``validation.json`` (written
last, with the batch, atomically) lists every schema error by path. A batch is a draft for an analyst to review and
file, never sent automatically.

Every text from the data is written through :func:`finwatch.sanitize.xml_text`: a character XML cannot hold (a NUL,
an escape character) or a control that changes how text reads (a right-to-left override) is written as a visible
escape (``\\x00``, ``\\u202e``), and the lead's notes in ``validation.json`` say so.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from lxml import etree

from finwatch._files import read_option_file, read_option_text
from finwatch._io import atomic_directory
from finwatch._paths import reference_root
from finwatch.config import US_LAW
from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.export import narrative
from finwatch.runs import RunFolder
from finwatch.sanitize import UNSAFE, xml_text

__all__ = [
    "BATCH_FILE",
    "KEY_TERM",
    "NAMESPACE",
    "Classification",
    "Filer",
    "SarCodes",
    "SarResult",
    "export_fincen_sar",
    "load_codes",
    "load_filer",
    "load_schema",
    "narrative_parts",
]

NAMESPACE = "www.fincen.gov/base"
BATCH_FILE = "sar-batch.xml"
MARKER = "validation.json"
SCHEMA_FILE = "EFL_SARXBatchSchema.xsd"
CODES_FILE = "sar-codes.yaml"
#: FinCEN's key term for human trafficking (advisory FIN-2020-A008): SAR field 2 and the narrative
KEY_TERM = US_LAW["trafficking_key_term"]
#: narrative blocks: 1-4 hold 4,000 characters each, block 5 characters 16,001-17,000 (the schema's documentation)
NARRATIVE_LIMITS = (4000, 4000, 4000, 4000, 1000)
TRUNCATED = "\n[Narrative truncated at FinCEN's 17,000 characters.]"
#: where FinCEN requires a state code with an address
STATE_COUNTRIES = frozenset({"US", "CA", "MX"})
ENTITY_HOLDERS = frozenset({"business", "merchant", "exchange"})
#: customer-data columns read from the accounts table when present (missing or null: unknown)
ACCOUNT_COLUMNS = (
    "account_id", "kind", "holder_type", "holder_name", "given_name", "family_name", "birth_date", "gender",
    "id_type", "id_number", "id_country", "address", "postcode", "city", "state", "country", "phone", "occupation",
    "own_client", "institution", "branch", "opened_date", "status", "source_row",
)  # fmt: skip
#: the narrative's money-in and money-out figures cover the subject's transactions of this period to the as-of time
NARRATIVE_PERIOD = dt.timedelta(days=30)


# --- codes ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Classification:
    type_id: int
    subtype_id: int
    other: str | None = None  # the words an "Other" subtype needs (≤ 50 characters)


@dataclass(frozen=True)
class SarCodes:
    classifications: dict[str, tuple[Classification, ...]]  # finwatch typology → entries
    default: tuple[Classification, ...]  # a lead none of whose typologies is mapped
    key_term_subtypes: frozenset[int]
    primary_regulators: dict[str, str]
    tin_types: dict[str, str]
    institution_types: dict[str, str]
    institution_ids: dict[str, str]
    identification: dict[str, dict[str, Any]]  # accounts.id_type → {tin: true} or {code, text}

    def for_typologies(self, typologies: Iterable[str]) -> tuple[Classification, ...]:
        """One entry per subtype (FinCEN refuses a repeated subtype in an activity), sorted by type and subtype."""
        chosen: dict[int, Classification] = {}
        for typology in typologies:
            for entry in self.classifications.get(typology, ()):
                seen = chosen.get(entry.subtype_id)
                if seen is None:
                    chosen[entry.subtype_id] = entry
                elif entry.other and seen.other and entry.other not in seen.other:
                    merged = f"{seen.other}; {entry.other}"
                    if len(merged) <= 50:
                        chosen[entry.subtype_id] = Classification(seen.type_id, seen.subtype_id, merged)
        entries = tuple(chosen.values()) or self.default
        return tuple(sorted(entries, key=lambda c: (c.type_id, c.subtype_id)))


def _belongs(entry: Classification) -> bool:
    """FinCEN's pairing: subtype NNN belongs to type NNN // 100, "Other" T999 to type T."""
    return entry.subtype_id // 100 == entry.type_id or entry.subtype_id == entry.type_id * 1000 + 999


def _classification(where: str, raw: Any) -> Classification:
    if not isinstance(raw, Mapping) or not {"type", "subtype"} <= set(raw):
        raise ConfigError(f"{where}: a mapping with type and subtype expected")
    try:
        entry = Classification(int(raw["type"]), int(raw["subtype"]), str(raw["other"]) if raw.get("other") else None)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: type and subtype must be numbers") from None
    if not _belongs(entry):
        raise ConfigError(f"{where}: subtype {entry.subtype_id} does not belong to type {entry.type_id}")
    if entry.other is not None and (len(entry.other) > 50 or entry.other != " ".join(entry.other.split())):
        raise ConfigError(f"{where}: other must be one line of at most 50 characters")
    if entry.subtype_id % 1000 == 999 and not entry.other:
        raise ConfigError(f"{where}: subtype {entry.subtype_id} (other) needs the words in other")
    return entry


def load_codes(path: Path | None = None) -> SarCodes:
    """The typology → classification mapping and the code tables (default: ``features/fincen/sar-codes.yaml``)."""
    path = path or reference_root() / "fincen" / CODES_FILE
    data = _read_yaml(path)

    def table(key: str) -> dict[str, str]:
        value = data.get(key)
        if not isinstance(value, Mapping) or not value:
            raise ConfigError(f"{path}: {key}: a mapping of names to FinCEN codes expected")
        return {str(k).lower(): str(v) for k, v in value.items()}

    raw = data.get("classifications")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: classifications: a mapping of typologies to lists expected")
    classifications = {
        str(t): tuple(_classification(f"{path}: classifications.{t}[{i}]", e) for i, e in enumerate(entries or []))
        for t, entries in raw.items()
    }
    default = tuple(_classification(f"{path}: default[{i}]", e) for i, e in enumerate(data.get("default") or []))
    if not default:
        raise ConfigError(f"{path}: default: at least one classification expected")
    identification = data.get("identification") or {}
    if not isinstance(identification, Mapping):
        raise ConfigError(f"{path}: identification: a mapping of id types expected")
    return SarCodes(
        classifications=classifications,
        default=default,
        key_term_subtypes=frozenset(int(s) for s in data.get("key_term_subtypes") or []),
        primary_regulators=table("primary_regulators"),
        tin_types=table("tin_types"),
        institution_types=table("institution_types"),
        institution_ids=table("institution_ids"),
        identification={str(k).lower(): dict(v or {}) for k, v in identification.items()},
    )


def _check_codes(codes: SarCodes, schema: Any, xsd: Path) -> None:
    """Every code finwatch would write is one of the schema's enumerations (a newer XSD may drop one)."""
    entries = [*codes.default, *(e for es in codes.classifications.values() for e in es)]
    wanted = {
        "ValidateSuspiciousActivityTypeID": {str(e.type_id) for e in entries},
        "ValidateSuspiciousActivitySubtypeID": {str(e.subtype_id) for e in entries},
        "ValidateFederalRegulatorCodeType": set(codes.primary_regulators.values()),
        "ValidateOrganizationCodeType": set(codes.institution_types.values()),
        "ValidatePartyIdentificationCodeType": {
            *codes.tin_types.values(), *codes.institution_ids.values(), "4", "28", "29",
            *(str(i["code"]) for i in codes.identification.values() if "code" in i),
        },
    }  # fmt: skip
    for type_name, values in wanted.items():
        allowed = schema_enumeration(schema, type_name)
        unknown = sorted(values - allowed)
        if unknown:
            raise ConfigError(f"{xsd}: {type_name} has no code {', '.join(unknown)} (used by {CODES_FILE})")


def schema_enumeration(schema: Any, type_name: str) -> set[str]:
    """The values a simple type of the SAR schema enumerates, as text."""
    try:
        values = schema.types[type_name].enumeration
    except KeyError:
        raise ConfigError(f"the schema has no type {type_name}: not FinCEN's SAR batch schema") from None
    return {str(v) for v in values or ()}


# --- the schema ----------------------------------------------------------------------------------------------------
def load_schema(xsd: Path | None = None, option: str = "--xsd") -> Any:
    """FinCEN's SAR batch schema as an XSD 1.1 validator: local files only, no DOCTYPE or entities."""
    import xmlschema

    xsd = xsd or reference_root() / "fincen" / SCHEMA_FILE
    head = read_option_file(xsd, option)  # a FIFO, a device, a folder or a huge file is refused at once
    if re.search(rb"<!(DOCTYPE|ENTITY)", head, re.IGNORECASE):
        raise FinwatchError(f"{xsd}: refused: it declares a DOCTYPE or entities, which no XSD needs")
    try:
        schema = xmlschema.XMLSchema11(str(xsd), defuse="always", allow="local")
    except (xmlschema.XMLSchemaException, OSError, SyntaxError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise FinwatchError(f"{xsd}: not a usable XSD ({type(exc).__name__}: {message})") from None
    if schema.target_namespace != NAMESPACE or "EFilingBatchXML" not in schema.elements:
        raise FinwatchError(f"{xsd}: not FinCEN's SAR batch schema (no EFilingBatchXML in {NAMESPACE})")
    return schema


# --- the filer file ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Address:
    street: str
    city: str
    state: str | None
    zip: str
    country: str


@dataclass(frozen=True)
class Institution:
    name: str
    tin: str
    tin_type: str  # PartyIdentificationTypeCode
    regulator: str  # PrimaryRegulatorTypeCode
    type_code: str  # OrganizationTypeID
    type_other: str | None
    ids: tuple[tuple[str, str], ...]  # (PartyIdentificationTypeCode, number): RSSD/CRD/…, internal control number
    address: Address
    codes: frozenset[str]  # how the store's institution column names it


@dataclass(frozen=True)
class Filer:
    transmitter_name: str
    tcc: str
    transmitter_tin: str
    transmitter_phone: str
    transmitter_address: Address
    transmitter_contact: str
    filing: Institution
    contact_office: str
    contact_phone: str
    contact_extension: str | None
    activity: Institution  # the filing institution when "same_as_filer"


SAME_AS_FILER = ("same_as_filer", "same as filer", "same-as-filer")
_ADDRESS_KEYS = {"street", "city", "state", "zip", "country"}
_INSTITUTION_KEYS = {"name", "tin", "tin_type", "primary_regulator", "institution_type", "type_other", "id",
                     "internal_control_number", "codes", "address"}  # fmt: skip


class _FilerReader:
    """Reads the filer file; the first problem is refused in one line naming the file and the field."""

    def __init__(self, path: Path, codes: SarCodes) -> None:
        self.path, self.codes = path, codes

    def refuse(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {problem}")

    def block(self, data: Mapping[str, Any], where: str, keys: set[str]) -> Mapping[str, Any]:
        value = data.get(where.rsplit(".", 1)[-1])
        if value is None:
            raise self.refuse(where, "missing")
        if not isinstance(value, Mapping):
            raise self.refuse(where, "a block of fields expected")
        unknown = sorted(str(k) for k in value if k not in keys)
        if unknown:
            raise self.refuse(f"{where}.{unknown[0]}", f"unknown field (expected {', '.join(sorted(keys))})")
        return value

    def raw(self, data: Mapping[str, Any], where: str, *, required: bool = True, digits: bool = False) -> str | None:
        value = data.get(where.rsplit(".", 1)[-1])
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise self.refuse(where, "missing")
            return None
        if digits and not isinstance(value, str):
            raise self.refuse(where, f'write it in quotes ("…"): YAML reads {value!r} as a number, losing zeros')
        if not isinstance(value, str | int):
            raise self.refuse(where, "text expected")
        text = str(value)
        if any(ord(c) < 32 for c in text):
            raise self.refuse(where, "one line of text expected")
        return " ".join(text.split())

    def text(self, data: Mapping[str, Any], where: str, limit: int, *, required: bool = True) -> str | None:
        value = self.raw(data, where, required=required)
        if value is not None and len(value) > limit:
            raise self.refuse(where, f"at most {limit} characters ({len(value)} given)")
        return value

    def number(self, data: Mapping[str, Any], where: str, pattern: str, what: str, *, required: bool = True,
               strip: str = "- ") -> str | None:  # fmt: skip
        value = self.raw(data, where, required=required, digits=True)
        if value is None:
            return None
        cleaned = value.translate({ord(c): None for c in strip})
        if not re.fullmatch(pattern, cleaned):
            raise self.refuse(where, f"{value!r} is not {what}")
        return cleaned

    def phone(self, data: Mapping[str, Any], where: str) -> str:
        value = self.number(data, where, r"\d{10,16}", "a phone number (10 to 16 digits with the area code)",
                            strip="-+ ().")  # fmt: skip
        assert value is not None
        return value

    def code(self, data: Mapping[str, Any], where: str, table: Mapping[str, str]) -> str:
        value = self.raw(data, where)
        assert value is not None
        if value.lower() in table:
            return table[value.lower()]
        if value in table.values():
            return value
        raise self.refuse(where, f"{value!r} is not one of {', '.join(table)} (or their FinCEN codes)")

    def address(self, data: Mapping[str, Any], where: str) -> Address:
        block = self.block(data, where, _ADDRESS_KEYS)
        country = self.number(block, f"{where}.country", r"[A-Za-z]{2}", "a two-letter country code (ISO 3166)")
        assert country is not None
        country = country.upper()
        state = self.number(block, f"{where}.state", r"[A-Za-z]{2,3}", "a state or province code",
                            required=country in STATE_COUNTRIES)  # fmt: skip
        if country == "US":
            zip_code = self.number(block, f"{where}.zip", r"\d{5}|\d{9}", "a US ZIP code (5 or 9 digits)")
        else:
            zip_code = self.number(block, f"{where}.zip", r"[A-Za-z0-9]{1,9}", "a postal code (≤ 9 letters, digits)")
        street = self.text(block, f"{where}.street", 100)
        city = self.text(block, f"{where}.city", 50)
        assert street is not None
        assert city is not None
        assert zip_code is not None
        return Address(street, city, state.upper() if state else None, zip_code.upper(), country)

    def institution(self, data: Mapping[str, Any], where: str) -> Institution:
        block = self.block(data, where, _INSTITUTION_KEYS)
        name = self.text(block, f"{where}.name", 150)
        tin_type = self.code(block, f"{where}.tin_type", self.codes.tin_types)
        foreign = tin_type == self.codes.tin_types.get("foreign")
        tin = (self.number(block, f"{where}.tin", r"[A-Za-z0-9]{1,25}", "a foreign TIN (≤ 25 letters or digits)")
               if foreign else self.number(block, f"{where}.tin", r"\d{9}", "a TIN of 9 digits"))  # fmt: skip
        regulator = self.code(block, f"{where}.primary_regulator", self.codes.primary_regulators)
        type_code = self.code(block, f"{where}.institution_type", self.codes.institution_types)
        type_other = self.text(block, f"{where}.type_other", 50, required=type_code == "999")
        ids: list[tuple[str, str]] = []
        if block.get("id") is not None:
            id_block = self.block(block, f"{where}.id", {"type", "number"})
            id_code = self.code(id_block, f"{where}.id.type", self.codes.institution_ids)
            id_number = self.number(id_block, f"{where}.id.number", r"[A-Za-z0-9]{1,10}",
                                    "an identification number (≤ 10 letters or digits)")  # fmt: skip
            assert id_number is not None
            ids.append((id_code, id_number))
        control = self.text(block, f"{where}.internal_control_number", 20, required=False)
        if control is not None:
            ids.append(("29", control))
        raw_codes = block.get("codes") or []
        if not isinstance(raw_codes, list) or not all(isinstance(c, str) and c.strip() for c in raw_codes):
            raise self.refuse(f"{where}.codes", "a list of institution codes (text) expected")
        assert name is not None
        assert tin is not None
        address = self.address(block, f"{where}.address")
        codes = frozenset(c.strip() for c in raw_codes)
        return Institution(name, tin, tin_type, regulator, type_code, type_other, tuple(ids), address, codes)

    def filer(self, data: Mapping[str, Any]) -> Filer:
        tx = self.block(data, "transmitter", {"name", "tcc", "tin", "phone", "address"})
        name = self.text(tx, "transmitter.name", 150)
        tcc = self.number(tx, "transmitter.tcc", r"[A-Za-z0-9]{8}", "a Transmitter Control Code (8 letters or digits)")
        tin = self.number(tx, "transmitter.tin", r"\d{9}", "a TIN of 9 digits")
        phone = self.phone(tx, "transmitter.phone")
        address = self.address(tx, "transmitter.address")
        contact_block = self.block(data, "transmitter_contact", {"name"})
        contact = self.text(contact_block, "transmitter_contact.name", 150)
        filing = self.institution(data, "filing_institution")
        office = self.block(data, "contact_office", {"name", "phone", "phone_extension"})
        office_name = self.text(office, "contact_office.name", 150)
        office_phone = self.phone(office, "contact_office.phone")
        extension = self.number(office, "contact_office.phone_extension", r"\d{1,6}", "an extension (≤ 6 digits)",
                                required=False)  # fmt: skip
        where = data.get("activity_institution")
        if where is None:
            raise self.refuse("activity_institution", 'missing (give the institution, or "same_as_filer")')
        if isinstance(where, str):
            if where.strip().lower() not in SAME_AS_FILER:
                raise self.refuse("activity_institution", f'{where!r}: give the institution, or "same_as_filer"')
            activity = filing
        else:
            activity = self.institution(data, "activity_institution")
        assert name
        assert tcc
        assert tin
        assert contact
        assert office_name
        return Filer(name, tcc.upper(), tin, phone, address, contact, filing, office_name, office_phone, extension,
                     activity)  # fmt: skip


def load_filer(path: Path, codes: SarCodes | None = None, option: str = "--filer") -> Filer:
    """The filer file (YAML): transmitter, its contact, filing institution, contact office, activity institution."""
    data = _read_yaml(path, option)
    known = {"transmitter", "transmitter_contact", "filing_institution", "contact_office", "activity_institution"}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown field (expected {', '.join(sorted(known))})")
    return _FilerReader(path, codes or load_codes()).filer(data)


def _read_yaml(path: Path, option: str = "") -> Mapping[str, Any]:
    text = read_option_text(path, option)  # a FIFO, a device, a folder or a huge file is refused at once
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a mapping of fields expected")
    return data


# --- text ----------------------------------------------------------------------------------------------------------
def _clean(value: Any, limit: int) -> str | None:
    """One line without leading, trailing or repeated spaces (FinCEN's pattern), cut to ``limit``; None if empty.

    Control and bidirectional characters are visible escapes (:func:`finwatch.sanitize.xml_text`)."""
    if value is None:
        return None
    text = " ".join(xml_text(value).split())[:limit].rstrip()
    return text or None


def _escaped(text: str, holders: Iterable[Mapping[str, Any]]) -> bool:
    """Whether the narrative (which names the ids) or a holder's customer data has a character written as an escape."""
    values = [text, *(v for h in holders for v in h.values() if isinstance(v, str))]
    return any(UNSAFE.search(v.replace("\t", " ").replace("\n", " ").replace("\r", " ")) for v in values)


def _digits(value: Any, limit: int) -> str | None:
    text = re.sub(r"\D", "", str(value)) if value is not None else ""
    return text[:limit] if text else None


def narrative_parts(text: str) -> list[str]:
    """The narrative as FinCEN's blocks: at most five, 4,000 characters each (the fifth 1,000), split at line ends.

    A longer narrative is cut to fit and says so at its end.
    """
    text = xml_text(text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")).strip()
    total = sum(NARRATIVE_LIMITS)
    if len(text) > total:  # conservative: splitting at line ends may need a few characters more
        text = text[: total - len(TRUNCATED) - 200].rstrip() + TRUNCATED
    parts: list[str] = []
    rest = text
    for limit in NARRATIVE_LIMITS:
        if not rest:
            break
        if len(rest) <= limit:
            parts.append(rest)
            rest = ""
            break
        window = rest[: limit + 1]
        cut = window.rfind("\n")
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].strip()
    if rest:  # only when line ends fell badly: cut the last block hard
        parts[-1] = parts[-1][: NARRATIVE_LIMITS[len(parts) - 1] - len(TRUNCATED)].rstrip() + TRUNCATED
    return [p for p in parts if p] or ["(no narrative)"]


# --- the store's data ----------------------------------------------------------------------------------------------
def _holders(accounts: pl.LazyFrame, wanted: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Account id → its holders (primary first), every customer-data column read by name (absent: None)."""
    present = set(accounts.collect_schema().names())
    rows = (
        accounts.filter(pl.col("account_id").is_in(list(wanted)))
        .select(
            [pl.col(c) if c in present else pl.lit(None).alias(c) for c in ACCOUNT_COLUMNS if c != "source_row"],
            source_row=pl.col("source_row") if "source_row" in present else pl.lit(0),
        )
        .collect()
        .sort(["account_id", "source_row"], nulls_last=True)
    )
    holders: dict[str, list[dict[str, Any]]] = {}
    for row in rows.iter_rows(named=True):
        mine = holders.setdefault(row["account_id"], [])
        key = {k: v for k, v in row.items() if k != "source_row"}
        if key not in ({k: v for k, v in h.items() if k != "source_row"} for h in mine):  # a batch read twice
            mine.append(row)
    return holders


def _usd(txns: pl.DataFrame, base: str, fx: Any) -> pl.DataFrame:
    """``txn_id, usd``: each transaction's amount in US dollars (its base amount when the store's base is USD)."""
    if base == "USD":
        return txns.select("txn_id", usd=pl.col("amount_base"))
    pairs = txns.select("txn_id", "amount", "currency", date=pl.col("ts").dt.date())
    rates = fx.rate_to(pairs.select("date", "currency").unique(), "USD")
    priced = pairs.join(rates, on=["date", "currency"], how="left")
    missing = priced.filter(pl.col("rate").is_null()).sort(["date", "currency"])
    if missing.height:
        first = missing.row(0, named=True)
        raise FinwatchError(
            f"the store's base currency is {base} and its FX table has no USD rate for {first['currency']} on "
            f"{first['date']} ({missing.height} evidence transaction(s) without one): FinCEN needs the amount in "
            "US dollars; re-ingest with an FX table (--fx) that has USD"
        )
    return priced.select("txn_id", usd=pl.col("amount").cast(pl.Float64) * pl.col("rate"))


def _whole_dollars(total: float) -> int:
    """FinCEN wants whole dollars, rounded up ($5,265.25 → 5266); cents first, so float noise adds no dollar."""
    cents = Decimal(repr(total)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return math.ceil(cents)


def _bic_country(code: str | None) -> str | None:
    """The country of a BIC (letters 5-6), if ``code`` looks like one."""
    if code and re.fullmatch(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?", code):
        return code[4:6]
    return None


# --- the batch -----------------------------------------------------------------------------------------------------
@dataclass
class _Doc:
    """Builds the batch in document order, so that SeqNum values increase through the file."""

    seq: int = 0

    def el(self, parent: etree._Element, tag: str, text: str | None = None, *, seq: bool = False) -> etree._Element:
        node = etree.SubElement(parent, f"{{{NAMESPACE}}}{tag}")
        if seq:
            self.seq += 1
            node.set("SeqNum", str(self.seq))
        if text is not None:
            node.text = xml_text(text)
        return node

    def yes(self, parent: etree._Element, tag: str, flag: bool = True) -> None:
        if flag:
            self.el(parent, tag, "Y")

    def party(self, activity: etree._Element, code: str) -> etree._Element:
        node = self.el(activity, "Party", seq=True)
        self.el(node, "ActivityPartyTypeCode", code)
        return node

    def full_name(self, party: etree._Element, name: str) -> None:
        node = self.el(party, "PartyName", seq=True)
        self.el(node, "PartyNameTypeCode", "L")
        self.el(node, "RawPartyFullName", _clean(name, 150))

    def address(self, party: etree._Element, a: Address) -> None:
        node = self.el(party, "Address", seq=True)
        self.el(node, "RawCityText", a.city)
        self.el(node, "RawCountryCodeText", a.country)
        if a.state:
            self.el(node, "RawStateCodeText", a.state)
        self.el(node, "RawStreetAddress1Text", a.street)
        self.el(node, "RawZIPCode", a.zip)

    def phone(self, party: etree._Element, number: str, extension: str | None = None) -> None:
        node = self.el(party, "PhoneNumber", seq=True)
        if extension:
            self.el(node, "PhoneNumberExtensionText", extension)
        self.el(node, "PhoneNumberText", number)

    def identification(self, party: etree._Element, number: str, code: str) -> None:
        node = self.el(party, "PartyIdentification", seq=True)
        self.el(node, "PartyIdentificationNumberText", number)
        self.el(node, "PartyIdentificationTypeCode", code)

    def institution(self, activity: etree._Element, code: str, inst: Institution) -> None:
        party = self.party(activity, code)
        if code == "34":
            self.yes(party, "NoBranchActivityInvolvedIndicator")  # finwatch knows no branch addresses
        self.el(party, "PrimaryRegulatorTypeCode", inst.regulator)
        self.full_name(party, inst.name)
        self.address(party, inst.address)
        self.identification(party, inst.tin, inst.tin_type)
        for id_code, number in inst.ids:
            self.identification(party, number, id_code)
        kind = self.el(party, "OrganizationClassificationTypeSubtype", seq=True)
        self.el(kind, "OrganizationTypeID", inst.type_code)
        if inst.type_other:
            self.el(kind, "OtherOrganizationTypeText", inst.type_other)


@dataclass
class _Context:
    filer: Filer
    codes: SarCodes
    doc: _Doc = field(default_factory=_Doc)
    notes: list[str] = field(default_factory=list)


def _filer_parties(ctx: _Context, activity: etree._Element) -> None:
    f, doc = ctx.filer, ctx.doc
    party = doc.party(activity, "35")
    doc.full_name(party, f.transmitter_name)
    doc.address(party, f.transmitter_address)
    doc.phone(party, f.transmitter_phone)
    doc.identification(party, f.transmitter_tin, "4")
    doc.identification(party, f.tcc, "28")
    party = doc.party(activity, "37")
    doc.full_name(party, f.transmitter_contact)
    doc.institution(activity, "30", f.filing)
    party = doc.party(activity, "8")
    doc.full_name(party, f.contact_office)
    doc.phone(party, f.contact_phone, f.contact_extension)
    doc.institution(activity, "34", f.activity)


def _names(holder: Mapping[str, Any], entity: bool) -> tuple[str | None, str | None]:
    """(last name or entity name, first name): KYC columns first, else the holder name split at its last space."""
    full = _clean(holder.get("holder_name"), 150)
    if entity:
        return full, None
    family, given = _clean(holder.get("family_name"), 150), _clean(holder.get("given_name"), 35)
    if family is None and given is None and full is not None:
        head, _, tail = full.rpartition(" ")
        family, given = (tail, _clean(head, 35)) if head else (full, None)
    return family, given


def _subject(ctx: _Context, activity: etree._Element, holder: Mapping[str, Any], lead: Mapping[str, Any]) -> None:
    doc, codes = ctx.doc, ctx.codes
    entity = str(holder.get("holder_type") or "").lower() in ENTITY_HOLDERS
    last, first = _names(holder, entity)
    country = _clean(holder.get("country"), 2)
    country = country.upper() if country and re.fullmatch(r"[A-Za-z]{2}", country) else None
    state = _clean(holder.get("state"), 3)
    city, street = _clean(holder.get("city"), 50), _clean(holder.get("address"), 100)
    zip_code = _clean(re.sub(r"[\s-]", "", str(holder["postcode"])) if holder.get("postcode") else None, 9)
    born = holder.get("birth_date")
    born_text = born.strftime("%Y%m%d") if isinstance(born, dt.date) and 1900 <= born.year <= 2099 else None
    id_type = str(holder.get("id_type") or "").lower()
    id_number = _clean(holder.get("id_number"), 25)
    id_rule = codes.identification.get(id_type, {}) if id_number else {}
    id_country = _clean(holder.get("id_country"), 2)
    id_country = id_country.upper() if id_country and re.fullmatch(r"[A-Za-z]{2}", id_country) else None
    tin = id_number if id_rule.get("tin") else None
    critical = [last, first, street, city, zip_code, tin] + ([] if entity else [born_text])
    gender = str(holder.get("gender") or "").strip().lower()

    party = doc.party(activity, "33")
    doc.yes(party, "AllCriticalSubjectInformationUnavailableIndicator", not any(critical))
    doc.yes(party, "BirthDateUnknownIndicator", not entity and born_text is None)
    doc.yes(party, "FemaleGenderIndicator", not entity and gender in ("f", "female"))
    if not entity and born_text:
        doc.el(party, "IndividualBirthDateText", born_text)
    doc.yes(party, "MaleGenderIndicator", not entity and gender in ("m", "male"))
    account_known = _account_number(holder) is not None and holder.get("kind") != "crypto_address"
    doc.yes(party, "NoKnownAccountInvolvedIndicator", not account_known)
    doc.yes(party, "PartyAsEntityOrganizationIndicator", entity)
    doc.yes(party, "UnknownGenderIndicator", not entity and gender not in ("f", "female", "m", "male"))

    name = doc.el(party, "PartyName", seq=True)
    doc.yes(name, "EntityLastNameUnknownIndicator", last is None)
    doc.yes(name, "FirstNameUnknownIndicator", not entity and first is None)
    doc.el(name, "PartyNameTypeCode", "L")
    if last:
        doc.el(name, "RawEntityIndividualLastName", last)
    if first:
        doc.el(name, "RawIndividualFirstName", first)

    address = doc.el(party, "Address", seq=True)
    doc.yes(address, "CityUnknownIndicator", city is None)
    doc.yes(address, "CountryCodeUnknownIndicator", country is None)
    for tag, value in (("RawCityText", city), ("RawCountryCodeText", country), ("RawStateCodeText", state),
                       ("RawStreetAddress1Text", street), ("RawZIPCode", zip_code)):  # fmt: skip
        if value:
            doc.el(address, tag, value)
    doc.yes(address, "StateCodeUnknownIndicator", state is None and (country is None or country in STATE_COUNTRIES))
    doc.yes(address, "StreetAddressUnknownIndicator", street is None)
    doc.yes(address, "ZIPCodeUnknownIndicator", zip_code is None)

    phone = _digits(holder.get("phone"), 16)
    if phone:
        doc.phone(party, phone)

    tin_node = doc.el(party, "PartyIdentification", seq=True)
    if tin:
        us = (id_country or country) == "US"
        doc.el(tin_node, "PartyIdentificationNumberText", _clean(re.sub(r"[\s-]", "", tin), 25) if us else tin)
        doc.el(tin_node, "PartyIdentificationTypeCode", ("2" if entity else "1") if us else "9")
    else:
        doc.yes(tin_node, "TINUnknownIndicator")
    id_node = doc.el(party, "PartyIdentification", seq=True)
    if id_rule.get("code") and id_number:
        if id_country:
            doc.el(id_node, "OtherIssuerCountryText", id_country)
        if id_rule.get("text"):
            doc.el(id_node, "OtherPartyIdentificationTypeText", _clean(id_rule["text"], 50))
        doc.el(id_node, "PartyIdentificationNumberText", id_number)
        doc.el(id_node, "PartyIdentificationTypeCode", str(id_rule["code"]))
    else:
        doc.yes(id_node, "IdentificationPresentUnknownIndicator")

    occupation = _clean(holder.get("occupation"), 50)
    if occupation:
        node = doc.el(party, "PartyOccupationBusiness", seq=True)
        doc.el(node, "OccupationBusinessText", occupation)

    institution = _holding_institution(ctx, holder)
    own = holder.get("own_client")
    if own is not None:  # relationship to the institution where the activity occurred; unknown: left out
        node = doc.el(party, "PartyAssociation", seq=True)
        doc.yes(node, "CustomerIndicator", bool(own))
        doc.yes(node, "NoRelationshipToInstitutionIndicator", not own)
        doc.el(node, "SubjectRelationshipFinancialInstitutionTINText", ctx.filer.activity.tin)
    if account_known:
        number = _account_number(holder)
        assert number is not None
        association = doc.el(party, "PartyAccountAssociation", seq=True)
        doc.el(association, "PartyAccountAssociationTypeCode", "7")
        held = doc.party(association, "41")
        country_of_bank = _bic_country(holder.get("institution"))
        doc.yes(held, "NonUSFinancialInstitutionIndicator", institution is None and country_of_bank not in (None, "US"))
        if institution is not None:
            doc.identification(held, institution.tin, "4")
        else:
            where = holder.get("institution") or "unknown"
            ctx.notes.append(f"{lead['subject_id']}: TIN of the institution holding the account ({where}) is not "
                             "known: add it before filing")  # fmt: skip
        account = doc.el(held, "Account", seq=True)
        doc.el(account, "AccountNumberText", number)
        link = doc.el(account, "PartyAccountAssociation", seq=True)
        doc.yes(link, "AccountClosedIndicator", str(holder.get("status") or "").lower() == "closed")
        doc.el(link, "PartyAccountAssociationTypeCode", "5")
    elif holder.get("kind") != "crypto_address" and len(str(holder.get("account_id"))) > 40:
        ctx.notes.append(f"{lead['subject_id']}: account number longer than FinCEN's 40 characters: in the narrative")


def _account_number(holder: Mapping[str, Any]) -> str | None:
    number = _clean(holder.get("account_id"), 41)
    return number if number and len(number) <= 40 else None


def _holding_institution(ctx: _Context, holder: Mapping[str, Any]) -> Institution | None:
    """The filer's institution that holds the account: named by the store's institution code, or own client."""
    code = holder.get("institution")
    for inst in (ctx.filer.activity, ctx.filer.filing):
        if code and code in inst.codes:
            return inst
    return ctx.filer.activity if holder.get("own_client") else None


def _suspicious_activity(ctx: _Context, activity: etree._Element, mine: pl.DataFrame, lead: Mapping[str, Any],
                         classifications: Sequence[Classification]) -> int:  # fmt: skip
    """The SuspiciousActivity element; returns the amount recorded (whole dollars)."""
    doc = ctx.doc
    node = doc.el(activity, "SuspiciousActivity", seq=True)
    amount = _whole_dollars(float(mine["usd"].sum())) if mine.height else 0
    first: Any
    last: Any
    if not mine.height:
        ctx.notes.append(f"{lead['subject_id']}: no evidence transactions: amount unknown, dates are the as-of date")
        doc.yes(node, "AmountUnknownIndicator")
        first = last = dt.datetime.fromisoformat(str(lead["as_of"]))
    else:
        doc.yes(node, "NoAmountInvolvedIndicator", amount == 0)
        first, last = mine["ts"].min(), mine["ts"].max()
    assert isinstance(first, dt.datetime)
    assert isinstance(last, dt.datetime)
    doc.el(node, "SuspiciousActivityFromDateText", first.astimezone(dt.UTC).strftime("%Y%m%d"))
    doc.el(node, "SuspiciousActivityToDateText", last.astimezone(dt.UTC).strftime("%Y%m%d"))
    if amount:
        doc.el(node, "TotalSuspiciousAmountText", str(amount))
    for entry in classifications:
        item = doc.el(node, "SuspiciousActivityClassification", seq=True)
        if entry.other:
            doc.el(item, "OtherSuspiciousActivityTypeText", entry.other)
        doc.el(item, "SuspiciousActivitySubtypeID", str(entry.subtype_id))
        doc.el(item, "SuspiciousActivityTypeID", str(entry.type_id))
    return amount


def _narrative(lead: Mapping[str, Any], txns: pl.DataFrame, law: Mapping[str, str], holder: Mapping[str, Any] | None,
               currency: str) -> str:  # fmt: skip
    """:func:`finwatch.export.narrative`, with ``holder=`` and ``currency=`` where its signature has them."""
    parameters = inspect.signature(narrative).parameters
    extra: dict[str, Any] = {}
    if "currency" in parameters:
        extra["currency"] = currency
    if "holder" in parameters:
        note = str(parameters["holder"].annotation)
        wants_text = "str" in note and not any(k in note for k in ("Mapping", "dict", "Any"))
        extra["holder"] = (holder or {}).get("holder_name") if wants_text else (dict(holder) if holder else None)
    return narrative(dict(lead), txns, law, **extra)


@dataclass(frozen=True)
class SarResult:
    path: Path  # the batch file
    xsd: Path
    activities: int
    subjects: int
    total_amount: int  # whole US dollars
    errors: list[dict[str, str]]  # schema errors: path, reason
    notes: list[str]  # what an analyst must add or check before filing

    @property
    def valid(self) -> bool:
        return not self.errors


def export_fincen_sar(
    run: RunFolder,
    filer_file: Path,
    out: Path | None = None,
    *,
    store: Path | None = None,
    xsd: Path | None = None,
    codes_file: Path | None = None,
) -> SarResult:
    """Write ``sar-batch.xml`` and ``validation.json`` for a run (default folder ``RUN/fincen``), atomically."""
    leads = run.leads().sort("rank")
    if leads.height == 0:
        raise FinwatchError(f"{run.path}: the run has no leads; a SAR batch needs at least one activity")
    xsd = xsd or reference_root() / "fincen" / SCHEMA_FILE
    schema = load_schema(xsd)
    codes = load_codes(codes_file)
    _check_codes(codes, schema, xsd)
    filer = load_filer(filer_file, codes)
    source = run.store(store)
    base = source.settings().base_currency.upper()
    law = {**US_LAW, **(run.info.get("law") or {}), "trafficking_key_term": KEY_TERM}
    as_of = dt.datetime.fromisoformat(run.as_of).astimezone(dt.UTC)
    wanted = sorted({t for ids in leads["evidence_txn_ids"].to_list() for t in ids})
    subject_ids = sorted(set(leads["subject_id"].to_list()))
    recent = (pl.col("ts") > as_of - NARRATIVE_PERIOD) & (pl.col("ts") <= as_of)
    theirs = pl.col("src_account").is_in(subject_ids) | pl.col("dst_account").is_in(subject_ids)
    txns = (
        source.scan("transactions")
        .filter(pl.col("txn_id").is_in(wanted) | (recent & theirs))
        .collect()
        .unique("txn_id", keep="first")
        .sort(["ts", "txn_id"])
    )
    evidence = txns.filter(pl.col("txn_id").is_in(wanted))
    evidence = evidence.join(_usd(evidence, base, source.fx_table() if base != "USD" else None), on="txn_id")
    holders = _holders(source.scan("accounts"), subject_ids)
    filing_date = as_of.strftime("%Y%m%d")

    ctx = _Context(filer, codes)
    doc = ctx.doc
    root = etree.Element(f"{{{NAMESPACE}}}EFilingBatchXML", nsmap={"fc2": NAMESPACE})
    for attribute in ("ActivityCount", "TotalAmount", "PartyCount", "ActivityAttachmentCount", "AttachmentCount"):
        root.set(attribute, "0")  # filled in below; set now to fix their order
    doc.el(root, "FormTypeCode", "SARX")
    total, subjects = 0, 0
    notes: dict[str, list[str]] = {}
    for lead in leads.iter_rows(named=True):
        ctx.notes = []
        mine = evidence.filter(pl.col("txn_id").is_in(list(lead["evidence_txn_ids"])))
        classifications = codes.for_typologies(lead["typologies"])
        trafficking = any(c.subtype_id in codes.key_term_subtypes for c in classifications)
        people = holders.get(lead["subject_id"]) or [{"account_id": lead["subject_id"]}]
        activity = doc.el(root, "Activity", seq=True)
        doc.el(activity, "FilingDateText", filing_date)
        if trafficking:
            doc.el(activity, "FilingInstitutionNotetoFinCEN", KEY_TERM)
        association = doc.el(activity, "ActivityAssociation", seq=True)
        doc.yes(association, "InitialReportIndicator")
        _filer_parties(ctx, activity)
        for holder in people:
            _subject(ctx, activity, holder, lead)
        subjects += len(people)
        total += _suspicious_activity(ctx, activity, mine, lead, classifications)
        text = _narrative(lead, txns, law, people[0] if holders.get(lead["subject_id"]) else None, base)
        if trafficking and KEY_TERM not in text:
            text = f"{KEY_TERM}\n\n{text}"
        if _escaped(text, people):
            ctx.notes.append(f"{lead['subject_id']}: control or bidirectional characters in its ids or customer data "
                             "are written as visible escapes (such as \\x1b or \\u202e): check them")  # fmt: skip
        parts = narrative_parts(text)
        if parts[-1].endswith(TRUNCATED):
            ctx.notes.append(f"{lead['subject_id']}: narrative cut to FinCEN's 17,000 characters")
        for number, part in enumerate(parts, start=1):
            node = doc.el(activity, "ActivityNarrativeInformation", seq=True)
            doc.el(node, "ActivityNarrativeSequenceNumber", str(number))
            doc.el(node, "ActivityNarrativeText", part)
        if ctx.notes:
            notes[lead["lead_id"]] = ctx.notes
    root.set("ActivityCount", str(leads.height))
    root.set("TotalAmount", str(total))
    root.set("PartyCount", str(subjects))

    data = b'<?xml version="1.0" encoding="UTF-8"?>\n' + bytes(etree.tostring(root, encoding="UTF-8",
                                                                              pretty_print=True))  # fmt: skip
    errors = [
        {"path": str(error.path or ""), "reason": str(getattr(error, "reason", None) or error.message)}
        for error in schema.iter_errors(etree.fromstring(data))
    ]
    target = out or run.path / "fincen"
    report = {"batch": BATCH_FILE, "xsd": xsd.name, "valid": not errors, "activities": leads.height,
              "subjects": subjects, "total_amount_usd": total, "errors": errors,
              "notes": notes}  # fmt: skip
    with atomic_directory(target, marker=MARKER) as staging:
        (staging / BATCH_FILE).write_bytes(data)
        (staging / MARKER).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    all_notes = [n for lead_notes in notes.values() for n in lead_notes]
    return SarResult(target.resolve() / BATCH_FILE, xsd, leads.height, subjects, total, errors, all_notes)
