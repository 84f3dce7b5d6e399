"""Is a campaign's model ``arch`` something the compress stage can build? Checked when the
campaign is loaded, so a typo fails `harness validate`, not `harness run` after training."""

from __future__ import annotations

from pathlib import Path


def check_arch(arch: str) -> str:
    if arch.lower().endswith(".onnx"):
        p = Path(arch)
        if not p.is_file():
            raise ValueError(f"ONNX file {arch!r} not found (relative paths are taken from the working directory)")
        return arch
    from harness.compress.models import MODELS  # the zoo itself: no second list to drift

    if arch not in MODELS:
        raise ValueError(f"unknown model arch {arch!r}; known: {', '.join(MODELS)} (or a path to an .onnx file)")
    return arch
