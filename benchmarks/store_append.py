"""How much a crash-safe append costs: rows per second that ResultStore.add_measurement commits
(WAL + synchronous=FULL, one transaction each), with and without a raw trace per row.

Run: .venv/bin/python benchmarks/store_append.py [rows]"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.store import ResultStore


def bench(rows: int, with_trace: bool) -> float:
    with tempfile.TemporaryDirectory() as d, ResultStore(Path(d)) as s:
        s.upsert_config("m/c/uint8/b")
        wave = np.random.default_rng(0).normal(0.02, 1e-4, 4096)
        t0 = time.perf_counter()
        for rep in range(rows):
            p = s.write_trace("m/c/uint8/b", rep, {"current_a": wave}) if with_trace else None
            s.add_measurement("m/c/uint8/b", rep, latency_s=0.01, energy_j=1e-3, power_w=0.1, trace_path=p)
        return rows / (time.perf_counter() - t0)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    print(f"rows only:        {bench(n, False):8.0f} rows/s")
    print(f"rows + 4k trace:  {bench(n, True):8.0f} rows/s")
