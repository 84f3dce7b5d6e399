"""Timing sources: oscilloscope dialects (replayed over TCP from recorded exchanges), the
sigrok VCD parser, the cycle counter and the cross-check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.instruments.errors import InstrumentError
from harness.instruments.logic import parse_vcd, pulses, sigrok_command
from harness.instruments.scope import ScopeTiming
from harness.instruments.timing import CycleCounterTiming, Evidence, PulseTiming, cross_check
from harness.instruments.visa import ScpiInstrument, open_resource
from harness.sim.n6705a.replay import ReplayServer
from harness.sim.n6705a.transcript import Transcript

FIXTURES = Path(__file__).parent / "fixtures" / "scpi"


@pytest.mark.parametrize("dialect", ["keysight", "rigol", "tektronix"])
def test_scope_pulse_width_dialects_replayed(dialect: str) -> None:
    recorded = Transcript.load(FIXTURES / f"scope_{dialect}.txt")
    with ReplayServer(recorded) as replay:
        inst = ScpiInstrument(open_resource(replay.resource, "@py", 2000), f"{dialect} scope")
        scope = ScopeTiming(inst, dialect, poll_s=0.001)
        scope.arm()
        timing = scope.read(Evidence())
        assert timing == PulseTiming("scope", pytest.approx(1.2346e-3, rel=1e-4))
        scope.arm()
        with pytest.raises(InstrumentError, match="no valid pulse-width"):
            scope.read(Evidence())  # 9.9E+37: the scope saw no complete pulse
        scope.close()
    assert replay.mismatches == []
    assert replay.finished, replay.remaining


def test_replay_server_reports_unexpected_commands() -> None:
    recorded = Transcript.load(FIXTURES / "scope_keysight.txt")
    with ReplayServer(recorded) as replay:
        inst = ScpiInstrument(open_resource(replay.resource, "@py", 300), "scope")
        with pytest.raises(InstrumentError):
            inst.query(":MEASure:FREQuency? CHANnel1")
        inst.close()
    assert replay.mismatches and "expected '> :TRIGger:MODE EDGE'" in replay.mismatches[0]


def test_scope_rejects_unknown_dialect() -> None:
    with pytest.raises(ValueError, match="unknown scope dialect"):
        ScopeTiming(None, "lecroy")  # type: ignore[arg-type]


def test_vcd_parser_and_pulses() -> None:
    vcd = parse_vcd((FIXTURES / "gpio_pulses.vcd").read_text())
    assert vcd.timescale_s == 1e-6
    assert set(vcd.changes) == {"D0", "D1"}
    got = pulses(vcd.changes["D0"])
    assert got == [(pytest.approx(1000e-6), pytest.approx(2234e-6)), (pytest.approx(5000e-6), pytest.approx(6250e-6))]
    # the trailing rising edge at 9000 us has no end: not a pulse; the repeated 1 at 5100 us is no edge
    assert pulses(vcd.changes["D1"]) == []  # starts high: initial level, then only a falling edge
    assert pulses(vcd.changes["D1"], active_high=False) == []


def test_vcd_active_low_and_other_timescales() -> None:
    text = """$timescale 10 ns $end
$var wire 1 # GPIO $end
$enddefinitions $end
#0 1#
#100 0#
#350 1#
"""
    vcd = parse_vcd(text)
    assert pulses(vcd.changes["GPIO"], active_high=False) == [(pytest.approx(1e-6), pytest.approx(3.5e-6))]


def test_vcd_without_timescale_is_rejected() -> None:
    with pytest.raises(ValueError, match="timescale"):
        parse_vcd("$var wire 1 ! D0 $end\n$enddefinitions $end\n#0 1!\n")


def test_malformed_vcd_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="malformed VCD"):
        parse_vcd("$timescale 1 us $end\n$var wire 1 ! D0 $end\n$enddefinitions $end\n#0 1!\n#zz 0!\n")


def test_sigrok_command_line() -> None:
    cmd = sigrok_command("fx2lafw", "D0", 1_000_000, 2000, Path("/tmp/x.vcd"))
    assert cmd == ["sigrok-cli", "-d", "fx2lafw", "--config", "samplerate=1000000", "-C", "D0", "--time", "2000",
                   "-O", "vcd", "-o", "/tmp/x.vcd", "-t", "D0=r", "-w"]


@pytest.mark.skipif(shutil.which("sigrok-cli") is None, reason="sigrok-cli not installed (apt-get install sigrok-cli)")
def test_sigrok_demo_driver_capture_through_the_timing_source() -> None:
    """Real sigrok-cli, its 'demo' device (no hardware): triggered capture -> VCD -> pulse."""
    from harness.instruments.logic import LogicAnalyzerTiming

    la = LogicAnalyzerTiming(driver="demo", channel="D0", samplerate_hz=1_000_000, duration_ms=20)
    try:
        la.arm()
        width = la.read(Evidence()).duration_s
    finally:
        la.close()
    assert 0 < width < 20e-3
    assert width * 1e6 == pytest.approx(round(width * 1e6), abs=1e-6)  # whole 1 us samples


def test_cycle_counter_prefers_the_duts_conversion() -> None:
    src = CycleCounterTiming(100e6)
    assert src.read(Evidence(cycles=150_000)).duration_s == pytest.approx(1.5e-3)
    assert src.read(Evidence(cycles=150_000, counted_s=1.49e-3)).duration_s == 1.49e-3
    with pytest.raises(ValueError, match="wrapped"):
        src.read(Evidence(cycles=None))


def test_cross_check_tolerance() -> None:
    a = PulseTiming("pa-trigger", 1.000e-3)
    ok = cross_check([a, PulseTiming("cycle-counter", 1.015e-3)], 0.02)
    assert ok.ok is True and ok.deviation == pytest.approx(0.015)
    bad = cross_check([a, PulseTiming("cycle-counter", 1.015e-3), PulseTiming("scope", 0.97e-3)], 0.02)
    assert bad.ok is False and bad.worst == "scope" and bad.deviation == pytest.approx(0.03)
    assert cross_check([a], 0.02).ok is None
