"""ethereum-etl adapter: real mainnet exports (transactions, token transfers, blocks), exact wei, bad input."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, localcontext
from importlib import resources
from pathlib import Path

import polars as pl
import pytest

from finwatch.exceptions import InputError, UnknownFormatError
from finwatch.ingest._base import Parsed, ParseOptions, Source
from finwatch.ingest._pipeline import IngestOptions, ingest
from finwatch.ingest._registry import detect
from finwatch.ingest.adapters.ethereum_etl import EthereumEtlAdapter
from finwatch.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "ethereum_etl"
TX_CSV = FIXTURES / "transactions.csv"
TX_JSON = FIXTURES / "expected_transactions.json"
TT_JSON = FIXTURES / "expected_token_transfers.json"
TT_CSV = FIXTURES / "token_transfers.csv"
BLOCKS = FIXTURES / "expected_blocks.json"
TX_HEADER = (
    "hash,nonce,block_hash,block_number,transaction_index,from_address,to_address,value,gas,gas_price,input,"
    "block_timestamp"
)
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


def parse(path: Path, **options: object) -> Parsed:
    return EthereumEtlAdapter().parse(Source(path, "0" * 64, str(path)), ParseOptions(**options))


def outcome(path: Path, **options: object) -> Parsed | InputError:
    """What a file turns into: parsed rows, or an InputError (any other exception fails the test)."""
    try:
        return parse(path, **options)
    except InputError as exc:
        return exc


def wei(amount: Decimal) -> int:
    # token values have up to 31 digits: more than the default 28-digit context would keep
    with localcontext() as ctx:
        ctx.prec = 80
        return int(amount * 10**18)


def json_records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tx_line(value: str, *, to: str = "0x2222222222222222222222222222222222222222", ts: str = "1683029999") -> str:
    return f"0xabc,1,0xblock,17173049,0,0x1111111111111111111111111111111111111111,{to},{value},21000,1,0x,{ts}"


def tx_csv(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "transactions.csv"
    path.write_text("\n".join([TX_HEADER, *lines]) + "\n")
    return path


# --- detection ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(TX_CSV, "ethereum-etl transactions CSV", id="transactions CSV"),
        pytest.param(TX_JSON, "ethereum-etl transactions JSON lines", id="transactions JSON lines"),
        pytest.param(TT_JSON, "ethereum-etl token transfers JSON lines", id="token transfers JSON lines"),
        pytest.param(TT_CSV, "ethereum-etl token transfers CSV", id="token transfers CSV"),
    ],
)
def test_detected_by_content(path: Path, expected: str, tmp_path: Path) -> None:
    assert detect(path) == ("ethereum-etl", expected)
    renamed = tmp_path / "export.dat"  # not by the file name
    renamed.write_bytes(path.read_bytes())
    assert detect(renamed) == ("ethereum-etl", expected)


def test_blocks_file_is_not_taken_for_transactions() -> None:
    with pytest.raises(UnknownFormatError):
        detect(BLOCKS)


# --- counts, ids, exact values -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "count"),
    [
        pytest.param(TX_CSV, 298, id="transactions CSV"),
        pytest.param(TX_JSON, 298, id="transactions JSON"),
        pytest.param(TT_JSON, 291, id="token transfers JSON"),
        pytest.param(TT_CSV, 291, id="token transfers CSV"),
    ],
)
def test_every_record_is_read_once(path: Path, count: int) -> None:
    rows = parse(path, blocks=BLOCKS).rows
    assert rows.height == count
    header = 1 if path.suffix == ".csv" else 0
    assert rows["source_row"].to_list() == list(range(1 + header, count + 1 + header))
    assert rows["txn_id"].n_unique() == count


def test_transaction_values_are_exact_to_the_wei() -> None:
    records = {r["hash"]: r for r in json_records(TX_JSON)}
    for path in (TX_JSON, TX_CSV):
        rows = parse(path).rows
        assert rows["currency"].unique().to_list() == ["ETH"]
        assert set(rows["chain"]) == {"ethereum"}
        assert set(rows["channel"]) == {"crypto"}
        for txn_id, amount in rows.select("txn_id", "amount").iter_rows():
            assert wei(amount) == records[txn_id]["value"]
    big = parse(TX_CSV).rows.filter(
        pl.col("txn_id") == "0xcf08c55d27c2b1988c58517f7f2d027e0cb6412afd272b7abc7706ce72e5e354"
    )
    assert big["amount"][0] == Decimal(32)  # 32 * 10^18 wei, beyond 2^64
    assert wei(big["amount"][0]) > 2**64


def test_token_transfer_values_and_ids() -> None:
    records = json_records(TT_JSON)
    rows = parse(TT_JSON).rows
    for record, row in zip(records, rows.iter_rows(named=True), strict=True):
        assert row["txn_id"] == f"{record['transaction_hash']}:{record['log_index']}"
        assert row["currency"] == f"ERC20:{record['token_address']}"
        assert wei(row["amount"]) == record["value"]
        assert row["ts"] == dt.datetime.fromtimestamp(int(str(record["block_timestamp"])), tz=dt.UTC)
    beyond = [r["value"] for r in records if int(str(r["value"])) > 2**64]
    assert len(beyond) == 75
    huge = rows.filter(pl.col("txn_id").str.ends_with("f88f118dd0:1"))["amount"][0]
    assert huge == Decimal("150188698577.042438264952193024")


def test_token_transfer_timestamps_come_from_the_blocks_file() -> None:
    blocks = {r["number"]: r["timestamp"] for r in json_records(BLOCKS)}
    expected = [
        dt.datetime.fromtimestamp(int(str(blocks[r["block_number"]])), tz=dt.UTC) for r in json_records(TT_JSON)
    ]
    rows = parse(TT_CSV, blocks=BLOCKS).rows
    assert rows["ts"].to_list() == expected
    assert rows["_reason"].null_count() == 291 - 3  # three zero-value transfers


def test_blocks_file_as_csv(tmp_path: Path) -> None:
    blocks = tmp_path / "blocks.csv"
    blocks.write_text("number,hash,timestamp\n17173049,0xaa,1683029999\n17173050,0xbb,2023-05-02T12:20:11Z\n")
    rows = parse(TT_CSV, blocks=blocks).rows
    assert rows["ts"].null_count() == 0
    assert rows["ts"].max() == dt.datetime(2023, 5, 2, 12, 20, 11, tzinfo=dt.UTC)


def test_token_transfers_without_any_timestamp_get_a_reason(tmp_path: Path) -> None:
    rows = parse(TT_CSV).rows
    assert rows["_reason"].str.starts_with("no timestamp").all()
    assert rows["_raw"].null_count() == 0
    one_block = tmp_path / "blocks.json"
    one_block.write_text(BLOCKS.read_text().splitlines()[0] + "\n")
    rows = parse(TT_CSV, blocks=one_block).rows
    missing = rows.filter(pl.col("_reason").str.contains("not in the blocks file", literal=True))
    assert missing.height == (rows["description"].str.contains("block 17173050")).sum() > 0


def test_failed_and_zero_value_transactions_are_kept_with_a_reason() -> None:
    parsed = parse(TX_JSON)
    reasons = parsed.rows["_reason"].drop_nulls()
    assert reasons.str.starts_with("failed transaction").sum() == 9
    assert reasons.str.starts_with("zero value").sum() == 162
    assert parsed.rows.filter(pl.col("_reason").is_not_null())["_raw"].null_count() == 0
    assert any("9 failed transaction" in note for note in parsed.notes)


def test_contract_creation_has_no_destination() -> None:
    rows = parse(TX_JSON).rows.filter(pl.col("dst_account").is_null())
    assert rows.height == 1
    assert "contract creation of 0x" in rows["description"][0]


def test_addresses_are_lowercased(tmp_path: Path) -> None:
    line = tx_line("5", to="0xAbCdEf0000000000000000000000000000000001")
    rows = parse(tx_csv(tmp_path, line.replace("0x1111111111111111111111111111111111111111", "0xFFFF" + "1" * 36))).rows
    assert rows["src_account"][0] == "0xffff" + "1" * 36
    assert rows["dst_account"][0] == "0xabcdef0000000000000000000000000000000001"


# --- boundaries ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "amount", "reason"),
    [
        pytest.param(str(2**64 + 1), Decimal("18.446744073709551617"), None, id="wei 2^64+1 is exact"),
        pytest.param("1", Decimal("0.000000000000000001"), None, id="1 wei"),
        pytest.param("000123", Decimal("0.000000000000000123"), None, id="leading zeros"),
        pytest.param("9" * 38, Decimal("9" * 20 + "." + "9" * 18), None, id="10^38-1 wei is the largest amount"),
        pytest.param(
            "1" + "0" * 38, None, "amount exceeds the representable range", id="10^38 wei is beyond the range"
        ),
        pytest.param(
            str(2**256 - 1), None, "amount exceeds the representable range", id="uint256 max is beyond the range"
        ),
        pytest.param("-5", None, "negative value", id="negative value"),
        pytest.param("12abc", None, "unparsable value", id="non-numeric value"),
        pytest.param("0x1bc16d674ec80000", None, "unparsable value", id="hex value"),
        pytest.param("1.5", None, "unparsable value", id="fraction of a wei"),
        pytest.param("", None, "missing value", id="empty value"),
        pytest.param("0", None, "zero value", id="zero value"),
    ],
)
def test_value_boundaries(tmp_path: Path, value: str, amount: Decimal | None, reason: str | None) -> None:
    row = parse(tx_csv(tmp_path, tx_line(value))).rows.row(0, named=True)
    if reason is None:
        assert row["_reason"] is None
        assert row["amount"] == amount
        assert wei(row["amount"]) == int(value)
    else:
        assert row["_reason"].startswith(reason)
        assert row["_raw"] == tx_line(value)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        pytest.param("1683029999", dt.datetime(2023, 5, 2, 12, 19, 59, tzinfo=dt.UTC), id="unix seconds"),
        pytest.param("2023-05-02 12:19:59 UTC", dt.datetime(2023, 5, 2, 12, 19, 59, tzinfo=dt.UTC), id="BigQuery text"),
        pytest.param("2023-05-02T14:19:59+02:00", dt.datetime(2023, 5, 2, 12, 19, 59, tzinfo=dt.UTC), id="ISO offset"),
        pytest.param("yesterday", None, id="unparsable timestamp"),
    ],
)
def test_timestamp_forms(tmp_path: Path, ts: str, expected: dt.datetime | None) -> None:
    row = parse(tx_csv(tmp_path, tx_line("5", ts=ts))).rows.row(0, named=True)
    assert row["ts"] == expected
    assert (row["_reason"] is None) == (expected is not None)


def test_json_array_and_mixed_json_lines(tmp_path: Path) -> None:
    tx, tt = TX_JSON.read_text().splitlines(), TT_JSON.read_text().splitlines()
    array = tmp_path / "array.json"
    array.write_text(json.dumps([json.loads(line) for line in tx[:3]]))
    rows = parse(array).rows
    assert rows["source_row"].to_list() == [1, 2, 3]
    assert wei(rows["amount"][1]) == json.loads(tx[1])["value"]
    mixed = tmp_path / "stream.json"
    mixed.write_text("\n".join([*BLOCKS.read_text().splitlines()[:1], tx[0], tt[0]]) + "\n")
    parsed = parse(mixed)
    assert parsed.detected == "ethereum-etl JSON lines (1 token transfers, 1 transactions)"
    assert parsed.rows["_reason"].to_list()[0] == "ethereum-etl block record, not a transaction or token transfer"
    assert parsed.rows["_reason"].to_list()[1:] == [None, None]


def test_csv_and_line_numbers_at_scale(tmp_path: Path) -> None:
    lines = [tx_line(str(10**18 + i)).replace("0xabc", f"0x{i:064x}") for i in range(100_000)]
    lines[5_000] = "garbage,with,too,few,fields"
    path = tx_csv(tmp_path, *lines)
    rows = parse(path).rows
    assert rows.height == 100_000
    assert rows["source_row"].to_list() == list(range(2, 100_002))
    bad = rows.filter(pl.col("_reason").is_not_null())
    assert bad["source_row"].to_list() == [5_002]
    assert bad["_raw"][0] == "garbage,with,too,few,fields"
    assert wei(rows["amount"][-1]) == 10**18 + 99_999


# --- bad input -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"", "file is empty", id="empty file"),
        pytest.param(b"\x00\x01\x02\xff" * 64, "binary data", id="binary garbage"),
        pytest.param(b"hash,nonce,value\n0x1,\xff\xfe,5\n", "not valid utf-8", id="not UTF-8"),
        pytest.param(
            b"hash,nonce,from_address,to_address\n0x1,1,0xa,0xb\n",
            "missing required columns ['value']",
            id="missing required column",
        ),
        pytest.param(b"a,b,c\n1,2,3\n", "not an ethereum-etl", id="not ethereum-etl at all"),
        pytest.param(
            b'{"type": "transaction", "hash": "0x1", "value": 5\n',
            "no ethereum-etl transaction",
            id="only a truncated JSON line",
        ),
        pytest.param(b'[{"hash": "0x1", "nonce": 1, ', "invalid JSON array", id="truncated JSON array"),
    ],
)
def test_unreadable_files_raise_input_error(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = outcome(path)
    assert isinstance(result, InputError)
    assert str(path) in str(result)
    assert expected.lower() in result.reason.lower()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(
            '{"type": "transaction", "hash": "0x2", "from_address": "0xa", "value": 7',
            "invalid JSON",
            id="truncated JSON line",
        ),
        pytest.param("[1, 2, 3]", "not a JSON object", id="JSON array line"),
        pytest.param('{"hello": "world"}', "not an ethereum-etl transaction", id="unknown record"),
        pytest.param(
            '{"type": "transaction", "hash": "0x2", "from_address": "0xa", "value": 1.5e3, '
            '"block_timestamp": 1683029999}',
            "unparsable value",
            id="float value",
        ),
        pytest.param(
            '{"type": "transaction", "hash": "0x2", "from_address": "0xa", "value": "abc", '
            '"block_timestamp": 1683029999}',
            "unparsable value",
            id="text value",
        ),
        pytest.param(
            '{"type": "transaction", "hash": "0x2", "from_address": "0xa", "value": -1, "block_timestamp": 1683029999}',
            "negative value",
            id="negative JSON value",
        ),
        pytest.param(
            '{"type": "transaction", "hash": "0x2", "from_address": "0xa", "value": 1'
            + "0" * 40
            + ', "block_timestamp": 1683029999}',
            "amount exceeds the representable range",
            id="JSON value beyond the range",
        ),
    ],
)
def test_bad_json_lines_become_rows_with_a_reason(tmp_path: Path, line: str, reason: str) -> None:
    good = TX_JSON.read_text().splitlines()[:2]
    path = tmp_path / "tx.json"
    path.write_text("\n".join([good[0], line, good[1]]) + "\n")
    rows = parse(path).rows
    assert rows.height == 3
    bad = rows.row(1, named=True)
    assert bad["_reason"].startswith(reason) or reason in bad["_reason"]
    assert bad["_raw"] == line
    assert bad["source_row"] == 2
    assert rows["_reason"][0] is None
    assert rows["_reason"][2] is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("number,timestamp\n17173049,noon\n", "unparsable block number", id="bad block timestamp"),
        pytest.param("hash,time\n0xaa,1\n", "missing columns ['number', 'timestamp']", id="not a blocks file"),
        pytest.param('{"number": 17173049, "timestamp": 16830\n', "invalid JSON", id="truncated blocks line"),
        pytest.param("", "file is empty", id="empty blocks file"),
    ],
)
def test_bad_blocks_file_names_the_blocks_file(tmp_path: Path, content: str, expected: str) -> None:
    blocks = tmp_path / "blocks.txt"
    blocks.write_text(content)
    result = outcome(TT_CSV, blocks=blocks)
    assert isinstance(result, InputError)
    assert "blocks file" in result.file
    assert str(blocks) in result.file
    assert expected in result.reason


# --- end to end ----------------------------------------------------------------------------------------------------
def test_every_fixture_ingests_end_to_end(tmp_path: Path) -> None:
    default = resources.files("finwatch.data").joinpath("fx_rates_default.csv").read_text()
    fx = tmp_path / "fx.csv"
    fx.write_text(default.rstrip("\n") + f"\n2023-01-01,ERC20:{WETH},USD,1850\n")
    files = [TX_CSV, TX_JSON, TT_CSV, TT_JSON]
    report = ingest(files, tmp_path / "store", IngestOptions(fx=fx, parse=ParseOptions(blocks=BLOCKS)))
    assert report.committed
    for file in report.files:
        assert file.status == "ingested", file.error
        assert file.rows_read == file.accepted + file.quarantined
    by_name = {Path(f.file).name: f for f in report.files}
    assert by_name["transactions.csv"].rows_read == 298
    assert by_name["expected_token_transfers.json"].rows_read == 291
    store = Store(tmp_path / "store")
    txns = store.scan("transactions").collect()
    weth = txns.filter(pl.col("currency") == f"ERC20:{WETH}")
    assert weth.height > 0
    assert weth["amount_base"].min() > 0
    quarantine = store.scan("quarantine").collect()
    assert quarantine["reason"].str.starts_with("no FX rate for ERC20:").any()
    stored = txns.filter(pl.col("txn_id") == "0xcf08c55d27c2b1988c58517f7f2d027e0cb6412afd272b7abc7706ce72e5e354")
    assert stored["amount"][0] == Decimal(32)
