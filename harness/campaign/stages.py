"""Wall time per campaign stage (train/prune, build, flash, verify, measure), so a slow campaign
shows where its time goes. Host preparation runs on a worker thread ahead of the rig, so stage
times overlap and their sum may exceed the campaign's wall time."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STAGES = ("train/prune", "build", "flash", "verify", "measure")
FILE_NAME = "stage_times.json"


class StageClock:
    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.counts = dict.fromkeys(STAGES, 0)
        self._lock = threading.Lock()

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0
                self.counts[stage] = self.counts.get(stage, 0) + 1

    def as_dict(self, wall_s: float) -> dict[str, Any]:
        with self._lock:
            return {
                "wall_s": round(wall_s, 2),
                "stages": {k: {"seconds": round(v, 2), "count": self.counts[k]} for k, v in self.seconds.items()},
                "note": "train/prune and build run on a worker thread ahead of the rig: stages overlap",
            }

    def save(self, run_dir: Path, wall_s: float) -> Path:
        """Write ``stage_times.json`` of this session atomically into the run folder."""
        path = run_dir / FILE_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.as_dict(wall_s), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path


def summary_line(times: dict[str, Any]) -> str:
    parts = [f"{k} {v['seconds']:.0f} s" for k, v in times["stages"].items()]
    return f"time per stage: {', '.join(parts)} (campaign wall time {times['wall_s']:.0f} s; stages overlap)"
