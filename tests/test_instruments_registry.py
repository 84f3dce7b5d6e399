"""The driver registry as rig files see it: names resolved through entry points, each power
monitor judging the syntax of its own kind of address, unknown names refused with what is allowed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.config.rig import PowerAnalyzerSettings, TimingSettings
from harness.instruments import registry


def test_the_harness_registers_its_own_drivers_as_entry_points() -> None:
    assert {"n6705a", "ppk2", "joulescope"} <= set(registry.names(registry.POWER_MONITORS))
    assert {"pa-trigger", "digital-input", "cycle-counter", "scope", "logic-analyzer"} <= set(
        registry.names(registry.TIMING_SOURCES))
    assert {"pyocd", "msd", "sim"} <= set(registry.names(registry.FLASHERS))
    for d in registry.installed():
        assert registry.load(d.group, d.name) is not None  # every one of them imports


@pytest.mark.parametrize(("kind", "address"), [("n6705a", "TCPIP0::192.0.2.10::5025::SOCKET"),
                                               ("n6705a", "USB0::0x0957::0x0F07::MY12345678::INSTR"),
                                               ("ppk2", "/dev/ttyACM1"), ("ppk2", "COM5"),
                                               ("joulescope", "u/js220/000415"), ("joulescope", "")])
def test_each_driver_accepts_its_own_kind_of_address(kind: str, address: str) -> None:
    assert PowerAnalyzerSettings(kind=kind, resource=address).resource == address


@pytest.mark.parametrize(("kind", "address", "says"), [("n6705a", "/dev/ttyACM1", "not a VISA resource"),
                                                       ("ppk2", "TCPIP0::192.0.2.10::5025::SOCKET", "not a serial port"),
                                                       ("joulescope", "/dev/ttyACM1", "not a Joulescope device path")])
def test_an_address_of_the_wrong_kind_is_refused_with_examples(kind: str, address: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        PowerAnalyzerSettings(kind=kind, resource=address)


def test_unknown_driver_names_are_refused_with_the_installed_ones() -> None:
    with pytest.raises(ValidationError, match="not an installed power monitor driver; allowed: none, "):
        PowerAnalyzerSettings(kind="keithley", resource="sim")
    with pytest.raises(ValidationError, match="not an installed timing source driver"):
        TimingSettings(kind="stopwatch")
    with pytest.raises(registry.UnknownDriver, match=r"installed: .*n6705a"):
        registry.load(registry.POWER_MONITORS, "keithley")
