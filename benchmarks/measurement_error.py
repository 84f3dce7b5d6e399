"""Measurement error of the latency/energy chain against ground truth, across inference lengths
and sample intervals: a scripted board (known pulses and currents) on the simulated N6705A,
read over TCP by the real driver, exactly as `harness measure` does.

    .venv/bin/python benchmarks/measurement_error.py [--noise-a 1e-4] [--n 4] [--uniform-edges]

Prints, per (inference length, sample interval): the worst latency error of the analyzer alone
(pa-trigger: pin trigger + current step) in us and in samples, the worst latency error of the
reported value (cycle counter, exact here), and the worst relative error of gross and
baseline-subtracted energy (window: start located on the record, length = reported latency)."""

from __future__ import annotations

import argparse
import time

from harness.config.board import SupplySettings
from harness.instruments.measure import MeasureSettings, measure_inferences
from harness.instruments.n6705a import N6705A
from harness.instruments.timing import CycleCounterTiming, PaTriggerTiming
from harness.sim.n6705a import SimN6705A
from harness.sim.n6705a.pulse_board import PulseBoard

SUPPLY = SupplySettings(nominal_v=3.3, abs_max_v=3.6, ovp_v=3.5, current_limit_a=0.2)
WIDTHS_S = [0.1e-3, 0.3e-3, 1e-3, 3e-3, 10e-3, 30e-3]
INTERVALS_S = [10.24e-6, 20.48e-6, 40.96e-6, 81.92e-6]
PROFILE = [(0.3, 0.030), (0.4, 0.045), (0.3, 0.035)]  # mA-level phases like a CNN's layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noise-a", type=float, default=100e-6, help="RMS noise per sample (A)")
    ap.add_argument("--n", type=int, default=4, help="inferences per configuration")
    ap.add_argument("--uniform-edges", action="store_true", help="split edge samples in proportion to time")
    args = ap.parse_args()
    t_start = time.monotonic()
    print(f"noise {args.noise_a * 1e6:.0f} uA RMS, idle 10 mA, active 30-45 mA, 3.3 V, n={args.n}, "
          f"edge samples: {'uniform' if args.uniform_edges else 'edge-aware'}")
    print(f"{'width':>9} {'TINT':>9} {'pa |dt|':>10} {'pa/TINT':>8} {'rep |dt|':>9} {'|dE|/E':>9} {'|dEn|/En':>9}")
    with PulseBoard(profile=PROFILE, idle_a=0.010) as board, SimN6705A(noise_a=args.noise_a) as sim:
        sim.attach(1, board.bus, "N6781A").wire_pin(1, board.bus)
        with N6705A.open(sim.resource) as pa:
            pa.apply_supply(SUPPLY, settle_s=0)
            for width in WIDTHS_S:
                board.width_s = width
                for tint in INTERVALS_S:
                    settings = MeasureSettings(n=args.n, warmup=0, gap_us=3000, sample_interval_s=tint,
                                               edge_aware=not args.uniform_edges)
                    res = measure_inferences(pa, board, board.clock_hz,
                                             [PaTriggerTiming(), CycleCounterTiming(board.clock_hz)],
                                             settings, trigger_pin=1)
                    truth = board.truth[-args.n :]
                    dt = max(abs(r.latency_s - t.width_s) for r, t in zip(res, truth, strict=True))
                    dpa = max(abs(r.latency_by_source_s["pa-trigger"] - t.width_s)
                              for r, t in zip(res, truth, strict=True))
                    de = max(abs(r.energy_j / (3.3 * t.charge_c) - 1) for r, t in zip(res, truth, strict=True))
                    den = max(abs(r.energy_net_j / (3.3 * (t.charge_c - 0.010 * t.width_s)) - 1)
                              for r, t in zip(res, truth, strict=True))
                    tq = res[0].sample_interval_s
                    print(f"{width * 1e3:7.2f}ms {tq * 1e6:7.2f}us {dpa * 1e6:8.3f}us {dpa / tq:8.3f} "
                          f"{dt * 1e6:7.3f}us {de * 100:8.4f}% {den * 100:8.4f}%")
    print(f"({time.monotonic() - t_start:.1f} s)")


if __name__ == "__main__":
    main()
