"""Crypto exchange ledger exports in Kraken's layout: one row per balance change of one account.

Columns: ``txid, refid, time, type, subtype, aclass, asset, amount, fee, balance`` (Kraken quotes every field;
newer exports add ``wallet`` after ``asset``, older ones lack ``subtype``, ``aclass`` or ``balance``). Required are
``txid, refid, time, type, asset, amount, fee``. ``time`` is UTC, ``YYYY-MM-DD HH:MM:SS`` with optional fractional
seconds (unix seconds are read too). The ledger does not name its own account: it is ``ParseOptions.account``, else
``exchange:<file stem>``, and it is returned as an ``exchange_account`` (institution Kraken; holder type
``person``, as these ledgers are downloaded by account holders) whose ``links`` are the external addresses and
bank accounts the ledger names.

Every ledger row becomes one record, ``txn_id = "kraken:" + txid``, ``amount = |amount|`` exactly (no rounding:
more than 18 decimal places is a reason), the fee and the ``refid`` in the description. Direction follows the sign:

- ``deposit``: external → account (``src_account`` null unless the export names the sender), channel ``crypto``
  for crypto assets and ``wire`` for fiat;
- ``withdrawal``: account → external (``dst_account`` null unless the export names the recipient);
- everything else (``trade``, ``spend``/``receive``, ``transfer``, ``staking``, ``earn``, ``margin``,
  ``adjustment``…): channel ``internal``, one leg per row; the negative leg has ``src_account`` = the account, the
  positive leg ``dst_account`` = the account, and the other side is null. The legs of one trade share a ``refid``.

Counterparty columns (not in Kraken's own export, but added by other exports of this layout and by investigators):
``address`` (or ``wallet_address``, ``crypto_address``, ``deposit_address``, ``withdrawal_address``,
``destination_address``, ``source_address``) and ``iban`` (or ``bank_account``, ``account_number``,
``bank_reference``; written in upper case without spaces) name the external side of a deposit or withdrawal, so
the exchange account links up with the bank accounts and crypto addresses of other files;
``counterparty``/``counterparty_name``/``name`` fill ``counterparty_name``. Kraken's own ``wallet`` column names its
sub-wallet (``spot / main``) and goes into the description, unless its value is a crypto address. Ethereum addresses
are lowercased, as the ethereum-etl adapter does.

Assets: Kraken's codes become common ones (``XXBT``/``XBT`` → ``BTC``, ``XETH`` → ``ETH``, ``ZEUR`` → ``EUR``…);
suffixes for staked or earning balances (``ETH2.S``, ``DOT.S``, ``USDC.M``, ``XBT.F``) map to the base asset and the
original code is kept in the description; unknown codes pass through unchanged. Rows without a txid are Kraken's
pending entries, listed again with a txid once credited: they are kept with a reason, as are rows with a zero amount
(fee-only rows), a deposit with a negative or a withdrawal with a positive amount, and unreadable times or amounts.
"""

from __future__ import annotations

import polars as pl

from finwatch.ingest._base import (
    Adapter,
    Parsed,
    ParseOptions,
    Sample,
    Source,
    conform_accounts,
    duckdb_connection,
    fetch,
    sql_values,
)
from finwatch.ingest._text import csv_header, decode_utf8, read_csv, require_columns

REQUIRED = ("txid", "refid", "time", "type", "asset", "amount", "fee")
OPTIONAL = ("subtype", "aclass", "balance", "wallet")
ADDRESS = ("address", "wallet_address", "crypto_address", "deposit_address", "withdrawal_address",
           "destination_address", "source_address")  # fmt: skip
BANK = ("iban", "bank_account", "account_number", "bank_reference")
NAME = ("counterparty", "counterparty_name", "name")
ASSETS = {
    "XXBT": "BTC", "XBT": "BTC", "XBT.M": "BTC", "XETH": "ETH", "ETH2": "ETH", "XXRP": "XRP", "XLTC": "LTC",
    "XXLM": "XLM", "XXMR": "XMR", "XZEC": "ZEC", "XETC": "ETC", "XXDG": "DOGE", "XDG": "DOGE", "XREP": "REP",
    "XMLN": "MLN", "XICN": "ICN", "XDAO": "DAO", "XNMC": "NMC", "XXVN": "XVN",
    "ZUSD": "USD", "ZEUR": "EUR", "ZGBP": "GBP", "ZCAD": "CAD", "ZJPY": "JPY", "ZAUD": "AUD", "ZCHF": "CHF",
    "ZKRW": "KRW",
}  # fmt: skip
FIAT = ("USD", "EUR", "GBP", "CAD", "JPY", "AUD", "CHF", "KRW", "AED", "NZD", "SGD", "HKD", "PLN", "SEK", "NOK",
        "DKK", "CZK", "ZAR", "TRY", "MXN", "BRL")  # fmt: skip
CRYPTO_ADDRESS = r"(0x[0-9a-fA-F]{40}|(bc1|tb1)[0-9a-z]{8,87}|[13][1-9A-HJ-NP-Za-km-z]{25,34})"

TRANSFORM = """
with src as (select * from rows_in),
assets as (select * from (values {assets}) t(code, symbol)),
p as (
    select
        src.*,
        nullif(trim(txid), '') as id,
        lower(trim(type)) as kind,
        trim(asset) as asset_code,
        regexp_extract(trim(asset), '^(.*?)(\\.[A-Z]+)?$', 1) as asset_base,
        regexp_extract(trim(asset), '^(.*?)(\\.[A-Z]+)?$', 2) as asset_suffix,
        replace(trim(amount), ',', '') as amt,
        replace(trim(fee), ',', '') as fee_text,
        trim("time") as t
    from src
),
q as (
    select
        p.*,
        coalesce(a1.symbol, a2.symbol, case when asset_suffix <> '' then asset_base end, asset_code) as currency,
        regexp_full_match(coalesce(amt, ''), '[+-]?[0-9]+(\\.[0-9]+)?') as amt_ok,
        ltrim(regexp_extract(coalesce(amt, ''), '^[+-]?([0-9]+)', 1), '0') as int_digits,
        length(regexp_extract(coalesce(amt, ''), '\\.([0-9]+)$', 1)) as frac_digits,
        starts_with(coalesce(amt, ''), '-') as negative,
        case when regexp_full_match(t, '[0-9]{{1,11}}(\\.[0-9]{{1,6}})?') then to_timestamp(cast(t as double))
             else timezone('UTC', try_strptime(t, ['%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M:%S', '%Y-%m-%dT%H:%M:%S.%fZ',
                                                   '%Y-%m-%dT%H:%M:%SZ'])) end as ts_parsed,
        nullif(trim({address}), '') as address_text,
        nullif(trim({bank}), '') as bank_text,
        nullif(trim({name}), '') as name_text,
        nullif(trim(wallet), '') as wallet_text
    from p
    left join assets a1 on a1.code = asset_code
    left join assets a2 on a2.code = asset_base
),
r as (
    select
        q.*,
        case when amt_ok and length(int_digits) <= 20 and frac_digits <= 18
             then abs(cast(amt as decimal(38, 18))) end as amount_abs,
        kind in ('deposit', 'withdrawal') as external,
        coalesce(
            case when regexp_full_match(coalesce(address_text, ''), '0x[0-9a-fA-F]{{40}}') then lower(address_text)
                 else address_text end,
            case when regexp_full_match(coalesce(wallet_text, ''), '{crypto_address}') then
                 case when starts_with(wallet_text, '0x') then lower(wallet_text) else wallet_text end end,
            replace(upper(bank_text), ' ', '')
        ) as external_account,
        case when regexp_full_match(coalesce(wallet_text, ''), '{crypto_address}') then null else wallet_text end
            as wallet_name
    from q
),
final as (
    select
        case when id is not null then 'kraken:' || id end as txn_id,
        ts_parsed as ts,
        case when negative then $account when external then external_account end as src_account,
        case when not negative then $account when external then external_account end as dst_account,
        amount_abs as amount,
        currency,
        case when not external then 'internal' when currency in ({fiat}) then 'wire' else 'crypto' end as channel,
        name_text as counterparty_name,
        concat_ws('; ',
            kind || coalesce(' / ' || nullif(trim(subtype), ''), ''),
            'refid ' || nullif(trim(refid), ''),
            case when try_cast(fee_text as decimal(38, 18)) <> 0 then 'fee ' || fee_text || ' ' || currency end,
            case when asset_code <> currency and asset_suffix <> '' then 'asset ' || asset_code end,
            'wallet ' || wallet_name,
            'balance ' || nullif(trim(balance), '')
        ) as description,
        source_row,
        case
            when id is null then 'no txid: Kraken lists a pending deposit or withdrawal without txid, and again '
                || 'with one when it is credited'
            when ts_parsed is null then 'unparsable time ''' || coalesce(t, '') || ''''
            when coalesce(kind, '') = '' then 'missing type'
            when coalesce(asset_code, '') = '' then 'missing asset'
            when amt is null or amt = '' then 'missing amount'
            when not amt_ok then 'unparsable amount ''' || amt || ''''
            when length(int_digits) > 20 then 'amount exceeds the representable range: ' || amt
                || ' (decimal(38,18) holds at most 20 integer digits)'
            when frac_digits > 18 then 'more than 18 decimal places in amount ' || amt
            when fee_text is not null and fee_text <> '' and try_cast(fee_text as decimal(38, 18)) is null
                then 'unparsable fee ''' || fee_text || ''''
            when amount_abs = 0 then case when try_cast(fee_text as decimal(38, 18)) <> 0
                then 'zero amount (a fee-only row: fee ' || fee_text || ' ' || currency || ')'
                else 'zero amount' end
            when kind = 'deposit' and negative then 'deposit with a negative amount ' || amt
            when kind = 'withdrawal' and not negative then 'withdrawal with a positive amount ' || amt
        end as _reason,
        external_account,
        kind
    from r
)
select * from final order by source_row
"""


def _first_of(names: list[str], candidates: tuple[str, ...]) -> str:
    """SQL for the first candidate column present, or a null literal."""
    found = next((c for c in candidates if c in names), None)
    return f'"{found}"' if found else "cast(null as varchar)"


class ExchangeLedgerAdapter(Adapter):
    name = "exchange-ledger"
    summary = "crypto exchange ledger CSV in Kraken's layout (txid, refid, time, type, asset, amount, fee, balance)"

    @classmethod
    def sniff(cls, sample: Sample) -> str | None:
        if sample.is_dir:
            return None
        names = csv_header(sample.text.lstrip())
        if {"txid", "refid", "asset"} <= set(names):
            missing = [c for c in REQUIRED if c not in names]
            extra = " (missing " + ", ".join(missing) + ")" if missing else ""
            return f"Kraken-layout exchange ledger CSV{extra}"
        return None

    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        data = source.read_bytes()
        text = decode_utf8(source, data)
        names = csv_header(text)
        require_columns(source, names, REQUIRED, OPTIONAL, "a Kraken ledger")
        account = options.account or f"exchange:{source.path.stem}"
        con = duckdb_connection()
        con.execute("set enable_progress_bar = false")
        read = read_csv(con, source, data, names)
        frame = read.frame.with_columns(
            [pl.lit(None, pl.String).alias(c) for c in OPTIONAL if c not in read.frame.columns]
        )
        con.register("rows_in", frame)
        sql = TRANSFORM.format(
            assets=sql_values(ASSETS),
            fiat=", ".join(f"'{c}'" for c in FIAT),
            crypto_address=CRYPTO_ADDRESS,
            address=_first_of(names, ADDRESS),
            bank=_first_of(names, BANK),
            name=_first_of(names, NAME),
        )
        rows = fetch(con, sql, {"account": account})
        bad = rows.filter(pl.col("_reason").is_not_null())["source_row"].to_list()
        raw = dict(zip(bad, _raw_lines(data, bad), strict=True))
        rows = rows.with_columns(
            _raw=pl.col("source_row").replace_strict(raw, default=None, return_dtype=pl.String),
            channel=pl.col("channel").cast(pl.String),
        )
        links = rows.filter(pl.col("_reason").is_null())["external_account"].drop_nulls().unique(maintain_order=True)
        kinds = rows["kind"].drop_nulls().value_counts(sort=True)
        notes = [f"{rows.height + read.rejected.height} ledger rows of account {account}: "
                 + ", ".join(f"{n} {k}" for k, n in zip(kinds["kind"], kinds["count"], strict=True))]  # fmt: skip
        rows = pl.concat([rows.drop("external_account", "kind"), read.rejected], how="diagonal_relaxed").sort(
            "source_row"
        )
        accounts = conform_accounts(
            pl.DataFrame(
                {"account_id": [account], "kind": ["exchange_account"], "holder_type": ["person"],
                 "institution": ["Kraken"], "links": [links.to_list()],
                 "source_row": [int(rows["source_row"].min() or 1)]},  # type: ignore[arg-type]
                schema={"account_id": pl.String, "kind": pl.String, "holder_type": pl.String, "institution": pl.String,
                        "links": pl.List(pl.String), "source_row": pl.Int64},
            )
        )  # fmt: skip
        if links.len():
            notes.append(f"{links.len()} external addresses or bank accounts linked to {account}")
        return Parsed(rows, f"Kraken-layout exchange ledger CSV ({rows.height} rows)", accounts=accounts, notes=notes)


def _raw_lines(data: bytes, numbers: list[int]) -> list[str]:
    lines = data.split(b"\n")
    return [lines[n - 1].decode("utf-8", errors="replace").rstrip("\r") for n in numbers]
