"""One self-contained HTML file per scoring run: overview, a lead table, and a case page per lead.

No network: styles, scripts and charts (inline SVG) are all in the file. Every value from the data is escaped, its
control and bidirectional characters shown as visible escapes (:mod:`finwatch.sanitize`). Same run → the same bytes.

The report is written only to a ``.html`` file that is absent or is a finwatch report already (of any run: a page
carrying :data:`GENERATOR`, or a report written before it did); anything else at that path is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from finwatch._io import atomic_directory, atomic_write_text
from finwatch.exceptions import OutputExistsError
from finwatch.runs import RunFolder
from finwatch.sanitize import html_data, html_text
from finwatch.store import Store

__all__ = ["GENERATOR", "build_report", "check_target", "psi"]

GRAPH_NEIGHBOURS = 24
TIMELINE_ROWS = 400
#: the mark in the head of every page finwatch writes: an existing file is replaced only when it carries it
GENERATOR = '<meta name="generator" content="finwatch report">'
#: how a report written before :data:`GENERATOR` begins
_EARLIER_REPORT = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>finwatch leads — '


def e(value: Any) -> str:
    """A value from the data in HTML text or a quoted attribute (:func:`finwatch.sanitize.html_text`)."""
    return html_text(value)


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
table{border-collapse:collapse;width:100%;font-size:13px}#leads{table-layout:fixed}
#leads td{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left}
th{cursor:pointer;background:#f0f3f7;position:sticky;top:0}tr.lead:hover{background:#eef4ff;cursor:pointer}
.muted{color:#777}.legend{font-size:12px;color:#555}.grid{display:flex;flex-wrap:wrap;gap:16px}
.card{min-width:200px}.kv td:first-child{color:#555;width:220px}
.reason-rule{border-left:4px solid #c0392b;padding-left:8px;margin:4px 0}
.reason-model{border-left:4px solid #4a6fa5;padding-left:8px;margin:4px 0}
table.evidence{margin:4px 0 10px 0;background:#fff8ef}.context{color:#666}
@media print{.nav,.grid,button,input,select{display:none}body{background:#fff}section{border:none}
th{position:static}table.evidence{background:#fff}h3{page-break-after:avoid}tr{page-break-inside:avoid}}
input,select{padding:4px;margin-right:8px}code{font-size:12px}
"""

#: the lead table: rows come from the page's JSON, sorted and filtered in memory, shown a page at a time, so that
#: tens of thousands of leads open and sort at once
JS = """
const D=JSON.parse(document.getElementById('lead-data').textContent);
const NUMERIC=new Set([0,3,4,5,6,10]);const PAGE=200;let view=D.slice(),page=0,col=0,asc=true;
for(const r of D){r.push((r.slice(1,10).join(' ')+' '+r[11]).toLowerCase());}
const ENT={'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'};
function esc(s){return String(s??'').replace(/[&<>"']/g,c=>ENT[c]);}
function cmp(a,b){if(NUMERIC.has(col))return (a[col]-b[col])||(a[0]-b[0]);
const x=String(a[col]),y=String(b[col]);return (x<y?-1:x>y?1:0)||(a[0]-b[0]);}
function render(){const t0=page*PAGE;let h='';for(const r of view.slice(t0,t0+PAGE)){
h+='<tr class="lead"><td>'+r[0]+'</td><td><a href="'+esc(CASES)+'/'+esc(r[1])+'.html">'+esc(r[1])+'</a></td><td>'
+esc(r[2])+'</td><td>'+r[3].toFixed(1)+'</td><td>'+r[4].toFixed(3)+'</td><td>'+r[5].toFixed(3)+'</td><td>'
+r[6].toFixed(3)+'</td><td>'+esc(r[7])+'</td><td>'+esc(r[8])+'</td><td>'+esc(r[9])+'</td><td>'+r[10]+'</td><td>'
+esc(r[11])+'</td></tr>';}
document.getElementById('rows').innerHTML=h;document.getElementById('shown').textContent=view.length;
document.getElementById('page').textContent=view.length?(t0+1)+'–'+Math.min(t0+PAGE,view.length):'0';}
function sortTable(c){asc=(c===col)?!asc:!NUMERIC.has(c)||c===0;col=c;view.sort(cmp);if(!asc)view.reverse();page=0;
render();}
function filterTable(){const q=document.getElementById('q').value.toLowerCase();
const ty=document.getElementById('ty').value;
view=D.filter(r=>(!q||r[12].includes(q))&&(!ty||r[7].split(', ').includes(ty)));view.sort(cmp);if(!asc)view.reverse();
page=0;render();}
function turn(d){const last=Math.max(0,Math.ceil(view.length/PAGE)-1);page=Math.min(last,Math.max(0,page+d));render();}
render();
"""


def build_report(run_folder: RunFolder, store_dir: Path | None = None, out: Path | None = None) -> Path:
    """Write the run's report: an index page (``report.html``: overview and the lead table) and one page per case
    in the folder beside it (``report-cases/<lead id>.html``); returns the index's path.

    The case pages are written first, as one folder renamed into place; the index last.
    """
    run = run_folder.info
    target = out or run_folder.path / "report.html"
    check_target(target)
    leads = run_folder.leads()
    store = run_folder.store(store_dir)
    as_of = dt.datetime.fromisoformat(run["as_of"])
    start = as_of - dt.timedelta(days=30)
    cases = target.with_name(f"{target.stem}-cases")
    txns = _transactions(store, leads["subject_id"].to_list(), start, as_of)
    title = f"finwatch run {e(run['run_id'])} as of {e(run['as_of'])}"
    with atomic_directory(cases, marker="cases.json") as staging:
        by_account = txns.partition_by("account", as_dict=True, include_key=False) if txns.height else {}
        empty = txns.clear().drop("account")
        for row in leads.iter_rows(named=True):
            mine = by_account.get((row["subject_id"],), empty)
            page = _page(
                f"Case {e(row['lead_id'])} — {title}", _case(row, mine, start, as_of), back=f"../{target.name}"
            )
            (staging / f"{row['lead_id']}.html").write_text(page, encoding="utf-8")
        (staging / "cases.json").write_text(json.dumps(leads["lead_id"].to_list()) + "\n", encoding="utf-8")
    earlier = run_folder.previous()
    body = _overview(run, leads, earlier.info if earlier is not None else None) + _lead_table(leads, cases.name)
    atomic_write_text(target, _page(f"finwatch leads — {title}", body, script=JS))
    return target


def check_target(target: Path) -> None:
    """Refuse to write the report over anything but a finwatch report, or to a file that is not ``.html``."""
    if target.suffix.lower() not in (".html", ".htm"):
        raise OutputExistsError(f"{target}: the report is an HTML file: give a path ending in .html")
    if not target.exists():
        return
    if not target.is_file():
        raise OutputExistsError(f"{target}: exists and is not a file")
    with target.open("rb") as handle:
        head = handle.read(2048).decode("utf-8", errors="replace")
    if GENERATOR not in head and not head.startswith(_EARLIER_REPORT):
        raise OutputExistsError(f"{target}: exists and is not a finwatch report: not overwritten")


def _transactions(store: Store, accounts: list[str], start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Every transaction of the lead accounts in (start, end], once per lead account it touches (``account``)."""
    columns = ("txn_id", "ts", "src_account", "dst_account", "amount", "currency", "amount_base", "channel", "mcc",
               "counterparty_name", "country")  # fmt: skip
    window = store.scan("transactions").filter((pl.col("ts") > start) & (pl.col("ts") <= end)).select(columns)
    sides = [window.filter(pl.col(side).is_in(accounts)).with_columns(account=pl.col(side))
             for side in ("src_account", "dst_account")]  # fmt: skip
    return pl.concat(sides).unique(["account", "txn_id"]).sort(["account", "ts", "txn_id"]).collect()


def _page(title: str, body: str, *, script: str = "", back: str | None = None) -> str:
    nav = f'<p class="nav"><a href="{e(back)}">← all leads</a></p>' if back else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{GENERATOR}<title>{title}</title>'
        f"<style>{CSS}</style>"
        f"</head><body><header><h1>{title}</h1></header><main>{nav}{body}</main>"
        + (f"<script>{script}</script>" if script else "")
        + "</body></html>\n"
    )


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


def _lead_table(leads: pl.DataFrame, cases: str) -> str:
    types = sorted({t for ts in leads["typologies"].to_list() for t in ts})
    options = "".join(f'<option value="{e(t)}">{e(t)}</option>' for t in types)
    headers = ["rank", "lead", "account", "risk", "score", "model", "rules", "typologies", "rules fired",
               "first raised", "evidence", "holder"]  # fmt: skip
    head = "".join(f'<th onclick="sortTable({i})">{e(h)}</th>' for i, h in enumerate(headers))
    data = [
        [r["rank"], html_data(r["lead_id"]), html_data(r["subject_id"]), r.get("risk_score") or 0.0, r["score"],
         r["model_score"], r["rules_score"], html_data(", ".join(r["typologies"])),
         html_data(", ".join(r["rules_fired"])), html_data(r["first_raised"][:10]), len(r["evidence_txn_ids"]),
         html_data(r.get("holder_name") or "")]
        for r in leads.iter_rows(named=True)
    ]  # fmt: skip
    return (
        f'<section id="leads-section"><h2>Leads</h2><p><input id="q" placeholder="filter…" oninput="filterTable()">'
        f'<select id="ty" onchange="filterTable()"><option value="">all typologies</option>{options}</select>'
        f'<span class="muted"><span id="shown">{leads.height}</span> of {leads.height} match; rows <span id="page">'
        f'</span> shown <button onclick="turn(-1)">‹</button><button onclick="turn(1)">›</button>; click a header '
        f"to sort, a lead to open its case</span></p>"
        f'<table id="leads"><thead><tr>{head}</tr></thead><tbody id="rows"></tbody></table></section>'
        f'<script id="lead-data" type="application/json">{_json(data)}</script>'
        f"<script>const CASES={_json(html_data(cases))};</script>"
    )


def _json(value: Any) -> str:
    """JSON safe inside a script element: no ``<``, ``>`` or ``&`` that could end it or start markup."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


CONTEXT_ROWS = 30
TXN_HEAD = ("<thead><tr><th>id</th><th>time</th><th>from</th><th>to</th><th>amount</th><th>base</th>"
            "<th>channel</th><th>MCC</th><th>counterparty</th></tr></thead>")  # fmt: skip


def _party(account: str | None) -> str:
    """A side of a transaction: the account, or cash for the cash side of a deposit or withdrawal."""
    return e(account) if account is not None else '<span class="muted">cash</span>'


def _txn_rows(rows: pl.DataFrame) -> str:
    return "".join(
        f"<tr><td><code>{e(t['txn_id'])}</code></td><td>{e(t['ts'])}</td><td>{_party(t['src_account'])}</td>"
        f"<td>{_party(t['dst_account'])}</td><td>{e(_amount(t['amount']))} {e(t['currency'])}</td>"
        f"<td>{t['amount_base']:,.2f}</td><td>{e(t['channel'])}</td><td>{e(t['mcc'] or '')}</td>"
        f"<td>{e(t['counterparty_name'] or '')}</td></tr>"
        for t in rows.iter_rows(named=True)
    )


def _reason(reason: dict[str, Any], mine: pl.DataFrame) -> str:
    """A reason with the transactions that support it."""
    if reason["source"] == "rule":
        head = f'<div class="reason-rule">{e(reason["text"])}<br><span class="muted">{e(reason["citation"])}</span>'
    else:
        head = (f'<div class="reason-model">{e(reason["text"])} <span class="muted">(model contribution '
                f"{reason['contribution']:+.2f})</span>")  # fmt: skip
    ids = list(reason.get("evidence_txn_ids") or [])
    rows = mine.filter(pl.col("txn_id").is_in(ids))
    if not ids:
        return head + '<p class="muted">No single transaction: a measure of the account as a whole.</p></div>'
    outside = len(ids) - rows.height
    note = f'<p class="muted">{outside} more outside the 30-day window.</p>' if outside > 0 else ""
    return (f'{head}<table class="evidence" data-reason="{e(reason.get("rule_id") or reason.get("feature"))}">'
            f"{TXN_HEAD}<tbody>{_txn_rows(rows)}</tbody></table>{note}</div>")  # fmt: skip


def _case(lead: dict[str, Any], txns: pl.DataFrame, start: dt.datetime, end: dt.datetime) -> str:
    account = lead["subject_id"]
    mine = txns.filter((pl.col("src_account") == account) | (pl.col("dst_account") == account))
    evidence = set(lead["evidence_txn_ids"])
    paths = json.loads(lead["cycle_paths"])
    members = {a for p in paths for a in p["accounts"]} - {account}
    reasons = json.loads(lead["reasons"])
    items = [_reason(r, mine) for r in reasons]
    context = mine.filter(~pl.col("txn_id").is_in(list(evidence))).sort(["ts", "txn_id"], descending=True)
    shown = context.head(CONTEXT_ROWS)
    cycle_text = "".join(
        f"<li>{' → '.join(e(a) for a in p['accounts'])} <span class=\"muted\">({len(p['txn_ids'])} transactions)"
        "</span></li>" for p in paths
    )  # fmt: skip
    holder = ", ".join(e(lead.get(k)) for k in ("holder_name", "holder_type", "institution") if lead.get(k))
    risk = lead.get("risk_score")
    scores = (f"risk score {risk:.1f} / 100 (above {lead['percentile']:.3f} % of scored accounts); "
              if risk is not None else "")  # fmt: skip
    return (
        f'<section class="case" id="lead-{e(lead["lead_id"])}">'
        f"<h2>Case {e(lead['lead_id'])}: account "
        f"{e(account)}</h2>"
        + (f"<p>holder: {holder}</p>" if holder else "")
        + f"<p>rank {lead['rank']}, {scores}score {lead['score']:.6f} (model {lead['model_score']:.6f}, rules "
        f"{lead['rules_score']:.3f}); typologies: {e(', '.join(lead['typologies']) or 'none named by a rule')}; "
        f"first raised {e(lead['first_raised'])}; model {e(lead['model'])}, rules {e(lead['rules_version'])}</p>"
        f"<h3>Reasons and the transactions behind each</h3>{''.join(items)}"
        f'<div class="grid"><div><h3>Counterparties (30 days)</h3>{_graph(account, mine, members, evidence)}</div>'
        f"<div><h3>Timeline (30 days)</h3>{_timeline(account, mine, evidence, start, end)}</div></div>"
        + (f"<h3>Cycles</h3><ul>{cycle_text}</ul>" if paths else "")
        + f"<h3>Other recent activity (context, not evidence: {context.height} transactions, latest "
        f'{shown.height} shown)</h3><table class="context">{TXN_HEAD}<tbody>{_txn_rows(shown)}</tbody></table>'
        "</section>"
    )
