"""bitcoin-etl adapter: a real block export, hand-built enriched transactions, value conservation, bad input."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from finwatch.exceptions import InputError
from finwatch.ingest._base import Parsed, ParseOptions, Source
from finwatch.ingest._pipeline import IngestOptions, ingest
from finwatch.ingest._registry import detect, sample
from finwatch.ingest.adapters.bitcoin_etl import BitcoinEtlAdapter
from finwatch.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "bitcoin_etl"
BLOCK = FIXTURES / "expected_transactions.json"
COIN = 10**8


def parse(path: Path) -> Parsed:
    return BitcoinEtlAdapter().parse(Source(path, "0" * 64, str(path)), ParseOptions())


def outcome(path: Path) -> Parsed | InputError:
    """What a file turns into: parsed rows, or an InputError (any other exception fails the test)."""
    try:
        return parse(path)
    except InputError as exc:
        return exc


def btc(satoshi: int) -> Decimal:
    return Decimal(satoshi) / COIN


def tx(
    txid: str, inputs: list[tuple[list[str], int | None]], outputs: list[tuple[list[str], int]], **extra: Any
) -> dict[str, Any]:
    """A bitcoin-etl transaction record with enriched inputs (addresses and values)."""
    record: dict[str, Any] = {
        "hash": txid,
        "block_number": 800000,
        "block_timestamp": 1690168629,
        "is_coinbase": not inputs,
        "inputs": [
            {
                "index": i,
                "spent_transaction_hash": f"{i:064x}",
                "spent_output_index": 0,
                "addresses": a,
                "value": v,
                "type": "witness_v0_keyhash",
            }
            for i, (a, v) in enumerate(inputs)
        ],
        "outputs": [
            {"index": n, "addresses": a, "value": v, "type": "witness_v0_keyhash" if a else "nulldata"}
            for n, (a, v) in enumerate(outputs)
        ],
    }
    record.update(extra)
    return record


def write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


ENRICHED = [
    # one input address: pays the recipient directly, change back to itself
    tx("aa" * 32, [(["alice"], 50_000_000)], [(["bob"], 30_000_000), (["alice"], 19_990_000)]),
    # two input addresses: through a transaction node; a zero-value OP_RETURN output is no edge
    tx(
        "bb" * 32,
        [(["alice"], 20_000_000), (["carol"], 15_000_000)],
        [(["dave"], 30_000_000), (["erin"], 4_990_000), ([], 0)],
    ),
    # the same address twice: still one sender
    tx("cc" * 32, [(["frank"], 1), (["frank"], 2_100_000_000_000_000)], [(["grace"], 2_100_000_000_000_000)]),
    # coinbase
    tx("dd" * 32, [], [(["miner"], 625_000_000)]),
]


# --- detection -----------------------------------------------------------------------------------------------------
def test_detected_by_content(tmp_path: Path) -> None:
    assert detect(BLOCK) == ("bitcoin-etl", "bitcoin-etl transactions JSON lines")
    array = tmp_path / "export.txt"
    array.write_text(json.dumps([json.loads(line) for line in BLOCK.read_text().splitlines()]))
    assert detect(array) == ("bitcoin-etl", "bitcoin-etl transactions JSON array")


def test_ethereum_exports_are_not_taken_for_bitcoin() -> None:
    eth = Path(__file__).parent / "fixtures" / "ethereum_etl" / "expected_transactions.json"
    assert BitcoinEtlAdapter.sniff(sample(eth)) is None
    assert detect(eth)[0] == "ethereum-etl"


# --- the real block ------------------------------------------------------------------------------------------------
def test_real_block_edges() -> None:
    parsed = parse(BLOCK)
    rows = parsed.rows
    assert parsed.notes[0].startswith("4 transactions became 6 edges")
    assert rows["source_row"].to_list() == [1, 2, 2, 2, 3, 4]
    assert set(rows["currency"]) == {"BTC"}
    assert set(rows["chain"]) == {"bitcoin"}
    assert set(rows["channel"]) == {"crypto"}
    coinbase = rows.filter(pl.col("txn_id").str.starts_with("e1882d41"))
    assert coinbase["src_account"][0] is None
    assert coinbase["dst_account"][0] == "1PkqKGbNLDdDJGveCcNUMV9CEFH77ADrPQ"
    assert coinbase["amount"][0] == Decimal(50)
    # this export has no input addresses or values: a single input is named by the coin it spends
    single = rows.filter(pl.col("source_row") == 3).row(0, named=True)
    assert single["src_account"].startswith("btc-out:0d37522b")
    assert single["src_account"].endswith(":0")
    assert single["amount"] == Decimal(50)
    assert single["_reason"] is None
    assert "fee unknown" in single["description"]
    # two inputs without values: input edges are kept with a reason, the output edge leaves the transaction node
    node = "btc-tx:7940cdde4d713e171849efc6bd89939185be270266c94e92369e3877ad89455a"
    two = rows.filter(pl.col("source_row") == 2)
    assert two["txn_id"].to_list() == [f"{node[7:]}:in:0", f"{node[7:]}:in:1", f"{node[7:]}:out:0"]
    assert two["dst_account"].to_list()[:2] == [node, node]
    assert two["_reason"].to_list()[0].startswith("input value unknown")
    assert two["_reason"][2] is None
    assert two["src_account"][2] == node
    assert two["amount"][2] == Decimal(100)
    assert two["_raw"][0] == BLOCK.read_text().splitlines()[1]


def test_json_array_numbers_records_from_one(tmp_path: Path) -> None:
    array = tmp_path / "block.json"
    array.write_text(json.dumps([json.loads(line) for line in BLOCK.read_text().splitlines()], indent=2))
    rows = parse(array).rows
    assert rows["source_row"].to_list() == [1, 2, 2, 2, 3, 4]
    assert rows["amount"].drop_nulls().to_list() == parse(BLOCK).rows["amount"].drop_nulls().to_list()


# --- the edge design on enriched records ---------------------------------------------------------------------------
def test_single_input_address_pays_outputs_directly(tmp_path: Path) -> None:
    rows = parse(write_lines(tmp_path / "tx.json", ENRICHED)).rows.filter(pl.col("source_row") == 1)
    assert rows.select("txn_id", "src_account", "dst_account", "amount").rows() == [
        (f"{'aa' * 32}:out:0", "alice", "bob", Decimal("0.3")),
        (f"{'aa' * 32}:out:1", "alice", "alice", Decimal("0.1999")),
    ]
    assert rows["description"].to_list()[0] == "block 800000; 1 in, 2 out; fee 0.00010000 BTC"
    assert rows["description"].to_list()[1].endswith("change back to the sender")


def test_several_input_addresses_go_through_a_transaction_node(tmp_path: Path) -> None:
    parsed = parse(write_lines(tmp_path / "tx.json", ENRICHED))
    rows = parsed.rows.filter(pl.col("source_row") == 2)
    node = f"btc-tx:{'bb' * 32}"
    assert rows.select("txn_id", "src_account", "dst_account", "amount").rows() == [
        (f"{'bb' * 32}:in:0", "alice", node, Decimal("0.2")),
        (f"{'bb' * 32}:in:1", "carol", node, Decimal("0.15")),
        (f"{'bb' * 32}:out:0", node, "dave", Decimal("0.3")),
        (f"{'bb' * 32}:out:1", node, "erin", Decimal("0.0499")),
    ]
    assert all("fee 0.00010000 BTC" in d for d in rows["description"])
    assert any("1 zero-value outputs" in note for note in parsed.notes)


def test_edges_conserve_value(tmp_path: Path) -> None:
    """Out of every transaction node flow exactly its outputs; into it exactly its inputs; direct edges sum to the
    outputs. Nothing is invented: every amount is one input's or one output's value."""
    rows = parse(write_lines(tmp_path / "tx.json", ENRICHED)).rows
    assert rows["_reason"].null_count() == rows.height
    for record, (_, group) in zip(ENRICHED, rows.group_by("source_row", maintain_order=True), strict=True):
        outputs = sum(o["value"] for o in record["outputs"])
        inputs = sum(i["value"] for i in record["inputs"])
        node = f"btc-tx:{record['hash']}"
        out_of = group.filter(pl.col("txn_id").str.contains(":out:"))["amount"].sum()
        assert out_of == btc(outputs)
        into = group.filter(pl.col("dst_account") == node)["amount"].sum()
        assert into == (btc(inputs) if node in group["dst_account"].to_list() else 0)
        values = {btc(v["value"]) for v in [*record["inputs"], *record["outputs"]]}
        assert set(group["amount"]) <= values


def test_coinbase_and_same_address_inputs(tmp_path: Path) -> None:
    rows = parse(write_lines(tmp_path / "tx.json", ENRICHED)).rows
    assert rows.filter(pl.col("source_row") == 3).select("src_account", "dst_account", "amount").rows() == [
        ("frank", "grace", Decimal(21_000_000))
    ]
    coinbase = rows.filter(pl.col("source_row") == 4).row(0, named=True)
    assert coinbase["src_account"] is None
    assert coinbase["amount"] == Decimal("6.25")
    assert "coinbase" in coinbase["description"]


def test_multisig_and_addressless_outputs_are_named(tmp_path: Path) -> None:
    record = tx("ee" * 32, [(["alice"], 300)], [(["k1", "k2"], 100), ([], 150)])
    rows = parse(write_lines(tmp_path / "tx.json", [record])).rows
    assert rows["dst_account"].to_list() == ["multisig:k1+k2", f"btc-out:{'ee' * 32}:1"]


# --- boundaries ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "amount", "reason"),
    [
        pytest.param(1, Decimal("0.00000001"), None, id="1 satoshi"),
        pytest.param(2_100_000_000_000_000, Decimal(21_000_000), None, id="21 million BTC is exact"),
        pytest.param(2**64 + 1, Decimal(2**64 + 1) / COIN, None, id="satoshi 2^64+1 is exact"),
        pytest.param("5000000000", Decimal(50), None, id="value as text"),
        pytest.param("5000000000.000000000", Decimal(50), None, id="BigQuery numeric text"),
        pytest.param(10**28 - 1, Decimal(10**28 - 1) / COIN, None, id="largest representable value"),
        pytest.param(10**28, None, "amount exceeds the representable range", id="10^20 BTC is beyond the range"),
        pytest.param(-1, None, "negative output value", id="negative value"),
        pytest.param("abc", None, "unparsable output value", id="non-numeric value"),
        pytest.param(1.5, None, "not a whole number of satoshi", id="fraction of a satoshi"),
        pytest.param(None, None, "output without a value", id="missing value"),
    ],
)
def test_output_value_boundaries(tmp_path: Path, value: Any, amount: Decimal | None, reason: str | None) -> None:
    record = tx("ff" * 32, [(["alice"], None)], [(["bob"], value)])
    row = parse(write_lines(tmp_path / "tx.json", [record])).rows.row(0, named=True)
    assert row["amount"] == amount
    if reason is None:
        assert row["_reason"] is None
    else:
        assert reason in row["_reason"]
        assert json.loads(row["_raw"])["hash"] == "ff" * 32


def test_overspending_transaction_is_flagged(tmp_path: Path) -> None:
    record = tx("ab" * 32, [(["alice"], 100)], [(["bob"], 150)])
    rows = parse(write_lines(tmp_path / "tx.json", [record])).rows
    assert rows["_reason"][0] == "outputs exceed inputs by 0.00000050 BTC"


# --- bad input -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"", "file is empty", id="empty file"),
        pytest.param(b"\x00\x9f\x92\x96garbage" * 40, "binary data", id="binary garbage"),
        pytest.param(b'{"hash": "aa", "inputs": [], "outp\xff', "not valid utf-8", id="not UTF-8"),
        pytest.param(
            b'{"hash": "aa", "inputs": [], "outputs": [{"value": 5', "invalid JSON", id="only a truncated JSON line"
        ),
        pytest.param(b'[{"hash": "aa", "inputs": []', "invalid JSON array", id="truncated JSON array"),
        pytest.param(b'{"number": 1, "timestamp": 2}\n', "no hash", id="a block, not a transaction"),
        pytest.param(b'"just a string"\n', "not a JSON object", id="not an object"),
    ],
)
def test_unreadable_files_raise_input_error(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = outcome(path)
    assert isinstance(result, InputError)
    assert str(path) in str(result)
    assert expected.lower() in result.reason.lower()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(
            '{"hash": "' + "ab" * 32 + '", "inputs": [], "outputs": [{"value": 5',
            "invalid JSON",
            id="truncated JSON line",
        ),
        pytest.param('{"hash": "' + "ab" * 32 + '", "inputs": []}', "must be lists", id="no outputs"),
        pytest.param(
            '{"hash": "' + "ab" * 32 + '", "block_timestamp": "noon", "inputs": [], "outputs": []}',
            "unparsable block_timestamp",
            id="bad timestamp",
        ),
        pytest.param(
            '{"hash": "' + "ab" * 32 + '", "inputs": [], "outputs": [5]}', "JSON objects", id="output not an object"
        ),
        pytest.param("[1, 2]", "not a JSON object", id="array line"),
    ],
)
def test_bad_records_become_one_row_with_a_reason(tmp_path: Path, line: str, reason: str) -> None:
    good = BLOCK.read_text().splitlines()
    path = tmp_path / "block.json"
    path.write_text("\n".join([good[0], line, good[3]]) + "\n")
    parsed = parse(path)
    rows = parsed.rows
    assert rows.height == 3
    bad = rows.row(1, named=True)
    assert reason in bad["_reason"]
    assert bad["_raw"] == line
    assert bad["source_row"] == 2
    assert rows["_reason"][0] is None
    assert rows["_reason"][2] is None
    assert any("could not be read" in note for note in parsed.notes)


# --- end to end ----------------------------------------------------------------------------------------------------
def test_fixtures_ingest_end_to_end(tmp_path: Path) -> None:
    enriched = write_lines(tmp_path / "enriched.json", ENRICHED)
    report = ingest([BLOCK, enriched], tmp_path / "store", IngestOptions())
    assert report.committed
    for file in report.files:
        assert file.status == "ingested", file.error
        assert file.rows_read == file.accepted + file.quarantined
    block, mine = report.files
    assert (block.rows_read, block.accepted, block.quarantined) == (6, 4, 2)
    assert (mine.rows_read, mine.quarantined) == (8, 0)
    stored = Store(tmp_path / "store").scan("transactions").collect()
    grace = stored.filter(pl.col("dst_account") == "grace")
    assert grace["amount"][0] == Decimal(21_000_000)
    assert set(stored["source_format"]) == {"bitcoin-etl"}
