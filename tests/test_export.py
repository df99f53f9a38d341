"""goAML drafts: one per lead, validated with XSD 1.1 against a schema written for these tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from lxml import etree

from finwatch.config import US_LAW
from finwatch.dataset import end_of_data
from finwatch.exceptions import ConfigError, FinwatchError
from finwatch.export import export_goaml
from finwatch.registry import Registry
from finwatch.runs import RunFolder
from finwatch.store import Store
from tests.conftest import run_score

FIXTURES = Path(__file__).parent / "fixtures" / "goaml"
XSD = FIXTURES / "finwatch-test-goaml.xsd"
EXAMPLE = Path(__file__).resolve().parents[1] / "features" / "goaml" / "mapping.example.yaml"


@pytest.fixture(scope="module")
def run_dir(scored: tuple[Path, Registry], tmp_path_factory: pytest.TempPathFactory) -> Path:
    store, registry = scored
    folder = tmp_path_factory.mktemp("goaml") / "runs" / "r1"
    run_score(store, end_of_data(Store(store)), registry, folder, "finwatch@champion", budget=0.02)
    return folder


def mapping(tmp_path: Path, **report: str) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["report"].update({"rentity_id": "1234", **report})
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # element order follows the mapping
    return path


def test_every_lead_gets_a_valid_draft_and_a_narrative(run_dir: Path, tmp_path: Path) -> None:
    problems = export_goaml(RunFolder(run_dir), XSD, mapping(tmp_path), tmp_path / "out")
    leads = pl.read_parquet(run_dir / "leads.parquet")
    assert set(problems) == set(leads["lead_id"].to_list())
    assert all(not errors for errors in problems.values()), problems
    lead = leads.filter(pl.col("rules_fired").list.len() > 0).row(0, named=True)
    draft = etree.parse(str(tmp_path / "out" / f"{lead['lead_id']}.xml")).getroot()
    assert draft.findtext("entity_reference") == lead["lead_id"]
    numbers = [t.findtext("transactionnumber") for t in draft.findall("transaction")]
    assert sorted(numbers) == sorted(lead["evidence_txn_ids"])
    indicators = [i.text for i in draft.iter("indicator")]
    example = yaml.safe_load(EXAMPLE.read_text())["indicators"]
    assert set(indicators) == {c for t in lead["typologies"] for c in example.get(t, [])}
    text = (tmp_path / "out" / f"{lead['lead_id']}.txt").read_text()
    for part in ("WHO:", "WHAT:", "WHEN:", "WHERE:", "WHY:"):
        assert part in text
    assert json.loads((tmp_path / "out" / "validation.json").read_text()) == problems


def test_invalid_fields_are_listed_per_lead(run_dir: Path, tmp_path: Path) -> None:
    problems = export_goaml(RunFolder(run_dir), XSD, mapping(tmp_path, rentity_id="not-a-number"), tmp_path / "out")
    assert problems
    for errors in problems.values():
        assert any("rentity_id" in e["path"] for e in errors)


def test_trafficking_leads_carry_fincens_key_term(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "runs" / "copy"
    shutil.copytree(run_dir, copy)
    leads = pl.read_parquet(copy / "leads.parquet")
    first = leads["lead_id"][0]
    leads = leads.with_columns(
        typologies=pl.when(pl.col("lead_id") == first).then(pl.lit(["sex_trafficking"], pl.List(pl.String)))
        .otherwise(pl.lit([], pl.List(pl.String)))
    )  # fmt: skip
    leads.write_parquet(copy / "leads.parquet")
    export_goaml(RunFolder(copy), XSD, mapping(tmp_path), tmp_path / "out")
    key_term = US_LAW["trafficking_key_term"]
    assert (tmp_path / "out" / f"{first}.txt").read_text().startswith(key_term)
    assert key_term not in (tmp_path / "out" / f"{leads['lead_id'][1]}.txt").read_text()
    assert "HT01" in (tmp_path / "out" / f"{first}.xml").read_text()


def test_a_hostile_schema_and_a_bad_mapping_are_refused(run_dir: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.xsd"
    evil.write_text(XSD.read_text().replace("<xs:schema", '<!DOCTYPE x [<!ENTITY e "boom">]>\n<xs:schema', 1))
    with pytest.raises(FinwatchError, match="not a usable XSD"):
        export_goaml(RunFolder(run_dir), evil, mapping(tmp_path), tmp_path / "out")
    bad = tmp_path / "bad.yaml"
    bad.write_text("report: {rentity_id: '1'}\n")
    with pytest.raises(ConfigError, match="misses"):
        export_goaml(RunFolder(run_dir), XSD, bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_export_command(run_dir: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "finwatch", "export", "goaml", "--run", str(run_dir), "--xsd", str(XSD),
               "--mapping", str(mapping(tmp_path)), "--out", str(tmp_path / "drafts")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "valid against" in done.stdout
    done = subprocess.run([*command[:-4], "--xsd", str(tmp_path / "missing.xsd"), "--mapping", str(EXAMPLE)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
