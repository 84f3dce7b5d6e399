"""Optional CMSIS-NN backend (harness.codegen.cmsis_nn).

Needs a CMSIS-NN checkout in $CMSIS_NN_PATH (skipped otherwise; CI has none):
    CMSIS_NN_PATH=/path/to/CMSIS-NN .venv/bin/pytest tests/test_codegen_cmsis_nn.py
Generated code is compiled with -Werror; CMSIS-NN's own sources only with -Wall -Wextra.
The argument/format checks at the bottom run without a checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.codegen import emulate, examples, reference
from harness.codegen.cmsis_nn import (
    conv_scratch_bytes,
    convolve_s8_scratch,
    dw_scratch_bytes,
    generate_cmsis_nn,
)
from harness.codegen.emit import RUNTIME_DIR, GeneratedModel, generate
from harness.codegen.hostrun import run_host
from harness.codegen.reference import quantize_tensor
from harness.ir import Artifact, Graph
from harness.ir_meta import ArtifactMetadata

CMSIS_NN = os.environ.get("CMSIS_NN_PATH", "").strip()
needs_cmsis = pytest.mark.skipif(not CMSIS_NN, reason="set CMSIS_NN_PATH to a CMSIS-NN checkout")
needs_qemu = pytest.mark.skipif(not emulate.have_qemu(), reason="qemu-system-arm / arm-none-eabi-gcc missing")
HOST_CC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(HOST_CC is None, reason="no host gcc")
WARN = ["-Wall", "-Wextra"]


def _misc(seed: int = 0) -> Graph:
    """Kernel variety: CHW input conversion, grouped conv, depthwise with channel multiplier,
    1x1 stride 2, dilation, unfused relu6, residual add, spatial output (HWC -> CHW on the way out)."""
    b = examples.GraphBuilder("cmsis_misc", (4, 11, 11), seed)
    stem = b.conv(8, 3, pad=1, groups=2)  # grouped -> arm_convolve_s8
    b.conv(16, 3, pad=1, groups=8, act=None)  # depthwise, ch_mult 2 -> arm_depthwise_conv_s8
    b.unary("relu6")
    b.conv(8, 1, act=None)  # 1x1 fast
    b.add(stem, b.cur, act="relu")
    b.conv(12, 1, stride=2, act=None)  # 1x1 stride 2
    b.conv(12, 3, pad=2, dilation=2, groups=12)  # depthwise 3x3, dilated -> generic dw kernel
    b.conv(6, 3, pad=1)
    b.pool("avgpool2d", 3, stride=2, pad=1)
    return b.build()


def _row(seed: int = 0) -> Graph:
    """H == 1 input: 1 x n convolutions (PyTorch floor-mode padding that the Helium 1 x n kernel
    rejects -> arm_convolve_s8, then SAME-style padding -> arm_convolve_1_x_n_s8), a flattened
    HWC output."""
    b = examples.GraphBuilder("cmsis_row", (8, 1, 24), seed)
    wt = b._const("row_w1", b.rng.normal(0, 0.3, size=(8, 8, 1, 5)))
    bias = b._const("row_b1", b.rng.normal(0, 0.1, size=8))
    b._node(
        "conv2d",
        [b.cur, wt, bias],
        [8, 1, 11],
        stride=[1, 2],
        padding=[0, 1],
        dilation=[1, 1],
        groups=1,
        act="relu",
    )
    wt = b._const("row_w2", b.rng.normal(0, 0.3, size=(12, 8, 1, 3)))
    b._node(
        "conv2d", [b.cur, wt], [12, 1, 11], stride=[1, 1], padding=[0, 1], dilation=[1, 1], groups=1, act=None
    )
    b.conv(8, 1, act=None)
    b.unary("flatten")
    return b.build()


def _dw5(seed: int = 0) -> Graph:
    b = examples.GraphBuilder("cmsis_dw5", (16, 9, 9), seed)
    b.conv(16, 5, pad=2, groups=16)  # depthwise opt (not 3x3)
    b.conv(16, 3, stride=2, pad=1, groups=16)  # depthwise 3x3 stride 2
    b.pool("maxpool2d", 3, stride=1, pad=1)
    b.unary("flatten")
    b.linear(7)
    return b.build()


def _mlp(seed: int = 0) -> Graph:
    """Flatten straight after a CHW input (the input conversion feeds a permuted FC), an unfused relu
    on a vector and a linear output."""
    b = examples.GraphBuilder("cmsis_mlp", (3, 4, 5), seed)
    b.unary("flatten")
    b.linear(16, act="relu6")
    b.linear(12, act=None)
    b.unary("relu")
    b.linear(5)
    return b.build()


GRAPHS = {
    "lenet": lambda: examples.lenet(seed=1),
    "lenet_sparse_softmax": lambda: examples.lenet(seed=2, sparsity=0.6, softmax=True),
    "alexnet": lambda: examples.alexnet(seed=1),
    "residual": lambda: examples.residual(seed=1),
    "misc": _misc,
    "row": _row,
    "dw5": _dw5,
    "mlp": _mlp,
}


def _int8(name: str) -> Graph:
    g = GRAPHS[name]()
    shape = g.tensors[g.inputs[0]].shape
    calib = np.random.default_rng(7).normal(size=(32, *shape)).astype(np.float32)
    return examples.quantize(g, "int8", calib)


def _inputs(g: Graph, n: int, seed: int = 3) -> np.ndarray:
    t = g.tensors[g.inputs[0]]
    x = np.random.default_rng(seed).normal(0, 1.5, size=(n, *t.shape))
    return quantize_tensor("int8", t, x)


def _gen(g: Graph, out: Path) -> GeneratedModel:
    return generate_cmsis_nn(Artifact(g), out, cmsis_nn_path=Path(CMSIS_NN))


def _split(gen: GeneratedModel) -> tuple[list[Path], list[Path]]:
    """(generated model sources, wrappers that compile CMSIS-NN's own .c files)."""
    lib = [s for s in gen.sources if s.parent.name == "src" and s.parent.parent.name == "cmsis_nn"]
    own = [s for s in gen.sources if s not in lib]
    return own, lib


def _compile(
    cc: str, flags: list[str], gen: GeneratedModel, srcs: list[Path], objdir: Path, werror: bool
) -> list[Path]:
    objdir.mkdir(parents=True, exist_ok=True)
    objs = []
    for i, s in enumerate(srcs):
        o = objdir / f"{i:03d}_{s.stem}.o"
        cmd = [
            cc,
            *flags,
            *WARN,
            *(["-Werror"] if werror else []),
            *(f"-I{d}" for d in gen.include_dirs),
            "-c",
            str(s),
            "-o",
            str(o),
        ]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
        objs.append(o)
    return objs


def _build_host(gen: GeneratedModel, work: Path) -> Path:
    assert HOST_CC is not None
    own, lib = _split(gen)
    flags = ["-O2", "-std=c99"]
    objs = _compile(HOST_CC, flags, gen, [*own, RUNTIME_DIR / "testing" / "host_main.c"], work / "own", True)
    objs += _compile(HOST_CC, flags, gen, lib, work / "lib", False)
    exe = work / "model_host"
    res = subprocess.run([HOST_CC, "-o", str(exe), *map(str, objs)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return exe


def _build_qemu(gen: GeneratedModel, inputs: list[bytes], work: Path, core: str) -> Path:
    own, lib = _split(gen)
    work.mkdir(parents=True, exist_ok=True)
    emulate.write_inputs_header(work / "test_inputs.h", inputs)
    flags = [*emulate.CPU_FLAGS[core], "-std=c99", "-O2", "-ffreestanding", f"-I{work}"]
    objs = _compile(
        emulate.CROSS_CC, flags, gen, [*own, RUNTIME_DIR / "testing" / "qemu_main.c"], work / "own", True
    )
    objs += _compile(emulate.CROSS_CC, flags, gen, lib, work / "lib", False)
    elf = work / "model.elf"
    cmd = [
        emulate.CROSS_CC,
        *emulate.CPU_FLAGS[core],
        "-nostdlib",
        "-nostartfiles",
        "-o",
        str(elf),
        *map(str, objs),
        "-T",
        str(RUNTIME_DIR / "testing" / "mps2_an386.ld"),
        "-Wl,--start-group",
        "-lc",
        "-lgcc",
        "-Wl,--end-group",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return elf


# ----------------------------------------------------------------------------- bit-exactness


@needs_cmsis
@needs_gcc
@pytest.mark.parametrize("name", list(GRAPHS))
def test_host_bit_exact(name: str, tmp_path: Path) -> None:
    g = _int8(name)
    gen = _gen(g, tmp_path / "gen")
    exe = _build_host(gen, tmp_path)
    xq = _inputs(g, 12)
    want = reference.run_raw(g, xq).reshape(len(xq), -1)
    got = run_host(exe, "int8", xq, want.shape[1])
    np.testing.assert_array_equal(got, want)
    # the same inputs twice: model_input() survives model_run() and nothing leaks between runs
    got2 = run_host(exe, "int8", np.concatenate([xq, xq]), want.shape[1])
    np.testing.assert_array_equal(got2, np.concatenate([want, want]))


@needs_cmsis
@needs_qemu
@pytest.mark.parametrize("name", ["lenet", "alexnet", "residual", "misc", "row", "dw5", "mlp"])
def test_cortex_m4_dsp_bit_exact_on_qemu(name: str, tmp_path: Path) -> None:
    """Cortex-M4: CMSIS-NN's DSP (SMLAD) kernels, run on qemu mps2-an386."""
    g = _int8(name)
    gen = _gen(g, tmp_path / "gen")
    xq = _inputs(g, 4)
    elf = _build_qemu(gen, [x.tobytes() for x in xq], tmp_path / "m4", "cortex-m4")
    res = emulate.run_qemu(elf, "cortex-m4")
    got = emulate.outputs_array(res, "int8")
    np.testing.assert_array_equal(got, reference.run_raw(g, xq).reshape(len(xq), -1))
    assert len(res.ticks) == len(xq) and min(res.ticks) > 0


M55 = ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"]


def _have_m55() -> bool:
    if not emulate.have_qemu():
        return False
    machines = subprocess.run(["qemu-system-arm", "-M", "help"], capture_output=True, text=True).stdout
    probe = subprocess.run(
        [emulate.CROSS_CC, *M55, "-E", "-dM", "-x", "c", "/dev/null"], capture_output=True, text=True
    )
    return "mps3-an547" in machines and "__ARM_FEATURE_MVE" in probe.stdout


needs_m55 = pytest.mark.skipif(
    not CMSIS_NN or not _have_m55(), reason="no qemu mps3-an547 or no Cortex-M55 (MVE) compiler"
)


@needs_cmsis
@needs_m55
@pytest.mark.parametrize("name", ["lenet", "alexnet", "residual", "misc", "row", "dw5"])
def test_cortex_m55_helium_bit_exact_on_qemu(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cortex-M55: CMSIS-NN's Helium (MVE) kernels with mve=True scratch sizes, on qemu mps3-an547."""
    g = _int8(name)
    gen = generate_cmsis_nn(Artifact(g), tmp_path / "gen", cmsis_nn_path=Path(CMSIS_NN), mve=True)
    xq = _inputs(g, 3)
    work = tmp_path / "m55"
    work.mkdir()
    own, lib = _split(gen)
    emulate.write_inputs_header(work / "test_inputs.h", [x.tobytes() for x in xq])
    flags = [*M55, "-std=c99", "-O2", "-ffreestanding", f"-I{work}"]
    objs = _compile(
        emulate.CROSS_CC, flags, gen, [*own, RUNTIME_DIR / "testing" / "qemu_main.c"], work / "own", True
    )
    objs += _compile(emulate.CROSS_CC, flags, gen, lib, work / "lib", False)
    ld = work / "an547.ld"  # same layout as mps2_an386.ld inside the 512 KiB ITCM / DTCM
    ld.write_text(
        (RUNTIME_DIR / "testing" / "mps2_an386.ld").read_text().replace("LENGTH = 4M", "LENGTH = 512K")
    )
    elf = work / "model.elf"
    cmd = [
        emulate.CROSS_CC,
        *M55,
        "-nostdlib",
        "-nostartfiles",
        "-o",
        str(elf),
        *map(str, objs),
        "-T",
        str(ld),
        "-Wl,--start-group",
        "-lc",
        "-lgcc",
        "-Wl,--end-group",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    monkeypatch.setitem(emulate.QEMU_MACHINE, "cortex-m55", "mps3-an547")
    got = emulate.outputs_array(emulate.run_qemu(elf, "cortex-m55"), "int8")
    np.testing.assert_array_equal(got, reference.run_raw(g, xq).reshape(len(xq), -1))


@needs_cmsis
@needs_m55
def test_mve_build_needs_mve_scratch(tmp_path: Path) -> None:
    gen = _gen(_int8("lenet"), tmp_path / "gen")  # mve=False
    with pytest.raises(AssertionError, match="mve=True"):
        _compile(emulate.CROSS_CC, [*M55, "-O2"], gen, _split(gen)[0][:1], tmp_path / "o", True)


@needs_cmsis
@needs_qemu
def test_existing_emulate_helpers_build_it(tmp_path: Path) -> None:
    """emulate.build_image (-Werror on every source) also works with this checkout on Cortex-M7."""
    g = _int8("residual")
    gen = _gen(g, tmp_path / "gen")
    xq = _inputs(g, 2)
    try:
        elf = emulate.build_image(gen, [x.tobytes() for x in xq], tmp_path / "m7.elf", core="cortex-m7")
    except RuntimeError as exc:  # a CMSIS-NN version with warnings: not this backend's business
        pytest.skip(f"CMSIS-NN sources warn under -Werror: {str(exc)[-300:]}")
    got = emulate.outputs_array(emulate.run_qemu(elf, "cortex-m7"), "int8")
    np.testing.assert_array_equal(got, reference.run_raw(g, xq).reshape(len(xq), -1))


@needs_cmsis
@needs_qemu
def test_cortex_m4_dsp_build_uses_dsp_and_compiles_with_wall(tmp_path: Path) -> None:
    g = _int8("misc")
    gen = _gen(g, tmp_path / "gen")
    own, lib = _split(gen)
    flags = [*emulate.CPU_FLAGS["cortex-m4"], "-std=gnu11", "-O2", "-ffreestanding", "-ffunction-sections"]
    _compile(emulate.CROSS_CC, flags, gen, own, tmp_path / "own", True)
    _compile(emulate.CROSS_CC, flags, gen, lib, tmp_path / "lib", False)
    probe = tmp_path / "probe.c"
    probe.write_text(
        '#include "arm_nn_math_types.h"\n#if !defined(ARM_MATH_DSP)\n#error no DSP\n#endif\n'
        "#if defined(ARM_MATH_MVEI) || defined(CMSIS_NN_USE_SINGLE_ROUNDING)\n#error\n#endif\n"
    )
    _compile(emulate.CROSS_CC, flags, gen, [probe], tmp_path / "probe", True)


@needs_cmsis
@needs_qemu
def test_wrappers_inline_memcpy_under_ffreestanding(tmp_path: Path) -> None:
    """-ffreestanding implies -fno-builtin; the wrappers keep CMSIS-NN's 4-byte memcpy loads inline."""
    g = _int8("alexnet")
    gen = _gen(g, tmp_path / "gen")
    flags = [*emulate.CPU_FLAGS["cortex-m4"], "-std=gnu11", "-O2", "-ffreestanding"]
    wrapper = next(s for s in _split(gen)[1] if s.name == "arm_nn_mat_mult_kernel_s8_s16.c")
    direct = next(Path(p) for p in gen.extra["cmsis_nn_sources"] if Path(p).name == wrapper.name)
    nm = shutil.which("arm-none-eabi-nm") or "arm-none-eabi-nm"

    def undefined(src: Path, sub: str) -> str:
        (obj,) = _compile(emulate.CROSS_CC, flags, gen, [src], tmp_path / sub, False)
        return subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout

    assert "memcpy" in undefined(direct, "direct")  # what a plain build of the same file does
    assert "memcpy" not in undefined(wrapper, "wrapped")


@needs_cmsis
@needs_gcc
def test_single_rounding_build_is_refused(tmp_path: Path) -> None:
    gen = _gen(_int8("lenet"), tmp_path / "gen")
    own = _split(gen)[0]
    with pytest.raises(AssertionError, match="CMSIS_NN_USE_SINGLE_ROUNDING"):
        _compile(HOST_CC or "gcc", ["-DCMSIS_NN_USE_SINGLE_ROUNDING"], gen, own[:1], tmp_path / "o", True)


# ----------------------------------------------------------------------------- generated code


@needs_cmsis
def test_model_h_api_matches_portable(tmp_path: Path) -> None:
    g = _int8("alexnet")
    cm = _gen(g, tmp_path / "cm")
    pt = generate(Artifact(g), tmp_path / "pt")

    def macros(p: Path) -> dict[str, str]:
        return dict(re.findall(r"^#define (MODEL_\w+) (.*)$", (p / "model.h").read_text(), re.M))

    def protos(p: Path) -> list[str]:
        return re.findall(r"^.*\bmodel_\w+\(void\);$", (p / "model.h").read_text(), re.M)

    a, b = macros(tmp_path / "cm"), macros(tmp_path / "pt")
    assert a.keys() == b.keys()
    assert {k: v for k, v in a.items() if k != "MODEL_ARENA_BYTES"} == {
        k: v for k, v in b.items() if k != "MODEL_ARENA_BYTES"
    }
    assert int(a["MODEL_ARENA_BYTES"]) == cm.arena_bytes
    assert protos(tmp_path / "cm") == protos(tmp_path / "pt")
    assert (cm.input_bytes, cm.output_bytes, cm.model_hash, cm.numeric, cm.macs) == (
        pt.input_bytes,
        pt.output_bytes,
        pt.model_hash,
        pt.numeric,
        pt.macs,
    )
    assert Path(CMSIS_NN).resolve() / "Include" in cm.include_dirs
    lib = [Path(p) for p in cm.extra["cmsis_nn_sources"]]
    assert lib and all(Path(CMSIS_NN).resolve() / "Source" in p.parents for p in lib)
    assert sorted(s.name for s in _split(cm)[1]) == sorted(p.name for p in lib)
    for w in _split(cm)[1]:
        assert f'#include "{next(p for p in lib if p.name == w.name).as_posix()}"' in w.read_text()
    names = {s.name for s in lib}
    assert {
        "arm_convolve_wrapper_s8.c",
        "arm_max_pool_s8.c",
        "arm_avgpool_s8.c",
        "arm_fully_connected_per_channel_s8.c",
    } <= names
    assert not any(n.endswith(("_f32.c", "_f16.c")) for n in names)
    text = (tmp_path / "cm" / "model.c").read_text()
    assert "CMSIS_NN_USE_SINGLE_ROUNDING" in text and "cmsis_nn_glue_chw_to_hwc" in text
    assert [r["name"] for r in cm.layers] == [st["name"] for st in pt.layers]


# ----------------------------------------------------------------------------- scratch bound


def _dims(n: int, h: int, w: int, c: int) -> str:
    return f"{{{n}, {h}, {w}, {c}}}"


CONV_CASES = [  # (h, w, c, o, kh, kw, groups, (sh, sw), (ph, pw), dilation)
    (28, 28, 1, 8, 5, 5, 1, (1, 1), (2, 2), 1),
    (16, 16, 16, 32, 3, 3, 1, (2, 2), (1, 1), 1),
    (8, 8, 64, 32, 1, 1, 1, (1, 1), (0, 0), 1),
    (8, 8, 64, 32, 1, 1, 1, (2, 2), (0, 0), 1),
    (1, 24, 8, 8, 1, 5, 1, (1, 2), (0, 1), 1),
    (1, 24, 6, 8, 1, 3, 1, (1, 2), (0, 1), 1),
    (1, 24, 8, 8, 1, 4, 1, (1, 1), (0, 2), 1),
    (1, 31, 4, 4, 1, 4, 1, (1, 1), (0, 0), 1),
    (9, 9, 8, 8, 3, 3, 2, (1, 1), (1, 1), 1),
    (9, 9, 8, 8, 3, 3, 1, (1, 1), (2, 2), 2),
]
DW_CASES = [  # (h, w, c, ch_mult, kh, kw, stride, pad, dilation)
    (12, 12, 16, 1, 3, 3, 1, 1, 1),
    (12, 12, 16, 1, 5, 5, 1, 2, 1),
    (12, 12, 16, 2, 3, 3, 1, 1, 1),
    (12, 12, 1, 8, 3, 3, 2, 1, 1),
    (12, 12, 1, 16, 3, 3, 1, 1, 1),
    (12, 12, 8, 1, 3, 3, 1, 2, 2),
]


def _out(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@needs_cmsis
@needs_gcc
def test_scratch_bound_covers_cmsis_get_buffer_size(tmp_path: Path) -> None:
    """Host-side formulas >= CMSIS-NN's own *_get_buffer_size: the generic (host) and _dsp variants
    without ``mve``, the _mve variant with it."""
    assert HOST_CC is not None
    root = Path(CMSIS_NN).resolve()
    lines: list[str] = []
    want: list[int] = []
    variants = (("", False), ("_dsp", False), ("_mve", True))
    for h, w, c, o, kh, kw, groups, (sh, sw), (ph, pw), d in CONV_CASES:
        oh, ow = _out(h, kh, sh, ph, d), _out(w, kw, sw, pw, d)
        cp = f"{{0, 0, {{{sw}, {sh}}}, {{{pw}, {ph}}}, {{{d}, {d}}}, {{-128, 127}}}}"
        for suffix, mve in variants:
            lines.append(
                f"{{ cmsis_nn_conv_params cp = {cp}; cmsis_nn_dims i = {_dims(1, h, w, c)}, "
                f"f = {_dims(o, kh, kw, c // groups)}, out = {_dims(1, oh, ow, o)}; "
                f'printf("%d\\n", (int)arm_convolve_wrapper_s8_get_buffer_size{suffix}(&cp, &i, &f, &out)); }}'
            )
            want.append(
                conv_scratch_bytes((h, w, c), (kh, kw), c // groups, (sh, sw), (ph, pw), (d, d), ow, mve)
            )
        for suffix, mve in (("", False), ("_mve", True)):  # arm_convolve_s8 called directly (bypass_1_x_n)
            lines.append(
                f"{{ cmsis_nn_dims i = {_dims(1, h, w, c)}, f = {_dims(o, kh, kw, c // groups)}; "
                f'printf("%d\\n", (int)arm_convolve_s8_get_buffer_size{suffix}(&i, &f)); }}'
            )
            want.append(convolve_s8_scratch(c, (kh, kw), mve))
    for h, w, c, m, kh, kw, s, p, d in DW_CASES:
        oh, ow = _out(h, kh, s, p, d), _out(w, kw, s, p, d)
        cp = f"{{0, 0, {m}, {{{s}, {s}}}, {{{p}, {p}}}, {{{d}, {d}}}, {{-128, 127}}}}"
        for suffix, mve in variants:
            lines.append(
                f"{{ cmsis_nn_dw_conv_params cp = {cp}; cmsis_nn_dims i = {_dims(1, h, w, c)}, "
                f"f = {_dims(1, kh, kw, c * m)}, out = {_dims(1, oh, ow, c * m)}; "
                f'printf("%d\\n", (int)arm_depthwise_conv_wrapper_s8_get_buffer_size{suffix}(&cp, &i, &f, &out)); }}'
            )
            want.append(dw_scratch_bytes((h, w, c), (kh, kw), c * m, (s, s), (p, p), (d, d), ow, mve))
    for k, o in ((256, 10), (1000, 64)):
        for suffix, mve in variants:
            lines.append(
                f"{{ cmsis_nn_dims f = {_dims(k, 1, 1, o)}; "
                f'printf("%d\\n", (int)arm_fully_connected_s8_get_buffer_size{suffix}(&f)); }}'
            )
            want.append(4 * o if mve else 0)
    for c in (3, 64):
        for suffix, _ in variants:
            lines.append(f'printf("%d\\n", (int)arm_avgpool_s8_get_buffer_size{suffix}(5, {c}));')
            want.append(4 * c)
    prog = tmp_path / "sizes.c"
    prog.write_text(
        '#include <stdio.h>\n#include "arm_nnfunctions.h"\nint main(void)\n{\n    '
        + "\n    ".join(lines)
        + "\n    return 0;\n}\n"
    )
    src = root / "Source"
    libs = [
        src / "ConvolutionFunctions" / "arm_convolve_get_buffer_sizes_s8.c",
        src / "ConvolutionFunctions" / "arm_depthwise_conv_get_buffer_sizes_s8.c",
        src / "FullyConnectedFunctions" / "arm_fully_connected_get_buffer_sizes_s8.c",
        src / "PoolingFunctions" / "arm_avgpool_get_buffer_sizes_s8.c",
    ]
    exe = tmp_path / "sizes"
    res = subprocess.run(
        [HOST_CC, "-O1", f"-I{root / 'Include'}", "-o", str(exe), str(prog), *map(str, libs)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    got = [
        int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    ]
    assert len(got) == len(want)
    short = [(line, g, w) for line, g, w in zip(lines, got, want, strict=True) if w < g]
    assert not short, short


# ----------------------------------------------------------------------------- refusals (no checkout needed)


def _fake_checkout(tmp_path: Path) -> Path:
    root = tmp_path / "fake-cmsis-nn"
    (root / "Include").mkdir(parents=True, exist_ok=True)
    (root / "Source").mkdir(exist_ok=True)
    (root / "Include" / "arm_nnfunctions.h").write_text("")
    return root


@pytest.mark.parametrize("numeric", ["float32", "uint8", "qmn"])
def test_only_int8(numeric: str, tmp_path: Path) -> None:
    g = examples.lenet(seed=0)
    if numeric != "float32":
        g = examples.quantize(
            g, numeric, np.random.default_rng(0).normal(size=(4, 1, 28, 28)).astype(np.float32)
        )
    with pytest.raises(ValueError, match="int8"):
        generate_cmsis_nn(Artifact(g), tmp_path / "out", cmsis_nn_path=_fake_checkout(tmp_path))


def test_rejects_csr_and_bad_checkout(tmp_path: Path) -> None:
    g = _int8("lenet")
    with pytest.raises(ValueError, match="dense"):
        generate_cmsis_nn(Artifact(g), tmp_path / "o", cmsis_nn_path=_fake_checkout(tmp_path), sparse="csr")
    with pytest.raises(ValueError, match="not a CMSIS-NN checkout"):
        generate_cmsis_nn(Artifact(g), tmp_path / "o", cmsis_nn_path=tmp_path)
    with pytest.raises(ValueError, match="does not define"):  # kernels missing from the checkout
        generate_cmsis_nn(Artifact(g), tmp_path / "o", cmsis_nn_path=_fake_checkout(tmp_path))


@needs_cmsis
@needs_qemu
def test_firmware_build_and_dut_protocol_on_qemu(tmp_path: Path) -> None:
    """The real firmware build (-Werror -ffreestanding, sim-m4 board) + the DUT protocol on QEMU."""
    import zlib

    from firmware_fixtures.qemu import qemu_board

    from harness.build import build_firmware
    from harness.codegen.io import encode_input
    from harness.config import load_board
    from harness.dut import DutLink

    g = _int8("alexnet")
    art = Artifact(graph=g, metadata=ArtifactMetadata(model="alexnet-light", source="test"))
    gen = generate_cmsis_nn(art, tmp_path / "gen", cmsis_nn_path=Path(CMSIS_NN))
    r = build_firmware(gen, load_board("sim-m4"), tmp_path / "fw")
    assert r.footprint.fits and r.model_hash == art.content_hash()
    assert r.footprint.flash.weights == gen.weights_bytes
    assert r.footprint.ram.arena == gen.arena_bytes
    inp = encode_input(g, np.random.default_rng(11).normal(size=(3, 32, 32)))
    expected = reference.run_raw(g, np.frombuffer(inp, dtype=np.int8).reshape(1, 3, 32, 32)).astype(np.int8)
    with qemu_board(r.elf) as url, DutLink(url, timeout=10) as dut:
        dut.resync()
        info = dut.identify()
        assert (info.numeric, info.arena_bytes, info.output_bytes) == ("int8", gen.arena_bytes, 10)
        dut.load_input(inp)
        res = dut.infer(2, warmup=1, gap_us=50)
        assert res.checksums == [zlib.crc32(expected.tobytes())] * 2
        assert dut.results() == expected.tobytes()


@needs_cmsis
def test_generate_dispatches_to_cmsis_nn_backend(tmp_path: Path) -> None:
    """`harness build --backend cmsis-nn` goes through generate(); the model is CMSIS-NN's."""
    g = _int8("lenet")
    gen = generate(Artifact(graph=g), tmp_path / "gen", backend="cmsis-nn")
    assert "arm_convolve_wrapper_s8" in (tmp_path / "gen" / "model.c").read_text()
    assert gen.extra["cmsis_nn_sources"]


def test_unknown_backend_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="allowed: portable, cmsis-nn"):
        generate(Artifact(graph=_int8("lenet")), tmp_path / "gen", backend="tflm")
