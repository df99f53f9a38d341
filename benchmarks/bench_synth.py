"""Time and peak memory of `finwatch synth` at growing sizes (each size in its own process).

    python benchmarks/bench_synth.py [--sizes 1,2,5,10] [--keep]

Sizes are millions of transactions (about 20,000 accounts over 30 days per million). Every run writes all
export formats into a temporary folder, like a user would. Prints one row per size, then the time of the 1 M
run against its 20 s target and peak memory per million transactions (linear growth keeps it flat).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ACCOUNTS_PER_MILLION = 20_000
TARGET_SECONDS_1M = 20.0


def run(millions: float, out: Path, seed: int) -> dict[str, float]:
    accounts = int(ACCOUNTS_PER_MILLION * millions)
    cmd = [
        sys.executable,
        "-m",
        "finwatch",
        "synth",
        "--out",
        str(out),
        "--accounts",
        str(accounts),
        "--days",
        "30",
        "--seed",
        str(seed),
    ]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    if status != 0:
        sys.exit(f"synth failed at {millions} M: {proc.stderr.read().decode() if proc.stderr else ''}")
    manifest = json.loads((out / "world.json").read_text())
    size = sum(f["bytes"] for f in manifest["files"])
    return {
        "millions": millions,
        "accounts": accounts,
        "transactions": manifest["counts"]["transactions"],
        "seconds": seconds,
        "peak_gb": usage.ru_maxrss / 1e6,  # Linux reports kilobytes
        "output_gb": size / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10", help="comma-separated millions of transactions")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the generated worlds")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    rows = []
    try:
        print(
            f"{'size':>6} {'accounts':>9} {'transactions':>13} {'seconds':>8} {'peak GB':>8} {'GB/M txn':>8} "
            f"{'output GB':>9}"
        )
        for millions in sizes:
            row = run(millions, workdir / f"world-{millions:g}M", args.seed)
            rows.append(row)
            per_m = row["peak_gb"] / (row["transactions"] / 1e6)
            print(
                f"{millions:>5g}M {row['accounts']:>9,} {row['transactions']:>13,} {row['seconds']:>8.1f} "
                f"{row['peak_gb']:>8.2f} {per_m:>8.2f} {row['output_gb']:>9.2f}",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(workdir / f"world-{millions:g}M", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    one = next((r for r in rows if r["millions"] == 1), None)
    if one:
        verdict = "meets" if one["seconds"] <= TARGET_SECONDS_1M else "MISSES"
        print(f"1 M transactions in {one['seconds']:.1f} s ({verdict} the {TARGET_SECONDS_1M:.0f} s target)")
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        ratio = (last["peak_gb"] / first["peak_gb"]) / (last["transactions"] / first["transactions"])
        print(
            f"peak memory grows {ratio:.2f}x as fast as the data from {first['millions']:g} M to "
            f"{last['millions']:g} M (1.00 = linear; below 1 = sub-linear)"
        )


if __name__ == "__main__":
    main()
