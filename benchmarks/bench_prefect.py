"""What Prefect costs a flow run: a flow file in Prefect's ephemeral mode, the same flow on a server, the CLI.

    python benchmarks/bench_prefect.py [--repeat 2]

Each variant ingests the same six camt.053 statements (tests/fixtures/camt053) into a new store, in a process of
its own, so the differences are start-up and orchestration:
- ``finwatch ingest``: the command line, no Prefect;
- ``python flows/ingest.py`` with no ``PREFECT_API_URL``: Prefect starts a local API in the process (ephemeral);
- the same with ``PREFECT_API_URL`` pointing at a running server (``finwatch-server start``, stopped at the end);
- the ``finwatch-ingest`` flow as a deployment run: created through the API and executed by the worker.

Prints the wall seconds of each (best of ``--repeat``) and the overhead over the command line.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import timed

REPO = Path(__file__).resolve().parent.parent
FILES = sorted(str(p) for p in (REPO / "tests" / "fixtures" / "camt053").glob("*.xml"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _best(repeat: int, make: Any) -> float:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cmd, env = make(Path(tmp))
            times.append(timed(cmd, env=env)[0])
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    os.environ.pop("PREFECT_API_URL", None)  # the ephemeral variants start their own API
    finwatch = str(Path(sys.executable).parent / "finwatch")
    flow = [sys.executable, str(REPO / "flows" / "ingest.py")]
    home = Path(tempfile.mkdtemp(prefix="bench-prefect-"))

    def cli(t: Path) -> tuple[list[str], None]:
        return [finwatch, "ingest", *FILES, "--store", str(t / "s")], None

    def fresh(t: Path) -> tuple[list[str], dict[str, str]]:
        return [*flow, *FILES, "--store", str(t / "s")], {"PREFECT_HOME": str(t / "home")}

    def reused(t: Path) -> tuple[list[str], dict[str, str]]:
        return [*flow, *FILES, "--store", str(t / "s")], {"PREFECT_HOME": str(home / "ephemeral")}

    rows: list[tuple[str, float]] = [
        ("finwatch ingest (no Prefect)", _best(args.repeat, cli)),
        ("flows/ingest.py, ephemeral (fresh PREFECT_HOME)", _best(args.repeat, fresh)),
        ("flows/ingest.py, ephemeral (PREFECT_HOME reused)", _best(args.repeat, reused)),
    ]
    sys.path.insert(0, str(REPO / "src"))
    from finwatch.server import start, stop

    began = time.perf_counter()
    server = start(home / "server", port=_free_port())
    started = time.perf_counter() - began
    try:

        def on_server(t: Path) -> tuple[list[str], dict[str, str]]:
            return [*flow, *FILES, "--store", str(t / "s")], {"PREFECT_API_URL": server.api_url}

        rows.append(("flows/ingest.py, on a running server", _best(args.repeat, on_server)))
        rows.append(("deployment run through the API, executed by the worker", _deployment(server, args.repeat)))
    finally:
        stop(home / "server")
        shutil.rmtree(home, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}; server start-up (server, work pool, worker): {started:.1f} s")  # fmt: skip
    base = rows[0][1]
    width = max(len(name) for name, _ in rows)
    print(f"{'variant':<{width}}  {'seconds':>8}  {'overhead':>8}")
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds:8.1f}  {seconds - base:+8.1f}")


def _deployment(server: Any, repeat: int) -> float:
    """Register prefect.yaml's deployments with the server and time runs of finwatch-ingest created via the API."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from finwatch.server import deploy

    deploy(Path(server.home), REPO / "prefect.yaml", ["finwatch-ingest"])
    times = []
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                began = time.perf_counter()
                run: Any = run_deployment("finwatch-ingest/finwatch-ingest", timeout=600,
                                          parameters={"paths": FILES, "store": str(Path(tmp) / "s")})  # fmt: skip
                times.append(time.perf_counter() - began)
                if not run.state.is_completed():
                    sys.exit(f"deployment run ended {run.state}")
    return min(times)


if __name__ == "__main__":
    main()
