"""Write a world as the files users actually receive, plus ground truth.

- ``amlworld/transactions.csv`` and ``amlworld/patterns.txt``: IBM AMLworld's layout (fiat transactions of the
  whole world, minute resolution, cash as a self-transfer, ``Account`` twice in the header).
- ``bank-csv/transactions.csv``: the core-banking export of the banks that send CSV: one booking row per account
  side, semicolon separated, decimal comma, signed amounts (debits negative), ``dd.mm.yyyy HH:MM:SS`` UTC.
- ``camt053/<BIC>/<BIC>_<date>.xml``: ISO 20022 bank-to-customer statements of the other banks, one file per bank
  and day, one ``Stmt`` per account with entries that day; payroll runs are batched entries.
- ``ethereum-etl/transactions.csv``: ethereum-etl's transactions layout, values in wei.
- ``customers/customers.csv``: the customer (KYC) extract of the domestic banks' own clients, one row per account
  and holder, read with the shipped mapping ``finwatch-synth-customers``.
- ``truth/`` and ``labels/``: the canonical tables and the ground-truth labels as Parquet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from finwatch import __version__
from finwatch._io import atomic_directory, sha256_file
from finwatch.schema import ACCOUNT_SCHEMA, LABEL_SCHEMA, TRANSACTION_SCHEMA, conform
from finwatch.synth import _vocab as vocab
from finwatch.synth._context import ETH_SCALE, FIAT_SCALE
from finwatch.synth._kyc import directors
from finwatch.synth._world import World, config_digest

AMLWORLD_HEADER = (
    "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,"
    "Payment Currency,Payment Format,Is Laundering"
)
AMLWORLD_FORMAT = {
    "cash": "Cash",
    "wire": "Wire",
    "ach": "ACH",
    "card": "Credit Card",
    "cheque": "Cheque",
    "p2p": "ACH",
    "internal": "Reinvestment",
}
BANK_CSV_COLUMNS = (
    "Booking Time",
    "Account",
    "BIC",
    "Amount",
    "Currency",
    "Instructed Amount",
    "Instructed Currency",
    "Counterparty Account",
    "Counterparty BIC",
    "Counterparty Name",
    "Channel",
    "MCC",
    "City",
    "Country",
    "Branch",
    "Reference",
    "Description",
)
CAMT_NS = {
    "001.02": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02",
    "001.04": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.04",
    "001.08": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08",
}
BTC_CODES = {  # ISO bank transaction codes: (family, sub-family) for credit and debit bookings
    "cash": (("CNTR", "CDPT"), ("CNTR", "CWDL")),
    "card": (("CCRD", "POSD"), ("CCRD", "POSD")),
    "cheque": (("RCHQ", "CCHQ"), ("ICHQ", "CCHQ")),
    "wire": (("RCDT", "XBCT"), ("ICDT", "XBCT")),
    "ach": (("RCDT", "ESCT"), ("ICDT", "ESCT")),
    "p2p": (("RCDT", "DMCT"), ("ICDT", "DMCT")),
    "internal": (("RCDT", "BOOK"), ("ICDT", "BOOK")),
}
#: the customer extract's header, and its codes for canonical values (see the finwatch-synth-customers mapping)
CUSTOMER_CSV_COLUMNS = {
    "Account": "account_id", "BIC": "institution", "Branch": "branch", "Customer Type": "holder_type",
    "Name": "holder_name", "Given Name": "given_name", "Family Name": "family_name",
    "Date of Birth or Incorporation": "birth_date", "ID Type": "id_type", "ID Number": "id_number",
    "ID Country": "id_country", "Street": "address", "Postcode": "postcode", "City": "city", "Country": "country",
    "Phone": "phone", "Occupation or Activity": "occupation", "Account Status": "status", "Own Client": "own_client",
    "Currency": "currency", "Industry Code": "mcc", "Opened": "opened_date",
}  # fmt: skip
CUSTOMER_CODES = {
    "holder_type": {"person": "IND", "business": "CORP", "merchant": "MERCH", "exchange": "VASP"},
    "id_type": {"passport": "PASSPORT", "national_id": "NATIONAL ID", "driver_licence": "DRIVER LICENCE",
                "tax_id": "TAX ID", "company_registration": "COMPANY REG NO"},
    "status": {"open": "ACTIVE", "closed": "CLOSED", "frozen": "BLOCKED", "dormant": "DORMANT"},
}  # fmt: skip
CUSTOMER_DATE_FORMAT = "%d.%m.%Y"
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "write_statistics": True}


def units_str(units: pl.Expr, scale: int, sep: str = ".") -> pl.Expr:
    """Exact decimal text of integer minor units (no float on the way)."""
    digits = units.abs().cast(pl.String).str.zfill(scale + 1)
    sign = pl.when(units < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str([sign, digits.str.head(-scale), pl.lit(sep), digits.str.tail(scale)])


def xml_escape(expr: pl.Expr) -> pl.Expr:
    return (
        expr.str.replace_all("&", "&amp;", literal=True)
        .str.replace_all("<", "&lt;", literal=True)
        .str.replace_all(">", "&gt;", literal=True)
    )


MANIFEST = "world.json"


def save_world(world: World, out: Path) -> dict[str, Any]:
    """Write ``world`` into ``out`` atomically; the manifest ``world.json`` (files, sha256, counts) comes last."""
    with atomic_directory(out, marker=MANIFEST) as staging:
        files = write_world(world, staging)
        manifest: dict[str, Any] = {
            "finwatch_world": 1,
            "generator": f"finwatch {__version__}",
            "config": json.loads(world.config.model_dump_json()),
            "config_sha256": config_digest(world.config),
            "counts": {
                "accounts": world.accounts.height,
                "transactions": world.transactions.height,
                "positive_accounts": world.account_labels.filter(pl.col("label"))["subject_id"].n_unique(),
                "positive_transactions": int(world.transaction_labels["label"].sum()),
                "instances": world.instances.height,
                "instances_per_typology": dict(sorted(Counter(world.instances["typology"].to_list()).items())),
            },
            "files": [
                {
                    "path": p.relative_to(staging).as_posix(),
                    "sha256": sha256_file(p),
                    "bytes": p.stat().st_size,
                }
                for p in files
            ],
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def write_world(world: World, root: Path) -> list[Path]:
    """Write every file of ``world`` under ``root``; returns them in a stable order."""
    written: list[Path] = []
    written += _truth(world, root)
    written.append(_fx(world, root))
    written.append(_customers(world, root))
    raw = _with_booked_amounts(world)
    if "amlworld" in world.config.exports:
        written += _amlworld(world, raw, root)
    if "bank-csv" in world.config.exports:
        written.append(_bank_csv(world, raw, root))
    if "camt053" in world.config.exports:
        written += _camt053(world, raw, root)
    if "ethereum-etl" in world.config.exports:
        written.append(_ethereum_etl(world, raw, root))
    return sorted(written)


PARQUET_ROW_GROUP = 250_000


def _write_parquet(frame: pl.DataFrame, schema: pa.Schema | None, path: Path, what: str) -> Path:
    """Write with the exact canonical Arrow schema, one row group at a time (memory stays flat)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = schema if schema is not None else frame.head(0).to_arrow().schema
    with pq.ParquetWriter(path, target, **PARQUET_OPTIONS) as writer:
        for chunk in frame.iter_slices(PARQUET_ROW_GROUP):
            table = conform(chunk, schema, what=what) if schema is not None else chunk.to_arrow()
            writer.write_table(table)
    return path


def _truth(world: World, root: Path) -> list[Path]:
    return [
        _write_parquet(world.transactions, TRANSACTION_SCHEMA, root / "truth" / "transactions.parquet", "transactions"),
        _write_parquet(_holders(world), ACCOUNT_SCHEMA, root / "truth" / "accounts.parquet", "accounts"),
        _write_parquet(world.account_labels, LABEL_SCHEMA, root / "labels" / "accounts.parquet", "account labels"),
        _write_parquet(
            world.transaction_labels,
            LABEL_SCHEMA,
            root / "labels" / "transactions.parquet",
            "transaction labels",
        ),
        _write_parquet(world.instances, None, root / "labels" / "instances.parquet", "instances"),
    ]


def _holders(world: World) -> pl.DataFrame:
    """The accounts table as a bank holds it: each account's holder, then a director for each business client."""
    return pl.concat([world.accounts, directors(world.accounts, world.config.seed)])


def _customers(world: World, root: Path) -> Path:
    """The own clients' customer extract: one row per account and holder (a business, then its director)."""
    columns = []
    for header, column in CUSTOMER_CSV_COLUMNS.items():
        value = pl.col(column)
        if column in CUSTOMER_CODES:
            value = value.replace_strict(CUSTOMER_CODES[column], return_dtype=pl.String)
        elif column in ("birth_date", "opened_date"):
            value = value.dt.strftime(CUSTOMER_DATE_FORMAT)
        elif column == "own_client":
            value = pl.when(value).then(pl.lit("Y")).otherwise(pl.lit("N"))
        columns.append(value.alias(header))
    extract = _holders(world).filter(pl.col("own_client")).sort("account_id", "source_row").select(columns)
    path = root / "customers" / "customers.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    extract.write_csv(path, separator=";", quote_style="necessary", line_terminator="\n")
    return path


def _fx(world: World, root: Path) -> Path:
    path = root / "fx_rates.csv"
    world.fx.with_columns(base=pl.lit(world.config.base_currency)).select(
        "date", "currency", "base", pl.col("rate").map_elements(lambda r: f"{r:.10g}", return_dtype=pl.String)
    ).write_csv(path)
    return path


def _with_booked_amounts(world: World) -> pl.DataFrame:
    """Add the amount as booked on each side: converted into the receiving account's currency when it differs."""
    pop = world.pop
    acct_cur = pl.Series([pop.currencies[c] for c in pop.currency.tolist()], dtype=pl.String)
    acct_cur_idx = pl.Series(pop.currency.astype(np.int64))
    dst = world.raw["dst"].cast(pl.Int64).clip(0)
    dst_cur = acct_cur_idx.gather(dst)
    raw = world.raw.with_columns(
        dst_currency=pl.when(pl.col("dst") >= 0).then(acct_cur.gather(dst)),
        dst_rate=world.fx["rate"].gather(dst_cur * world.ctx.days + world.raw["day"].cast(pl.Int64)),
    )
    converted = (pl.col("units") * pl.col("fx_rate") / pl.col("dst_rate")).round(0).cast(pl.Int64)
    same = pl.col("dst_currency").is_null() | (pl.col("dst_currency") == pl.col("currency"))
    return raw.with_columns(
        recv_units=pl.when(same).then(pl.col("units")).otherwise(converted),
        recv_currency=pl.coalesce("dst_currency", "currency"),
    )


# --- AMLworld ------------------------------------------------------------------------------------------------
def _amlworld(world: World, raw: pl.DataFrame, root: Path) -> list[Path]:
    pop = world.pop
    code = pl.Series([pop.banks[b].code if b >= 0 else None for b in pop.bank.tolist()], dtype=pl.String)
    cur_name = {c: vocab.CURRENCIES[c][0] for c in vocab.CURRENCIES}
    needed = ("ts", "src", "dst", "recv_units", "recv_currency", "units", "currency", "channel", "inst")
    fiat = raw.filter(pl.col("chain").is_null()).select(needed)  # projection first: no copy of other columns
    src, dst = fiat["src"].cast(pl.Int64), fiat["dst"].cast(pl.Int64)
    # cash appears as a self-transfer of the account (the layout has no cash counterparty)
    fiat = fiat.with_columns(
        a_from=pl.when(src >= 0).then(src).otherwise(dst),
        a_to=pl.when(dst >= 0).then(dst).otherwise(src),
    )
    ids = pl.Series(pop.ids, dtype=pl.String)
    line = pl.concat_str(
        [
            pl.from_epoch("ts", time_unit="s").dt.strftime("%Y/%m/%d %H:%M"),
            pl.col("from_bank"),
            pl.col("from_id"),
            pl.col("to_bank"),
            pl.col("to_id"),
            units_str(pl.col("recv_units"), FIAT_SCALE),
            pl.col("recv_currency").replace_strict(cur_name),
            units_str(pl.col("units"), FIAT_SCALE),
            pl.col("currency").replace_strict(cur_name),
            pl.col("channel").replace_strict(AMLWORLD_FORMAT),
            (pl.col("inst") >= 0).cast(pl.Int8).cast(pl.String),
        ],
        separator=",",
    ).alias("line")
    folder = root / "amlworld"
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "transactions.csv"
    laundering: list[pl.DataFrame] = []
    with csv_path.open("wb") as handle:
        handle.write(AMLWORLD_HEADER.encode() + b"\n")
        for chunk in fiat.iter_slices(CSV_CHUNK_ROWS):  # formatted a slice at a time: memory stays flat
            lines = chunk.with_columns(
                from_bank=code.gather(chunk["a_from"]),
                from_id=ids.gather(chunk["a_from"]),
                to_bank=code.gather(chunk["a_to"]),
                to_id=ids.gather(chunk["a_to"]),
            ).select("inst", line)
            lines.select("line").write_csv(handle, include_header=False, quote_style="never", line_terminator="\n")
            laundering.append(lines.filter(pl.col("inst") >= 0))
    patterns = pl.concat(laundering).group_by("inst", maintain_order=True).agg(pl.col("line"))
    inst_rows = {int(r["instance_id"].rsplit("-", 1)[1]): r for r in world.instances.to_dicts()}
    out = io.StringIO()
    for inst, rows in sorted(zip(patterns["inst"].to_list(), patterns["line"].to_list(), strict=True)):
        meta = inst_rows[inst]
        name = meta["typology"].upper().replace("_", "-")
        out.write(f"BEGIN LAUNDERING ATTEMPT - {name}{_pattern_detail(meta)}\n")
        out.write("\n".join(rows))
        out.write(f"\nEND LAUNDERING ATTEMPT - {name}\n\n")
    patterns_path = folder / "patterns.txt"
    patterns_path.write_text(out.getvalue(), encoding="utf-8")
    return [csv_path, patterns_path]


def _pattern_detail(meta: dict[str, object]) -> str:
    params = json.loads(str(meta["params"]))
    typ = meta["typology"]
    if typ in ("fan_in", "fan_out"):
        label = "Fan-In" if typ == "fan_in" else "Fan-Out"
        return f":  Max {params['degree']}-degree {label}"
    if typ == "gather_scatter":
        return f":  Max {params['in_degree']}-degree Fan-In"
    if typ == "cycle":
        return f":  Max {params['length']} hops"
    if typ == "random":
        return f":  Max {params['hops']} hops"
    return ""


# --- bank CSV --------------------------------------------------------------------------------------------------
_SIDE_COLUMNS = (
    "row",
    "txn_id",
    "ts",
    "date",
    "units",
    "currency",
    "channel",
    "mcc_code",
    "city_name",
    "country",
    "branch_id",
    "description",
    "batch",
    "src_account",
    "dst_account",
    "src_institution",
    "dst_institution",
    "src_name",
    "dst_name",
)
CSV_CHUNK_ROWS = 250_000


def _sides(world: World, raw: pl.DataFrame, export: str) -> pl.DataFrame:
    """One booking per account side at banks exporting ``export``: debit for the sender, credit for the receiver."""
    pop = world.pop
    banks = [i for i, b in enumerate(pop.banks) if b.export == export]
    at_bank = np.isin(pop.bank, banks)
    mask = pl.Series(at_bank)
    fiat = (
        raw.lazy()
        .filter(pl.col("chain").is_null())
        .select(*_SIDE_COLUMNS, "src", "dst", "recv_units", "recv_currency", "party_name")
        .collect()
    )

    def side(me: str, other: str, sign: int) -> pl.DataFrame:
        idx = fiat[me].cast(pl.Int64)
        keep = (idx >= 0) & mask.gather(idx.clip(0))
        part = fiat.filter(keep)
        units = pl.col("units") if sign < 0 else pl.col("recv_units")
        return part.select(
            *_SIDE_COLUMNS,
            me_idx=pl.col(me).cast(pl.Int64),
            other_idx=pl.col(other).cast(pl.Int64),
            account=pl.col(f"{me}_account"),
            bic=pl.col(f"{me}_institution"),
            other_account=pl.col(f"{other}_account"),
            other_bic=pl.col(f"{other}_institution"),
            other_name=pl.coalesce(pl.col(f"{other}_name"), pl.col("party_name")),
            booked_units=units * sign,
            booked_currency=pl.col("currency") if sign < 0 else pl.col("recv_currency"),
            side=pl.lit(sign, pl.Int8),
        )

    return pl.concat([side("src", "dst", -1), side("dst", "src", 1)]).sort(["row", "side"])


def _bank_csv(world: World, raw: pl.DataFrame, root: Path) -> Path:
    instructed = pl.col("booked_currency") != pl.col("currency")
    columns = (
        pl.from_epoch("ts", time_unit="s").dt.strftime("%d.%m.%Y %H:%M:%S").alias("Booking Time"),
        pl.col("account").alias("Account"),
        pl.col("bic").alias("BIC"),
        units_str(pl.col("booked_units"), FIAT_SCALE, ",").alias("Amount"),
        pl.col("booked_currency").alias("Currency"),
        pl.when(instructed).then(units_str(pl.col("units"), FIAT_SCALE, ",")).alias("Instructed Amount"),
        pl.when(instructed).then(pl.col("currency")).alias("Instructed Currency"),
        pl.col("other_account").alias("Counterparty Account"),
        pl.col("other_bic").alias("Counterparty BIC"),
        pl.col("other_name").alias("Counterparty Name"),
        pl.col("channel").str.to_uppercase().alias("Channel"),
        pl.col("mcc_code").alias("MCC"),
        pl.col("city_name").alias("City"),
        pl.col("country").alias("Country"),
        pl.col("branch_id").alias("Branch"),
        pl.col("txn_id").alias("Reference"),
        pl.col("description").alias("Description"),
    )
    assert tuple(c.meta.output_name() for c in columns) == BANK_CSV_COLUMNS
    path = root / "bank-csv" / "transactions.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:  # a day at a time: memory stays flat for large worlds
        first = True
        for _d, raw_day in _day_slices(world, raw):
            sides = _sides(world, raw_day, "bank-csv")
            sides.select(columns).write_csv(
                handle, include_header=first, separator=";", quote_style="necessary", line_terminator="\n"
            )
            first = False
    return path


# --- camt.053 --------------------------------------------------------------------------------------------------
def _opt(tag: str, value: pl.Expr) -> pl.Expr:
    """``<tag>value</tag>`` or nothing when the value is null."""
    return pl.when(value.is_not_null()).then(pl.format(f"<{tag}>{{}}</{tag}>", xml_escape(value))).otherwise(pl.lit(""))


def _day_slices(world: World, raw: pl.DataFrame) -> list[tuple[int, pl.DataFrame]]:
    """Zero-copy slices of ``raw`` (sorted by time), one per simulated day."""
    bounds = np.searchsorted(raw["day"].to_numpy(), np.arange(world.ctx.days + 1))
    return [(d, raw.slice(int(bounds[d]), int(bounds[d + 1] - bounds[d]))) for d in range(world.ctx.days)]


def _camt053(world: World, raw: pl.DataFrame, root: Path) -> list[Path]:
    pop, cfg = world.pop, world.config
    version = {b.bic: b.camt_version for b in pop.banks if b.export == "camt053"}
    # running booked balance of every account: a starting balance, then each day's bookings
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 53]))
    balance = np.round(rng.lognormal(8.0, 1.2, size=pop.n) * 100).astype(np.int64)
    files: list[Path] = []
    # a day at a time, then a bank at a time: memory stays flat however large the world is
    for _d, raw_day in _day_slices(world, raw):
        sides = _sides(world, raw_day, "camt053").with_columns(day=pl.col("date"))
        if sides.is_empty():
            continue
        net = sides.group_by("me_idx").agg(net=pl.col("booked_units").sum(), bank=pl.col("bic").first())
        me, change = net["me_idx"].to_numpy(), net["net"].to_numpy()
        daily = net.with_columns(
            day=pl.lit(sides["day"][0]),
            opening=pl.Series(balance[me]),
            closing=pl.Series(balance[me] + change),
        )
        balance[me] += change
        for bic in sorted(set(sides["bic"].to_list())):
            part = sides.filter(pl.col("bic") == bic).sort(["row", "side"])
            day = part["day"][0]
            xml = _camt_document(part, daily.filter(pl.col("bank") == bic), bic, version[bic], day)
            path = root / "camt053" / bic / f"{bic}_{day:%Y-%m-%d}.xml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(xml, encoding="utf-8")
            files.append(path)
    return files


def _camt_document(sides: pl.DataFrame, daily: pl.DataFrame, bic: str, version: str, day: dt.date) -> str:
    """One camt.053 message: a statement per account with bookings on ``day`` at bank ``bic``."""
    v8 = version == "001.08"
    bic_tag = "BIC" if version == "001.02" else "BICFI"

    def party(tag: str, name: pl.Expr) -> pl.Expr:
        inner = (
            pl.format("<Pty><Nm>{}</Nm></Pty>", xml_escape(name)) if v8 else pl.format("<Nm>{}</Nm>", xml_escape(name))
        )
        return pl.when(name.is_not_null()).then(pl.format(f"<{tag}>{{}}</{tag}>", inner)).otherwise(pl.lit(""))

    def acct(tag: str, account: pl.Expr) -> pl.Expr:
        return (
            pl.when(account.is_not_null())
            .then(pl.format(f"<{tag}><Id><Othr><Id>{{}}</Id></Othr></Id></{tag}>", account))
            .otherwise(pl.lit(""))
        )

    def agent(tag: str, code: pl.Expr) -> pl.Expr:
        return (
            pl.when(code.is_not_null())
            .then(pl.format(f"<{tag}><FinInstnId><{bic_tag}>{{}}</{bic_tag}></FinInstnId></{tag}>", code))
            .otherwise(pl.lit(""))
        )

    credit = pl.col("side") > 0
    dbtr_name = pl.when(credit).then(pl.col("other_name")).otherwise(pl.col("src_name"))
    cdtr_name = pl.when(credit).then(pl.col("dst_name")).otherwise(pl.col("other_name"))
    extra = pl.concat_str(
        [
            pl.format("MCC={};", pl.col("mcc_code")),
            pl.format("CITY={};", pl.col("city_name")),
            pl.format("COUNTRY={};", pl.col("country")),
            pl.format("BRANCH={};", pl.col("branch_id")),
            pl.format("CHANNEL={}", pl.col("channel")),
        ],
        ignore_nulls=True,
    )
    tx = sides.with_columns(
        txdtls=pl.concat_str(
            [
                pl.format("<TxDtls><Refs><EndToEndId>{}</EndToEndId></Refs>", pl.col("txn_id")),
                pl.format(
                    '<AmtDtls><InstdAmt><Amt Ccy="{}">{}</Amt></InstdAmt></AmtDtls>',
                    pl.col("currency"),
                    units_str(pl.col("units"), FIAT_SCALE),
                ),
                pl.lit("<RltdPties>"),
                party("Dbtr", dbtr_name),
                acct("DbtrAcct", pl.col("src_account")),
                party("Cdtr", cdtr_name),
                acct("CdtrAcct", pl.col("dst_account")),
                pl.lit("</RltdPties><RltdAgts>"),
                agent("DbtrAgt", pl.col("src_institution")),
                agent("CdtrAgt", pl.col("dst_institution")),
                pl.lit("</RltdAgts>"),
                pl.when(pl.col("description").is_not_null())
                .then(pl.format("<RmtInf><Ustrd>{}</Ustrd></RmtInf>", xml_escape(pl.col("description"))))
                .otherwise(pl.lit("")),
                pl.format("<AddtlTxInf>{}</AddtlTxInf></TxDtls>", xml_escape(extra)),
            ]
        ),
        # a payroll run is one debit entry with one detail per employee; everything else one entry each
        entry_key=pl.when((pl.col("side") < 0) & (pl.col("batch") >= 0))
        .then(pl.format("B{}", pl.col("batch")))
        .otherwise(pl.col("txn_id")),
    )
    entries = (
        tx.group_by(["me_idx", "day", "entry_key"], maintain_order=True)
        .agg(
            account=pl.col("account").first(),
            ts=pl.col("ts").first(),
            side=pl.col("side").first(),
            channel=pl.col("channel").first(),
            booked=pl.col("booked_units").sum(),
            ccy=pl.col("booked_currency").first(),
            n=pl.len(),
            details=pl.col("txdtls").str.join(""),
            first_row=pl.col("row").first(),
        )
        .sort(["me_idx", "day", "ts", "first_row"])
    )
    codes = {ch: f"{c[0][0]}|{c[0][1]}|{c[1][0]}|{c[1][1]}" for ch, c in BTC_CODES.items()}
    code_parts = pl.col("channel").replace_strict(codes).str.split("|")
    fam = pl.when(pl.col("side") > 0).then(code_parts.list.get(0)).otherwise(code_parts.list.get(2))
    sub = pl.when(pl.col("side") > 0).then(code_parts.list.get(1)).otherwise(code_parts.list.get(3))
    status = "<Sts><Cd>BOOK</Cd></Sts>" if v8 else "<Sts>BOOK</Sts>"
    entries = entries.with_columns(
        xml=pl.concat_str(
            [
                pl.format("<Ntry><NtryRef>{}</NtryRef>", pl.col("entry_key")),
                pl.format('<Amt Ccy="{}">{}</Amt>', pl.col("ccy"), units_str(pl.col("booked").abs(), FIAT_SCALE)),
                pl.when(pl.col("side") > 0)
                .then(pl.lit("<CdtDbtInd>CRDT</CdtDbtInd>"))
                .otherwise(pl.lit("<CdtDbtInd>DBIT</CdtDbtInd>")),
                pl.lit(status),
                pl.format(
                    "<BookgDt><DtTm>{}</DtTm></BookgDt>",
                    pl.from_epoch("ts", time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                ),
                pl.format("<ValDt><Dt>{}</Dt></ValDt>", pl.col("day").dt.strftime("%Y-%m-%d")),
                pl.format(
                    "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{}</Cd><SubFmlyCd>{}</SubFmlyCd></Fmly></Domn></BkTxCd>",
                    fam,
                    sub,
                ),
                pl.lit("<NtryDtls>"),
                pl.when(pl.col("n") > 1)
                .then(pl.format("<Btch><NbOfTxs>{}</NbOfTxs></Btch>", pl.col("n")))
                .otherwise(pl.lit("")),
                pl.col("details"),
                pl.lit("</NtryDtls></Ntry>"),
            ]
        )
    )
    stmts = (
        entries.group_by(["me_idx", "day"], maintain_order=True)
        .agg(
            account=pl.col("account").first(),
            ccy=pl.col("ccy").first(),
            xml=pl.col("xml").str.join(""),
            n_cr=(pl.col("side") > 0).sum(),
            n_db=(pl.col("side") < 0).sum(),
            sum_cr=pl.when(pl.col("side") > 0).then(pl.col("booked")).otherwise(0).sum(),
            sum_db=pl.when(pl.col("side") < 0).then(-pl.col("booked")).otherwise(0).sum(),
        )
        .join(
            daily.select("me_idx", "day", "opening", "closing"),
            on=["me_idx", "day"],
            how="left",
            maintain_order="left",
        )
    )
    day_str = pl.col("day").dt.strftime("%Y-%m-%d")

    def bal(code: str, col: str) -> pl.Expr:
        return pl.format(
            f'<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="{{}}">{{}}</Amt>'
            "<CdtDbtInd>{}</CdtDbtInd><Dt><Dt>{}</Dt></Dt></Bal>",
            pl.col("ccy"),
            units_str(pl.col(col).abs(), FIAT_SCALE),
            pl.when(pl.col(col) < 0).then(pl.lit("DBIT")).otherwise(pl.lit("CRDT")),
            day_str,
        )

    stmts = stmts.with_columns(
        xml=pl.concat_str(
            [
                pl.format("<Stmt><Id>{}-{}</Id>", pl.col("account"), day_str.str.replace_all("-", "")),
                pl.format("<ElctrncSeqNb>{}</ElctrncSeqNb>", pl.col("day").dt.ordinal_day()),
                pl.format("<CreDtTm>{}T23:59:59Z</CreDtTm>", day_str),
                pl.format("<Acct><Id><Othr><Id>{}</Id></Othr></Id><Ccy>{}</Ccy>", pl.col("account"), pl.col("ccy")),
                pl.lit(f"<Svcr><FinInstnId><{bic_tag}>{bic}</{bic_tag}></FinInstnId></Svcr></Acct>"),
                bal("OPBD", "opening"),
                bal("CLBD", "closing"),
                pl.format(
                    "<TxsSummry><TtlCdtNtries><NbOfNtries>{}</NbOfNtries><Sum>{}</Sum></TtlCdtNtries>"
                    "<TtlDbtNtries><NbOfNtries>{}</NbOfNtries><Sum>{}</Sum></TtlDbtNtries></TxsSummry>",
                    pl.col("n_cr"),
                    units_str(pl.col("sum_cr"), FIAT_SCALE),
                    pl.col("n_db"),
                    units_str(pl.col("sum_db"), FIAT_SCALE),
                ),
                pl.col("xml"),
                pl.lit("</Stmt>"),
            ]
        )
    )
    ns = CAMT_NS[version]
    body = "\n".join(stmts["xml"].to_list())
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{ns}">\n<BkToCstmrStmt>\n'
        f"<GrpHdr><MsgId>{bic}{day:%Y%m%d}</MsgId><CreDtTm>{day:%Y-%m-%d}T23:59:59Z</CreDtTm></GrpHdr>\n"
        f"{body}\n</BkToCstmrStmt>\n</Document>\n"
    )


# --- ethereum-etl ----------------------------------------------------------------------------------------------
ETH_COLUMNS = (
    "hash",
    "nonce",
    "block_hash",
    "block_number",
    "transaction_index",
    "from_address",
    "to_address",
    "value",
    "gas",
    "gas_price",
    "input",
    "block_timestamp",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
    "transaction_type",
)
GENESIS_BLOCK = 19_000_000


def _hash_hex(seed: int, salt: str, keys: list[str]) -> list[str]:
    return ["0x" + hashlib.blake2b(f"{seed}:{salt}:{k}".encode(), digest_size=32).hexdigest() for k in keys]


def _ethereum_etl(world: World, raw: pl.DataFrame, root: Path) -> Path:
    seed = world.config.seed
    eth = raw.filter(pl.col("chain") == "ethereum").sort(["ts", "row"])
    block = (GENESIS_BLOCK + (eth["ts"] - world.ctx.epoch) // 12).cast(pl.Int64)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1559]))
    base_fee = rng.integers(8, 60, size=len(eth)) * 1_000_000_000
    tip = rng.choice([100_000_000, 1_000_000_000, 2_000_000_000], size=len(eth))
    nonce_start = pl.Series(rng.integers(0, 5_000, size=world.pop.n))
    eth = eth.with_columns(
        block_number=block,
        transaction_index=pl.int_range(pl.len()).over(block),
        # addresses with a history before the period start at a later nonce
        nonce=pl.int_range(pl.len()).over("src")
        + nonce_start.gather(eth["src"].cast(pl.Int64)) * (pl.col("src").cast(pl.Int64) % 3 == 0).cast(pl.Int64),
        gas_price=pl.Series(base_fee + tip),
        max_fee=pl.Series(base_fee * 2 + tip),
        tip=pl.Series(tip),
    )
    table = eth.select(
        hash=pl.Series(_hash_hex(seed, "tx", eth["txn_id"].to_list())),
        nonce="nonce",
        block_hash=pl.Series(_hash_hex(seed, "block", [str(b) for b in eth["block_number"].to_list()])),
        block_number="block_number",
        transaction_index="transaction_index",
        from_address="src_account",
        to_address="dst_account",
        value=pl.concat_str([pl.col("units").cast(pl.String), pl.lit("0" * (18 - ETH_SCALE))]),
        gas=pl.lit(21_000),
        gas_price="gas_price",
        input=pl.lit("0x"),
        block_timestamp="ts",
        max_fee_per_gas="max_fee",
        max_priority_fee_per_gas="tip",
        transaction_type=pl.lit(2),
    )
    assert tuple(table.columns) == ETH_COLUMNS
    path = root / "ethereum-etl" / "transactions.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.write_csv(path, line_terminator="\n")
    return path
