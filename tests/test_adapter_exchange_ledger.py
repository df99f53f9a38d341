"""Exchange ledger adapter (Kraken layout): deposits, withdrawals, trade legs, assets, counterparties, bad input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from finwatch.exceptions import InputError
from finwatch.ingest._base import Parsed, ParseOptions, Source
from finwatch.ingest._pipeline import IngestOptions, ingest
from finwatch.ingest._registry import detect
from finwatch.ingest.adapters.exchange_ledger import ExchangeLedgerAdapter
from finwatch.schema import KYC_COLUMNS
from finwatch.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "exchange_ledger"
LEDGER = FIXTURES / "kraken_ledgers.csv"
WITH_ADDRESSES = FIXTURES / "kraken_ledgers_addresses.csv"
HEADER = '"txid","refid","time","type","subtype","aclass","asset","amount","fee","balance"'
ACCOUNT = "exchange:kraken_ledgers"


def parse(path: Path, account: str | None = None) -> Parsed:
    return ExchangeLedgerAdapter().parse(Source(path, "0" * 64, str(path)), ParseOptions(account=account))


def outcome(path: Path) -> Parsed | InputError:
    """What a file turns into: parsed rows, or an InputError (any other exception fails the test)."""
    try:
        return parse(path)
    except InputError as exc:
        return exc


def ledger(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "ledger.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def row(
    *,
    txid: str = "LABCDE-FGHIJ-KLMNOP",
    kind: str = "deposit",
    asset: str = "ZEUR",
    amount: str = "10.0000",
    time: str = "2024-03-04 09:20:13",
    fee: str = "0.0000",
) -> str:
    return f'"{txid}","REF1","{time}","{kind}","","currency","{asset}","{amount}","{fee}","10.0000"'


def by_txid(rows: pl.DataFrame, txid: str) -> dict[str, object]:
    return rows.filter(pl.col("txn_id") == f"kraken:{txid}").row(0, named=True)


# --- detection -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [pytest.param(LEDGER, id="Kraken layout"), pytest.param(WITH_ADDRESSES, id="with wallet and counterparty columns")],
)
def test_detected_by_content(path: Path, tmp_path: Path) -> None:
    assert detect(path) == ("exchange-ledger", "Kraken-layout exchange ledger CSV")
    renamed = tmp_path / "download.txt"
    renamed.write_bytes(path.read_bytes())
    assert detect(renamed)[0] == "exchange-ledger"


# --- mapping -------------------------------------------------------------------------------------------------------
def test_every_ledger_row_becomes_one_record() -> None:
    parsed = parse(LEDGER)
    assert parsed.rows.height == 9
    assert parsed.rows["source_row"].to_list() == list(range(2, 11))
    assert parsed.rows["txn_id"].drop_nulls().str.starts_with("kraken:L").all()


def test_deposits_come_from_outside() -> None:
    rows = parse(LEDGER).rows
    eur = by_txid(rows, "L7RLII-XJFTV-RHAOL3")
    assert (eur["src_account"], eur["dst_account"], eur["amount"], eur["currency"], eur["channel"]) == (
        None,
        ACCOUNT,
        Decimal(2500),
        "EUR",
        "wire",
    )
    btc = by_txid(rows, "LQ3O5T-5BWNA-KX4ZYP")
    assert (btc["src_account"], btc["dst_account"], btc["amount"], btc["currency"], btc["channel"]) == (
        None,
        ACCOUNT,
        Decimal("0.05"),
        "BTC",
        "crypto",
    )
    assert btc["ts"] == dt.datetime(2024, 3, 5, 14, 1, 9, 523100, tzinfo=dt.UTC)
    pending = rows.row(0, named=True)
    assert pending["txn_id"] is None
    assert pending["_reason"].startswith("no txid")
    assert pending["_raw"] == LEDGER.read_text().splitlines()[1]


def test_trade_legs_share_a_refid_and_stay_internal() -> None:
    rows = parse(LEDGER).rows
    legs = rows.filter(pl.col("description").str.contains("refid TQ3PXZ-N2W6J-KQ4DWF", literal=True))
    assert legs.select("src_account", "dst_account", "amount", "currency", "channel").rows() == [
        (ACCOUNT, None, Decimal(1000), "EUR", "internal"),
        (None, ACCOUNT, Decimal("0.0165"), "BTC", "internal"),
    ]
    assert "fee 2.6000 EUR" in legs["description"][0]
    spend, receive = by_txid(rows, "LUGH2F-3ZJ4Q-WTXNRE"), by_txid(rows, "LB6Y3W-FBVNR-2IKMHS")
    assert (spend["src_account"], spend["currency"], receive["dst_account"], receive["currency"]) == (
        ACCOUNT,
        "EUR",
        ACCOUNT,
        "ETH",
    )


def test_withdrawal_leaves_for_outside() -> None:
    out = by_txid(parse(LEDGER).rows, "LTW7IB-ZE5QN-KJ2D6A")
    assert (out["src_account"], out["dst_account"], out["amount"], out["channel"]) == (
        ACCOUNT,
        None,
        Decimal("0.06"),
        "crypto",
    )
    assert "fee 0.0000500000 BTC" in str(out["description"])


def test_staking_asset_maps_to_its_base_asset() -> None:
    reward = by_txid(parse(LEDGER).rows, "LR3MZ4-KSE7C-QYW4VX")
    assert (reward["currency"], reward["amount"], reward["dst_account"]) == ("ETH", Decimal("0.0000123"), ACCOUNT)
    assert "asset ETH2.S" in str(reward["description"])


def test_account_id_from_options_or_file_name() -> None:
    assert parse(LEDGER).accounts["account_id"].to_list() == [ACCOUNT]  # type: ignore[index]
    parsed = parse(LEDGER, account="kraken:alice")
    assert set(parsed.rows["dst_account"].drop_nulls()) == {"kraken:alice"}
    accounts = parsed.accounts
    assert accounts is not None
    assert accounts.row(0, named=True) | {"links": None} == {
        "account_id": "kraken:alice",
        "kind": "exchange_account",
        "holder_type": "person",
        "holder_name": None,
        "institution": "Kraken",
        "country": None,
        "city": None,
        "currency": None,
        "mcc": None,
        "opened_date": None,
        "links": None,
        **dict.fromkeys(KYC_COLUMNS),  # a ledger says nothing about its holder
        "source_row": 2,
    }


def test_counterparty_columns_link_bank_accounts_and_addresses() -> None:
    parsed = parse(WITH_ADDRESSES)
    rows, account = parsed.rows, "exchange:kraken_ledgers_addresses"
    assert rows["_reason"].null_count() == rows.height
    iban = by_txid(rows, "L4FZ2K-QXW7N-HC5T3M")
    assert (iban["src_account"], iban["dst_account"], iban["counterparty_name"], iban["channel"]) == (
        "DE89370400440532013000",
        account,
        "Jonas Weber",
        "wire",
    )
    assert "wallet spot / main" in str(iban["description"])
    eth = by_txid(rows, "LZ2WQH-MK5BF-Y6E3TN")
    assert (eth["src_account"], eth["dst_account"], eth["amount"], eth["currency"]) == (
        account,
        "0x8e3a4f26cb7d8e0a5d2c55f9a02b6d1c1e4f7a93",
        Decimal("0.37"),
        "ETH",
    )
    btc = by_txid(rows, "LD5XJ7-TBE2W-R3NKQP")
    assert btc["src_account"] == "bc1q9h7garjvj0r5pqg4zdw3q4r6t0n3chxkhy5m8z"
    trade = by_txid(rows, "LHE3PN-S6D2V-WQ7KJA")
    assert (trade["src_account"], trade["dst_account"]) == (account, None)
    assert parsed.accounts is not None
    assert parsed.accounts["links"].to_list() == [
        [
            "DE89370400440532013000",
            "0x8e3a4f26cb7d8e0a5d2c55f9a02b6d1c1e4f7a93",
            "bc1q9h7garjvj0r5pqg4zdw3q4r6t0n3chxkhy5m8z",
        ]
    ]


def test_wallet_column_holding_an_address_is_the_counterparty(tmp_path: Path) -> None:
    header = '"txid","refid","time","type","asset","wallet","amount","fee"'
    path = ledger(
        tmp_path,
        '"LW1","R","2024-01-01 00:00:00","withdrawal","XXBT","1BoatSLRHtKNngkdXEeobR76b53LETtpyT","-0.5","0.0001"',
        header=header,
    )
    out = parse(path).rows.row(0, named=True)
    assert out["dst_account"] == "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
    assert "wallet" not in out["description"]


@pytest.mark.parametrize(
    ("asset", "currency"),
    [
        pytest.param("XXBT", "BTC", id="XXBT"),
        pytest.param("XBT", "BTC", id="XBT"),
        pytest.param("XBT.M", "BTC", id="XBT.M"),
        pytest.param("XETH", "ETH", id="XETH"),
        pytest.param("ETH2.S", "ETH", id="ETH2.S"),
        pytest.param("ZUSD", "USD", id="ZUSD"),
        pytest.param("ZEUR", "EUR", id="ZEUR"),
        pytest.param("ZGBP", "GBP", id="ZGBP"),
        pytest.param("ZCAD", "CAD", id="ZCAD"),
        pytest.param("ZJPY", "JPY", id="ZJPY"),
        pytest.param("USDT", "USDT", id="USDT"),
        pytest.param("USDC", "USDC", id="USDC"),
        pytest.param("DOT.S", "DOT", id="DOT.S"),
        pytest.param("XXDG", "DOGE", id="XXDG"),
        pytest.param("SOL", "SOL", id="unknown code passes through"),
    ],
)
def test_asset_codes(tmp_path: Path, asset: str, currency: str) -> None:
    out = parse(ledger(tmp_path, row(asset=asset))).rows.row(0, named=True)
    assert out["currency"] == currency
    assert out["channel"] == ("wire" if currency in ("USD", "EUR", "GBP", "CAD", "JPY") else "crypto")


# --- boundaries ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "expected", "reason"),
    [
        pytest.param("0.000000000000000001", Decimal("1E-18"), None, id="18 decimal places are exact"),
        pytest.param("99999999999999999999.5", Decimal("99999999999999999999.5"), None, id="20 integer digits"),
        pytest.param("0.0000000000000000001", None, "more than 18 decimal places", id="19 decimal places"),
        pytest.param("100000000000000000000", None, "amount exceeds the representable range", id="21 integer digits"),
        pytest.param("ten", None, "unparsable amount", id="non-numeric amount"),
        pytest.param("", None, "missing amount", id="empty amount"),
        pytest.param("-10.0000", None, "deposit with a negative amount", id="negative deposit"),
        pytest.param("0.0000", None, "zero amount", id="zero amount"),
    ],
)
def test_amount_boundaries(tmp_path: Path, amount: str, expected: Decimal | None, reason: str | None) -> None:
    line = row(amount=amount)
    out = parse(ledger(tmp_path, line)).rows.row(0, named=True)
    if reason is None:
        assert out["_reason"] is None
        assert out["amount"] == expected
    else:
        assert out["_reason"].startswith(reason)
        assert out["_raw"] == line


def test_fee_only_row_names_the_fee(tmp_path: Path) -> None:
    out = parse(ledger(tmp_path, row(kind="margin", amount="0.0000", fee="1.2500"))).rows.row(0, named=True)
    assert out["_reason"] == "zero amount (a fee-only row: fee 1.2500 EUR)"


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        pytest.param(
            "2024-03-06 10:22:31.1843",
            dt.datetime(2024, 3, 6, 10, 22, 31, 184300, tzinfo=dt.UTC),
            id="fractional seconds",
        ),
        pytest.param("2024-03-06 10:22:31", dt.datetime(2024, 3, 6, 10, 22, 31, tzinfo=dt.UTC), id="whole seconds"),
        pytest.param("1709720551.1843", dt.datetime(2024, 3, 6, 10, 22, 31, 184300, tzinfo=dt.UTC), id="unix seconds"),
        pytest.param("06/03/2024 10:22", None, id="unknown time format"),
    ],
)
def test_time_formats(tmp_path: Path, time: str, expected: dt.datetime | None) -> None:
    out = parse(ledger(tmp_path, row(time=time))).rows.row(0, named=True)
    assert out["ts"] == expected
    assert (out["_reason"] is None) == (expected is not None)


# --- bad input -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"", "file is empty", id="empty file"),
        pytest.param(b"\x00\x01\x02garbage\xff" * 50, "binary data", id="binary garbage"),
        pytest.param(
            HEADER.encode() + b'\n"L1","R","2024-01-01 00:00:00","deposit","","","ZEUR","1\xe9","0",""\n',
            "not valid utf-8",
            id="not UTF-8",
        ),
        pytest.param(
            b'"txid","refid","time","type","asset"\n"L1","R","2024-01-01","deposit","ZEUR"\n',
            "missing required columns ['amount', 'fee']",
            id="missing required columns",
        ),
    ],
)
def test_unreadable_files_raise_input_error(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "ledger.csv"
    path.write_bytes(content)
    result = outcome(path)
    assert isinstance(result, InputError)
    assert str(path) in str(result)
    assert expected.lower() in result.reason.lower()


def test_line_that_does_not_fit_is_a_rejected_row(tmp_path: Path) -> None:
    path = ledger(tmp_path, row(txid="LA"), '"LB","R","2024-01-01 00:00:00","deposit"', row(txid="LC"))
    rows = parse(path).rows
    assert rows["source_row"].to_list() == [2, 3, 4]
    assert rows["_reason"][1] is not None
    assert rows["_raw"][1] == '"LB","R","2024-01-01 00:00:00","deposit"'
    assert rows["_reason"][0] is None
    assert rows["_reason"][2] is None


def test_missing_required_columns_detected_then_named(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text(
        '"txid","refid","time","type","asset","amount"\n"L1","R","2024-01-01 00:00:00","deposit","ZEUR","1"\n'
    )
    name, detected = detect(path)
    assert name == "exchange-ledger"
    assert "missing fee" in detected
    report = ingest([path], tmp_path / "store", IngestOptions())
    assert report.files[0].status == "rejected"
    assert "missing required columns ['fee']" in report.files[0].error


# --- end to end ----------------------------------------------------------------------------------------------------
def test_fixtures_ingest_end_to_end(tmp_path: Path) -> None:
    report = ingest([LEDGER, WITH_ADDRESSES], tmp_path / "store", IngestOptions())
    assert report.committed
    for file in report.files:
        assert file.status == "ingested", file.error
        assert file.rows_read == file.accepted + file.quarantined
    assert [(f.rows_read, f.quarantined) for f in report.files] == [(9, 1), (5, 0)]
    store = Store(tmp_path / "store")
    accounts = store.scan("accounts").collect()
    assert set(accounts["account_id"]) == {ACCOUNT, "exchange:kraken_ledgers_addresses"}
    linked = accounts.filter(pl.col("account_id") == "exchange:kraken_ledgers_addresses")["links"][0].to_list()
    assert "0x8e3a4f26cb7d8e0a5d2c55f9a02b6d1c1e4f7a93" in linked
    stored = store.scan("transactions").collect()
    assert stored.filter(pl.col("channel") == "internal").height == 7
