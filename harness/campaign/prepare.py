"""The host-only part of a configuration: compress (shared per model x compression x numeric)
and build (per board). Runs on a worker thread ahead of the rig, so the rig is the bottleneck."""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import stop
from harness.campaign.matrix import ConfigPoint
from harness.campaign.stages import StageClock
from harness.config.board import load_board
from harness.config.campaign import CampaignConfig
from harness.config.limits import inside
from harness.ir import Artifact

if TYPE_CHECKING:
    from harness.build.records import AnyFootprint, BuildResult

# Test hook: HARNESS_FAULT_INJECT="hang:<config-id glob>" builds firmware whose inference never
# returns ("fault:<glob>": executes an undefined instruction), to exercise the runner's retry and
# failure path with real firmware.
FAULT_ENV = "HARNESS_FAULT_INJECT"
LOG = logging.getLogger(__name__)
PREPARE_NICE = 4  # how much lower the compress/build worker runs than the stations


def background_priority() -> None:
    """Initializer of the compress/build worker thread: lower its CPU priority (Linux: a nice
    value per thread; the torch threads and compiler processes it starts inherit it). Why: a
    station measuring a board is the campaign's critical path, and training beside an emulated
    board took a third of its core (the cold demo's Pico station ran 40 % slower); the worker
    still gets every core a station leaves idle, e.g. while one waits for its next model."""
    if not hasattr(os, "setpriority") or os.uname().sysname != "Linux":
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + PREPARE_NICE)


@dataclass
class Prepared:
    point: ConfigPoint
    artifact_dir: Path | None = None
    artifact: Artifact | None = None
    build: BuildResult | None = None
    fits: bool = True
    error: str | None = None
    footprint: AnyFootprint | None = None  # of a build that does not fit (it has no BuildResult)
    notes: dict[str, Any] = field(default_factory=dict)


def injected_cflags(config_id: str) -> list[str]:
    spec = os.environ.get(FAULT_ENV, "")
    kind, _, pattern = spec.partition(":")
    if kind in ("hang", "fault") and pattern and fnmatch.fnmatch(config_id, pattern):
        return [f"-DBENCH_INJECT_{kind.upper()}=1"]
    return []


class Preparer:
    """Compresses and builds configurations, reusing artifacts across boards and runs."""

    def __init__(self, campaign: CampaignConfig, run_dir: Path, cache_dir: Path, clock: StageClock | None = None,
                 mbed_os: str | None = None):
        self.campaign = campaign
        self.clock = clock or StageClock()
        self.mbed_os = mbed_os  # the rig file's Mbed CE tree ($MBED_OS_PATH wins over it)
        self.run_dir = run_dir
        self.cache_dir = cache_dir
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._busy_stations = 0

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def artifact(self, point: ConfigPoint, progress: Any = None) -> tuple[Path, Artifact]:
        folder = inside(self.run_dir, "artifacts", *point.artifact_key.split("/"))  # ids are validated; still checked
        with self._lock(point.artifact_key):
            if (folder / "artifact.json").exists() and (folder / "samples.npz").exists():
                try:  # a run stopped by a full disk may have left a truncated file: then compress again
                    art = Artifact.load(folder)
                    with np.load(folder / "samples.npz") as npz:
                        _ = (npz["x"].shape, npz["y"].shape)  # reading the members checks the archive
                    return folder, art
                except Exception as exc:
                    LOG.warning("artifact %s is unreadable (%s: %s); compressing again", folder, type(exc).__name__, exc)
            from harness.compress.api import compress_from_campaign

            with self.clock.time("train/prune"):
                art = compress_from_campaign(
                point.model, point.compression, point.numeric, self.campaign.dataset, self.campaign.seed,
                    folder, progress=progress, cache_dir=self.cache_dir / "compress",
                    test_samples=self.campaign.device_samples(point.numeric), threads=self.train_threads(),
                )
            return folder, art

    @contextlib.contextmanager
    def station_busy(self) -> Iterator[None]:
        """Held by a station while it flashes, checks and measures one configuration."""
        with self._guard:
            self._busy_stations += 1
        try:
            yield
        finally:
            with self._guard:
                self._busy_stations -= 1

    def train_threads(self) -> int:
        """The campaign's ``train_threads``, else the cores the stations busy right now leave
        free (decided per compression cell). Why: torch's intra-op threads synchronise every
        step, so one sharing a core with an emulated board stalls all of them (measured on 2
        cores: 2 threads beside a busy core took 2x as long per epoch as 1 thread; on idle cores
        2 threads took 0.55x)."""
        if self.campaign.train_threads is not None:
            return self.campaign.train_threads
        return max(1, (os.cpu_count() or 1) - self._busy_stations)

    def prepare(self, point: ConfigPoint, progress: Any = None) -> Prepared:
        from harness.build import FirmwareTooLarge, build_firmware
        from harness.build.mbed import mbed_os_path

        if point.prebuilt is not None:  # a [[firmware]] entry: nothing to compress or build
            from harness.campaign import prebuilt

            return prebuilt.prepare(point)
        prep = Prepared(point)
        prep.artifact_dir, prep.artifact = self.artifact(point, progress)
        stop.raise_if_requested()  # between stages: the compressed artifact is kept, the build waits
        board = load_board(point.board)
        out = inside(self.run_dir, "firmware", point.config_id.replace("/", "__"))
        try:
            with self.clock.time("build"):
                prep.build = build_firmware(
                    prep.artifact_dir, out_dir=out, cache_dir=self.cache_dir / "build",
                    mbed_os=mbed_os_path(None, self.mbed_os),
                    **point.build_kwargs(board, injected_cflags(point.config_id)),
                )
        except FirmwareTooLarge as exc:
            prep.fits = False
            prep.error = str(exc)
            prep.footprint = exc.footprint
            return prep
        fp = prep.build.footprint
        prep.fits = fp is None or fp.fits
        if not prep.fits:
            prep.error = "does not fit the board's flash/RAM"
        return prep
