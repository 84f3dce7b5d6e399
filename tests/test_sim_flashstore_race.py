"""A board's own flash save must never look like another process's programming: the board thread
polls ``changed_on_disk()`` and reboots into a foreign image, which behind a debugger that had just
halted the core made flashes hang until the flash timeout (issue 11, docs/sim-debug.md)."""

from __future__ import annotations

import threading
from pathlib import Path

from harness.sim.flashstore import FlashStore


def test_own_saves_are_never_seen_as_foreign_while_a_foreign_one_is(tmp_path: Path) -> None:
    store = FlashStore("sim-x", 0, 1 << 18, tmp_path, persist=True)
    store.save()
    seen, stop = [], threading.Event()

    def board_thread() -> None:  # what SimBoard._serve does between slices, here without pause
        while not stop.is_set():
            if store.changed_on_disk():
                seen.append(1)

    poller = threading.Thread(target=board_thread)
    poller.start()
    try:
        for i in range(150):
            store.data[0] = i & 0xFF
            store.save()
    finally:
        stop.set()
        poller.join()
    assert seen == []  # before the fix: thousands of spurious sightings in 150 saves

    other = FlashStore("sim-x", 0, 1 << 18, tmp_path, persist=True)  # another process's view
    other.data[1] = 0x42
    other.save()
    assert store.changed_on_disk()  # a real foreign programming is still seen
