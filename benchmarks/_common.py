"""Helpers shared by the benchmark scripts: timing a child process and a cached AMLworld-layout world."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def timed(cmd: list[str], env: dict[str, str] | None = None, timeout: float | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (GB) and stdout of one child process (stdout "timeout" when it had to be stopped)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env={**os.environ, **(env or {})})
        deadline = float("inf") if timeout is None else began + timeout
        while True:  # wait4 (not poll) so that the child's resource usage is ours to read
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                _pid, _status, usage = os.wait4(proc.pid, 0)
                return time.perf_counter() - began, usage.ru_maxrss / 1e6, "timeout"
            time.sleep(0.2)
        seconds = time.perf_counter() - began
        out.seek(0)
        err.seek(0)
        if status != 0:
            sys.exit(f"failed: {' '.join(cmd[:3])}…\n{err.read()[-2000:]}")
        return seconds, usage.ru_maxrss / 1e6, out.read().strip()


def amlworld(accounts: int, seed: int = 3) -> Path:
    """A synthetic world exported in the AMLworld layout only (built once, kept in benchmarks/out/)."""
    folder = OUT / f"amlworld-{accounts}"
    if not (folder / "world.json").is_file():
        command = [sys.executable, "-m", "finwatch", "synth", "--out", str(folder), "--accounts", str(accounts),
                   "--seed", str(seed), "--exports", "amlworld"]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return folder
