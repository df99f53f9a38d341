"""The deployments of prefect.yaml on a real Prefect server, work pool and worker on the loopback interface.

The server and worker are started by ``finwatch.server`` (as ``finwatch-server start`` does) and stopped by the
process ids it recorded. Runs are started the way Prefect starts them: the scheduler's own run of the nightly
deployment, moved to now, and a run created through the API; the worker executes each in a process of its own,
loading the flow from its entrypoint, so parameter models that only resolve in the defining process fail here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from finwatch.registry import Registry
from finwatch.server import Server, deploy, start, status, stop

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("prefect-server")
    running = start(home, port=_free_port())
    try:
        yield running
    finally:
        stop(home)
        assert status(home) is None


@pytest.fixture(scope="module")
def site(
    server: Server, small_world_dir: tuple[Any, Path], scored: tuple[Path, Registry], tmp_path_factory: Any
) -> Path:
    """A folder laid out as prefect.yaml expects (flows/, inbox/, models/ with a champion), deployed from."""
    _world, world = small_world_dir
    _store, registry = scored
    site = tmp_path_factory.mktemp("site")
    (site / "flows").symlink_to(REPO / "flows", target_is_directory=True)
    shutil.copy(REPO / "prefect.yaml", site / "prefect.yaml")
    shutil.copytree(registry.root, site / "models")
    (site / "inbox").mkdir()
    for name in ("truth/transactions.parquet", "truth/accounts.parquet", "labels/accounts.parquet",
                 "labels/transactions.parquet"):  # fmt: skip
        shutil.copy(world / name, site / "inbox" / name.replace("/", "-"))
    (site / "finwatch.toml").write_text(f'[ingest]\nfx = "{world / "fx_rates.csv"}"\n[score]\nbudget = 0.02\n')
    deploy(Path(server.home), site / "prefect.yaml")
    return site


def _client_call(server: Server, fn: Any) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def call() -> Any:
        async with get_client() as client:
            return await fn(client)

    with temporary_settings({PREFECT_API_URL: server.api_url}):
        return asyncio.run(call())


def _wait(server: Server, run_id: Any, timeout: float = 600) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = _client_call(server, lambda c: c.read_flow_run(run_id))
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(2)
    raise AssertionError(f"flow run {run_id} did not finish within {timeout} s")


def test_the_nightly_deployment_is_scheduled_and_its_run_writes_the_leads_the_cli_writes(
    server: Server, site: Path, tmp_path: Path
) -> None:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.states import Scheduled

    async def scheduled(client: Any) -> list[Any]:
        deployment = await client.read_deployment_by_name("finwatch-pipeline/finwatch-nightly")
        assert [s.schedule.cron for s in deployment.schedules if s.active] == ["0 2 * * *"]
        assert deployment.work_pool_name == "finwatch"
        for _ in range(60):  # the server's scheduler creates the coming nightly runs
            only = DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            runs = await client.read_flow_runs(deployment_filter=only)
            if runs:
                return list(runs)
            await asyncio.sleep(1)
        return []

    runs = _client_call(server, scheduled)
    assert runs, "the scheduler created no run of the nightly deployment"
    assert all(r.state.is_scheduled() for r in runs)
    assert {r.expected_start_time.astimezone(dt.UTC).strftime("%H:%M") for r in runs} == {"02:00"}
    nightly = min(runs, key=lambda r: r.expected_start_time)

    async def now(client: Any) -> None:  # the scheduler's run, due now: the worker picks it up
        await client.set_flow_run_state(nightly.id, Scheduled(scheduled_time=dt.datetime.now(dt.UTC)), force=True)

    _client_call(server, now)
    run = _wait(server, nightly.id)
    assert run.state.is_completed(), run.state.message

    folders = [p for p in (site / "runs").iterdir() if (p / "run.json").is_file()]
    assert len(folders) == 1
    leads = pl.read_parquet(folders[0] / "leads.parquet")
    assert leads.height > 0
    assert (folders[0] / "report.html").is_file()
    keys = {a.key for a in _client_call(server, lambda c: c.read_artifacts())}
    assert {"ingest-summary", "score-summary"} <= keys

    # `finwatch score` on the same store, as of the same time, with the same settings: the same leads
    as_of = dt.datetime.strptime(folders[0].name, "%Y-%m-%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINWATCH_")}
    done = subprocess.run([str(Path(sys.executable).parent / "finwatch"), "score", "--store", "store", "--as-of",
                           as_of.isoformat(), "--out", str(tmp_path / "cli")], cwd=site, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert pl.read_parquet(tmp_path / "cli" / "leads.parquet").equals(leads)
    assert (tmp_path / "cli" / "leads.parquet").read_bytes() == (folders[0] / "leads.parquet").read_bytes()


def test_a_user_error_fails_the_run_with_its_one_line_and_the_webhook_hears_of_it(server: Server, site: Path) -> None:
    import http.server
    import json
    import queue
    import threading

    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from finwatch.server import notify

    received: queue.Queue[dict[str, Any]] = queue.Queue()

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        notify(Path(server.home), f"http://127.0.0.1:{hook.server_port}/finwatch")
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            run = run_deployment("finwatch-score/finwatch-score", parameters={"budget": "150%"}, timeout=600)
        message = "--budget: '150%' must be more than 0 % and less than 100 %"
        assert run.state.is_failed()
        assert run.state.message == message
        log = (Path(server.home) / "worker.log").read_text(encoding="utf-8")
        assert message in log
        assert "Traceback" not in log
        posted = received.get(timeout=120)  # the server's automation posts once the Failed event is processed
        assert posted["body"] == message
        assert "finwatch-score" in posted["subject"]
        assert "Failed" in posted["subject"]
    finally:
        hook.shutdown()


def test_server_refuses_a_port_in_use_and_stop_is_idempotent(tmp_path: Path) -> None:
    from finwatch.exceptions import FinwatchError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(FinwatchError, match=f"port {port} on 127.0.0.1 is in use"):
            start(tmp_path / "home", port=port)
    assert stop(tmp_path / "home") is None
    assert not os.path.exists(tmp_path / "home" / "finwatch-server.json")


def test_serve_runs_the_nightly_pipeline_from_one_process(server: Server, site: Path, tmp_path: Path) -> None:
    """``flows/pipeline.py --serve``: one process registers the deployment and executes its runs (no work pool)."""
    import signal

    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = {**os.environ, "PREFECT_API_URL": server.api_url}
    argv = [sys.executable, str(REPO / "flows" / "pipeline.py"), "--serve", "--store", str(site / "store"),
            "--runs", str(tmp_path / "runs"), "--models", str(site / "models"), "--budget", "2%"]  # fmt: skip
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(argv, cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    try:

        async def served(client: Any) -> Any:
            for _ in range(120):
                try:
                    return await client.read_deployment_by_name("finwatch-pipeline/finwatch-nightly-served")
                except Exception:  # not registered yet
                    await asyncio.sleep(1)
            return None

        deployment = _client_call(server, served)
        assert deployment is not None, (tmp_path / "serve.log").read_text()
        assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * *"]
        assert deployment.work_pool_name is None
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            run = run_deployment("finwatch-pipeline/finwatch-nightly-served", timeout=600)
        assert run.state.is_completed(), run.state.message
        (folder,) = (tmp_path / "runs").iterdir()
        assert pl.read_parquet(folder / "leads.parquet").height > 0
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
