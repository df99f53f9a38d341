"""One self-contained HTML file per scoring run: overview, a lead table, and a case page per lead.

No network: styles, scripts and charts (inline SVG) are all in the file. Every value from the data is escaped.
Same run → the same bytes.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from finwatch._io import atomic_write_text
from finwatch.runs import RunFolder

__all__ = ["build_report", "psi"]

GRAPH_NEIGHBOURS = 24
TIMELINE_ROWS = 400


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _amount(value: Any) -> str:
    """An exact decimal without the store's trailing zeros (at least two places: 12.40, 0.000123)."""
    text = f"{value:f}" if value is not None else ""
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(2, "0")
        text = f"{whole}.{frac}"
    return text


def psi(expected: list[int], actual: list[int], floor: float = 1e-4) -> float:
    """Population stability index between two histograms over the same bins."""
    te, ta = sum(expected) or 1, sum(actual) or 1
    total = 0.0
    for x, y in zip(expected, actual, strict=True):
        p, q = max(x / te, floor), max(y / ta, floor)
        total += (q - p) * math.log(q / p)
    return total


def _bars(values: list[int], labels: list[str], width: int = 420, height: int = 140) -> str:
    top = max(values) or 1
    bw = width / max(len(values), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height + 30}" width="{width}" height="{height + 30}">']
    for i, (v, label) in enumerate(zip(values, labels, strict=True)):
        h = 0 if v == 0 else max(1.0, height * math.log1p(v) / math.log1p(top))
        x = i * bw
        parts.append(f'<rect x="{x + 2:.1f}" y="{height - h:.1f}" width="{bw - 4:.1f}" height="{h:.1f}" '
                     f'fill="#4a6fa5"><title>{e(label)}: {v:,}</title></rect>')  # fmt: skip
        parts.append(
            f'<text x="{x + bw / 2:.1f}" y="{height + 14}" text-anchor="middle" font-size="9">{e(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _graph(account: str, txns: pl.DataFrame, cycle_members: set[str], evidence: set[str]) -> str:
    """The account in the middle, its largest counterparties around it; cycle members red, evidence orange."""
    legs = pl.concat([
        txns.filter(pl.col("src_account") == account).select(cp="dst_account", amount="amount_base", txn_id="txn_id",
                                                               out=pl.lit(True)),
        txns.filter(pl.col("dst_account") == account).select(cp="src_account", amount="amount_base", txn_id="txn_id",
                                                               out=pl.lit(False)),
    ]).drop_nulls("cp").filter(pl.col("cp") != account)  # fmt: skip
    if legs.is_empty():
        return '<p class="muted">No counterparties in the window.</p>'
    per = (
        legs.group_by("cp")
        .agg(
            volume=pl.col("amount").sum(),
            n=pl.len(),
            out=pl.col("out").any(),
            inn=(~pl.col("out")).any(),
            evidence=pl.col("txn_id").is_in(list(evidence)).any(),
        )
        .sort(["volume", "cp"], descending=[True, False])
    )
    shown = per.head(GRAPH_NEIGHBOURS)
    size, r = 460, 180
    cx = cy = size / 2
    top = float(shown.select(pl.col("volume").max()).item() or 1.0)
    parts = [f'<svg class="graph" viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img" '
             f'aria-label="counterparty graph of {e(account)}">']  # fmt: skip
    nodes = []
    for i, row in enumerate(shown.iter_rows(named=True)):
        angle = 2 * math.pi * i / shown.height
        x, y = cx + r * math.cos(angle), cy + r * math.sin(angle)
        colour = "#c0392b" if row["cp"] in cycle_members else "#e67e22" if row["evidence"] else "#7f8c8d"
        width = 1 + 5 * row["volume"] / top
        direction = "→" if row["out"] and not row["inn"] else "←" if row["inn"] and not row["out"] else "↔"
        parts.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="{colour}" '
                     f'stroke-width="{width:.1f}" opacity="0.7"><title>{direction} {e(row["cp"])}: '
                     f'{row["volume"]:,.2f} in {row["n"]} transaction(s)</title></line>')  # fmt: skip
        nodes.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{colour}"><title>{e(row["cp"])}</title></circle>'
            f'<text x="{x:.1f}" y="{y + 18:.1f}" text-anchor="middle" font-size="9">{e(row["cp"][:10])}</text>'
        )
    parts += nodes
    parts.append(f'<circle cx="{cx}" cy="{cy}" r="12" fill="#2c3e50"><title>{e(account)}</title></circle>')
    parts.append("</svg>")
    more = per.height - shown.height
    note = f'<p class="muted">{more} smaller counterparties not drawn.</p>' if more > 0 else ""
    legend = ('<p class="legend"><span style="color:#c0392b">●</span> on a cycle with this account '
              '<span style="color:#e67e22">●</span> in the evidence <span style="color:#7f8c8d">●</span> other; '
              'line width: volume</p>')  # fmt: skip
    return "".join(parts) + legend + note


def _timeline(account: str, txns: pl.DataFrame, evidence: set[str], start: dt.datetime, end: dt.datetime) -> str:
    rows = txns.sort("ts").tail(TIMELINE_ROWS)
    if rows.is_empty():
        return '<p class="muted">No transactions in the window.</p>'
    width, height = 640, 160
    span = (end - start).total_seconds() or 1.0
    top = math.log10(max(float(rows.select(pl.col("amount_base").max()).item() or 1.0), 10.0))
    parts = [f'<svg class="timeline" viewBox="0 0 {width} {height + 20}" width="{width}" height="{height + 20}">',
             f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/>']  # fmt: skip
    for row in rows.iter_rows(named=True):
        x = width * (row["ts"] - start).total_seconds() / span
        y = 6 + (height - 12) * (1 - math.log10(max(row["amount_base"], 1.0)) / top)
        out = row["src_account"] == account
        colour = "#e67e22" if row["txn_id"] in evidence else ("#c0392b" if out else "#27ae60")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{e(row["ts"])} '
                     f'{"out" if out else "in"} {row["amount_base"]:,.2f} {e(row["channel"])} {e(row["txn_id"])}'
                     "</title></circle>")  # fmt: skip
    parts.append(f'<text x="0" y="{height + 15}" font-size="10">{e(start.date())}</text>')
    parts.append(f'<text x="{width}" y="{height + 15}" font-size="10" text-anchor="end">{e(end.date())}</text>')
    parts.append("</svg>")
    return "".join(parts) + (
        '<p class="legend"><span style="color:#27ae60">●</span> in <span style="color:#c0392b">●'
        '</span> out <span style="color:#e67e22">●</span> evidence; height: amount (log)</p>'
    )


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#2c3e50;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
main{padding:16px 24px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:12px 0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left}
th{cursor:pointer;background:#f0f3f7;position:sticky;top:0}tr.lead:hover{background:#eef4ff;cursor:pointer}
.muted{color:#777}.legend{font-size:12px;color:#555}.grid{display:flex;flex-wrap:wrap;gap:16px}
.card{min-width:200px}.kv td:first-child{color:#555;width:220px}.case{display:none}.case:target{display:block}
.reason-rule{border-left:4px solid #c0392b;padding-left:8px;margin:4px 0}
.reason-model{border-left:4px solid #4a6fa5;padding-left:8px;margin:4px 0}
input,select{padding:4px;margin-right:8px}code{font-size:12px}
body.case-mode #overview,body.case-mode #leads-section{display:none}
"""

JS = """
function sortTable(col){const t=document.getElementById('leads');const b=t.tBodies[0];
const rows=Array.from(b.rows);const asc=t.dataset.col==String(col)?t.dataset.asc!='true':false;
rows.sort((a,c)=>{const x=a.cells[col].dataset.v||a.cells[col].textContent,
y=c.cells[col].dataset.v||c.cells[col].textContent;
const nx=parseFloat(x),ny=parseFloat(y);const r=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?r:-r;});
rows.forEach(r=>b.appendChild(r));t.dataset.col=col;t.dataset.asc=asc;}
function filterTable(){const q=document.getElementById('q').value.toLowerCase();
const ty=document.getElementById('ty').value;let n=0;
for(const r of document.getElementById('leads').tBodies[0].rows){const ok=r.textContent.toLowerCase().includes(q)&&
(!ty||r.dataset.typologies.split(' ').includes(ty));r.style.display=ok?'':'none';if(ok)n++;}
document.getElementById('shown').textContent=n;}
function route(){const c=location.hash.startsWith('#lead-');document.body.classList.toggle('case-mode',c);
if(c){window.scrollTo(0,0);}}
window.addEventListener('hashchange',route);route();
"""


def build_report(run_folder: RunFolder, store_dir: Path | None = None, out: Path | None = None) -> Path:
    """Write ``report.html`` for a run folder written by ``finwatch score``; returns its path."""
    run = run_folder.info
    leads = run_folder.leads()
    store = run_folder.store(store_dir)
    as_of = dt.datetime.fromisoformat(run["as_of"])
    start = as_of - dt.timedelta(days=30)
    accounts = leads["subject_id"].to_list()
    txns = (
        store.scan("transactions")
        .filter(
            (pl.col("ts") > start)
            & (pl.col("ts") <= as_of)
            & (pl.col("src_account").is_in(accounts) | pl.col("dst_account").is_in(accounts))
        )
        .select(
            "txn_id",
            "ts",
            "src_account",
            "dst_account",
            "amount",
            "currency",
            "amount_base",
            "channel",
            "mcc",
            "counterparty_name",
            "country",
        )
        .sort(["ts", "txn_id"])
        .collect()
    )
    earlier = run_folder.previous()
    body = [_overview(run, leads, earlier.info if earlier is not None else None), _lead_table(leads)]
    body += [_case(row, txns, start, as_of) for row in leads.iter_rows(named=True)]
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>finwatch run {e(run['run_id'])}</title><style>{CSS}</style></head><body>"
        f"<header><h1>finwatch leads — run {e(run['run_id'])} as of {e(run['as_of'])}</h1></header><main>"
        + "".join(body)
        + f"</main><script>{JS}</script></body></html>\n"
    )
    target = out or run_folder.path / "report.html"
    atomic_write_text(target, page)
    return target


def _overview(run: dict[str, Any], leads: pl.DataFrame, previous: dict[str, Any] | None) -> str:
    typologies = Counter(t for ts in leads["typologies"].to_list() for t in ts)
    bins = [f"{i / 10:.1f}" for i in range(10)]
    metrics = run.get("model_metrics", {})
    if previous is not None and len(previous.get("score_histogram", [])) == len(run["score_histogram"]):
        value = psi(previous["score_histogram"], run["score_histogram"])
        level = "stable" if value < 0.1 else "moderate shift" if value < 0.25 else "significant shift"
        drift = f"PSI {value:.3f} against the run of {e(previous['as_of'])} ({level})"
    else:
        drift = "no earlier run in this folder to compare with"
    rules = "".join(f'<tr><td>{e(k)}</td><td data-v="{v}">{v:,}</td></tr>' for k, v in run["rules_fired"].items())
    mix = "".join(f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in sorted(typologies.items()))
    kv = [
        ("accounts scored", f"{run['accounts_scored']:,}"), ("leads", f"{run['leads']:,} ({run['new_leads']:,} new)"),
        ("alert budget", f"{run['budget']:.2%}"), ("model", f"{run['model']} (sha256 {run['model_sha256'][:16]}…)"),
        ("validation PR-AUC / F1", f"{metrics.get('pr_auc', 0):.4f} / {metrics.get('f1') or 0:.4f}"),
        ("rules version", run["rules_version"]), ("data manifest", run["data_manifest_sha256"]),
        ("store batches", ", ".join(run.get("store_batches", []))), ("score drift", drift),
        ("jurisdiction", run.get("jurisdiction") or "none (built-in defaults)"),
        ("rule pack since training", _pack_changes(run.get("rules_since_training"))),
    ]  # fmt: skip
    table = "".join(f"<tr><td>{e(k)}</td><td>{v if k == 'score drift' else e(v)}</td></tr>" for k, v in kv)
    return (
        f'<section id="overview"><h2>Run overview</h2><table class="kv">{table}</table>'
        f'<div class="grid"><div class="card"><h3>Score distribution (all accounts)</h3>'
        f"{_bars(run['score_histogram'], bins)}</div>"
        f'<div class="card"><h3>Typologies of the leads</h3><table>{mix or "<tr><td>none</td></tr>"}</table></div>'
        f'<div class="card"><h3>Rules fired (all accounts)</h3><table>{rules or "<tr><td>none</td></tr>"}</table>'
        "</div></div></section>"
    )


def _pack_changes(changes: dict[str, Any] | None) -> str:
    if not changes or not changes.get("differs"):
        return "the rules the model was trained with"
    parts = [f"{what}: {', '.join(changes[what])}" for what in ("new", "changed", "removed") if changes.get(what)]
    listed = "; ".join(parts) or "rule files changed"
    return (f"differs from training ({changes['trained_with']} → {changes['in_use']}); {listed} — new and changed "
            "rules weigh their severity prior")  # fmt: skip


def _lead_table(leads: pl.DataFrame) -> str:
    types = sorted({t for ts in leads["typologies"].to_list() for t in ts})
    options = "".join(f'<option value="{e(t)}">{e(t)}</option>' for t in types)
    headers = ["rank", "lead", "account", "score", "model", "rules", "typologies", "rules fired", "first raised",
               "evidence"]  # fmt: skip
    head = "".join(f'<th onclick="sortTable({i})">{e(h)}</th>' for i, h in enumerate(headers))
    rows = []
    for r in leads.iter_rows(named=True):
        rows.append(
            f'<tr class="lead" data-typologies="{e(" ".join(r["typologies"]))}" '
            f"onclick=\"location.hash='lead-{e(r['lead_id'])}'\">"
            f'<td data-v="{r["rank"]}">{r["rank"]}</td><td><a href="#lead-{e(r["lead_id"])}">{e(r["lead_id"])}</a></td>'
            f'<td>{e(r["subject_id"])}</td><td data-v="{r["score"]}">{r["score"]:.3f}</td>'
            f'<td data-v="{r["model_score"]}">{r["model_score"]:.3f}</td>'
            f'<td data-v="{r["rules_score"]}">{r["rules_score"]:.3f}</td>'
            f"<td>{e(', '.join(r['typologies']))}</td><td>{e(', '.join(r['rules_fired']))}</td>"
            f'<td>{e(r["first_raised"][:10])}</td><td data-v="{len(r["evidence_txn_ids"])}">'
            f"{len(r['evidence_txn_ids'])}</td></tr>"
        )
    return (
        f'<section id="leads-section"><h2>Leads</h2><p><input id="q" placeholder="filter…" oninput="filterTable()">'
        f'<select id="ty" onchange="filterTable()"><option value="">all typologies</option>{options}</select>'
        f'<span class="muted"><span id="shown">{leads.height}</span> of {leads.height} shown; click a header to sort, '
        f'a row to open its case</span></p><table id="leads"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _case(lead: dict[str, Any], txns: pl.DataFrame, start: dt.datetime, end: dt.datetime) -> str:
    account = lead["subject_id"]
    mine = txns.filter((pl.col("src_account") == account) | (pl.col("dst_account") == account))
    evidence = set(lead["evidence_txn_ids"])
    paths = json.loads(lead["cycle_paths"])
    members = {a for p in paths for a in p["accounts"]} - {account}
    reasons = json.loads(lead["reasons"])
    items = []
    for r in reasons:
        if r["source"] == "rule":
            items.append(f'<div class="reason-rule">{e(r["text"])}<br><span class="muted">{e(r["citation"])}</span>'
                         "</div>")  # fmt: skip
        else:
            items.append(f'<div class="reason-model">{e(r["text"])} <span class="muted">(model contribution '
                         f"{r['contribution']:+.2f})</span></div>")  # fmt: skip
    ev_rows = mine.filter(pl.col("txn_id").is_in(list(evidence)))
    ev_table = "".join(
        f"<tr><td><code>{e(t['txn_id'])}</code></td><td>{e(t['ts'])}</td><td>{e(t['src_account'])}</td>"
        f"<td>{e(t['dst_account'])}</td><td>{e(_amount(t['amount']))} {e(t['currency'])}</td>"
        f"<td>{t['amount_base']:,.2f}</td><td>{e(t['channel'])}</td><td>{e(t['mcc'] or '')}</td>"
        f"<td>{e(t['counterparty_name'] or '')}</td></tr>"
        for t in ev_rows.iter_rows(named=True)
    )
    cycle_text = "".join(
        f"<li>{' → '.join(e(a) for a in p['accounts'])} <span class=\"muted\">({len(p['txn_ids'])} transactions)"
        "</span></li>" for p in paths
    )  # fmt: skip
    return (
        f'<section class="case" id="lead-{e(lead["lead_id"])}">'
        f'<p><a href="#leads-section">← all leads</a></p><h2>Case {e(lead["lead_id"])}: account '
        f"{e(account)}</h2><p>rank {lead['rank']}, score {lead['score']:.3f} (model {lead['model_score']:.3f}, rules "
        f"{lead['rules_score']:.3f}); typologies: {e(', '.join(lead['typologies']) or 'none named by a rule')}; "
        f"first raised {e(lead['first_raised'])}; model {e(lead['model'])}, rules {e(lead['rules_version'])}</p>"
        f"<h3>Reasons</h3>{''.join(items)}"
        f'<div class="grid"><div><h3>Counterparties (30 days)</h3>{_graph(account, mine, members, evidence)}</div>'
        f"<div><h3>Timeline (30 days)</h3>{_timeline(account, mine, evidence, start, end)}</div></div>"
        + (f"<h3>Cycles</h3><ul>{cycle_text}</ul>" if paths else "")
        + f"<h3>Evidence ({len(evidence)} transactions)</h3><table><thead><tr><th>id</th><th>time</th><th>from</th>"
        "<th>to</th><th>amount</th><th>base</th><th>channel</th><th>MCC</th><th>counterparty</th></tr></thead>"
        f'<tbody>{ev_table}</tbody></table><p><a href="#leads-section">back to the leads</a></p></section>'
    )
