"""goAML drafts: one suspicious-transaction report (STR) per lead, validated against the FIU's own XSD.

FIUs that use UNODC's goAML publish their own schema and indicator lists, so none ships with finwatch: the user
gives the XSD and a mapping (YAML) with the reporting entity's fixed fields, the FIU's codes for transaction
modes and funds, and finwatch typologies → the FIU's indicator codes (see ``features/goaml/mapping.example.yaml``).

Per lead: ``<lead_id>.xml`` (report header from the mapping, the lead's evidence transactions with from/to
accounts, the indicators of its typologies, the narrative as the reason) and ``<lead_id>.txt`` (the narrative:
who, what, when, where, why). Each draft is validated with ``xmlschema.XMLSchema11`` (entities refused, no network);
``validation.json`` lists the invalid fields of every draft. Drafts are for an analyst to complete and file, never
sent automatically. Where trafficking indicators fired, the narrative carries FinCEN's key term
"HUMAN TRAFFICKING FIN-2020-A008".
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from lxml import etree

from finwatch._io import atomic_directory
from finwatch.config import US_LAW
from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.runs import RunFolder

__all__ = ["TRAFFICKING_TYPOLOGIES", "GoamlMapping", "export_goaml", "load_mapping", "narrative"]

TRAFFICKING_TYPOLOGIES = frozenset({"sex_trafficking", "labor_trafficking"})
REPORT_FIELDS = ("rentity_id", "submission_code", "report_code", "currency_code_local")


@dataclass(frozen=True)
class GoamlMapping:
    report: dict[str, Any]  # fixed report fields: rentity_id, submission_code, report_code, currency_code_local, …
    transmode: dict[str, str]  # canonical channel → the FIU's transmode code ("default" for the rest)
    funds: dict[str, str]  # canonical channel → funds type code ("default" for the rest)
    indicators: dict[str, list[str]]  # finwatch typology → the FIU's indicator codes


def load_mapping(path: Path) -> GoamlMapping:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a mapping with report, transmode, funds and indicators expected")
    report = data.get("report") or {}
    missing = [f for f in REPORT_FIELDS if f not in report]
    if missing:
        raise ConfigError(f"{path}: report misses {missing}")
    indicators = {str(k): [str(c) for c in (v or [])] for k, v in (data.get("indicators") or {}).items()}
    return GoamlMapping(
        report=dict(report),
        transmode={str(k): str(v) for k, v in (data.get("transmode") or {}).items()},
        funds={str(k): str(v) for k, v in (data.get("funds") or {}).items()},
        indicators=indicators,
    )


def _schema(xsd: Path) -> Any:
    import xmlschema

    try:
        return xmlschema.XMLSchema11(str(xsd), defuse="always", allow="local")
    except (xmlschema.XMLSchemaException, OSError, SyntaxError) as exc:
        message = str(exc).strip().splitlines()[0][:200]
        raise FinwatchError(f"{xsd}: not a usable XSD ({type(exc).__name__}: {message})") from None


def _sub(parent: etree._Element, tag: str, text: Any = None) -> etree._Element:
    node = etree.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def _money(value: float) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.01")))


def _when(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def narrative(lead: dict[str, Any], txns: pl.DataFrame, law: Mapping[str, str] | None = None) -> str:
    """Who, what, when, where, why — a draft for the analyst to complete, never a finding.

    Where a trafficking typology fired, the narrative opens with the FIU's key term and guidance from ``law`` (the
    run's jurisdiction; the United States' FinCEN advisory by default).
    """
    law = {**US_LAW, **(law or {})}
    reasons = json.loads(lead["reasons"])
    typologies = list(lead["typologies"])
    account = lead["subject_id"]
    mine = txns.filter(pl.col("txn_id").is_in(list(lead["evidence_txn_ids"])))
    lines = []
    if TRAFFICKING_TYPOLOGIES & set(typologies):
        lines.append(law["trafficking_key_term"] or f"HUMAN TRAFFICKING ({law['trafficking']})")
        lines.append("")
    total = float(mine["amount_base"].sum()) if mine.height else 0.0
    first: dt.datetime | None = mine.select(pl.col("ts").min()).item() if mine.height else None
    last: dt.datetime | None = mine.select(pl.col("ts").max()).item() if mine.height else None
    places = sorted(
        {p for p in mine["country"].drop_nulls().to_list()} | {c for c in mine["city"].drop_nulls().to_list()}
    )
    counterparties = sorted(
        {a for a in mine["src_account"].drop_nulls().to_list() + mine["dst_account"].drop_nulls().to_list()} - {account}
    )
    shown = ", ".join(counterparties[:10]) + ("…" if len(counterparties) > 10 else "")
    who = f"WHO: account {account}; {len(counterparties)} counterparties in the supporting transactions"
    lines.append(who + (f" ({shown})." if counterparties else "."))
    what = ", ".join(t.replace("_", " ") for t in typologies) or "activity the model ranks among the highest"
    lines.append(f"WHAT: {what}; {mine.height} supporting transactions totalling {total:,.2f} in base currency.")
    if first is not None and last is not None:
        lines.append(f"WHEN: between {_when(first)} and {_when(last)} UTC (scored as of {lead['as_of']}).")
    else:
        lines.append(f"WHEN: scored as of {lead['as_of']}.")
    lines.append(f"WHERE: {', '.join(places) if places else 'no location in the exported records'}.")
    lines.append("WHY:")
    lines += [f"- {r['text']}" + (f" [{r['citation']}]" if r.get("citation") else "") for r in reasons]
    lines.append("")
    lines.append(f"Lead {lead['lead_id']} of run {lead['run_id']}; model {lead['model']}, ")
    lines[-1] += f"rules {lead['rules_version']}, data manifest {lead['data_manifest_sha256']}."
    return "\n".join(lines) + "\n"


def _draft(lead: dict[str, Any], txns: pl.DataFrame, mapping: GoamlMapping, text: str) -> bytes:
    # goAML's element order: entity, codes, reference, submission date, local currency, person, reason, action,
    # transactions, indicators
    root = etree.Element("report")
    _sub(root, "rentity_id", mapping.report["rentity_id"])
    _sub(root, "submission_code", mapping.report["submission_code"])
    _sub(root, "report_code", mapping.report["report_code"])
    _sub(root, "entity_reference", lead["lead_id"])
    _sub(root, "submission_date", _when(dt.datetime.fromisoformat(lead["as_of"])))
    _sub(root, "currency_code_local", mapping.report["currency_code_local"])
    person = mapping.report.get("reporting_person")
    if isinstance(person, dict):
        node = _sub(root, "reporting_person")
        for key, value in person.items():
            _sub(node, str(key), value)
    _sub(root, "reason", text)
    if mapping.report.get("action"):
        _sub(root, "action", mapping.report["action"])
    rows = txns.filter(pl.col("txn_id").is_in(list(lead["evidence_txn_ids"]))).sort(["ts", "txn_id"])
    for t in rows.iter_rows(named=True):
        node = _sub(root, "transaction")
        _sub(node, "transactionnumber", t["txn_id"])
        if t["city"] or t["country"]:
            _sub(node, "transaction_location", ", ".join(x for x in (t["city"], t["country"]) if x))
        _sub(node, "date_transaction", _when(t["ts"]))
        _sub(node, "transmode_code", mapping.transmode.get(t["channel"], mapping.transmode.get("default", "")))
        _sub(node, "amount_local", _money(t["amount_base"]))
        funds = mapping.funds.get(t["channel"], mapping.funds.get("default", ""))
        for side, account, institution in (("from", t["src_account"], t["src_institution"]),
                                           ("to", t["dst_account"], t["dst_institution"])):  # fmt: skip
            party = _sub(node, f"t_{side}")
            _sub(party, f"{side}_funds_code", funds)
            if account is not None:
                acc = _sub(party, f"{side}_account")
                if institution:
                    _sub(acc, "institution_name", institution)
                _sub(acc, "account", account)
            if t["country"]:
                _sub(party, f"{side}_country", t["country"])
    codes = sorted({c for t in lead["typologies"] for c in mapping.indicators.get(t, [])})
    if codes:
        indicators = _sub(root, "report_indicators")
        for code in codes:
            _sub(indicators, "indicator", code)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def export_goaml(
    run: RunFolder, xsd: Path, mapping_file: Path, out: Path | None = None, *, store: Path | None = None
) -> dict[str, list[dict[str, str]]]:
    """Write a goAML draft and a narrative per lead of a run; returns lead id → invalid fields (empty when valid)."""
    leads = run.leads()
    schema = _schema(xsd)
    mapping = load_mapping(mapping_file)
    law = run.info.get("law") or US_LAW
    source = run.store(store)
    wanted = sorted({t for ids in leads["evidence_txn_ids"].to_list() for t in ids})
    txns = (
        source.scan("transactions")
        .filter(pl.col("txn_id").is_in(wanted))
        .select(
            "txn_id",
            "ts",
            "src_account",
            "dst_account",
            "src_institution",
            "dst_institution",
            "amount_base",
            "channel",
            "country",
            "city",
        )
        .collect()
    )
    problems: dict[str, list[dict[str, str]]] = {}
    target = out or run.path / "goaml"
    with atomic_directory(target, marker="validation.json") as staging:
        for lead in leads.iter_rows(named=True):
            text = narrative(lead, txns, law)
            xml = _draft(lead, txns, mapping, text)
            (staging / f"{lead['lead_id']}.xml").write_bytes(xml)
            (staging / f"{lead['lead_id']}.txt").write_text(text, encoding="utf-8")
            document = etree.fromstring(xml)
            problems[lead["lead_id"]] = [
                {"path": str(error.path or ""), "reason": str(getattr(error, "reason", None) or error.message)}
                for error in schema.iter_errors(document)
            ]
        (staging / "validation.json").write_text(json.dumps(problems, indent=2, sort_keys=True) + "\n")
    return problems
