"""Reopening a broken instrument session: the backoff the streaming monitors share."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.instruments.errors import InstrumentConnectionError

RECONNECT_ATTEMPTS = 5
RECONNECT_BACKOFF_S = 0.2  # doubled after every failed attempt


def reopen_with_backoff(open_session: Callable[[], None]) -> None:
    """Call ``open_session`` until it stops raising InstrumentConnectionError, waiting longer
    after each failure (a rebooting instrument or a re-enumerating USB port needs a moment);
    the last attempt's error is raised."""
    delay = RECONNECT_BACKOFF_S
    for attempt in range(RECONNECT_ATTEMPTS):
        try:
            open_session()
            return
        except InstrumentConnectionError:
            if attempt == RECONNECT_ATTEMPTS - 1:
                raise
            time.sleep(delay)
            delay *= 2
