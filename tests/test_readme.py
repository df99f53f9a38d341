"""The README as a newcomer follows it: every command block, in order, on a small world.

Each ```sh block runs in one bash process (``set -euo pipefail``) in a fresh folder, with ``.venv/bin/`` and the
checkout's paths made absolute, the first world made small (1,500 accounts over 14 days), and the placeholders of
"Your own exports" (``exports/``, ``export.csv``, ``mybank.toml``, …) made from that world's files. A block is skipped
only when the README itself says why, in a ``<!-- readme-test: skip (…) -->`` comment just above it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from finwatch.config import load_config

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BLOCK = re.compile(r"(?:<!-- readme-test: skip \((?P<why>[^)]*)\) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)

# what makes the README's default world small, and its checkout-relative paths absolute
SMALL = {"--out worlds/w7 --seed 7 ": "--out worlds/w7 --seed 7 --accounts 1500 --days 14 "}
PATHS = {
    ".venv/bin/": f"{Path(sys.executable).parent}/",
    "python flows/": f"python {REPO}/flows/",
    "features/goaml/": f"{REPO}/features/goaml/",
    "features/fincen/": f"{REPO}/features/fincen/",
    "your-fiu-goaml.xsd": f"{REPO}/tests/fixtures/goaml/goAMLSchema-5.0.1.xsd",
}
SHIPPED_MAPPINGS = REPO / "src" / "finwatch" / "data" / "mappings"


def _outcomes(cwd: Path) -> None:
    labels = pl.read_parquet(cwd / "worlds/w7/labels/accounts.parquet")
    labels.select("subject_kind", "subject_id", "label", "typology").write_csv(cwd / "outcomes.csv")


def _exports(cwd: Path) -> None:
    (cwd / "exports").mkdir()
    for statement in sorted((cwd / "worlds/w7/camt053").glob("*/*.xml"))[:3]:
        shutil.copy(statement, cwd / "exports" / statement.name)


# "your own files": each placeholder the README names, made from the small world when a block first needs it
PLACEHOLDERS: dict[str, Callable[[Path], None]] = {
    "exports/*.xml": _exports,
    "my-rates.csv": lambda cwd: shutil.copy(cwd / "worlds/w7/fx_rates.csv", cwd / "my-rates.csv"),
    "export.csv": lambda cwd: shutil.copy(cwd / "worlds/w7/bank-csv/transactions.csv", cwd / "export.csv"),
    "mybank.toml": lambda cwd: shutil.copy(SHIPPED_MAPPINGS / "finwatch-synth-bank.toml", cwd / "mybank.toml"),
    " customers.csv": lambda cwd: shutil.copy(cwd / "worlds/w7/customers/customers.csv", cwd / "customers.csv"),
    "mycustomers.toml": lambda cwd: shutil.copy(
        SHIPPED_MAPPINGS / "finwatch-synth-customers.toml", cwd / "mycustomers.toml"
    ),
    "outcomes.csv": _outcomes,
}


def blocks(lang: str = "sh") -> list[tuple[str, str | None]]:
    """(body, reason it is skipped or None) of every ```lang block of the README, in order."""
    return [(m["body"], m["why"]) for m in BLOCK.finditer(README.read_text(encoding="utf-8")) if m["lang"] == lang]


def _prepared(body: str, cwd: Path) -> str:
    for old, new in {**SMALL, **PATHS}.items():
        body = body.replace(old, new)
    for name, make in PLACEHOLDERS.items():
        if name in body and not (cwd / name.strip().split("/")[0]).exists():
            make(cwd)
    return body


def test_the_readme_names_every_placeholder_the_test_replaces() -> None:
    """The replacements cannot go stale: each is still in the README (else this test would silently do less)."""
    text = "\n".join(body for body, _why in blocks())
    for name in [*SMALL, *PATHS, *PLACEHOLDERS]:
        assert name in text, name
    skipped = [why for _body, why in blocks() if why]
    assert skipped == [
        "the test suite is what make test runs; tests/test_demo.py runs the demo",
        "tests/test_deployments.py starts a server, deploys and runs these deployments",
        "each takes minutes on the default world; they print the figures the docs state",
    ]


def test_the_readmes_configuration_example_is_a_valid_configuration(tmp_path: Path) -> None:
    (example,) = [body for body, _why in blocks("toml")]
    (tmp_path / "finwatch.toml").write_text(example, encoding="utf-8")
    config = load_config(tmp_path / "finwatch.toml", environ={}).config
    assert config.jurisdiction == "eu"
    assert config.ingest.base_currency == "EUR"


@pytest.mark.slow
def test_every_command_block_of_the_readme_runs_in_order(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FINWATCH_"))}
    env |= {"PREFECT_HOME": str(tmp_path / ".prefect"), "COLUMNS": "120"}
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    ran = []
    for body, why in blocks():
        if why:
            continue
        script = _prepared(body, cwd)
        began = time.perf_counter()
        done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=1800, check=False)  # fmt: skip
        assert done.returncode == 0, f"README block failed:\n{body}\n--- stdout\n{done.stdout[-3000:]}\n" \
                                     f"--- stderr\n{done.stderr[-3000:]}"  # fmt: skip
        ran.append((body.splitlines()[0], time.perf_counter() - began, done))
    outputs = {first: result for first, _seconds, result in ran}
    # what the steps promise, checked on what they left behind
    assert (cwd / "runs/2026-02-04/leads.parquet").is_file()
    assert (cwd / "runs/2026-02-04/report.html").is_file()
    assert (cwd / "runs/2026-02-04/goaml/validation.json").is_file()
    assert (cwd / "eval.json").is_file()
    assert (cwd / "aml-eval.json").is_file()
    flows = next(r for first, r in outputs.items() if "flows/ingest.py" in first)
    assert "nothing new to ingest" in flows.stdout
    assert any(p.name != "2026-02-04" for p in (cwd / "runs").iterdir())  # the score flow's runs/<as-of>
    assert len(ran) == len([1 for _body, why in blocks() if not why])
