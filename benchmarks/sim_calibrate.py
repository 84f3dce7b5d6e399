"""Simulated vs published figures (the table `harness sim calibrate` writes to
docs/sim-accuracy.md), printed side by side without touching the docs.

    .venv/bin/python benchmarks/sim_calibrate.py [--quick]

--quick: CoreMark on the Cortex-M4 and the seed's LeNet-Light only (seconds instead of ~2 min).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.sim import calibrate as cal


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one core and one seed model")
    args = ap.parse_args()
    kw = {"cores": ["cortex-m4"], "seed_models": ["lenet-light"], "paper": False} if args.quick else {}
    rows, fits, seconds = cal.timed(lambda: cal.run_calibration(progress=lambda m: print("...", m), **kw))
    print(cal.format_table(rows))
    if fits:
        print(cal.format_fits(fits))
    missed = [r for r in rows if r.ok is False]
    print(f"{len(missed)} of {sum(r.ok is not None for r in rows)} targeted rows miss their target ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
