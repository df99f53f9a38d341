"""Integrity: atomic publishing survives kills, leftovers are removed, OS errors name the file; model versions and
runs are tamper-evident (digests, signatures) and verifiable against everything they depend on."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from finwatch._io import _swap, atomic_directory, atomic_write_bytes, atomic_write_text
from finwatch.dataset import end_of_data
from finwatch.digest import KEY_ENV, KEY_FILE_ENV, canonical_json, key_id, load_signing_key
from finwatch.exceptions import ConfigError, FinwatchError, user_message
from finwatch.integrity import verify_model, verify_run
from finwatch.registry import Registry, RegistryError
from finwatch.runs import RunFolder, run_id_for
from finwatch.store import Store
from tests.conftest import finwatch, run_score

KEY = b"7d0c0eced878e96722bff98b0454d0e6e65247113a6a5b6709dc380c6dc0f05d"
OTHER_KEY = b"3c52902cee947cc33176d0ce236cac53e3cf77167b37e43fe58a9cd0e77c2e1c"

# A writer that dies (SIGKILL: no clean-up code runs) at a chosen point of publishing `target`.
KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
import finwatch._io as io

target, mode = Path(sys.argv[1]), sys.argv[2]
real_replace, real_rename = os.replace, os.rename

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def dying_after_moving_the_old_folder_aside(real):
    def move(src, dst, *args, **kwargs):
        real(src, dst, *args, **kwargs)
        if Path(src) == target.resolve():
            die()
    return move

if mode in ("swap", "no-swap"):
    os.replace = dying_after_moving_the_old_folder_aside(real_replace)
    os.rename = dying_after_moving_the_old_folder_aside(real_rename)
    if mode == "no-swap":
        io._swap = lambda a, b: False  # a system that cannot exchange two folders in one step
    with io.atomic_directory(target, marker="done.json") as staging:
        (staging / "done.json").write_text("2")
elif mode == "inside":
    with io.atomic_directory(target, marker="done.json") as staging:
        (staging / "done.json").write_text("2")
        die()
elif mode == "file":
    os.replace = lambda *args, **kwargs: die()
    io.atomic_write_bytes(target, b"never published")
"""


def killed_writer(target: Path, mode: str) -> int:
    return subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target), mode], check=False).returncode


def publish(target: Path, text: str) -> None:
    with atomic_directory(target, marker="done.json") as staging:
        (staging / "done.json").write_text(text)


def swaps(folder: Path) -> bool:
    """Whether the file system under ``folder`` exchanges two folders in one step."""
    a, b = folder / "swap-a", folder / "swap-b"
    a.mkdir()
    b.mkdir()
    try:
        return _swap(a, b)
    finally:
        a.rmdir()
        b.rmdir()


# --- publishing ----------------------------------------------------------------------------------------------------
def test_a_folder_killed_while_being_replaced_still_holds_a_complete_version(tmp_path: Path) -> None:
    if not swaps(tmp_path):
        pytest.skip("this file system cannot exchange two folders in one step")
    target = tmp_path / "out"
    publish(target, "1")
    killed_writer(target, "swap")  # dies if the old folder is ever moved aside on its own
    assert (target / "done.json").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_without_an_atomic_exchange_the_next_write_restores_a_folder_killed_between_two_renames(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out"
    publish(target, "1")
    assert killed_writer(target, "no-swap") != 0
    assert not target.exists()  # killed in the instant between moving the old folder aside and the new one in
    publish(tmp_path / "next", "n")  # any write into the same folder repairs it
    assert (target / "done.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next", "out"]


def test_leftovers_of_killed_writers_are_removed_by_the_next_write_into_the_folder(tmp_path: Path) -> None:
    def left() -> list[str]:
        return sorted(p.name.split("-")[0] for p in tmp_path.iterdir() if p.name.startswith("."))

    publish(tmp_path / "out", "1")
    assert killed_writer(tmp_path / "out", "inside") != 0
    assert left() == [".out.partial"]
    assert killed_writer(tmp_path / "notes.txt", "file") != 0  # a file writer removes them too, before writing
    assert left() == [".notes.txt.tmp"]
    publish(tmp_path / "next", "n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next", "out"]
    assert (tmp_path / "out" / "done.json").read_text() == "1"
    assert killed_writer(tmp_path / "notes.txt", "file") != 0
    atomic_write_text(tmp_path / "notes.txt", "written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next", "notes.txt", "out"]


def test_a_concurrent_writers_files_are_left_alone(tmp_path: Path) -> None:
    with atomic_directory(tmp_path / "a", marker="done.json") as staging:
        (staging / "done.json").write_text("a")
        assert killed_writer(tmp_path / "old", "inside") != 0  # a leftover: removed once no writer is at work
        publish(tmp_path / "b", "b")  # another writer in the same folder meanwhile
        assert (staging / "done.json").read_text() == "a"
        assert any(p.name.startswith(".old.partial-") for p in tmp_path.iterdir())
    assert (tmp_path / "a" / "done.json").read_text() == "a"
    publish(tmp_path / "c", "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_a_failed_atomic_write_leaves_no_temporary_file_and_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "x" / "leads.csv"
    target.parent.mkdir()
    atomic_write_text(target, "old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device") as caught:
        atomic_write_bytes(target, b"new")
    assert user_message(caught.value) == f"{target}: No space left on device"
    assert sorted(p.name for p in target.parent.iterdir()) == ["leads.csv"]
    assert target.read_text() == "old"


def test_an_interrupted_atomic_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "a.json", b"{}")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_write_names_the_file_and_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: pl.DataFrame, *args: object, **kwargs: object) -> None:
        raise pl.exceptions.ComputeError(
            "parquet: File out of specification: underlying IO error: No space left on device (os error 28)"
        )

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    out = tmp_path / "runs" / "x"
    leads = pl.DataFrame({"lead_id": ["L-1"], "reasons": ["[]"], "cycle_paths": ["[]"]})
    with pytest.raises(OSError, match="No space left on device") as caught:
        RunFolder.write(out, leads, {"run_id": "r", "as_of": "2026-01-01T00:00:00+00:00"})
    assert user_message(caught.value) == f"{out}/leads.parquet: No space left on device"
    assert list((tmp_path / "runs").iterdir()) == []


# --- keys ----------------------------------------------------------------------------------------------------------
def test_signing_keys_come_from_a_file_or_the_environment_and_short_or_empty_ones_are_refused(tmp_path: Path) -> None:
    assert load_signing_key(environ={}) is None
    assert load_signing_key(environ={KEY_ENV: KEY.decode() + "\n"}) == KEY
    key_file = tmp_path / "key"
    key_file.write_bytes(OTHER_KEY + b"\n")
    assert load_signing_key(environ={KEY_FILE_ENV: str(key_file), KEY_ENV: KEY.decode()}) == OTHER_KEY
    assert load_signing_key(key_file, environ={}) == OTHER_KEY
    for environ, message in [({KEY_ENV: ""}, "set but empty"), ({KEY_ENV: "short"}, "shorter than 32 bytes"),
                             ({KEY_FILE_ENV: str(tmp_path / "none")}, "cannot read")]:  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            load_signing_key(environ=environ)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_signing_key(tmp_path / "fifo", environ={})
    (tmp_path / "empty").write_bytes(b"\n")
    with pytest.raises(ConfigError, match="empty"):
        load_signing_key(tmp_path / "empty", environ={})
    with pytest.raises(ConfigError) as caught:
        load_signing_key(environ={KEY_ENV: "secret-but-short"})
    assert "secret-but-short" not in str(caught.value)


def test_the_registry_reads_its_key_from_the_environment_and_never_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    registry = Registry(tmp_path)
    assert registry.key == KEY
    assert KEY.decode() not in repr(registry)
    assert Registry(tmp_path, key_from_env=False).key is None


# --- runs ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signed(scored: tuple[Path, Registry], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Registry, Path]:
    """A copy of the scored fixture's store and registry, its champion signed, and a signed run on them."""
    store, registry = scored
    root = tmp_path_factory.mktemp("signed")
    shutil.copytree(store, root / "store")
    shutil.copytree(registry.root, root / "models")
    keyed = Registry(root / "models", key=KEY)
    keyed.seal("finwatch@1")
    run = run_score(root / "store", end_of_data(Store(root / "store")), keyed, root / "runs" / "r", budget=0.02)
    return root / "store", keyed, run.folder


def test_run_json_and_every_lead_name_the_models_digests_and_the_run_id_covers_what_scoring_reads(
    scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    store, registry = scored
    end = end_of_data(Store(store))
    run = run_score(store, end, registry, tmp_path / "r", budget=0.02)
    loaded = registry.load("finwatch@1")
    info = json.loads((run.folder / "run.json").read_text())
    assert len(loaded.digest) == len(loaded.scoring_digest) == 64
    assert info["model_digest"] == loaded.digest
    assert info["scoring_digest"] == loaded.scoring_digest
    assert run.leads["scoring_digest"].to_list() == [loaded.scoring_digest] * run.leads.height
    assert info["files"]["leads.parquet"]["bytes"] == (run.folder / "leads.parquet").stat().st_size
    assert "signature" not in info  # no key configured
    same = [info["data_manifest_sha256"], info["model"], loaded.scoring_digest, info["rules_version"], info["as_of"],
            info["budget"], info["feature_config_sha256"]]  # fmt: skip
    assert run_id_for(*same) == run.run_id
    # a version registered before digests, its calibration edited: it loads, and the run is another run
    models = tmp_path / "models"
    shutil.copytree(registry.root, models)
    (models / "finwatch" / "1" / "version.json").unlink()
    meta_path = models / "finwatch" / "1" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["registry_format"]
    meta["scorer"]["calibration"]["a"] *= 2
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    edited = run_score(store, end, Registry(models, key_from_env=False), tmp_path / "edited", budget=0.02)
    assert edited.summary["model_sha256"] == info["model_sha256"]  # the trees are the same
    assert edited.run_id != run.run_id
    assert edited.summary["scoring_digest"] != info["scoring_digest"]


def test_an_untouched_run_verifies_and_a_changed_lead_file_is_named(
    signed: tuple[Path, Registry, Path], tmp_path: Path
) -> None:
    _store, registry, folder = signed
    report = verify_run(folder, registry)
    assert report.ok, report.lines()
    names = [c.name for c in report.checks]
    expected = ["run id", "run signature", "leads.parquet", "leads.csv", "leads.json", "leads", "model metadata",
                "model file checksums", "model version digest", "model signature", "model scorer", "model digest",
                "scoring digest", "store", "data manifest", "store files"]  # fmt: skip
    assert names == expected
    copy = tmp_path / "r"
    shutil.copytree(folder, copy)
    RunFolder(copy).refresh_csv()  # what an export does: leads.csv rewritten from the leads
    assert verify_run(copy, registry).ok
    leads_json = copy / "leads.json"
    leads_json.write_text(leads_json.read_text().replace('"rank": 1,', '"rank": 2,', 1))
    report = verify_run(copy, registry)
    assert [p.split(":")[0] for p in report.problems] == ["leads.json"]
    assert f"{leads_json}: sha256" in report.problems[0]
    assert "changed after the run" in report.problems[0]
    assert report.lines()[-1].endswith("1 check(s) failed")


def test_an_edited_run_json_fails_its_run_id_and_its_signature(
    signed: tuple[Path, Registry, Path], tmp_path: Path
) -> None:
    _store, registry, folder = signed
    copy = tmp_path / "r"
    shutil.copytree(folder, copy)
    info = json.loads((copy / "run.json").read_text())
    assert info["signature"]["key_id"] == key_id(KEY)
    info["budget"] = 0.5
    (copy / "run.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    failed = {p.split(":")[0] for p in verify_run(copy, registry).problems}
    assert failed == {"run id", "run signature"}
    info["budget"], info["notes"] = 0.02, ["an added note"]  # the run id holds, the signature does not
    (copy / "run.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    report = verify_run(copy, registry)
    assert [p.split(":")[0] for p in report.problems] == ["run signature"]
    assert "changed after signing" in report.problems[0]
    unkeyed = Registry(registry.root, key_from_env=False)
    assert verify_run(copy, unkeyed).ok  # without the key a signature is not checked: a digest alone is forgeable
    assert not verify_run(copy, unkeyed, key=OTHER_KEY).ok


def test_a_run_verifies_only_against_its_model_and_its_data(
    signed: tuple[Path, Registry, Path], tmp_path: Path
) -> None:
    store, registry, folder = signed
    models = tmp_path / "models"
    shutil.copytree(registry.root, models)
    meta_path = models / "finwatch" / "1" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["scorer"]["threshold"] = 0.01  # what changed every lead while the run kept its id
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    report = verify_run(folder, Registry(models, key=KEY))
    assert not report.ok
    assert any(p.startswith("model version digest:") and f"{meta_path}: changed after registration" in p
               for p in report.problems), report.problems  # fmt: skip
    data = tmp_path / "store"
    shutil.copytree(store, data)
    victim = next(p for p in sorted((data / "transactions").rglob("*.parquet")))
    victim.write_bytes(victim.read_bytes()[:-9] + b"x" * 9)
    report = verify_run(folder, registry, data)
    assert [p.split(":")[0] for p in report.problems] == ["store files"], report.problems
    shutil.rmtree(data / "manifests")
    (data / "manifests").mkdir()
    report = verify_run(folder, registry, data)
    assert any(p.startswith("store:") and "does not hold the data" in p for p in report.problems), report.problems


def test_a_run_refuses_an_unsigned_model_when_a_key_is_configured(
    scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    store, registry = scored
    keyed = Registry(registry.root, key=KEY)
    with pytest.raises(RegistryError, match=r"version\.json: not signed — refusing to load finwatch@1"):
        run_score(store, end_of_data(Store(store)), keyed, tmp_path / "r")
    assert not (tmp_path / "r").exists()
    with pytest.raises(FinwatchError, match="not a finwatch run folder"):
        verify_run(tmp_path / "r", keyed)


def test_a_report_that_fails_to_write_leaves_no_temporary_file_and_names_the_file(
    scored: tuple[Path, Registry], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finwatch.report import build_report

    store, registry = scored
    run = run_score(store, end_of_data(Store(store)), registry, tmp_path / "r", budget=0.02)
    before = sorted(p.name for p in run.folder.iterdir())
    real_replace = os.replace

    def full_disk_for_the_index(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == "report.html":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src), None, str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk_for_the_index)
    with pytest.raises(OSError, match="No space left on device") as caught:
        build_report(RunFolder(run.folder))
    assert user_message(caught.value) == f"{run.folder / 'report.html'}: No space left on device"
    assert sorted(p.name for p in run.folder.iterdir()) == sorted([*before, "report-cases"])


def test_verify_model_lists_its_checks_and_canonical_json_ignores_formatting(tmp_path: Path) -> None:
    assert canonical_json({"b": 1, "a": [1.5, "é"]}) == b'{"a":[1.5,"\\u00e9"],"b":1}'
    with pytest.raises(RegistryError, match="no model named"):
        verify_model(Registry(tmp_path, key_from_env=False), "none")


# --- the commands --------------------------------------------------------------------------------------------------
def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINWATCH_")}
    return {**env, **extra}


def test_models_verify_and_runs_verify_exit_0_when_intact_1_when_changed_2_when_not_found(
    signed: tuple[Path, Registry, Path], tmp_path: Path
) -> None:
    store, registry, folder = signed
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    env = clean_env()
    models = ["--models", str(registry.root), "--key-file", str(key_file)]
    done = finwatch("models", "verify", "finwatch@1", *models, "--json", str(tmp_path / "m.json"), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(line.split()[:2] == ["ok", "signature"] and "valid" in line for line in done.stdout.splitlines())
    assert "verified" in done.stdout.splitlines()[-2]
    assert json.loads((tmp_path / "m.json").read_text())["ok"] is True
    done = finwatch("runs", "verify", str(folder), "--store", str(store), *models, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith("verified")
    # the signing key from the environment, as the registry takes it
    assert finwatch("runs", "verify", str(folder), "--models", str(registry.root),
                    env=clean_env(FINWATCH_SIGNING_KEY=KEY.decode())).returncode == 0  # fmt: skip
    # another key: the signatures fail, exit 1, each failed check on its own line
    other = tmp_path / "other"
    other.write_bytes(OTHER_KEY)
    done = finwatch("runs", "verify", str(folder), "--models", str(registry.root), "--key-file", str(other), env=env)
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    assert {line.split()[1] for line in failed} == {"run", "model"}  # run signature, model signature
    assert "Traceback" not in done.stderr
    # a model whose threshold was edited: its checks fail by name
    models_copy = tmp_path / "models"
    shutil.copytree(registry.root, models_copy)
    meta_path = models_copy / "finwatch" / "1" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["threshold"] = 0.0
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    done = finwatch("models", "verify", "finwatch@1", "--models", str(models_copy), "--key-file", str(key_file),
                    "--json", str(tmp_path / "bad.json"), env=env)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED" in done.stdout
    assert "check(s) failed" in done.stdout
    assert json.loads((tmp_path / "bad.json").read_text())["ok"] is False
    # what cannot be found: exit 2 and one line
    for args in (["models", "verify", "nosuch@1", "--models", str(registry.root)],
                 ["runs", "verify", str(tmp_path), "--models", str(registry.root)]):  # fmt: skip
        done = finwatch(*args, env=env)
        assert done.returncode == 2, done.stdout + done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stderr
    short = tmp_path / "short"
    short.write_bytes(b"short")
    done = finwatch("models", "verify", "finwatch@1", "--models", str(registry.root), "--key-file", str(short), env=env)
    assert done.returncode == 2
    assert "short" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_models_seal_signs_a_version_registered_before_digests_and_refuses_a_changed_one(
    scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    _store, registry = scored
    models = tmp_path / "models"
    shutil.copytree(registry.root, models)
    (models / "finwatch" / "1" / "version.json").unlink()  # as registered before digests
    meta_path = models / "finwatch" / "1" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["registry_format"]
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    args = ["--models", str(models), "--key-file", str(key_file)]
    assert finwatch("models", "verify", "finwatch@1", *args, env=clean_env()).returncode == 1  # not sealed, unsigned
    done = finwatch("models", "seal", "finwatch@1", *args, env=clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sealed" in done.stdout
    assert "signed" in done.stdout
    assert finwatch("models", "verify", "finwatch@1", *args, env=clean_env()).returncode == 0
    # a version whose files changed is never sealed over
    (models / "finwatch" / "1" / "version.json").unlink()
    (models / "finwatch" / "1" / "MODEL_CARD.md").write_text("edited\n")
    done = finwatch("models", "seal", "finwatch@1", *args, env=clean_env())
    assert done.returncode == 2, done.stdout + done.stderr
    assert "MODEL_CARD.md" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (models / "finwatch" / "1" / "version.json").exists()


# --- paths that look like patterns, damaged runs, a full disk --------------------------------------------------------
def test_a_run_and_a_store_whose_paths_have_pattern_characters_score_report_and_verify(
    scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    from finwatch.report import build_report

    store, registry = scored
    moved = tmp_path / "stores[1]*" / "store[x]"
    shutil.copytree(store, moved)
    as_of = end_of_data(Store(moved))
    run = run_score(moved, as_of, registry, tmp_path / "runs[1]" / "r[1]", budget=0.02)
    assert run.leads.height
    again = run_score(moved, as_of, registry, tmp_path / "runs[1]" / "r[2]", budget=0.02)
    assert again.leads.height == run.leads.height
    page = build_report(RunFolder(run.folder))
    assert page.is_file()
    report = verify_run(run.folder, registry, Store(moved))
    assert report.ok, report.lines()


def _damaged(source: Path, folder: Path, name: str, damage: str) -> Path:
    shutil.copytree(source, folder)
    path = folder / name
    if damage == "missing":
        path.unlink()
    elif damage == "zeroed":
        path.write_bytes(bytes(path.stat().st_size))
    elif damage == "half":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(path.read_bytes()[: int(damage)])
    return folder


def test_a_damaged_earlier_run_is_not_an_earlier_run_and_a_damaged_run_is_refused_in_one_line(
    scored: tuple[Path, Registry], tmp_path: Path
) -> None:
    from finwatch.report import build_report

    store, registry = scored
    as_of = end_of_data(Store(store))
    earlier = as_of - dt.timedelta(days=1)
    good = run_score(store, earlier, registry, tmp_path / "good", budget=0.02).folder
    runs = tmp_path / "runs"
    runs.mkdir()
    cases = {"cut-csv": ("leads.csv", "200"), "zeroed-parquet": ("leads.parquet", "zeroed"),
             "half-parquet": ("leads.parquet", "half"), "no-leads-json": ("leads.json", "missing")}  # fmt: skip
    for folder, (name, damage) in cases.items():
        _damaged(good, runs / folder, name, damage)
        assert not RunFolder(runs / folder).published
    planned = RunFolder.planned(runs / "next", as_of)
    assert planned.earlier() == []
    assert planned.first_raised() == {}
    run = run_score(store, as_of, registry, runs / "next", budget=0.02)  # beside them: no traceback, no first_raised
    assert set(run.leads["first_raised"].to_list()) == {as_of.isoformat()}
    for folder, (name, _damage) in cases.items():
        with pytest.raises(FinwatchError) as caught:
            build_report(RunFolder(runs / folder))
        assert str(caught.value).startswith(f"{runs / folder / name}: ")
        assert "\n" not in str(caught.value)
        assert not (runs / folder / "report.html").exists()
    result = finwatch("report", str(runs / "zeroed-parquet"))
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {runs / 'zeroed-parquet' / 'leads.parquet'}: not a complete Parquet file; the file "
                      "is damaged"], result.stderr  # fmt: skip
    assert "Traceback" not in result.stderr
    exported = tmp_path / "exported"
    shutil.copytree(good, exported)
    RunFolder(exported).refresh_csv()  # an export rewrites leads.csv: still a published run
    assert RunFolder(exported).published


def test_a_full_disk_while_writing_a_run_names_the_file_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polars reports a full disk while writing Parquet to a file as "Invalid thrift: transport error"."""
    real = Path.write_bytes

    def full(self: Path, data: bytes) -> int:
        if self.name == "leads.parquet":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    out = tmp_path / "runs" / "x"
    leads = pl.DataFrame({"lead_id": ["L-1"], "reasons": ["[]"], "cycle_paths": ["[]"]})
    with pytest.raises(OSError, match="No space left on device") as caught:
        RunFolder.write(out, leads, {"run_id": "r", "as_of": "2026-01-01T00:00:00+00:00"})
    assert user_message(caught.value) == f"{out}/leads.parquet: No space left on device"
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_full_disk_inside_a_staging_folder_names_the_destination(tmp_path: Path) -> None:
    target = tmp_path / "report-cases"
    with pytest.raises(OSError, match="No space") as caught, atomic_directory(target, marker="cases.json"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write() names no file
    assert user_message(caught.value) == f"{target}: No space left on device"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(pl.exceptions.ComputeError), atomic_directory(target, marker="cases.json"):
        raise pl.exceptions.ComputeError("parquet: File out of specification: Invalid thrift: transport error")
    cause = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(OSError, match="No space") as caught, atomic_directory(target, marker="cases.json") as staging:
        raise pl.exceptions.ComputeError("write failed") from cause
    assert user_message(caught.value) == f"{target}: No space left on device"
    assert not staging.exists()
