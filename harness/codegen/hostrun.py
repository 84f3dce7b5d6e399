"""Compile a generated model for the host with gcc and run it on stored-dtype inputs.

Lets tests (and the compression engineer, for accuracy of the exact C) check the generated code
without a board: the same C sources, only the compiler differs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from harness.codegen.emit import RUNTIME_DIR, GeneratedModel
from harness.codegen.lower import ACT_DTYPE

WARN_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]


def build_host(gen: GeneratedModel, exe: Path, cc: str = "gcc", opt: str = "-O2") -> Path:
    """Link the model, its runtime and testing/host_main.c into ``exe``."""
    cmd = [cc, opt, *WARN_FLAGS, "-o", str(exe)]
    cmd += [f"-I{d}" for d in gen.include_dirs]
    cmd += [f"-D{k}={v}" for k, v in gen.defines.items()]
    cmd += [str(s) for s in gen.sources] + [str(RUNTIME_DIR / "testing" / "host_main.c")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"host build failed:\n{' '.join(cmd)}\n{res.stderr}")
    return exe


def run_host(exe: Path, numeric: str, x_q: np.ndarray, out_count: int) -> np.ndarray:
    """Feed (N, ...) stored-dtype samples; returns (N, out_count) raw outputs."""
    dtype = np.dtype(ACT_DTYPE[numeric]).newbyteorder("<")
    data = np.ascontiguousarray(x_q, dtype=dtype).tobytes()
    res = subprocess.run([str(exe)], input=data, capture_output=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"{exe} exited with {res.returncode}")
    return np.frombuffer(res.stdout, dtype=dtype).reshape(x_q.shape[0], out_count)
