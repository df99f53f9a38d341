"""The command line: reproducible worlds, one-line errors, refusal to overwrite foreign folders."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest


def finwatch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finwatch", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    args = ("synth", "--seed", "7", "--accounts", "2500", "--days", "14")
    first, second = (
        finwatch(*args, "--out", str(tmp_path / "a")),
        finwatch(*args, "--out", str(tmp_path / "b")),
    )
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    a, b = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert len(a) > 20
    assert a == b


def test_another_seed_gives_another_world(tmp_path: Path) -> None:
    for seed in ("1", "2"):
        done = finwatch(
            "synth",
            "--seed",
            seed,
            "--accounts",
            "1000",
            "--days",
            "14",
            "--exports",
            "amlworld",
            "--out",
            str(tmp_path / seed),
        )
        assert done.returncode == 0, done.stderr
    one, two = digests(tmp_path / "1"), digests(tmp_path / "2")
    assert one.keys() == two.keys()
    assert one["amlworld/transactions.csv"] != two["amlworld/transactions.csv"]


@pytest.mark.slow
def test_default_world_seed_7_is_byte_identical_across_runs(tmp_path: Path) -> None:
    for name in ("a", "b"):
        done = finwatch("synth", "--seed", "7", "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
    assert digests(tmp_path / "a") == digests(tmp_path / "b")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("--accounts", "10"),
            "accounts: Input should be greater than or equal to 500",
            id="too few accounts",
        ),
        pytest.param(("--days", "3"), "days: Input should be greater than or equal to 14", id="too few days"),
        pytest.param(("--typology-mix", "cycle"), "is not NAME=WEIGHT", id="mix without weight"),
        pytest.param(("--typology-mix", "cycle=lots"), "is not a number", id="mix weight not a number"),
        pytest.param(("--typology-mix", "teleport=1"), "unknown typologies ['teleport']", id="unknown typology"),
        pytest.param(("--reporting-threshold", "ten"), "is not a decimal number", id="threshold not a number"),
        pytest.param(("--start", "2026-13-01"), "is not a date", id="impossible start date"),
        pytest.param(("--base-currency", "XXX"), "not simulated", id="unknown currency"),
        pytest.param(("--exports", "pdf"), "unknown export formats", id="unknown export"),
        pytest.param(("--prevalence", "0.9"), "prevalence: Input should be less than or equal to 0.3", id="prevalence"),
    ],
)
def test_bad_options_give_one_line_and_no_traceback(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = finwatch("synth", "--out", str(tmp_path / "w"), *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "w").exists()


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    done = finwatch("synth", "--accounts", "600", "--days", "14", "--out", str(target))
    assert done.returncode == 2
    assert "not written by finwatch" in done.stderr
    assert (target / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]


def test_replaces_an_earlier_world_in_place(tmp_path: Path) -> None:
    target = tmp_path / "w"
    for seed in ("1", "2"):
        done = finwatch(
            "synth",
            "--accounts",
            "600",
            "--days",
            "14",
            "--seed",
            seed,
            "--exports",
            "amlworld",
            "--out",
            str(target),
        )
        assert done.returncode == 0, done.stderr
    assert '"seed": 2' in (target / "world.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_version_and_help() -> None:
    assert finwatch("--version").stdout.startswith("finwatch ")
    assert "synth" in finwatch("--help").stdout
