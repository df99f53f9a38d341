"""The command line: reproducible worlds, one-line errors, refusal to overwrite foreign folders."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

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


# --- help, option errors and progress --------------------------------------------------------------------------
SCRIPT = Path(sys.executable).with_name("finwatch")  # the installed console script


def script(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600,
                          check=False)  # fmt: skip


def _command_paths() -> list[tuple[str, ...]]:
    from typer.main import get_command

    from finwatch.cli import app

    paths: list[tuple[str, ...]] = [()]

    def walk(group: Any, prefix: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            paths.append((*prefix, name))
            if hasattr(command, "commands"):
                walk(command, (*prefix, name))

    walk(get_command(app), ())
    return paths


def _help(*path: str) -> str:
    from typer.testing import CliRunner

    from finwatch.cli import app

    done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    return done.output


def test_no_flag_shows_a_value_placeholder_in_any_help() -> None:
    paths = _command_paths()
    assert {("synth",), ("ingest",), ("models", "compare"), ("export", "goaml"), ("config", "show")} <= set(paths)
    for path in paths:
        text = _help(*path)
        assert "--help" in text, path
        assert "<bool>" not in text, path
    synth = next(line for line in _help("synth").splitlines() if "--only-listed" in line)
    assert "<" not in synth
    assert "<int>" in _help("synth")  # options that take a value still show its type


def test_ingest_help_names_every_format() -> None:
    from finwatch.ingest import FORMATS

    text = " ".join(_help("ingest").replace("│", " ").split())
    assert f"auto (detect by content) or one of: {', '.join(FORMATS)}." in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("score", "--bogus"), "error: No such option: --bogus", id="unknown option"),
        pytest.param(
            ("score", "--as-of", "2026-01-20", "--out", "run"),
            "error: Missing option '--store'.",
            id="missing required option",
        ),
        pytest.param(
            ("synth", "--out", "w", "--accounts", "many"), "error: Invalid value for '--accounts'", id="not an integer"
        ),
        pytest.param(("models", "compare", "a@1"), "error: Missing argument 'b'.", id="missing argument"),
    ],
)
def test_option_errors_are_one_line_on_stderr(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = script(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(message)
    command = " ".join(("finwatch", *(a for a in args[:2] if not a.startswith("-"))))
    assert lines[0].endswith(f"(see '{command} --help')")
    assert not (tmp_path / "w").exists()


def test_the_console_script_keeps_help_and_version_at_status_0() -> None:
    version = script("--version")
    assert (version.returncode, version.stdout.strip(), version.stderr) == (0, "finwatch 0.1.0", "")
    shown = script("score", "--help")
    assert shown.returncode == 0
    assert "--as-of" in shown.stdout
    assert shown.stderr == ""


def test_off_a_terminal_progress_is_timestamped_lines_on_stderr(tmp_path: Path) -> None:
    done = script("synth", "--accounts", "600", "--days", "14", "--exports", "amlworld", "--out", str(tmp_path / "w"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] synth: generating the world \(0/2\)", lines[0])
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] synth: writing [\d,]+ transactions \(1/2\)", lines[1])
    assert "[" not in done.stdout.splitlines()[0]  # nothing of the progress on stdout


def test_progress_lines_come_at_most_every_interval_and_always_first_and_last() -> None:
    from rich.console import Console

    from finwatch.cli import _Progress

    clock = [0.0]
    out = io.StringIO()
    step = _Progress("train", interval=10.0, clock=lambda: clock[0], out=Console(file=out, width=40))
    for done in range(24):
        clock[0] = 3.0 * done  # a step every 3 s
        step(done, 24, f"account features as of day {done} [b]")
    shown = [re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", line) for line in out.getvalue().splitlines()]
    # 0 s, then the first step at least 10 s after the last line (12 s, 24 s, …), and the last step
    assert shown == [f"train: account features as of day {d} [b] ({d}/24)" for d in (0, 4, 8, 12, 16, 20, 23)]


def _toy_registry(root: Path) -> Path:
    import numpy as np

    from finwatch.model import XGBScorer
    from finwatch.registry import Registry

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = X[:, 0] + rng.normal(scale=0.5, size=400) > 1
    registry = Registry(root / "models")
    scorer = XGBScorer(n_estimators=5).fit(X, y, eval_set=(X, y), feature_names=["a", "b", "c"])
    for _ in range(2):
        registry.register("aml", scorer, {"level": "account", "training_data": {"rows": 400}, "threshold": 0.5},
                          "# card {version}\n")  # fmt: skip
    registry.promote("aml@1", "champion")
    return registry.root


def test_comparing_a_version_with_itself_computes_nothing(tmp_path: Path) -> None:
    models = _toy_registry(tmp_path)
    store = tmp_path / "no-store"  # never read
    done = script("models", "compare", "aml@champion", "aml@1", "--store", str(store), "--models", str(models),
                  "--json", str(tmp_path / "c.json"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "aml@champion and aml@1 are both aml@1: nothing to compare"
    assert done.stderr == ""
    assert not (tmp_path / "c.json").exists()


def test_score_prints_the_runs_notes_on_stderr(scored: tuple[Path, Any], tmp_path: Path) -> None:
    """A store of exports alone has no accounts table: the rules that need one cannot fire, and score says so."""
    from finwatch.testing import make_store, make_transactions

    _store, registry = scored
    rows = [{"ts": f"2026-01-{d:02d}T1{k}:00:00Z", "src": f"A{k}", "dst": f"B{(k + d) % 4}", "amount": "950.00"}
            for d in range(5, 19) for k in range(4)]  # fmt: skip
    make_store(tmp_path / "store", make_transactions(rows))
    done = script("score", "--store", str(tmp_path / "store"), "--as-of", "2026-01-19", "--out", str(tmp_path / "run"),
                  "--models", str(registry.root))  # fmt: skip
    assert done.returncode == 0, done.stderr
    notes = json.loads((tmp_path / "run" / "run.json").read_text())["notes"]
    assert notes
    assert [line for line in done.stderr.splitlines() if line.startswith("note: ")][: len(notes)] == [
        f"note: {note}" for note in notes
    ]


@pytest.mark.parametrize("only_listed", [False, True])
def test_synth_typology_mix_weights_the_listed_and_keeps_the_others(tmp_path: Path, only_listed: bool) -> None:
    from finwatch.synth import TYPOLOGIES

    world = tmp_path / "w"
    args = ["synth", "--accounts", "1000", "--days", "14", "--prevalence", "0.3", "--exports", "amlworld",
            "--typology-mix", "sex_trafficking=3,structuring=2", "--out", str(world)]  # fmt: skip
    done = finwatch(*args, *(["--only-listed"] if only_listed else []))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((world / "world.json").read_text())
    counts = {t: n for t, n in manifest["counts"]["instances_per_typology"].items() if n}
    mix = manifest["config"]["typology_mix"]
    assert (mix["sex_trafficking"], mix["structuring"]) == (3, 2)
    if only_listed:
        assert set(counts) == {"sex_trafficking", "structuring"}
        assert {mix[t] for t in TYPOLOGIES if t not in counts} == {0}
    else:
        assert set(counts) == set(TYPOLOGIES)
        assert {mix[t] for t in TYPOLOGIES if t not in ("sex_trafficking", "structuring")} == {1}
        assert counts["sex_trafficking"] > counts["structuring"] > counts["cycle"]


def test_only_listed_without_a_mix_is_refused(tmp_path: Path) -> None:
    done = finwatch("synth", "--out", str(tmp_path / "w"), "--only-listed")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --only-listed needs --typology-mix (the typologies to keep)"
