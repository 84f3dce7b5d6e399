"""Optional CMSIS-NN backend: emit C that calls the s8 kernels of a user-supplied CMSIS-NN checkout.

Only the ``int8`` numeric mode is supported: it already follows the CMSIS-NN / TFLM convention
(see reference.py), so the kernels reproduce :func:`harness.codegen.reference.run_raw` bit-exactly
as long as CMSIS-NN uses its default double-rounding requantization (never define
``CMSIS_NN_USE_SINGLE_ROUNDING``; the generated code refuses to compile with it). No CMSIS-NN code
is copied: ``sources`` are the generated model plus one small wrapper per needed CMSIS-NN file
(``out_dir/cmsis_nn/src/<name>.c``, which ``#include``s ``cmsis_nn_path/Source/.../<name>.c`` with
memcpy/memset mapped to compiler builtins, see :func:`write_wrappers`); ``include_dirs`` contain
``cmsis_nn_path/Include``; ``extra["cmsis_nn_sources"]`` lists the CMSIS-NN files themselves.

Layout. CMSIS-NN runs NHWC activations and OHWI filters (depthwise: 1HWO), so the generator
transposes weights at generation time and ``model_run`` converts the CHW input to HWC (and a
spatial output back to CHW) with the loops of ``firmware_templates/cmsis_nn/cmsis_nn_glue.h``;
``model_input()``/``model_output()`` keep the portable backend's CHW contract (harness.codegen.io).
A flatten of an HWC tensor is still a no-op: the following linear layer gets its weight columns
permuted from CHW to HWC order instead.

Kernels: conv2d -> arm_convolve_wrapper_s8 (grouped convs included), depthwise (groups == C_in)
-> arm_depthwise_conv_wrapper_s8, linear -> arm_fully_connected_per_channel_s8, pools ->
arm_max_pool_s8 / arm_avgpool_s8, add -> arm_elementwise_add_s8; unfused relu/relu6 are a clamp in
the glue header; a final softmax stays on the host (as in the portable backend). Weights are always
dense (CSR is a portable-runtime format).

Scratch: every kernel's ``cmsis_nn_context`` buffer is planned in the arena for the lifetime of its
step. Its size is the maximum of the ``*_get_buffer_size`` formulas of the generic and DSP builds of
CMSIS-NN (replicated on the host in :func:`scratch_bytes`), so one generated folder is safe on any
Cortex-M0/M0+/M3/M4/M7/M33 build; ``mve=True`` adds the Helium (M55/M85) formulas, otherwise an
MVE build stops with #error. Tests check the bound against the library's own functions.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.codegen.emit import GeneratedModel, c_array, c_ident
from harness.codegen.lower import (
    AddStep,
    AliasStep,
    ClampStep,
    ConvStep,
    Lowered,
    PoolStep,
    lower,
    numel,
)
from harness.ir import Artifact

GLUE_DIR = Path(__file__).resolve().parents[2] / "firmware_templates" / "cmsis_nn"
GLUE_HEADER = "cmsis_nn_glue.h"
ALIGN = 4
ADD_LEFT_SHIFT = 20
CH_IN_BLOCK_MVE = 124  # arm_nnsupportfunctions.h
DW_ONE_IN_CH_THRESHOLD = 1  # CONVERT_DW_CONV_WITH_ONE_INPUT_CH_AND_OUTPUT_CH_ABOVE_THRESHOLD (smallest value)
ENV_VAR = "CMSIS_NN_PATH"

_DEF_RE = re.compile(r"^(?!static\b)[A-Za-z_][\w \t\*]*?\b(arm_\w+)\s*\(", re.M)
_CALL_RE = re.compile(r"\b(arm_\w+)\s*\(")


def cmsis_nn_path_from_env() -> Path:
    """The checkout named by $CMSIS_NN_PATH (ValueError when unset or not a CMSIS-NN tree)."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        raise ValueError(f"the cmsis-nn backend needs ${ENV_VAR} pointing at a CMSIS-NN checkout")
    return check_cmsis_nn_path(Path(raw))


def check_cmsis_nn_path(path: Path) -> Path:
    path = Path(path).expanduser().resolve()
    if not (path / "Include" / "arm_nnfunctions.h").is_file() or not (path / "Source").is_dir():
        raise ValueError(f"{path} is not a CMSIS-NN checkout (no Include/arm_nnfunctions.h or Source/)")
    return path


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


# ----------------------------------------------------------------------------- scratch sizes


def convolve_s8_scratch(in_c: int, kernel: tuple[int, int], mve: bool = False) -> int:
    """arm_convolve_s8_get_buffer_size (uses the input channels, also for grouped convs)."""
    k = kernel[0] * kernel[1] * in_c
    generic = 2 * ((k + 3) // 4 * 4) * 2  # two int16 im2col columns, aligned to 4
    return max(generic, 4 * ((k + 15) // 16) * 16) if mve else generic


def conv_scratch_bytes(
    in_hwc: tuple[int, int, int],
    kernel: tuple[int, int],
    kernel_ch: int,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    out_w: int,
    mve: bool = False,
) -> int:
    """Upper bound of arm_convolve_wrapper_s8_get_buffer_size: generic and DSP builds (+ MVE if ``mve``)."""
    h, w, c = in_hwc
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    conv_generic = convolve_s8_scratch(c, kernel, False)
    conv_mve = convolve_s8_scratch(c, kernel, mve)
    if ph == 0 and pw == 0 and kh == 1 and kw == 1 and dh == 1 and dw == 1 and c == kernel_ch:
        # 1x1: only the fast (unit stride) DSP kernel has a buffer, and only with armclang
        return 2 * c * 2 if (sh == 1 and sw == 1) else 0
    if h == 1 and dw == 1 and kh == 1 and (sw * c) % 4 == 0 and c == kernel_ch and mve:  # 1 x n on MVE
        total_pad = (out_w - 1) * sw + kw - w
        asym = total_pad % 2
        right = max(1, (pw + asym + sw - 1) // sw) if pw + asym != 0 else 0
        left = max(1, (pw + sw - 1) // sw) if pw != 0 else 0
        no_pad = max(out_w - (right + left), 0)
        if right + no_pad + left != out_w:
            return max(conv_generic, conv_mve)
        pad_left = pw * c
        pad_right = right * c if asym else pad_left
        n_left = kw * c
        return max(conv_generic, n_left + pad_left, n_left - c + pad_right)
    return max(conv_generic, conv_mve)


def dw_scratch_bytes(
    in_hwc: tuple[int, int, int],
    kernel: tuple[int, int],
    out_c: int,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    out_w: int,
    mve: bool = False,
) -> int:
    """Upper bound of arm_depthwise_conv_wrapper_s8_get_buffer_size: generic, DSP (+ MVE if ``mve``)."""
    _, _, c = in_hwc
    (kh, kw), (ph, pw), (dh, dw) = kernel, padding, dilation
    size = 0
    if c == out_c and dh == 1 and dw == 1:
        if not (kh == 3 and kw == 3 and ph <= 1 and pw <= 1):
            size = c * kh * kw * 2  # DSP arm_depthwise_conv_s8_opt
        if mve:
            size = max(size, 4 * CH_IN_BLOCK_MVE * kh * kw)  # MVE arm_depthwise_conv_s8_opt
    if mve and c == 1 and out_c > DW_ONE_IN_CH_THRESHOLD:  # MVE: converted to a regular convolution
        conv = conv_scratch_bytes(in_hwc, kernel, 1, stride, padding, dilation, out_w, mve=True)
        size = max(size, conv + out_c * kh * kw)
    return size


def bypass_1_x_n(st: ConvStep) -> bool:
    """True when arm_convolve_wrapper_s8 would pick arm_convolve_1_x_n_s8 although its Helium
    version rejects the padding (it needs TFLite SAME-style padding: pad_w * 2 + odd remainder ==
    total padding; PyTorch's floor mode can leave the right edge shorter). Such layers call
    arm_convolve_s8 directly, which is what the non-Helium 1 x n kernel does anyway."""
    c, h, w = st.in_shape
    kh, kw = st.kernel
    sw, (ph, pw), (dh, dw) = st.stride[1], st.padding, st.dilation
    if st.op != "conv2d" or _is_depthwise(st) or st.groups != 1:
        return False
    if ph == 0 and pw == 0 and kh == 1 and kw == 1 and dh == 1 and dw == 1:
        return False  # 1x1 kernels come first in the wrapper
    if not (h == 1 and dw == 1 and kh == 1 and (sw * c) % 4 == 0):
        return False
    total_pad = (st.out_shape[2] - 1) * sw + kw - w
    return pw * 2 + total_pad % 2 != total_pad


def scratch_bytes(st: ConvStep | PoolStep, depthwise: bool = False, mve: bool = False) -> int:
    """cmsis_nn_context buffer of one step (0: none) for generic and DSP cores (+ MVE if ``mve``)."""
    if isinstance(st, PoolStep):
        return 4 * st.in_shape[0] if st.op == "avgpool2d" else 0  # DSP avgpool: int32 per channel
    if st.op == "linear":
        return 4 * st.out_shape[0] if mve else 0  # MVE only: kernel sums (arm_vector_sum_s8)
    c, h, w = st.in_shape
    if bypass_1_x_n(st):  # arm_convolve_s8 called directly
        return convolve_s8_scratch(c, st.kernel, mve)
    if depthwise:
        return dw_scratch_bytes(
            (h, w, c), st.kernel, st.out_shape[0], st.stride, st.padding, st.dilation, st.out_shape[2], mve
        )
    return conv_scratch_bytes(
        (h, w, c), st.kernel, c // st.groups, st.stride, st.padding, st.dilation, st.out_shape[2], mve
    )


# ----------------------------------------------------------------------------- sources


def _function_index(root: Path) -> tuple[dict[str, Path], dict[Path, set[str]]]:
    defs: dict[str, Path] = {}
    calls: dict[Path, set[str]] = {}
    for src in sorted((root / "Source").rglob("*.c")):
        text = src.read_text(errors="replace")
        for name in _DEF_RE.findall(text):
            defs.setdefault(name, src)
        calls[src] = set(_CALL_RE.findall(text))
    return defs, calls


def required_sources(cmsis_nn_path: Path, functions: set[str]) -> list[Path]:
    """The CMSIS-NN .c files defining ``functions`` and, transitively, every arm_* function they call
    (all build variants: the DSP/MVE branches are scanned too; unused code is dropped by the linker)."""
    defs, calls = _function_index(cmsis_nn_path)
    missing = sorted(f for f in functions if f not in defs)
    if missing:
        raise ValueError(f"{cmsis_nn_path} does not define {', '.join(missing)} (CMSIS-NN too old?)")
    todo, files = list(functions), set()
    seen: set[str] = set()
    while todo:
        fn = todo.pop()
        if fn in seen or fn not in defs:
            continue
        seen.add(fn)
        src = defs[fn]
        if src not in files:
            files.add(src)
            todo.extend(calls[src] - seen)
    return sorted(files)


def write_wrappers(lib_sources: list[Path], folder: Path) -> list[Path]:
    """One translation unit per CMSIS-NN source that #includes it (by absolute path) with memcpy and
    memset mapped to the compiler builtins.

    The firmware is built with -ffreestanding, which implies -fno-builtin: CMSIS-NN's unaligned
    4-byte loads (``memcpy(&val, p, 4)`` in arm_nnsupportfunctions.h) would become library calls
    and the kernels 3-5x slower on Cortex-M4. ``__builtin_memcpy`` is expanded inline whatever the
    flags. The wrapper records the source's sha256 so a changed checkout changes the build digest.
    """
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    out = []
    for src in lib_sources:
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        dst = folder / src.name
        if dst.exists():  # same file name in two CMSIS-NN folders
            dst = folder / f"{src.parent.name}_{src.name}"
        dst.write_text(
            f"/* Generated by harness.codegen (CMSIS-NN backend): builds {src.name} of the CMSIS-NN checkout\n"
            f" * with memcpy/memset as compiler builtins (see harness/codegen/cmsis_nn.py write_wrappers).\n"
            f" * sha256 {digest} */\n"
            "#include <string.h>\n"
            "#define memcpy(dst_, src_, n_) __builtin_memcpy((dst_), (src_), (n_))\n"
            "#define memset(dst_, c_, n_) __builtin_memset((dst_), (c_), (n_))\n"
            f'#include "{src.as_posix()}"\n'
        )
        out.append(dst)
    return out


# ----------------------------------------------------------------------------- planning


@dataclass
class _Buffers:
    sizes: dict[str, int]
    life: dict[str, list[int]]
    root: dict[str, str]

    def add(self, name: str, size: int, start: int, end: int) -> None:
        self.sizes[name] = size
        self.life[name] = [start, end]
        self.root[name] = name

    def use(self, tensor: str, at: int) -> None:
        r = self.root[tensor]
        self.life[r][1] = max(self.life[r][1], at)

    def place(self) -> tuple[dict[str, int], int]:
        order = sorted(self.sizes, key=lambda b: (-self.sizes[b], self.life[b][0], b))
        placed: dict[str, int] = {}
        for b in order:
            s0, e0 = self.life[b]
            busy = sorted(
                (placed[o], placed[o] + self.sizes[o])
                for o in placed
                if self.life[o][0] <= e0 and s0 <= self.life[o][1]
            )
            off = 0
            for lo, hi in busy:
                if off + self.sizes[b] <= lo:
                    break
                off = max(off, _align(hi))
            placed[b] = off
        total = max((placed[b] + self.sizes[b] for b in placed), default=0)
        return {t: placed[r] for t, r in self.root.items()}, _align(max(total, 4))


# ----------------------------------------------------------------------------- emitter


def _hwc_shape(shape: list[int] | tuple[int, ...]) -> tuple[int, int, int] | None:
    """(C, H, W) when a 3-D tensor's HWC memory differs from CHW order, else None."""
    if len(shape) == 3 and shape[0] > 1 and shape[1] * shape[2] > 1:
        return (int(shape[0]), int(shape[1]), int(shape[2]))
    return None


def _is_depthwise(st: ConvStep) -> bool:
    return st.op == "conv2d" and st.groups > 1 and st.groups == st.in_shape[0]


class _Emitter:
    def __init__(self, lw: Lowered, mve: bool) -> None:
        self.lw = lw
        self.mve = mve
        self.g = lw.graph
        self.weights: list[str] = []
        self.externs: list[str] = []
        self.descs: list[str] = []
        self.calls: list[str] = []
        self.functions: set[str] = set()
        self.weights_bytes = 0
        self.scratch: dict[str, int] = {}
        # tensor -> (C, H, W) when its bytes are HWC of that shape but the IR expects CHW order
        self.perm: dict[str, tuple[int, int, int] | None] = {}
        self.notes: list[str] = []
        self.kernel: dict[str, str] = {}  # step -> CMSIS-NN function (or glue)

    def ident(self, node: str) -> str:
        idx = [st.name for st in self.lw.steps].index(node)
        return f"cm{idx}_{c_ident(node)}"

    def const(self, name: str, arr: np.ndarray) -> str:
        flat = np.ascontiguousarray(arr).reshape(-1)
        self.weights.append(c_array(name, flat))
        ctype = {"int8": "int8_t", "int32": "int32_t"}[str(flat.dtype)]
        self.externs.append(f"extern const {ctype} {name}[];")
        self.weights_bytes += flat.nbytes
        return name

    def desc(self, ctype: str, name: str, body: str) -> str:
        self.descs.append(f"static const {ctype} {name} = {body};")
        return name

    def perm_of(self, tensor: str) -> tuple[int, int, int] | None:
        if tensor not in self.perm:
            self.perm[tensor] = _hwc_shape(self.g.tensors[tensor].shape)
        return self.perm[tensor]

    @staticmethod
    def dims(n: int, h: int, w: int, c: int) -> str:
        return f"{{ {n}, {h}, {w}, {c} }}"

    def _quant(self, st: ConvStep, ident: str) -> tuple[str, str]:
        o = st.out_shape[0]
        mult = np.broadcast_to(st.mult.astype(np.int32), (o,))
        shift = np.broadcast_to(st.shift.astype(np.int32), (o,))
        if np.any(shift > 0):
            self.notes.append(
                f"{st.name}: positive requantization shift; CMSIS-NN does not saturate acc << shift "
                "(the reference does), results can differ only if that overflows int32"
            )
        m = self.const(f"{ident}_mult", mult)
        s = self.const(f"{ident}_shift", shift)
        q = self.desc(
            "cmsis_nn_per_channel_quant_params", f"{ident}_q", f"{{ (int32_t *){m}, (int32_t *){s} }}"
        )
        b = self.const(f"{ident}_bias", st.bias.astype(np.int32))
        return q, b

    def conv(self, st: ConvStep) -> None:
        ident = self.ident(st.name)
        if self.g.tensors[st.inp].dtype != "int8":
            raise ValueError(f"node {st.name!r}: input must be int8")
        c, h, w = st.in_shape
        o, oh, ow = st.out_shape
        act = f"{{ {int(st.act_min)}, {int(st.act_max)} }}"
        if st.op == "linear":
            wt = st.weight
            src = self.perm_of(st.inp)
            if src is not None:  # input bytes are HWC of src: permute the weight columns
                sc, shh, sww = src
                wt = wt.reshape(o, sc, shh, sww).transpose(0, 2, 3, 1).reshape(o, -1)
            k = wt.shape[1]
            wname = self.const(f"{ident}_w", wt)
            q, b = self._quant(st, ident)
            params = self.desc(
                "cmsis_nn_fc_params", f"{ident}_p", f"{{ {-st.in_zp}, 0, {st.out_zp}, {act} }}"
            )
            self.scratch[st.name] = scratch_bytes(st, mve=self.mve)
            ctx = f"{ident}_ctx"
            self.calls.append(
                "#if defined(ARM_MATH_MVEI)\n"
                f"    arm_vector_sum_s8((int32_t *){ctx}.buf, {k}, {o}, {wname}, {-st.in_zp}, 0, {b});\n"
                "#endif"
            )
            self.functions.update({"arm_vector_sum_s8", "arm_fully_connected_per_channel_s8"})
            self.kernel[st.name] = "arm_fully_connected_per_channel_s8"
            call = (
                f"arm_fully_connected_per_channel_s8(&{ctx}, &{params}, &{q}, &{ident}_in, {{IN}}, "
                f"&{ident}_f, {wname}, &{ident}_bd, {b}, &{ident}_out, {{OUT}})"
            )
            self._dims(ident, self.dims(1, 1, 1, k), self.dims(k, 1, 1, o), self.dims(1, 1, 1, o), o)
            self._call(st, ident, ctx, call)
            self.perm[st.out] = None
            return
        if len(self.g.tensors[st.inp].shape) != 3 and self.perm_of(st.inp) is not None:
            raise ValueError(f"node {st.name!r}: conv2d on a flattened tensor is not supported")
        kh, kw = st.kernel
        cg = c // st.groups
        depthwise = _is_depthwise(st)
        w4 = st.weight.reshape(o, cg, kh, kw)
        wt = w4.reshape(o, kh, kw).transpose(1, 2, 0) if depthwise else w4.transpose(0, 2, 3, 1)
        wname = self.const(f"{ident}_w", wt)
        q, b = self._quant(st, ident)
        tiles = (
            f"{{ {st.stride[1]}, {st.stride[0]} }}, {{ {st.padding[1]}, {st.padding[0]} }}, "
            f"{{ {st.dilation[1]}, {st.dilation[0]} }}, {act}"
        )
        self.scratch[st.name] = scratch_bytes(st, depthwise, self.mve)
        ctx = f"{ident}_ctx"
        if depthwise:
            params = self.desc(
                "cmsis_nn_dw_conv_params", f"{ident}_p", f"{{ {-st.in_zp}, {st.out_zp}, {o // c}, {tiles} }}"
            )
            fdims = self.dims(1, kh, kw, o)
            fn = "arm_depthwise_conv_wrapper_s8"
        else:
            params = self.desc(
                "cmsis_nn_conv_params", f"{ident}_p", f"{{ {-st.in_zp}, {st.out_zp}, {tiles} }}"
            )
            fdims = self.dims(o, kh, kw, cg)
            fn = "arm_convolve_s8" if bypass_1_x_n(st) else "arm_convolve_wrapper_s8"
        self.functions.add(fn)
        self.kernel[st.name] = fn
        self._dims(ident, self.dims(1, h, w, c), fdims, self.dims(1, oh, ow, o), o)
        upscale = "0, " if fn == "arm_convolve_s8" else ""  # upscale_dims: none
        call = (
            f"{fn}(&{ctx}, &{params}, &{q}, &{ident}_in, {{IN}}, &{ident}_f, {wname}, &{ident}_bd, {b}, "
            f"{upscale}&{ident}_out, {{OUT}})"
        )
        self._call(st, ident, ctx, call)

    def _dims(self, ident: str, d_in: str, d_f: str, d_out: str, bias_c: int) -> None:
        self.desc("cmsis_nn_dims", f"{ident}_in", d_in)
        self.desc("cmsis_nn_dims", f"{ident}_f", d_f)
        self.desc("cmsis_nn_dims", f"{ident}_out", d_out)
        if bias_c:
            self.desc("cmsis_nn_dims", f"{ident}_bd", self.dims(1, 1, 1, bias_c))

    def _call(self, st: ConvStep | PoolStep, ident: str, ctx: str, call: str) -> None:
        # the context is filled in once the arena is planned (placeholder {CTX:<step>})
        self.descs.append(f"static const cmsis_nn_context {ctx} = {{CTX:{st.name}}};")
        self.calls.append(
            f'CMSIS_NN_GLUE_CALL("{ident}", '
            + call.replace("{IN}", f"{{PTR:{st.inp}}}").replace("{OUT}", f"{{PTR:{st.out}}}")
            + ");"
        )

    def pool(self, st: PoolStep) -> None:
        ident = self.ident(st.name)
        if self.perm_of(st.inp) is None and len(self.g.tensors[st.inp].shape) != 3:
            raise ValueError(f"node {st.name!r}: pooling needs a (C, H, W) input")
        c, h, w = st.in_shape
        _, oh, ow = st.out_shape
        kh, kw = st.kernel
        params = self.desc(
            "cmsis_nn_pool_params",
            f"{ident}_p",
            f"{{ {{ {st.stride[1]}, {st.stride[0]} }}, {{ {st.padding[1]}, {st.padding[0]} }}, {{ -128, 127 }} }}",
        )
        fn = "arm_max_pool_s8" if st.op == "maxpool2d" else "arm_avgpool_s8"
        self.functions.add(fn)
        self.kernel[st.name] = fn
        self._dims(ident, self.dims(1, h, w, c), self.dims(1, kh, kw, 1), self.dims(1, oh, ow, c), 0)
        self.scratch[st.name] = scratch_bytes(st, mve=self.mve)
        ctx = f"{ident}_ctx"
        self._call(
            st, ident, ctx, f"{fn}(&{ctx}, &{params}, &{ident}_in, {{IN}}, &{ident}_f, &{ident}_out, {{OUT}})"
        )

    def add(self, st: AddStep) -> None:
        a, b = st.inp
        pa, pb = self.perm_of(a), self.perm_of(b)
        if pa != pb:
            raise ValueError(
                f"node {st.name!r}: add of tensors with different memory layouts is not supported"
            )
        self.perm[st.out] = pa
        self.functions.add("arm_elementwise_add_s8")
        self.kernel[st.name] = "arm_elementwise_add_s8"
        self.calls.append(
            f'CMSIS_NN_GLUE_CALL("{self.ident(st.name)}", arm_elementwise_add_s8('
            f"{{PTR:{a}}}, {{PTR:{b}}}, "
            f"{-st.a_zp}, {st.a_mult}, {st.a_shift}, {-st.b_zp}, {st.b_mult}, {st.b_shift}, {ADD_LEFT_SHIFT}, "
            f"{{PTR:{st.out}}}, {st.out_zp}, {st.out_mult}, {st.out_shift}, {int(st.act_min)}, {int(st.act_max)}, "
            f"{st.n}));"
        )

    def clamp(self, st: ClampStep) -> None:
        self.kernel[st.name] = "cmsis_nn_glue_clamp_s8"
        self.perm[st.out] = self.perm_of(st.inp)
        self.calls.append(
            f"cmsis_nn_glue_clamp_s8({{PTR:{st.inp}}}, {{PTR:{st.out}}}, {st.n}, {int(st.act_min)}, {int(st.act_max)});"
        )

    def layer_table(self) -> list[dict[str, Any]]:
        """One row per step like footprint.layer_table (storage always dense) plus kernel/scratch."""
        ops = {n.name: n.op for n in self.g.nodes}
        rows: list[dict[str, Any]] = []
        for st in self.lw.steps:
            row: dict[str, Any] = {
                "name": st.name,
                "op": ops[st.name],
                "shape": list(self.g.tensors[st.out].shape),
                "kernel": self.kernel.get(st.name, "-"),
                "scratch_bytes": self.scratch.get(st.name, 0),
            }
            if isinstance(st, ConvStep):
                o = st.out_shape[0]
                nnz = int(np.count_nonzero(st.weight != st.w_zp))
                layout = "1hwo" if _is_depthwise(st) else ("rows" if st.op == "linear" else "ohwi")
                row.update(
                    op=st.op,
                    storage="dense",
                    bytes=int(st.weight.size) + 12 * o,
                    macs=st.macs,
                    density=nnz / st.weight.size,
                    layout=layout,
                )
            else:
                row.update(storage="-", bytes=0, macs=0, density=None)
            rows.append(row)
        return rows

    def alias(self, st: AliasStep) -> None:
        self.kernel[st.name] = "-"
        self.perm[st.out] = self.perm_of(st.inp)
        self.calls.append(f"/* {st.name}: flatten is a no-op (aliases its input; HWC order) */")


def _model_h(art: Artifact, lw: Lowered, arena: int) -> str:
    g = lw.graph
    n_in, n_out = numel(g.tensors[lw.input].shape), numel(g.tensors[lw.output].shape)
    name = g.name.replace("\\", "_").replace('"', "_")
    return f"""/* Generated by harness.codegen (CMSIS-NN backend) from model {name!r}; do not edit. */
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>

#define MODEL_NAME "{name}"
#define MODEL_HASH "{art.content_hash()}"
#define MODEL_NUMERIC "{g.numeric}"
#define MODEL_INPUT_BYTES {n_in}
#define MODEL_OUTPUT_BYTES {n_out}
#define MODEL_OUTPUT_COUNT {n_out}
#define MODEL_ARENA_BYTES {arena}

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


IN_CHW = "__input_chw"
OUT_CHW = "__output_chw"


def generate_cmsis_nn(
    artifact: Artifact, out_dir: Path, *, cmsis_nn_path: Path, sparse: str = "dense", mve: bool = False
) -> GeneratedModel:
    """Emit model.h/model.c/model_weights.c calling CMSIS-NN s8 kernels (plus the glue header).

    ``cmsis_nn_path``: a CMSIS-NN checkout (Include/, Source/). ``sparse``: "dense" or "auto"
    (both store dense weights); "csr" raises ValueError. ``mve``: also size the scratch buffers for
    Helium (Cortex-M55/M85) builds of CMSIS-NN; without it the generated model.c refuses to compile
    where ARM_MATH_MVEI is defined. Raises ValueError for anything but the int8 numeric mode and
    for graphs the generator cannot run.
    """
    if sparse not in ("dense", "auto"):
        raise ValueError(f"the cmsis-nn backend stores dense weights only (sparse={sparse!r}; use 'dense')")
    root = check_cmsis_nn_path(cmsis_nn_path)
    g = artifact.graph
    if g.numeric != "int8":
        raise ValueError(f"the cmsis-nn backend supports only the int8 numeric mode (model is {g.numeric!r})")
    lw = lower(g)
    em = _Emitter(lw, mve)
    for st in lw.steps:
        if isinstance(st, ConvStep):
            em.conv(st)
        elif isinstance(st, PoolStep):
            em.pool(st)
        elif isinstance(st, AddStep):
            em.add(st)
        elif isinstance(st, ClampStep):
            em.clamp(st)
        elif isinstance(st, AliasStep):
            em.alias(st)
    lib_sources = required_sources(root, em.functions)  # before writing anything: may raise

    # --- arena plan: step i of lw.steps runs at time i + 1; 0 = input conversion, n + 1 = output
    n = len(lw.steps)
    bufs = _Buffers({}, {}, {})
    in_shape = _hwc_shape(g.tensors[lw.input].shape)
    out_perm = em.perm_of(lw.output)
    out_tensor_shape = g.tensors[lw.output].shape
    in_bytes, out_bytes = numel(g.tensors[lw.input].shape), numel(out_tensor_shape)
    if in_shape is not None:
        bufs.add(IN_CHW, in_bytes, 0, n + 1)
        bufs.add(lw.input, in_bytes, 0, 0)
    else:
        bufs.add(lw.input, in_bytes, 0, n + 1)
    for i, st in enumerate(lw.steps, start=1):
        ins = list(st.inp) if isinstance(st, AddStep) else [st.inp]
        for t in ins:
            bufs.use(t, i)
        if isinstance(st, AliasStep):
            bufs.root[st.out] = bufs.root[st.inp]
        else:
            bufs.add(st.out, numel(g.tensors[st.out].shape), i, i)
        if em.scratch.get(st.name):
            bufs.add(f"__scratch_{st.name}", em.scratch[st.name], i, i)
    bufs.use(lw.output, n + 1)
    if out_perm is not None:
        bufs.add(OUT_CHW, out_bytes, n + 1, n + 1)
    offsets, arena = bufs.place()
    naive = _align(sum(_align(s) for s in bufs.sizes.values()))

    def ptr(t: str) -> str:
        return f"(arena + {offsets[t]})"

    def ctx_init(step: str) -> str:
        size = em.scratch.get(step, 0)
        return f"{{ (void *)(arena + {offsets[f'__scratch_{step}']}), {size} }}" if size else "{ 0, 0 }"

    def fill(text: str) -> str:
        text = re.sub(r"\{CTX:([^}]*)\}", lambda m: ctx_init(m.group(1)), text)
        return re.sub(r"\{PTR:([^}]*)\}", lambda m: ptr(m.group(1)), text)

    body: list[str] = []
    if in_shape is not None:
        c, h, w = in_shape
        body.append(f"cmsis_nn_glue_chw_to_hwc({ptr(IN_CHW)}, {ptr(lw.input)}, {c}, {h}, {w});")
    body += [fill(c) for c in em.calls]
    if out_perm is not None:
        c, h, w = out_perm
        body.append(f"cmsis_nn_glue_hwc_to_chw({ptr(lw.output)}, {ptr(OUT_CHW)}, {c}, {h}, {w});")
    in_buf = IN_CHW if in_shape is not None else lw.input
    out_buf = OUT_CHW if out_perm is not None else lw.output
    descs = [fill(d) for d in em.descs]
    mve_guard = (
        ""
        if mve
        else (
            "#if defined(ARM_MATH_MVEI)\n"
            '#error "scratch buffers were sized without Helium (MVE): regenerate with generate_cmsis_nn(..., mve=True)"\n'
            "#endif\n"
        )
    )
    calls = "\n    ".join(body).replace("\n    #", "\n#")

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.h").write_text(_model_h(artifact, lw, arena))
    (out_dir / "model.c").write_text(f"""/* Generated by harness.codegen (CMSIS-NN backend); do not edit.
 * Activations NHWC in one static arena; model_input()/model_output() are CHW (harness.codegen.io). */
#include <stdint.h>
#include "model.h"
#include "arm_nnfunctions.h"
#include "{GLUE_HEADER}"

#if defined(CMSIS_NN_USE_SINGLE_ROUNDING)
#error "the harness reference uses TFLM double rounding: build CMSIS-NN without CMSIS_NN_USE_SINGLE_ROUNDING"
#endif
{mve_guard}
{chr(10).join(em.externs)}

/* Planned arena: activations, CHW staging of input/output and per-layer CMSIS-NN scratch
 * (first-fit by size; naive sum {naive} bytes). */
static int8_t arena[MODEL_ARENA_BYTES] __attribute__((aligned(8)));

{chr(10).join(descs)}

uint8_t *model_input(void)
{{
    return (uint8_t *){ptr(in_buf)};
}}

const uint8_t *model_output(void)
{{
    return (const uint8_t *){ptr(out_buf)};
}}

void model_run(void)
{{
    {calls}
}}
""")
    (out_dir / "model_weights.c").write_text(
        "/* Generated by harness.codegen (CMSIS-NN backend): constant tensors (flash), OHWI filters. */\n"
        "#include <stdint.h>\n\n" + "\n".join(em.weights)
    )
    glue = out_dir / "cmsis_nn"
    glue.mkdir(exist_ok=True)
    shutil.copyfile(GLUE_DIR / GLUE_HEADER, glue / GLUE_HEADER)
    wrappers = write_wrappers(lib_sources, glue / "src")
    layers = em.layer_table()
    extra: dict[str, Any] = {
        "backend": "cmsis-nn",
        "cmsis_nn_path": str(root),
        "cmsis_nn_sources": [str(s) for s in lib_sources],
        "cmsis_nn_functions": sorted(em.functions),
        "scratch_bytes": dict(em.scratch),
        "notes": em.notes,
        "mve_scratch": mve,
    }
    return GeneratedModel(
        sources=[out_dir / "model.c", out_dir / "model_weights.c", *wrappers],
        include_dirs=[out_dir, glue, root / "Include"],
        defines={},
        arena_bytes=arena,
        weights_bytes=em.weights_bytes,
        macs=sum(int(r.get("macs", 0)) for r in layers),
        layers=layers,
        model_hash=artifact.content_hash(),
        numeric=g.numeric,
        input_bytes=in_bytes,
        output_bytes=out_bytes,
        plan_strategy="size-first-fit",
        naive_arena_bytes=naive,
        extra=extra,
    )
