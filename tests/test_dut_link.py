"""DutLink against scripted peers: a TCP socket that answers each %-command from a script, and
pyserial's loop:// (which only echoes): timeouts, e- errors, garbage and resync, batching."""

from __future__ import annotations

import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import pytest

from harness.dut import DutChecksumError, DutError, DutFault, DutLink, DutProtocolError, DutTimeout
from harness.dut.protocol import parse_identify, parse_laps, parse_results

IDENTIFY = (
    "m-protocol=2\r\nm-board=sim-pico\r\nm-model=lenet\r\nm-model-hash=0123456789abcdef\r\n"
    "m-build=abcdef012345\r\nm-numeric=int8\r\nm-input-bytes=4\r\nm-output-bytes=3\r\n"
    "m-output-count=3\r\nm-arena-bytes=100\r\nm-counter=systick\r\nm-counter-hz=133000000\r\n"
    "m-counter-overhead=7\r\nm-max-laps=2\r\nm-ready\r\n"
)


def framed(reply: str) -> str:
    """Insert the ``m-crc=`` line the firmware sends before each ``m-ready`` (docs/protocol.md)."""
    out, start = [], 0
    while (end := reply.find("m-ready\r\n", start)) >= 0:
        body = reply[start:end]
        out.append(f"{body}m-crc={zlib.crc32(body.encode('latin-1')):08x}\r\nm-ready\r\n")
        start = end + len("m-ready\r\n")
    return "".join(out) + reply[start:]


class ScriptedPeer:
    """A one-connection TCP 'device': ``handler(command) -> reply`` (None: stay silent). Replies
    get their checksum line unless ``raw`` (to send exactly what a test scripts)."""

    def __init__(self, handler: Callable[[str], str | None], raw: bool = False):
        self.handler = handler
        self.raw = raw
        self.commands: list[str] = []
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._srv.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._srv.accept()
        buf = ""
        with conn:
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buf += data.decode()
                while "%" in buf:
                    cmd, buf = buf.split("%", 1)
                    self.commands.append(cmd)
                    reply = self.handler(cmd)
                    if reply:
                        conn.sendall((reply if self.raw else framed(reply)).encode("latin-1"))

    def close(self) -> None:
        self._srv.close()


@pytest.fixture()
def peer_factory() -> Iterator[Callable[..., ScriptedPeer]]:
    peers: list[ScriptedPeer] = []

    def make(handler: Callable[[str], str | None], raw: bool = False) -> ScriptedPeer:
        peers.append(ScriptedPeer(handler, raw))
        return peers[-1]

    yield make
    for p in peers:
        p.close()


def device(extra: dict[str, str] | None = None) -> Callable[[str], str | None]:
    """A well-behaved scripted device; ``extra`` overrides replies per command."""

    def handle(cmd: str) -> str | None:
        if extra and cmd in extra:
            return extra[cmd]
        if cmd == "":
            return "m-ready\r\n"
        if cmd == "identify":
            return IDENTIFY
        if cmd.startswith("db load"):
            return "m-db-expect=4\r\nm-ready\r\n"
        if cmd.startswith("db "):
            return f"m-db-loaded={len(cmd[3:]) // 2}\r\nm-ready\r\n"
        if cmd.startswith("infer "):
            n = int(cmd.split()[1])
            laps = "".join(f"m-lap-{i}={1000 + i},0000abcd\r\n" for i in range(n))
            return f"{laps}m-infer-done={n}\r\nm-ready\r\n"
        if cmd == "results":
            return "m-results-bytes=3\r\nm-results=0a0b0c\r\nm-ready\r\n"
        return "e-unknown-command\r\nm-ready\r\n"

    return handle


def test_identify_parses_every_field(peer_factory) -> None:
    peer = peer_factory(device())
    with DutLink(peer.url, timeout=2) as dut:
        info = dut.identify()
    assert info.board == "sim-pico" and info.model_hash == "0123456789abcdef"
    assert info.counter == "systick" and info.counter_hz == 133_000_000 and info.counter_overhead == 7
    assert (info.input_bytes, info.output_bytes, info.max_laps) == (4, 3, 2)


def test_infer_batches_beyond_max_laps_with_warmup_only_first(peer_factory) -> None:
    peer = peer_factory(device())
    with DutLink(peer.url, timeout=2) as dut:
        dut.load_input(b"\x01\x02\x03\x04")
        res = dut.infer(5, warmup=3, gap_us=10)
        assert dut.results() == b"\x0a\x0b\x0c"
    infers = [c for c in peer.commands if c.startswith("infer")]
    assert infers == ["infer 2 3 10", "infer 2 0 10", "infer 1 0 10"]
    assert res.cycles == [1000, 1001, 1000, 1001, 1000]
    assert res.checksum == 0xABCD and res.deterministic
    assert res.latencies_s()[0] == pytest.approx((1000 - 7) / 133e6)
    assert "db load 4" in peer.commands and "db 01020304" in peer.commands


def test_wrapped_systick_lap_is_none(peer_factory) -> None:
    peer = peer_factory(device({"infer 2 0 0": "m-lap-0=wrapped,00000001\r\nm-lap-1=5,00000002\r\nm-infer-done=2\r\nm-ready\r\n"}))
    with DutLink(peer.url, timeout=2) as dut:
        res = dut.infer(2)
    assert res.cycles == [None, 5] and res.wrapped and not res.deterministic


def test_error_line_names_port_command_and_reply(peer_factory) -> None:
    peer = peer_factory(device({"infer 1 0 0": "e-infer-no-input\r\nm-ready\r\n"}))
    with DutLink(peer.url, timeout=2) as dut, pytest.raises(DutProtocolError) as exc:
        dut.infer(1)
    msg = str(exc.value)
    assert peer.url in msg and "infer 1 0 0%" in msg and "e-infer-no-input" in msg


def test_silent_device_times_out_with_what_was_received(peer_factory) -> None:
    peer = peer_factory(device({"identify": "m-protocol=1\r\nm-board=half"}))
    with DutLink(peer.url, timeout=0.5) as dut:
        t0 = time.monotonic()
        with pytest.raises(DutTimeout) as exc:
            dut.command("identify", retries=0)
        assert time.monotonic() - t0 < 2.0
    assert "m-board=half" in str(exc.value) and "identify%" in str(exc.value)


def test_garbage_triggers_resync_and_retry(peer_factory) -> None:
    state = {"n": 0}
    base = device()

    def flaky(cmd: str) -> str | None:
        if cmd == "identify":
            state["n"] += 1
            if state["n"] == 1:
                return "\x00\xff@@garbled line\r\nm-ready\r\n"
        return base(cmd)

    peer = peer_factory(flaky)
    with DutLink(peer.url, timeout=2) as dut:
        assert dut.identify().board == "sim-pico"
    assert peer.commands == ["identify", "", "identify"]  # the bare "%" is the resync


def test_loop_port_that_only_echoes_times_out() -> None:
    with DutLink("loop://", timeout=0.3) as dut, pytest.raises(DutTimeout) as exc:
        dut.command("identify")
    assert "loop://" in str(exc.value) and "identify%" in str(exc.value)


def test_unopenable_port_is_a_dut_error() -> None:
    with pytest.raises(DutError, match="cannot open"):
        DutLink("/dev/does-not-exist-harness")


def test_input_size_is_checked_before_sending(peer_factory) -> None:
    peer = peer_factory(device())
    with DutLink(peer.url, timeout=2) as dut, pytest.raises(DutError, match="input is 5 bytes"):
        dut.load_input(b"12345")


def test_parse_laps_rejects_missing_lap() -> None:
    with pytest.raises(ValueError, match="laps"):
        parse_laps(["m-lap-0=1,00000000", "m-lap-2=1,00000000", "m-infer-done=3"], 3)



def test_device_that_never_stops_talking_is_reported() -> None:
    """A board in a boot loop floods the line; resync must give up instead of draining forever."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def flood() -> None:
        conn, _ = srv.accept()
        with conn:
            while not stop.is_set():
                try:
                    conn.sendall(b"m-boot=looping\r\n")
                except OSError:
                    return
                time.sleep(0.001)

    threading.Thread(target=flood, daemon=True).start()
    try:
        with DutLink(f"socket://127.0.0.1:{srv.getsockname()[1]}", timeout=1) as dut:
            t0 = time.monotonic()
            with pytest.raises(DutError, match="kept sending") as exc:
                dut.resync()
            assert time.monotonic() - t0 < 5
            assert "m-boot=looping" in str(exc.value)
    finally:
        stop.set()
        srv.close()


# -- framing: each reply's checksum, each field's form --------------------------------------------
IDENTIFY_784 = IDENTIFY.replace("m-input-bytes=4", "m-input-bytes=784")


def _corrupting(times: int) -> Callable[[str], str | None]:
    """Identify whose input-bytes digit flips 784 -> 785 on the wire (checksum of the original)."""
    state = {"left": times}
    good = framed(IDENTIFY_784)
    bad = good.replace("m-input-bytes=784", "m-input-bytes=785")
    base = device()

    def handle(cmd: str) -> str | None:
        if cmd == "identify":
            if state["left"] > 0:
                state["left"] -= 1
                return bad
            return good
        return framed(base(cmd) or "")

    return handle


def test_identify_corrupted_on_the_wire_is_rejected(peer_factory) -> None:
    peer = peer_factory(_corrupting(times=10), raw=True)
    with DutLink(peer.url, timeout=2) as dut, pytest.raises(DutChecksumError) as exc:
        dut.identify()
    assert "m-input-bytes=785" in str(exc.value) and "corrupted" in str(exc.value)
    assert peer.commands == ["identify", "", "identify"]  # resynced and retried once, never accepted


def test_identify_corrupted_once_is_retried(peer_factory) -> None:
    peer = peer_factory(_corrupting(times=1), raw=True)
    with DutLink(peer.url, timeout=2) as dut:
        assert dut.identify().input_bytes == 784


def test_reply_without_checksum_is_refused(peer_factory) -> None:
    peer = peer_factory(device(), raw=True)  # protocol 1 firmware: no m-crc lines
    with DutLink(peer.url, timeout=2) as dut, pytest.raises(DutProtocolError, match="no m-crc"):
        dut.command("name")


@pytest.mark.parametrize(("old", "new", "why"), [
    ("m-input-bytes=4", "m-input-bytes=7_84", "non-decimal"),
    ("m-input-bytes=4", "m-input-bytes=+4", "non-decimal"),
    ("m-input-bytes=4", "m-input-bytes=0", "input-bytes=0 outside"),
    ("m-max-laps=2", "m-max-laps=9999999", "max-laps"),
    ("m-counter=systick", "m-counter=sundial", "counter='sundial'"),
    ("m-numeric=int8", "m-numeric=int3", "numeric"),
    ("m-output-count=3", "m-output-count=30", "output-count=30 exceeds"),
    ("m-model-hash=0123456789abcdef", "m-model-hash=0123 4567", "model-hash"),
    ("m-build=abcdef012345", "m-build=", "build"),
    ("m-board=sim-pico", "m-board=sim-pico\r\nm-board=other", "repeats board"),
    ("m-protocol=2", "m-protocol=1", "protocol 1"),
])
def test_identify_fields_are_checked(old: str, new: str, why: str) -> None:
    lines = [ln for ln in IDENTIFY.replace(old, new).split("\r\n") if ln and ln != "m-ready"]
    with pytest.raises(ValueError, match=re.escape(why)):
        parse_identify(lines)


@pytest.mark.parametrize(("lines", "why"), [
    (["m-lap-0=5,0000abcd", "m-lap-0=6,0000abcd", "m-infer-done=1"], "twice"),
    (["m-lap-0=5,abcd", "m-infer-done=1"], "malformed lap"),
    (["m-lap-0=99999999999,0000abcd", "m-infer-done=1"], "32-bit"),
])
def test_lap_lines_are_checked(lines: list[str], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_laps(lines, 1)


@pytest.mark.parametrize("chunk", ["0a 0b0c", "0A0B0C", "0a0b0"])
def test_result_lines_are_checked(chunk: str) -> None:
    with pytest.raises(ValueError, match="hex"):
        parse_results(["m-results-bytes=3", f"m-results={chunk}"])


def test_fault_reported_by_the_board_ends_the_wait(peer_factory) -> None:
    peer = peer_factory(device({"infer 1 0 0": None}))  # the board never answers: its core stopped
    reasons = iter([None, None, "sim-m4: firmware fault at pc=0x00000120 (udf #0): undefined instruction"])
    with DutLink(peer.url, timeout=600, fault_check=lambda: next(reasons, "still faulted")) as dut:
        dut.load_input(b"\x01\x02\x03\x04")
        with pytest.raises(DutFault) as exc:  # not a DutTimeout after 600 s
            dut.infer(1)
    assert "udf #0" in str(exc.value) and "infer 1 0 0%" in str(exc.value)
