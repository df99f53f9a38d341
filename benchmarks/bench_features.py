"""Feature computation against IBM Snap ML's Graph Feature Preprocessor (GFP) on the same edges.

    python benchmarks/bench_features.py [--accounts 32000] [--scale 1,2] [--no-gfp]

For each scale, builds an AMLworld-layout synthetic world (about 1.6 M transactions at 32,000 accounts; kept in
benchmarks/out/ for reuse), ingests it into a store, then times in fresh processes, each with 2 threads:

- finwatch account features as of the last day (all families, cycles with their paths, audits);
- finwatch transaction features (both sides' trailing windows, relays, cycle closing);
- GFP on the same edges (id, source, target, timestamp, amount; sorted by time; batches of 2048) with fan,
  degree, scatter-gather, temporal-cycle and length-constrained simple-cycle patterns. GFP runs in its own
  virtual environment (benchmarks/out/gfp-venv, `pip install snapml`): it is never a dependency of finwatch.

Prints wall time and peak memory of each, the ratio to GFP (target <= 0.5) and, with two scales, how time grows
(target: 2x data <= 2.2x time).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import OUT, amlworld, timed
from _gfp import EDGES_CODE, GFP_CODE, WINDOW_SECONDS, gfp_python

THREADS = 2

FEATURES_CODE = """
import sys, datetime as dt, duckdb
from pathlib import Path
from finwatch.config import FeatureConfig
from finwatch.features import build_account_features, build_transaction_features
from finwatch.store import Store
level, store, as_of = sys.argv[1], Path(sys.argv[2]), dt.datetime.fromisoformat(sys.argv[3])
build = build_account_features if level == "account" else build_transaction_features
result = build(Store(store), as_of, FeatureConfig())
rows = result.accounts.height if level == "account" else result.transactions.height
print(rows, result.cycles.height)
"""


def world_store(accounts: int) -> tuple[Path, str]:
    folder = amlworld(accounts)
    csv = folder / "amlworld" / "transactions.csv"
    store = OUT / f"store-{accounts}"
    if not (store / "store.json").is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "finwatch",
                "ingest",
                str(csv),
                "--store",
                str(store),
                "--fx",
                str(folder / "fx_rates.csv"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    config = json.loads((folder / "world.json").read_text())["config"]
    import datetime as dt

    end = dt.date.fromisoformat(config["start"]) + dt.timedelta(days=config["days"])
    return store, f"{end.isoformat()}T00:00:00+00:00"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=32_000)
    parser.add_argument("--scale", default="1", help="comma-separated multiples of --accounts, e.g. 1,2")
    parser.add_argument("--no-gfp", action="store_true")
    parser.add_argument("--gfp-timeout", type=float, default=1800.0, help="stop GFP after this many seconds")
    parser.add_argument(
        "--gfp-without-simple-cycles",
        action="store_true",
        help="leave out GFP's length-constrained simple cycles (by far its slowest pattern)",
    )
    args = parser.parse_args()
    # 2 threads everywhere: DuckDB and Polars default to the machine's 2 cores; GFP is told num_threads
    env = {"POLARS_MAX_THREADS": str(THREADS), "OMP_NUM_THREADS": str(THREADS)}
    results: dict[float, dict[str, float]] = {}
    for scale in [float(s) for s in args.scale.split(",")]:
        accounts = int(args.accounts * scale)
        store, as_of = world_store(accounts)
        edges_file = OUT / f"edges-{accounts}.npy"
        if not edges_file.exists():
            subprocess.run([sys.executable, "-c", EDGES_CODE, str(store), str(edges_file)], check=True)
        row: dict[str, float] = {}
        for level in ("account", "transaction"):
            seconds, peak, out = timed([sys.executable, "-c", FEATURES_CODE, level, str(store), as_of], env)
            row[level] = seconds
            print(
                f"{scale:g}x  finwatch {level:<11} features {seconds:7.1f} s  peak {peak:5.2f} GB  ({out})", flush=True
            )
        if not args.no_gfp:
            simple = "0" if args.gfp_without_simple_cycles else "1"
            patterns = "fan, degree, scatter-gather, temporal" + (" and simple" if simple == "1" else "") + " cycles"
            command = [
                str(gfp_python()),
                "-c",
                GFP_CODE,
                str(edges_file),
                str(WINDOW_SECONDS),
                str(THREADS),
                simple,
                "-",
            ]
            seconds, peak, out = timed(command, env, timeout=args.gfp_timeout)
            row["gfp"] = seconds
            done = out != "timeout"
            print(
                f"{scale:g}x  GFP ({patterns}) {'' if done else '> '}{seconds:7.1f} s  peak {peak:5.2f} GB  "
                f"({out + ' edges' if done else 'stopped: did not finish'})",
                flush=True,
            )
            for level in ("account", "transaction"):
                ratio = row[level] / seconds
                verdict = "meets" if ratio <= 0.5 else "MISSES"
                print(f"{scale:g}x  {level} / GFP = {'' if done else '< '}{ratio:.3f} ({verdict} the 0.5 target)")
        results[scale] = row
    scales = sorted(results)
    if len(scales) > 1:
        small, large = scales[0], scales[-1]
        for level in ("account", "transaction"):
            growth = results[large][level] / results[small][level]
            print(f"{level}: {large / small:g}x data took {growth:.2f}x time (target <= 2.2x)")


if __name__ == "__main__":
    main()
