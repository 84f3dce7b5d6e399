"""Identity-level checks of the driver with pyvisa-sim (backend "@sim", the packaged YAML): the
same driver code path a user gets with `backend = "@sim"` in a rig file."""

from __future__ import annotations

import pytest

from harness.config.board import SupplySettings
from harness.instruments.errors import InstrumentError, SafetyError
from harness.instruments.n6705a import N6705A

RESOURCE = "TCPIP0::127.0.0.1::5025::SOCKET"
SUPPLY = SupplySettings(nominal_v=3.3, abs_max_v=3.6, ovp_v=3.5, current_limit_a=0.2)


def test_identify_and_supply_through_pyvisa_sim() -> None:
    with N6705A.open(RESOURCE, backend="@sim") as pa:
        assert pa.identity is not None and pa.identity.module == "N6781A"
        pa.apply_supply(SUPPLY, settle_s=0)
        assert pa.output_is_on()
        assert float(pa.inst.query("VOLT? (@1)")) == pytest.approx(3.3)
        assert float(pa.inst.query("VOLT:PROT? (@1)")) == pytest.approx(3.5)
        with pytest.raises(SafetyError):
            pa.apply_supply(SUPPLY, voltage_v=4.0, settle_s=0)
        pa.output_off()
        assert not pa.output_is_on()


def test_pyvisa_sim_error_queue_reaches_the_driver() -> None:
    with N6705A.open(RESOURCE, backend="@sim") as pa, pytest.raises(InstrumentError, match="-113"):
        pa.inst.write_checked("SOUR:VOLT:BOGUS 1,(@1)")
