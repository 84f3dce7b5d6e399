"""Pin names of an Mbed CE target, read from the tree itself: the target's PinNames.h (enum
members and #defines, with aliases resolved) and the console pins its targets.json5 configures.
Used to check that a board file names pins that exist, that the benchmark pin is no LED and that
the UART pins are the console the firmware talks on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.config.board import BoardConfig

_IDENT = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class TargetPins:
    target: str
    files: tuple[Path, ...]
    aliases: dict[str, str]  # name -> what it is defined as ("" when it is a pin of its own)

    @property
    def names(self) -> set[str]:
        return set(self.aliases)

    def resolve(self, name: str) -> str:
        """Follow aliases (LED1 -> PH_0, D2 -> P1_11, p24 -> P0_24) to the underlying pin name."""
        seen = set()
        while self.aliases.get(name) and name not in seen:
            seen.add(name)
            name = self.aliases[name]
        return name

    def leds(self) -> set[str]:
        """Pins behind every LED name (LED1.., LED_RED, LED_BUILTIN, ...)."""
        return {self.resolve(n) for n in self.aliases if n.startswith("LED")}


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def parse_pin_names(text: str) -> dict[str, str]:
    """Enumerators of the ``PinName`` enum and object-like #defines of a PinNames.h."""
    text = _strip_comments(text)
    # Nordic writes enumerators through a pasting macro: `#define PinDef(port, pin) P##port##_##pin = ...`
    for macro, a, b, pattern in re.findall(r"^\s*#define\s+(\w+)\(\s*(\w+)\s*,\s*(\w+)\s*\)\s+([\w#]+)\s*=", text, flags=re.M):

        def paste(m: re.Match[str], a: str = a, b: str = b, pattern: str = pattern) -> str:
            name = re.sub(rf"\b{a}\b", m.group(1), re.sub(rf"\b{b}\b", m.group(2), pattern.replace("##", " ## ")))
            return name.replace(" ## ", "").replace(" ", "")

        text = re.sub(rf"\b{macro}\(\s*(\w+)\s*,\s*(\w+)\s*\)", paste, text)
    found: dict[str, str] = {}
    for body in re.findall(r"typedef\s+enum\s*\{(.*?)\}\s*PinName\s*;", text, flags=re.S):
        body = re.sub(r"^\s*#.*$", "", body, flags=re.M)  # #ifdef lines inside the enum
        for item in body.split(","):
            name, _, value = item.partition("=")
            name = name.strip()
            if _IDENT.fullmatch(name):
                found[name] = value.strip() if _IDENT.fullmatch(value.strip()) else ""
    for name, value in re.findall(r"^\s*#define\s+([A-Za-z_]\w*)\s+([A-Za-z_]\w*)\s*$", text, flags=re.M):
        found.setdefault(name, value)
    return found


def target_dir(tree: Path, target: str) -> Path:
    hits = sorted(p for p in (tree / "targets").rglob(f"TARGET_{target}") if p.is_dir())
    if not hits:
        raise FileNotFoundError(f"{tree}/targets has no TARGET_{target} folder")
    return hits[0]


def target_pins(tree: Path, target: str) -> TargetPins:
    """Pins of ``target``: its folder's PinNames.h plus PinNames*.h of the folders above it
    (Nuvoton keeps common names one level up)."""
    folder = target_dir(tree, target)
    files = sorted(folder.glob("PinNames*.h"))
    for parent in folder.parents:
        if parent == tree / "targets":
            break
        files += sorted(parent.glob("PinNames*.h"))
    aliases: dict[str, str] = {}
    for f in files:
        for k, v in parse_pin_names(f.read_text(errors="replace")).items():
            aliases.setdefault(k, v)
    return TargetPins(target, tuple(files), aliases)


def target_config_value(tree: Path, target: str, key: str) -> str | None:
    """A string setting of ``target``'s own block in targets.json5 (e.g. "usb-uart-tx"), or
    None when the block does not set it (its parents' values are not followed)."""
    text = _strip_comments((tree / "targets" / "targets.json5").read_text())
    m = re.search(rf'^\s*"{re.escape(target)}"\s*:\s*\{{', text, flags=re.M)
    if not m:
        return None
    depth, i = 1, m.end()
    while depth and i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    v = re.search(rf'"{re.escape(key)}"\s*:\s*"([^"]*)"', text[m.end() : i])
    return v.group(1) if v else None


def console_pins(tree: Path, target: str) -> tuple[str, str]:
    """(TX, RX) of the target's console: CONSOLE_TX/RX, resolved through the target's
    usb-uart-tx/rx setting where PinNames.h defers to it (Nuvoton)."""
    pins = target_pins(tree, target)
    out = []
    for name, key in (("CONSOLE_TX", "usb-uart-tx"), ("CONSOLE_RX", "usb-uart-rx")):
        pin = pins.resolve(name)
        if pin.startswith("MBED_CONF_TARGET_"):
            pin = target_config_value(tree, target, key) or pin
        out.append(pin)
    return out[0], out[1]


def board_pin_problems(board: BoardConfig, tree: Path) -> list[str]:
    """What is wrong with a board file's pins for its Mbed target in ``tree`` ([] = all right)."""
    from harness.build.mbed import mbed_pin

    target = board.flash.mbed_target
    if not target:
        return [f"board {board.name}: flash.mbed_target is not set"]
    pins = target_pins(tree, target.removesuffix("_SWD"))
    where = f"{target}'s PinNames.h ({', '.join(str(f.relative_to(tree)) for f in pins.files)})"
    problems = []
    bench = mbed_pin(board, board.gpio.benchmark_pin)
    if bench not in pins.names:
        problems.append(f"board {board.name}: field 'gpio.benchmark_pin' = {bench!r} is not a pin of {where}")
    elif pins.resolve(bench) in pins.leds():
        problems.append(f"board {board.name}: field 'gpio.benchmark_pin' = {bench!r} drives an LED "
                        "(its current would count as inference energy); use a free header pin")
    console = console_pins(tree, target.removesuffix("_SWD"))
    for field, pin, want in (("uart.tx_pin", board.uart.tx_pin, console[0]), ("uart.rx_pin", board.uart.rx_pin, console[1])):
        if pin is None:
            continue
        name = mbed_pin(board, pin)
        if name not in pins.names:
            problems.append(f"board {board.name}: field '{field}' = {name!r} is not a pin of {where}")
        elif pins.resolve(name) != want:
            problems.append(f"board {board.name}: field '{field}' = {name!r} is not the target's console pin {want}")
    return problems
