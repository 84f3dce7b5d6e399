"""The hand-written fixture model (model_fixture.c) as ModelSources, and its output computed
independently in Python so firmware results can be checked."""

from __future__ import annotations

from pathlib import Path

from harness.build import ModelSources

HERE = Path(__file__).resolve().parent
INPUT_BYTES = 784
OUTPUT_BYTES = 10
MODEL_HASH = "f1f7a4e000000001"


def fixture_sources(rounds: int = 1, extra_sources: list[Path] | None = None) -> ModelSources:
    return ModelSources(
        sources=[HERE / "model_fixture.c", *(extra_sources or [])],
        include_dirs=[HERE],
        defines={"FIXTURE_ROUNDS": rounds},
        model_hash=MODEL_HASH,
        numeric="uint8",
        arena_bytes=1024,
        weights_bytes=INPUT_BYTES,
    )


def fixture_output(inp: bytes, rounds: int = 1) -> bytes:
    """out[k] = ((R - 1 + 128 + sum_i in[i] * W[(i + 31 k) mod 784]) >> 8) & 0xFF, W[j] = (37 j + 11) & 0xFF."""
    assert len(inp) == INPUT_BYTES
    w = [(j * 37 + 11) & 0xFF for j in range(INPUT_BYTES)]
    out = []
    for k in range(OUTPUT_BYTES):
        acc = rounds - 1 + 128 + sum(inp[i] * w[(i + 31 * k) % INPUT_BYTES] for i in range(INPUT_BYTES))
        out.append((acc >> 8) & 0xFF)
    return bytes(out)
