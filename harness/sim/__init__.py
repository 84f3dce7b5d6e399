"""The simulated rig: emulated Cortex-M boards, their pyOCD probe, and a simulated N6705A.

Public API (import the submodules; nothing is imported here so that ``harness.sim.signals``
stays light for the instrument side):
- ``harness.sim.board.SimBoard``: one emulated board (program, run, start/stop, halt/resume/reset)
- ``harness.sim.rig.SimRig``: several boards + UART endpoints + pyOCD servers + simulated N6705A
- ``harness.sim.registry``: the in-process board per name shared with the ``sim:`` pyOCD probe
- ``harness.sim.errors``: SimError, SimFault, SimTimeout, SimImageError
- ``harness.sim.cycles``: the per-core cycle cost models (estimates)
"""
