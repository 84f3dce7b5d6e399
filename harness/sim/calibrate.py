"""`harness sim calibrate`: simulated figures next to published ones, with the error.

Workloads with published figures, each run as real firmware on the emulator:
- CoreMark/MHz per core (harness/sim/coremark.py) against Arm's published figures;
- the seed project's models (seed 001: LeNet-Light, AlexNet-Light, VGG-Light, unpruned, on the
  NuMaker-PFM-M487 with Mbed OS and CMSIS-NN) against its 30 / 20 / 47 ms;
- seed 002 (Deutel et al.) Table 3 rows whose model shape is known (element pruning keeps the
  dense LeNet shape): latency and power, plus the float/uint8 latency ratio per board;
- a least-squares fit of the per-class power coefficients to the paper's per-row power.

Weights are random with the paper's sparsity (latency does not depend on their values; the
quantization is the harness's PTQ of the same graph). Every simulated figure here is an estimate.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.codegen.examples import GraphBuilder, alexnet, lenet, quantize
from harness.config.board import BoardConfig, load_board
from harness.config.loader import repo_root
from harness.ir import Artifact, Graph

if TYPE_CHECKING:
    from harness.dut import DutLink
    from harness.sim.board import SimBoard

# -- published figures -------------------------------------------------------------------------
# Arm's product pages list 2.46 (M0+), 3.40 (M4), 5.01 (M7) CoreMark/MHz; as found here via
# electronics.stackexchange.com/questions/330650 (M0+) and "ARM-Based Microcontroller Projects Using
# MBED", table 3.2 (M4, M7). The compiler is not stated there; Arm's figures come from its own
# compiler (armcc/armclang), ours from GCC 12 with the flags in harness/sim/coremark.py.
ARM_COREMARK = "Arm Cortex-M product pages (compiler not stated; GCC here)"
COREMARK_PUBLISHED: dict[str, tuple[float, str]] = {  # core -> (CoreMark/MHz, board it runs on)
    "cortex-m0plus": (2.46, "sim-m0plus"),
    "cortex-m4": (3.40, "sim-m4"),
    "cortex-m7": (5.01, "sim-m7"),
}
SEED_MS = {"lenet-light": 30.0, "alexnet-light": 20.0, "vgg-light": 47.0}  # seed 001 README
SEED_SOURCE = "seed 001 README (NuMaker-PFM-M487, Mbed OS, CMSIS-NN kernels, unpruned)"
PAPER_SOURCE = "seed 002 Table 3 (mean of n = 8)"


@dataclass(frozen=True)
class PaperRow:
    board: str
    numeric: str  # float32 | uint8
    pruning: str  # element | structure
    level: str  # ">99 %" | ">97 %"
    sparsity: float  # element pruning: fraction of zero weights (dense shape)
    ms: float
    mw: float
    shape: tuple[int, int, int] = (32, 64, 128)  # conv1, conv2 channels, fc1 units


# Element rows: the dense paper LeNet shape with 95 % / 97 % zeros (Table 3 column "compression").
# Structure rows: the shape is not published; channels scaled uniformly to the row's parameter
# count are an ASSUMPTION (99.18 % -> (4, 8, 8): 9.6 k weights; 99.7 % -> (2, 4, 6): 3.5 k).
PAPER_ROWS: tuple[PaperRow, ...] = (
    PaperRow("sim-pico", "float32", "element", ">99 %", 0.95, 1004.77, 81.44),
    PaperRow("sim-pico", "uint8", "element", ">99 %", 0.95, 392.23, 84.82),
    PaperRow("sim-pico", "float32", "element", ">97 %", 0.97, 658.70, 82.44),
    PaperRow("sim-pico", "uint8", "element", ">97 %", 0.97, 392.27, 84.67),
    PaperRow("sim-nano33ble", "uint8", "element", ">99 %", 0.95, 360.95, 142.28),
    PaperRow("sim-nano33ble", "uint8", "element", ">97 %", 0.97, 303.15, 141.58),
    PaperRow("sim-pico", "float32", "structure", ">99 %", 0.0, 184.28, 81.42, (4, 8, 8)),
    PaperRow("sim-pico", "uint8", "structure", ">99 %", 0.0, 50.06, 79.37, (4, 8, 8)),
    PaperRow("sim-pico", "float32", "structure", ">97 %", 0.0, 73.26, 81.72, (2, 4, 6)),
    PaperRow("sim-pico", "uint8", "structure", ">97 %", 0.0, 24.97, 79.92, (2, 4, 6)),
    PaperRow("sim-nano33ble", "float32", "structure", ">99 %", 0.0, 44.15, 141.14, (4, 8, 8)),
    PaperRow("sim-nano33ble", "uint8", "structure", ">99 %", 0.0, 18.84, 101.06, (4, 8, 8)),
    PaperRow("sim-nano33ble", "float32", "structure", ">97 %", 0.0, 22.48, 105.32, (2, 4, 6)),
    PaperRow("sim-nano33ble", "uint8", "structure", ">97 %", 0.0, 18.79, 82.54, (2, 4, 6)),
)
TARGETS = {"coremark": 0.10, "seed": 0.30, "paper": 0.30, "ratio": 0.30}


@dataclass(frozen=True)
class Row:
    group: str  # coremark | seed | paper | ratio | power
    name: str
    board: str
    simulated: float
    published: float
    unit: str
    source: str
    target: float | None  # relative tolerance; None: informational
    note: str = ""

    @property
    def error(self) -> float:
        return self.simulated / self.published - 1.0

    @property
    def ok(self) -> bool | None:
        return None if self.target is None else abs(self.error) <= self.target


@dataclass(frozen=True)
class ModelRun:
    """One inference on a simulated board: GPIO window, instruction mix, mean power."""

    board: str
    cycles: int
    ms: float
    mw: float
    insns: int
    mix: dict[str, float] = field(default_factory=dict)  # per-instruction fractions


# -- graphs --------------------------------------------------------------------------------------
def vgg_light(seed: int = 0) -> Graph:
    """Seed VGG-Light: 3x3 pad-1 convs [8, M, 16, M, 32, 32, M, 40, 40], avgpool 2, linear (bias-free)."""
    b = GraphBuilder("vgg_light", (3, 32, 32), seed)
    for v in (8, "M", 16, "M", 32, 32, "M", 40, 40):
        if v == "M":
            b.pool("maxpool2d", 2)
        else:
            b.conv(int(v), 3, pad=1, bias=False)
    b.pool("avgpool2d", 2)
    b.unary("flatten")
    b.linear(10, bias=False)
    return b.build()


def paper_lenet(shape: tuple[int, int, int] = (32, 64, 128), sparsity: float = 0.0, seed: int = 0) -> Graph:
    """Seed 002 Table 1 LeNet: conv 3x3 -> conv 3x3 -> maxpool 2 -> linear -> linear (relu between)."""
    c1, c2, f1 = shape
    b = GraphBuilder("lenet_paper", (1, 28, 28), seed)
    b.conv(c1, 3, sparsity=sparsity)
    b.conv(c2, 3, sparsity=sparsity)
    b.pool("maxpool2d", 2)
    b.unary("flatten")
    b.linear(f1, act="relu", sparsity=sparsity)
    b.linear(10, sparsity=sparsity)
    return b.build()


SEED_GRAPHS: dict[str, Callable[[], Graph]] = {"lenet-light": lenet, "alexnet-light": alexnet, "vgg-light": vgg_light}


def _prepare(graph: Graph, numeric: str) -> Graph:
    if numeric == "float32":
        return graph
    x = np.random.default_rng(0).normal(size=(4, *graph.tensors["input"].shape)).astype(np.float32)
    return quantize(graph, numeric, x)


# -- running -------------------------------------------------------------------------------------
@contextlib.contextmanager
def model_on_board(
    graph: Graph, board: BoardConfig, *, backend: str = "portable", sparse: str = "auto", work: Path
) -> Iterator[tuple[SimBoard, DutLink]]:
    """The benchmark firmware for ``graph`` (already quantized) built, flashed onto a fresh
    emulated ``board`` and booted, with a synchronised link and the identify's input loaded."""
    from harness.build import build_firmware
    from harness.codegen import generate
    from harness.dut import DutLink
    from harness.sim.board import SimBoard

    dsp = board.core in ("cortex-m4", "cortex-m4f", "cortex-m7")
    gen = generate(Artifact(graph), work / "model", dsp=dsp, sparse=sparse, backend=backend)
    fw = build_firmware(gen, board, work / "fw")
    if fw.elf is None:  # the build only generated a project (no bare-metal template for this board)
        raise RuntimeError(f"board {board.name}: the build produced no ELF to run on the emulator")
    sim = SimBoard(board, persist=False)
    sim.program(fw.elf)
    sim.start()
    try:
        with DutLink(sim.serial_url, timeout=60) as dut:
            dut.resync()
            dut.load_input(bytes(dut.identify().input_bytes))
            yield sim, dut
    finally:
        sim.stop()


def run_model(
    graph: Graph, board: BoardConfig, *, backend: str = "portable", sparse: str = "auto", work: Path
) -> ModelRun:
    """Build the benchmark firmware for ``graph`` (already quantized) and time one inference
    (after one warm-up) by the GPIO window on the emulated board."""
    with model_on_board(graph, board, backend=backend, sparse=sparse, work=work) as (sim, dut):
        dut.infer(1, timeout=1800)  # warm-up: caches as in a measured repetition
        c = sim.counter
        before = (c.insns, c.mem, c.fp, c.mul, c.data_reads, len(sim.bus.edges()))
        dut.infer(1, timeout=1800)
        after = (c.insns, c.mem, c.fp, c.mul, c.data_reads)
        edges = sim.bus.edges()[before[-1] :]
    rise, fall = edges[0], edges[1]
    mean_a = float(sim.bus.mean_current(np.array([rise.time_s]), np.array([fall.time_s]))[0])
    insns = after[0] - before[0]
    mix = {k: (after[i] - before[i]) / max(1, insns) for i, k in enumerate(("mem", "fp", "mul", "flash_reads"), 1)}
    cycles = fall.cycle - rise.cycle
    return ModelRun(
        board.name, cycles, cycles / board.clock_hz * 1e3, mean_a * board.supply.nominal_v * 1e3, insns, mix
    )


def coremark_rows(cores: Iterable[str], work: Path, progress: Callable[[str], None]) -> list[Row]:
    from harness.sim.coremark import OPT_FLAGS, build_coremark, run_coremark

    rows = []
    for core in cores:
        published, board_name = COREMARK_PUBLISHED[core]
        board = load_board(board_name)
        progress(f"CoreMark on {core} ({board_name})")
        iterations = 20
        elf = build_coremark(board, work / f"coremark-{board_name}", iterations)
        run = run_coremark(board, elf, iterations)
        rows.append(
            Row("coremark", f"CoreMark/MHz {core}", board_name, run.coremark_per_mhz, published, "CoreMark/MHz",
                ARM_COREMARK, TARGETS["coremark"],
                f"GCC {' '.join(OPT_FLAGS)}, {iterations} iterations, {run.cycles:,} cycles"),
        )  # fmt: skip
    return rows


def seed_rows(models: Iterable[str], work: Path, progress: Callable[[str], None]) -> list[Row]:
    board = load_board("sim-numaker-pfm-m487")
    rows = []
    for name in models:
        graph = SEED_GRAPHS[name]()
        progress(f"{name} int8 CMSIS-NN on {board.name}")
        run = run_model(_prepare(graph, "int8"), board, backend="cmsis-nn", sparse="dense", work=work / f"{name}-cmsis")
        rows.append(
            Row("seed", f"{name} unpruned, CMSIS-NN s8 kernels", board.name, run.ms, SEED_MS[name], "ms",
                SEED_SOURCE, TARGETS["seed"], "the seed's q7 kernels are gone from CMSIS-NN; s8 are their successors"),
        )  # fmt: skip
        progress(f"{name} qmn (harness DSP kernels) on {board.name}")
        run = run_model(_prepare(graph, "qmn"), board, work=work / f"{name}-qmn")
        rows.append(
            Row("seed", f"{name} unpruned, qmn, harness DSP kernels", board.name, run.ms, SEED_MS[name], "ms",
                SEED_SOURCE, None, "not a calibration target: the seed ran CMSIS-NN kernels (row above), "
                "these are the harness's own"),
        )  # fmt: skip
    return rows


def paper_runs(rows: Sequence[PaperRow], work: Path, progress: Callable[[str], None]) -> list[ModelRun]:
    runs = []
    for i, r in enumerate(rows):
        progress(f"paper LeNet {r.pruning} {r.level} {r.numeric} on {r.board}")
        graph = _prepare(paper_lenet(r.shape, r.sparsity), r.numeric)
        runs.append(run_model(graph, load_board(r.board), work=work / f"paper-{i}"))
    return runs


def dense_rows(rows: Sequence[PaperRow], work: Path, progress: Callable[[str], None]) -> list[Row]:
    """Informational: the Pico uint8 element rows again with dense weight storage, since the
    paper's latency for them does not depend on sparsity (see KNOWN_CAUSES)."""
    out = []
    for i, r in enumerate(rows):
        if not (r.board == "sim-pico" and r.numeric == "uint8" and r.pruning == "element"):
            continue
        progress(f"paper LeNet {r.pruning} {r.level} {r.numeric} on {r.board}, dense weights")
        graph = _prepare(paper_lenet(r.shape, r.sparsity), r.numeric)
        run = run_model(graph, load_board(r.board), sparse="dense", work=work / f"paper-dense-{i}")
        out.append(Row("paper", f"LeNet {r.pruning} {r.level} {r.numeric}, dense weights", r.board, run.ms, r.ms,
                       "ms", PAPER_SOURCE, None, "dense shape and storage, the harness's dense M0+ kernels"))
    return out


def paper_rows(rows: Sequence[PaperRow], runs: Sequence[ModelRun]) -> list[Row]:
    out = []
    for r, run in zip(rows, runs, strict=True):
        shape = "dense shape" if r.pruning == "element" else f"assumed shape {r.shape}"
        name = f"LeNet {r.pruning} {r.level} {r.numeric}"
        tgt = TARGETS["paper"] if r.pruning == "element" else None
        out.append(Row("paper", name, r.board, run.ms, r.ms, "ms", PAPER_SOURCE, tgt, shape))
    for board in sorted({r.board for r in rows}):
        pairs = {(r.pruning, r.level, r.numeric): run for r, run in zip(rows, runs, strict=True) if r.board == board}
        pub = {(r.pruning, r.level, r.numeric): r.ms for r in rows if r.board == board}
        for pruning, level in (("element", ">99 %"), ("element", ">97 %"), ("structure", ">99 %")):
            key_f, key_u = (pruning, level, "float32"), (pruning, level, "uint8")
            if key_f not in pairs or key_u not in pairs:
                continue
            shape = "dense shape" if pruning == "element" else "assumed shape (4, 8, 8)"
            out.append(
                Row("ratio", f"float / uint8 latency ({pruning} {level})", board, pairs[key_f].ms / pairs[key_u].ms,
                    pub[key_f] / pub[key_u], "x", PAPER_SOURCE, TARGETS["ratio"], shape),
            )  # fmt: skip
    return out


# -- power fit -----------------------------------------------------------------------------------
POWER_TERMS = ("mem", "fp", "mul", "flash_reads")


@dataclass(frozen=True)
class PowerFit:
    board: str
    base_a: float
    coefficients: dict[str, float]  # per-instruction-fraction current, A
    rows: list[tuple[str, float, float]]  # (row, fitted mW, paper mW)

    @property
    def rms_rel(self) -> float:
        return float(np.sqrt(np.mean([(f / p - 1) ** 2 for _, f, p in self.rows])))


def fit_power(rows: Sequence[PaperRow], runs: Sequence[ModelRun]) -> list[PowerFit]:
    """Per board, bounded least squares of the paper's per-row supply current on the
    instruction-class fractions measured in each row's simulated inference. The base (active)
    current is at least the board's sleep current and every class term is non-negative, so the
    coefficients stay physical even where the rows do not pin them down."""
    from scipy.optimize import lsq_linear

    fits = []
    for board_name in sorted({r.board for r in rows}):
        board = load_board(board_name)
        assert board.sim is not None
        sel = [(r, run) for r, run in zip(rows, runs, strict=True) if r.board == board_name]
        terms = [t for t in POWER_TERMS if any(run.mix.get(t, 0) > 0 for _, run in sel)]
        a = np.array([[1.0, *(run.mix.get(t, 0.0) for t in terms)] for _, run in sel])
        y = np.array([r.mw / 1e3 / board.supply.nominal_v for r, _ in sel])
        lower = [board.sim.idle_current_a] + [0.0] * len(terms)
        coef = lsq_linear(a, y, bounds=(lower, [np.inf] * (len(terms) + 1))).x
        fitted = a @ coef * board.supply.nominal_v * 1e3
        fits.append(
            PowerFit(
                board_name,
                float(coef[0]),
                {t: float(c) for t, c in zip(terms, coef[1:], strict=True)},
                [(f"{r.pruning} {r.level} {r.numeric}", float(f), r.mw) for (r, _), f in zip(sel, fitted, strict=True)],
            )
        )
    return fits


def power_rows(rows: Sequence[PaperRow], runs: Sequence[ModelRun]) -> list[Row]:
    """Simulated power (the boards' current [sim] coefficients) against the paper's per row."""
    return [
        Row("power", f"LeNet {r.pruning} {r.level} {r.numeric}", r.board, run.mw, r.mw, "mW", PAPER_SOURCE, 0.30)
        for r, run in zip(rows, runs, strict=True)
    ]


# -- report --------------------------------------------------------------------------------------
def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "harness", "boards", "firmware_templates"],
            cwd=repo_root(), capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except OSError:
        return "unknown"
    commit = out.stdout.strip() or "unknown"
    return commit + ("+local changes" if dirty.stdout.strip() else "")


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.1f}"


def format_table(rows: Sequence[Row]) -> str:
    head = "| group | workload | board | simulated | published | unit | error | target | within | note |\n"
    head += "|---|---|---|---:|---:|---|---:|---:|---|---|\n"
    lines = []
    for r in rows:
        within = {True: "yes", False: "**no**", None: "(info)"}[r.ok]
        tgt = f"±{r.target:.0%}" if r.target is not None else "-"
        lines.append(
            f"| {r.group} | {r.name} | {r.board} | {_fmt(r.simulated)} | {_fmt(r.published)} | {r.unit} | "
            f"{r.error:+.1%} | {tgt} | {within} | {r.note} |"
        )
    return head + "\n".join(lines) + "\n"


# What is known about a miss (printed only for rows that miss): (group, name fragment, board or "").
KNOWN_CAUSES: tuple[tuple[str, str, str, str], ...] = (
    ("paper", "uint8", "sim-pico",
     "the paper's uint8 Pico latency is the same at 95 % and 97 % sparsity (392.23 / 392.27 ms) "
     "while its float and Nano latencies fall with sparsity, so its Pico uint8 kernels did not gain "
     "from the zeros; its runtime is not public (notes/seed-code.md), so there is no code to compare. "
     "The harness's CSR M0+ kernels (two pixels per row walk) are faster than that figure, and its "
     "dense four-pixel kernels on the same model (the \"dense weights\" row) slower: a software "
     "difference, not one of the simulated memory system, whose float rows on the same model and "
     "board, and uint8 rows on the Nano, are within target."),
    ("ratio", "float / uint8", "sim-pico",
     "follows from the uint8 rows above (the float rows on their own are within target); the "
     "structure row's shape is also an assumption, and its uint8 model runs the harness's dense "
     "four-pixel M0+ kernels, about twice as fast per MAC as the one-pixel loop it replaced."),
)  # fmt: skip


def format_misses(rows: Sequence[Row]) -> str:
    out = []
    for r in rows:
        if r.ok is not False:
            continue
        why = next(
            (c for g, frag, b, c in KNOWN_CAUSES if r.group == g and frag in r.name and b in ("", r.board)),
            "no known cause: a model error",
        )
        out.append(f"- {r.name} on {r.board} ({r.error:+.0%}): {why}")
    return "\n".join(out) + "\n" if out else "None.\n"


def format_fits(fits: Sequence[PowerFit]) -> str:
    out = []
    for f in fits:
        coef = ", ".join(f"{k} {v * 1e3:.2f} mA" for k, v in f.coefficients.items())
        out.append(f"- **{f.board}**: base {f.base_a * 1e3:.2f} mA; per unit fraction: {coef or 'none'}; "
                   f"RMS error {f.rms_rel:.1%}")  # fmt: skip
        for name, fitted, paper in f.rows:
            out.append(f"  - {name}: fitted {fitted:.1f} mW, paper {paper:.1f} mW ({fitted / paper - 1:+.1%})")
    return "\n".join(out) + "\n"


def render_report(rows: Sequence[Row], fits: Sequence[PowerFit], seconds: float) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    missed = [r for r in rows if r.ok is False]
    targeted = sum(r.ok is not None for r in rows)
    summary = f"{len(missed)} of {targeted} targeted rows miss their target"
    if missed:
        summary += ": " + "; ".join(f"{r.name} on {r.board} ({r.error:+.0%})" for r in missed)
    return (
        "# Simulated rig: accuracy against published figures\n\n"
        f"Generated by `harness sim calibrate` on {stamp} at git commit `{git_commit()}` "
        f"({seconds:.0f} s). Do not edit by hand: rerun the command. Models, sources and "
        "assumptions: docs/sim-board.md (\"Timing and power model\").\n\n"
        "Every simulated figure is an ESTIMATE from the emulator's cycle, memory-system and power "
        "models; the published figures are measurements on silicon. Error = simulated / published - 1. "
        "Rows marked (info) have no target: their model shape is an assumption.\n\n"
        + format_table(rows)
        + f"\n{summary}.\n\n## Rows that miss, and why\n\n" + format_misses(rows)
        + "\n## Power fit (per instruction class)\n\n"
        "Bounded least squares, per board, of seed 002's per-row supply power (Table 3) on the "
        "instruction-class fractions (loads/stores, FPU, multiply/MAC, data reads from flash) of "
        "each row's simulated inference (base current >= the board's sleep current, class terms "
        ">= 0); the boards' `[sim]` / `[sim.power]` currents come from such a fit (each board file says which one and why). The fit "
        "is in-sample (the same rows as the power rows above). Classes that never occur on a "
        "board (no FPU on the Pico) are left out; sleep current is not fitted (the paper does not "
        "report it).\n\n"
        + (format_fits(fits) if fits else "(not run)\n")
    )


@contextlib.contextmanager
def _cmsis_nn_path() -> Iterator[None]:
    """$CMSIS_NN_PATH for the CMSIS-NN rows: the user's, else the vendored checkout beside the
    repository (restored afterwards, so nothing else in the process sees it)."""
    if os.environ.get("CMSIS_NN_PATH"):
        yield
        return
    os.environ["CMSIS_NN_PATH"] = str(repo_root().parent / "shared" / "vendor" / "CMSIS-NN")
    try:
        yield
    finally:
        os.environ.pop("CMSIS_NN_PATH", None)


def run_calibration(
    *,
    cores: Sequence[str] = tuple(COREMARK_PUBLISHED),
    seed_models: Sequence[str] = tuple(SEED_MS),
    paper: bool = True,
    progress: Callable[[str], None] = lambda _m: None,
    work: Path | None = None,
) -> tuple[list[Row], list[PowerFit]]:
    with _cmsis_nn_path(), tempfile.TemporaryDirectory(prefix="harness-calibrate-") as tmp:
        base = work or Path(tmp)
        rows = coremark_rows(cores, base, progress) + seed_rows(seed_models, base, progress)
        fits: list[PowerFit] = []
        if paper:
            runs = paper_runs(PAPER_ROWS, base, progress)
            rows += paper_rows(PAPER_ROWS, runs) + dense_rows(PAPER_ROWS, base, progress)
            rows += power_rows(PAPER_ROWS, runs)
            fits = fit_power(PAPER_ROWS, runs)
    return rows, fits


def timed(fn: Callable[[], tuple[list[Row], list[PowerFit]]]) -> tuple[list[Row], list[PowerFit], float]:
    t0 = time.monotonic()
    rows, fits = fn()
    return rows, fits, time.monotonic() - t0
