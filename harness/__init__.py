"""Hardware-in-the-loop benchmarking harness for neural networks on Arm Cortex-M MCUs."""

__version__ = "0.1.0"
