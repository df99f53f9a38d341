"""Pseudonymisation that holds: with a key no raw id or name is written anywhere in the store or shown in a report;
weak or empty keys are refused; the store records a salted key hash; the quarantine is encrypted or withheld."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import secrets
from pathlib import Path

import polars as pl
import pytest

from finwatch.dataset import end_of_data
from finwatch.digest import KEY_ENV as SIGNING_KEY_ENV
from finwatch.digest import load_signing_key
from finwatch.exceptions import ConfigError, StoreError
from finwatch.features import FeatureConfig, build_account_features
from finwatch.ingest import IngestOptions, ParseOptions, ingest, reveal_quarantine
from finwatch.ingest.pseudonym import KEY_ENV, MASK, Pseudonymizer, ReferenceWords, load_key, reference_words
from finwatch.ingest.quarantine import ENCRYPTED, WITHHELD, load_quarantine_key
from finwatch.keys import key_matches, key_problem, legacy_key_id
from finwatch.registry import Registry
from finwatch.report import build_report
from finwatch.runs import RunFolder
from finwatch.store import Store
from finwatch.synth import World
from tests.conftest import finwatch, run_score

KEY = b"5b1c0f8e3a7d4c2b9e6f1a0d8c7b3e2f4a6d9c1b0e8f7a3d2c5b4e6f9a1c0d8e"  # as secrets.token_hex(32) prints
QUARANTINE_KEY = b"e4d7a9c1f03b5e8d2a6c4f9b1e7d3a0c8f2b6e4d9a1c7f3b0e5d8a2c6f4b9e1d"
FIXTURES = Path(__file__).parent / "fixtures"

BANK_HEADER = (
    "Booking Time;Account;BIC;Amount;Currency;Instructed Amount;Instructed Currency;Counterparty Account;"
    "Counterparty BIC;Counterparty Name;Channel;MCC;City;Country;Branch;Reference;Description"
)
BANK_ROWS = [
    "05.01.2026 09:00:00;DE11ACCTALPHA01;ALPHUS33;-1200,00;USD;;;DE22ACCTBRAVO02;BRAVUS33;Quentin Zabrowski;WIRE;;"
    "Boston;US;;REF-0001;SALARY 01/2026 Quentin Zabrowski DE22ACCTBRAVO02",
    "05.01.2026 21:30:00;DE11ACCTALPHA01;ALPHUS33;-89,50;USD;;;;;MOTEL 6 DALLAS;CARD;;Dallas;US;;;CARD 4921 Ottilie",
    "06.01.2026 10:00:00;DE33ACCTCHARLIE3;CHRLUS33;12.50x;USD;;;DE11ACCTALPHA01;ALPHUS33;Ottilie Wrenfield;WIRE;;"
    "Boston;US;;REF-0003;rent Ottilie Wrenfield",
    "06.13.2026 11:00:00;DE33ACCTCHARLIE3;CHRLUS33;-40,00;USD;;;DE44ACCTDELTA04;ALPHUS33;Ottilie Wrenfield;"
    "TELEPORT;;Boston;US;;REF-0004;gift",
]
CUSTOMERS_HEADER = (
    "Account;BIC;Branch;Customer Type;Name;Given Name;Family Name;Date of Birth or Incorporation;ID Type;ID Number;"
    "ID Country;Street;Postcode;City;Country;Phone;Occupation or Activity;Account Status;Own Client;Currency;"
    "Industry Code;Opened"
)
CUSTOMERS_ROWS = [
    "DE11ACCTALPHA01;ALPHUS33;ALPHUS-001;IND;Quentin Zabrowski;Quentin;Zabrowski;28.09.1982;NATIONAL ID;"
    "SYN-NI-77665544;US;17 Wrenfield Crescent;00249;Houston;US;+1-322-555-0199;Teacher;ACTIVE;Y;USD;;15.11.2021",
    "DE33ACCTCHARLIE3;CHRLUS33;CHRLUS-001;IND;Ottilie Wrenfield;Ottilie;Wrenfield;31.02.1990;NATIONAL ID;"
    "SYN-NI-11223344;US;9 Quentin Row;00250;Houston;US;+1-322-555-0142;Nurse;ACTIVE;Y;USD;;15.11.2021",
]
LABELS = "subject_kind,subject_id,label,typology\naccount,DE22ACCTBRAVO02,true,structuring\n"
#: every id and name of the inputs above (none is a reference word, a city or an institution)
RAW = ["DE11ACCTALPHA01", "DE22ACCTBRAVO02", "DE33ACCTCHARLIE3", "DE44ACCTDELTA04", "Quentin", "Zabrowski",
       "Ottilie", "Wrenfield", "SYN-NI-77665544", "SYN-NI-11223344", "322-555-0199", "3225550142", "12.50x",
       "06.13.2026", "TELEPORT"]  # fmt: skip


def inputs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"bank.csv": "\n".join([BANK_HEADER, *BANK_ROWS]), "customers.csv": "\n".join([CUSTOMERS_HEADER,
             *CUSTOMERS_ROWS]), "cases.csv": LABELS}  # fmt: skip
    for name, text in files.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    return [folder / name for name in files]


def stored_text(store: Path) -> dict[Path, str]:
    """Every file of the store as text: Parquet decoded (every column, lists exploded) plus its bytes as Latin-1."""
    out = {}
    for path in sorted(store.rglob("*")):
        if not path.is_file():
            continue
        text = path.read_bytes().decode("latin-1")
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            for column in frame.columns:
                values = frame[column].explode() if isinstance(frame[column].dtype, pl.List) else frame[column]
                text += "\n" + "\n".join(str(v) for v in values.to_list())
        out[path] = text
    return out


def found(store: Path, strings: list[str]) -> dict[str, list[str]]:
    """Which of ``strings`` each file of the store holds (files holding none left out)."""
    hits = {str(p.relative_to(store)): [s for s in strings if s in text] for p, text in stored_text(store).items()}
    return {p: h for p, h in hits.items() if h}


# --- (a) quarantine -------------------------------------------------------------------------------------------------
def test_with_a_key_quarantined_lines_are_withheld_and_keep_the_hash_of_their_text(tmp_path: Path) -> None:
    report = ingest(inputs(tmp_path / "in")[:1], tmp_path / "s", IngestOptions(pseudonym_key=KEY))
    assert report.committed
    quarantine = Store(tmp_path / "s").scan("quarantine").collect().sort("row")
    assert quarantine["row"].to_list() == [4, 5]  # the bad amount, the bad date
    assert found(tmp_path / "s" / "quarantine", RAW) == {}
    lines = {4: BANK_ROWS[2], 5: BANK_ROWS[3]}
    assert quarantine["raw"].to_list() == [WITHHELD + hashlib.sha256(lines[r].encode()).hexdigest() for r in (4, 5)]
    assert quarantine["reason"][0].startswith(f"unparsable amount '{MASK}'")  # the value is not quoted


def test_a_record_conflicting_with_a_stored_one_is_withheld_too(tmp_path: Path) -> None:
    bank = inputs(tmp_path / "in")[0]
    assert ingest([bank], tmp_path / "s", IngestOptions(pseudonym_key=KEY)).committed
    again = tmp_path / "again.csv"
    again.write_text(f"{BANK_HEADER}\n{BANK_ROWS[0].replace('-1200,00', '-999,00')}\n", encoding="utf-8")
    assert ingest([again], tmp_path / "s", IngestOptions(pseudonym_key=KEY)).committed
    conflict = Store(tmp_path / "s").scan("quarantine").collect().filter(pl.col("file") == str(again))
    assert conflict["reason"][0].startswith("conflicts with an earlier record of id REF-0001")
    assert conflict["raw"][0].startswith(WITHHELD)
    assert found(tmp_path / "s", RAW) == {}


def test_with_a_quarantine_key_the_lines_are_encrypted_and_revealed_only_with_that_key(tmp_path: Path) -> None:
    options = IngestOptions(pseudonym_key=KEY, quarantine_key=QUARANTINE_KEY)
    assert ingest(inputs(tmp_path / "in")[:1], tmp_path / "s", options).committed
    store = Store(tmp_path / "s")
    stored = store.scan("quarantine").collect().sort("row")
    assert stored["raw"].str.starts_with(ENCRYPTED).all()
    assert found(tmp_path / "s", RAW) == {}
    revealed = reveal_quarantine(store, QUARANTINE_KEY).sort("row")
    assert revealed["raw"].to_list() == [BANK_ROWS[2], BANK_ROWS[3]]
    assert revealed["reason"][0].startswith("unparsable amount '12.50x'")  # the whole reason, value included
    with pytest.raises(ConfigError, match="quarantine key given does not decrypt") as refused:
        reveal_quarantine(store, secrets.token_hex(32).encode())
    assert "\n" not in str(refused.value)
    with pytest.raises(ConfigError, match="quarantine key is the pseudonym key"):
        ingest(inputs(tmp_path / "in")[:1], tmp_path / "t", IngestOptions(pseudonym_key=KEY, quarantine_key=KEY))


def test_the_commands_encrypt_with_a_quarantine_key_file_and_reveal_only_into_a_private_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINWATCH_")}
    (tmp_path / "p.key").write_bytes(KEY)
    (tmp_path / "q.key").write_bytes(QUARANTINE_KEY)
    store = str(tmp_path / "s")
    done = finwatch("ingest", str(inputs(tmp_path / "in")[0]), "--store", store, "--pseudonym-key-file",
                    str(tmp_path / "p.key"), "--quarantine-key-file", str(tmp_path / "q.key"), env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert found(tmp_path / "s", RAW) == {}
    listed = finwatch("quarantine", "--store", store, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "2 record(s)" in listed.stdout
    assert not [s for s in RAW if s in listed.stdout]
    refused = finwatch("quarantine", "--store", store, "--reveal", env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: --reveal writes the decrypted records to a file: give --out FILE.csv"
    out = tmp_path / "revealed.csv"
    refused = finwatch("quarantine", "--store", store, "--reveal", "--out", str(out), env=env)
    assert refused.returncode == 2
    assert "needs the quarantine key" in refused.stderr
    assert not out.exists()
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(secrets.token_hex(32).encode())
    refused = finwatch("quarantine", "--store", store, "--reveal", "--out", str(out), "--quarantine-key-file",
                       str(wrong), env=env)  # fmt: skip
    assert refused.returncode == 2
    assert "does not decrypt" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not out.exists()
    done = finwatch("quarantine", "--store", store, "--reveal", "--out", str(out), "--quarantine-key-file",
                    str(tmp_path / "q.key"), env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out.stat().st_mode & 0o777) == 0o600
    assert BANK_ROWS[2] in out.read_text() or BANK_ROWS[2].replace('"', '""') in out.read_text()
    again = finwatch("quarantine", "--store", store, "--out", str(out), env=env)
    assert again.returncode == 2  # never over an existing file
    assert "exists" in again.stderr


def test_the_quarantine_key_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    assert load_quarantine_key(None, environ={}) is None
    assert load_quarantine_key(None, environ={"FINWATCH_QUARANTINE_KEY": QUARANTINE_KEY.decode()}) == QUARANTINE_KEY
    (tmp_path / "q.key").write_bytes(QUARANTINE_KEY + b"\n")
    assert load_quarantine_key(tmp_path / "q.key", environ={}) == QUARANTINE_KEY
    with pytest.raises(ConfigError, match=r"^\$FINWATCH_QUARANTINE_KEY is set but empty"):
        load_quarantine_key(None, environ={"FINWATCH_QUARANTINE_KEY": ""})


# --- (b) names and ids ----------------------------------------------------------------------------------------------
def test_with_a_key_no_raw_id_or_name_is_in_any_file_of_the_store(tmp_path: Path) -> None:
    report = ingest(inputs(tmp_path / "in"), tmp_path / "s", IngestOptions(pseudonym_key=KEY))
    assert report.committed, [f.error for f in report.files]
    assert found(tmp_path / "s", RAW) == {}
    assert not [s for s in RAW if s in json.dumps(report.to_json())]  # the report's notes neither
    clear = ingest(inputs(tmp_path / "in"), tmp_path / "c", IngestOptions())
    assert clear.committed
    tables = {path.split("/")[0] for path in found(tmp_path / "c", RAW)}
    assert tables >= {"accounts", "quarantine", "transactions"}  # in clear, the same scan does find them
    txns = Store(tmp_path / "s").scan("transactions").collect().sort("ts")
    pseudo = Pseudonymizer(KEY)
    # counterparty names: the pseudonym a holder of that name has, plus the reference words of the name
    assert txns["counterparty_name"].to_list() == [
        pseudo.field("holder_name", "QUENTIN  zabrowski"),
        f"{pseudo.field('holder_name', 'MOTEL 6 DALLAS')} MOTEL{MASK}",
    ]
    accounts = Store(tmp_path / "s").scan("accounts").collect()
    assert txns["counterparty_name"][0] in accounts["holder_name"].to_list()  # the counterparty is a holder
    # descriptions: only the words the features match
    assert txns["description"].to_list() == [f"SALARY{MASK}", MASK]


@pytest.mark.parametrize(
    ("paths", "parse"),
    [
        pytest.param(sorted((FIXTURES / "camt053").glob("*.xml")), ParseOptions(), id="camt053"),
        pytest.param(sorted((FIXTURES / "mt940").glob("*.sta")), ParseOptions(), id="mt940"),
        pytest.param(sorted((FIXTURES / "ofx").glob("*.?fx")), ParseOptions(), id="ofx"),
        pytest.param(
            [
                FIXTURES / "exchange_ledger" / "kraken_ledgers.csv",
                FIXTURES / "exchange_ledger" / "kraken_ledgers_addresses.csv",
            ],
            ParseOptions(account="KRAKEN-MAIN-ACCOUNT"),
            id="exchange-ledger",
        ),
        pytest.param([FIXTURES / "ethereum_etl" / "transactions.csv"], ParseOptions(), id="ethereum-etl"),
        pytest.param([FIXTURES / "bitcoin_etl" / "expected_transactions.json"], ParseOptions(), id="bitcoin-etl"),
        pytest.param([FIXTURES / "amlworld" / "HI-Small_Trans_sample.csv"], ParseOptions(), id="amlworld"),
        pytest.param([FIXTURES / "amlsim" / "20K_fanin200"], ParseOptions(start=dt.date(2017, 1, 1)), id="amlsim"),
    ],
)
def test_no_adapter_leaves_a_raw_id_or_name_in_a_pseudonymised_store(
    tmp_path: Path, paths: list[Path], parse: ParseOptions
) -> None:
    clear = ingest(paths, tmp_path / "c", IngestOptions(parse=parse))
    keyed = ingest(paths, tmp_path / "k", IngestOptions(parse=parse, pseudonym_key=KEY))
    assert clear.committed
    assert keyed.committed
    store = Store(tmp_path / "c")
    txns, accounts = store.scan("transactions").collect(), store.scan("accounts", history=True).collect()
    ids = {*txns["src_account"].drop_nulls(), *txns["dst_account"].drop_nulls(), *accounts["account_id"],
           *accounts["links"].explode().drop_nulls()}  # fmt: skip
    names = {*txns["counterparty_name"].drop_nulls(), *txns["description"].drop_nulls(), *accounts["holder_name"]
             .drop_nulls()}  # fmt: skip
    # long enough not to occur by chance (AMLSim's and Kraken's short numeric ids would match counts and amounts)
    ids = {i for i in ids if len(i) >= 6 and not (i.isdigit() and len(i) < 9)}
    names = {n for n in names if len(n) >= 8}
    keyed_store = Store(tmp_path / "k")
    kept = keyed_store.scan("transactions").collect()
    held = keyed_store.scan("accounts", history=True).collect()
    labels = keyed_store.scan("labels").collect().filter(pl.col("subject_kind") == "account")
    for column in (kept["src_account"], kept["dst_account"], held["account_id"], held["links"].explode(),
                   labels["subject_id"]):  # fmt: skip
        assert column.drop_nulls().str.contains(r"^p[0-9a-f]{24}$").all()  # every account is a pseudonym
    texts = stored_text(tmp_path / "k")
    tokens = {t for text in texts.values() for t in re.findall(r"[A-Za-z0-9]+", text)}
    whole = "\n".join(texts.values())
    assert not [i for i in ids if (i in tokens if i.isalnum() else i in whole)]
    assert not [n for n in names if n in whole]
    notes = json.dumps(keyed.to_json())
    assert not [i for i in ids if i in notes]


# --- features and the report ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["Gehalt 01/2026 Max Muster", "monthly salary", "HOLIDAY INN EXPRESS 1234", "bitcoin atm 5th st", "Lohnert",
     "xINN y", "GREEN DOTS", "COIN ATMCOIN ATM", "salarysalary", "", "…", "ſalary", "Wages—wages"],
)  # fmt: skip
def test_masked_text_matches_every_reference_word_exactly_when_the_text_does(text: str) -> None:
    from finwatch._duckdb import connect

    words = ReferenceWords(reference_words())
    masked = words.mask(text)
    con = connect()
    query = "select [contains(upper($t), w) for w in $words]"
    before = con.execute(query, {"t": text, "words": list(words.words)}).fetchone()
    after = con.execute(query, {"t": masked, "words": list(words.words)}).fetchone()
    assert before == after
    assert not re.search(r"\d", masked)  # no digit run survives


def test_account_features_are_the_same_in_a_pseudonymised_store(
    tmp_path: Path, small_world_dir: tuple[World, Path]
) -> None:
    _world, root = small_world_dir
    files = [root / "bank-csv" / "transactions.csv", root / "truth" / "accounts.parquet"]
    built = {}
    for name, key in (("clear", None), ("keyed", KEY)):
        assert ingest(files, tmp_path / name, IngestOptions(fx=root / "fx_rates.csv", pseudonym_key=key)).committed
        store = Store(tmp_path / name)
        built[name] = build_account_features(store, end_of_data(store), FeatureConfig()).accounts
    pseudo = Pseudonymizer(KEY)
    clear = built["clear"].with_columns(account_id=pl.col("account_id").map_elements(pseudo.one, pl.String))
    clear, keyed = clear.sort("account_id"), built["keyed"].sort("account_id")
    assert clear["has_payroll_30d"].sum() > 0  # payroll descriptions are matched at all
    assert clear["account_id"].to_list() == keyed["account_id"].to_list()
    for column in clear.columns:  # float sums may add up in another order: equal to 1e-9
        a, b = clear[column], keyed[column]
        if a.dtype.is_float():
            assert ((a - b).abs() <= 1e-9 * (a.abs() + 1)).fill_null(True).all(), column
            assert a.is_null().equals(b.is_null()), column
        else:
            assert a.equals(b), column


def test_the_report_of_a_pseudonymised_store_shows_only_pseudonyms(
    tmp_path: Path, small_world_dir: tuple[World, Path], scored: tuple[Path, Registry]
) -> None:
    world, root = small_world_dir
    _store, registry = scored
    store = tmp_path / "store"
    files = [root / "truth" / "transactions.parquet", root / "truth" / "accounts.parquet",
             root / "labels" / "accounts.parquet", root / "labels" / "transactions.parquet"]  # fmt: skip
    assert ingest(files, store, IngestOptions(fx=root / "fx_rates.csv", pseudonym_key=KEY)).committed
    run = tmp_path / "runs" / "r1"
    run_score(store, end_of_data(Store(store)), registry, run, "finwatch@champion", budget=0.02)
    build_report(RunFolder(run))
    leads = pl.read_parquet(run / "leads.parquet")
    assert leads.height
    shown = "\n".join(p.read_text(encoding="utf-8") for p in [run / "report.html", run / "leads.csv",
                      run / "leads.json", *(run / "report-cases").glob("*.html")])  # fmt: skip
    assert leads["subject_id"].str.contains(r"^p[0-9a-f]{24}$").all()
    tokens = set(re.findall(r"[A-Za-z0-9]+", shown))
    assert not (set(world.accounts["account_id"]) & tokens)
    people = world.accounts.filter(pl.col("holder_type") == "person")["holder_name"].drop_nulls().unique()
    assert people.len() > 100
    assert not [n for n in people if len(n) >= 8 and n in shown]


# --- (c) (d) keys -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "  ", "\n"])
def test_a_pseudonym_key_variable_set_but_empty_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^\$FINWATCH_PSEUDONYM_KEY is set but empty") as refused:
        load_key(None, environ={KEY_ENV: value})
    assert "\n" not in str(refused.value)


def test_the_command_line_refuses_an_empty_pseudonym_key_in_one_line(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("FINWATCH_")} | {KEY_ENV: ""}
    done = finwatch("ingest", str(inputs(tmp_path / "in")[0]), "--store", str(tmp_path / "s"), env=env)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "FINWATCH_PSEUDONYM_KEY is set but empty" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        pytest.param(b"a" * 16, "shorter than 32 bytes", id="16 bytes of one character"),
        pytest.param(b"a" * 64, "too little entropy", id="64 bytes of one character"),
        pytest.param(b"ab" * 32, "too little entropy", id="two characters repeated"),
        pytest.param(b"correct horse battery staple 42", "shorter than 32 bytes", id="a 31-byte passphrase"),
        pytest.param(b"3f9a0c2e7b1d4f6a8c0e2b4d6f8a1c3e", "too little entropy", id="32 hex digits (116 bits est.)"),
    ],
)
def test_a_weak_key_is_refused_with_how_to_make_one(tmp_path: Path, key: bytes, reason: str) -> None:
    (tmp_path / "key").write_bytes(key)
    with pytest.raises(ConfigError, match=reason) as refused:
        load_key(tmp_path / "key", environ={})
    message = str(refused.value)
    assert message.startswith(f"pseudonym key from --pseudonym-key-file {tmp_path / 'key'} ")
    assert 'python3 -c "import secrets; print(secrets.token_hex(32))"' in message
    assert key.decode() not in message
    with pytest.raises(ConfigError, match=reason):
        load_signing_key(environ={SIGNING_KEY_ENV: key.decode()})
    with pytest.raises(ConfigError, match=reason):
        load_quarantine_key(tmp_path / "key", environ={})
    with pytest.raises(ConfigError, match=reason):  # the library holds given keys to the same check
        ingest(inputs(tmp_path / "in")[:1], tmp_path / "s", IngestOptions(pseudonym_key=key))
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("key", [secrets.token_hex(32).encode(), secrets.token_urlsafe(32).encode(), KEY])
def test_keys_made_as_the_message_says_are_accepted(key: bytes) -> None:
    assert key_problem(key) is None
    assert key_problem(secrets.token_bytes(32)) is None  # 32 random bytes: about 150 bits estimated
    assert load_key(None, environ={KEY_ENV: key.decode()}) == key


# --- (e) the key record in store.json -------------------------------------------------------------------------------
def test_store_json_holds_a_salted_key_hash_and_another_key_is_refused(tmp_path: Path) -> None:
    bank = inputs(tmp_path / "in")[0]
    assert ingest([bank], tmp_path / "s", IngestOptions(pseudonym_key=KEY)).committed
    record = json.loads((tmp_path / "s" / "store.json").read_text())["pseudonym_key_id"]
    assert re.fullmatch(r"scrypt\$32768\$8\$1\$[0-9a-f]{32}\$[0-9a-f]{64}", record)
    assert legacy_key_id(KEY) not in (tmp_path / "s" / "store.json").read_text()  # no unsalted fingerprint
    assert key_matches(KEY, record)
    assert not key_matches(QUARANTINE_KEY, record)
    assert ingest([bank], tmp_path / "t", IngestOptions(pseudonym_key=KEY)).committed
    assert json.loads((tmp_path / "t" / "store.json").read_text())["pseudonym_key_id"] != record  # a fresh salt
    customers = inputs(tmp_path / "in")[1]
    with pytest.raises(StoreError, match="the store was written with a different pseudonym key; ids would not match"):
        ingest([customers], tmp_path / "s", IngestOptions(pseudonym_key=QUARANTINE_KEY))
    with pytest.raises(StoreError, match="written with a pseudonym key and none is given"):
        ingest([customers], tmp_path / "s", IngestOptions())
    assert ingest([customers], tmp_path / "s", IngestOptions(pseudonym_key=KEY)).committed


def test_a_store_with_the_old_unsalted_fingerprint_still_checks_the_key(tmp_path: Path) -> None:
    bank, customers, cases = inputs(tmp_path / "in")
    assert ingest([bank], tmp_path / "s", IngestOptions(pseudonym_key=KEY)).committed
    settings = tmp_path / "s" / "store.json"
    old = {**json.loads(settings.read_text()), "pseudonym_key_id": legacy_key_id(KEY)}  # as stores were written
    settings.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")
    with pytest.raises(StoreError, match="different pseudonym key") as refused:
        ingest([customers], tmp_path / "s", IngestOptions(pseudonym_key=QUARANTINE_KEY))
    assert "\n" not in str(refused.value)
    assert ingest([customers], tmp_path / "s", IngestOptions(pseudonym_key=KEY)).committed
    settings.write_text(json.dumps({**old, "pseudonym_key_id": "not a record"}))
    with pytest.raises(StoreError, match=r"store\.json: pseudonym_key_id is unreadable"):
        ingest([cases], tmp_path / "s", IngestOptions(pseudonym_key=KEY))


# --- reproducible -----------------------------------------------------------------------------------------------------
def test_the_same_inputs_and_keys_give_byte_identical_store_files(tmp_path: Path) -> None:
    files = inputs(tmp_path / "in")
    options = IngestOptions(pseudonym_key=KEY, quarantine_key=QUARANTINE_KEY)
    for name in ("a", "b"):
        assert ingest(files, tmp_path / name, options).committed

    def contents(store: Path) -> dict[str, bytes]:
        return {p.relative_to(store).as_posix(): p.read_bytes() for p in store.rglob("*") if p.is_file()
                and p.name not in ("store.json", ".lock")}  # fmt: skip

    first, second = contents(tmp_path / "a"), contents(tmp_path / "b")
    assert any(p.startswith("quarantine/") for p in first)
    assert first == second
    assert Store(tmp_path / "a").manifest_sha256() == Store(tmp_path / "b").manifest_sha256()
