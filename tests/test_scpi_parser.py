"""The SCPI parser of the simulated instruments, without a socket."""

from __future__ import annotations

import pytest

from harness.sim.n6705a.scpi import (
    CommandTree,
    ScpiError,
    ieee_block,
    parse_channel_list,
    parse_number,
    split_message,
)


def _tree() -> tuple[CommandTree, list[str]]:
    hits: list[str] = []
    tree = CommandTree()
    tree.add("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", lambda p, s: hits.append("volt"))
    tree.add("[SOURce:]VOLTage:PROTection[:LEVel]", lambda p, s: hits.append("prot"))
    tree.add("DIGital:PIN#:FUNCtion", lambda p, s: hits.append(f"pin{s[0]}"))
    tree.add("*IDN", lambda p, s: "idn", query=True)
    return tree, hits


@pytest.mark.parametrize(
    "header, expect",
    [
        ("VOLT", "volt"),
        ("volt", "volt"),
        ("VOLTAGE", "volt"),
        ("SOURce:VOLTage:LEVel:IMMediate:AMPLitude", "volt"),
        ("sour:volt:lev", "volt"),
        (":SOUR:VOLT", "volt"),
        ("VOLT:PROT", "prot"),
        ("source:voltage:protection:level", "prot"),
        ("DIG:PIN4:FUNC", "pin4"),
        ("digital:pin7:function", "pin7"),
    ],
)
def test_long_short_optional_forms_resolve(header: str, expect: str) -> None:
    tree, hits = _tree()
    handler, suffixes = tree.lookup(header)
    handler([], suffixes)
    assert hits == [expect]


@pytest.mark.parametrize("header", ["VOLTA", "VOL", "SOUR:VOLT:BOGUS", "VOLT?", "PIN4:FUNC", "SOURCE::VOLT", "*IDN"])
def test_undefined_headers_are_113(header: str) -> None:
    tree, _ = _tree()
    with pytest.raises(ScpiError) as exc:
        tree.lookup(header)
    assert exc.value.code == -113


def test_query_form_is_separate() -> None:
    tree, _ = _tree()
    handler, _ = tree.lookup("*idn?")
    assert handler([], []) == "idn"


def test_split_message_applies_relative_paths_and_keeps_channel_lists() -> None:
    units = split_message("SOUR:VOLT 3.3,(@1,2);PROT 3.6,(@1:3);:OUTP ON,(@1);*OPC?")
    assert units == [
        ("SOUR:VOLT", ["3.3", "(@1,2)"]),
        ("SOUR:PROT", ["3.6", "(@1:3)"]),
        ("OUTP", ["ON", "(@1)"]),
        ("*OPC?", []),
    ]


@pytest.mark.parametrize(
    "text, chans",
    [("(@1)", [1]), ("(@1,2)", [1, 2]), ("(@1:3)", [1, 2, 3]), ("( @ 2 , 4 )", [2, 4]), ("(@1,3:4)", [1, 3, 4])],
)
def test_channel_lists(text: str, chans: list[int]) -> None:
    assert parse_channel_list(text) == chans


def test_bad_channel_list_is_a_data_type_error() -> None:
    with pytest.raises(ScpiError) as exc:
        parse_channel_list("(1)")
    assert exc.value.code == -104


def test_numbers_keywords_units_and_range() -> None:
    assert parse_number("MIN", 0.5, 20, 1, "x") == 0.5
    assert parse_number("max", 0.5, 20, 1, "x") == 20
    assert parse_number("DEF", 0.5, 20, 1, "x") == 1
    assert parse_number("3.3", 0, 20, 0, "x") == 3.3
    assert parse_number("20.48us", 0, 1, 0, "x") == pytest.approx(20.48e-6)
    assert parse_number("5E-3", 0, 1, 0, "x") == 5e-3
    with pytest.raises(ScpiError) as exc:
        parse_number("21", 0, 20, 0, "VOLT")
    assert exc.value.code == -222
    with pytest.raises(ScpiError) as exc:
        parse_number("three", 0, 20, 0, "VOLT")
    assert exc.value.code == -104


def test_ieee_block_header() -> None:
    assert ieee_block(b"") == b"#10"
    assert ieee_block(b"x" * 12) == b"#212" + b"x" * 12
    assert ieee_block(b"x" * 400_000)[:8] == b"#6400000"
