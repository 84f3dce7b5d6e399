"""Parallel stations: every DUT of the rig runs its own configurations (flash, output check,
measurement) on its own thread, while compression and builds stay on the shared preparation
worker ahead of them. The run's SQLite store belongs to one thread, so a station never writes
it: it works against a StoreProxy whose writes become events that the campaign's thread applies
in order as they arrive (each measurement is committed as soon as its station has taken it).
The same events travel back from a remote station on Ray (harness.campaign.cluster)."""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import stop
from harness.campaign.matrix import ConfigPoint
from harness.campaign.prepare import Prepared

LOG = logging.getLogger("harness.campaign")

# An event is (store method name, args, kwargs); names starting with "_" are for the display.
Event = tuple[str, tuple[Any, ...], dict[str, Any]]
STORE_WRITES = ("log_event", "upsert_config", "set_status", "add_provenance", "add_measurement", "write_trace")


class StationCancelled(BaseException):  # not an Exception: no retry path may swallow it
    """The campaign is stopping (Ctrl-C, storage error): the station ends its work."""


@dataclass
class Snapshot:
    """What a station may read of one configuration: taken when the configuration is handed
    out, then kept up to date with the station's own writes (no one else writes it)."""

    config: dict[str, Any] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    status: str | None = None


class StoreProxy:
    """The part of ResultStore a station uses. Writes are emitted as events; reads come from
    the snapshots. ``write_trace`` returns the path the store will write the trace to (the
    event carries the arrays, so a remote station needs no access to the run folder)."""

    def __init__(self, run_dir: Path | str, snapshots: dict[str, Snapshot], emit: Callable[[Event], None]):
        self.run_dir = Path(run_dir)
        self.snapshots = snapshots
        self.emit = emit

    def _snap(self, cid: str) -> Snapshot:
        return self.snapshots.setdefault(cid, Snapshot())

    # -- writes ---------------------------------------------------------------------------
    def log_event(self, config_id: str | None, stage: str, message: str, level: str = "info") -> None:
        self.emit(("log_event", (config_id, stage, message, level), {}))

    def upsert_config(self, config_id: str, *, extra: dict[str, Any] | None = None, **fields: Any) -> None:
        self._snap(config_id).config.update(fields)
        self.emit(("upsert_config", (config_id,), {"extra": extra, **fields}))

    def set_status(self, config_id: str, status: str, reason: str | None = None) -> None:
        self._snap(config_id).status = status
        self.emit(("set_status", (config_id, status, reason), {}))

    def add_provenance(self, config_id: str, *, extra: dict[str, Any] | None = None, **fields: Any) -> int:
        self.emit(("add_provenance", (config_id,), {"extra": extra, **fields}))
        return 0

    def add_measurement(self, config_id: str, repetition: int, *, ignore_duplicate: bool = False,
                        extra: dict[str, Any] | None = None, **fields: Any) -> bool:
        self._snap(config_id).done.add(int(repetition))
        self.emit(("add_measurement", (config_id, int(repetition)),
                   {"ignore_duplicate": ignore_duplicate, "extra": extra, **fields}))
        return True

    def write_trace(self, config_id: str, repetition: int, arrays: dict[str, Any],
                    meta: dict[str, Any] | None = None) -> Path:
        from harness.store.traces import trace_relpath

        self.emit(("write_trace", (config_id, repetition, arrays, meta), {}))
        return self.run_dir / trace_relpath(config_id, repetition)

    # -- reads ----------------------------------------------------------------------------
    def get_config(self, config_id: str) -> dict[str, Any]:
        return dict(self._snap(config_id).config)

    def completed_repetitions(self, config_id: str) -> set[int]:
        return set(self._snap(config_id).done)

    def statuses(self) -> dict[str, str]:
        return {cid: s.status for cid, s in self.snapshots.items() if s.status is not None}


def snapshot(store: Any, config_id: str) -> Snapshot:
    return Snapshot(dict(store.get_config(config_id) or {}), set(store.completed_repetitions(config_id)),
                    store.statuses().get(config_id))


def apply(store: Any, event: Event) -> Any:
    """Apply one station event to the real store (the campaign's thread only)."""
    name, args, kwargs = event
    if name not in STORE_WRITES:
        raise ValueError(f"not a store write: {name!r}")
    if name == "upsert_config" and kwargs.get("extra") is None:
        kwargs = {k: v for k, v in kwargs.items() if k != "extra"}
    return getattr(store, name)(*args, **kwargs)


def process_point(runner: Any, bench: Any, p: ConfigPoint, prep: Prepared) -> None:
    """The body of the campaign loop for one configuration, against ``runner.store``."""
    if prep.error is not None and prep.build is None and prep.fits:
        runner.store.set_status(p.config_id, "failed", prep.error)
        runner._say(p, "prepare", prep.error, "error")
    else:
        runner._record_prepared(prep)
        if prep.fits:
            with runner.preparer.station_busy():  # training meanwhile leaves this station a core
                runner._measure(bench, prep)


class StationsView:
    """The live display with one line per station (board: configuration and stage) under the
    campaign's progress bar."""

    def __init__(self, display: Any, boards: dict[str, int]):
        self.display = display
        self.tasks: dict[str, Any] = {}
        self.current: dict[str, str] = {}
        progress = getattr(display, "progress", None)
        if progress is not None:
            for b, n in boards.items():
                self.tasks[b] = progress.add_task(f"  station {b}: waiting", total=n)

    def _line(self, board: str, text: str, advance: int = 0) -> None:
        task = self.tasks.get(board)
        if task is not None:
            self.display.progress.update(task, description=f"  station {board}: {text}", advance=advance)

    def begin(self, p: ConfigPoint) -> None:
        self.current[p.board] = p.config_id
        self._line(p.board, f"{p.config_id} waiting for build")

    def event(self, p: ConfigPoint | None, ev: Event) -> None:
        name, args, kwargs = ev
        if self.display is None:
            return
        if name == "log_event" and args[0] is not None and p is not None:
            self._line(p.board, f"{p.config_id} {args[1]}")
            self.display.stage(p, args[1], f"[{p.board}] {args[2]}")
        elif name == "add_measurement" and p is not None and kwargs.get("latency_s") is not None:
            self._line(p.board, f"{p.config_id} rep {args[1] + 1} {kwargs['latency_s'] * 1e3:.3f} ms")

    def end(self, p: ConfigPoint, status: str) -> None:
        self._line(p.board, f"{p.config_id} {status}", advance=1)
        if self.display is not None:
            self.display.end(p, status)


def drain_events(events: queue.Queue[tuple[str, Event]], senders: int, store: Any, view: StationsView,
                 by_id: dict[str, ConfigPoint]) -> None:
    """On the campaign's thread: commit every store event the ``senders`` station threads put
    (each ends with ``_done``) and show their progress, until all of them are done."""
    running = senders
    while running:
        _key, ev = events.get()
        name, args, _ = ev
        if name == "_done":
            running -= 1
        elif name == "_begin":
            view.begin(by_id[args[0]])
        elif name == "_end":
            view.end(by_id[args[0]], args[1])
        else:
            apply(store, ev)
            view.event(by_id.get(args[0]) if args and isinstance(args[0], str) else None, ev)


def run_parallel(runner: Any, bench: Any, todo: list[ConfigPoint], futures: list[Future[Prepared]]) -> None:
    """Run every board's configurations on its own station thread; apply their events to the
    store here, as they come. Returns when every station is done; re-raises the first error
    (storage errors included) after telling the other stations to stop."""
    store = runner.store
    by_id = {p.config_id: p for p in todo}
    work: dict[str, list[tuple[ConfigPoint, Future[Prepared]]]] = {}
    for p, fut in zip(todo, futures, strict=True):
        work.setdefault(p.board, []).append((p, fut))
    events: queue.Queue[tuple[str, Event]] = queue.Queue()
    cancel = threading.Event()
    errors: list[BaseException] = []
    view = StationsView(runner.display, {b: len(w) for b, w in work.items()})
    runner.station_spans = {}  # board -> (start, end), time.monotonic()

    def station(board: str, items: list[tuple[ConfigPoint, Future[Prepared]]]) -> None:
        t0 = time.monotonic()

        def emit(ev: Event) -> None:
            if cancel.is_set():
                raise StationCancelled(board)
            events.put((board, ev))

        try:
            for p, fut in items:
                if cancel.is_set() or stop.requested():
                    return
                events.put((board, ("_begin", (p.config_id,), {})))
                prep = fut.result()
                snaps = {p.config_id: snap_of[p.config_id]}
                worker = copy.copy(runner)  # same campaign, rig, clock; its own store and no display
                worker.store, worker.display = StoreProxy(runner.run_dir, snaps, emit), None
                process_point(worker, bench, p, prep)
                events.put((board, ("_end", (p.config_id, snaps[p.config_id].status or "?"), {})))
        except StationCancelled:
            pass
        except BaseException as exc:  # handed to the campaign thread
            errors.append(exc)
            cancel.set()
        finally:
            runner.station_spans[board] = (t0, time.monotonic())
            events.put((board, ("_done", (), {})))

    snap_of = {p.config_id: snapshot(store, p.config_id) for p in todo}
    threads = [threading.Thread(target=station, args=(b, items), name=f"station-{b}", daemon=True)
               for b, items in work.items()]
    for t in threads:
        t.start()
    try:
        drain_events(events, len(threads), store, view, by_id)
        stop.raise_if_requested()  # the stations stopped early because a stop was asked for
    except BaseException:
        stop.request()
        cancel.set()
        raise
    finally:
        cancel.set()
        for t in threads:
            t.join(timeout=0.1 if errors else 5.0)
    if errors:
        raise errors[0]
