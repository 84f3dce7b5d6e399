"""A small SCPI-1999 parser: program messages, header paths with long/short forms and optional
nodes, numeric suffixes, and the parameter types the N6705A uses (numbers with MIN/MAX/DEF,
booleans, character data, channel lists). Kept free of instrument state so it can be tested
alone and reused by other simulated instruments."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field


class ScpiError(Exception):
    """An SCPI error that goes to the error queue as ``code,"message"``."""

    def __init__(self, code: int, message: str):
        super().__init__(f'{code},"{message}"')
        self.code = code
        self.message = message


def undefined_header(header: str) -> ScpiError:
    return ScpiError(-113, f"Undefined header;{header}")


def out_of_range(what: str) -> ScpiError:
    return ScpiError(-222, f"Data out of range;{what}")


def illegal_value(what: str) -> ScpiError:
    return ScpiError(-224, f"Illegal parameter value;{what}")


def settings_conflict(what: str) -> ScpiError:
    return ScpiError(-221, f"Settings conflict;{what}")


# -- header patterns -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Node:
    long: str  # upper case
    short: str  # upper case
    optional: bool
    suffix: bool  # accepts a numeric suffix (PIN<n>)

    def match(self, token: str) -> tuple[bool, int | None]:
        m = re.fullmatch(r"(\*?[A-Z]+)(\d*)", token.upper())
        if not m:
            return False, None
        word, digits = m.groups()
        if word not in (self.long, self.short):
            return False, None
        if digits and not self.suffix:
            return False, None
        return True, (int(digits) if digits else None)


def _compile(pattern: str) -> list[_Node]:
    """``[SOURce:]VOLTage[:LEVel]`` -> nodes; upper-case letters form the short form; ``#`` = suffix."""
    nodes = []
    for m in re.finditer(r"\[:?([A-Za-z#*]+):?\]|:?([A-Za-z#*]+)", pattern):
        text = m.group(1) or m.group(2)
        suffix = text.endswith("#")
        text = text.rstrip("#")
        short = "".join(c for c in text if c.isupper() or c == "*") or text.upper()
        nodes.append(_Node(text.upper(), short, m.group(1) is not None, suffix))
    return nodes


def _match_nodes(nodes: list[_Node], tokens: list[str]) -> list[int | None] | None:
    """Match header tokens against pattern nodes (optional nodes may be skipped); returns the
    numeric suffixes of the matched nodes, or None."""
    if not nodes:
        return [] if not tokens else None
    node, rest = nodes[0], nodes[1:]
    if tokens:
        ok, suffix = node.match(tokens[0])
        if ok:
            tail = _match_nodes(rest, tokens[1:])
            if tail is not None:
                return [suffix, *tail]
    if node.optional:
        tail = _match_nodes(rest, tokens)
        if tail is not None:
            return [None, *tail]
    return None


Handler = Callable[..., "str | bytes | None"]


@dataclass
class Command:
    pattern: str
    query: bool
    handler: Handler
    nodes: list[_Node] = field(default_factory=list)


class CommandTree:
    """Registry of header patterns; ``lookup`` resolves a header into (handler, suffixes)."""

    def __init__(self) -> None:
        self._commands: list[Command] = []

    def add(self, pattern: str, handler: Handler, query: bool = False) -> None:
        self._commands.append(Command(pattern, query, handler, _compile(pattern)))

    def lookup(self, header: str) -> tuple[Handler, list[int]]:
        query = header.endswith("?")
        text = header[:-1] if query else header
        if text.startswith("*"):
            tokens = [text.upper()]
        else:
            tokens = [t for t in text.lstrip(":").split(":")]
            if any(t == "" for t in tokens):
                raise undefined_header(header)
        for cmd in self._commands:
            if cmd.query != query:
                continue
            suffixes = _match_nodes(cmd.nodes, tokens)
            if suffixes is not None:
                return cmd.handler, [s for s in suffixes if s is not None]
        raise undefined_header(header)


# -- program messages ------------------------------------------------------------------------
def split_outside(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes and parentheses."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def split_message(line: str) -> list[tuple[str, list[str]]]:
    """One program message -> [(absolute header, [params])], applying the SCPI rule that a
    header after ``;`` without a leading colon is relative to the previous header's path."""
    out: list[tuple[str, list[str]]] = []
    prefix = ""
    for unit in split_outside(line.strip(), ";"):
        unit = unit.strip()
        if not unit:
            continue
        m = re.match(r"(\S+)\s*(.*)", unit, re.S)
        assert m is not None
        header, rest = m.group(1), m.group(2).strip()
        if header.startswith("*"):
            full = header
        elif header.startswith(":"):
            full = header[1:]
        else:
            full = prefix + header
        if not header.startswith("*"):
            path = full.rstrip("?").split(":")
            prefix = ":".join(path[:-1]) + ":" if len(path) > 1 else ""
        params = [p.strip() for p in split_outside(rest, ",")] if rest else []
        out.append((full, params))
    return out


# -- parameters ------------------------------------------------------------------------------
_UNITS = {"": 1.0, "V": 1.0, "A": 1.0, "S": 1.0, "W": 1.0, "MV": 1e-3, "MA": 1e-3, "MS": 1e-3,
          "UV": 1e-6, "UA": 1e-6, "US": 1e-6, "NS": 1e-9}


def parse_number(text: str, minimum: float, maximum: float, default: float, what: str) -> float:
    """Decimal numeric program data, MIN/MAX/DEF keywords and a unit suffix; range-checked."""
    word = text.strip().upper()
    if word in ("MIN", "MINIMUM"):
        return minimum
    if word in ("MAX", "MAXIMUM"):
        return maximum
    if word in ("DEF", "DEFAULT"):
        return default
    m = re.fullmatch(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:E[-+]?\d+)?)\s*([A-Z]*)", word)
    if not m or m.group(2) not in _UNITS:
        raise ScpiError(-104, f"Data type error;{what}")
    value = float(m.group(1)) * _UNITS[m.group(2)]
    if not minimum <= value <= maximum:
        raise out_of_range(what)
    return value


def parse_bool(text: str, what: str) -> bool:
    word = text.strip().upper()
    if word in ("ON", "1"):
        return True
    if word in ("OFF", "0"):
        return False
    raise illegal_value(what)


def parse_choice(text: str, choices: dict[str, str], what: str) -> str:
    """Character data matched against long/short forms, e.g. {"ASCii": "ASC", "REAL": "REAL"}."""
    word = text.strip().upper()
    for pattern, value in choices.items():
        short = "".join(c for c in pattern if c.isupper() or c.isdigit())
        if word in (pattern.upper(), short):
            return value
    raise illegal_value(what)


def parse_channel_list(text: str) -> list[int]:
    """``(@1)``, ``(@1,2)``, ``(@1:3)`` -> [1], [1, 2], [1, 2, 3]."""
    m = re.fullmatch(r"\(\s*@\s*([\d\s,:]+)\)", text.strip())
    if not m:
        raise ScpiError(-104, "Data type error;expected a channel list like (@1)")
    chans: list[int] = []
    for item in m.group(1).split(","):
        lo, _, hi = item.strip().partition(":")
        if not lo.strip().isdigit() or (hi and not hi.strip().isdigit()):
            raise ScpiError(-104, "Data type error;bad channel list")
        a, b = int(lo), int(hi) if hi else int(lo)
        chans.extend(range(a, b + 1) if a <= b else range(a, b - 1, -1))
    return chans


def ieee_block(payload: bytes) -> bytes:
    """IEEE 488.2 definite-length arbitrary block ``#<n><len><payload>``."""
    length = str(len(payload))
    return f"#{len(length)}{length}".encode() + payload


def format_float(value: float) -> str:
    return f"{value:+.6E}"
