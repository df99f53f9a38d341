"""``finwatch-server``: a Prefect server, a process work pool and a worker on this machine, and finwatch's deployments.

    finwatch-server start  [--home .prefect-server] [--port 4200] [--pool finwatch]
    finwatch-server deploy [--home .prefect-server] [--prefect-file prefect.yaml]
    finwatch-server status [--home .prefect-server]
    finwatch-server notify --webhook URL               # a JSON POST when a finwatch run fails or crashes
    finwatch-server stop   [--home .prefect-server]

``start`` runs ``prefect server start`` on 127.0.0.1 with its own ``PREFECT_HOME`` (its database, logs and the
process ids of what it started), waits until the API answers, creates the work pool (type ``process``) and starts a
worker polling it; ``deploy`` registers the deployments of ``prefect.yaml`` (run from the folder the flows run in);
``stop`` stops the worker and the server by the process ids ``start`` recorded (each started in its own process
group, so nothing else is touched). A flow run picked up by the worker runs in a process of its own, as the
scheduler would start it. Point other commands at the server with the ``PREFECT_API_URL`` that ``start`` prints.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from finwatch._io import atomic_write_text
from finwatch.exceptions import FinwatchError, user_message

__all__ = ["Server", "deploy", "main", "notify", "start", "status", "stop"]

STATE_FILE = "finwatch-server.json"
DEFAULT_HOME = Path(".prefect-server")
DEFAULT_POOL = "finwatch"


@dataclass(frozen=True)
class Server:
    """What ``start`` started: where the API answers and the process ids to stop."""

    home: str
    api_url: str
    pool: str
    server_pid: int
    worker_pid: int | None

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


def _environment(home: Path, api_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(home.resolve()), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": env.get("PREFECT_LOGGING_LEVEL", "WARNING")}  # fmt: skip
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie child of this process counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:  # noqa: S310 (loopback URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex((host, port)) != 0


def _spawn(command: list[str], env: dict[str, str], log: Path) -> int:
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter, fixed arguments)
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    return process.pid


def _state(home: Path) -> Server | None:
    path = home / STATE_FILE
    if not path.is_file():
        return None
    return Server(**json.loads(path.read_text(encoding="utf-8")))


def status(home: Path = DEFAULT_HOME) -> Server | None:
    """The server ``start`` recorded under ``home``, if its process is still running."""
    server = _state(home)
    return server if server is not None and _alive(server.server_pid) else None


def start(
    home: Path = DEFAULT_HOME,
    *,
    port: int = 4200,
    pool: str = DEFAULT_POOL,
    worker: bool = True,
    timeout: float = 180.0,
) -> Server:
    """Start a Prefect server on 127.0.0.1:``port``, create the process work pool ``pool`` and start its worker."""
    home.mkdir(parents=True, exist_ok=True)
    running = status(home)
    if running is not None:
        return running
    host = "127.0.0.1"
    if not _free(host, port):
        raise FinwatchError(f"port {port} on {host} is in use: choose another with --port")
    api_url = f"http://{host}:{port}/api"
    server_pid = _spawn(_prefect("server", "start", "--host", host, "--port", str(port)), _environment(home, None),
                        home / "server.log")  # fmt: skip
    server = Server(str(home.resolve()), api_url, pool, server_pid, None)
    atomic_write_text(home / STATE_FILE, json.dumps(asdict(server), indent=2) + "\n")
    deadline = time.monotonic() + timeout
    while not _healthy(api_url):
        if not _alive(server_pid):
            raise FinwatchError(f"the Prefect server stopped while starting: see {home / 'server.log'}")
        if time.monotonic() > deadline:
            stop(home)
            raise FinwatchError(f"the Prefect server did not answer within {timeout:.0f} s: see {home / 'server.log'}")
        time.sleep(0.5)
    env = _environment(home, api_url)
    created = subprocess.run(  # noqa: S603
        _prefect("--no-prompt", "work-pool", "create", pool, "--type", "process", "--overwrite"),
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if created.returncode != 0:
        stop(home)
        raise FinwatchError(
            f"could not create the work pool {pool!r}: {created.stdout.strip()} {created.stderr.strip()}"
        )
    worker_pid = None
    if worker:
        worker_pid = _spawn(
            _prefect("--no-prompt", "worker", "start", "--pool", pool, "--type", "process", "--name",
                     f"{pool}-{socket.gethostname()}", "--install-policy", "never"),
            env, home / "worker.log",
        )  # fmt: skip
    server = Server(str(home.resolve()), api_url, pool, server_pid, worker_pid)
    atomic_write_text(home / STATE_FILE, json.dumps(asdict(server), indent=2) + "\n")
    return server


def _terminate(pid: int | None, grace: float) -> None:
    """Stop the process group ``pid`` leads (``start`` began each process in a session of its own)."""
    if not _alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def stop(home: Path = DEFAULT_HOME, grace: float = 20.0) -> Server | None:
    """Stop the worker, then the server, that ``start`` recorded under ``home``; None when nothing was recorded."""
    server = _state(home)
    if server is None:
        return None
    _terminate(server.worker_pid, grace)
    _terminate(server.server_pid, grace)
    (home / STATE_FILE).unlink(missing_ok=True)
    return server


def deploy(home: Path = DEFAULT_HOME, prefect_file: Path = Path("prefect.yaml"), names: list[str] | None = None) -> str:
    """Register the deployments of ``prefect_file`` (all, or ``names``) with the server ``start`` recorded.

    Prefect runs ``prefect deploy`` in the file's folder: the flows' entrypoints are relative to it, and it becomes
    the folder the deployments' runs execute in (their relative paths, ``finwatch.toml``, ``models/``).
    """
    server = status(home)
    if server is None:
        raise FinwatchError(f"no Prefect server is running from {home}: start one with finwatch-server start")
    if not prefect_file.is_file():
        raise FinwatchError(f"{prefect_file}: no such file (run from the folder that holds prefect.yaml and flows/)")
    which = [a for n in names for a in ("--name", n)] if names else ["--all"]
    done = subprocess.run(  # noqa: S603
        _prefect("--no-prompt", "deploy", *which, "--prefect-file", prefect_file.name),
        env=_environment(home, server.api_url), cwd=prefect_file.resolve().parent, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        raise FinwatchError(f"prefect deploy failed: {lines[-1] if lines else 'no output'}")
    return done.stdout


def notify(home: Path, webhook: str, *, tag: str = "finwatch", name: str = "finwatch-failures") -> str:
    """Post to ``webhook`` whenever a run tagged ``tag`` (every deployment of prefect.yaml) fails or crashes.

    Creates (or replaces) a Custom Webhook notification block and an automation on the server ``start`` recorded;
    the posted JSON holds ``subject`` (deployment, run and state) and ``body`` (the run's one-line message).
    Returns the automation's id.
    """
    server = status(home)
    if server is None:
        raise FinwatchError(f"no Prefect server is running from {home}: start one with finwatch-server start")
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        block = CustomWebhookNotificationBlock(
            name=name, url=webhook, method="POST",
            json_data={"subject": "{{subject}}", "body": "{{body}}", "text": "{{subject}}: {{body}}"},
        )  # fmt: skip
        block_id: Any = block.save(name, overwrite=True)
        for old in client.read_automations_by_name(name):  # replaced, not doubled
            client.delete_automation(old.id)
        automation = AutomationCore(
            name=name,
            description=f"Notify {webhook} when a run tagged {tag!r} fails or crashes.",
            trigger=EventTrigger(
                expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                match_related={"prefect.resource.id": f"prefect.tag.{tag}"},
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[SendNotification(
                block_document_id=block_id,
                subject="finwatch: {{ flow_run.name }} of {{ deployment.name }} ended {{ flow_run.state.name }}",
                body="{{ flow_run.state.message }}",
            )],
        )  # fmt: skip
        return str(client.create_automation(automation))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finwatch-server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("action", choices=["start", "stop", "status", "deploy", "notify"])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="The server's own folder (.prefect-server).")
    parser.add_argument("--port", type=int, default=4200, help="Port on 127.0.0.1 (start; default 4200).")
    parser.add_argument("--pool", default=DEFAULT_POOL, help="Work pool name (start; default finwatch).")
    parser.add_argument("--no-worker", action="store_true", help="start: start no worker.")
    parser.add_argument("--prefect-file", type=Path, default=Path("prefect.yaml"), help="deploy: deployments file.")
    parser.add_argument("--name", action="append", dest="names", help="deploy: only this deployment (repeatable).")
    parser.add_argument("--webhook", help="notify: URL that receives a JSON POST when a finwatch run fails.")
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            server = start(args.home, port=args.port, pool=args.pool, worker=not args.no_worker)
            worker = f", worker pid {server.worker_pid}" if server.worker_pid else ", no worker"
            print(f"Prefect server at {server.ui_url} (pid {server.server_pid}{worker}), work pool {server.pool!r}")
            print(f"export PREFECT_API_URL={server.api_url}")
        elif args.action == "deploy":
            deploy(args.home, args.prefect_file, args.names)
            print(f"deployments of {args.prefect_file} registered with {_state(args.home).api_url}")  # type: ignore[union-attr]
        elif args.action == "notify":
            if not args.webhook:
                raise FinwatchError("notify needs --webhook URL")
            automation = notify(args.home, args.webhook)
            print(f"failed or crashed finwatch runs now post to {args.webhook} (automation {automation})")
        elif args.action == "status":
            running = status(args.home)
            if running is None:
                print(f"no Prefect server running from {args.home}")
                return 1
            worker = f"pid {running.worker_pid}" if _alive(running.worker_pid) else "not running"
            print(f"Prefect server at {running.ui_url} (pid {running.server_pid}), work pool {running.pool!r}, "
                  f"worker {worker}")  # fmt: skip
        else:
            stopped = stop(args.home)
            print("nothing to stop" if stopped is None else f"stopped the Prefect server and worker of {args.home}")
    except (FinwatchError, OSError) as exc:
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
