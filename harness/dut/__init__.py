"""Host side of the benchmark protocol (docs/protocol.md): talk to the firmware over a serial
port, a TCP socket (simulated boards, QEMU) or any pyserial URL."""

from harness.dut.errors import DutChecksumError, DutError, DutFault, DutProtocolError, DutTimeout
from harness.dut.link import DutLink
from harness.dut.protocol import DutInfo, InferResult

__all__ = ["DutChecksumError", "DutError", "DutFault", "DutInfo", "DutLink", "DutProtocolError", "DutTimeout",
           "InferResult"]
