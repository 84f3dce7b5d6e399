"""What the measurement procedure needs from a power monitor and a timing source,
stated as protocols so that a driver is any class with these methods (labgrid's split of
resource / driver / protocol is the model). Drivers are found by name through entry points
(harness.instruments.registry); the campaign and ``harness measure`` only see these types. (The flasher's interface is harness.flash.base.Flasher.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from harness.config.board import SupplySettings
    from harness.instruments.timing import Evidence, PulseTiming
    from harness.instruments.waveform import Waveform


@dataclass(frozen=True)
class InstrumentIdentity:
    """Who answered: what ``*IDN?`` (or the device's metadata) said, plus whether the instrument
    declared itself simulated. Recorded in the provenance of every configuration."""

    driver: str  # registry name, e.g. "n6705a"
    manufacturer: str
    model: str
    serial: str
    firmware: str
    module: str = ""  # the N6705 channel's module; "" for single-channel instruments
    simulated: bool = False
    stale_errors: tuple[tuple[int, str], ...] = ()

    def text(self) -> str:
        base = ",".join((self.manufacturer, self.model, self.serial, self.firmware))
        return base + (f" module {self.module}" if self.module else "")


@dataclass(frozen=True)
class MonitorResource:
    """An ordinary address of a power monitor (the simulated rig resolves 'sim' into one of
    these before anything opens it). ``options`` carries driver-specific settings."""

    driver: str
    address: str
    channel: int = 1
    timeout_ms: int = 10000
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CapturePlan:
    """What the monitor will record; ``interval_s`` is the instrument's own (read back)."""

    interval_s: float
    points: int
    pretrigger_points: int
    trigger: str  # "BUS" (software) or "PIN<n>" (a digital input)

    @property
    def duration_s(self) -> float:
        return self.points * self.interval_s


@runtime_checkable
class PowerMonitor(Protocol):
    """Supplies (or switches) the board's rail and records current and voltage around one
    inference, triggered by the board's benchmark GPIO on a digital input or by software."""

    identity: InstrumentIdentity | None

    def identify(self) -> InstrumentIdentity:
        """Ask the instrument who it is; checks it is the model the driver serves."""

    def apply_supply(self, supply: SupplySettings, voltage_v: float | None = None, settle_s: float = 0.2) -> None:
        """Power the board within the board file's limits (voltage, OVP, current limit); refuse,
        sending nothing, anything above ``abs_max_v``."""

    def output_off(self) -> None:
        """Switch the board's supply off and confirm it by reading the state back; raise if the
        instrument does not confirm."""

    def configure_acquisition(self, window_s: float, pretrigger_s: float, *, trigger_pin: int | None = None,
                              sample_interval_s: float | None = None, measure_voltage: bool = True,
                              ) -> CapturePlan: ...

    def arm(self) -> None:
        """Start waiting for the trigger (the pre-trigger part is being recorded when it returns)."""

    def trigger(self) -> None:
        """Software trigger (when no digital input is wired)."""

    def fetch(self, timeout_s: float | None = None) -> Waveform:
        """The record of the last capture (current, voltage, digital input when sampled)."""

    def abort(self) -> None: ...

    def reconnect(self, restore: bool = True) -> None:
        """After a broken connection: close, reopen with backoff, re-identify (same instrument)
        and (``restore``) re-apply the last safe supply configuration, output state included."""

    def close(self) -> None: ...


@runtime_checkable
class TimingSource(Protocol):
    """Tells, per inference, how long the GPIO pulse lasted (and where it lies on the record)."""

    name: str
    needs_monitor: bool  # True when it reads the power monitor's record

    def arm(self) -> None: ...

    def read(self, evidence: Evidence) -> PulseTiming: ...

    def close(self) -> None: ...
