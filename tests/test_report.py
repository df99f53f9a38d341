"""The HTML report: self-contained, escaped, reproducible, and working in a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from lxml import html as lxml_html

from finwatch.dataset import end_of_data
from finwatch.exceptions import FinwatchError
from finwatch.registry import Registry
from finwatch.report import build_report, psi
from finwatch.runs import RunFolder
from finwatch.store import Store
from tests.conftest import rewrite_leads, run_score

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
#: CI installs Chromium and sets this, so that a missing browser fails there instead of skipping
REQUIRE_BROWSER = os.environ.get("FINWATCH_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def run_dir(scored: tuple[Path, Registry], tmp_path_factory: pytest.TempPathFactory) -> Path:
    store, registry = scored
    folder = tmp_path_factory.mktemp("report") / "runs" / "r1"
    run_score(store, end_of_data(Store(store)), registry, folder, "finwatch@champion", budget=0.02)
    build_report(RunFolder(folder))
    return folder


def lead_data(page: str) -> list[list[object]]:
    tree = lxml_html.fromstring(page)
    return json.loads(tree.xpath('//script[@id="lead-data"]')[0].text)  # type: ignore[no-any-return]


def test_the_report_lists_every_lead_and_has_a_case_page_per_lead(run_dir: Path) -> None:
    leads = pl.read_parquet(run_dir / "leads.parquet")
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    data = lead_data(page)
    assert [row[1] for row in data] == leads["lead_id"].to_list()
    cases = run_dir / "report-cases"
    assert json.loads((cases / "cases.json").read_text()) == leads["lead_id"].to_list()
    for lead in leads["lead_id"].to_list():
        tree = lxml_html.fromstring((cases / f"{lead}.html").read_text(encoding="utf-8"))
        case = tree.xpath(f'//section[@id="lead-{lead}"]')
        assert len(case) == 1
        assert case[0].xpath('.//svg[contains(@class, "graph")] | .//p[@class="muted"]')
        assert tree.xpath('//a[@href="../report.html"]')
    # self-contained: no external scripts, styles, images or fonts
    for html in (page, (cases / f"{leads['lead_id'][0]}.html").read_text(encoding="utf-8")):
        assert not re.search(r'(src|href)="(https?:)?//', html)
        assert "<link" not in html


def test_the_same_run_gives_the_same_report(run_dir: Path, tmp_path: Path) -> None:
    again = build_report(RunFolder(run_dir), out=tmp_path / "again.html")
    assert again.read_bytes() == (run_dir / "report.html").read_bytes().replace(b"report-cases", b"again-cases")
    first, second = run_dir / "report-cases", tmp_path / "again-cases"
    assert sorted(p.name for p in first.iterdir()) == sorted(p.name for p in second.iterdir())
    for path in first.iterdir():
        assert path.read_bytes() == (second / path.name).read_bytes().replace(b"again.html", b"report.html")


def test_values_from_the_data_are_escaped(run_dir: Path, tmp_path: Path) -> None:
    hostile = tmp_path / "runs" / "hostile"
    shutil.copytree(run_dir, hostile)
    leads = pl.read_parquet(hostile / "leads.parquet")
    leads = leads.with_columns(typologies=pl.lit(['<script>alert("x")</script>'], pl.List(pl.String)))
    rewrite_leads(hostile, leads)  # published as such: report refuses a run whose files changed size
    page = build_report(RunFolder(hostile)).read_text(encoding="utf-8")
    assert '<script>alert("x")' not in page
    assert lead_data(page)[0][7] == '<script>alert("x")</script>'  # kept as data, escaped by the page's script
    case = (hostile / "report-cases" / f"{leads['lead_id'][0]}.html").read_text(encoding="utf-8")
    assert '<script>alert("x")' not in case
    assert "&lt;script&gt;alert(&quot;x&quot;)" in case


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FinwatchError, match="not a finwatch run folder"):
        build_report(RunFolder(tmp_path))


def test_psi_is_zero_for_equal_distributions_and_grows_with_shift() -> None:
    assert psi([10, 20, 30], [10, 20, 30]) == pytest.approx(0.0)
    assert psi([10, 20, 30], [30, 20, 10]) > psi([10, 20, 30], [12, 20, 28]) > 0


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(BROWSER is None and not REQUIRE_BROWSER, reason="Chromium is not installed")
def test_in_a_headless_browser_the_table_lists_leads_and_a_case_shows_its_graph(run_dir: Path, tmp_path: Path) -> None:
    assert BROWSER is not None, "Chromium is required here (FINWATCH_REQUIRE_BROWSER=1)"
    leads = pl.read_parquet(run_dir / "leads.parquet")
    url = (run_dir / "report.html").as_uri()
    dom = _browser("--dump-dom", url).stdout
    tree = lxml_html.fromstring(dom)
    rows = tree.xpath('//table[@id="leads"]/tbody/tr')
    assert len(rows) == leads.height  # the script rendered every lead (fewer than a page)
    assert rows[0].xpath("./td[2]/a/@href")[0] == f"report-cases/{leads['lead_id'][0]}.html"
    # sorting by risk (highest first), then filtering by a typology, answer in the page itself
    probe = tmp_path / "probe.html"
    typology = next(t for ts in leads["typologies"].to_list() for t in ts)
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    probe.write_text(
        page.replace(
            "</body>",
            "<script>sortTable(3);document.getElementById('ty').value="
            f"{json.dumps(typology)};filterTable();</script></body>",
        ),
        encoding="utf-8",
    )
    shutil.copytree(run_dir / "report-cases", tmp_path / "report-cases")
    tree = lxml_html.fromstring(_browser("--dump-dom", probe.as_uri()).stdout)
    shown = tree.xpath('//table[@id="leads"]/tbody/tr')
    wanted = leads.filter(pl.col("typologies").list.contains(typology))
    assert len(shown) == wanted.height
    risks = [float(r.xpath("./td[4]/text()")[0]) for r in shown]
    assert risks == sorted(risks, reverse=True)
    lead = leads.filter(pl.col("rules_fired").list.len() > 0)["lead_id"][0]
    case_url = (run_dir / "report-cases" / f"{lead}.html").as_uri()
    tree = lxml_html.fromstring(_browser("--dump-dom", case_url).stdout)
    assert tree.xpath(f'//section[@id="lead-{lead}"]//svg[contains(@class, "graph")]//circle')
    shot = tmp_path / "case.png"
    _browser("--window-size=1280,1400", f"--screenshot={shot}", case_url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_case_shows_each_reasons_transactions_apart_from_routine_activity() -> None:
    """The cycle transfers support the cycle reason; card and grocery payments are context, not evidence."""
    import datetime as dt
    import json

    from finwatch.report import _case
    from finwatch.testing import make_transactions

    end = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    txns = make_transactions([
        {"txn_id": "c1", "ts": end - dt.timedelta(days=3), "src": "A", "dst": "B", "amount": "9000"},
        {"txn_id": "c2", "ts": end - dt.timedelta(days=2), "src": "C", "dst": "A", "amount": "8800"},
        {"txn_id": "g1", "ts": end - dt.timedelta(days=1), "src": "A", "dst": "SHOP", "amount": "42",
         "channel": "card", "counterparty_name": "GROCER"},
        {"txn_id": "w1", "ts": end - dt.timedelta(hours=5), "src": "A", "dst": None, "amount": "200",
         "channel": "cash"},
    ])  # fmt: skip
    reasons = [{"source": "rule", "rule_id": "FW-CYC-001", "text": "On a temporal cycle.", "citation": "FATF",
                "severity": "high", "typology": "cycle", "evidence_txn_ids": ["c1", "c2"]}]  # fmt: skip
    lead = {"lead_id": "L-1", "subject_id": "A", "rank": 1, "risk_score": 61.5, "percentile": 99.9, "score": 0.99,
            "model_score": 0.9, "rules_score": 0.9, "typologies": ["cycle"], "first_raised": end.isoformat(),
            "model": "m@1", "rules_version": "r", "evidence_txn_ids": ["c1", "c2"], "reasons": json.dumps(reasons),
            "cycle_paths": json.dumps([{"accounts": ["A", "B", "C", "A"], "txn_ids": ["c1", "x", "c2"]}]),
            "holder_name": "Example Holder", "holder_type": "person", "institution": "BANK"}  # fmt: skip
    page = _case(lead, txns, end - dt.timedelta(days=30), end)
    evidence = page.split('<table class="evidence"', 1)[1].split("</table>", 1)[0]
    context = page.split('<table class="context"', 1)[1].split("</table>", 1)[0]
    assert {"c1", "c2"} <= {t for t in ("c1", "c2", "g1", "w1") if f">{t}<" in evidence}
    assert not {t for t in ("g1", "w1") if f">{t}<" in evidence}
    assert {t for t in ("c1", "c2", "g1", "w1") if f">{t}<" in context} == {"g1", "w1"}
    assert "None" not in page
    assert ">cash<" in context  # the cash side of the withdrawal
    assert "risk score 61.5 / 100" in page
    assert "Example Holder" in page
