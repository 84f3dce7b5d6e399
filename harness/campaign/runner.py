"""Drives a campaign: host-side preparation (compress, build) runs ahead on a worker thread while
the rig measures the configurations one after another; every result is stored as it is taken,
so an interrupted campaign resumes where it stopped."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import stop
from harness.campaign.bench import Bench, Station
from harness.campaign.matrix import ConfigPoint, expand
from harness.campaign.prepare import Prepared, Preparer, background_priority
from harness.campaign.stages import StageClock
from harness.config.campaign import CampaignConfig
from harness.config.rig import RigConfig
from harness.errors import HarnessError
from harness.ir_meta import ArtifactMetadata, CompressionRecord

LOG = logging.getLogger("harness.campaign")
DONE_STATES = ("measured", "does-not-fit")


@dataclass
class RunSummary:
    run_dir: Path
    total: int
    measured: int
    failed: int
    does_not_fit: int
    skipped: int
    seconds: float
    off_unconfirmed: tuple[str, ...] = ()  # outputs the bench could not confirm off: reported loudly
    stage_times: dict[str, Any] | None = None  # harness.campaign.stages.StageClock.as_dict


class CampaignRunner:
    def __init__(self, campaign: CampaignConfig, rig: RigConfig, run_dir: Path, *, cache_dir: Path,
                 retry_failed: bool = False, display: Any = None, parallel_stations: bool = True):
        self.campaign = campaign
        self.rig = rig
        self.run_dir = run_dir
        self.retry_failed = retry_failed
        self.parallel_stations = parallel_stations  # every board of the rig measured at once
        self.clock = StageClock()
        self.preparer = Preparer(campaign, run_dir, cache_dir, self.clock, mbed_os=rig.mbed_os)
        self.display = display  # harness.campaign.display.Display or None
        self.points = expand(campaign)
        self._bench: Any = None
        self.off_unconfirmed: tuple[str, ...] = ()

    # -- helpers ------------------------------------------------------------------------------
    def _say(self, point: ConfigPoint | None, stage: str, message: str, level: str = "info") -> None:
        cid = point.config_id if point else None
        getattr(LOG, "warning" if level == "warning" else "error" if level == "error" else "info")(
            "%s%s: %s", f"[{cid}] " if cid else "", stage, message)
        self.store.log_event(cid, stage, message, level)
        if self.display is not None:
            self.display.stage(point, stage, message)

    def _todo(self) -> list[ConfigPoint]:
        statuses = self.store.statuses()
        out = []
        for p in self.points:
            st = statuses.get(p.config_id)
            if st in DONE_STATES:
                continue
            if st == "failed" and not self.retry_failed:
                continue
            out.append(p)
        return out

    def _register(self) -> None:
        known = self.store.statuses()
        for p in self.points:
            if p.config_id in known:
                continue
            c = p.compression
            self.store.upsert_config(
                p.config_id, model_id=p.model.id, compression_id=c.id, method=c.method, heuristic=c.heuristic,
                accuracy_target=c.target_relative_accuracy, rate=c.rate, numeric_type=p.numeric, board=p.board,
                status="pending", extra=p.store_extra(),
            )

    # -- stages -------------------------------------------------------------------------------
    def _record_prepared(self, prep: Prepared) -> None:
        p, cid = prep.point, prep.point.config_id
        meta = prep.artifact.metadata if prep.artifact else ArtifactMetadata()
        comp = meta.compression or CompressionRecord()

        def frac(pct: float | None) -> float | None:  # the store keeps accuracies as fractions
            return None if pct is None else float(pct) / 100.0

        data = meta.dataset_used
        meaningful = not (data is not None and data.synthetic)  # a synthetic stand-in's accuracy is not reported
        acc = meta.accuracy_quant if p.numeric != "float32" else meta.accuracy_float
        base = meta.accuracy_baseline
        fields: dict[str, Any] = {
            "accuracy_float": frac(meta.accuracy_float) if meaningful else None,
            "accuracy_quant": frac(meta.accuracy_quant) if meaningful else None,
            "rel_accuracy": (acc / base) if (acc is not None and base and meaningful) else None,
            # the paper's "compression": fraction of parameters actually removed
            "rate": comp.removed(),
            "params": meta.params_total,
            "params_nonzero": meta.params_nonzero,
            "macs": meta.macs,
            "artifact_path": str(prep.artifact_dir) if prep.artifact_dir else None,
        }
        fp = (prep.build.footprint if prep.build is not None else None) or prep.footprint
        if fp:
            fields.update(
                flash_bytes=fp.flash.total, ram_bytes=fp.ram.total, weights_bytes=fp.flash.weights,
                arena_bytes=fp.ram.arena, flash_size=fp.flash.available, ram_size=fp.ram.available, fits=fp.fits,
            )
        if prep.build is not None and prep.build.elf is not None:
            fields["firmware_path"] = str(prep.build.hex or prep.build.elf)
        search = [step.model_dump() for step in comp.search] if comp.search is not None else None
        extra = {"dataset": data.model_dump(exclude_unset=True) if data is not None else {},
                 "selected_rate": comp.selected_rate, "search": search,
                 "accuracy_baseline": frac(base) if meaningful else None, "runtime": p.runtime} if meta.known() else None
        self.store.upsert_config(cid, extra=extra, **{k: v for k, v in fields.items() if v is not None})
        if not prep.fits:
            self.store.set_status(cid, "does-not-fit", prep.error)
            self._say(p, "build", f"does not fit: {prep.error}", "warning")
        else:
            assert prep.build is not None  # it fits, so it was built
            self.store.set_status(cid, "built")
            cached = " (cache hit)" if prep.build.cache_hit else ""
            self._say(p, "build", f"built {prep.build.build_id}{cached}")

    def _measure(self, bench: Bench, prep: Prepared) -> None:
        from harness.campaign import device

        p, cid = prep.point, prep.point.config_id
        st: Station = bench.station(p.board)
        build = prep.build
        assert build is not None  # prepared (a prebuilt [[firmware]] entry has no artifact)
        firmware = build.hex or build.elf
        assert firmware is not None  # an image that fits was compiled (or given, for a prebuilt entry)
        attempts = self.campaign.max_retries + 1
        for attempt in range(1, attempts + 1):
            link = None
            try:
                self._say(p, "flash", f"attempt {attempt}/{attempts}")
                bench.power_up(st)  # the analyzer supplies the board: on before the probe connects
                with self.clock.time("flash"):
                    link = device.flash_and_identify(st, firmware, build.model_hash, lambda m: self._say(p, "flash", m),
                                                     self.campaign.inference_timeout_s)
                self.store.add_provenance(
                    cid, firmware_sha256=build.firmware_sha256, firmware_path=str(firmware), build_id=build.build_id,
                    model_hash=build.model_hash, toolchain=build.toolchain, board=p.board, probe_id=st.probe,
                    serial_port=st.serial_url, timing_sources=",".join(t.kind for t in self.rig.timing),
                    instrument_idn=bench.identities(st),
                    extra={"board_simulated": st.board.simulated, "instruments": bench.instruments(st)},
                )
                if (prep.artifact is not None and prep.artifact_dir is not None
                        and self.store.get_config(cid).get("device_accuracy") is None):
                    count = self.campaign.device_samples(p.numeric)
                    self._say(p, "verify", f"checking outputs on {count} held-out test inputs")
                    with self.clock.time("verify"):
                        chk = device.check_outputs(link, prep.artifact, prep.artifact_dir / "samples.npz", count,
                                                   untimed=st.untimed)
                    if chk is not None:
                        self.store.upsert_config(cid, device_accuracy=chk.device_accuracy / 100.0,
                                                 host_agreement=chk.host_agreement / 100.0,
                                                 extra={"bit_exact_pct": chk.bit_exact, "check_samples": chk.samples,
                                                        "timed_output_agrees": chk.timed_agrees})
                        exact = chk.bit_exact == 100.0 or p.numeric == "float32"  # float: rounding may differ
                        self._say(p, "verify", f"device accuracy {chk.device_accuracy:.1f} %, agrees with host on "
                                               f"{chk.host_agreement:.1f} %, bit-exact {chk.bit_exact:.1f} %",
                                  "info" if exact else "warning")
                        if not chk.timed_agrees:
                            self._say(p, "verify", "the first input, run with full timing as measurements are, was "
                                      "classified differently from the host: the measured run may not compute "
                                      "what the checked runs do (docs/sim-board.md, 'Untimed scopes')", "warning")
                done = self.store.completed_repetitions(cid)
                missing = [r for r in range(self.campaign.repetitions) if r not in done]
                with self.clock.time("measure"):
                    self._load_measurement_input(link, prep)
                    if missing:
                        self._say(p, "measure", f"{len(missing)} repetition(s) to take")
                        device.measure_repetitions(
                            bench, st, link, missing, self.campaign.warmup,
                            lambda rep, m, calib, wf: self._store_measurement(p, st, rep, m, calib, wf))
                self.store.set_status(cid, "measured")
                return
            except Exception as exc:
                stop.reraise_interrupt(exc)  # a stop is not this configuration's failure
                _raise_if_storage(exc, self.run_dir)  # a full / read-only disk fails every configuration: stop
                reason = f"{type(exc).__name__}: {exc}"
                why = st.diagnosis()
                if why:
                    reason += f" ({why})"
                retry = attempt < attempts and isinstance(exc, retryable_errors())
                self._say(p, "measure", f"attempt {attempt} failed: {reason}", "warning" if retry else "error")
                if not retry:
                    self.store.set_status(cid, "failed", reason)
                    return
                self._recover(st)
            finally:
                if link is not None:
                    link.close()

    def _load_measurement_input(self, link: Any, prep: Prepared) -> None:
        """Measure on a real test image (sample 0), so activations are realistic."""
        import numpy as np

        from harness.codegen.io import encode_input

        if prep.point.prebuilt is not None:  # no artifact: the entry's input or fixed bytes
            from harness.campaign import prebuilt

            link.load_input(prebuilt.measurement_input(prep.point, link.identify().input_bytes))
            return
        assert prep.artifact is not None and prep.artifact_dir is not None
        samples = prep.artifact_dir / "samples.npz"
        with np.load(samples) as npz:
            x0 = npz["x"][0]
        link.load_input(encode_input(prep.artifact.graph, x0))

    def _recover(self, st: Station) -> None:
        """Between attempts: reset the board through its probe, as on a real bench (this also
        restarts a simulated board whose core stopped on a fault)."""
        from harness.flash.base import flasher_for

        try:
            flasher_for(st.board, probe=st.probe).reset()
        except Exception as exc:  # the next attempt re-flashes anyway
            LOG.warning("reset of %s failed: %s", st.board.name, exc)
        time.sleep(0.2)

    def _store_measurement(self, p: ConfigPoint, st: Station, rep: int, m: Any, calib: Any, wf: Any) -> None:
        fields = asdict(m)
        fields.pop("index", None)
        if self.campaign.save_traces and wf is not None:  # the raw record first, then the row that points to it
            import numpy as np

            fields["trace_path"] = str(self.store.write_trace(
                p.config_id, rep, {"current_a": np.asarray(wf.current_a, np.float32),
                                   "voltage_v": np.asarray(wf.voltage_v, np.float32)},
                {"interval_s": wf.interval_s, "t_start_s": wf.t_start_s, "window_start_s": m.window_start_s,
                 "latency_s": m.latency_s, "voltage_measured": wf.voltage_measured}))
        fields["cycle_latency_s"] = (m.cycles / calib.counter_hz) if (m.cycles and calib.counter_hz) else None
        fields["supply_v"] = st.board.supply.nominal_v
        fields["warmup_count"] = self.campaign.warmup
        self.store.add_measurement(p.config_id, rep, ignore_duplicate=True, **fields)
        if self.display is not None:
            self.display.result(p, rep, m)
        stop.raise_if_requested()  # after the repetition is safely stored, before the next one

    # -- main loop ----------------------------------------------------------------------------
    def run(self, store: Any) -> RunSummary:
        with stop.scope():
            return self._run(store)

    def _run(self, store: Any) -> RunSummary:
        self.store = store
        t0 = time.monotonic()
        self._register()
        todo = self._todo()
        skipped = len(self.points) - len(todo)
        if self.display is not None:
            self.display.start(len(self.points), skipped)
        if skipped:
            self._say(None, "resume", f"{skipped} configuration(s) already complete, {len(todo)} to go")
        boards = sorted({p.board for p in todo})
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare", initializer=background_priority) as pool:
            futures: list[Future[Prepared]] = [pool.submit(self._prepare_safe, p) for p in todo]
            try:
                with self._flash_scope(boards), Bench(self.rig, boards) if boards else _NoBench() as bench:
                    self._bench = bench
                    if self.parallel_stations and len(boards) > 1:  # a station per board (campaign.stations)
                        from harness.campaign.stations import run_parallel

                        run_parallel(self, bench, todo, futures)
                        todo, futures = [], []
                    for p, fut in zip(todo, futures, strict=True):
                        stop.raise_if_requested()
                        if self.display is not None:
                            self.display.begin(p)
                        prep = fut.result()
                        if prep.error is not None and prep.build is None and prep.fits:
                            self.store.set_status(p.config_id, "failed", prep.error)
                            self._say(p, "prepare", prep.error, "error")
                        else:
                            self._record_prepared(prep)
                            if prep.fits:
                                assert bench is not None  # boards to measure on: a real Bench
                                self._measure(bench, prep)
                        if self.display is not None:
                            self.display.end(p, self.store.statuses().get(p.config_id, "?"))
            except BaseException:
                stop.request()  # the prepare worker stops at its next training step or stage
                for f in futures:
                    f.cancel()
                self.clock.save(self.run_dir, time.monotonic() - t0)  # an interrupted run keeps its stage times
                raise
            finally:  # also when interrupted: an output not confirmed off is never swallowed
                self.off_unconfirmed = tuple(getattr(self._bench, "off_unconfirmed", ()) or ())
                for msg in self.off_unconfirmed:
                    self.store.log_event(None, "safety", msg, "error")
        statuses = self.store.statuses()
        count = {s: sum(1 for v in statuses.values() if v == s) for s in ("measured", "failed", "does-not-fit")}
        wall = time.monotonic() - t0
        self.clock.save(self.run_dir, wall)
        return RunSummary(self.run_dir, len(self.points), count["measured"], count["failed"], count["does-not-fit"],
                          skipped, wall, self.off_unconfirmed, self.clock.as_dict(wall))

    def _flash_scope(self, boards: list[str]) -> Any:
        """Simulated boards keep their flash per run folder (whose lock this process holds), so
        two campaigns on one machine never boot each other's images. Scoped for every run (a real
        rig simply has no simulated flash to keep), so the campaign never asks what is simulated."""
        from harness.sim.flashstore import scoped_to_run

        return scoped_to_run(self.run_dir)

    def _prepare_safe(self, p: ConfigPoint) -> Prepared:
        try:
            if self.display is not None:
                self.display.preparing(p)
            return self.preparer.prepare(p)
        except Exception as exc:
            stop.reraise_interrupt(exc)
            _raise_if_storage(exc, self.run_dir)
            LOG.exception("prepare %s failed", p.config_id)
            return Prepared(p, error=f"{type(exc).__name__}: {exc}")


def _raise_if_storage(exc: BaseException, run_dir: Path) -> None:
    """A full or read-only disk ends the run (resume later) instead of failing configurations."""
    from harness.store.storage import folder_unwritable, storage_error

    err = storage_error(exc, run_dir) or folder_unwritable(run_dir)
    if err is not None:
        raise err from exc


def retryable_errors() -> tuple[type[BaseException], ...]:
    """Errors worth another attempt (flash again, reconnect): every stage error the drivers
    raise (typed: DUT link, instrument, flash), and transport failures. Decided by class."""
    import serial

    return (HarnessError, TimeoutError, ConnectionError, OSError, serial.SerialException)


class _NoBench:
    off_unconfirmed: tuple[str, ...] = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
