"""build_firmware: model sources + firmware template + board -> ELF/BIN/HEX with a footprint
report, served from the content-addressed cache when nothing changed."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.build import flags as F
from harness.build.cache import BuildCache, cache_key
from harness.build.footprint import measure_footprint
from harness.build.linker import render_linker_script
from harness.build.mbed import (
    MbedTreeMissing,
    check_tree,
    compile_project,
    generate_project,
    mbed_os_path,
    no_tree_message,
    shell_commands,
    tree_identity,
)
from harness.build.model import ModelSources, resolve_model
from harness.build.records import (
    AnyFootprint,
    BuildFailure,
    BuildInputs,
    BuildResult,
    FlashBound,
    Footprint,
    ModelStats,
    OverflowFootprint,
    RamBound,
)
from harness.build.templates import build_logic_hash, template_dir
from harness.build.toolchain import Toolchain, ToolFailed, find_toolchain, run_tool
from harness.config.board import BoardConfig, load_board
from harness.errors import StageError

ELF, BIN, HEX, MAP, LDS = "firmware.elf", "firmware.bin", "firmware.hex", "firmware.map", "board.ld"
FOOTPRINT, MANIFEST = "footprint.json", "build.json"
CACHED_FILES = (ELF, BIN, HEX, MAP, LDS, FOOTPRINT)
BARE_METAL_SOURCES = (("common", "bench_main.c"), ("bare-metal", "startup.c"), ("bare-metal", "hal_sim.c"))


class FirmwareTooLarge(StageError):
    """The image links only with unbounded memory; ``footprint`` says by how much it misses."""

    def __init__(self, message: str, footprint: AnyFootprint):
        self.footprint = footprint
        super().__init__(message)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _board_identity(board: BoardConfig) -> dict[str, Any]:
    """The board fields the image depends on (not currents, supply, descriptions)."""
    return board.model_dump(mode="json", include={"name", "core", "clock_hz", "has_dwt", "memory", "gpio", "uart", "build", "flash"})


def build_firmware(
    model: Any,
    board: BoardConfig | str,
    out_dir: Path | str,
    *,
    dsp: bool | None = None,
    cache_dir: Path | str | None = None,
    sparse: str = "auto",
    backend: str = "portable",
    extra_cflags: Sequence[str] = (),
    max_laps: int | None = None,
    toolchain_dir: str | None = None,
    mbed_os: Path | str | None = None,
    timeout_s: float = 900.0,
    jobs: int | None = None,
    generate_only: bool = False,
    mbed_work_dir: Path | str | None = None,
) -> BuildResult:
    """Build the benchmark firmware for ``board`` into ``out_dir``.

    ``model`` is an artifact folder, an ``harness.ir.Artifact`` (both go through
    harness.codegen.generate), a GeneratedModel, or ``ModelSources`` (hand-written C).
    ``dsp`` defaults to on for M4/M7. ``cache_dir`` enables the content-addressed cache (None:
    no caching). Boards with ``build.template = "mbed"`` get an Mbed CE project compiled against
    ``mbed_os`` (else $MBED_OS_PATH); without a tree that raises MbedTreeMissing (naming what to
    install) unless ``generate_only`` asks for the project alone. ``mbed_work_dir`` holds the kept
    per-board Mbed build folders (default harness.build.mbed.work_root()).
    """
    t0 = time.monotonic()
    board = load_board(board) if isinstance(board, str) else board
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    use_dsp = F.default_dsp(board) if dsp is None else dsp
    gen_dir = out / "model"
    sources, generated_dir = resolve_model(model, gen_dir, dsp=use_dsp, sparse=sparse, backend=backend)
    template = board.build.template
    cflags = [*F.cpu_flags(board), *F.COMMON_CFLAGS, *board.build.extra_cflags, *extra_cflags]
    try:
        tc: Toolchain | None = find_toolchain(toolchain_dir)
    except StageError:
        if template == "bare-metal":
            raise
        tc = None  # generating an Mbed project does not need the compiler
    link_origin = board.memory.flash_base + board.memory.app_offset
    if template == "bare-metal" and board.program_base != link_origin:
        raise StageError(
            f"build for board {board.name}: flash.base_address {board.program_base:#x} differs from "
            f"flash_base + app_offset = {link_origin:#x}, where the image is linked; a .bin programmed "
            "there would not boot"
        )
    ld_text = render_linker_script(board) if template == "bare-metal" else ""
    os_path = mbed_os_path(mbed_os) if template == "mbed" else None
    key = cache_key(
        {
            "template": template,
            "model": sources.digest(),
            "board": _board_identity(board),
            "options": {"dsp": use_dsp, "sparse": sparse, "backend": backend, "max_laps": max_laps},
            "cflags": cflags,
            "link": [*F.LINK_FLAGS, *F.LINK_LIBS],
            "linker_script": ld_text,
            "toolchain": tc.version if tc else "none",
            "templates": build_logic_hash(template),
            **({"mbed_os": tree_identity(os_path)} if os_path else {}),
        }
    )
    build_id = key[:12]
    defines = {**sources.defines, **F.firmware_defines(board, build_id, max_laps)}
    common = BuildInputs(
        board=board.name,
        template=template,
        out_dir=out,
        toolchain=tc.version if tc else "not found",
        build_id=build_id,
        model_hash=sources.model_hash,
        generated_dir=generated_dir,
        model_stats=ModelStats(
            numeric=sources.numeric,
            macs=sources.macs,
            weights_bytes=sources.weights_bytes,
            arena_bytes=sources.arena_bytes,
            layers=len(sources.layers),
        ),
    )

    cache = BuildCache(Path(cache_dir)) if cache_dir is not None else None
    if template == "mbed":
        result = _build_mbed(board, sources, out, defines, tc, os_path, timeout_s, common,
                             cache=cache, key=key, generate_only=generate_only,
                             work_dir=Path(mbed_work_dir) if mbed_work_dir else None)
    else:
        assert tc is not None
        entry = cache.lookup(key) if cache else None
        if cache and entry:
            cache.restore(entry, out)
            status, hit = "cached", True
        else:
            _compile_bare_metal(board, sources, out, tc, cflags, defines, ld_text, timeout_s, jobs)
            if cache:
                cache.store(key, [out / f for f in CACHED_FILES])
            status, hit = "built", False
        result = BuildResult(
            **dict(common),
            status=status,
            elf=out / ELF,
            bin=out / BIN,
            hex=out / HEX,
            footprint=Footprint.load(out / FOOTPRINT),
            firmware_sha256=_sha256(out / BIN),
            cache_hit=hit,
        )
    result = result.model_copy(update={"seconds": round(time.monotonic() - t0, 3)})
    result.write(out / MANIFEST)
    return result


def _compile_bare_metal(
    board: BoardConfig,
    sources: ModelSources,
    out: Path,
    tc: Toolchain,
    cflags: list[str],
    defines: dict[str, Any],
    ld_text: str,
    timeout_s: float,
    jobs: int | None,
) -> None:
    obj_dir = out / "obj"
    if obj_dir.exists():
        shutil.rmtree(obj_dir)
    obj_dir.mkdir()
    for name in (*CACHED_FILES, f"unbounded-{ELF}"):
        (out / name).unlink(missing_ok=True)
    template_srcs = [template_dir(kind) / name for kind, name in BARE_METAL_SOURCES]
    all_srcs = [*template_srcs, *sources.sources]
    includes = [f"-I{p}" for p in (template_dir("common"), *sources.include_dirs)]
    base = [tc.gcc, *cflags, "-g", *F.define_flags(defines), *includes]
    objs = [obj_dir / f"{i:03d}_{src.stem}.o" for i, src in enumerate(all_srcs)]

    def compile_one(pair: tuple[Path, Path]) -> None:
        src, obj = pair
        run_tool([*base, "-c", str(src), "-o", str(obj)], board=board.name, what=f"compiling {src.name}", timeout=timeout_s)

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        list(pool.map(compile_one, zip(all_srcs, objs, strict=True)))  # re-raises the first failure

    model_objs = objs[len(template_srcs) :]
    weights_objs = None
    if sources.weights_sources is not None:
        wanted = {Path(w).resolve() for w in sources.weights_sources}
        weights_objs = [o for s, o in zip(sources.sources, model_objs, strict=True) if s.resolve() in wanted]
    (out / LDS).write_text(ld_text)
    try:
        _link(board, tc, objs, out / LDS, out / ELF, out / MAP, timeout_s)
    except ToolFailed as exc:
        if "overflowed" not in exc.output and "will not fit in region" not in exc.output:
            raise
        _report_too_large(board, tc, objs, model_objs, weights_objs, out, timeout_s)
    run_tool([tc.objcopy, "-O", "binary", str(out / ELF), str(out / BIN)], board=board.name, what="objcopy (bin)", timeout=60)
    run_tool([tc.objcopy, "-O", "ihex", str(out / ELF), str(out / HEX)], board=board.name, what="objcopy (hex)", timeout=60)
    measure_footprint(out / ELF, board, model_objs, weights_objs).write(out / FOOTPRINT)


def _link(board: BoardConfig, tc: Toolchain, objs: list[Path], lds: Path, elf: Path, map_file: Path, timeout_s: float) -> None:
    cmd = [tc.gcc, *F.cpu_flags(board), "-mthumb", *F.LINK_FLAGS, "-T", str(lds), f"-Wl,-Map={map_file}",
           *map(str, objs), *F.LINK_LIBS, "-o", str(elf)]  # fmt: skip
    run_tool(cmd, board=board.name, what="linking", timeout=timeout_s)


def _report_too_large(
    board: BoardConfig,
    tc: Toolchain,
    objs: list[Path],
    model_objs: list[Path],
    weights_objs: list[Path] | None,
    out: Path,
    timeout_s: float,
) -> None:
    """Relink with unbounded regions to measure the image, write footprint.json, raise."""
    lds = out / f"unbounded-{LDS}"
    lds.write_text(render_linker_script(board, unbounded=True))
    elf = out / f"unbounded-{ELF}"
    _link(board, tc, objs, lds, elf, out / f"unbounded-{MAP}", timeout_s)
    fp = measure_footprint(elf, board, model_objs, weights_objs)
    fp.write(out / FOOTPRINT)
    fl, ram = fp.flash, fp.ram
    raise FirmwareTooLarge(
        f"build for board {board.name}: the firmware does not fit: flash {fl.total} of {fl.available} bytes "
        f"(weights {fl.weights}), RAM {ram.total} of {ram.available} bytes (arena {ram.arena}, "
        f"stack {ram.stack}); see {out / FOOTPRINT}",
        fp,
    )


def linker_overflow_footprint(board: BoardConfig, sources: ModelSources, output: str) -> OverflowFootprint:
    """What is known of an image that did not link: GNU ld's "region `X' overflowed by N bytes"
    per region (so the totals are lower bounds: available + N), the model's own weights and
    arena from the code generator. Unknown totals are None."""
    over: dict[str, int] = {}
    for region, n in re.findall(r"region [`'\"]?([\w.]+)['\"]? overflowed by (\d+) bytes", output):
        over[region] = max(over.get(region, 0), int(n))
    mem = board.memory
    flash_avail = mem.flash_size - mem.app_offset
    flash_over = sum(n for r, n in over.items() if "RAM" not in r.upper())
    ram_over = sum(n for r, n in over.items() if "RAM" in r.upper())
    return OverflowFootprint(
        board=board.name,
        source="GNU ld overflow message: the image did not link, totals are lower bounds",
        flash=FlashBound(total=flash_avail + flash_over if flash_over else None, available=flash_avail,
                         weights=sources.weights_bytes),
        ram=RamBound(total=mem.ram_size + ram_over if ram_over else None, available=mem.ram_size,
                     arena=sources.arena_bytes),
        linker_overflow=over,
        fits=False,
    )  # fmt: skip


def _build_mbed(
    board: BoardConfig,
    sources: ModelSources,
    out: Path,
    defines: dict[str, Any],
    tc: Toolchain | None,
    os_path: Path | None,
    timeout_s: float,
    common: BuildInputs,
    *,
    cache: BuildCache | None,
    key: str,
    generate_only: bool,
    work_dir: Path | None,
) -> BuildResult:
    project = generate_project(board, sources, out / "mbed", defines, os_path)
    commands = shell_commands(project)
    for name in CACHED_FILES:
        (out / name).unlink(missing_ok=True)  # never leave an older image beside a failed build
    if generate_only:
        return BuildResult(
            **dict(common), status="generated, not compiled", elf=None, bin=None, hex=None, footprint=None,
            firmware_sha256=None, cache_hit=False, project_dir=project.folder, commands=commands,
        )  # fmt: skip
    if os_path is None:
        BuildFailure(**dict(common), status="failed: no Mbed CE tree", project_dir=project.folder,
                     commands=commands).write(out / MANIFEST)
        raise MbedTreeMissing(no_tree_message(board), project.folder, commands)
    check_tree(board, os_path)
    if tc is None:
        find_toolchain()  # raises the "not found" StageError
    assert tc is not None
    entry = cache.lookup(key) if cache else None
    if cache and entry:
        cache.restore(entry, out)
        status, hit = "cached", True
    else:
        try:
            elf, model_objs, commands = compile_project(board, project, timeout_s, out, work_dir=work_dir)
        except ToolFailed as exc:
            if "overflowed" not in exc.output and "will not fit in region" not in exc.output:
                raise
            fp = linker_overflow_footprint(board, sources, exc.output)
            fp.write(out / FOOTPRINT)
            raise FirmwareTooLarge(
                f"build for board {board.name}: the firmware does not fit (Mbed link): "
                + "; ".join(f"{r} overflowed by {n} bytes" for r, n in fp.linker_overflow.items())
                + f"; see {out / FOOTPRINT}",
                fp,
            ) from None
        run_tool([tc.objcopy, "-O", "binary", str(elf), str(out / BIN)], board=board.name, what="objcopy (bin)", timeout=60)
        run_tool([tc.objcopy, "-O", "ihex", str(elf), str(out / HEX)], board=board.name, what="objcopy (hex)", timeout=60)
        weights_objs = None
        if sources.weights_sources is not None:
            wanted = {Path(w).name for w in sources.weights_sources}
            weights_objs = [o for o in model_objs if o.name.split("_", 1)[1].removesuffix(".obj") in wanted]
        measure_footprint(elf, board, model_objs, weights_objs).write(out / FOOTPRINT)
        if cache:
            cache.store(key, [out / f for f in (ELF, BIN, HEX, FOOTPRINT)])
        status, hit = "built", False
    return BuildResult(
        **dict(common), status=status, elf=out / ELF, bin=out / BIN, hex=out / HEX,
        footprint=Footprint.load(out / FOOTPRINT), firmware_sha256=_sha256(out / BIN), cache_hit=hit,
        project_dir=project.folder, commands=commands,
    )  # fmt: skip
