"""Files named by options (configuration, goAML schema and mapping, FinCEN filer and schema) are read only when they
are regular files of a sane size: a FIFO, a device or a folder is refused at once in one line naming the option and
the path, never read forever. And amounts of bank CSV exports follow the mapping's documented grammar."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from finwatch._files import check_option_file, read_option_file, read_option_text
from finwatch.exceptions import ConfigError
from finwatch.ingest import IngestOptions, ParseOptions, ingest
from finwatch.runs import RunFolder
from finwatch.store import Store

ROOT = Path(__file__).resolve().parents[1]
MT940 = ROOT / "tests" / "fixtures" / "mt940" / "knab.sta"
GOAML_XSD = ROOT / "tests" / "fixtures" / "goaml" / "goAMLSchema-5.0.1.xsd"
GOAML_MAPPING = ROOT / "features" / "goaml" / "mapping.example.yaml"
FILER = ROOT / "features" / "fincen" / "filer.example.yaml"
TIME_LIMIT = 60  # seconds: a refused file answers in about one; a hang is what this catches

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
KINDS = [
    pytest.param("fifo", "not a regular file (a FIFO", id="FIFO", marks=needs_fifo),
    pytest.param("zero", "not a regular file (a character device)", id="dev-zero",
                 marks=pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")),
    pytest.param("folder", "a folder, not a file", id="folder"),
]  # fmt: skip


def special(kind: str, tmp_path: Path) -> Path:
    """A path that is not a regular file: a FIFO nobody writes to, /dev/zero (endless) or a folder."""
    if kind == "fifo":
        path = tmp_path / "pipe.toml"
        os.mkfifo(path)
        return path
    if kind == "zero":
        return Path("/dev/zero")
    path = tmp_path / "folder.yaml"
    path.mkdir()
    return path


def finwatch(*args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "FINWATCH_CONFIG"} | (env or {})
    return subprocess.run([sys.executable, "-m", "finwatch", *args], capture_output=True, text=True,
                          timeout=TIME_LIMIT, check=False, env=environ, cwd=cwd)  # fmt: skip


def refused(result: subprocess.CompletedProcess[str], option: str, path: Path, reason: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{option} {path}: {reason}" in lines[0], lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cheapest run an export reads its option files for: one lead (the files are read before the store)."""
    folder = tmp_path_factory.mktemp("option-files") / "run"
    leads = pl.DataFrame({"lead_id": ["L-1"], "rank": [1], "reasons": ["[]"]})
    RunFolder.write(folder, leads, {"run_id": "r1", "as_of": "2026-01-01T00:00:00+00:00"})
    return folder


# --- the command line -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "reason"), KINDS)
def test_a_config_flag_that_is_not_a_file_is_refused_at_once(tmp_path: Path, kind: str, reason: str) -> None:
    path = special(kind, tmp_path)
    result = finwatch("ingest", str(MT940), "--store", str(tmp_path / "s"), "--config", str(path), cwd=tmp_path)
    refused(result, "--config", path, reason)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(("kind", "reason"), KINDS)
def test_a_config_variable_that_is_not_a_file_is_refused_at_once(tmp_path: Path, kind: str, reason: str) -> None:
    path = special(kind, tmp_path)
    result = finwatch("ingest", str(MT940), "--store", str(tmp_path / "s"), env={"FINWATCH_CONFIG": str(path)},
                      cwd=tmp_path)  # fmt: skip
    refused(result, "FINWATCH_CONFIG", path, reason)


@pytest.mark.parametrize(("kind", "reason"), KINDS)
def test_a_goaml_xsd_that_is_not_a_file_is_refused_at_once(run: Path, tmp_path: Path, kind: str, reason: str) -> None:
    path = special(kind, tmp_path)
    result = finwatch("export", "goaml", "--run", str(run), "--xsd", str(path), "--mapping", str(GOAML_MAPPING),
                      "--allow-invalid", "--out", str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    refused(result, "--xsd", path, reason)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("kind", "reason"), KINDS)
def test_a_goaml_mapping_that_is_not_a_file_is_refused_at_once(
    run: Path, tmp_path: Path, kind: str, reason: str
) -> None:
    path = special(kind, tmp_path)
    result = finwatch("export", "goaml", "--run", str(run), "--xsd", str(GOAML_XSD), "--mapping", str(path),
                      "--allow-invalid", "--out", str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    refused(result, "--mapping", path, reason)


@pytest.mark.parametrize(("kind", "reason"), KINDS)
def test_a_fincen_filer_that_is_not_a_file_is_refused_at_once(
    run: Path, tmp_path: Path, kind: str, reason: str
) -> None:
    path = special(kind, tmp_path)
    result = finwatch("export", "fincen-sar", "--run", str(run), "--filer", str(path), "--allow-invalid",
                      "--out", str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    refused(result, "--filer", path, reason)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("kind", "reason"), KINDS)
def test_a_fincen_xsd_that_is_not_a_file_is_refused_at_once(run: Path, tmp_path: Path, kind: str, reason: str) -> None:
    path = special(kind, tmp_path)
    result = finwatch("export", "fincen-sar", "--run", str(run), "--filer", str(FILER), "--xsd", str(path),
                      "--allow-invalid", "--out", str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    refused(result, "--xsd", path, reason)


# --- the reader -------------------------------------------------------------------------------------------------------
def test_an_option_file_is_read_when_it_is_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes("key: välue\n".encode())
    assert read_option_file(path, "--x") == "key: välue\n".encode()
    assert read_option_text(path, "--x") == "key: välue\n"
    assert check_option_file(path, "--x") == path


@pytest.mark.parametrize(
    ("content", "limit", "reason"),
    [
        pytest.param(None, 100, "no such file", id="missing"),
        pytest.param(b"x" * 101, 100, "too large (101 bytes; at most 100)", id="oversized"),
        pytest.param(b"\xff\xfe", 100, "not UTF-8 text", id="not UTF-8"),
    ],
)
def test_an_option_file_that_cannot_be_read_is_one_line_naming_option_and_path(
    tmp_path: Path, content: bytes | None, limit: int, reason: str
) -> None:
    path = tmp_path / "f.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        read_option_text(path, "--opt", limit=limit)
    assert str(caught.value).startswith(f"--opt {path}: {reason}")
    assert "\n" not in str(caught.value)


@needs_fifo
def test_a_fifo_is_refused_by_the_reader_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "p"
    os.mkfifo(path)
    with pytest.raises(ConfigError, match=r"--opt .*/p: not a regular file \(a FIFO"):
        read_option_file(path, "--opt")


# --- the amount grammar of bank CSV mappings --------------------------------------------------------------------------
def _mapping(path: Path, decimal: str, thousands: str) -> Path:
    path.write_text(
        f'[format]\nname = "m"\ndelimiter = ";"\ndecimal = "{decimal}"\nthousands = "{thousands}"\n'
        'timestamp_format = "%Y-%m-%d"\ncurrency = "EUR"\ndefault_channel = "wire"\n'
        '[columns]\ntimestamp = "Date"\naccount = "IBAN"\namount = "Amount"\n'
    )
    return path


def _ingest_amounts(tmp_path: Path, decimal: str, thousands: str, amounts: list[str]) -> tuple[int, pl.DataFrame]:
    path = tmp_path / "export.csv"
    path.write_text("Date;IBAN;Amount\n" + "".join(f"2026-01-0{i + 1};DE{i};{a}\n" for i, a in enumerate(amounts)))
    options = IngestOptions(format="bank-csv", parse=ParseOptions(mapping=_mapping(tmp_path / "m.toml", decimal,
                                                                                      thousands)))  # fmt: skip
    report = ingest([path], tmp_path / "s", options)
    (f,) = report.files
    assert f.status == "ingested", f
    assert f.rows_read == f.accepted + f.quarantined
    return f.accepted, Store(tmp_path / "s").scan("quarantine").collect().sort("row")


@pytest.mark.parametrize(
    ("decimal", "thousands", "good"),
    [
        pytest.param(",", "", ["0,5", "-0,5", "+0,50"], id="comma"),
        pytest.param(",", ".", ["0,5", "-0,5", "1.234,5"], id="comma and dot"),
        pytest.param(".", "", ["0.5", "-0.5"], id="dot"),
    ],
)  # fmt: skip
def test_an_amount_with_a_digit_before_the_decimal_separator_is_read(
    tmp_path: Path, decimal: str, thousands: str, good: list[str]
) -> None:
    accepted, _quarantined = _ingest_amounts(tmp_path, decimal, thousands, good)
    assert accepted == len(good)


@pytest.mark.parametrize(
    ("decimal", "thousands", "bad"),
    [
        pytest.param(",", "", [",5", "-,5", "+,5"], id="comma"),
        pytest.param(",", ".", [",5", "-,5"], id="comma and dot"),
        pytest.param(".", "", [".5", "-.5", "12."], id="dot"),
        pytest.param(",", "", ["12,"], id="comma, no digits after it"),
    ],
)  # fmt: skip
def test_an_amount_must_have_digits_before_the_decimal_separator(
    tmp_path: Path, decimal: str, thousands: str, bad: list[str]
) -> None:
    accepted, quarantined = _ingest_amounts(tmp_path, decimal, thousands, bad)
    assert accepted == 0
    assert all(r.startswith(f"unparsable amount '{a}' (expected decimal separator {decimal!r}")
               for r, a in zip(quarantined["reason"], bad, strict=True))  # fmt: skip
