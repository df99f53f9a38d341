"""Fault injection: ``kill -9`` at every step of every write, through the real command line.

For each operation — ingest into a store that holds a batch and into a new store, train into a registry that holds
versions, promote, score over an earlier run of the same folder and into a new folder, report over an earlier
report, goAML and FinCEN exports over earlier exports — the command first runs unfaulted with
``$FINWATCH_FAULT_TRACE`` (its checkpoints, and the outputs every rerun must reproduce byte for byte). Then, for each
checkpoint, the same command runs on a fresh copy of the same state with ``$FINWATCH_FAULT`` set to it and dies by
SIGKILL there; what readers see must be the state before or the complete new state; the command run again without
the fault must exit 0 with the unfaulted run's outputs; and no staging folder, retired folder or temporary file may
remain (:mod:`finwatch.faults`). Where a command costs seconds, some of its steps are killed at only with ``-m slow``
(:attr:`Operation.fast`); the cheaper commands pass the same steps of the shared writers.

Every state is restored to the same folder (``case/``), so the absolute paths runs record are the same each time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from finwatch.faults import FAULT_ENV, TRACE_ENV
from finwatch.registry import Registry
from finwatch.runs import RunFolder
from finwatch.store import Store

ROOT = Path(__file__).resolve().parents[1]
XSD = ROOT / "tests" / "fixtures" / "goaml" / "goAMLSchema-5.0.1.xsd"
MAPPING = ROOT / "features" / "goaml" / "mapping.example.yaml"
FILER = ROOT / "features" / "fincen" / "filer.example.yaml"
#: what a killed writer may leave: staging and retired folders, temporary files, the store's and registry's staging
LEFTOVER = re.compile(r"^\..+\.(?:partial|old)-[A-Za-z0-9_]{8}$|^\..+\.tmp-\d+(?:-[0-9a-f]{8})?$|^\.staging")
#: appended to the earlier report and exports, so that the state before a command differs from what it writes
EARLIER = b"\n<!-- written by an earlier finwatch -->\n"
END_OF_DATA = "2026-01-19T00:00:00Z"  # the world below runs 14 days from 2026-01-05


# --- the world: built once, restored for each case ----------------------------------------------------------------
@dataclass(frozen=True)
class World:
    base: Path  # the state before each command
    case: Path  # where each command runs: a fresh copy of ``base`` each time
    extra: Path  # a file of new transactions to ingest
    env: dict[str, str]

    def restore(self) -> None:
        shutil.rmtree(self.case, ignore_errors=True)
        shutil.copytree(self.base, self.case, symlinks=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A small world (600 accounts, 14 days) ingested, a model trained (version 1, the champion) and registered again
    (version 2), runs as of 2026-01-15 (``r1``) and the end of the data (``r2``), and an earlier report and earlier
    goAML and FinCEN exports of ``r2``."""
    from finwatch.config import RunConfig
    from finwatch.experiment import train_model
    from finwatch.export import export_goaml
    from finwatch.fincen import export_fincen_sar
    from finwatch.ingest import IngestOptions, ingest
    from finwatch.leads import score_run
    from finwatch.report import build_report
    from finwatch.synth import WorldConfig, generate_world, save_world
    from finwatch.testing import make_transactions

    root = tmp_path_factory.mktemp("faults")
    synthetic = root / "world"
    save_world(generate_world(WorldConfig(seed=3, accounts=600, days=14, exports=("amlworld",))), synthetic)
    case = root / "case"
    inputs = [synthetic / "truth" / "transactions.parquet", synthetic / "truth" / "accounts.parquet",
              synthetic / "labels" / "accounts.parquet", synthetic / "labels" / "transactions.parquet"]  # fmt: skip
    assert ingest(inputs, case / "store", IngestOptions(fx=synthetic / "fx_rates.csv")).committed
    store = Store(case / "store")

    registry = Registry(case / "models")
    config = RunConfig().updated({"train.level": "account", "train.step_hours": 96,
                                  "train.model.params": {"n_estimators": 10}})  # fmt: skip
    first = train_model(store, "fw", config, registry)
    registry.promote(first.ref, "champion")
    registry.register("fw", first.scorer, first.metadata, (first.path / "MODEL_CARD.md").read_text(encoding="utf-8"))

    for name, as_of, budget in (("r1", "2026-01-15T00:00:00Z", 0.02), ("r2", END_OF_DATA, 0.01)):
        moment = dt.datetime.fromisoformat(as_of)
        score_run(store, moment, registry, case / "runs" / name,
                  RunConfig().updated({"score.model": "fw@1", "score.budget": budget}))  # fmt: skip
    run = RunFolder(case / "runs" / "r2")
    build_report(run)
    export_goaml(run, XSD, MAPPING)
    export_fincen_sar(run, FILER)
    run.refresh_csv()
    for path in [run.path / "report.html", *(run.path / "report-cases").glob("*.html"),
                 *(run.path / "goaml").glob("*.xml"), run.path / "fincen" / "sar-batch.xml"]:  # fmt: skip
        path.write_bytes(path.read_bytes() + EARLIER)

    extra = root / "inputs" / "extra.parquet"
    extra.parent.mkdir()
    make_transactions([
        {"ts": "2026-01-18T10:00:00Z", "src": "X1", "dst": "X2", "amount": "120.00", "txn_id": "extra-1"},
        {"ts": "2026-01-18T11:00:00Z", "src": "X2", "dst": "X3", "amount": "9500.00", "txn_id": "extra-2"},
        {"ts": "2026-01-19T09:00:00Z", "src": "X3", "dst": "X1", "amount": "9400.00", "txn_id": "extra-3"},
    ]).write_parquet(extra)  # fmt: skip

    base = root / "base"
    case.rename(base)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINWATCH_")}
    # each command is a new interpreter: let it keep compiled modules (in a folder of its own, not the venv's)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.getbasetemp() / "pycache")
    return World(base, case, extra, env)


def finwatch(world: World, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "finwatch", *args], capture_output=True, text=True,
                          cwd=world.case.parent, env={**world.env, **env}, timeout=600, check=False)  # fmt: skip


# --- what readers see, and what a command writes ---------------------------------------------------------------------
def sha(path: Path) -> str | None:
    """The file's sha256, or None when it is not there."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def tree(root: Path) -> dict[str, str] | None:
    """sha256 of every file under ``root`` by relative path, or None when ``root`` is not there."""
    if not root.is_dir():
        return None
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}  # fmt: skip


def leftovers(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if LEFTOVER.match(p.name))


def store_view(case: Path, name: str = "store") -> dict[str, Any]:
    """The batches a reader of the store sees, and the rows it reads; every file the manifests list is intact."""
    store = Store(case / name)
    assert store.verify() == []
    rows = store.scan("transactions").select("txn_id").collect().height
    return {"batches": (tuple(str(m["batch"]) for m in store.manifests()), rows)}


def registry_view(case: Path) -> dict[str, Any]:
    """The versions a reader of the registry sees (each loads, its checks passed) and what ``fw`` resolves to."""
    registry = Registry(case / "models")
    versions = registry.versions("fw")
    for version in versions:
        registry.load(f"fw@{version}")
    return {"versions": tuple(versions), "fw": registry.resolve("fw"), "champion": registry.resolve("fw@champion")}


def runs_view(case: Path) -> dict[str, Any]:
    """Per run folder a reader can find, its run id and lead files; every visible folder is a published run, and
    the runs a later run finds beside it are exactly those."""
    runs = case / "runs"
    visible = sorted(p for p in runs.iterdir() if not p.name.startswith("."))
    assert all(RunFolder(p).published for p in visible), [p.name for p in visible]
    later = RunFolder.planned(runs / "later", dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    assert sorted(r.path.name for r in later.earlier()) == [p.name for p in visible]
    view: dict[str, Any] = {name: None for name in ("r1", "r2", "r3")}
    for path in visible:
        run = RunFolder(path)
        view[path.name] = (run.info["run_id"], sha(path / "leads.parquet"), sha(path / "run.json"))
    return view


def report_view(case: Path) -> dict[str, Any]:
    """The index and the case pages (each the earlier or the new one); every case the index links to is there."""
    run = case / "runs" / "r2"
    index = (run / "report.html").read_text(encoding="utf-8")
    leads = set(re.findall(r"L-[0-9a-f]{20}", index))  # the lead table's rows (data for its script)
    assert leads == set(pl.read_parquet(run / "leads.parquet")["lead_id"].to_list())
    assert all((run / "report-cases" / f"{lead}.html").is_file() for lead in leads)
    return {"report.html": sha(run / "report.html"), "report-cases": tree(run / "report-cases")}


def export_view(folder: str) -> Callable[[Path], dict[str, Any]]:
    def view(case: Path) -> dict[str, Any]:
        run = case / "runs" / "r2"
        assert RunFolder(run).published
        return {folder: tree(run / folder), "leads.csv": sha(run / "leads.csv")}

    return view


def model_outputs(case: Path) -> dict[str, Any]:
    """The newest version's files, but for its number (a rerun after a kill that registered one adds another)."""
    registry = Registry(case / "models")
    folder = registry.root / "fw" / str(registry.versions("fw")[-1])
    metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    _title, card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8").split("\n", 1)  # "# Model card: fw version N"
    # the medians of training's feature values (for the card) differ in their last bits from run to run: DuckDB sums
    # floating-point amounts in parallel, in no fixed order; the model's bytes and the card do not
    typical = {k: None if v is None else f"{v:.9g}" for k, v in metadata.pop("typical_positive").items()}
    return {"model.ubj": sha(folder / "model.ubj"), "card": card, "typical_positive": typical,
            "metadata": {k: v for k, v in metadata.items() if k not in ("version", "files")}}  # fmt: skip


@dataclass(frozen=True)
class Operation:
    args: Callable[[World], list[str]]
    view: Callable[[Path], dict[str, Any]]  # what readers see: each part must be the earlier or the new one
    outputs: Callable[[Path], Any]  # what a rerun must reproduce
    steps: tuple[str, ...]  # the checkpoints the command passes, in order
    #: the steps (numbers) killed at by ``make test``, where a command costs several seconds; the others are marked
    #: slow. The same steps of the shared writers are killed at by the cheaper commands.
    fast: tuple[int, ...] | None = None


SWAP = ("atomic_directory:staged", "atomic_directory:swapped", "atomic_directory:published")
NEW = ("atomic_directory:staged", "atomic_directory:published")
FILE = ("atomic_write:before-rename", "atomic_write:renamed")
COMMIT = ("store.commit:staged", *["store.commit:moved"] * 3, *FILE, "store.commit:done")  # 3 files: fx, 2 days


def _store(w: World) -> list[str]:
    return ["--store", str(w.case / "store")]


def _models(w: World) -> list[str]:
    return ["--models", str(w.case / "models")]


def _r2(w: World) -> str:
    return str(w.case / "runs" / "r2")


def _score(w: World, as_of: str, budget: str, out: str) -> list[str]:
    return ["score", *_store(w), *_models(w), "--model", "fw@1", "--as-of", as_of, "--budget", budget, "--out", out]


SMALL_MODEL = ["--step-hours", "96", "--rounds", "10"]


OPERATIONS = {
    "ingest": Operation(
        lambda w: ["ingest", str(w.extra), *_store(w), "--format", "finwatch-tables"],
        store_view,
        lambda case: tree(case / "store"),
        COMMIT,
    ),
    "ingest into a new store": Operation(
        lambda w: ["ingest", str(w.extra), "--store", str(w.case / "new"), "--format", "finwatch-tables"],
        lambda case: store_view(case, "new"),
        lambda case: tree(case / "new"),
        ("store.commit:staged", *FILE, "store.commit:store-json", *COMMIT[1:]),  # store.json first
        fast=(5,),  # files in a new store's folder before its store.json: the next ingest refused the folder
    ),
    "train": Operation(
        lambda w: ["train", *_store(w), *_models(w), "--name", "fw", "--level", "account", *SMALL_MODEL],
        registry_view,
        model_outputs,
        NEW,
        fast=(2,),
    ),
    "promote": Operation(
        lambda w: ["models", "promote", "fw@2", "champion", *_models(w)],
        registry_view,
        lambda case: tree(case / "models"),
        FILE,
    ),
    "score over a run": Operation(
        lambda w: _score(w, END_OF_DATA, "2%", _r2(w)),
        runs_view,
        lambda case: tree(case / "runs"),
        SWAP,
    ),
    "score a new run": Operation(
        lambda w: _score(w, "2026-01-17", "1%", str(w.case / "runs" / "r3")),
        runs_view,
        lambda case: tree(case / "runs"),
        NEW,
        fast=(2,),
    ),
    "report": Operation(
        lambda w: ["report", _r2(w)],
        report_view,
        lambda case: tree(case / "runs"),
        (*SWAP, *FILE),
    ),
    "export goaml": Operation(
        lambda w: ["export", "goaml", "--run", _r2(w), "--xsd", str(XSD), "--mapping", str(MAPPING), "--allow-invalid"],
        export_view("goaml"),
        lambda case: tree(case / "runs"),
        (*SWAP, *FILE),
        fast=(2,),  # every draft is validated against the schema: seconds; fincen-sar passes the same steps
    ),
    "export fincen-sar": Operation(
        lambda w: ["export", "fincen-sar", "--run", _r2(w), "--filer", str(FILER), "--allow-invalid"],
        export_view("fincen"),
        lambda case: tree(case / "runs"),
        (*SWAP, *FILE),
    ),
}


@dataclass(frozen=True)
class Baseline:
    before: dict[str, Any]  # what readers see before the command
    after: dict[str, Any]  # … after it completed
    outputs: Any  # what it wrote
    trace: list[str]  # its checkpoints ("name<TAB>file")


@pytest.fixture(scope="module")
def baselines(world: World) -> Callable[[str], Baseline]:
    """Each operation run once without a fault, on demand."""
    done: dict[str, Baseline] = {}

    def get(name: str) -> Baseline:
        if name not in done:
            op = OPERATIONS[name]
            world.restore()
            before = op.view(world.case)
            trace = world.case.parent / "trace.txt"
            trace.unlink(missing_ok=True)
            ran = finwatch(world, op.args(world), **{TRACE_ENV: str(trace)})
            assert ran.returncode == 0, ran.stderr
            assert leftovers(world.case) == []
            lines = trace.read_text(encoding="utf-8").splitlines()
            done[name] = Baseline(before, op.view(world.case), op.outputs(world.case), lines)
        return done[name]

    return get


def _cases() -> Iterator[Any]:
    for name, op in OPERATIONS.items():
        for number, step in enumerate(op.steps, start=1):
            slow = op.fast is not None and number not in op.fast
            yield pytest.param(name, number, id=f"{name}-{number}-{step}", marks=[pytest.mark.slow] if slow else [])


def _operations() -> Iterator[Any]:
    for name, op in OPERATIONS.items():
        yield pytest.param(name, id=name, marks=[pytest.mark.slow] if op.fast == () else [])


# --- the tests -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(_operations()))
def test_each_operation_passes_the_checkpoints_it_is_tested_at(name: str, baselines: Callable[[str], Baseline]) -> None:
    baseline = baselines(name)
    assert [line.split("\t")[0] for line in baseline.trace] == list(OPERATIONS[name].steps), baseline.trace
    assert baseline.before != baseline.after  # the command changes what readers see


@pytest.mark.parametrize(("name", "number"), list(_cases()))
def test_a_kill_at_any_step_leaves_the_old_or_the_new_state_and_a_rerun_completes_it(
    world: World, baselines: Callable[[str], Baseline], name: str, number: int
) -> None:
    op, baseline = OPERATIONS[name], baselines(name)
    world.restore()
    trace = kill(world, op, str(number))
    assert trace == baseline.trace[:number]  # killed at that step
    check_after_kill(world, op, baseline)


@pytest.mark.parametrize(
    ("name", "first", "cleanup"),
    [
        pytest.param("promote", 1, "remove_leftovers:removed", id="promote: a temporary aliases.json"),
        pytest.param("score over a run", 2, "remove_leftovers:removed", id="score: the earlier run swapped aside"),
        pytest.param("ingest", 4, "store.remove_orphans:removed:2", id="ingest: the second of three orphans"),
        pytest.param("ingest", 4, "store.remove_orphans:staging", id="ingest: staging", marks=pytest.mark.slow),
    ],
)
def test_a_kill_while_a_rerun_removes_what_a_kill_left_is_repaired_by_the_next_run(
    world: World, baselines: Callable[[str], Baseline], name: str, first: int, cleanup: str
) -> None:
    op, baseline = OPERATIONS[name], baselines(name)
    world.restore()
    kill(world, op, str(first))
    trace = kill(world, op, cleanup)
    assert trace[-1].split("\t")[0] == re.sub(r":\d+$", "", cleanup)  # killed while removing leftovers
    check_after_kill(world, op, baseline)


def kill(world: World, op: Operation, fault: str) -> list[str]:
    """Run the operation killed at ``fault``; the checkpoints it passed."""
    trace = world.case.parent / "trace.txt"
    trace.unlink(missing_ok=True)
    killed = finwatch(world, op.args(world), **{FAULT_ENV: fault, TRACE_ENV: str(trace)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return trace.read_text(encoding="utf-8").splitlines()


def check_after_kill(world: World, op: Operation, baseline: Baseline) -> None:
    """Readers see the old or the new state; a rerun completes with the unfaulted outputs and leaves nothing over."""
    seen = op.view(world.case)
    for part, value in seen.items():
        assert value in (baseline.before[part], baseline.after[part]), f"{part}: neither the old nor the new state"
    again = finwatch(world, op.args(world))
    assert again.returncode == 0, again.stderr
    assert op.outputs(world.case) == baseline.outputs
    assert leftovers(world.case) == []


# --- the hook itself, and the publishing steps where folders cannot be exchanged --------------------------------------
STEPS = "from finwatch.faults import checkpoint\nfor step in ('a', 'b', 'a', 'c'):\n    checkpoint(step, '/x/y/z')\n"


def python(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FINWATCH_")}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**clean, **env}, timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "passed"),
    [
        pytest.param("3", ["a", "b", "a"], id="the third checkpoint"),
        pytest.param("b", ["a", "b"], id="the first named b"),
        pytest.param("a:2", ["a", "b", "a"], id="the second named a"),
    ],
)
def test_the_fault_names_the_checkpoint_that_kills_and_the_trace_lists_those_passed(
    tmp_path: Path, fault: str, passed: list[str]
) -> None:
    trace = tmp_path / "trace.txt"
    done = python(STEPS, **{FAULT_ENV: fault, TRACE_ENV: str(trace)})
    assert done.returncode == -signal.SIGKILL
    assert trace.read_text().splitlines() == [f"{step}\ty/z" for step in passed]


def test_without_a_fault_every_checkpoint_is_passed_and_without_a_trace_nothing_is_written(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    assert python(STEPS, **{TRACE_ENV: str(trace)}).returncode == 0
    assert [line.split("\t")[0] for line in trace.read_text().splitlines()] == ["a", "b", "a", "c"]
    assert python(STEPS, **{FAULT_ENV: "d"}).returncode == 0  # no such checkpoint
    assert python(STEPS).returncode == 0


# a folder written where two folders cannot be exchanged in one step: the old one is renamed aside first
NO_EXCHANGE = """
import sys
from pathlib import Path
from finwatch import _io
_io._swap = lambda a, b: False
with _io.atomic_directory(Path(sys.argv[1]), marker="m") as staging:
    (staging / "m").write_text(sys.argv[2])
"""


@pytest.mark.parametrize(
    ("number", "step", "readers_see"),
    [
        (1, "atomic_directory:staged", "old"),
        (2, "atomic_directory:moved-aside", None),  # the documented instant: nothing until the next write
        (3, "atomic_directory:moved-in", "new"),
        (4, "atomic_directory:published", "new"),
    ],
)
def test_without_an_exchange_a_kill_between_the_renames_is_repaired_by_the_next_write(
    tmp_path: Path, number: int, step: str, readers_see: str | None
) -> None:
    from finwatch._io import remove_leftovers

    target = tmp_path / "out"
    target.mkdir()
    (target / "m").write_text("old")
    trace = tmp_path / "trace.txt"
    done = python(NO_EXCHANGE, str(target), "new", **{FAULT_ENV: str(number), TRACE_ENV: str(trace)})
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert trace.read_text().splitlines()[-1].split("\t")[0] == step
    assert ((target / "m").read_text() if target.exists() else None) == readers_see

    before = tmp_path / "before"
    shutil.copytree(tmp_path, before, ignore=shutil.ignore_patterns("before", "trace.txt"), symlinks=True)
    remove_leftovers(before)  # what the next write into the folder does first: the old folder comes back
    assert (before / "out" / "m").read_text() == (readers_see or "old")
    assert leftovers(before) == []

    assert python(NO_EXCHANGE, str(target), "new").returncode == 0
    assert (target / "m").read_text() == "new"
    assert leftovers(tmp_path) == []
