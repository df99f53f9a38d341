"""The HTML report: self-contained, escaped, reproducible, and working in a real browser."""

from __future__ import annotations

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
from tests.conftest import run_score

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


def test_the_report_lists_every_lead_and_has_a_case_per_lead(run_dir: Path) -> None:
    leads = pl.read_parquet(run_dir / "leads.parquet")
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    tree = lxml_html.fromstring(page)
    rows = tree.xpath('//table[@id="leads"]/tbody/tr')
    assert len(rows) == leads.height
    for lead in leads["lead_id"].to_list():
        case = tree.xpath(f'//section[@id="lead-{lead}"]')
        assert len(case) == 1
        assert case[0].xpath('.//svg[contains(@class, "graph")] | .//p[@class="muted"]')
    # self-contained: no external scripts, styles, images or fonts
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page


def test_the_same_run_gives_the_same_report(run_dir: Path, tmp_path: Path) -> None:
    again = build_report(RunFolder(run_dir), out=tmp_path / "again.html")
    assert again.read_bytes() == (run_dir / "report.html").read_bytes()


def test_values_from_the_data_are_escaped(run_dir: Path, tmp_path: Path) -> None:
    hostile = tmp_path / "runs" / "hostile"
    shutil.copytree(run_dir, hostile)
    leads = pl.read_parquet(hostile / "leads.parquet")
    leads = leads.with_columns(typologies=pl.lit(['<script>alert("x")</script>'], pl.List(pl.String)))
    leads.write_parquet(hostile / "leads.parquet")
    page = build_report(RunFolder(hostile)).read_text(encoding="utf-8")
    assert '<script>alert("x")' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)" in page


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
    assert len(tree.xpath('//table[@id="leads"]/tbody/tr')) == leads.height
    assert "case-mode" not in (tree.xpath("//body/@class") or [""])[0]
    lead = leads.filter(pl.col("rules_fired").list.len() > 0)["lead_id"][0]
    dom = _browser("--dump-dom", f"{url}#lead-{lead}").stdout
    tree = lxml_html.fromstring(dom)
    assert "case-mode" in tree.xpath("//body/@class")[0]  # the script switched to the case page
    assert tree.xpath(f'//section[@id="lead-{lead}"]//svg[contains(@class, "graph")]//circle')
    shot = tmp_path / "case.png"
    _browser("--window-size=1280,1400", f"--screenshot={shot}", f"{url}#lead-{lead}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
