"""User-facing errors of the compression stage (shown as one line, no traceback)."""

from __future__ import annotations

from harness.errors import HarnessError


class CompressError(HarnessError):
    """A compression request cannot be carried out as given."""


class UnknownModelError(CompressError):
    """The model name is not in the zoo and is not an ONNX file."""


class UnsupportedModelError(CompressError):
    """The model uses operators the code generator cannot handle."""


class DatasetError(CompressError):
    """The dataset is missing or malformed; the message says how to get it."""


class PruningError(CompressError):
    """Bad pruning settings (rate outside [0, 1), unknown layer, budget out of reach)."""
