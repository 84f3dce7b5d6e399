"""Syntax checks for the addresses in a rig file (VISA resource strings, serial ports, probe
ids), so a typo is caught by ``harness validate`` instead of half-way through a campaign.

Syntax only: whether the port is plugged in is :func:`port_presence` (a warning at validate,
an error in ``rig doctor``)."""

from __future__ import annotations

import ipaddress
import os
import re
import sys

_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
# pyserial URL handlers that reach a device (loop:// and spy:// are for tests and tracing)
SERIAL_SCHEMES = ("socket", "rfc2217", "loop", "spy", "hwgrep")
_DEVICE = re.compile(r"^/dev/[A-Za-z0-9_./:+-]+$")
_COM = re.compile(r"^(COM[1-9][0-9]{0,2}|\\\\\.\\COM[1-9][0-9]{0,2})$", re.IGNORECASE)
PROBE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return
    except ValueError:
        pass
    if not _HOST.match(host):
        raise ValueError(f"{host!r} is not a host name or IP address")


def check_port_number(text: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{what} port {text!r} is not a number in 1-65535")
    return int(text)


def check_visa_resource(resource: str) -> str:
    """A VISA resource string pyvisa can parse, with a sane host and port for TCPIP ones."""
    from pyvisa import rname

    try:
        parsed = rname.parse_resource_name(resource)
    except Exception as exc:  # pyvisa raises InvalidResourceName (and ValueError for odd input)
        raise ValueError(f"{resource!r} is not a VISA resource string ({exc}); e.g. TCPIP0::192.0.2.10::5025::SOCKET, "
                         "TCPIP0::192.0.2.11::INSTR, USB0::0x0957::0x0F07::MY12345678::INSTR") from None
    host = getattr(parsed, "host_address", None)
    if host is not None:
        check_host(str(host))
    port = getattr(parsed, "port", None)
    if port is not None:
        check_port_number(str(port), "TCP")
    return resource


def check_serial(port: str) -> str:
    """'sim', a pyserial URL with a known scheme, or a device path (/dev/..., COMn)."""
    if port == "sim":
        return port
    if "://" in port:
        scheme, _, rest = port.partition("://")
        if scheme not in SERIAL_SCHEMES:
            raise ValueError(f"{port!r}: unknown pyserial URL scheme {scheme!r} (allowed: {', '.join(SERIAL_SCHEMES)})")
        if scheme in ("socket", "rfc2217"):
            hostport = rest.split("?", 1)[0].rstrip("/")
            host, sep, num = hostport.rpartition(":")
            if not sep or not host:
                raise ValueError(f"{port!r}: expected {scheme}://<host>:<port>")
            check_host(host)
            check_port_number(num, scheme)
        return port
    if _DEVICE.match(port) and ".." not in port.split("/"):
        return port
    if _COM.match(port):
        return port
    raise ValueError(f"{port!r} is not a serial port: give /dev/tty..., COMn, socket://host:port or 'sim'")


def port_presence(port: str) -> str | None:
    """Why a local serial device is not there right now (unplugged?), or None."""
    if port == "sim" or "://" in port:
        return None
    if sys.platform == "win32" or _COM.match(port):
        return None  # COM ports are enumerated by rig doctor, not guessed here
    if not os.path.exists(port):
        return f"serial port {port} does not exist (board unplugged, or another name?)"
    return None
