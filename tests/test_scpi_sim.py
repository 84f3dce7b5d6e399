"""The simulated N6705A, driven over real TCP by pyvisa-py as a real instrument would be."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import pyvisa

from harness.sim.n6705a import SimN6705A
from harness.sim.signals import SignalBus


@pytest.fixture
def bus() -> SignalBus:
    return SignalBus(3.3, 0.010)


@pytest.fixture
def sim(bus: SignalBus) -> Iterator[SimN6705A]:
    with SimN6705A(fetch_timeout_s=1.0) as s:
        s.attach(1, bus, "N6781A").attach(2, None, "N6761A").wire_pin(1, bus)
        yield s


def _open(sim: SimN6705A, timeout_ms: int = 3000):
    rm = pyvisa.ResourceManager("@py")
    return rm.open_resource(sim.resource, read_termination="\n", write_termination="\n", timeout=timeout_ms)


@pytest.fixture
def inst(sim: SimN6705A):
    r = _open(sim)
    yield r
    r.close()


def _errors(inst) -> list[str]:
    out = []
    while True:
        reply = inst.query("SYST:ERR?")
        if reply.startswith("+0"):
            return out
        out.append(reply)


def test_identity_and_modules(inst) -> None:
    assert inst.query("*IDN?").split(",")[1] == "N6705B"
    assert inst.query("SYST:CHAN?") == "+2"
    assert inst.query("SYST:CHAN:MOD? (@1)") == "N6781A"
    assert inst.query("syst:chan:mod? (@1,2)") == "N6781A,N6761A"
    assert inst.query("*OPC?") == "1"


@pytest.mark.parametrize(
    "setter, getter",
    [
        ("VOLT 2.5,(@1)", "VOLT? (@1)"),
        ("SOURce:VOLTage:LEVel:IMMediate:AMPLitude 2.5,(@1)", "SOUR:VOLT? (@1)"),
        ("source:voltage 2.5,(@1)", "voltage:level? (@1)"),
        (":sour:volt:lev 2500mV,(@1)", "VOLT? (@1)"),
    ],
)
def test_command_forms_long_short_lowercase(inst, setter: str, getter: str) -> None:
    inst.write(setter)
    assert float(inst.query(getter)) == pytest.approx(2.5)
    assert _errors(inst) == []


def test_channel_lists_address_several_outputs(inst) -> None:
    inst.write("VOLT 1.5,(@1:2)")
    assert inst.query("VOLT? (@1,2)") == "+1.500000E+00,+1.500000E+00"
    inst.write("VOLT 0,(@3)")
    assert _errors(inst)[0].startswith("-222")


def test_min_max_def(inst) -> None:
    inst.write("VOLT MAX,(@1)")
    assert float(inst.query("VOLT? (@1)")) == 20.0
    assert float(inst.query("VOLT? MAX,(@2)")) == 50.0
    inst.write("VOLT MIN,(@1)")
    assert float(inst.query("VOLT? (@1)")) == 0.0


def test_error_queue_codes_and_order(inst) -> None:
    inst.write("VOLT:BOGUS 1,(@1)")
    inst.write("VOLT 99,(@1)")
    inst.write("FORM HEX")
    inst.write("OUTP MAYBE,(@1)")
    errs = _errors(inst)
    assert [e.split(",")[0] for e in errs] == ["-113", "-222", "-224", "-224"]
    assert errs[0] == '-113,"Undefined header;VOLT:BOGUS"'
    assert inst.query("SYST:ERR?") == '+0,"No error"'
    inst.write("FOO")
    inst.write("*CLS")
    assert _errors(inst) == []


def test_rst_restores_defaults(inst) -> None:
    inst.write("VOLT 3,(@1)")
    inst.write("FORM REAL")
    inst.write("OUTP ON,(@1)")
    inst.write("*RST")
    assert inst.query("OUTP? (@1)") == "0"
    assert float(inst.query("VOLT? (@1)")) == 0.0
    assert inst.query("FORM?") == "ASC"


def test_ovp_trips_when_voltage_exceeds_protection(inst, bus: SignalBus) -> None:
    inst.write("VOLT 3.3,(@1)")
    inst.write("VOLT:PROT 3.6,(@1)")
    inst.write("OUTP ON,(@1)")
    assert inst.query("OUTP? (@1)") == "1" and bus.powered
    inst.write("VOLT 4.0,(@1)")
    assert inst.query("OUTP? (@1)") == "0"
    assert not bus.powered
    assert inst.query("STAT:QUES:COND? (@1)") == "+1"
    inst.write("VOLT 3.3,(@1)")
    inst.write("OUTP ON,(@1)")  # still latched
    assert _errors(inst)[0].startswith("-221")
    inst.write("OUTP:PROT:CLE (@1)")
    inst.write("OUTP ON,(@1)")
    assert inst.query("OUTP? (@1)") == "1"


@pytest.mark.parametrize(
    "module, functions, requested, expect",
    [
        ("N6781A", ("ON", "OFF"), 5e-6, 5.12e-6),
        ("N6781A", ("ON", "ON"), 5e-6, 10.24e-6),
        ("N6781A", ("ON", "ON"), 20e-6, 20.48e-6),
        ("N6761A", ("ON", "OFF"), 5e-6, 20.48e-6),
        ("N6761A", ("ON", "OFF"), 50e-6, 40.96e-6),
    ],
)
def test_sample_interval_quantisation(inst, module: str, functions: tuple[str, str], requested: float,
                                      expect: float) -> None:
    ch = "(@1)" if module == "N6781A" else "(@2)"
    inst.write(f"SENS:FUNC:CURR {functions[0]},{ch}")
    inst.write(f"SENS:FUNC:VOLT {functions[1]},{ch}")
    finest = float(inst.query(f"SENS:SWE:TINT? MIN,{ch}"))
    inst.write(f"SENS:SWE:TINT {max(requested, finest)},{ch}")
    assert float(inst.query(f"SENS:SWE:TINT? {ch}")) == pytest.approx(expect)
    inst.write(f"SENS:SWE:TINT {finest / 2},{ch}")
    assert _errors(inst)[0].startswith("-222")


def _drive(bus: SignalBus, pulses: list[tuple[float, float]], current: float, end_s: float, delay: float = 0.05):
    """Advance the bus: idle, then the pulses (start, width), then idle until end_s."""

    def run() -> None:
        time.sleep(delay)
        t = bus.now_s
        for start, width in pulses:
            bus.add_segment(t, start, bus.idle_current_a)
            bus.add_edge(start, 1, 0)
            bus.add_segment(start, start + width, current)
            bus.add_edge(start + width, 0, 0)
            t = start + width
        bus.add_segment(t, end_s, bus.idle_current_a)

    th = threading.Thread(target=run)
    th.start()
    return th


def _setup_acq(inst, points: int, offset: int, source: str = "PIN1") -> None:
    for cmd in ("VOLT 3.3,(@1)", "OUTP ON,(@1)", "SENS:FUNC:VOLT ON,(@1)", "SENS:SWE:TINT 20.48E-6,(@1)",
                f"SENS:SWE:POIN {points},(@1)", f"SENS:SWE:OFFS:POIN {offset},(@1)", "DIG:PIN1:FUNC TINP",
                "DIG:PIN1:POL POS", f"TRIG:ACQ:SOUR {source},(@1)"):
        inst.write(cmd)
    assert _errors(inst) == []


def test_pin_triggered_acquisition_state_machine_and_data(inst, bus: SignalBus) -> None:
    _setup_acq(inst, 200, -50)
    assert inst.query("STAT:OPER:COND? (@1)") == "+1"  # CV, idle
    inst.write("INIT:ACQ (@1)")
    assert inst.query("STAT:OPER:COND? (@1)") == "+41"  # CV + waiting for trigger + measuring
    th = _drive(bus, [(0.010, 1e-3)], 0.040, 0.5)
    values = inst.query_ascii_values("FETC:ARR:CURR? (@1)")
    th.join()
    assert inst.query("STAT:OPER:COND? (@1)") == "+1"
    cur = np.array(values)
    assert len(cur) == 200
    # trigger sample is index 50: idle before it, 40 mA for ~1 ms (48.8 samples) after
    assert np.all(cur[:50] == pytest.approx(0.010))
    assert np.all(cur[51:98] == pytest.approx(0.040))
    charge = (cur - 0.010).sum() * 20.48e-6
    assert charge == pytest.approx(0.030 * 1e-3, rel=1e-6)  # integrating ADC: charge is exact
    volts = np.array(inst.query_ascii_values("FETC:ARR:VOLT? (@1)"))
    assert np.all(volts == pytest.approx(3.3))


def test_init_while_armed_is_init_ignored(inst) -> None:
    _setup_acq(inst, 10, 0, source="BUS")
    inst.write("INIT:ACQ (@1)")
    inst.write("INIT:ACQ (@1)")
    assert _errors(inst)[0].startswith("-213")
    inst.write("ABOR:ACQ (@1)")
    assert inst.query("STAT:OPER:COND? (@1)") == "+1"


def test_pin_trigger_needs_tinp_function(inst) -> None:
    inst.write("DIG:PIN3:FUNC DIO")
    inst.write("TRIG:ACQ:SOUR PIN3,(@1)")
    inst.write("INIT:ACQ (@1)")
    assert _errors(inst)[0].startswith("-221")


def test_fetch_without_trigger_answers_an_error_and_keeps_the_socket(inst, sim: SimN6705A) -> None:
    _setup_acq(inst, 10, 0, source="BUS")
    inst.write("INIT:ACQ (@1)")
    inst.timeout = 500
    with pytest.raises(pyvisa.errors.VisaIOError):
        inst.query("FETC:ARR:CURR? (@1)")  # BUS source, no trigger: nothing to answer
    inst.timeout = 3000
    assert _errors(inst)[0].startswith("-214")
    assert inst.query("*IDN?").startswith("SIMULATED Agilent")  # socket still serves; says it is simulated


def test_fetch_times_out_if_simulated_time_stalls(inst, bus: SignalBus) -> None:
    _setup_acq(inst, 1000, 0, source="BUS")
    bus.add_segment(0.0, 0.001, 0.01)
    inst.write("INIT:ACQ (@1)")
    inst.write("TRIG:ACQ (@1)")
    inst.timeout = 500
    with pytest.raises(pyvisa.errors.VisaIOError):
        inst.query("FETC:ARR:CURR? (@1)")  # the board never advances: sim answers -214 after 1 s
    inst.timeout = 3000
    time.sleep(0.7)
    assert _errors(inst)[0].startswith("-214")


@pytest.mark.parametrize("order, big", [("NORM", True), ("SWAP", False)])
def test_real_block_transfer_of_100k_points_in_both_byte_orders(inst, bus: SignalBus, order: str, big: bool) -> None:
    points, tint = 120_000, 20.48e-6
    _setup_acq(inst, points, 0, source="BUS")
    inst.write("FORM REAL")
    inst.write(f"FORM:BORD {order}")
    t_arm = bus.now_s  # nothing advances the bus: INIT and *TRG both happen at t_arm
    inst.write("INIT:ACQ (@1)")
    inst.write("*TRG")
    assert inst.query("*OPC?") == "1"  # the trigger has been processed before the bus moves
    levels = np.random.default_rng(1).uniform(0.005, 0.05, points)
    for i, level in enumerate(levels):  # one segment per sample: sample i must read level i
        bus.add_segment(t_arm + i * tint, t_arm + (i + 1) * tint, float(level))
    bus.add_segment(t_arm + points * tint, t_arm + points * tint + 1.0, 0.01)
    inst.timeout = 20000
    data = inst.query_binary_values("FETC:ARR:CURR? (@1)", datatype="f", is_big_endian=big, container=np.array)
    assert len(data) == points
    np.testing.assert_allclose(data, levels, rtol=1e-6)
    wrong = inst.query_binary_values("FETC:ARR:CURR? (@1)", datatype="f", is_big_endian=not big, container=np.array)
    assert not np.allclose(wrong, levels, rtol=1e-3)  # the byte order really matters
    assert _errors(inst) == []


def test_meas_scalar_and_concurrent_clients(sim: SimN6705A, bus: SignalBus) -> None:
    a, b = _open(sim), _open(sim)
    try:
        a.write("VOLT 3.3,(@1)")
        a.write("OUTP ON,(@1)")
        assert a.query("*OPC?") == "1"  # a's commands are done before b looks
        bus.add_segment(0.0, 0.1, 0.025)
        assert float(b.query("MEAS:CURR? (@1)")) == pytest.approx(0.025)
        assert float(b.query("MEAS:VOLT? (@1)")) == pytest.approx(3.3)
        replies: list[str] = []

        def hammer(r) -> None:
            for _ in range(50):
                replies.append(r.query("SYST:CHAN:MOD? (@2)"))

        threads = [threading.Thread(target=hammer, args=(r,)) for r in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert replies == ["N6761A"] * 100
    finally:
        a.close()
        b.close()


def test_output_off_reads_zero_current(inst, bus: SignalBus) -> None:
    bus.add_segment(0.0, 0.1, 0.025)
    assert float(inst.query("MEAS:CURR? (@1)")) == 0.0
    assert not bus.powered or inst.query("OUTP? (@1)") == "0"


def test_elog_fifo_records_and_overflow() -> None:
    bus = SignalBus(3.3, 0.010)
    with SimN6705A(elog_fifo_s=0.05) as sim:
        sim.attach(1, bus)
        r = _open(sim)
        try:
            for cmd in ("VOLT 3.3,(@1)", "OUTP ON,(@1)", "SENS:ELOG:FUNC:CURR ON,(@1)",
                        "SENS:ELOG:FUNC:CURR:MINM ON,(@1)", "SENS:ELOG:PER 0.001,(@1)", "TRIG:ELOG:SOUR BUS,(@1)",
                        "INIT:ELOG (@1)", "TRIG:ELOG (@1)"):
                r.write(cmd)
            assert r.query("*OPC?") == "1"
            t0 = bus.now_s
            # 10 ms at 10 mA, then 10 ms with a 0.5 ms spike of 50 mA inside one period
            bus.add_segment(t0, t0 + 0.0102, 0.010)
            bus.add_segment(t0 + 0.0102, t0 + 0.0107, 0.050)
            bus.add_segment(t0 + 0.0107, t0 + 0.020, 0.010)
            rec = np.array(r.query_ascii_values("FETC:ELOG? 1000,(@1)")).reshape(-1, 3)
            assert len(rec) == 20
            assert rec[10, 0] == pytest.approx(0.010 + 0.040 * 0.5)  # mean over the period
            assert rec[10, 2] == pytest.approx(0.050, rel=1e-3) and rec[10, 1] == pytest.approx(0.010, rel=1e-3)
            assert r.query("FETC:ELOG? 1000,(@1)") == ""  # drained: the FIFO is empty
            assert _errors(r) == []
            # nobody drains for 100 ms: a 50 ms FIFO overflows and says so
            bus.add_segment(bus.now_s, bus.now_s + 0.1, 0.010)
            rec = r.query_ascii_values("FETC:ELOG? 1000,(@1)")
            assert len(rec) == 50 * 3
            assert _errors(r)[0].startswith("-230")
        finally:
            r.close()


def test_abort_from_another_client_releases_a_waiting_fetch(sim: SimN6705A) -> None:
    a, b = _open(sim, timeout_ms=800), _open(sim)
    try:
        _setup_acq(a, 10, 0, source="PIN1")  # pin trigger that never comes
        a.write("INIT:ACQ (@1)")
        assert a.query("*OPC?") == "1"
        a.write("FETC:ARR:CURR? (@1)")
        time.sleep(0.1)
        b.write("ABOR:ACQ (@1)")
        assert b.query("*OPC?") == "1"
        with pytest.raises(pyvisa.errors.VisaIOError):
            a.read()  # the aborted fetch answers nothing...
        assert _errors(a)[0].startswith("-230")  # ...but says why, well before the 1 s fetch timeout
    finally:
        a.close()
        b.close()
