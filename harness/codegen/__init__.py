"""Code generation: IR artifact -> C99 model + runtime, numpy reference executor, memory planner.

Public API:
  generate(artifact, out_dir, *, dsp=False, sparse="auto", backend="portable") -> GeneratedModel
  estimate(graph, sparse="auto", dsp=False) -> {"weights_bytes", "arena_bytes", "macs"}
  harness.codegen.reference.run(graph, x_float) / run_raw(graph, x_stored)   (ground truth)
  harness.codegen.io.encode_input / raw_output / decode_output              (host <-> device bytes)
The integer arithmetic every numeric mode follows is specified in harness/codegen/reference.py.
"""

from harness.codegen.emit import GeneratedModel, generate
from harness.codegen.planner import estimate

__all__ = ["GeneratedModel", "estimate", "generate"]
