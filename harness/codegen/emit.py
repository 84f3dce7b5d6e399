"""Write the C99 sources of one model: model.h (fixed API), model.c (descriptors + model_run),
model_weights.c (const arrays, aligned, placed in flash) and a private copy of the runtime.

The runtime is copied next to the model so that an output folder builds on its own and stays
reproducible even if the templates change later.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.codegen import footprint
from harness.codegen import sparse as sp
from harness.codegen.lower import (
    ACT_DTYPE,
    FLOAT_MAX,
    AddStep,
    AliasStep,
    ClampStep,
    ConvStep,
    Lowered,
    PoolStep,
    lower,
    numel,
)
from harness.codegen.planner import Plan, plan
from harness.ir import Artifact

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "firmware_templates" / "runtime"
RUNTIME_HEADERS = ("nnrt.h", "nnrt_fixed.h")
C_TYPES = {"float32": "float", "uint8": "uint8_t", "int8": "int8_t", "uint16": "uint16_t", "uint32": "uint32_t",
           "int32": "int32_t", "int16": "int16_t"}


@dataclass
class GeneratedModel:
    sources: list[Path]
    include_dirs: list[Path]
    defines: dict[str, str]
    arena_bytes: int
    weights_bytes: int
    macs: int
    layers: list[dict[str, Any]]
    model_hash: str
    numeric: str
    input_bytes: int = 0
    output_bytes: int = 0
    plan_strategy: str = ""
    naive_arena_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def c_ident(name: str) -> str:
    s = "".join(ch if ch.isalnum() else "_" for ch in name)
    return s if s and not s[0].isdigit() else f"t_{s}"


def _fmt(v: Any, is_float: bool) -> str:
    return f"{float(v):.9e}f" if is_float else str(int(v))


def c_array(name: str, arr: np.ndarray) -> str:
    """A const, 4-byte aligned array definition (values in C syntax, endianness by the compiler)."""
    flat = np.ascontiguousarray(arr).reshape(-1)
    ctype = C_TYPES[str(flat.dtype)]
    is_float = flat.dtype == np.float32
    items = [_fmt(v, is_float) for v in flat.tolist()] if is_float else [str(v) for v in flat.tolist()]
    per = 8 if is_float else 24
    lines = [", ".join(items[i : i + per]) for i in range(0, len(items), per)] or ["0"]
    body = ",\n    ".join(lines)
    return f"const {ctype} {name}[{max(len(items), 1)}] __attribute__((aligned(4))) = {{\n    {body}\n}};\n"


def dsp_layout(w: np.ndarray, groups: int, zero: int) -> np.ndarray:
    """Weights in NNRT_W_DSP order (nnrt.h): rows padded to a multiple of 4 with the zero point,
    row pairs of a group interleaved per 4-byte block, each block as (0, 2, 1, 3) so SXTB16 yields
    (w0, w1) and (w2, w3)."""
    o, k = w.shape
    kp = (k + 3) // 4 * 4
    padded = np.full((o, kp), zero, dtype=w.dtype)
    padded[:, :k] = w
    blocks = padded.reshape(o, kp // 4, 4)[:, :, [0, 2, 1, 3]]
    og = o // groups
    out = np.empty((o, kp), dtype=w.dtype)
    for g in range(groups):
        for i in range(0, og, 2):
            r = g * og + i
            if i + 1 < og:
                out[r : r + 2] = np.stack([blocks[r], blocks[r + 1]], axis=1).reshape(2, kp)
            else:
                out[r] = blocks[r].reshape(kp)
    return out


class _Emitter:
    def __init__(self, lw: Lowered, pl: Plan, dsp: bool, sparse: str) -> None:
        self.lw, self.pl, self.dsp, self.sparse = lw, pl, dsp, sparse
        self.numeric = lw.graph.numeric
        self.quant = self.numeric != "float32"
        self.weights: list[str] = []  # definitions for model_weights.c
        self.externs: list[str] = []
        self.descs: list[str] = []
        self.calls: list[str] = []
        self.weights_bytes = 0

    def ident(self, node: str) -> str:
        """Unique C identifier of a node: step index + sanitized name (never clashes with the API)."""
        idx = [st.name for st in self.lw.steps].index(node)
        return f"nn{idx}_{c_ident(node)}"

    def const(self, name: str, arr: np.ndarray) -> str:
        cname = name
        self.weights.append(c_array(cname, arr))
        flat = np.asarray(arr).reshape(-1)
        self.externs.append(f"extern const {C_TYPES[str(flat.dtype)]} {cname}[];")
        self.weights_bytes += sp.array_bytes(flat)
        return cname

    def ptr(self, tensor: str, ctype: str = "void") -> str:
        off = self.pl.offsets[tensor]
        if ctype == "void":
            return f"(arena + {off})"
        return f"(({ctype} *)(void *)(arena + {off}))"

    def conv(self, st: ConvStep) -> None:
        ident = self.ident(st.name)
        store = footprint.storage(st, self.sparse, self.dsp)
        fields: dict[str, Any] = {
            "in_c": st.in_shape[0], "in_h": st.in_shape[1], "in_w": st.in_shape[2],
            "out_c": st.out_shape[0], "out_h": st.out_shape[1], "out_w": st.out_shape[2],
            "k_h": st.kernel[0], "k_w": st.kernel[1], "s_h": st.stride[0], "s_w": st.stride[1],
            "p_h": st.padding[0], "p_w": st.padding[1], "d_h": st.dilation[0], "d_w": st.dilation[1],
            "groups": st.groups,
        }
        if store == "csr":
            csr = sp.to_csr(st.weight, st.w_zp)
            fields["wfmt"] = "NNRT_W_CSR16" if csr.row.dtype == np.uint16 else "NNRT_W_CSR32"
            fields["w"] = self.const(f"{self.ident(st.name)}_val", csr.values)
            fields["col"] = self.const(f"{self.ident(st.name)}_col", csr.col)
            fields["row"] = self.const(f"{self.ident(st.name)}_row", csr.row)
        elif store == "dsp":
            fields["wfmt"] = "NNRT_W_DSP"
            fields["w"] = self.const(f"{self.ident(st.name)}_w", dsp_layout(st.weight, st.groups, st.w_zp))
        else:
            fields["wfmt"] = "NNRT_W_DENSE"
            fields["w"] = self.const(f"{self.ident(st.name)}_w", st.weight)
        fields["bias"] = self.const(f"{self.ident(st.name)}_b", st.bias) if np.any(st.bias) else "0"
        if self.quant:
            fields.update(
                act_signed=int(ACT_DTYPE[self.numeric] == "int8"), w_signed=int(st.weight.dtype == np.int8),
                in_zp=st.in_zp, w_zp=st.w_zp, out_zp=st.out_zp, act_min=int(st.act_min), act_max=int(st.act_max),
                rq="NNRT_RQ_POW2" if st.rq == "pow2" else "NNRT_RQ_FIXED", per_channel=int(st.mult.size > 1),
                shift=self.const(f"{self.ident(st.name)}_shift", st.shift.astype(np.int32)),
            )
            if st.rq == "fixed":
                fields["mult"] = self.const(f"{self.ident(st.name)}_mult", st.mult.astype(np.int32))
            self._desc("nnrt_conv_q_t", ident, fields)
            scratch = self.ptr(self.pl.scratch[st.name], "int16_t")
            self.calls.append(f"nnrt_conv_q(&{ident}, {self.ptr(st.inp)}, {self.ptr(st.out)}, {scratch});")
        else:
            fields.update(act_min=_fmt(st.act_min, True), act_max=_fmt(st.act_max, True))
            self._desc("nnrt_conv_f_t", ident, fields)
            scratch = self.ptr(self.pl.scratch[st.name], "float")
            self.calls.append(
                f"nnrt_conv_f(&{ident}, {self.ptr(st.inp, 'const float')}, {self.ptr(st.out, 'float')}, {scratch});"
            )

    def _desc(self, ctype: str, ident: str, fields: dict[str, Any]) -> None:
        body = ",\n    ".join(f".{k} = {v}" for k, v in fields.items())
        self.descs.append(f"static const {ctype} {ident} = {{\n    {body}\n}};\n")

    def pool(self, st: PoolStep) -> None:
        ident = self.ident(st.name)
        fields = {
            "c": st.in_shape[0], "in_h": st.in_shape[1], "in_w": st.in_shape[2], "out_h": st.out_shape[1],
            "out_w": st.out_shape[2], "k_h": st.kernel[0], "k_w": st.kernel[1], "s_h": st.stride[0],
            "s_w": st.stride[1], "p_h": st.padding[0], "p_w": st.padding[1],
        }
        self._desc("nnrt_pool_t", ident, fields)
        kind = "maxpool" if st.op == "maxpool2d" else "avgpool"
        if self.quant:
            signed = int(ACT_DTYPE[self.numeric] == "int8")
            self.calls.append(f"nnrt_{kind}_q(&{ident}, {signed}, {self.ptr(st.inp)}, {self.ptr(st.out)});")
        else:
            self.calls.append(
                f"nnrt_{kind}_f(&{ident}, {self.ptr(st.inp, 'const float')}, {self.ptr(st.out, 'float')});"
            )

    def add(self, st: AddStep) -> None:
        a, b = st.inp
        if not self.quant:
            self.calls.append(
                f"nnrt_add_f({st.n}, {self.ptr(a, 'const float')}, {self.ptr(b, 'const float')}, "
                f"{self.ptr(st.out, 'float')}, {_fmt(st.act_min, True)}, {_fmt(st.act_max, True)});"
            )
            return
        ident = self.ident(st.name)
        fields = {
            "n": st.n, "act_signed": int(ACT_DTYPE[self.numeric] == "int8"),
            "rq": "NNRT_RQ_POW2" if st.rq == "pow2" else "NNRT_RQ_FIXED",
            "a_zp": st.a_zp, "b_zp": st.b_zp, "out_zp": st.out_zp, "a_mult": st.a_mult, "a_shift": st.a_shift,
            "b_mult": st.b_mult, "b_shift": st.b_shift, "out_mult": st.out_mult, "out_shift": st.out_shift,
            "act_min": int(st.act_min), "act_max": int(st.act_max),
        }
        self._desc("nnrt_add_q_t", ident, fields)
        self.calls.append(f"nnrt_add_q(&{ident}, {self.ptr(a)}, {self.ptr(b)}, {self.ptr(st.out)});")

    def clamp(self, st: ClampStep) -> None:
        if self.quant:
            signed = int(ACT_DTYPE[self.numeric] == "int8")
            self.calls.append(
                f"nnrt_clamp_q({st.n}, {signed}, {self.ptr(st.inp)}, {self.ptr(st.out)}, "
                f"{int(st.act_min)}, {int(st.act_max)});"
            )
        else:
            lo, hi = _fmt(max(st.act_min, -FLOAT_MAX), True), _fmt(min(st.act_max, FLOAT_MAX), True)
            self.calls.append(
                f"nnrt_clamp_f({st.n}, {self.ptr(st.inp, 'const float')}, {self.ptr(st.out, 'float')}, {lo}, {hi});"
            )

    def run(self) -> None:
        for st in self.lw.steps:
            if isinstance(st, ConvStep):
                self.conv(st)
            elif isinstance(st, PoolStep):
                self.pool(st)
            elif isinstance(st, AddStep):
                self.add(st)
            elif isinstance(st, ClampStep):
                self.clamp(st)
            elif isinstance(st, AliasStep):
                self.calls.append(f"/* {st.name}: flatten is a no-op (aliases its input) */")


def _model_h(art: Artifact, lw: Lowered, pl: Plan) -> str:
    g = lw.graph
    item = np.dtype(ACT_DTYPE[g.numeric]).itemsize
    n_in, n_out = numel(g.tensors[lw.input].shape), numel(g.tensors[lw.output].shape)
    name = g.name.replace("\\", "_").replace('"', "_")
    return f"""/* Generated by harness.codegen from model {name!r}; do not edit. */
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>

#define MODEL_NAME "{name}"
#define MODEL_HASH "{art.content_hash()}"
#define MODEL_NUMERIC "{g.numeric}"
#define MODEL_INPUT_BYTES {n_in * item}
#define MODEL_OUTPUT_BYTES {n_out * item}
#define MODEL_OUTPUT_COUNT {n_out}
#define MODEL_ARENA_BYTES {max(pl.arena_bytes, 4)}

#ifdef __cplusplus
extern "C" {{
#endif

/* Write MODEL_INPUT_BYTES here (harness.codegen.io.encode_input layout); it persists across runs. */
uint8_t *model_input(void);
/* MODEL_OUTPUT_BYTES of output (harness.codegen.io.raw_output layout), valid after model_run(). */
const uint8_t *model_output(void);
/* One inference: no dynamic allocation, no stdio. */
void model_run(void);

#ifdef __cplusplus
}}
#endif
#endif /* MODEL_H */
"""


def _model_c(em: _Emitter, lw: Lowered, pl: Plan) -> str:
    calls = "\n    ".join(em.calls)
    return f"""/* Generated by harness.codegen; do not edit. Activations CHW in one static arena. */
#include <stdint.h>
#include "model.h"
#include "nnrt.h"

{chr(10).join(em.externs)}

/* Planned arena ({pl.strategy} first-fit; naive sum {pl.naive_bytes} bytes). */
static uint8_t arena[MODEL_ARENA_BYTES] __attribute__((aligned(8)));

{chr(10).join(em.descs)}
uint8_t *model_input(void)
{{
    return arena + {pl.offsets[lw.input]};
}}

const uint8_t *model_output(void)
{{
    return arena + {pl.offsets[lw.output]};
}}

void model_run(void)
{{
    {calls}
}}
"""


def generate(
    artifact: Artifact, out_dir: Path, *, dsp: bool = False, sparse: str = "auto", backend: str = "portable"
) -> GeneratedModel:
    """Emit model.h/model.c/model_weights.c plus the runtime into ``out_dir``.

    dsp: store dense quantized weights in the SMLAD layout and define NNRT_USE_DSP=1 (fast on
    Cortex-M4/M7, still exact but slow on cores without DSP). Conv layers with >= 2 output pixels
    then get a larger arena scratch (offset table, accumulators and, if they pad, a padded band of
    their input rows; see firmware_templates/runtime/README.md). sparse: "auto" (CSR per layer only
    when smaller than dense), "dense", or "csr" (wherever K fits 16-bit indices). backend:
    "portable" (our runtime) or "cmsis-nn" (int8 only; calls the CMSIS-NN checkout named by the
    CMSIS_NN_PATH environment variable, see docs/cmsis-nn.md; ``dsp`` is then chosen by -mcpu).
    Raises ValueError for graphs the generator cannot run (unsupported ops, missing QuantParams,
    pools whose output quantization differs from the input's, softmax not last, ...).
    """
    if backend == "cmsis-nn":
        from harness.codegen.cmsis_nn import cmsis_nn_path_from_env, generate_cmsis_nn

        return generate_cmsis_nn(artifact, out_dir, cmsis_nn_path=cmsis_nn_path_from_env(), sparse=sparse)
    if backend != "portable":
        raise ValueError(f"unknown code-generator backend {backend!r} (allowed: portable, cmsis-nn)")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    lw = lower(artifact.graph)
    pl = plan(lw, dsp=dsp, sparse=sparse)
    em = _Emitter(lw, pl, dsp, sparse)
    em.run()
    (out_dir / "model.h").write_text(_model_h(artifact, lw, pl))
    (out_dir / "model.c").write_text(_model_c(em, lw, pl))
    (out_dir / "model_weights.c").write_text(
        "/* Generated by harness.codegen: constant tensors (flash). */\n#include <stdint.h>\n\n"
        + "\n".join(em.weights)
    )
    rt = out_dir / "nnrt"
    rt.mkdir(exist_ok=True)
    rt_sources = ["nnrt_float.c"] if lw.graph.numeric == "float32" else ["nnrt_conv_q.c", "nnrt_ops_q.c"]
    for f in (*RUNTIME_HEADERS, *rt_sources):
        shutil.copyfile(RUNTIME_DIR / f, rt / f)
    g = lw.graph
    item = np.dtype(ACT_DTYPE[g.numeric]).itemsize
    layers = footprint.layer_table(lw, sparse=sparse, dsp=dsp)
    return GeneratedModel(
        sources=[out_dir / "model.c", out_dir / "model_weights.c", *(rt / f for f in rt_sources)],
        include_dirs=[out_dir, rt],
        defines={"NNRT_USE_DSP": "1"} if dsp else {},
        arena_bytes=max(pl.arena_bytes, 4),
        weights_bytes=em.weights_bytes,
        macs=sum(r["macs"] for r in layers),
        layers=layers,
        model_hash=artifact.content_hash(),
        numeric=g.numeric,
        input_bytes=numel(g.tensors[lw.input].shape) * item,
        output_bytes=numel(g.tensors[lw.output].shape) * item,
        plan_strategy=pl.strategy,
        naive_arena_bytes=pl.naive_bytes,
    )
