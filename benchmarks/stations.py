"""Campaign wall time with one station at a time vs two stations at once, on the same campaign
(tests/data/two-station-campaign.toml: 2 compressions x 2 boards x n repetitions) on the
simulated rig with two boards (instruments/sim-two.toml, one simulated N6705A mainframe).

Compression and builds are cached by a first, untimed run, so both timed runs do the same rig
work: flash through pyOCD, output check and measurements over serial, acquisition on the
analyzer. A third run lifts the serialisation (what one monitor per board, e.g. a PPK2
each, would allow; the simulated mainframe accepts it, a real N6705A would not). Prints the wall
times and their ratios, with what bounds it: the measurement windows
on one mainframe are serialised (their sum is a floor for the parallel run), and the two
emulated cores, the SCPI server and the host share this machine's cores.

Run: .venv/bin/python benchmarks/stations.py [repetitions]"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from harness.campaign import arbiter
from harness.campaign.runner import CampaignRunner
from harness.config import load_campaign, load_rig
from harness.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "tests" / "data" / "two-station-campaign.toml"


def run(run_dir: Path, cache: Path, parallel: bool, reps: int) -> tuple[float, CampaignRunner]:
    campaign = load_campaign(CAMPAIGN).model_copy(update={"repetitions": reps})
    runner = CampaignRunner(campaign, load_rig(campaign.rig), run_dir, cache_dir=cache, parallel_stations=parallel)
    with ResultStore(run_dir) as store:
        store.start_run(campaign.name, CAMPAIGN.read_text())
        t0 = time.perf_counter()
        summary = runner.run(store)
        wall = time.perf_counter() - t0
        store.end_run("completed")
    if summary.measured != summary.total:
        raise SystemExit(f"{summary.total - summary.measured} configuration(s) not measured: see {run_dir}")
    return wall, runner


def windows_s(runner: CampaignRunner) -> float:
    lock = next(iter(runner._bench.stations.values())).monitor_lock.shared
    return sum(end - start for _, start, end in lock.windows)


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    with tempfile.TemporaryDirectory(prefix="stations-bench-") as d:
        base = Path(d)
        os.environ.setdefault("HARNESS_SIM_STATE", str(base / "sim-state"))
        cache = base / "cache"
        print("warming the compression and build caches (untimed) ...", flush=True)
        run(base / "warm", cache, True, 1)
        one, r1 = run(base / "one", cache, False, reps)
        two, r2 = run(base / "two", cache, True, reps)
        w1, w2 = windows_s(r1), windows_s(r2)
        waited = next(iter(r2._bench.stations.values())).monitor_lock.shared.waited_s
        # what one monitor per board (a PPK2 or Joulescope each) would allow: windows not serialised
        arbiter.SHARED_TRIGGER_KINDS = frozenset()
        free, _ = run(base / "free", cache, True, reps)
    cores = os.cpu_count()
    print(f"\ncampaign: 4 configurations x n={reps}, rig sim-two (2 emulated boards, 1 simulated N6705A), "
          f"{cores} cores")
    print(f"{'stations':>16} {'wall (s)':>10} {'analyzer windows (s)':>22}")
    print(f"{'1 at once':>16} {one:10.1f} {w1:22.1f}")
    print(f"{'2 at once':>16} {two:10.1f} {w2:22.1f}")
    print(f"{'2, own monitors':>16} {free:10.1f} {'(not serialised)':>22}")
    print(f"speed-up 1 -> 2 stations: {one / two:.2f}x on one N6705A mainframe, {one / free:.2f}x if each board "
          "had its own monitor (ideal 2x)")
    print(f"bounded by: the mainframe's measurement windows, serialised ({w2:.1f} s, a floor for the parallel run; "
          f"stations waited {waited:.1f} s for it), and {cores} cores shared by two emulated cores, the "
          "simulated N6705A and the host (flash, serial, SQLite)")


if __name__ == "__main__":
    main()
