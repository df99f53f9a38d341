"""The report at 10,000 leads: how fast its index opens, sorts and filters in headless Chromium.

    python benchmarks/bench_report.py [--accounts 20000] [--leads 10000]

Builds a real run: the default synthetic world (kept in benchmarks/out/report-world), its store, an account-level
model, and a scoring run whose budget raises at least ``--leads`` leads; then writes the report (index and one
page per case) and opens the index in headless Chromium with a probe script appended that times, inside the page,
the first render, a sort by risk and a filter by typology (each followed by a forced layout).

Prints the run's lead count, the report's sizes, the time to write it, the index's DOM size, Chromium's wall time
to load the page, and the in-page times. Targets: the index opens in under 2 s, a sort or a filter answers in
under 200 ms.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from _common import OUT

PROBE = """<script>
const t={};t.loaded=performance.now();
function lay(){return document.body.offsetHeight;}
let a=performance.now();sortTable(3);lay();t.sort_risk=performance.now()-a;
a=performance.now();sortTable(2);lay();t.sort_account=performance.now()-a;
a=performance.now();document.getElementById('ty').value=TYPOLOGY;filterTable();lay();t.filter_typology=performance.now()-a;
a=performance.now();document.getElementById('q').value='1';filterTable();lay();t.filter_text=performance.now()-a;
a=performance.now();turn(1);lay();t.next_page=performance.now()-a;
t.rows=document.querySelectorAll('#leads tbody tr').length;t.dom=document.getElementsByTagName('*').length;
document.title='PROBE'+JSON.stringify(t);
</script></body>"""


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise SystemExit("headless Chromium is needed (Debian: apt-get install chromium)")


def build_run(accounts: int, leads: int) -> Path:
    from finwatch.config import RunConfig
    from finwatch.dataset import end_of_data
    from finwatch.experiment import train_model
    from finwatch.features import build_account_features
    from finwatch.ingest import ingest, ingest_options
    from finwatch.leads import score_run
    from finwatch.registry import Registry
    from finwatch.store import Store
    from finwatch.synth import WorldConfig, generate_world, save_world

    root = OUT / f"report-world-{accounts}"
    world = root / "world"
    if not (world / "world.json").is_file():
        save_world(generate_world(WorldConfig(seed=7, accounts=accounts)), world)
    config = RunConfig().updated({"ingest.fx": world / "fx_rates.csv", "train.level": "account",
                                  "train.step_hours": 168, "train.model.params": {"n_estimators": 60}})  # fmt: skip
    store = Store(root / "store")
    if not store.exists:
        inputs = [world / "truth" / "transactions.parquet", world / "truth" / "accounts.parquet",
                  world / "labels" / "accounts.parquet", world / "labels" / "transactions.parquet"]  # fmt: skip
        ingest(inputs, store.root, ingest_options(config))
    registry = Registry(root / "models")
    if not registry.versions("bench"):
        registry.promote(train_model(store, "bench", config, registry).ref, "champion")
    as_of = end_of_data(store)
    scored = build_account_features(store, as_of, config.features).accounts.height
    budget = min(0.99, (leads + 0.5) / scored)
    run = score_run(store, as_of, registry, root / "runs" / "bench",
                    config.updated({"score.model": "bench@champion", "score.budget": budget}))  # fmt: skip
    print(f"run: {run.leads.height:,} leads of {scored:,} accounts (budget {budget:.4f})")
    return run.folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--leads", type=int, default=10_000)
    args = parser.parse_args()
    from finwatch.report import build_report
    from finwatch.runs import RunFolder

    folder = build_run(args.accounts, args.leads)
    began = time.perf_counter()
    index = build_report(RunFolder(folder))
    written = time.perf_counter() - began
    cases = folder / "report-cases"
    case_bytes = sum(p.stat().st_size for p in cases.iterdir())
    print(f"report written in {written:.1f} s: index {index.stat().st_size / 1e6:.2f} MB, "
          f"{len(list(cases.iterdir())) - 1:,} case pages, {case_bytes / 1e6:.1f} MB in all")  # fmt: skip
    typologies = re.findall(r'<option value="([^"]+)">', index.read_text(encoding="utf-8"))
    probe = folder / "probe.html"
    page = index.read_text(encoding="utf-8").replace(
        "</body>", f"<script>const TYPOLOGY={json.dumps(typologies[0] if typologies else '')};</script>" + PROBE
    )
    probe.write_text(page, encoding="utf-8")
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--dump-dom"]
    blank = folder / "blank.html"
    blank.write_text("<!doctype html><title>blank</title>", encoding="utf-8")
    began = time.perf_counter()
    subprocess.run([*command, blank.as_uri()], capture_output=True, check=True, timeout=120)
    baseline = time.perf_counter() - began
    began = time.perf_counter()
    dom = subprocess.run([*command, probe.as_uri()], capture_output=True, text=True, check=True, timeout=300).stdout
    wall = time.perf_counter() - began
    found = re.search(r"<title>PROBE(.*?)</title>", dom)
    if not found:
        raise SystemExit("the probe did not run")
    t = json.loads(found.group(1).replace("&quot;", '"'))
    print(f"index: {t['dom']:,} DOM elements, {t['rows']} rows shown after the last step")
    print(
        f"open: Chromium {wall:.2f} s for the page vs {baseline:.2f} s for a blank one "
        f"(≈ {wall - baseline:.2f} s for the index); in the page, script done at {t['loaded'] / 1000:.2f} s"
    )
    for step in ("sort_risk", "sort_account", "filter_typology", "filter_text", "next_page"):
        print(f"{step:16s} {t[step]:8.1f} ms")
    probe.unlink()
    blank.unlink()


if __name__ == "__main__":
    main()
