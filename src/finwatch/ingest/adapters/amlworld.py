"""IBM AMLworld: the transactions CSV (both header variants) and its ``*_Patterns.txt`` laundering attempts.

Layout: ``Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,
Payment Currency,Payment Format,Is Laundering`` (Kaggle copies name the second account column ``Account.1``).
Timestamps have minute resolution; the amount is what was paid, in the payment currency; a different received
amount or currency is kept in ``description``. Bank ids are numbers (``012`` and ``12`` are one bank: the Kaggle
copies drop leading zeros that the original files and the patterns keep). Cash rows name the same account on
both sides (the layout does not say whether cash came in or went out), and are stored as such. AMLworld has
no transaction ids: rows get content-hash ids, which is also how patterns-file rows are matched to them.
"""

from __future__ import annotations

import re
from typing import ClassVar

import duckdb
import polars as pl

from finwatch.exceptions import InputError
from finwatch.ingest._base import Adapter, Parsed, ParseOptions, Sample, Source, duckdb_connection, fetch, sql_values
from finwatch.ingest._text import csv_records, csv_source, decode_utf8, finish_csv

HEADER = ["Timestamp", "From Bank", "Account", "To Bank", "Account", "Amount Received", "Receiving Currency",
          "Amount Paid", "Payment Currency", "Payment Format", "Is Laundering"]  # fmt: skip
FIELDS = ["timestamp", "from_bank", "from_account", "to_bank", "to_account", "amount_received",
          "receiving_currency", "amount_paid", "payment_currency", "payment_format", "is_laundering"]  # fmt: skip
CURRENCIES = {
    "US Dollar": "USD", "Euro": "EUR", "UK Pound": "GBP", "Yuan": "CNY", "Rupee": "INR", "Yen": "JPY",
    "Swiss Franc": "CHF", "Shekel": "ILS", "Canadian Dollar": "CAD", "Australian Dollar": "AUD", "Ruble": "RUB",
    "Mexican Peso": "MXN", "Saudi Riyal": "SAR", "Brazil Real": "BRL", "Bitcoin": "BTC",
    "Philippine Peso": "PHP", "UAE Dirham": "AED",
}  # fmt: skip
FORMATS = {"ACH": "ach", "Wire": "wire", "Cash": "cash", "Cheque": "cheque", "Credit Card": "card",
           "Reinvestment": "internal", "Bitcoin": "crypto"}  # fmt: skip
BEGIN = re.compile(r"^BEGIN LAUNDERING ATTEMPT - (?P<typology>[A-Z-]+)(?::\s*(?P<detail>.*))?$")
END = re.compile(r"^END LAUNDERING ATTEMPT - (?P<typology>[A-Z-]+)$")

TRANSFORM = """
with src as (select _rec, {renames} from ({source})),
currencies as (select * from (values {currencies}) t(name, code)),
formats as (select * from (values {formats}) t(name, channel)),
parsed as (
    select
        src.*,
        try_strptime(timestamp, '%Y/%m/%d %H:%M') as ts_local,
        try_cast(amount_paid as decimal(38, 18)) as paid,
        try_cast(amount_received as decimal(38, 18)) as received,
        pc.code as pay_code,
        rc.code as recv_code,
        f.channel as fmt_channel
    from src
    left join currencies pc on pc.name = src.payment_currency
    left join currencies rc on rc.name = src.receiving_currency
    left join formats f on f.name = src.payment_format
),
final as (
    select
        cast(null as varchar) as txn_id,
        timezone('UTC', ts_local) as ts,
        from_account as src_account,
        to_account as dst_account,
        -- bank ids are numbers: the Kaggle copy drops the leading zeros the original files and patterns keep
        coalesce(nullif(ltrim(from_bank, '0'), ''), from_bank) as src_institution,
        coalesce(nullif(ltrim(to_bank, '0'), ''), to_bank) as dst_institution,
        paid as amount,
        pay_code as currency,
        fmt_channel as channel,
        case when received is distinct from paid or recv_code is distinct from pay_code
             then 'received ' || amount_received || ' ' || receiving_currency end as description,
        case when payment_format = 'Bitcoin' then 'bitcoin' end as chain,
        _rec,
        case
            when ts_local is null then 'unparsable timestamp ''' || coalesce(timestamp, '') || ''''
            when paid is null then 'unparsable amount paid ''' || coalesce(amount_paid, '') || ''''
            when received is null then 'unparsable amount received ''' || coalesce(amount_received, '') || ''''
            when pay_code is null then 'unknown currency ''' || coalesce(payment_currency, '') || ''''
            when recv_code is null then 'unknown currency ''' || coalesce(receiving_currency, '') || ''''
            when fmt_channel is null then 'unknown payment format ''' || coalesce(payment_format, '') || ''''
            when is_laundering is not null and is_laundering not in ('0', '1')
                then 'Is Laundering must be 0 or 1, not ''' || is_laundering || ''''
        end as _reason
    from parsed
)
select final.*, src.is_laundering,
       case when final._reason is not null then concat_ws(',', {raw_fields}) end as _raw
from final join src using (_rec)
order by _rec
"""


def _transform(con: duckdb.DuckDBPyConnection, source_sql: str, params: dict[str, object], n: int) -> pl.DataFrame:
    """Canonical rows from ``source_sql`` (``_rec`` then the first ``n`` AMLworld fields as f0, f1, ...)."""
    fields = FIELDS[:n] if n == len(FIELDS) else [*FIELDS[:n], "is_laundering"]
    renames = ", ".join(f"f{i} as {name}" for i, name in enumerate(FIELDS[:n]))
    if n < len(FIELDS):
        renames += ", cast(null as varchar) as is_laundering"
    sql = TRANSFORM.format(
        source=source_sql, renames=renames, currencies=sql_values(CURRENCIES), formats=sql_values(FORMATS),
        raw_fields=", ".join(f"src.{f}" for f in fields[:n]),
    )  # fmt: skip
    return fetch(con, sql, params)


class AmlWorldAdapter(Adapter):
    name = "amlworld"
    summary = "IBM AMLworld transactions CSV (either header variant) or its laundering-patterns file"
    line_records = True
    header_variants: ClassVar[tuple[str, ...]] = (",".join(HEADER), ",".join([*HEADER[:4], "Account.1", *HEADER[5:]]))

    @classmethod
    def sniff(cls, sample: Sample) -> str | None:
        if sample.is_dir:
            return None
        line = sample.first_line
        for variant, label in zip(cls.header_variants, ("original header", "Kaggle header (Account.1)"),
                                  strict=True):  # fmt: skip
            if line == variant or line == variant.rsplit(",", 1)[0]:
                return f"AMLworld transactions CSV, {label}"
        if BEGIN.match(line):
            return "AMLworld laundering patterns file"
        return None

    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        data = source.read_bytes()
        text = decode_utf8(source, data)
        first = text.split("\n", 1)[0].strip("\r")
        if BEGIN.match(first):
            return self._patterns(source, text)
        names = first.split(",")
        if len(names) not in (10, 11) or names[:4] != HEADER[:4] or names[5:] != HEADER[5 : len(names)]:
            missing = [h for h in HEADER[:10] if h not in names and not (h == "Account" and "Account.1" in names)]
            raise InputError(source.display, f"missing required AMLworld columns {missing or names}", row=1)
        con = duckdb_connection()
        with csv_records(source, data, len(names), path=source.path) as records:
            source_sql, params = csv_source(source, FIELDS[: len(names)], records=records)
            rows, rejected = finish_csv(con, source, records, _transform(con, source_sql, params, len(names)))
        labels = (
            rows.filter((pl.col("is_laundering") == "1") & pl.col("_reason").is_null())
            .select("source_row", typology=pl.lit("unspecified"), instance_id=pl.lit(None, pl.String))
        )  # fmt: skip
        rows = pl.concat([rows.drop("is_laundering"), rejected], how="diagonal")
        variant = "Kaggle header" if names[4] == "Account.1" else "original header"
        return Parsed(rows.sort("source_row"), f"AMLworld transactions CSV, {variant}", row_labels=labels)

    def _patterns(self, source: Source, text: str) -> Parsed:
        records: list[dict[str, object]] = []
        problems: list[dict[str, object]] = []
        typology: str | None = None
        attempt = 0
        for number, line in enumerate(text.split("\n"), start=1):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            if match := BEGIN.match(line):
                typology = match["typology"].lower().replace("-", "_")
                attempt += 1
                continue
            if match := END.match(line):
                typology = None
                continue
            fields = line.split(",")
            if typology is None or len(fields) not in (10, 11):
                reason = "transaction row outside a laundering attempt" if typology is None else (
                    f"row has {len(fields)} fields, expected 11")  # fmt: skip
                problems.append({"source_row": number, "_reason": reason, "_raw": line})
                continue
            record: dict[str, object] = dict(zip(FIELDS, fields, strict=False))
            record.update(source_row=number, typology=typology, instance_id=f"{typology}-{attempt:05d}")
            records.append(record)
        frame = pl.DataFrame(records, schema={**dict.fromkeys(FIELDS, pl.String), "source_row": pl.Int64,
                                              "typology": pl.String, "instance_id": pl.String})  # fmt: skip
        con = duckdb_connection()
        con.register("records", frame.drop("typology", "instance_id"))
        selected = ", ".join(f"{name} as f{i}" for i, name in enumerate(FIELDS))
        query = f"select source_row as _rec, {selected} from records"  # noqa: S608 - names are module constants
        parsed = _transform(con, query, {}, len(FIELDS))
        parsed = parsed.rename({"_rec": "source_row"})
        label_rows = pl.concat([parsed.drop("is_laundering"), pl.DataFrame(problems, schema={
            "source_row": pl.Int64, "_reason": pl.String, "_raw": pl.String})], how="diagonal")  # fmt: skip
        meta = frame.select("source_row", "typology", "instance_id")
        return Parsed(
            rows=pl.DataFrame(),
            detected=f"AMLworld laundering patterns file ({attempt} attempts)",
            label_rows=label_rows.join(meta, on="source_row", how="left").sort("source_row"),
        )
