"""A stop request (Ctrl-C, SIGTERM) reaches the threads a signal cannot: the prepare worker stops
at its next training step, and a run whose interrupt was lost on the way still stops at the next
configuration, keeping what it measured, and resumes from there."""

from __future__ import annotations

import io
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from torch import nn

from harness import stop
from harness.campaign.display import Display
from harness.campaign.runner import CampaignRunner
from harness.compress.train import train
from harness.config import load_campaign, load_rig
from harness.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "tests" / "data" / "tiny-campaign.toml"


def test_stop_requested_is_an_interrupt_that_except_exception_cannot_hide() -> None:
    assert issubclass(stop.StopRequested, KeyboardInterrupt) and not issubclass(stop.StopRequested, Exception)
    with stop.scope():
        stop.raise_if_requested()  # nothing asked for: a no-op
        stop.request()
        assert stop.requested()
        with pytest.raises(stop.StopRequested):
            stop.raise_if_requested()
    assert not stop.requested(), "a finished run's request must not stop the next run in this process"


def test_training_on_a_worker_thread_stops_at_the_next_step() -> None:
    steps: list[int] = []
    outcome: dict[str, BaseException] = {}
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)

    def after_step() -> None:
        steps.append(1)
        if len(steps) == 3:
            stop.request()  # as the campaign's SIGTERM handler does, from another thread

    def worker() -> None:
        try:
            train(nn.Linear(4, 2), x, y, epochs=100, batch_size=8, after_step=after_step)
        except BaseException as exc:
            outcome["error"] = exc

    with stop.scope():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert isinstance(outcome.get("error"), stop.StopRequested)
    assert len(steps) == 3, f"training went on for {len(steps)} steps after the stop (800 were planned)"


class _LosesTheInterrupt(Display):
    """Asks for a stop as the first configuration ends, the way a SIGTERM whose KeyboardInterrupt
    a library swallowed leaves only the flag behind."""

    def end(self, point: Any, status: str) -> None:
        super().end(point, status)
        stop.request()


def _run(run_dir: Path, cache: Path, display: Display | None) -> None:
    campaign = load_campaign(CAMPAIGN)
    runner = CampaignRunner(campaign, load_rig(campaign.rig), run_dir, cache_dir=cache)
    runner.display = display
    with ResultStore(run_dir) as store:
        store.start_run(campaign.name, CAMPAIGN.read_text())
        try:
            runner.run(store)
        finally:
            store.end_run("completed")


def _measured(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT config_id, COUNT(*) FROM measurements WHERE NOT warmup "
                                "GROUP BY config_id").fetchall())


@pytest.mark.slow
def test_a_lost_interrupt_still_stops_the_run_at_the_next_configuration(tmp_path: Path) -> None:
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    reps = load_campaign(CAMPAIGN).repetitions
    with pytest.raises(stop.StopRequested), Display(Console(file=io.StringIO())) as shown:
        display = _LosesTheInterrupt(shown.console)
        display.start(2, 0)
        _run(run_dir, cache, display)
    first = _measured(run_dir / "results.sqlite")
    assert list(first.values()) == [reps], f"one configuration measured in full before the stop: {first}"
    assert not stop.requested()

    _run(run_dir, cache, None)  # resume: only the configuration the stop left
    again = _measured(run_dir / "results.sqlite")
    assert len(again) == 2 and set(again.values()) == {reps}
    with sqlite3.connect(run_dir / "results.sqlite") as con:
        kept = con.execute("SELECT COUNT(*) FROM measurements WHERE config_id = ?", (next(iter(first)),)).fetchone()[0]
    assert kept >= reps, "the first run's measurements were kept"


_HUNG = """
import sys, threading, time
from pathlib import Path
from harness import stop
from harness.instruments import safety
marker, stacks, disarm = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "disarm"
def off():
    marker.write_text("off")
    return None
safety.output_on("bench", off)
stop.escalate_after(0.5, stacks, 130, safety.emergency_off)
if disarm:
    stop.disarm()
    time.sleep(1.5)
    sys.exit(0)
threading.Event().wait()  # a stop that never completes
"""


@pytest.mark.parametrize("disarm", [False, True], ids=["hung", "disarmed"])
def test_a_stop_that_never_completes_ends_the_process_with_outputs_off(tmp_path: Path, disarm: bool) -> None:
    """The watchdog a signal arms: a process still running after the grace period writes every
    thread's stack, switches the registered outputs off and exits 130; a run that unwound in
    time disarms it and nothing happens."""
    import subprocess
    import sys

    marker, stacks = tmp_path / "off", tmp_path / "stacks.txt"
    proc = subprocess.run([sys.executable, "-c", _HUNG, str(marker), str(stacks), "disarm" if disarm else "hang"],
                          capture_output=True, text=True, timeout=60)
    if disarm:
        assert proc.returncode == 0 and not marker.exists() and not stacks.exists(), proc.stderr
        return
    assert proc.returncode == 130, proc.stderr
    assert marker.read_text() == "off"
    assert "most recent call first" in stacks.read_text()
    assert "interrupted: the stop did not complete" in proc.stderr and str(stacks) in proc.stderr
    assert "SAFETY" not in proc.stderr and "Traceback" not in proc.stderr


def test_an_interrupt_python_wrapped_is_still_an_interrupt() -> None:
    """Python 3.11 wraps an interrupt raised in ``__set_name__`` (a dataclass defined by a lazy
    import when the signal came; CI saw it at the simulated analyzer's import) in RuntimeError:
    the run still treats it as the interrupt, and a plain error stays an error."""

    class RaisesOnSetName:
        def __set_name__(self, owner: type, name: str) -> None:
            raise KeyboardInterrupt

    with pytest.raises(BaseException) as wrapped:
        type("Defined", (), {"field": RaisesOnSetName()})
    assert stop.caused_by_interrupt(wrapped.value)
    with pytest.raises(stop.StopRequested):
        try:
            raise wrapped.value
        except BaseException as exc:
            stop.reraise_interrupt(exc)
    assert not stop.caused_by_interrupt(RuntimeError("a real failure"))
    stop.reraise_interrupt(RuntimeError("a real failure"))  # no stop requested: nothing raised
