"""Mutation fuzzing of every adapter over the real fixtures: truncation, insertion, deletion, duplication, encoding
flips, giant fields, control bytes and hostile XML.

For every mutated input, ingested both by content detection and forced to the seed's format: no exception escapes
(a bad file is rejected with one line naming it), ``read = accepted + quarantined`` for every ingested file, and
every quarantined record carries its reason and where it came from (its row, or its raw text). The budget per
seed family is ``$FINWATCH_FUZZ_EXAMPLES`` (default 8; ``make fuzz`` runs 400); inputs are drawn from a fixed
seed so that CI runs the same inputs every time.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finwatch.ingest import IngestOptions, ingest

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = int(os.environ.get("FINWATCH_FUZZ_EXAMPLES", "8"))
TRIED: dict[str, int] = {}
OUTCOMES: dict[str, dict[str, int]] = {}  # family → {"ingested": n, "rejected": n, …}: printed with -s

SEEDS = {  # family: (format, real files the mutations start from)
    "camt053": ("camt053", sorted((FIXTURES / "camt053").glob("*.xml"))),
    "mt940": ("mt940", sorted((FIXTURES / "mt940").glob("*.sta"))),
    "ofx": ("ofx", sorted((FIXTURES / "ofx").glob("*.ofx"))),
    "amlworld": ("amlworld", [FIXTURES / "amlworld" / "HI-Small_Trans_sample.csv"]),
    "amlworld-patterns": ("amlworld", [FIXTURES / "amlworld" / "HI-Small_Patterns.txt"]),
    "ethereum-etl": ("ethereum-etl", [FIXTURES / "ethereum_etl" / "transactions.csv"]),
    "exchange-ledger": ("exchange-ledger", [FIXTURES / "exchange_ledger" / "kraken_ledgers.csv"]),
    "bitcoin-etl": ("bitcoin-etl", [FIXTURES / "bitcoin_etl" / "expected_transactions.json"]),
}

HOSTILE = [b"\x00", b"\"", b"\n", b"\r\n", b",", b";", b"\xff\xfe", b"\xe2\x80\xae", b"\x1b[31m", b"[/x]",
           b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>", b"&e;", b"=cmd|' /C calc'!A0", b"9" * 400,
           b"-1e309", b"\t", b"</Ntry>", b":60F:", b"<STMTTRN>"]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """One mutation of ``data`` (several in a row for about a third of the inputs)."""
    for _ in range(draw(st.integers(1, 3))):
        n = len(data)
        at = draw(st.integers(0, n))
        kind = draw(st.sampled_from(["truncate", "insert", "hostile", "delete", "duplicate", "giant", "encoding",
                                     "swap"]))  # fmt: skip
        if kind == "truncate":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        elif kind == "hostile":
            data = data[:at] + draw(st.sampled_from(HOSTILE)) + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 64)) :]
        elif kind == "duplicate":
            end = min(n, at + draw(st.integers(1, 2000)))
            data = data[:end] + data[at:end] + data[end:]
        elif kind == "giant":
            data = data[:at] + draw(st.sampled_from([b"A", b'"', b"9", b" "])) * 300_000 + data[at:]
        elif kind == "encoding":
            text = data.decode("utf-8", errors="replace")
            data = text.encode(draw(st.sampled_from(["utf-16", "utf-16-be", "latin-1", "cp1252", "utf-32"])),
                               errors="replace")  # fmt: skip
        elif n > 1:
            other = draw(st.integers(0, n - 1))
            a, b = sorted((min(at, n - 1), other))
            data = data[:a] + data[b : b + 1] + data[a + 1 : b] + data[a : a + 1] + data[b + 1 :]
    return data


def _check(tmp: Path, name: str, data: bytes, fmt: str, family: str) -> None:
    """Ingest one input by detection and forced to ``fmt``; every guarantee must hold for both."""
    for forced in ("auto", fmt):
        folder = tmp / f"{forced}-{len(list(tmp.iterdir()))}"
        folder.mkdir()
        path = folder / name
        path.write_bytes(data)
        store = folder / "store"
        report = ingest([path], store, IngestOptions(format=forced, skip_rejected=True))
        (file,) = report.files
        counts = OUTCOMES.setdefault(family, {})
        counts[file.status] = counts.get(file.status, 0) + 1
        counts["quarantined rows"] = counts.get("quarantined rows", 0) + file.quarantined
        assert file.status in ("ingested", "rejected", "already ingested"), file
        if file.status == "rejected":
            assert file.error.strip(), file
            assert "\n" not in file.error.strip(), file.error
            assert "Traceback" not in file.error
            continue
        assert file.rows_read == file.accepted + file.quarantined, file
        if file.quarantined:
            quarantine = pl.read_parquet(sorted((store / "quarantine").glob("*.parquet")))
            assert quarantine.height == file.quarantined
            assert quarantine["reason"].str.len_chars().min() > 0  # type: ignore[operator]
            traceable = quarantine.filter(pl.col("row").is_not_null() | (pl.col("raw").str.len_chars() > 0))
            assert traceable.height == quarantine.height, quarantine.filter(pl.col("row").is_null())


@pytest.mark.parametrize("family", sorted(SEEDS))
def test_mutated_real_files_never_crash_and_always_balance(
    family: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    fmt, files = SEEDS[family]
    assert files, family
    seeds = [(p.name, p.read_bytes()) for p in files]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.sampled_from(seeds).flatmap(lambda seed: st.tuples(st.just(seed[0]), mutated(seed[1]))))
    def check(case: tuple[str, bytes]) -> None:
        name, data = case
        TRIED[family] = TRIED.get(family, 0) + 1
        _check(tmp_path_factory.mktemp(family), name, data, fmt, family)

    check()
    assert TRIED[family] >= min(EXAMPLES, 1)
    print(f"\n{family}: {TRIED[family]} inputs, ingested twice each (detected, forced {fmt}): {OUTCOMES[family]}")
