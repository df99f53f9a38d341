"""The narrative of a lead: who, what, when, where, how and why, as a draft for the analyst to complete.

Shared by every report format (goAML's ``reason``, FinCEN's SAR narrative): :func:`narrative` takes a lead (a row
of ``leads.parquet``), transactions (its evidence and, for the 30-day figures, the subject's transactions of the
30 days to the as-of time), the run's citations, the subject's customer data when the store has it, and the store's
base currency. Amounts are given in the transactions' own currencies (with the base-currency value beside any other
currency); cash legs read "cash". Where a trafficking typology fired, the text opens with the jurisdiction's key
term (FinCEN: "HUMAN TRAFFICKING FIN-2020-A008") and the FIU's own indicator codes when the mapping gives them.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import cache
from typing import Any

import polars as pl

from finwatch._paths import reference_root
from finwatch.config import US_LAW

__all__ = ["PERIOD", "TRAFFICKING_TYPOLOGIES", "key_term", "narrative"]

TRAFFICKING_TYPOLOGIES = frozenset({"sex_trafficking", "labor_trafficking"})
#: the period the money-in / money-out figures cover, up to the as-of time
PERIOD = dt.timedelta(days=30)
#: lines of the chronology (the largest supporting transactions, in time order)
CHRONOLOGY = 10
#: transaction ids quoted per reason
IDS_PER_REASON = 8
_CATEGORY_WORDS = {"ads": "ad site", "lodging": "lodging", "travel": "travel", "prepaid": "prepaid card",
                   "crypto": "exchange"}  # fmt: skip
_OPTIONAL: dict[str, pl.DataType] = {
    "amount": pl.Decimal(38, 18), "currency": pl.String(), "counterparty_name": pl.String(), "mcc": pl.String(),
    "country": pl.String(), "city": pl.String(), "branch": pl.String(), "chain": pl.String(),
    "description": pl.String(), "src_institution": pl.String(), "dst_institution": pl.String(),
}  # fmt: skip


def narrative(
    lead: Mapping[str, Any],
    txns: pl.DataFrame,
    law: Mapping[str, str] | None = None,
    holder: Mapping[str, Any] | None = None,
    currency: str = "USD",
    *,
    indicators: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Who, what, when, where, how and why of ``lead`` — a draft for the analyst to complete, never a finding.

    ``txns``: canonical transactions holding at least the lead's evidence (``txn_id``, ``ts``, ``src_account``,
    ``dst_account``, ``amount_base``, ``channel``; ``amount``/``currency`` and the context columns when present); the
    subject's other transactions in the 30 days to the as-of time give the period's totals. ``law``: the run's
    citations (``run.json``'s ``law``; the United States' by default). ``holder``: the subject's row of the accounts
    table (its customer data), if any. ``currency``: the store's base currency (``amount_base``). ``indicators``:
    finwatch typology → the FIU's indicator codes, quoted beside the key term.
    """
    law = {**US_LAW, **(law or {})}
    txns = _with_optional(txns, currency)
    subject = str(lead["subject_id"])
    typologies = list(lead.get("typologies") or [])
    reasons = _reasons(lead.get("reasons"))
    evidence_ids = list(lead.get("evidence_txn_ids") or [])
    as_of = _as_of(lead.get("as_of"))
    evidence = _legs(txns.filter(pl.col("txn_id").is_in(evidence_ids)), subject)
    period = _legs(
        txns.filter(
            ((pl.col("src_account") == subject) | (pl.col("dst_account") == subject))
            & ((pl.col("ts") > as_of - PERIOD) & (pl.col("ts") <= as_of) if as_of is not None else pl.lit(True))
        ),
        subject,
    )
    lines: list[str] = []
    term = key_term(typologies, law, indicators)
    if term:
        lines += [term, ""]
    lines.append(_who(subject, holder, evidence))
    lines.append(_what(typologies, evidence, period, currency, as_of))
    lines.append(_when(evidence, lead.get("as_of")))
    lines.append(_where(evidence))
    lines.append(_how(evidence, period, typologies, lead.get("cycle_paths"), subject))
    lines += _chronology(evidence, currency)
    lines.append("WHY:")
    for reason in reasons:
        line = f"- {reason.get('text', '')}"
        if reason.get("citation"):
            line += f" [{reason['citation']}]"
        ids = [str(t) for t in reason.get("evidence_txn_ids") or []]
        if ids:
            shown = ", ".join(ids[:IDS_PER_REASON]) + (f" and {len(ids) - IDS_PER_REASON} more"
                                                         if len(ids) > IDS_PER_REASON else "")  # fmt: skip
            line += f" — transactions {shown}"
        lines.append(line)
    if not reasons:
        lines.append("- the model ranks this account among the highest scores; no reason was recorded")
    lines.append("")
    lines.append(
        f"Lead {lead.get('lead_id')} of run {lead.get('run_id')}; model {lead.get('model')}, rules "
        f"{lead.get('rules_version')}, data manifest {lead.get('data_manifest_sha256')}."
    )
    return "\n".join(lines) + "\n"


def key_term(
    typologies: Iterable[str], law: Mapping[str, str], indicators: Mapping[str, Sequence[str]] | None = None
) -> str | None:
    """The opening line of a trafficking narrative: the jurisdiction's key term and the FIU's indicator codes."""
    fired = sorted(TRAFFICKING_TYPOLOGIES & set(typologies))
    if not fired:
        return None
    codes = sorted({str(c) for t in fired for c in (indicators or {}).get(t, []) if str(c).strip("-")})
    quoted = f"FIU indicator {', '.join(codes)}" if codes else ""
    term = (law.get("trafficking_key_term") or "").strip()
    if term:
        return f"{term} ({quoted})" if quoted else term
    return f"HUMAN TRAFFICKING ({quoted or law.get('trafficking') or 'see the reasons below'})"


# --- sections --------------------------------------------------------------------------------------------------------
def _who(subject: str, holder: Mapping[str, Any] | None, evidence: pl.DataFrame) -> str:
    holder = holder or {}
    name = holder.get("holder_name")
    if name:
        kind = holder.get("holder_type") or "holder"
        text = f"WHO: {name} ({kind}"
        if holder.get("occupation"):
            text += f"; {holder['occupation']}"
        text += f"), account {subject}"
        if holder.get("institution"):
            text += f" at {holder['institution']}"
        if holder.get("branch"):
            text += f", branch {holder['branch']}"
        if holder.get("opened_date"):
            text += f", opened {_day(holder['opened_date'])}"
        own = holder.get("own_client")
        text += (
            "; the institution's client" if own is True else "; not a client of the institution" if own is False else ""
        )
    else:
        text = f"WHO: account {subject} (a pseudonymous id: the store holds no customer data for it)"
        if holder.get("own_client") is False:
            text += "; not a client of the institution"
    others = _counterparty_volumes(evidence)
    if others:
        shown = ", ".join(name for name, _ in others[:5]) + ("…" if len(others) > 5 else "")
        many = "counterparties" if len(others) > 1 else "counterparty"
        text += f". {len(others)} {many} in the supporting transactions (largest first: {shown})"
    return text + "."


def _what(
    typologies: list[str], evidence: pl.DataFrame, period: pl.DataFrame, base: str, as_of: dt.datetime | None
) -> str:
    what = ", ".join(t.replace("_", " ") for t in typologies) or "activity the model ranks among the highest"
    text = f"WHAT: {what}. Suspicious activity ({_count(evidence.height, 'supporting transaction')}): "
    text += _flows(evidence, base)
    since = f" to {as_of.date().isoformat()}" if as_of is not None else ""
    text += f". The {PERIOD.days} days{since}: {_flows(period, base)}."
    return text


def _flows(legs: pl.DataFrame, base: str) -> str:
    parts = []
    for direction, word in (("in", "in"), ("out", "out"), ("own", "between its own sides"),
                            ("other", "between other accounts")):  # fmt: skip
        rows = legs.filter(pl.col("direction") == direction)
        if rows.height or direction in ("in", "out"):
            parts.append(f"{word} {_money_by_currency(rows, base)}")
    return "; ".join(parts)


def _money_by_currency(rows: pl.DataFrame, base: str) -> str:
    if not rows.height:
        return "none"
    sums = (
        rows.group_by("currency")
        .agg(pl.col("amount").sum(), pl.col("amount_base").sum(), pl.len().alias("n"))
        .sort("currency")
    )
    out = []
    for code, amount, amount_base, n in sums.iter_rows():
        text = f"{code} {_fmt(amount)}" + (f" (≈ {base} {_fmt(amount_base, 2)})" if code != base else "")
        out.append(f"{text} in {_count(n, 'transaction')}")
    return ", ".join(out)


def _when(evidence: pl.DataFrame, as_of: Any) -> str:
    if not evidence.height:
        return f"WHEN: scored as of {as_of}."
    first, last = evidence["ts"].to_list()[0], evidence["ts"].to_list()[-1]  # in time order
    return f"WHEN: {_stamp(first)} to {_stamp(last)} UTC (scored as of {as_of})."


def _where(evidence: pl.DataFrame) -> str:
    places: list[str] = []
    for city, country in evidence.select("city", "country").unique().sort(["country", "city"]).iter_rows():
        if city or country:
            places.append(", ".join(x for x in (city, country) if x))
    branches = sorted({b for b in evidence["branch"].drop_nulls().to_list()})
    chains = sorted({c for c in evidence["chain"].drop_nulls().to_list()})
    parts = places + [f"branch {b}" for b in branches] + [f"{c} network" for c in chains]
    return f"WHERE: {'; '.join(parts) if parts else 'no location in the exported records'}."


def _how(evidence: pl.DataFrame, period: pl.DataFrame, typologies: list[str], cycles: Any, subject: str) -> str:
    counts = evidence.group_by("channel").len().sort(["len", "channel"], descending=[True, False])
    channels = ", ".join(f"{c} ({n})" for c, n in counts.iter_rows()) or "none recorded"
    text = f"HOW: channels {channels}"
    instruments = sorted({d for d in evidence["description"].drop_nulls().to_list()})
    if instruments:
        text += f"; instruments {', '.join(instruments[:8])}"
    pool = pl.concat([evidence, period]).unique("txn_id") if TRAFFICKING_TYPOLOGIES & set(typologies) else evidence
    named = _named_merchants(pool)
    if named:
        text += f". Trafficking indicators: {'; '.join(named)}"
    for path in _cycles(cycles)[:3]:
        accounts = [f"{a} (this account)" if a == subject else str(a) for a in path.get("accounts", [])]
        ids = ", ".join(str(t) for t in path.get("txn_ids", []))
        text += f". Cycle: {' → '.join(accounts)}" + (f" (transactions {ids})" if ids else "")
    return text + "."


def _chronology(evidence: pl.DataFrame, base: str) -> list[str]:
    if not evidence.height:
        return []
    key = evidence.sort(["amount_base", "txn_id"], descending=[True, False]).head(CHRONOLOGY).sort(["ts", "txn_id"])
    shown = f"the {key.height} largest of {evidence.height}" if key.height < evidence.height else "all"
    lines = [f"CHRONOLOGY ({shown} supporting transactions, in time order):"]
    for row in key.iter_rows(named=True):
        money = f"{row['currency']} {_fmt(row['amount'])}"
        if row["currency"] != base:
            money += f" (≈ {base} {_fmt(row['amount_base'], 2)})"
        arrow = {"in": "from", "out": "to", "own": "between", "other": "between"}[row["direction"]]
        party = row["counterparty"] if row["direction"] in ("in", "out") else row["parties"]
        lines.append(f"- {_stamp(row['ts'])} {row['direction']:<5} {money}, {row['channel']}, {arrow} {party} "
                     f"[{row['txn_id']}]")  # fmt: skip
    return lines


# --- helpers ---------------------------------------------------------------------------------------------------------
def _with_optional(txns: pl.DataFrame, base: str) -> pl.DataFrame:
    """Transactions with every column the narrative reads: missing optional ones as nulls, and without an amount in
    the transaction's currency, the base-currency amount in the base currency."""
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in _OPTIONAL.items() if name not in txns.columns]
    frame = txns.with_columns(missing) if missing else txns
    own = pl.col("amount").is_not_null() & pl.col("currency").is_not_null()
    return frame.with_columns(
        amount=pl.when(own)
        .then(pl.col("amount"))
        .otherwise(pl.col("amount_base").round(2).cast(pl.Decimal(38, 2)).cast(pl.Decimal(38, 18))),
        currency=pl.when(own).then(pl.col("currency")).otherwise(pl.lit(base)),
    )


def _legs(txns: pl.DataFrame, subject: str) -> pl.DataFrame:
    """Each transaction seen from the subject: direction (in, out, own, other), counterparty ("cash" for cash)."""
    src, dst = pl.col("src_account"), pl.col("dst_account")
    named = pl.col("counterparty_name")
    return txns.with_columns(
        direction=pl.when((src == subject) & (dst == subject)).then(pl.lit("own"))
        .when(dst == subject).then(pl.lit("in"))
        .when(src == subject).then(pl.lit("out"))
        .otherwise(pl.lit("other")),
        counterparty=pl.when(dst == subject).then(pl.coalesce(src, named, pl.lit("cash")))
        .otherwise(pl.coalesce(dst, named, pl.lit("cash"))),
        parties=pl.coalesce(src, pl.lit("cash")) + pl.lit(" → ") + pl.coalesce(dst, pl.lit("cash")),
    ).sort(["ts", "txn_id"])  # fmt: skip


def _counterparty_volumes(evidence: pl.DataFrame) -> list[tuple[str, float]]:
    rows = evidence.filter(pl.col("direction").is_in(["in", "out"]))
    if not rows.height:
        return []
    volumes = (
        rows.group_by("counterparty")
        .agg(pl.col("amount_base").sum())
        .sort(["amount_base", "counterparty"], descending=[True, False])
    )
    return [(str(c), float(v)) for c, v in volumes.iter_rows()]


def _named_merchants(rows: pl.DataFrame) -> list[str]:
    """Ad sites, lodging, travel, prepaid cards and exchanges paid, by name, from the MCC or the merchant's name."""
    by_mcc, by_name = _reference_lists()
    found: dict[tuple[str, str], str] = {}
    for name, mcc in rows.select("counterparty_name", "mcc").unique().sort(["counterparty_name", "mcc"]).iter_rows():
        category = by_mcc.get(str(mcc)) if mcc else None
        if category is None and name:
            upper = str(name).upper()
            category = next((c for pattern, c in by_name if pattern in upper), None)
        if category is None:
            continue
        label = name or f"an unnamed merchant (MCC {mcc})"
        found.setdefault((category, str(label)), f"{_CATEGORY_WORDS.get(category, category)} {label}"
                         + (f" (MCC {mcc})" if mcc and name else ""))  # fmt: skip
    return [found[k] for k in sorted(found)]


@cache
def _reference_lists() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    folder = reference_root() / "reference"
    with (folder / "mcc.csv").open(encoding="utf-8", newline="") as handle:
        by_mcc = {r["mcc"]: r["category"] for r in csv.DictReader(handle)}
    with (folder / "merchant_names.csv").open(encoding="utf-8", newline="") as handle:
        by_name = tuple((r["pattern"], r["category"]) for r in csv.DictReader(handle))
    return by_mcc, by_name


def _reasons(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    loaded = json.loads(value) if isinstance(value, str) else value
    return [dict(r) for r in loaded if isinstance(r, Mapping)]


def _cycles(value: Any) -> list[dict[str, Any]]:
    if not value:
        return []
    loaded = json.loads(value) if isinstance(value, str) else value
    return [dict(c) for c in loaded if isinstance(c, Mapping)]


def _as_of(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _stamp(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _fmt(value: Any, places: int | None = None) -> str:
    """An amount as written: thousands separated, cents kept, crypto to its last significant digit."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if places is not None:
        return f"{number.quantize(Decimal(1).scaleb(-places)):,}"
    cents = number.quantize(Decimal("0.01"))
    if cents == number:
        return f"{cents:,}"
    return f"{number.normalize():,f}"
