"""Each export parses back with a standard reader (csv, lxml) and carries the world."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from lxml import etree

from finwatch.schema import ACCOUNT_SCHEMA, LABEL_SCHEMA, TRANSACTION_SCHEMA
from finwatch.synth import World
from finwatch.synth._exports import AMLWORLD_HEADER, BANK_CSV_COLUMNS, ETH_COLUMNS

SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


@pytest.fixture(scope="module")
def world(small_world_dir: tuple[World, Path]) -> World:
    return small_world_dir[0]


@pytest.fixture(scope="module")
def root(small_world_dir: tuple[World, Path]) -> Path:
    return small_world_dir[1]


def _fiat(world: World) -> pl.DataFrame:
    return world.transactions.filter(pl.col("chain").is_null())


def test_manifest_lists_every_file_with_its_hash(root: Path) -> None:
    manifest = json.loads((root / "world.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"world.json"}
    assert listed == on_disk
    assert not list(root.parent.glob(".small.partial-*"))  # nothing left from staging


def test_truth_parquet_has_the_canonical_schemas(root: Path, world: World) -> None:
    for name, schema in (
        ("truth/transactions.parquet", TRANSACTION_SCHEMA),
        ("truth/accounts.parquet", ACCOUNT_SCHEMA),
        ("labels/accounts.parquet", LABEL_SCHEMA),
        ("labels/transactions.parquet", LABEL_SCHEMA),
    ):
        assert pq.read_schema(root / name).equals(schema, check_metadata=False), name
    assert pq.read_metadata(root / "truth/transactions.parquet").num_rows == world.transactions.height


def test_amlworld_csv_carries_every_fiat_transaction(root: Path, world: World) -> None:
    with (root / "amlworld" / "transactions.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert ",".join(rows[0]) == AMLWORLD_HEADER
    assert rows[0].count("Account") == 2  # the original layout names both account columns "Account"
    body = rows[1:]
    fiat = _fiat(world)
    assert len(body) == fiat.height
    assert all(len(r) == 11 for r in body)
    assert sum(Decimal(r[7]) for r in body) == sum(fiat["amount"].to_list())  # exact, to the cent
    laundering = sum(r[10] == "1" for r in body)
    labelled = world.transaction_labels.filter(pl.col("label"))["subject_id"]
    assert laundering == fiat.filter(pl.col("txn_id").is_in(labelled.to_list())).height
    cash = [r for r in body if r[9] == "Cash"]
    assert cash
    assert all(r[2] == r[4] for r in cash)


def test_amlworld_patterns_blocks_match_csv_rows(root: Path, world: World) -> None:
    text = (root / "amlworld" / "patterns.txt").read_text()
    csv_lines = Counter((root / "amlworld" / "transactions.csv").read_text().splitlines()[1:])
    blocks = text.strip().split("\n\n")
    fiat_instances = instance_count = 0
    for block in blocks:
        lines = block.splitlines()
        assert lines[0].startswith("BEGIN LAUNDERING ATTEMPT - ")
        assert lines[-1] == "END LAUNDERING ATTEMPT - " + lines[0].split(" - ")[1].split(":")[0]
        for row in lines[1:-1]:
            assert csv_lines[row] >= 1
            assert row.endswith(",1")
        instance_count += 1
    fiat_instances = (
        world.transaction_labels.join(_fiat(world).select(pl.col("txn_id").alias("subject_id")), on="subject_id")
        .filter(pl.col("label"))["instance_id"]
        .n_unique()
    )
    assert instance_count == fiat_instances
    assert "BEGIN LAUNDERING ATTEMPT - FAN-IN:  Max " in text
    assert "-degree Fan-In" in text


def _bank_csv(root: Path) -> list[dict[str, str]]:
    with (root / "bank-csv" / "transactions.csv").open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter=";")
        assert tuple(reader.fieldnames or ()) == BANK_CSV_COLUMNS
        return list(reader)


def _camt_entries(root: Path) -> dict[str, list[tuple[str, Decimal, str]]]:
    """txn_id -> [(CdtDbtInd, instructed amount, statement account)] over every camt.053 file."""
    out: dict[str, list[tuple[str, Decimal, str]]] = defaultdict(list)
    for path in sorted((root / "camt053").rglob("*.xml")):
        doc = etree.parse(str(path), SAFE_PARSER).getroot()
        ns = {"c": doc.nsmap[None]}
        for stmt in doc.iterfind(".//c:Stmt", ns):
            account = stmt.findtext("c:Acct/c:Id/c:Othr/c:Id", namespaces=ns)
            for ntry in stmt.iterfind("c:Ntry", ns):
                indicator = ntry.findtext("c:CdtDbtInd", namespaces=ns)
                for tx in ntry.iterfind("c:NtryDtls/c:TxDtls", ns):
                    ref = tx.findtext("c:Refs/c:EndToEndId", namespaces=ns)
                    amount = Decimal(tx.findtext("c:AmtDtls/c:InstdAmt/c:Amt", namespaces=ns))
                    out[ref].append((indicator, amount, account))
    return out


def test_bank_csv_and_camt053_together_carry_every_fiat_transaction(root: Path, world: World) -> None:
    rows = _bank_csv(root)
    camt = _camt_entries(root)
    refs = {r["Reference"] for r in rows} | set(camt)
    fiat = _fiat(world)
    assert refs == set(fiat["txn_id"])
    amounts = dict(zip(fiat["txn_id"].to_list(), fiat["amount"].to_list(), strict=True))
    for r in rows:
        instructed = r["Instructed Amount"] or r["Amount"].lstrip("-")
        assert Decimal(instructed.replace(",", ".")) == amounts[r["Reference"]]
    for ref, entries in camt.items():
        assert all(amount == amounts[ref] for _, amount, _ in entries)


def test_bank_csv_debits_are_negative_and_credits_positive(root: Path, world: World) -> None:
    src = dict(zip(world.transactions["txn_id"].to_list(), world.transactions["src_account"].to_list(), strict=True))
    for r in _bank_csv(root)[:20_000]:
        debit = r["Amount"].startswith("-")
        assert (
            debit == (src[r["Reference"]] == r["Account"])
            or src[r["Reference"]] == r["Account"] == r["Counterparty Account"]
        )
        assert "," in r["Amount"]
        assert "." not in r["Amount"]


def test_camt053_one_file_per_bank_and_day_with_consistent_balances(root: Path) -> None:
    files = sorted((root / "camt053").rglob("*.xml"))
    banks = {p.parent.name for p in files}
    assert len(banks) == 4
    assert len(files) == len({(p.parent.name, p.stem.split("_")[1]) for p in files})
    versions = set()
    batched = 0
    for path in files:
        doc = etree.parse(str(path), SAFE_PARSER).getroot()
        versions.add(doc.nsmap[None].rsplit(".", 2)[-2:][0] + "." + doc.nsmap[None].rsplit(".", 1)[-1])
        ns = {"c": doc.nsmap[None]}
        for stmt in doc.iterfind(".//c:Stmt", ns):
            bal = {b.findtext("c:Tp/c:CdOrPrtry/c:Cd", namespaces=ns): b for b in stmt.iterfind("c:Bal", ns)}

            def signed(el: etree._Element, ns: dict[str, str] = ns) -> Decimal:
                value = Decimal(el.findtext("c:Amt", namespaces=ns))
                return value if el.findtext("c:CdtDbtInd", namespaces=ns) == "CRDT" else -value

            flow = Decimal(0)
            for ntry in stmt.iterfind("c:Ntry", ns):
                amount = signed(ntry)
                details = ntry.findall("c:NtryDtls/c:TxDtls", ns)
                if len(details) > 1:  # a batch booking: the entry is the sum of its details
                    batched += 1
                    assert int(ntry.findtext("c:NtryDtls/c:Btch/c:NbOfTxs", namespaces=ns)) == len(details)
                    total = sum(Decimal(d.findtext("c:AmtDtls/c:InstdAmt/c:Amt", namespaces=ns)) for d in details)
                    assert total == abs(amount)
                flow += amount
            assert signed(bal["OPBD"]) + flow == signed(bal["CLBD"])
    assert batched > 0
    assert len(versions) >= 2  # several camt.053 versions, as different banks send


def test_ethereum_etl_values_are_exact_wei(root: Path, world: World) -> None:
    with (root / "ethereum-etl" / "transactions.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == ETH_COLUMNS
        rows = list(reader)
    eth = world.transactions.filter(pl.col("chain") == "ethereum")
    assert len(rows) == eth.height
    wei = sorted(int(r["value"]) for r in rows)
    expected = sorted(int(a.scaleb(18)) for a in eth["amount"].to_list())
    assert wei == expected
    assert max(wei) > 2**64  # Ether amounts beyond 2^64 wei survive exactly
    by_sender: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        assert int(r["block_timestamp"]) % 12 == world.ctx.epoch % 12
        by_sender[r["from_address"]].append(int(r["nonce"]))
    assert all(n == list(range(n[0], n[0] + len(n))) for n in by_sender.values())  # nonces count up


def test_fx_table_covers_every_day_and_currency(root: Path, world: World) -> None:
    with (root / "fx_rates.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == world.config.days * len(world.pop.currencies)
    assert {r["base"] for r in rows} == {"USD"}
