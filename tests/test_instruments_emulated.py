"""The whole chain on the emulated board: real firmware (fixture model) on the simulated rig,
measured through the DUT link and the simulated N6705A, against the board's own ground truth
(its GPIO edges and current waveform on the SignalBus)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")

BOARD = "sim-m4"


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from firmware_fixtures.fixture_model import fixture_sources

    from harness.build import build_firmware
    from harness.config import load_board

    root = tmp_path_factory.mktemp("fw")
    return build_firmware(fixture_sources(rounds=10), load_board(BOARD), root / BOARD, cache_dir=root / "cache").elf


def test_emulated_board_latency_and_energy_match_ground_truth(firmware: Path) -> None:
    from harness.config import load_board
    from harness.config.rig import DutSettings, RigConfig
    from harness.dut.link import DutLink
    from harness.flash import flasher_for
    from harness.instruments.measure import MeasureSettings, measure_inferences
    from harness.instruments.n6705a import N6705A
    from harness.instruments.timing import CycleCounterTiming, PaTriggerTiming
    from harness.sim.rig import SimRig

    board = load_board(BOARD)
    rig = RigConfig(name="t", duts=[DutSettings(board=BOARD, probe=f"sim:{BOARD}", analyzer_channel=1, trigger_pin=1)])
    n = 3
    with SimRig.from_rig(rig) as sim_rig:
        flasher_for(board, probe=f"sim:{BOARD}").program(firmware)
        bus = sim_rig[BOARD].bus
        with N6705A.open(sim_rig.visa_resource) as pa, DutLink(sim_rig[BOARD].serial_url) as link:
            pa.apply_supply(board.supply, settle_s=0)
            link.resync()
            link.load_input(bytes(range(256)) * 3 + bytes(16))
            results = measure_inferences(
                pa, link, board.clock_hz, [PaTriggerTiming(), CycleCounterTiming(board.clock_hz)],
                MeasureSettings(n=n, gap_us=5000, sample_interval_s=20.48e-6), trigger_pin=1)
        edges = bus.edges(0.0)
        rises = [e.time_s for e in edges if e.level == 1][-n:]
        falls = [e.time_s for e in edges if e.level == 0][-n:]
        supply_v = board.supply.nominal_v
        for r, t0, t1 in zip(results, rises, falls, strict=True):
            true_latency = t1 - t0
            true_energy = supply_v * float(bus.mean_current(np.array([t0]), np.array([t1]))[0]) * true_latency
            assert true_latency > 1e-3  # the criterion is for inferences of at least 1 ms
            assert abs(r.latency_s - true_latency) <= r.sample_interval_s
            assert abs(r.energy_j / true_energy - 1) <= 0.01
            assert r.baseline_power_w == pytest.approx(supply_v * board.sim.idle_current_a, rel=0.01)
            assert r.cross_check_ok is True
