"""Drivers by name, found through entry points so that a third party adds a power monitor, a
timing source or a flasher with a package of its own (pyOCD's probe/target plugins are the
model). The harness registers its own drivers the same way, in pyproject.toml:

    [project.entry-points."harness.power_monitors"]
    n6705a = "harness.instruments.n6705a:N6705A"

A power-monitor entry names a class with ``from_resource(MonitorResource) -> PowerMonitor``;
a timing-source entry a class with ``from_settings(TimingSettings, BoardConfig, RigConfig)``;
a flasher entry a class taking ``(board, probe=..., drive=..., timeout_s=...)``."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from harness.errors import HarnessError

POWER_MONITORS = "harness.power_monitors"
TIMING_SOURCES = "harness.timing_sources"
FLASHERS = "harness.flashers"
GROUPS = {POWER_MONITORS: "power monitor", TIMING_SOURCES: "timing source", FLASHERS: "flasher"}


class UnknownDriver(HarnessError):
    """A rig or board file names a driver that no installed package provides."""

    exit_code = 2


@dataclass(frozen=True)
class DriverInfo:
    group: str
    name: str
    target: str  # "module:attribute"
    distribution: str  # the package that registered it

    @property
    def kind(self) -> str:
        return GROUPS.get(self.group, self.group)


def _entries(group: str) -> dict[str, EntryPoint]:
    # Read afresh each time: a package installed while the harness runs (tests do) is seen.
    return {ep.name: ep for ep in entry_points(group=group)}


def names(group: str) -> list[str]:
    return sorted(_entries(group))


def installed(group: str | None = None) -> list[DriverInfo]:
    """Every registered driver (of one group, or of all), sorted by group and name."""
    out = []
    for g in [group] if group else list(GROUPS):
        for name, ep in sorted(_entries(g).items()):
            dist = ep.dist.name if ep.dist is not None else "?"
            out.append(DriverInfo(g, name, ep.value, dist))
    return out


def check_monitor_address(kind: str, address: str) -> None:
    """ValueError (with what is allowed) when ``address`` is not one the power-monitor driver
    ``kind`` can open: each driver knows its own kind of address (VISA resource, serial port,
    device path) through an optional ``check_address`` classmethod; drivers without one accept
    any. Cheap and offline: syntax only, reachability is ``rig doctor``'s."""
    try:
        cls = load(POWER_MONITORS, kind)
    except UnknownDriver:
        return  # the kind itself is reported by its own check
    check = getattr(cls, "check_address", None)
    if check is not None:
        check(address)


def load(group: str, name: str) -> Any:
    """The class registered as ``name`` in ``group``; UnknownDriver lists what is installed.
    An entry point that fails to import is an error with its cause, never skipped."""
    eps = _entries(group)
    ep = eps.get(name)
    if ep is None:
        have = ", ".join(sorted(eps)) or "none"
        raise UnknownDriver(f"no {GROUPS.get(group, group)} driver {name!r} is installed (installed: {have})")
    try:
        return ep.load()
    except Exception as exc:
        raise UnknownDriver(f"{GROUPS.get(group, group)} driver {name!r} ({ep.value}) failed to load: "
                            f"{type(exc).__name__}: {exc}") from exc
