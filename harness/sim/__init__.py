"""The simulated rig: emulated Cortex-M boards, their pyOCD probe, and a simulated N6705A."""
