"""Hostile text from the data: one sanitiser per destination (terminal, HTML, CSV, XML), used wherever it is shown.

Ids with escape sequences, bidirectional overrides, NULs, console markup, formula starts and list separators go
through a real store, a real scoring run, the report, leads.csv, goAML drafts, a FinCEN batch and the command line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from finwatch.registry import Registry
from finwatch.runs import RunFolder
from finwatch.sanitize import UNSAFE, csv_cell, csv_list, html_data, html_text, terminal, visible, xml_text
from finwatch.testing import make_accounts, make_store, make_transactions
from tests.conftest import run_score

ROOT = Path(__file__).resolve().parents[1]
GOAML_XSD = ROOT / "tests" / "fixtures" / "goaml" / "goAMLSchema-5.0.1.xsd"
GOAML_MAPPING = ROOT / "features" / "goaml" / "mapping.example.yaml"
FINCEN_XSD = ROOT / "tests" / "fixtures" / "fincen" / "EFL_SARXBatchSchema.xsd"
FILER = ROOT / "features" / "fincen" / "filer.example.yaml"

#: raw characters that must never reach a terminal, a page, a CSV cell or an XML draft
RAW = ("\x1b", "\x07", "\x00", "\u202e", "\u2066", "\u200f", "\x9b")
#: account ids as hostile exports give them
ACCOUNTS = [
    "\x1b[31mRED\x1b[0m",  # a colour escape sequence
    "\x1b]0;owned\x07B",  # OSC: retitles the terminal
    "acc\u202etxt.exe",  # right-to-left override
    "[/x] :x: \u2066iso\u2069",  # console markup, an emoji code, a bidi isolate
    '=HYPERLINK("http://x")',  # a spreadsheet formula
    "+1;2",  # a formula start and the old list separator
    "nul\x00id",  # XML cannot hold a NUL
    "-rtl\u200f",
]
AS_OF = dt.datetime(2026, 1, 20, tzinfo=dt.UTC)
QUIET = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"}


def finwatch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "finwatch", *args], capture_output=True, text=True, cwd=cwd,
                          env=QUIET, timeout=600, check=False)  # fmt: skip


def assert_clean(text: str) -> None:
    """No raw control or bidirectional character, and no traceback (NO_COLOR: not even Rich's own styling)."""
    assert "Traceback" not in text, text
    for char in RAW:
        assert char not in text, (char, text)


# --- the sanitisers ------------------------------------------------------------------------------------------------
def test_each_unsafe_character_becomes_a_visible_escape() -> None:
    assert terminal("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert terminal("\x1b]0;title\x07") == "\\x1b]0;title\\x07"
    assert terminal("a\u202eb\u2066c\u2069d\u200ee\u200ff\u061c") == "a\\u202eb\\u2066c\\u2069d\\u200ee\\u200ff\\u061c"
    assert terminal("x\x9by\x7fz\x00") == "x\\x9by\\x7fz\\x00"
    assert terminal("two\nlines\ttab\r") == "two\\x0alines\\x09tab\\x0d"
    assert terminal("[/x] :x:") == "[/x] :x:"  # markup is the console's business: printed without markup
    for ordinary in ("Zoë Müller", "Ωμέγα", "محمد", "שלום", "東京", "emoji 🙂", "C:\\path", "a;b,c"):
        assert visible(ordinary) == ordinary


def test_html_escapes_markup_and_makes_controls_visible() -> None:
    assert html_text('<b a="1">&\'\x1b\u202e') == "&lt;b a=&quot;1&quot;&gt;&amp;&#x27;\\x1b\\u202e"
    assert html_data("<b>\x1b") == "<b>\\x1b"  # the page's script escapes the markup itself


def test_csv_cells_and_list_elements_are_each_guarded() -> None:
    for start in ("=", "+", "-", "@", "'"):
        assert csv_cell(f"{start}1+1") == f"'{start}1+1"
    assert csv_cell("\t=1") == "\\x09=1"  # tab and carriage return are escapes: they start nothing
    assert csv_cell("plain") == "plain"
    assert csv_cell(None) is None
    cell = csv_list(["a;b", "=SUM(A1)", 'q"u,o', "\x1b", "c\\d"])
    assert cell is not None
    assert cell.startswith("[")
    assert json.loads(cell) == ["a;b", "'=SUM(A1)", 'q"u,o', "\\x1b", "c\\d"]
    assert csv_list([]) == "[]"
    assert csv_list(None) is None


def test_xml_text_keeps_lines_and_escapes_what_xml_cannot_hold() -> None:
    assert xml_text("line\none\ttab\r") == "line\none\ttab\r"
    assert xml_text("nul\x00esc\x1b\u202e\ufffe") == "nul\\x00esc\\x1b\\u202e\\ufffe"


@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from([*RAW, "\ud800", "\uffff"])))
def test_every_sanitiser_output_is_safe_for_its_destination(text: str) -> None:
    for out in (terminal(text), html_data(text), html_text(text), csv_cell(text) or ""):
        assert not UNSAFE.search(out)
    node = etree.Element("x")
    node.text = xml_text(text)  # lxml refuses any character XML 1.0 cannot hold
    node.set("a", xml_text(text))
    assert not UNSAFE.search(xml_text(text).replace("\t", "").replace("\n", "").replace("\r", ""))
    assert terminal(terminal(text)) == terminal(text)  # applying twice changes nothing


# --- a run over hostile ids ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile(scored: tuple[Path, Registry], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose account ids, transaction ids and names are hostile, scored so that every account is a lead."""
    _store, registry = scored
    root = tmp_path_factory.mktemp("hostile")
    rows = []
    for day in range(1, 15):
        for i, account in enumerate(ACCOUNTS):
            other = ACCOUNTS[(i + day) % len(ACCOUNTS)]
            mark = "\x1b" if i % 2 else "\u202e"
            rows.append({"txn_id": f"t;{day};{i}{mark}", "ts": AS_OF - dt.timedelta(days=day), "src": account,
                         "dst": other, "amount": str(9000 + 37 * i + day),
                         "counterparty_name": "=cmd|' /C calc'!A0"})  # fmt: skip
            rows.append({"txn_id": f"=c;{day};{i}\x00", "ts": AS_OF - dt.timedelta(days=day, hours=3), "src": None,
                         "dst": account, "amount": "9500", "channel": "cash"})  # fmt: skip
    accounts = make_accounts([
        {"account_id": a, "holder_name": f"{a} \x1b[2J Holder", "own_client": True, "institution": "BANK\x07"}
        for a in ACCOUNTS
    ])  # fmt: skip
    store = root / "store"
    make_store(store, make_transactions(rows), accounts)
    run_score(store, AS_OF, registry, root / "runs" / "r1", budget=0.99)
    return root / "runs" / "r1"


def test_leads_csv_guards_every_cell_and_every_list_element(hostile: Path) -> None:
    leads = pl.read_parquet(hostile / "leads.parquet")
    assert set(leads["subject_id"].to_list()) == set(ACCOUNTS)  # the Parquet keeps the exact values
    text = (hostile / "leads.csv").read_text(encoding="utf-8")
    for char in RAW:
        assert char not in text, char
    cells = pl.read_csv(hostile / "leads.csv", infer_schema=False)
    assert cells.height == leads.height
    by_lead = {r["lead_id"]: r for r in leads.iter_rows(named=True)}
    for row in cells.iter_rows(named=True):
        exact = by_lead[row["lead_id"]]
        assert row["subject_id"] == csv_cell(exact["subject_id"])
        assert not row["subject_id"].startswith(("=", "+", "-", "@"))
        for column in ("evidence_txn_ids", "typologies", "rules_fired", "counterparties", "channels"):
            elements = json.loads(row[column])
            assert elements == [csv_cell(v) for v in exact[column]], column  # one element per id, ";" or not
            assert not any(str(e).startswith(("=", "+", "-", "@")) for e in elements), column
        for value in row.values():
            assert value is None or not value.startswith(("=", "+", "-", "@")), value
    assert sum(len(json.loads(r)) for r in cells["evidence_txn_ids"]) == leads["evidence_txn_ids"].list.len().sum()
    assert any(";" in t for ids in leads["evidence_txn_ids"].to_list() for t in ids)


def test_the_report_shows_controls_and_overrides_as_visible_escapes(hostile: Path) -> None:
    from finwatch.report import build_report

    index = build_report(RunFolder(hostile))
    pages = [index, *sorted((hostile / "report-cases").glob("*.html"))]
    assert len(pages) == len(ACCOUNTS) + 1
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for char in RAW:
            assert char not in html, (page.name, char)
    index_html = index.read_text(encoding="utf-8")
    assert "\\\\x1b[31mRED" in index_html  # the lead table's JSON holds the visible escape
    assert any("acc\\u202etxt.exe" in p.read_text(encoding="utf-8") for p in pages[1:])


def test_every_goaml_draft_is_written_and_notes_the_altered_values(hostile: Path, tmp_path: Path) -> None:
    done = finwatch("export", "goaml", "--run", str(hostile), "--xsd", str(GOAML_XSD), "--mapping",
                    str(GOAML_MAPPING), "--out", str(tmp_path / "goaml"), "--allow-invalid")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout + done.stderr)
    assert f"{len(ACCOUNTS)} drafts" in done.stdout
    assert "visible escapes" in done.stderr
    leads = pl.read_parquet(hostile / "leads.parquet")["lead_id"].to_list()
    validation = json.loads((tmp_path / "goaml" / "validation.json").read_text(encoding="utf-8"))
    for lead in leads:
        draft = (tmp_path / "goaml" / f"{lead}.xml").read_bytes()
        etree.fromstring(draft)  # well-formed
        narrative = (tmp_path / "goaml" / f"{lead}.txt").read_text(encoding="utf-8")
        for char in RAW:
            assert char.encode() not in draft
            assert char not in narrative
        altered = validation["leads"][lead]["altered"]
        assert altered, lead
        assert any(a["path"].endswith("/transactionnumber") for a in altered)


def test_the_fincen_batch_is_written_with_visible_escapes_and_says_so(hostile: Path, tmp_path: Path) -> None:
    from finwatch.fincen import export_fincen_sar

    result = export_fincen_sar(RunFolder(hostile), FILER, tmp_path / "sar", xsd=FINCEN_XSD)
    batch = result.path.read_bytes()
    etree.fromstring(batch)
    for char in RAW:
        assert char.encode() not in batch
    assert b"acc\\u202etxt.exe" in batch
    assert any("visible escapes" in note for note in result.notes)


def test_scoring_and_exports_print_no_raw_control_character(hostile: Path, tmp_path: Path) -> None:
    done = finwatch("report", str(hostile), "--out", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout + done.stderr)
    done = finwatch("export", "fincen-sar", "--run", str(hostile), "--filer", str(FILER), "--xsd", str(FINCEN_XSD),
                    "--out", str(tmp_path / "sar"), "--allow-invalid")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout + done.stderr)
    assert "\\u202e" in done.stderr or "\\x1b" in done.stderr  # the note names the subject, escaped


def test_score_shows_the_top_leads_with_ids_as_visible_escapes(
    hostile: Path, scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    _store, registry = scored
    store = RunFolder(hostile).info["store"]
    done = finwatch("score", "--store", store, "--models", str(registry.root), "--as-of", AS_OF.isoformat(),
                    "--budget", "99%", "--out", str(tmp_path / "run"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout + done.stderr)
    assert "\\x1b[31mRED" in done.stdout
    assert "[/x] :x:" in done.stdout  # no markup read, no emoji made


# --- the command line ----------------------------------------------------------------------------------------------
def test_markup_and_emoji_codes_in_a_file_are_printed_as_they_are(tmp_path: Path) -> None:
    """A column name is echoed in a note after the batch is committed: it used to end in a MarkupError."""
    labels = tmp_path / "labels.csv"
    labels.write_text("subject_kind,subject_id,label,typology,[/x] :x:\naccount,A1,true,cycle,1\n", encoding="utf-8")
    done = finwatch("ingest", str(labels), "--store", str(tmp_path / "store"))
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout + done.stderr)
    assert "columns ignored: [/x] :x:" in done.stdout
    assert "❌" not in done.stdout
    assert "committed" in done.stdout


def test_a_camt053_statement_id_with_markup_is_printed_after_the_commit(tmp_path: Path) -> None:
    source = (ROOT / "tests" / "fixtures" / "camt053" / "camt_053_swedish_account_statement.xml").read_text()
    hostile = source.replace("<Id>Statement ID 1</Id>", "<Id>S[/x] :x: &#x202e;</Id>", 1).replace(
        '<Amt Ccy="SEK">231403.80</Amt>', '<Amt Ccy="SEK">1.00</Amt>', 1
    )  # a closing balance that does not add up: the note names the statement
    path = tmp_path / "camt.xml"
    path.write_text(hostile, encoding="utf-8")
    done = finwatch("ingest", str(path), "--store", str(tmp_path / "store"))
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout + done.stderr)
    assert "statement S[/x] :x: \\u202e of" in done.stdout


@pytest.mark.parametrize("name", ["e\x1b[31mvil\x1b]0;owned\x07.csv", "rtl\u202evsc.csv", "x[b]y :x:.csv"])
def test_a_hostile_file_name_is_shown_escaped(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("hello [/x] world\nfoo\n", encoding="utf-8")
    done = finwatch("ingest", str(path), "--store", str(tmp_path / "store"))
    assert done.returncode == 2
    assert_clean(done.stdout + done.stderr)
    assert terminal(name) in done.stdout  # the table's file cell
    assert f"rejected: {terminal(path)}" in done.stderr


def test_ingest_refuses_a_report_it_could_not_write_before_committing(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("subject_kind,subject_id,label,typology\naccount,A1,true,cycle\n", encoding="utf-8")
    store = tmp_path / "store"
    done = finwatch("ingest", str(labels), "--store", str(store), "--report", str(tmp_path / "missing" / "r.json"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: --report {tmp_path / 'missing' / 'r.json'}: the folder "
                                                f"{tmp_path / 'missing'} does not exist"]  # fmt: skip
    assert not store.exists()  # nothing committed
    done = finwatch("ingest", str(labels), "--store", str(store), "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r.json").read_text())["committed"]


def test_a_report_that_cannot_be_written_after_the_commit_says_the_batch_was_committed(tmp_path: Path) -> None:
    from finwatch.exceptions import FinwatchError
    from finwatch.ingest import IngestOptions, ingest, write_report

    labels = tmp_path / "labels.csv"
    labels.write_text("subject_kind,subject_id,label,typology\naccount,A1,true,cycle\n", encoding="utf-8")
    result = ingest([labels], tmp_path / "store", IngestOptions())
    assert result.committed
    (tmp_path / "a-file").write_text("")
    with pytest.raises(FinwatchError) as caught:
        write_report(tmp_path / "a-file" / "r.json", result)  # its folder is a file: the write fails
    message = str(caught.value)
    assert message.startswith(f"--report {tmp_path / 'a-file' / 'r.json'}: cannot be written (")
    assert message.endswith(f"; batch {result.batch} was committed to {result.store}")
    assert "\n" not in message


@pytest.mark.skipif(
    not (os.path.isdir("/sys") and os.access("/sys", os.W_OK)) or os.path.exists("/sys/finwatch-r.json"),
    reason="needs a folder that looks writable but refuses files (/sys as root)",
)
def test_the_ingest_command_says_the_batch_was_committed_when_its_report_fails(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("subject_kind,subject_id,label,typology\naccount,A1,true,cycle\n", encoding="utf-8")
    store = tmp_path / "store"
    done = finwatch("ingest", str(labels), "--store", str(store), "--report", "/sys/finwatch-r.json")
    assert done.returncode == 2
    assert "batch " in done.stdout  # the committed line comes first
    last = done.stderr.strip().splitlines()[-1]  # after the progress lines
    assert last.startswith("error: --report /sys/finwatch-r.json: cannot be written (")
    assert last.endswith(f"was committed to {store}")


def test_report_writes_only_html_over_nothing_but_a_finwatch_report(hostile: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    done = finwatch("report", str(hostile), "--out", str(notes))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert ".html" in done.stderr
    assert notes.read_text() == "my notes\n"
    mine = tmp_path / "mine.html"
    mine.write_text("<html>my page</html>\n")
    done = finwatch("report", str(hostile), "--out", str(mine))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {mine}: exists and is not a finwatch report: not overwritten"]
    assert mine.read_text() == "<html>my page</html>\n"
    assert not (tmp_path / "mine-cases").exists()
    ours = tmp_path / "ours.html"
    for _ in range(2):  # an earlier report is replaced
        done = finwatch("report", str(hostile), "--out", str(ours))
        assert done.returncode == 0, done.stderr
    assert ours.read_text(encoding="utf-8").startswith("<!doctype html>")
