"""A rig PC as a Ray node: `harness agent --rig instruments/<rig>.toml --address <head>` starts a
Ray worker node that advertises one custom resource per DUT (``dut:<rig>/<board>``) and one per
power monitor (``analyzer:<rig>/<kind>``), so the campaign's driver places each board's station
on the node wired to it. The station itself (StationService) runs there as a Ray actor holding
the board's reservation and its open probe, serial and monitor sessions.

Ray is optional (`pip install .[cluster]`): nothing here imports it at module level."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from harness.config.rig import RigConfig
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.campaign.bench import Bench

RIG_ENV = "HARNESS_AGENT_RIG"  # the rig file of the node, inherited by its Ray workers
DUT_PREFIX, ANALYZER_PREFIX = "dut:", "analyzer:"
BUILDER = "harness-builder"  # one per CPU of a node that has arm-none-eabi-gcc: builds go there


def require_ray() -> ModuleType:
    try:
        import ray
    except ImportError:  # the optional extra, not our own code
        raise HarnessError("Ray is not installed: pip install '.[cluster]' (or 'ray[default]')") from None
    return ray


def dut_resource(rig: str, board: str) -> str:
    return f"{DUT_PREFIX}{rig}/{board}"


def parse_dut_resource(name: str) -> tuple[str, str] | None:
    """(rig, board) of a ``dut:<rig>/<board>`` resource name, else None."""
    if not name.startswith(DUT_PREFIX) or "/" not in name:
        return None
    rig, _, board = name[len(DUT_PREFIX):].partition("/")
    return (rig, board) if rig and board else None


def resources_for(rig: RigConfig, builders: int = 0) -> dict[str, float]:
    out = {dut_resource(rig.name, d.board): 1.0 for d in rig.duts}
    if rig.power_analyzer.kind != "none":
        out[f"{ANALYZER_PREFIX}{rig.name}/{rig.power_analyzer.kind}"] = 1.0
    if builders:
        out[BUILDER] = float(builders)
    return out


def ray_start_command(rig: RigConfig, address: str, num_cpus: int, object_store_mb: int) -> list[str]:
    import shutil

    builders = num_cpus if shutil.which("arm-none-eabi-gcc") else 0  # builds need the toolchain here
    return [sys.executable, "-m", "ray.scripts.scripts", "start", f"--address={address}",
            f"--resources={json.dumps(resources_for(rig, builders))}", f"--num-cpus={num_cpus}",
            f"--object-store-memory={object_store_mb * 1_000_000}", "--disable-usage-stats", "--block"]


def agent(
    rig: Annotated[str, typer.Option("--rig", help="This PC's rig file (instruments/<rig>.toml) or its name.")],
    address: Annotated[str, typer.Option("--address", help="The Ray head's GCS address, e.g. 10.0.0.5:6379.")],
    num_cpus: Annotated[int, typer.Option("--num-cpus", min=0, max=256,
                                          help="CPUs this node offers for builds (0: stations only).")] = 1,
    object_store_mb: Annotated[int, typer.Option("--object-store-mb", min=80, max=1_000_000,
                                                 help="Ray object store size (firmware images travel through it).")] = 100,
    node_ip: Annotated[str | None, typer.Option("--node-ip", help="This node's IP as the head sees it "
                                                                  "(default: Ray's guess).")] = None,
) -> None:
    """Join this rig PC to a Ray cluster as a node owning the rig's boards.

    Advertises one resource per DUT (dut:<rig>/<board>) and per power monitor
    (analyzer:<rig>/<kind>); `harness run CAMPAIGN --cluster <head>` then runs each board's
    configurations in a station on this node. Runs until Ctrl-C or SIGTERM (the node leaves the
    cluster; a campaign records the configuration in flight as interrupted). See docs/cluster.md."""
    from harness.config import load_rig
    from harness.config.loader import find_config

    require_ray()
    path = find_config("instruments", rig).resolve()
    cfg = load_rig(path)
    if address.startswith("ray://"):
        raise typer.BadParameter("give the head's GCS address (host:6379), not a ray:// client address",
                                 param_hint="--address")
    cmd = ray_start_command(cfg, address, num_cpus, object_store_mb)
    if node_ip:
        cmd.append(f"--node-ip-address={node_ip}")
    typer.echo(f"agent for rig {cfg.name} ({path}): resources {', '.join(resources_for(cfg))} -> {address}")
    env = {**os.environ, RIG_ENV: str(path)}
    proc = subprocess.Popen(cmd, env=env)  # same process group: a kill of the agent's group ends the node

    stopping: list[bool] = []

    def stop(signum: int, frame: Any) -> None:
        stopping.append(True)
        proc.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started

    old = signal.signal(signal.SIGTERM, stop)
    try:
        rc = _watch(proc, cfg)
    except KeyboardInterrupt:
        stopping.append(True)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, old)
    if stopping:
        typer.echo(f"agent for rig {cfg.name}: left the cluster")
    elif rc != 0:
        raise HarnessError(f"the Ray node of rig {cfg.name} exited with status {rc} (is the head at {address} up?)")


def _watch(proc: subprocess.Popen[bytes], rig: RigConfig, every_s: float = 2.0) -> int:
    """Wait for the Ray node to end; meanwhile switch off the outputs of any board whose station
    died without closing its bench (harness.campaign.orphans)."""
    from harness.campaign.orphans import switch_off_orphans

    while True:
        try:
            return proc.wait(timeout=every_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            for msg in switch_off_orphans(rig):
                typer.echo(f"agent: {msg}", err=True)
        except Exception as exc:  # the watchdog never takes the node down
            typer.echo(f"agent: orphan check failed: {exc}", err=True)


def node_cache() -> Path:
    """Content-addressed store of firmware images and test inputs on this node."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "cluster-blobs"


def fetch_blob(sha256: str, ref: Any, name: str) -> Path:
    """The file with content hash ``sha256``: from this node's cache, or fetched once through
    Ray's object store and kept (so an image is sent to a node once, never rebuilt there)."""
    import hashlib

    ray = require_ray()
    folder = node_cache() / sha256
    path = folder / name
    if path.exists():
        return path
    data: bytes = ray.get(ref)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise HarnessError(f"blob {name}: content does not match its hash {sha256[:12]}")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def build_on_node(artifact_sha: str, artifact_ref: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A Ray task on a builder node: the artifact (a tar, by content hash, unpacked once per
    node), built with this node's toolchain and build cache; returns the BuildResult (as JSON data,
    like the footprint of an image that does not fit) and the build folder as a tar (the images
    then travel by content hash like any other blob)."""
    import io
    import tarfile
    import tempfile

    from harness.build import FirmwareTooLarge, build_firmware

    art_tar = fetch_blob(artifact_sha, artifact_ref[0], "artifact.tar")
    art_dir = art_tar.parent / "artifact"
    if not art_dir.exists():
        tmp = Path(tempfile.mkdtemp(dir=art_tar.parent))
        with tarfile.open(art_tar) as tf:
            tf.extractall(tmp, filter="data")  # refuses links and paths outside the folder
        tmp.replace(art_dir)
    where = {"host": socket.gethostname(), "node_id": _node_id()}
    with tempfile.TemporaryDirectory(prefix="harness-build-") as d:
        out = Path(d) / "fw"
        try:
            result = build_firmware(art_dir, out_dir=out, cache_dir=node_cache() / "build", **kwargs)
        except FirmwareTooLarge as exc:
            return {"too_large": str(exc), "footprint": exc.footprint.model_dump(mode="json"), **where}
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            tf.add(out, arcname=".")
        return {"result": result.model_dump(mode="json"), "out_dir": str(out), "tar": buf.getvalue(), **where}


class StationService:
    """One board of this node's rig, for one campaign (a Ray actor): takes the board's
    reservation, opens its bench (probe, serial, monitor; the simulated parts start here when the
    rig file says 'sim') and keeps it open; ``measure`` runs one configuration, whose store
    writes the driver collects as events with ``events`` (harness.campaign.stations)."""

    def __init__(self, board: str, holder: dict[str, Any]):
        from harness.campaign.bench import Bench
        from harness.campaign.reserve import BoardReservation
        from harness.config import load_rig
        from harness.sim.flashstore import scoped_to_run

        rig_file = os.environ.get(RIG_ENV)
        if not rig_file:
            raise HarnessError(f"this Ray node was not started by `harness agent` ({RIG_ENV} is not set)")
        self.rig = load_rig(rig_file)
        self.board = board
        self.placement = {"rig": self.rig.name, "rig_file": rig_file, "host": socket.gethostname(),
                          "resource": dut_resource(self.rig.name, board), "node_id": _node_id()}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._events: queue.Queue[Any] = queue.Queue()
        self.bench: Bench | None = None
        self._scope: Any = None
        reservation = BoardReservation(self.rig.name, board, holder).acquire()
        self.reservation: BoardReservation | None = reservation
        self.holder = reservation.holder
        try:
            self._scope = scoped_to_run(Path(holder.get("run_dir", ".")))
            self._scope.__enter__()
            self.bench = Bench(self.rig, [board]).__enter__()
        except BaseException:
            self.close()  # the reservation is not kept by a station that never started
            raise
        import atexit

        atexit.register(self.close)  # outputs off if the worker is asked to exit

    def info(self) -> dict[str, Any]:
        assert self.bench is not None, "station closed"
        return dict(self.placement, simulated=self.bench.station(self.board).board.simulated, holder=self.holder)

    def measure(self, job: dict[str, Any]) -> None:
        """Start flashing, checking and measuring one configuration; its store writes are then
        collected with ``events`` (polled: works over Ray Client too)."""
        from dataclasses import replace

        from harness.campaign.prepare import Prepared
        from harness.campaign.runner import CampaignRunner
        from harness.campaign.stations import StationCancelled, StoreProxy

        if self._thread is not None and self._thread.is_alive():
            raise HarnessError(f"station {self.board} is already measuring a configuration")
        prep: Prepared = job["prep"]
        if prep.build is None:
            raise HarnessError(f"station {self.board}: configuration {prep.point.config_id} has no firmware")
        firmware = fetch_blob(job["firmware_sha256"], job["firmware_ref"], job["firmware_name"])
        samples = fetch_blob(job["samples_sha256"], job["samples_ref"], "samples.npz")
        build = prep.build.model_copy(update={"hex": firmware if firmware.suffix == ".hex" else None,
                                              "elf": firmware if firmware.suffix == ".elf" else prep.build.elf})
        prep = replace(prep, build=build, artifact_dir=samples.parent)
        bench = self.bench
        if bench is None:
            raise HarnessError(f"station {self.board} is closed")
        self._events = queue.Queue()
        self._stop = threading.Event()

        def emit(ev: Any) -> None:
            if self._stop.is_set():
                raise StationCancelled(self.board)
            name, args, kwargs = ev
            if name == "add_provenance":  # where the board was: rig, node, host
                kwargs = {**kwargs, "extra": {**(kwargs.get("extra") or {}), "placement": self.placement}}
            self._events.put((name, args, kwargs))

        def work() -> None:
            try:
                runner = CampaignRunner(job["campaign"], self.rig, Path(job["run_dir"]), cache_dir=node_cache(),
                                        parallel_stations=False)
                runner.store = StoreProxy(job["run_dir"], {prep.point.config_id: job["snapshot"]}, emit)
                runner._measure(bench, prep)
            except BaseException as exc:  # handed to the driver as an event
                self._events.put(("_error", (f"{type(exc).__name__}: {exc}",), {}))
            finally:
                self._events.put(("_finished", (), {}))

        self._thread = threading.Thread(target=work, name=f"station-{self.board}", daemon=True)
        self._thread.start()

    def events(self, wait_s: float = 1.0, most: int = 256) -> list[Any]:
        """The store writes taken since the last call (waits up to ``wait_s`` for the first);
        the last one of a configuration is ``("_finished", (), {})``."""
        out: list[Any] = []
        try:
            out.append(self._events.get(timeout=wait_s))
            while len(out) < most:
                out.append(self._events.get_nowait())
        except queue.Empty:
            pass
        return out

    def close(self) -> None:
        """Outputs off (confirmed), sessions closed, reservation released; safe to call twice."""
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
        bench: Bench | None = getattr(self, "bench", None)
        self.bench = None
        if bench is not None:
            bench.close()
        scope = getattr(self, "_scope", None)
        self._scope = None
        if scope is not None:
            scope.__exit__(None, None, None)
        res = getattr(self, "reservation", None)
        if res is not None:
            res.release()
            self.reservation = None


def _node_id() -> str | None:
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # outside a Ray worker
        return None
