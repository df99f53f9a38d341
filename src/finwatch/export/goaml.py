"""goAML drafts: one suspicious-transaction report (STR) per lead, written for and validated against the FIU's XSD.

FIUs running UNODC's goAML publish their own schema and code lists. The user gives that XSD and a mapping (YAML,
see ``features/goaml/mapping.example.yaml``): the reporting entity's fixed fields, and the FIU's codes for
finwatch's channels, typologies, holder types, account statuses and identity documents. The mapping's codes are
checked against the schema's own code lists (:func:`check_mapping`).

Per lead: ``<lead_id>.xml`` and ``<lead_id>.txt`` (the narrative, also the report's ``reason``). In the draft the
subject's account is the institution's own client (``t_from_my_client``/``t_to_my_client`` with
``t_account_my_client``, its holders as signatories, a business holder as the account's entity), from the store's
accounts table and its customer-data columns; an account the table marks as not the institution's client
(``own_client`` false) is a third party like the counterparties (``t_from``/``t_to`` with the account and its
institution: the BIC as ``swift`` when the institution is one). A cash leg's party is the person or business on the
account's side. Every transaction has its location, description and a country on both legs; amounts are in the
store's base currency (the local currency), with the transaction's own currency as ``foreign_currency`` when the
schema lists it.

Everything the schema requires comes from the data or the mapping, or the draft lists it as missing:
``validation.json`` names, per lead, every missing or invalid field with its path (found in one pass by walking
the schema's content models, then confirmed by the validator), and every place a mapping default or stand-in was
written. A value from the data with characters XML cannot hold or that change how text reads (a NUL, an escape
character, a right-to-left override) is written with visible escapes (``\\x00``, ``\\u202e``:
:func:`finwatch.sanitize.xml_text`), so that every lead gets its draft; ``validation.json`` lists each such field
under ``altered``. The narrative file gets the same escapes. Drafts are for an analyst to complete and file, never
sent automatically.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl
from lxml import etree

from finwatch._io import atomic_directory
from finwatch.config import US_LAW
from finwatch.exceptions import ConfigError
from finwatch.export._mapping import GoamlMapping, check_mapping, load_mapping
from finwatch.export._xsd import GoamlSchema, Placeholder, Written
from finwatch.export.narrative import PERIOD, narrative
from finwatch.runs import RunFolder
from finwatch.sanitize import xml_text
from finwatch.store import Store

__all__ = ["BIC", "GoamlDraft", "draft", "export_goaml"]

#: a BIC (ISO 9362): bank, country, location and an optional branch code
BIC = re.compile(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?")
_TXN_COLUMNS = ("txn_id", "ts", "src_account", "dst_account", "src_institution", "dst_institution", "amount",
                "currency", "amount_base", "channel", "mcc", "counterparty_name", "description", "country", "city",
                "branch", "chain")  # fmt: skip
_KYC = ("holder_name", "holder_type", "kind", "institution", "country", "city", "currency", "opened_date",
        "given_name", "family_name", "birth_date", "id_type", "id_number", "id_country", "address", "postcode",
        "phone", "occupation", "status", "branch", "own_client", "client_number")  # fmt: skip
_PHONE = re.compile(r"^\s*(?:\+|00)(\d{1,4})[\s./-]*(.+?)\s*$")
_PERSON_TYPES = frozenset({"person"})


class GoamlDraft:
    """The goAML data of one lead: the report as element name → value, dict or list, for the schema to order."""

    def __init__(
        self,
        lead: Mapping[str, Any],
        evidence: pl.DataFrame,
        accounts: Mapping[str, list[dict[str, Any]]],
        mapping: GoamlMapping,
        base: str,
        schema: GoamlSchema,
        text: str,
    ) -> None:
        self.lead = lead
        self.evidence = evidence
        self.accounts = accounts
        self.mapping = mapping
        self.base = base
        self.schema = schema
        self.text = text
        self.subject = str(lead["subject_id"])
        self.rows = list(accounts.get(self.subject, []))
        self.primary = self.rows[0] if self.rows else {}
        #: the subject is the institution's client unless the accounts table says it is not
        self.my_client = self.primary.get("own_client") is not False
        self._currencies = set(schema.allowed("t_foreign_currency/foreign_currency_code") or [])

    # --- the report -------------------------------------------------------------------------------------------
    def data(self) -> dict[str, Any]:
        report = {k: v for k, v in self.mapping.report.items() if v is not None}
        limit = self.schema.max_length("report/reason") or 8000
        reason = self.text if len(self.text) <= limit else self._cut(self.text, limit)
        branch = self.primary.get("branch") if self.my_client else None
        data: dict[str, Any] = {
            **report,
            "rentity_branch": branch or self._default(report.get("rentity_branch"), "report.rentity_branch"),
            "entity_reference": self.lead["lead_id"],
            "submission_date": _when(_as_of(self.lead["as_of"])),
            "currency_code_local": self.base,
            "reason": reason,
            "transaction": [self._transaction(t) for t in self.evidence.iter_rows(named=True)],
            "report_indicators": {"indicator": self._indicators()},
        }
        location = report.get("location")
        data["location"] = dict(location) if isinstance(location, Mapping) else None
        return data

    def _indicators(self) -> list[str]:
        codes = sorted({c for t in self.lead.get("typologies") or [] for c in self.mapping.indicators.get(t, [])})
        return codes or list(self.mapping.indicators.get("default", []))

    def _cut(self, text: str, limit: int) -> str:
        note = f"\n… (cut to fit; the whole narrative is in {self.lead['lead_id']}.txt)"
        return text[: limit - len(note)] + note

    # --- one transaction ----------------------------------------------------------------------------------------
    def _transaction(self, t: dict[str, Any]) -> dict[str, Any]:
        channel = t["channel"]
        node: dict[str, Any] = {
            "transactionnumber": t["txn_id"],
            "transaction_location": _location(t) or self._default_of("transaction_location"),
            "transaction_description": self._description(t) or self._default_of("transaction_description"),
            "date_transaction": _when(t["ts"]),
            "transmode_code": self.mapping.code("transmode", channel),
            "transmode_comment": str(channel)[:50],
            "amount_local": _money(t["amount_base"]),
            "comments": self._supports(t["txn_id"]),
        }
        sides = (("from", t["src_account"], t["src_institution"], t["dst_account"]),
                 ("to", t["dst_account"], t["dst_institution"], t["src_account"]))  # fmt: skip
        for side, account, institution, other in sides:
            key, leg = self._leg(side, t, account, institution, other)
            node[key] = leg
        return node

    def _leg(
        self, side: str, t: dict[str, Any], account: str | None, institution: str | None, other: str | None
    ) -> tuple[str, dict[str, Any]]:
        leg: dict[str, Any] = {f"{side}_funds_code": self.mapping.code("funds", t["channel"])}
        if side == "from":
            leg["from_foreign_currency"] = self._foreign(t)
        if account is None:  # cash: the party is the holder on the account's side of the transaction
            holder_account = other
            mine = holder_account == self.subject and self.my_client
            rows = self.accounts.get(holder_account or "", [])
            business = _business_row(rows)
            if business is not None and not _person_rows(rows):
                leg[f"{side}_entity"] = self._entity(business, rows) if mine else _third_entity(business)
            elif rows:
                person = (_person_rows(rows) or rows)[0]
                leg[f"{side}_person"] = self._person(person) if mine else _third_person(person)
            leg[f"{side}_country"] = self._country(t.get("country"), (rows[0] if rows else {}).get("country"))
            return (f"t_{side}_my_client" if mine else f"t_{side}"), leg
        mine = account == self.subject and self.my_client
        rows = self.accounts.get(account, [])
        row = rows[0] if rows else {}
        leg[f"{side}_account"] = self._my_account() if mine else self._third_account(account, institution, row, t, side)
        bic = _bic(institution) or _bic(row.get("institution"))
        leg[f"{side}_country"] = self._country(row.get("country"), bic[4:6] if bic else None, t.get("country"))
        return (f"t_{side}_my_client" if mine else f"t_{side}"), leg

    def _foreign(self, t: dict[str, Any]) -> dict[str, Any] | None:
        code = self._currency(t.get("currency"))
        amount = t.get("amount")
        if code is None or code == self.base or code not in self._currencies or not amount:
            return None
        rate = Decimal(repr(float(t["amount_base"]))) / Decimal(amount)
        return {"foreign_currency_code": code, "foreign_amount": _decimal(Decimal(amount), 13),
                "foreign_exchange_rate": _decimal(rate, 6)}  # fmt: skip

    def _description(self, t: dict[str, Any]) -> str:
        parts = [str(t.get("description") or t["channel"])]
        if t.get("counterparty_name"):
            parts.append(f"counterparty {t['counterparty_name']}")
        if t.get("mcc"):
            parts.append(f"MCC {t['mcc']}")
        currency = t.get("currency")
        if currency and currency != self.base and t.get("amount") is not None:
            parts.append(f"{_plain(Decimal(t['amount']))} {currency} (≈ {_money(t['amount_base'])} {self.base})")
        if t.get("chain"):
            parts.append(f"on {t['chain']}")
        return "; ".join(parts)

    def _supports(self, txn_id: str) -> str | None:
        labels = []
        for reason in _reasons(self.lead.get("reasons")):
            if txn_id in (reason.get("evidence_txn_ids") or []):
                label = reason.get("rule_id") or reason.get("feature") or "a reason"
                labels.append(str(label))
        return f"Evidence for: {', '.join(dict.fromkeys(labels))}" if labels else None

    # --- the subject as the institution's client ----------------------------------------------------------------
    def _my_account(self) -> dict[str, Any]:
        p = self.primary
        institution = self.mapping.section("institution")
        bic = _bic(p.get("institution"))
        held_at = p.get("institution")
        listed = self.mapping.section("institutions").get(str(held_at)) if held_at else None
        listed = listed.get("name") if isinstance(listed, Mapping) else listed
        name = listed or institution.get("name") or self._institution_name(p.get("institution"))
        swift = bic or institution.get("swift")
        persons = _person_rows(self.rows)
        business = _business_row(self.rows)
        client = p.get("client_number")
        if not client and 0 < len(self.subject) <= 30:
            client = Placeholder(self.subject, "the account id (the store has no customer number)")
        return {
            "institution_name": name,
            "swift": swift,
            "institution_code": None if swift else institution.get("institution_code"),
            "branch": p.get("branch") or self._default(institution.get("branch"), "institution.branch"),
            "account": self.subject,
            "currency_code": self._currency(p.get("currency")),
            "account_name": p.get("holder_name"),
            "client_number": client,
            "personal_account_type": self._code("account_type", p.get("holder_type") or p.get("kind")),
            "t_entity": self._entity(business, self.rows) if business is not None else None,
            "signatory": [
                {"is_primary": "1", "t_person": self._person(r), "role": _str(self.mapping.value("signatory_role"))}
                for r in persons
            ],
            "opened": _date(p.get("opened_date")),
            "status_code": self._code("account_status", p.get("status")),
        }

    def _person(self, r: Mapping[str, Any]) -> dict[str, Any]:
        person = self.mapping.section("person")
        ssn_types = set(person.get("ssn_id_types", ["national_id", "tax_id"]))
        nationality_types = set(person.get("nationality_id_types", ["passport", "national_id"]))
        id_type, number, issuer = r.get("id_type"), r.get("id_number"), r.get("id_country")
        passport = id_type == "passport" and number
        return {
            "first_name": r.get("given_name"),
            "last_name": r.get("family_name"),
            "birthdate": _date(r.get("birth_date")),
            "ssn": number if id_type in ssn_types else None,
            "passport_number": number if passport else None,
            "passport_country": issuer if passport else None,
            "id_number": number if number and id_type not in ssn_types and not passport else None,
            "nationality1": issuer if id_type in nationality_types else None,
            "residence": r.get("country"),
            "phones": self._phones(r.get("phone")),
            "addresses": self._addresses(r),
            "occupation": r.get("occupation"),
            "identification": self._identification(r),
        }

    def _entity(self, r: Mapping[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
        entity = self.mapping.section("entity")
        number_types = set(entity.get("incorporation_id_types", ["company_registration"]))
        tax_types = set(entity.get("tax_id_types", ["tax_id"]))
        role = _str(self.mapping.value("director_role"))
        return {
            "name": r.get("holder_name"),
            "commercial_name": r.get("holder_name"),
            "incorporation_legal_form": self._code("legal_form", r.get("holder_type")),
            "incorporation_number": r.get("id_number") if r.get("id_type") in number_types else None,
            "business": r.get("occupation"),
            "phones": self._phones(r.get("phone")),
            "addresses": self._addresses(r),
            "incorporation_country_code": r.get("id_country"),
            "director_id": [{**self._person(p), "role": role} for p in _person_rows(rows)],
            "incorporation_date": _date(r.get("birth_date")),
            "tax_number": r.get("id_number") if r.get("id_type") in tax_types else None,
        }

    def _phones(self, phone: Any) -> dict[str, Any] | None:
        if not phone:
            return None
        match = _PHONE.match(str(phone))
        settings = self.mapping.section("phone")
        return {"phone": [{
            "tph_contact_type": _str(settings.get("contact_type")),
            "tph_communication_type": _str(settings.get("communication_type")),
            "tph_country_prefix": match.group(1) if match else None,
            "tph_number": match.group(2) if match else str(phone),
        }]}  # fmt: skip

    def _addresses(self, r: Mapping[str, Any]) -> dict[str, Any] | None:
        if not r.get("address"):
            return None
        return {"address": [{
            "address_type": _str(self.mapping.value("address_type")),
            "address": r.get("address"),
            "city": r.get("city"),
            "zip": r.get("postcode"),
            "country_code": r.get("country"),
        }]}  # fmt: skip

    def _identification(self, r: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        if not r.get("id_number") or not r.get("id_type"):
            return None
        return [{"type": self._code("identifier_type", r.get("id_type")), "number": r.get("id_number"),
                 "issue_country": r.get("id_country")}]  # fmt: skip

    # --- third parties ------------------------------------------------------------------------------------------
    def _third_account(
        self, account: str, institution: str | None, row: Mapping[str, Any], t: Mapping[str, Any], side: str
    ) -> dict[str, Any]:
        unknown = self.mapping.section("unknown")
        held_at = institution or row.get("institution")
        bic = _bic(held_at)
        name = self._institution_name(held_at)
        code = None if bic else self._institution_code(held_at)
        if not bic and not code:
            code = self._default(unknown.get("institution_code"), "unknown.institution_code")
        # the transaction's counterparty name (a merchant's) names the side facing the subject
        facing = (side == "to") == (t.get("src_account") == self.subject)
        named_by_transaction = t.get("counterparty_name") if facing else None
        return {
            "institution_name": name or self._default(unknown.get("institution_name"), "unknown.institution_name"),
            "swift": bic,
            "institution_code": code,
            "account": account,
            "account_name": row.get("holder_name") or named_by_transaction,
        }

    def _institution_name(self, held_at: str | None) -> str | None:
        if not held_at:
            return None
        known = self.mapping.section("institutions").get(held_at)
        if isinstance(known, Mapping):
            known = known.get("name")
        if known:
            return str(known)
        return None if _bic(held_at) else held_at

    def _institution_code(self, held_at: str | None) -> str | None:
        known = self.mapping.section("institutions").get(held_at) if held_at else None
        return str(known["code"]) if isinstance(known, Mapping) and known.get("code") else None

    # --- codes and defaults -------------------------------------------------------------------------------------
    def _code(self, section: str, key: Any) -> str | None:
        return self.mapping.code(section, str(key)) if key is not None else None

    def _currency(self, code: Any) -> str | None:
        if not code:
            return None
        mapped = self.mapping.section("currencies").get(code)
        return str(mapped) if mapped is not None else str(code)

    def _country(self, *candidates: Any) -> str | None:
        for candidate in candidates:
            if candidate:
                return str(candidate)
        return self._default_of("country")

    def _default_of(self, key: str) -> str | None:
        return self._default(self.mapping.section("defaults").get(key), f"defaults.{key}")

    @staticmethod
    def _default(value: Any, source: str) -> str | None:
        return Placeholder(str(value), source) if value not in (None, "") else None


def draft(
    lead: Mapping[str, Any],
    evidence: pl.DataFrame,
    accounts: Mapping[str, list[dict[str, Any]]],
    mapping: GoamlMapping,
    schema: GoamlSchema,
    *,
    base: str,
    text: str,
) -> Written:
    """One lead's draft, its missing and invalid fields (in one pass, then the validator's), and its placeholders."""
    data = GoamlDraft(lead, evidence, accounts, mapping, base, schema, text).data()
    return schema.validate(schema.write("report", data))


def export_goaml(
    run: RunFolder,
    xsd: Path | GoamlSchema,
    mapping_file: Path | GoamlMapping,
    out: Path | None = None,
    *,
    store: Path | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Write a goAML draft and a narrative per lead of a run; returns lead id → its problems (empty when valid).

    ``validation.json`` in ``out`` (default ``RUN/goaml``) holds, per lead, whether the draft is valid, every missing
    or invalid field with its path, and where mapping defaults or stand-ins were written.
    """
    leads = run.leads()
    schema = xsd if isinstance(xsd, GoamlSchema) else GoamlSchema(xsd)
    mapping = mapping_file if isinstance(mapping_file, GoamlMapping) else load_mapping(mapping_file)
    law = run.info.get("law") or US_LAW
    source = run.store(store)
    base = source.settings().base_currency
    local = mapping.report.get("currency_code_local")
    if local is not None and str(local) != base:
        where = mapping.path or "the mapping"
        raise ConfigError(f"{where}: report.currency_code_local is {local} but the store's amounts are in {base} "
                          f"(its base currency); remove the key or set it to {base}")  # fmt: skip
    txns = _transactions(source, leads, _as_of(run.as_of))
    accounts = _accounts(source, txns)
    results: dict[str, Written] = {}
    target = out or run.path / "goaml"
    with atomic_directory(target, marker="validation.json") as staging:
        for lead in leads.iter_rows(named=True):
            evidence = txns.filter(pl.col("txn_id").is_in(list(lead["evidence_txn_ids"]))).sort(["ts", "txn_id"])
            rows = accounts.get(lead["subject_id"])
            holder = rows[0] if rows else None
            text = narrative(lead, txns, law, holder, base, indicators=mapping.indicators)
            written = draft(lead, evidence, accounts, mapping, schema, base=base, text=text)
            xml = etree.tostring(written.document, xml_declaration=True, encoding="UTF-8", pretty_print=True)
            (staging / f"{lead['lead_id']}.xml").write_bytes(bytes(xml))
            (staging / f"{lead['lead_id']}.txt").write_text(xml_text(text), encoding="utf-8")
            results[lead["lead_id"]] = written
        report = {
            "schema": schema.path.name,
            "schema_sha256": schema.sha256,  # of the file as it was checked and loaded
            "schema_version": schema.version,
            "mapping": mapping.path.name if mapping.path is not None else None,
            "unknown_codes": [u.line() for u in check_mapping(mapping, schema)],
            "drafts": len(results),
            "valid": sum(w.valid for w in results.values()),
            "leads": {lead: _entry(w) for lead, w in sorted(results.items())},
        }
        (staging / "validation.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return {lead: [p.to_json() for p in w.problems] for lead, w in results.items()}


def _entry(written: Written) -> dict[str, Any]:
    problems = [p.to_json() for p in written.problems]
    return {"valid": written.valid, "problems": problems, "placeholders": written.placeholders,
            "altered": written.altered}  # fmt: skip


# --- reading the store -------------------------------------------------------------------------------------------
def _transactions(store: Store, leads: pl.DataFrame, as_of: dt.datetime) -> pl.DataFrame:
    """The leads' evidence and their subjects' transactions of the period before the as-of time (for the narrative)."""
    wanted = sorted({t for ids in leads["evidence_txn_ids"].to_list() for t in ids})
    subjects = sorted(set(leads["subject_id"].to_list()))
    scan = store.scan("transactions")
    columns = [c for c in _TXN_COLUMNS if c in scan.collect_schema().names()]
    recent = (pl.col("ts") > as_of - PERIOD) & (pl.col("ts") <= as_of)
    mine = pl.col("src_account").is_in(subjects) | pl.col("dst_account").is_in(subjects)
    frame = scan.filter(pl.col("txn_id").is_in(wanted) | (recent & mine)).select(columns).collect()
    missing = [pl.lit(None, pl.String).alias(c) for c in _TXN_COLUMNS if c not in frame.columns]
    return (frame.with_columns(missing) if missing else frame).unique("txn_id", keep="first").sort(["ts", "txn_id"])


def _accounts(store: Store, txns: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Account id → its rows in the accounts table (its holders, primary first), with the customer data it has.

    Customer-data columns the store does not have read as unknown (null).
    """
    ids = sorted(
        {a for a in txns["src_account"].drop_nulls().to_list()}
        | {a for a in txns["dst_account"].drop_nulls().to_list()}
    )
    scan = store.scan("accounts")
    present = scan.collect_schema().names()
    order = ["source_row"] if "source_row" in present else []
    frame = (
        scan.filter(pl.col("account_id").is_in(ids))
        .select("account_id", *[c for c in _KYC if c in present], *order)
        .collect()
        .sort(["account_id", *order])
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in frame.iter_rows(named=True):
        row.pop("source_row", None)
        out.setdefault(str(row.pop("account_id")), []).append(row)
    return out


# --- small helpers -----------------------------------------------------------------------------------------------
def _bic(value: Any) -> str | None:
    text = str(value).strip().upper() if value else ""
    return text if BIC.fullmatch(text) else None


def _person_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("holder_type") in _PERSON_TYPES or r.get("given_name")]


def _business_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in rows if r.get("holder_type") not in _PERSON_TYPES and not r.get("given_name")), None)


def _third_person(r: Mapping[str, Any]) -> dict[str, Any]:
    return {"first_name": r.get("given_name"), "last_name": r.get("family_name")}


def _third_entity(r: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": r.get("holder_name")}


def _reasons(value: Any) -> list[dict[str, Any]]:
    if not value:
        return []
    loaded = json.loads(value) if isinstance(value, str) else value
    return [dict(r) for r in loaded if isinstance(r, Mapping)]


def _as_of(value: Any) -> dt.datetime:
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _when(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _date(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return _when(value)
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00"
    return str(value)


def _money(value: Any) -> str:
    """An amount in the schema's decimal format: two decimals, no exponent, no separators."""
    return f"{Decimal(repr(float(value))).quantize(Decimal('0.01')):f}"


def _decimal(value: Decimal, places: int) -> str:
    try:
        rounded = value.quantize(Decimal(1).scaleb(-places))
    except InvalidOperation:
        return f"{value:f}"
    return _plain(rounded)


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros (two decimals at least)."""
    text = f"{value.normalize():f}"
    return text if "." in text else f"{text}.00"


def _location(t: Mapping[str, Any]) -> str:
    parts = []
    place = ", ".join(str(x) for x in (t.get("city"), t.get("country")) if x)
    if place:
        parts.append(place)
    if t.get("branch"):
        parts.append(f"branch {t['branch']}")
    if t.get("chain"):
        parts.append(f"{t['chain']} network")
    return "; ".join(parts)[:255]


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
