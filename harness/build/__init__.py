"""Build stage: generate C for a model, cross-compile the benchmark firmware for a board, report
its flash/RAM footprint, and cache the result by content."""

from harness.build.firmware import BuildResult, FirmwareTooLarge, build_firmware
from harness.build.model import ModelSources

__all__ = ["BuildResult", "FirmwareTooLarge", "ModelSources", "build_firmware"]
