"""Ingest speed against the plainest possible conversion of the same file.

    python benchmarks/bench_ingest.py [--accounts 32000] [--repeat 3]

Builds an AMLworld-layout CSV of at least 1.5 M rows with `finwatch synth` (kept in benchmarks/out/ for reuse),
then, in the same run and each in a fresh process, times `finwatch ingest FILE --store S` into an empty store and
`polars.scan_csv(FILE).sink_parquet(OUT)`. Prints both (best of --repeat), their ratio (target <= 1.3) and the
peak memory of each process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from _common import amlworld, timed

TARGET_RATIO = 1.3
MIN_ROWS = 1_500_000


def world(accounts: int) -> Path:
    return amlworld(accounts) / "amlworld" / "transactions.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=32_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    csv = world(args.accounts)
    rows = sum(1 for _ in csv.open("rb")) - 1
    if rows < MIN_ROWS:
        sys.exit(f"{csv} has {rows:,} rows; raise --accounts to reach {MIN_ROWS:,}")
    print(f"input: {csv} ({rows:,} rows, {csv.stat().st_size / 1e6:.0f} MB)")
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    polars_code = "import sys, polars as pl; pl.scan_csv(sys.argv[1]).sink_parquet(sys.argv[2])"
    best: dict[str, tuple[float, float]] = {}
    try:
        for i in range(args.repeat):
            store = work / f"store-{i}"
            ours = timed([sys.executable, "-m", "finwatch", "ingest", str(csv), "--store", str(store)])[:2]
            theirs = timed([sys.executable, "-c", polars_code, str(csv), str(work / f"plain-{i}.parquet")])[:2]
            for name, value in (("finwatch ingest", ours), ("polars scan_csv.sink_parquet", theirs)):
                if name not in best or value[0] < best[name][0]:
                    best[name] = value
            manifest = json.loads(next((store / "manifests").glob("*.json")).read_text())
            assert manifest["inputs"][0]["rows_read"] == rows, "rows read must equal the file's rows"
            shutil.rmtree(store)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, (seconds, peak) in best.items():
        print(f"{name:<30} {seconds:7.2f} s   peak {peak:5.2f} GB")
    ratio = best["finwatch ingest"][0] / best["polars scan_csv.sink_parquet"][0]
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(f"ratio {ratio:.2f} ({verdict} the {TARGET_RATIO} target)")


if __name__ == "__main__":
    main()
