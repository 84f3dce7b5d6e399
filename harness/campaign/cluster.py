"""One campaign across several rigs on Ray. The driver (`harness run CAMPAIGN --cluster <head>`)
compresses and builds ahead (its preparation worker, as on one rig), places one station actor
(harness.campaign.agent.StationService) per DUT on the node advertising ``dut:<rig>/<board>``,
hands each configuration of a board type to a station of that type, and applies the events its
station sends back (polled, so Ray Client works too) to the run's SQLite store, which only the driver writes: durability and
resume are those of a local run.

A station whose node drops out: its configuration in flight is recorded as interrupted (what it
stored is kept; `--resume` takes the rest), the board type's other stations carry on with its
queue; with none left the queue waits up to ``wait_s`` for a node with that board, then its
configurations are reported blocked. Firmware images and test inputs travel by content hash."""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import stop
from harness.campaign.agent import BUILDER, StationService, build_on_node, parse_dut_resource, require_ray
from harness.campaign.matrix import ConfigPoint
from harness.campaign.prepare import Prepared, background_priority
from harness.campaign.stations import Event, Snapshot, StationsView, StoreProxy, drain_events, snapshot
from harness.errors import HarnessError

LOG = logging.getLogger("harness.campaign")
NAMESPACE = "harness"
OPEN_TIMEOUT_S = 90.0  # a station starts its bench (simulated parts included) within this
CONNECT_ATTEMPTS = 3
# The head's client proxy starts one server process per client. On a loaded head that start can
# time out, or the new process can die before the proxy reads its command line (psutil's
# ZombieProcess in the proxy's traceback). Both are the start failing once: connect again.
CLIENT_SERVER_START_FAILURES = ("Starting Ray client server failed", "ZombieProcess")
EVENTS_TIMEOUT_S = 60.0  # a station answers a poll for events within this (it waits 1 s)


def connect(address: str) -> Any:
    """ray.init against a head: ``ray://host:10001`` (Ray Client) or a GCS address / 'auto'."""
    ray = require_ray()
    _reachable(address)
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        if ray.is_initialized():
            break
        try:
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            if attempt < CONNECT_ATTEMPTS and any(m in str(exc) for m in CLIENT_SERVER_START_FAILURES):
                LOG.warning("Ray cluster at %s: its client server did not start (attempt %d of %d); retrying",
                            address, attempt, CONNECT_ATTEMPTS)
                time.sleep(2.0 * attempt)
                continue
            raise HarnessError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
    return ray


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once on a head that does not listen (ray.init would retry for minutes)."""
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise HarnessError(f"--cluster {address!r}: give ray://<head>:<port>, <head>:<port> or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise HarnessError(f"cannot reach the Ray head at {address}: {exc} (is `ray start --head` running "
                           "there, and the port open?)") from None


def stations_by_board(ray: Any) -> dict[str, list[tuple[str, str]]]:
    """board -> [(rig, node id)] over the cluster's live nodes."""
    out: dict[str, list[tuple[str, str]]] = {}
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        for res in node.get("Resources", {}):
            parsed = parse_dut_resource(res)
            if parsed is not None:
                out.setdefault(parsed[1], []).append((parsed[0], node["NodeID"]))
    return out


class Blobs:
    """Files put into Ray's object store once per content hash."""

    def __init__(self, ray: Any):
        self.ray = ray
        self._refs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def put(self, path: Path) -> tuple[str, Any]:
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        with self._lock:
            if sha not in self._refs:
                self._refs[sha] = self.ray.put(data)
            return sha, self._refs[sha]


class ClusterCampaign:
    """Runs a CampaignRunner's configurations on the cluster's stations."""

    def __init__(self, runner: Any, address: str, wait_s: float = 60.0):
        self.runner = runner
        self.address = address
        self.wait_s = wait_s
        self.blocked: dict[str, str] = {}  # config id -> why it was not measured
        self.interrupted: dict[str, str] = {}
        self.placements: dict[str, str] = {}  # "<rig>/<board>" -> node id
        self._artifacts: dict[str, tuple[str, Any]] = {}  # artifact folder -> (sha256, object ref)

    # -- main loop (the campaign's thread) --------------------------------------------------
    def run(self, store: Any) -> Any:
        with stop.scope():  # as CampaignRunner.run: a stop asked for here ends with this run
            return self._run(store)

    def _run(self, store: Any) -> Any:
        from harness.campaign.runner import RunSummary

        r = self.runner
        r.store = store
        t0 = time.monotonic()
        r._register()
        todo = r._todo()
        skipped = len(r.points) - len(todo)
        if r.display is not None:
            r.display.start(len(r.points), skipped)
        if skipped:
            r._say(None, "resume", f"{skipped} configuration(s) already complete, {len(todo)} to go")
        ray = connect(self.address)
        r._say(None, "cluster", f"connected to {self.address}: stations "
                                f"{ {b: [rig for rig, _ in s] for b, s in stations_by_board(ray).items()} }")
        self.blobs = Blobs(ray)
        self.actor_cls = ray.remote(StationService)
        self.events: queue.Queue[tuple[str, Event]] = queue.Queue()
        self.snaps = {p.config_id: snapshot(store, p.config_id) for p in todo}
        by_id = {p.config_id: p for p in todo}
        view = StationsView(r.display, {b: sum(1 for p in todo if p.board == b) for b in {p.board for p in todo}})
        self.builders = int(ray.cluster_resources().get(BUILDER, 0))
        r._say(None, "cluster", f"builds on {self.builders} builder slot(s) of the cluster" if self.builders
               else "no node advertises harness-builder (arm-none-eabi-gcc): builds run on this driver")
        prepare = self._prepare_on_cluster if self.builders else r._prepare_safe
        with ThreadPoolExecutor(max_workers=max(1, self.builders), thread_name_prefix="prepare",
                                initializer=background_priority) as pool:
            futures: list[Future[Prepared]] = [pool.submit(prepare, p) for p in todo]
            work: dict[str, deque[tuple[ConfigPoint, Future[Prepared]]]] = {}
            for p, fut in zip(todo, futures, strict=True):
                work.setdefault(p.board, deque()).append((p, fut))
            threads = [threading.Thread(target=self._supervise, args=(ray, b, q), daemon=True,
                                        name=f"cluster-{b}") for b, q in work.items()]
            for t in threads:
                t.start()
            try:
                drain_events(self.events, len(threads), store, view, by_id)
            except BaseException:
                stop.request()  # the local prepare worker stops at its next training step
                for f in futures:
                    f.cancel()
                self._stopping = True
                raise
        statuses = store.statuses()
        count = {s: sum(1 for v in statuses.values() if v == s) for s in ("measured", "failed", "does-not-fit")}
        wall = time.monotonic() - t0
        r.clock.save(r.run_dir, wall)
        return RunSummary(r.run_dir, len(r.points), count["measured"], count["failed"], count["does-not-fit"],
                          skipped, wall, (), r.clock.as_dict(wall))

    _stopping = False

    # -- preparation: compression here (shared, cached), builds as Ray tasks on builder nodes ---
    def _prepare_on_cluster(self, p: ConfigPoint) -> Prepared:
        try:
            return self._prepare_remote(p)
        except Exception as exc:
            from harness.campaign.runner import _raise_if_storage

            _raise_if_storage(exc, self.runner.run_dir)
            LOG.exception("prepare %s failed", p.config_id)
            return Prepared(p, error=f"{type(exc).__name__}: {exc}")

    def _prepare_remote(self, p: ConfigPoint) -> Prepared:
        import io
        import tarfile

        from harness.build.records import BuildResult, parse_footprint
        from harness.campaign.prepare import injected_cflags
        from harness.config.board import load_board
        from harness.config.limits import inside
        from harness.stage_record import validate_record

        r, ray = self.runner, require_ray()
        if r.display is not None:
            r.display.preparing(p)
        prep = Prepared(p)
        prep.artifact_dir, prep.artifact = r.preparer.artifact(p)
        sha, ref = self._artifact_blob(prep.artifact_dir)
        board = load_board(p.board)
        with r.clock.time("build"):
            task = ray.remote(build_on_node).options(num_cpus=1, resources={BUILDER: 1}, max_retries=1)
            # the ref inside a list: Ray would resolve a top-level one, sending the bytes every time
            got = ray.get(task.remote(sha, [ref], p.build_kwargs(board, injected_cflags(p.config_id))))
        prep.notes["built_on"] = {"host": got["host"], "node_id": got["node_id"]}
        if "too_large" in got:
            prep.fits, prep.error = False, got["too_large"]
            prep.footprint = parse_footprint(got["footprint"], f"footprint from builder {got['host']}")
            return prep
        out = inside(r.run_dir, "firmware", p.config_id.replace("/", "__"))
        out.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(got["tar"])) as tf:
            tf.extractall(out, filter="data")
        remote = Path(got["out_dir"])

        def here(path: Path | None) -> Path | None:
            return None if path is None else out / Path(path).relative_to(remote)

        res = validate_record(BuildResult, got["result"], f"build record from builder {got['host']}")
        prep.build = res.model_copy(update={"out_dir": out, "elf": here(res.elf), "bin": here(res.bin), "hex": here(res.hex)})
        fp = prep.build.footprint
        prep.fits = fp is None or fp.fits
        if not prep.fits:
            prep.error = "does not fit the board's flash/RAM"
        return prep

    def _artifact_blob(self, artifact_dir: Path) -> tuple[str, Any]:
        import io
        import tarfile

        with self.blobs._lock:
            cached = self._artifacts.get(str(artifact_dir))
        if cached is not None:
            return cached
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            tf.add(artifact_dir, arcname=".")
        data = buf.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        ref = self.blobs.ray.put(data)
        with self.blobs._lock:
            self._artifacts[str(artifact_dir)] = (sha, ref)
        return sha, ref

    # -- per board type (its own thread) ----------------------------------------------------
    def _emit(self, key: str, ev: Event) -> None:
        self.events.put((key, ev))

    def _supervise(self, ray: Any, board: str, todo: deque[tuple[ConfigPoint, Future[Prepared]]]) -> None:
        """Keep the board type's stations busy until its queue is empty; stations that die are
        replaced by any node with the same board that joins within ``wait_s``."""
        lock = threading.Lock()
        dead: set[str] = set()  # nodes whose station died: never again (a rejoining agent is a new node)
        reason = f"no node with board {board} joined within {self.wait_s:g} s"
        try:
            deadline = time.monotonic() + self.wait_s
            while todo and not self._stopping:
                live = [(rig, node) for rig, node in stations_by_board(ray).get(board, []) if node not in dead]
                stations = []
                for rig, node in live:
                    try:
                        stations.append(self._open(ray, rig, node, board))
                    except HarnessError as exc:  # reserved by another campaign (retried), or unreachable
                        if str(exc) != reason:  # said once, not at every retry
                            self._emit(board, ("log_event", (None, "cluster", str(exc), "warning"), {}))
                        reason = str(exc)
                if not stations:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(1.0)
                    continue
                workers = [threading.Thread(target=self._station_loop, args=(st, todo, lock, dead), daemon=True)
                           for st in stations]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                deadline = time.monotonic() + self.wait_s
            for p, _fut in list(todo):
                self.blocked[p.config_id] = reason
                self._emit(board, ("log_event", (p.config_id, "cluster", f"blocked: {reason}", "error"), {}))
                self._emit(board, ("upsert_config", (p.config_id,), {"extra": {"cluster": {"blocked": reason}}}))
            todo.clear()
        finally:
            self._emit(board, ("_done", (), {}))

    def _open(self, ray: Any, rig: str, node: str, board: str) -> dict[str, Any]:
        r = self.runner
        holder = {"campaign": r.campaign.name, "run_dir": str(r.run_dir), "driver": _driver_name()}
        actor, info = open_station(ray, self.actor_cls, rig, board, holder)
        self.placements[f"{rig}/{board}"] = info.get("node_id") or node
        self._emit(board, ("log_event", (None, "cluster", f"station {rig}/{board} on {info.get('host')} "
                                                           f"(node {str(info.get('node_id'))[:12]})", "info"), {}))
        return {"actor": actor, "rig": rig, "node": node, "board": board}

    def _station_loop(self, st: dict[str, Any], todo: deque[Any], lock: threading.Lock, dead: set[str]) -> None:
        import copy

        ray = require_ray()
        key = f"{st['rig']}/{st['board']}"
        try:
            while not self._stopping:
                with lock:
                    if not todo:
                        return
                    p, fut = todo.popleft()
                cid = p.config_id
                self._emit(key, ("_begin", (cid,), {}))
                prep = fut.result()
                snaps = {cid: self.snaps.get(cid, Snapshot())}
                worker = copy.copy(self.runner)
                worker.store, worker.display = StoreProxy(self.runner.run_dir, snaps, lambda ev: self._emit(key, ev)), None
                if prep.error is not None and prep.build is None and prep.fits:
                    worker.store.set_status(cid, "failed", prep.error)
                    worker._say(p, "prepare", prep.error, "error")
                else:
                    worker._record_prepared(prep)
                    if "built_on" in prep.notes:
                        worker.store.upsert_config(cid, extra={"built_on": prep.notes["built_on"]})
                    if prep.fits and not self._remote_measure(ray, st, prep, worker.store, snaps[cid]):
                        dead.add(st["node"])
                        self._emit(key, ("_end", (cid, "interrupted"), {}))
                        return
                self._emit(key, ("_end", (cid, snaps[cid].status or "?"), {}))
        finally:
            self._close(ray, st)

    def _remote_measure(self, ray: Any, st: dict[str, Any], prep: Prepared, proxy: StoreProxy,
                        snap: Snapshot) -> bool:
        """Measure on the station; False when the station died (configuration interrupted)."""
        cid = prep.point.config_id
        assert prep.build is not None  # measured only when it fits
        firmware = Path(str(prep.build.hex or prep.build.elf))
        fw_sha, fw_ref = self.blobs.put(firmware)
        s_sha, s_ref = self.blobs.put(Path(str(prep.artifact_dir)) / "samples.npz")
        job = {"campaign": self.runner.campaign, "prep": prep, "run_dir": str(self.runner.run_dir),
               "snapshot": snap, "firmware_sha256": fw_sha, "firmware_ref": fw_ref, "firmware_name": firmware.name,
               "samples_sha256": s_sha, "samples_ref": s_ref}
        actor = st["actor"]
        try:
            ray.get(actor.measure.remote(job), timeout=OPEN_TIMEOUT_S)
            while True:
                for name, args, kwargs in ray.get(actor.events.remote(), timeout=EVENTS_TIMEOUT_S):
                    if name == "_finished":
                        return True
                    if name == "_error":
                        raise HarnessError(args[0])
                    # through the driver's proxy: its snapshot stays in step, the event goes to the store
                    getattr(proxy, name)(*args, **kwargs)
        except HarnessError as exc:
            proxy.set_status(cid, "failed", f"station {st['rig']}/{st['board']}: {exc}")
            return True
        except Exception as exc:
            why = f"interrupted: station {st['rig']}/{st['board']} dropped out ({_cause(exc)})"
            self.interrupted[cid] = why
            proxy.log_event(cid, "cluster", why, "error")
            proxy.upsert_config(cid, extra={"cluster": {"interrupted": why}})
            return False

    def _close(self, ray: Any, st: dict[str, Any]) -> None:
        """Outputs off and the reservation released by the station itself, then the actor ends."""
        import contextlib

        with contextlib.suppress(Exception):  # a dead station has nothing left to close
            ray.get(st["actor"].close.remote(), timeout=60)
        with contextlib.suppress(Exception):
            ray.kill(st["actor"], no_restart=True)


def station_name(rig: str, board: str) -> str:
    return f"station:{rig}/{board}"


def open_station(ray: Any, actor_cls: Any, rig: str, board: str, holder: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Start the station actor of ``rig``/``board`` on the node advertising it, named after the
    board so that a second campaign finds it: the board is then reserved (BoardReserved, saying
    by whom). On the node the actor also takes the board's file lock (harness.campaign.reserve)."""
    from harness.campaign.agent import dut_resource
    from harness.campaign.reserve import BoardReserved, describe

    name = station_name(rig, board)
    try:
        held = ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        held = None
    if held is not None:
        try:
            who = describe(ray.get(held.info.remote(), timeout=30).get("holder") or {})
        except Exception:
            who = "another campaign (its station is starting or stopping)"
        raise BoardReserved(f"board {board} on rig {rig} is reserved by {who}")
    try:
        actor = actor_cls.options(name=name, namespace=NAMESPACE, resources={dut_resource(rig, board): 1},
                                  num_cpus=0, max_restarts=0, max_task_retries=0, max_concurrency=4).remote(board, holder)
    except ValueError:  # created meanwhile by another campaign
        raise BoardReserved(f"board {board} on rig {rig} is reserved by another campaign") from None
    try:
        info = ray.get(actor.info.remote(), timeout=OPEN_TIMEOUT_S)
    except Exception as exc:
        ray.kill(actor)
        text = str(exc)
        if "is reserved by" in text:  # the node's file lock: someone outside this cluster drives it
            raise BoardReserved(text[text.index("board "):].splitlines()[0]) from None
        raise HarnessError(f"station {rig}/{board}: {_cause(exc)}") from None
    return actor, info


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _driver_name() -> str:
    import os
    import socket

    return f"{socket.gethostname()} pid {os.getpid()}"
