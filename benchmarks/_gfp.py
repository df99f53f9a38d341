"""IBM Snap ML's Graph Feature Preprocessor (GFP) as the peer: its own virtual environment, edges in, features out.

GFP is never a dependency of finwatch: it is installed with pip into benchmarks/out/gfp-venv on first use.
"""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

from _common import OUT

WINDOW_SECONDS = 7 * 86_400

#: run inside the GFP environment: edges (id, source, target, timestamp, amount; sorted by time) → features
GFP_CODE = """
import sys, numpy as np
from snapml import GraphFeaturePreprocessor
edges = np.load(sys.argv[1])
window, threads, simple_cycles, out_file = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
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
features = np.vstack(out)
if out_file != "-":
    np.save(out_file, features)
print(features.shape[0])
"""

#: run with finwatch's interpreter: the store's transactions as GFP edges, in (ts, txn_id) order
EDGES_CODE = """
import sys, numpy as np, polars as pl
from pathlib import Path
from finwatch.store import Store
txns = Store(Path(sys.argv[1])).scan("transactions").select("txn_id", "ts", "src_account", "dst_account",
    "amount_base").filter(pl.col("src_account").is_not_null() & pl.col("dst_account").is_not_null()) \\
    .sort(["ts", "txn_id"]).collect()
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
if len(sys.argv) > 3:
    txns.select("txn_id").write_parquet(sys.argv[3])
print(edges.shape[0])
"""


def gfp_python() -> Path:
    env = OUT / "gfp-venv"
    python = env / "bin" / "python"
    if not python.exists():
        venv.create(env, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "snapml"], check=True)
    return python
