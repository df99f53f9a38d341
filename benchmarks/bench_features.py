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
import venv
from pathlib import Path

from _common import OUT, amlworld, timed

THREADS = 2
WINDOW_SECONDS = 7 * 86_400

FEATURES_CODE = """
import sys, datetime as dt, duckdb
from pathlib import Path
from finwatch.features import build_account_features, build_transaction_features
level, store, as_of = sys.argv[1], Path(sys.argv[2]), dt.datetime.fromisoformat(sys.argv[3])
build = build_account_features if level == "account" else build_transaction_features
result = build(store, as_of)
rows = result.accounts.height if level == "account" else result.transactions.height
print(rows, result.cycles.height)
"""

EDGES_CODE = """
import sys, numpy as np, polars as pl
from pathlib import Path
from finwatch.store import Store
txns = Store(Path(sys.argv[1])).scan("transactions").select("ts", "src_account", "dst_account", "amount_base") \\
    .filter(pl.col("src_account").is_not_null() & pl.col("dst_account").is_not_null()).sort("ts").collect()
ids = pl.concat([txns["src_account"], txns["dst_account"]]).unique().sort()
index = {v: i for i, v in enumerate(ids.to_list())}
edges = np.column_stack([
    np.arange(txns.height, dtype=np.float64),
    np.array([index[v] for v in txns["src_account"].to_list()], dtype=np.float64),
    np.array([index[v] for v in txns["dst_account"].to_list()], dtype=np.float64),
    (txns["ts"].dt.epoch("s")).to_numpy().astype(np.float64),
    txns["amount_base"].to_numpy(),
])
np.save(sys.argv[2], edges)
print(edges.shape[0])
"""

GFP_CODE = """
import sys, numpy as np
from snapml import GraphFeaturePreprocessor
edges = np.load(sys.argv[1])
window, threads, simple_cycles = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
gfp = GraphFeaturePreprocessor()
params = {"num_threads": threads, "time_window": window, "vertex_stats": True, "vertex_stats_cols": [4],
          "fan": True, "fan_tw": window, "fan_bins": [2, 3, 4, 5, 10, 20],
          "degree": True, "degree_tw": window, "degree_bins": [2, 3, 4, 5, 10, 20],
          "scatter-gather": True, "scatter-gather_tw": window, "scatter-gather_bins": [2, 3, 4, 5, 10],
          "temp-cycle": True, "temp-cycle_tw": window, "temp-cycle_bins": [2, 3, 4, 5, 6],
          "lc-cycle": simple_cycles, "lc-cycle_tw": window, "lc-cycle_len": 6, "lc-cycle_bins": [2, 3, 4, 5, 6]}
gfp.set_params(params)
out = []
for start in range(0, len(edges), 2048):
    out.append(gfp.transform(edges[start:start + 2048]))
print(sum(len(o) for o in out))
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


def gfp_python() -> Path:
    env = OUT / "gfp-venv"
    python = env / "bin" / "python"
    if not python.exists():
        venv.create(env, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "snapml"], check=True)
    return python


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
            command = [str(gfp_python()), "-c", GFP_CODE, str(edges_file), str(WINDOW_SECONDS), str(THREADS), simple]
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
