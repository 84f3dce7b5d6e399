"""Driver process for tests/test_sim_flash_signals.py: what a campaign does while it flashes a
simulated board (SimRig running the board in its thread, the real pyOCD flasher through the
`sim:` probe, SIGTERM turned into SystemExit as the harness does), reflashing two images in
turn until a signal ends it. Exit codes: 130 after Ctrl-C, 143 after SIGTERM. With
``--leave-running`` the rig is not stopped on the way out (the process exit must cope)."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.config.board import load_board
from harness.flash import flasher_for
from harness.instruments.safety import terminate_as_exit
from harness.sim.rig import SimRig


def main(images: list[Path], stop_rig: bool) -> int:
    with terminate_as_exit():
        rig = SimRig(["sim-m4"], analyzer=False).start()
        try:
            flasher = flasher_for(load_board("sim-m4"), timeout_s=30)
            for i in range(1_000_000):
                print(f"flashing {i}", flush=True)
                flasher.program(images[i % len(images)])
        except KeyboardInterrupt:
            return 130
        finally:
            # --leave-running: the rig is left to the process exit, as when a second signal or an
            # error interrupts the campaign's cleanup before it stopped the rig.
            if stop_rig:
                rig.stop()
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main([Path(p) for p in args if p != "--leave-running"], stop_rig="--leave-running" not in args))
