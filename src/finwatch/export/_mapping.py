"""The goAML mapping file: an FIU's codes for finwatch's values, and the reporting entity's fixed fields.

Every code in it is checked against the code list of the schema element it is written into
(:func:`check_mapping`), so an FIU's own schema, with its own lists, is checked against its own codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from finwatch._files import read_option_text
from finwatch.exceptions import ConfigError
from finwatch.export._xsd import GoamlSchema

__all__ = ["CODE_TARGETS", "GoamlMapping", "UnknownCode", "check_mapping", "load_mapping"]

REPORT_FIELDS = ("rentity_id", "submission_code", "report_code")

#: mapping section → the schema element its codes are written into (a global element or type, then children)
CODE_TARGETS = {
    "transmode": "report/transaction/transmode_code",
    "funds": "report/transaction/t_from/from_funds_code",
    "indicators": "report/report_indicators/indicator",
    "account_type": "t_account_my_client/personal_account_type",
    "account_status": "t_account_my_client/status_code",
    "identifier_type": "t_person_identification/type",
    "legal_form": "t_entity_my_client/incorporation_legal_form",
    "currencies": "t_account_my_client/currency_code",
}
#: single codes: dotted key → the schema element it is written into
VALUE_TARGETS = {
    "signatory_role": "t_account_my_client/signatory/role",
    "director_role": "t_entity_my_client/director_id/role",
    "phone.contact_type": "t_phone/tph_contact_type",
    "phone.communication_type": "t_phone/tph_communication_type",
    "address_type": "t_address/address_type",
    "defaults.country": "t_address/country_code",
}
#: free-text values, checked against their element's type (length), not a code list
TEXT_TARGETS = {
    "institution.name": "t_account_my_client/institution_name",
    "institution.swift": "t_account_my_client/swift",
    "institution.institution_code": "t_account_my_client/institution_code",
    "institution.branch": "t_account_my_client/branch",
    "defaults.transaction_location": "report/transaction/transaction_location",
    "defaults.transaction_description": "report/transaction/transaction_description",
    "unknown.institution_name": "t_account/institution_name",
    "unknown.institution_code": "t_account/institution_code",
}
_SECTIONS = {"report", "institution", "institutions", "defaults", "unknown", "person", "entity", "phone",
             *CODE_TARGETS, *(k.split(".")[0] for k in VALUE_TARGETS)}  # fmt: skip


@dataclass(frozen=True)
class GoamlMapping:
    report: dict[str, Any]  # fixed report fields: rentity_id, submission_code, report_code, reporting_person, …
    transmode: dict[str, str]  # canonical channel → the FIU's transmode code ("default" for the rest)
    funds: dict[str, str]  # canonical channel → funds type code ("default" for the rest)
    indicators: dict[str, list[str]]  # finwatch typology → the FIU's indicator codes ("default": when none fired)
    data: dict[str, Any]  # the whole file, for the other sections (institution, defaults, unknown, codes …)
    path: Path | None = None

    def section(self, name: str) -> dict[str, Any]:
        value = self.data.get(name) or {}
        return dict(value) if isinstance(value, dict) else {}

    def value(self, dotted: str) -> Any:
        section, _, key = dotted.partition(".")
        return self.section(section).get(key) if key else self.data.get(section)

    def code(self, section: str, key: str | None) -> str | None:
        """The FIU's code for ``key`` in ``section`` (its ``default`` when the key has none)."""
        codes = self.section(section)
        found = codes.get(key) if key is not None else None
        found = found if found is not None else codes.get("default")
        return None if found is None else str(found)


@dataclass(frozen=True)
class UnknownCode:
    file: str
    key: str  # dotted: transmode.cash, indicators.structuring, report.report_code
    code: str
    target: str  # the schema type (or element) that refused it
    allowed: int | None  # size of its code list; None when the element has no list (a length or number refused it)
    reason: str

    def line(self) -> str:
        if self.allowed is None:
            return f"{self.file}: {self.key}: {self.code!r} is refused by the schema's {self.target} ({self.reason})"
        return f"{self.file}: {self.key}: {self.code!r} is not a code of {self.target} ({self.allowed} allowed values)"


def load_mapping(path: Path, option: str = "--mapping") -> GoamlMapping:
    text = read_option_text(path, option)  # a FIFO, a device, a folder or a huge file is refused at once
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a mapping with report, transmode, funds and indicators expected")
    unknown = sorted(str(k) for k in data if k not in _SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; sections: {', '.join(sorted(_SECTIONS))}")
    for name in _SECTIONS - {"signatory_role", "director_role", "address_type"}:
        if data.get(name) is not None and not isinstance(data[name], dict):
            raise ConfigError(f"{path}: {name} must be a mapping of keys to values")
    report = data.get("report") or {}
    missing = [f for f in REPORT_FIELDS if f not in report]
    if missing:
        raise ConfigError(f"{path}: report misses {missing}")
    indicators: dict[str, list[str]] = {}
    for key, codes in (data.get("indicators") or {}).items():
        listed = codes if isinstance(codes, list) else [codes] if codes is not None else []
        indicators[str(key)] = [str(c) for c in listed]
    return GoamlMapping(
        report=dict(report),
        transmode={str(k): str(v) for k, v in (data.get("transmode") or {}).items()},
        funds={str(k): str(v) for k, v in (data.get("funds") or {}).items()},
        indicators=indicators,
        data=data,
        path=Path(path),
    )


def check_mapping(mapping: GoamlMapping, schema: GoamlSchema) -> list[UnknownCode]:
    """Every code and fixed value of ``mapping`` the schema refuses, with the size of the list it is not in."""
    file = mapping.path.name if mapping.path is not None else "mapping"
    found: list[UnknownCode] = []

    def check(key: str, value: Any, target: str) -> None:
        if value is None:
            return
        text = _text(value)
        refused = schema.check_value(target, text)
        if refused is None:
            return
        codes = schema.allowed(target)
        found.append(UnknownCode(file, key, text, schema.type_name(target), len(codes) if codes else None, refused))

    for section, target in CODE_TARGETS.items():
        if schema.declaration(target) is None:
            continue
        if section == "indicators":
            for typology, listed in mapping.indicators.items():
                for code in listed:
                    check(f"indicators.{typology}", code, target)
            continue
        for key, code in mapping.section(section).items():
            check(f"{section}.{key}", code, target)
    for dotted, target in {**VALUE_TARGETS, **TEXT_TARGETS}.items():
        if schema.declaration(target) is not None:
            check(dotted, mapping.value(dotted), target)
    found += _fixed(file, "report", mapping.report, "report", schema)
    return found


def _fixed(file: str, key: str, values: dict[str, Any], target: str, schema: GoamlSchema) -> list[UnknownCode]:
    """The report's fixed fields (and nested ones such as reporting_person), each against its element."""
    out: list[UnknownCode] = []
    for name, value in values.items():
        where = f"{target}/{name}"
        if value is None:
            continue
        if schema.declaration(where) is None:
            out.append(UnknownCode(file, f"{key}.{name}", _text(value), target.split("/")[-1], None,
                                   "not an element there in this schema"))  # fmt: skip
            continue
        if isinstance(value, dict):
            out += _fixed(file, f"{key}.{name}", value, where, schema)
            continue
        refused = schema.check_value(where, _text(value))
        if refused is not None:
            codes = schema.allowed(where)
            out.append(UnknownCode(file, f"{key}.{name}", _text(value), schema.type_name(where),
                                   len(codes) if codes else None, refused))  # fmt: skip
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
