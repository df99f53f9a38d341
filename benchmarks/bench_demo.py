"""``finwatch demo`` end to end: wall time and peak memory, with the machine it ran on.

    python benchmarks/bench_demo.py [--repeat 1]

Runs ``finwatch demo --out <temporary folder>`` in a child process (the default world: generated, ingested,
trained, scored, reported) and prints the machine (cores, CPU model, memory, load average before the run), then the
wall seconds and peak resident memory of each run. This is the figure the README states for ``make demo``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

from _common import timed


def machine() -> str:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        model = names[0] if names else model
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory = f", {kib / 2**20:.0f} GiB"
    load = ", load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return f"{os.cpu_count()} cores, {model}{memory}, Python {platform.python_version()}{load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    finwatch = str(Path(sys.executable).parent / "finwatch")
    print(f"machine: {machine()}")
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            seconds, peak_gb, _out = timed([finwatch, "demo", "--out", str(Path(tmp) / "demo")])
        print(f"run {i + 1}: finwatch demo in {seconds:.1f} s, peak memory {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
