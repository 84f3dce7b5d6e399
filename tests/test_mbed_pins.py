"""Board files against the Mbed CE tree: every real board's benchmark pin, UART pins and LED
avoidance are checked in the target's own PinNames.h / targets.json5 (vendored tree, or
$MBED_OS_PATH). The parser is also checked on a fragment, so a broken parser cannot pass."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.build.mbed_pins import board_pin_problems, parse_pin_names
from harness.config import load_board
from harness.config.board import list_boards

VENDORED = Path(__file__).resolve().parents[1] / ".." / "shared" / "vendor" / "mbed-ce"
TREE = Path(os.environ.get("MBED_OS_PATH") or VENDORED).resolve()
HOW = ("needs an Mbed CE tree: set MBED_OS_PATH to a clone of "
       "`git clone --depth 1 --recurse-submodules https://github.com/mbed-ce/mbed-os.git`")  # fmt: skip
needs_tree = pytest.mark.skipif(not (TREE / "targets").is_dir(), reason=HOW)
REAL = [b for b in list_boards() if load_board(b).build.template == "mbed"]


def test_parser_reads_enum_members_aliases_and_defines() -> None:
    text = """
    typedef enum {
        PA_0 = NU_PINNAME(0, 0), PA_1, // trailing comment
    #ifndef ARDUINO_ARCH_MBED
        D2 = PA_1,
    #endif
        /* block */ CONSOLE_TX = MBED_CONF_TARGET_USB_UART_TX,
        NC = (int)0xFFFFFFFF
    } PinName;
    #define LED1 PA_0 // red
    #define SOME_NUMBER 3
    """
    names = parse_pin_names(text)
    assert names == {"PA_0": "", "PA_1": "", "D2": "PA_1", "CONSOLE_TX": "MBED_CONF_TARGET_USB_UART_TX",
                     "NC": "", "LED1": "PA_0"}  # fmt: skip
    nordic = """#define PinDef(port_num, pin_num) P##port_num##_##pin_num = NRF_GPIO_PIN_MAP(port_num, pin_num)
    typedef enum { PinDef(0 , 13), PinDef(1, 11), p43 = P1_11, } PinName;"""
    assert parse_pin_names(nordic) == {"P0_13": "", "P1_11": "", "p43": "P1_11"}


def test_every_real_board_is_checked() -> None:
    assert set(REAL) == {"numaker-pfm-m487", "nano33ble", "pico"}


@needs_tree
@pytest.mark.parametrize("board", REAL)
def test_board_pins_exist_for_the_target(board: str) -> None:
    assert board_pin_problems(load_board(board), TREE) == []


@needs_tree
def test_check_fails_for_a_pin_the_tree_lacks_an_led_and_a_wrong_console() -> None:
    pico = load_board("pico")
    bad = pico.model_copy(update={"gpio": pico.gpio.model_copy(update={"benchmark_pin": "p15"})})
    assert any("'p15' is not a pin of RASPBERRY_PI_PICO" in p for p in board_pin_problems(bad, TREE))
    m487 = load_board("numaker-pfm-m487")
    led = m487.model_copy(update={"gpio": m487.gpio.model_copy(update={"benchmark_pin": "PH_0"})})
    assert any("drives an LED" in p for p in board_pin_problems(led, TREE))
    nano = load_board("nano33ble")
    swapped = nano.model_copy(update={"uart": nano.uart.model_copy(update={"tx_pin": "P1_10", "rx_pin": "P1_3"})})
    assert len([p for p in board_pin_problems(swapped, TREE) if "not the target's console pin" in p]) == 2


def test_ci_with_the_vendored_tree_does_not_skip() -> None:
    if os.environ.get("CI") == "true" and VENDORED.is_dir():
        assert (TREE / "targets").is_dir(), f"CI has {VENDORED} but the tree at {TREE} is unusable"
