"""C source of the native block hook (compiled on first use by harness.sim.counter)."""
