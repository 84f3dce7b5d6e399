"""Simulated Keysight/Agilent N6705A DC Power Analyzer: a SCPI server on loopback TCP that
PyVISA (pyvisa-py) talks to exactly as to the real instrument's raw socket (port 5025).

    with SimN6705A() as sim:                    # port chosen by the OS
        sim.attach(1, board.bus, "N6781A")      # channel 1 supplies this board's SignalBus
        sim.wire_pin(1, board.bus)              # digital-port pin 1 <- the board's GPIO
        N6705A.open(sim.resource)               # "TCPIP0::127.0.0.1::<port>::SOCKET"

Sampling: the digitizer integrates; sample i covers [t0 + i*TINT, t0 + (i+1)*TINT) and is the
mean current over it (see acquisition.py). Current is the board's when the output is on, 0 when
off; voltage is the programmed value (minus I*drop_ohm). ``n6705a.yaml`` is a stateless
pyvisa-sim description for identity-level checks (backend "@sim").
"""

from harness.sim.n6705a.server import SimN6705A

__all__ = ["SimN6705A"]
