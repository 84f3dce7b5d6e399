"""The N6705A driver against the simulated instrument over real TCP (pyvisa-py)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import pyvisa

from harness.config.board import SupplySettings
from harness.instruments.errors import InstrumentError, SafetyError
from harness.instruments.measure import MeasureSettings, measure_inferences
from harness.instruments.n6705a import N6705A
from harness.instruments.safety import defer_sigint
from harness.instruments.timing import CycleCounterTiming, PaTriggerTiming
from harness.sim.n6705a import SimN6705A
from harness.sim.n6705a.pulse_board import PulseBoard

SUPPLY = SupplySettings(nominal_v=3.3, abs_max_v=3.6, ovp_v=3.5, current_limit_a=0.2)


@pytest.fixture
def board() -> Iterator[PulseBoard]:
    with PulseBoard(width_s=1e-3) as b:
        yield b


@pytest.fixture
def sim(board: PulseBoard) -> Iterator[SimN6705A]:
    with SimN6705A(fetch_timeout_s=2.0) as s:
        s.attach(1, board.bus, "N6781A").wire_pin(1, board.bus)
        yield s


def _outp(sim: SimN6705A) -> str:
    """Ask the instrument itself, on a fresh connection."""
    r = pyvisa.ResourceManager("@py").open_resource(sim.resource, read_termination="\n",
                                                    write_termination="\n", timeout=3000)
    try:
        return r.query("OUTP? (@1)")
    finally:
        r.close()


def test_identify_reads_model_and_module(sim: SimN6705A) -> None:
    with N6705A.open(sim.resource) as pa:
        assert pa.identity is not None
        assert (pa.identity.model, pa.identity.module) == ("N6705B", "N6781A")


def test_identify_rejects_other_instruments() -> None:
    with SimN6705A(model="E36312A") as s:
        s.attach(1, None)
        with pytest.raises(InstrumentError, match="not an N6705"):
            N6705A.open(s.resource)


def test_identify_rejects_an_empty_channel(sim: SimN6705A) -> None:
    with pytest.raises(InstrumentError, match="channel 3 not installed"):
        N6705A.open(sim.resource, channel=3)


def test_bad_command_raises_with_the_instruments_message(sim: SimN6705A) -> None:
    with N6705A.open(sim.resource) as pa:
        with pytest.raises(InstrumentError) as exc:
            pa.inst.write_checked("SOUR:VOLT:BOGUS 1,(@1)")
        assert '-113,"Undefined header;SOUR:VOLT:BOGUS"' in str(exc.value)
        assert exc.value.instrument_errors == [(-113, "Undefined header;SOUR:VOLT:BOGUS")]
        assert pa.inst.errors() == []  # drained


def test_out_of_range_setting_raises_222(sim: SimN6705A) -> None:
    # Within the harness's own 24 V ceiling, beyond the N6781A's 20 V range: the instrument refuses it.
    big = SupplySettings(nominal_v=21.0, abs_max_v=23.0, ovp_v=21.5, current_limit_a=0.2)
    with N6705A.open(sim.resource) as pa, pytest.raises(InstrumentError, match="-222"):
        pa.apply_supply(big, settle_s=0)


@pytest.mark.parametrize("voltage", [3.61, 5.0, float("nan"), -1.0])
def test_refuses_voltage_above_abs_max_without_sending(sim: SimN6705A, voltage: float) -> None:
    with N6705A.open(sim.resource) as pa:
        sim.transcript.clear()
        with pytest.raises(SafetyError, match="refusing voltage"):
            pa.apply_supply(SUPPLY, voltage_v=voltage, settle_s=0)
    sent = sim.transcript.commands()
    assert not any(c.startswith(("VOLT", "CURR", "OUTP ON")) for c in sent)
    assert sent == ["OUTP OFF,(@1)", "OUTP? (@1)"]  # only the exit path spoke


def test_supply_sequence_and_output_off_on_exit(sim: SimN6705A, board: PulseBoard) -> None:
    with N6705A.open(sim.resource) as pa:
        pa.apply_supply(SUPPLY, settle_s=0.01)
        assert pa.output_is_on() and board.bus.powered
        v, i = pa.measure_dc()
        assert v == pytest.approx(3.3) and i == pytest.approx(0.010)
    assert _outp(sim) == "0" and not board.bus.powered
    cmds = sim.transcript.commands()
    assert cmds.index("VOLT 3.3,(@1)") < cmds.index("CURR 0.2,(@1)") < cmds.index("VOLT:PROT 3.5,(@1)") \
        < cmds.index("OUTP ON,(@1)")


def _measure(pa: N6705A, board: PulseBoard, n: int = 2):
    return measure_inferences(pa, board, board.clock_hz, [PaTriggerTiming(), CycleCounterTiming(board.clock_hz)],
                              MeasureSettings(n=n, gap_us=5000), trigger_pin=1)


def test_output_is_off_after_an_exception_mid_acquisition(sim: SimN6705A, board: PulseBoard) -> None:
    board.fail_after = 3  # warmup + calibration inference + one measured, then the link fails
    with pytest.raises(RuntimeError, match="DUT link failure"), N6705A.open(sim.resource) as pa:
        pa.apply_supply(SUPPLY, settle_s=0)
        _measure(pa, board, n=4)
    assert _outp(sim) == "0"
    assert not board.bus.powered
    assert "ABOR:ACQ (@1)" in sim.transcript.commands()


def test_output_is_off_after_ctrl_c_mid_acquisition(sim: SimN6705A, board: PulseBoard) -> None:
    real_infer = board.infer
    calls = []

    def interrupted(n: int, warmup: int = 0, gap_us: int = 0):
        calls.append(n)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the acquisition is armed
            threading.Event().wait(1.0)
        return real_infer(n, warmup, gap_us)

    board.infer = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt), N6705A.open(sim.resource) as pa:
        pa.apply_supply(SUPPLY, settle_s=0)
        _measure(pa, board, n=2)
    assert _outp(sim) == "0"


def test_defer_sigint_holds_ctrl_c_until_the_block_is_done() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), defer_sigint():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("finished")  # not interrupted half-way
    assert done == ["finished"]


def test_ascii_fallback_gives_the_same_record(sim: SimN6705A, board: PulseBoard) -> None:
    with N6705A.open(sim.resource) as pa:
        pa.apply_supply(SUPPLY, settle_s=0)
        plan = pa.configure_acquisition(3e-3, 0.5e-3, trigger_pin=1, sample_interval_s=20.48e-6, binary=False)
        assert not plan.real_format
        pa.arm()
        board.infer(1, 0, 2000)
        wf = pa.fetch()
    assert "FORM ASC" in sim.transcript.commands()
    assert len(wf) == plan.points and wf.interval_s == pytest.approx(20.48e-6)
    assert np.median(wf.current_a[: plan.pretrigger_points]) == pytest.approx(0.010, rel=1e-6)
    assert wf.current_a.max() == pytest.approx(0.030, rel=1e-6)


def test_swapped_byte_order_driver(sim: SimN6705A, board: PulseBoard) -> None:
    rm_res = N6705A.open(sim.resource, big_endian=False)
    with rm_res as pa:
        pa.apply_supply(SUPPLY, settle_s=0)
        res = _measure(pa, board, n=1)
    assert "FORM:BORD SWAP" in sim.transcript.commands()
    assert res[0].latency_s == pytest.approx(1e-3, abs=20.48e-6)


def test_voltage_off_module_uses_programmed_voltage(sim: SimN6705A, board: PulseBoard) -> None:
    with N6705A.open(sim.resource) as pa:
        pa.apply_supply(SUPPLY, settle_s=0)
        plan = pa.configure_acquisition(2e-3, 0.5e-3, trigger_pin=1, measure_voltage=False)
        assert plan.interval_s == pytest.approx(5.12e-6)  # one parameter on an N678x SMU
        pa.arm()
        board.infer(1, 0, 2000)
        wf = pa.fetch()
    assert not wf.voltage_measured and np.all(wf.voltage_v == 3.3)
    assert "FETC:ARR:VOLT? (@1)" not in sim.transcript.commands()


def test_too_many_points_points_to_the_data_logger(sim: SimN6705A) -> None:
    with N6705A.open(sim.resource) as pa, pytest.raises(InstrumentError, match="ELOG"):
        pa.configure_acquisition(30.0, 0.1, sample_interval_s=20.48e-6)


def test_data_logger_path_drains_the_fifo(board: PulseBoard) -> None:
    with SimN6705A(elog_fifo_s=0.3) as sim:  # a FIFO of 300 records at 1 ms: must poll during the run
        sim.attach(1, board.bus)
        with N6705A.open(sim.resource) as pa:
            pa.apply_supply(SUPPLY, settle_s=0)
            data = pa.log(0.9, 1e-3, minmax=True, poll_s=0.05)
            errors = pa.inst.errors()
    assert data.columns == ("curr_avg", "curr_min", "curr_max")
    assert data.values.shape == (900, 3)
    assert np.allclose(data.values[:, 0], 0.010)
    assert errors == []  # no overflow


def test_sigterm_turns_into_exit_so_cleanup_runs(sim: SimN6705A) -> None:
    from harness.instruments.safety import terminate_as_exit

    with pytest.raises(SystemExit) as exc, terminate_as_exit(), N6705A.open(sim.resource) as pa:
        pa.apply_supply(SUPPLY, settle_s=0)
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(1.0)
    assert exc.value.code == 128 + signal.SIGTERM
    assert _outp(sim) == "0"


def test_the_simulated_instrument_says_so(sim: SimN6705A) -> None:
    with N6705A.open(sim.resource) as pa:
        assert pa.identity is not None and pa.identity.simulated is True
        assert pa.identity.manufacturer.startswith("SIMULATED")
