"""A suite of malformed board, rig and campaign files, each written here from a shipped file
with one thing broken. Every one must be refused with the file and the offending field named,
and `harness validate` must report them all without a traceback (binary files and directories
included)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.config.cli import check_file
from harness.config.loader import repo_root
from harness.errors import ConfigError

ROOT = repo_root()
BOARD = (ROOT / "boards" / "sim-m4.toml").read_text()
REAL_BOARD = (ROOT / "boards" / "numaker-pfm-m487.toml").read_text()
RIG = (ROOT / "instruments" / "sim.toml").read_text()
REAL_RIG = (ROOT / "instruments" / "example-n6705a.toml").read_text()
CAMPAIGN = (ROOT / "tests" / "data" / "tiny-campaign.toml").read_text()


def sub(text: str, old: str, new: str) -> str:
    assert old in text, f"fixture drifted: {old!r} not in the base file"
    return text.replace(old, new, 1)


@dataclass(frozen=True)
class Case:
    kind: str  # boards | instruments | campaigns (the folder the file is written into)
    name: str
    make: Callable[[], str | bytes | None]  # None = a directory named like a file
    field: str  # must appear in the message

    def write(self, root: Path) -> Path:
        folder = root / self.kind
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.toml"
        content = self.make()
        if content is None:
            path.mkdir()
            (path / "inner.toml").write_text(BOARD)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path


def b(name: str, old: str, new: str, field: str, base: str = BOARD) -> Case:
    return Case("boards", name, lambda: sub(base, old, new), field)


def r(name: str, old: str, new: str, field: str, base: str = RIG) -> Case:
    return Case("instruments", name, lambda: sub(base, old, new), field)


def c(name: str, old: str, new: str, field: str) -> Case:
    return Case("campaigns", name, lambda: sub(CAMPAIGN, old, new), field)


CASES = [
    # -- boards: supply safety ----------------------------------------------------------------
    b("abs-max-inf", "abs_max_v = 3.6", "abs_max_v = inf", "supply.abs_max_v"),
    b("ovp-inf", "ovp_v = 3.5", "ovp_v = inf", "supply.ovp_v"),
    b("nominal-nan", "nominal_v = 3.3", "nominal_v = nan", "supply.nominal_v"),
    b("nominal-1000v", "nominal_v = 3.3\nabs_max_v = 3.6\novp_v = 3.5",
      "nominal_v = 1000.0\nabs_max_v = 1100.0\novp_v = 1050.0", "supply.nominal_v"),
    b("abs-max-over-ceiling", "abs_max_v = 3.6", "abs_max_v = 48.0", "supply.abs_max_v"),
    b("current-inf", "current_limit_a = 0.2", "current_limit_a = inf", "supply.current_limit_a"),
    b("current-over-ceiling", "current_limit_a = 0.2", "current_limit_a = 20.0", "supply.current_limit_a"),
    b("ovp-below-nominal", "ovp_v = 3.5", "ovp_v = 3.0", "ovp_v"),
    b("negative-voltage", "nominal_v = 3.3", "nominal_v = -3.3", "supply.nominal_v"),
    # -- boards: names, flags ---------------------------------------------------------------------
    b("name-traversal", 'name = "sim-m4"', 'name = "../../etc/evil"', "name"),
    b("name-slash", 'name = "sim-m4"', 'name = "a/b"', "name"),
    b("name-dotdot", 'name = "sim-m4"', 'name = ".."', "name"),
    b("twin-traversal", 'has_dwt = true', 'has_dwt = true\ntwin_of = "../x"', "twin_of"),
    b("cflag-wrapper", "[sim]", '[build]\nextra_cflags = ["-wrapper", "/bin/sh,-c,id"]\n\n[sim]', "build.extra_cflags"),
    b("cflag-B", "[sim]", '[build]\nextra_cflags = ["-B/tmp/evil"]\n\n[sim]', "build.extra_cflags"),
    b("cflag-specs", "[sim]", '[build]\nextra_cflags = ["-specs=/tmp/x.specs"]\n\n[sim]', "build.extra_cflags"),
    b("cflag-response-file", "[sim]", '[build]\nextra_cflags = ["@/tmp/flags"]\n\n[sim]', "build.extra_cflags"),
    b("cflag-plugin", "[sim]", '[build]\nextra_cflags = ["-fplugin=/tmp/p.so"]\n\n[sim]', "build.extra_cflags"),
    b("cflag-linker-plugin", "[sim]", '[build]\nextra_cflags = ["-Wl,-plugin,/tmp/p.so"]\n\n[sim]', "build.extra_cflags"),
    # -- boards: sizes, addresses, clocks -----------------------------------------------------------
    b("clock-2^63", "clock_hz = 100_000_000", "clock_hz = 9223372036854775807", "clock_hz"),
    b("clock-zero", "clock_hz = 100_000_000", "clock_hz = 0", "clock_hz"),
    b("regions-overlap", "ram_base = 0x2000_0000", "ram_base = 0x0008_0000", "memory"),
    b("app-offset-past-flash", "app_offset = 0", "app_offset = 0x20_0000", "app_offset"),
    b("flash-huge", "flash_size = 1_048_576", "flash_size = 0x7FFF_FFFF_FFFF", "memory.flash_size"),
    b("ram-beyond-4g", "ram_base = 0x2000_0000", "ram_base = 0xFFFF_0000", "ram_base"),
    b("base-address-outside", 'method = "sim"', 'method = "sim"\nbase_address = 0x3000_0000', "base_address"),
    b("stack-too-big", "app_offset = 0", "app_offset = 0\nstack_size = 1_000_000", "stack_size"),
    b("baud-huge", "[supply]", "[uart]\nbaudrate = 9223372036854775807\n\n[supply]", "uart.baudrate"),
    b("cycle-model-mismatch", 'cycle_model = "cortex-m4"', 'cycle_model = "cortex-m0plus"', "cycle_model"),
    b("pin-injection", 'benchmark_pin = "LED0"', 'benchmark_pin = "LED0; rm -rf /"', "gpio.benchmark_pin"),
    b("bool-as-string", "has_dwt = true", 'has_dwt = "maybe"', "has_dwt"),
    # -- boards: not a board file at all -------------------------------------------------------------
    Case("boards", "binary", lambda: bytes(range(256)) * 4, "UTF-8"),
    Case("boards", "nul-bytes", lambda: BOARD.encode() + b"\x00\x00", "NUL"),
    Case("boards", "directory", lambda: None, "directory"),
    Case("boards", "not-toml", lambda: "name = \n[[[", "TOML"),
    Case("boards", "latin1", lambda: BOARD.replace("Generic", "G\xe9n\xe9ric").encode("latin-1"), "UTF-8"),
    # -- rigs -----------------------------------------------------------------------------------
    r("two-boards-one-channel", "analyzer_channel = 2", "analyzer_channel = 1", "analyzer_channel"),
    r("two-boards-one-trigger-pin", "trigger_pin = 2", "trigger_pin = 1", "trigger_pin"),
    r("visa-malformed", 'resource = "sim"', 'resource = "TCPIP0:192.0.2.10:5025:SOCKET"', "power_analyzer.resource"),
    r("visa-garbage", 'resource = "sim"', 'resource = "not a resource"', "power_analyzer.resource"),
    r("visa-bad-port", 'resource = "sim"', 'resource = "TCPIP0::192.0.2.10::99999::SOCKET"', "power_analyzer.resource"),
    r("visa-bad-host", 'resource = "sim"', 'resource = "TCPIP0::bad_host!::5025::SOCKET"', "power_analyzer.resource"),
    r("serial-garbage", 'serial = "sim"', 'serial = "not a port"', "duts.0.serial"),
    r("serial-bad-scheme", 'serial = "sim"', 'serial = "ftp://host:21"', "duts.0.serial"),
    r("serial-socket-no-port", 'serial = "sim"', 'serial = "socket://127.0.0.1"', "duts.0.serial"),
    r("serial-dev-traversal", 'serial = "sim"', 'serial = "/dev/../etc/passwd"', "duts.0.serial"),
    r("board-traversal", 'board = "sim-pico"', 'board = "../../boards/sim-pico"', "duts.1.board"),
    r("channel-out-of-range", "analyzer_channel = 4", "analyzer_channel = 9", "duts.3.analyzer_channel"),
    r("timeout-2^63", "settle_s = 0.0", "settle_s = 0.0\ntimeout_ms = 9223372036854775807", "power_analyzer.timeout_ms"),
    r("interval-inf", "sample_interval_s = 20.48e-6", "sample_interval_s = inf", "power_analyzer.sample_interval_s"),
    r("settle-huge", "settle_s = 0.0", "settle_s = 1e9", "power_analyzer.settle_s"),
    r("unknown-module", "trigger_pin = 1", 'trigger_pin = 1\nanalyzer_module = "N9999Z"', "duts.0.analyzer_module"),
    # N6731B: 5 V module; the Nano 33 BLE twin is supplied at 5.0 V with abs max 5.5 V
    r("supply-beyond-module", "trigger_pin = 1", 'trigger_pin = 1\nanalyzer_module = "N6731B"', "duts.0"),
    r("scope-bad-visa", 'resource = "TCPIP0::192.0.2.11::INSTR"', 'resource = "TCPIP0::"', "timing", base=REAL_RIG),
    r("probe-injection", 'probe = "sim:sim-pico"', 'probe = "sim:sim-pico; reboot"', "duts.1.probe"),
    Case("instruments", "rig-binary", lambda: b"\xff\xfe\x00\x01" * 64, "UTF-8"),
    Case("instruments", "rig-directory", lambda: None, "directory"),
    # -- campaigns ------------------------------------------------------------------------------
    c("name-traversal", 'name = "tiny"', 'name = "../../outside"', "name"),
    c("compression-id-traversal", 'id = "s50"', 'id = "../../../tmp/escape"', "compression.1.id"),
    c("model-id-traversal", 'id = "ll"', 'id = "../ll"', "models.0.id"),
    c("board-path", 'boards = ["sim-m4"]', 'boards = ["../boards/sim-m4"]', "boards"),
    c("repetitions-2^63", "repetitions = 4", "repetitions = 9223372036854775807", "repetitions"),
    c("timeout-2^63", "inference_timeout_s = 10", "inference_timeout_s = 9223372036854775807", "inference_timeout_s"),
    c("timeout-inf", "inference_timeout_s = 10", "inference_timeout_s = inf", "inference_timeout_s"),
    c("retries-huge", "max_retries = 1", "max_retries = 1000000", "max_retries"),
    c("warmup-negative", "warmup = 1", "warmup = -1", "warmup"),
    c("samples-huge", "accuracy_samples = 4", "accuracy_samples = 9223372036854775807", "accuracy_samples"),
    c("unknown-arch", 'arch = "lenet-light"', 'arch = "lenet-heavy"', "models.0.arch"),
    c("missing-onnx", 'arch = "lenet-light"', 'arch = "/nonexistent/model.onnx"', "models.0.arch"),
    c("epochs-huge", "epochs = 1", "epochs = 9223372036854775807", "models.0.epochs"),
    c("rate-nan", "rate = 0.5", "rate = nan", "compression.1.rate"),
    c("duplicate-board", 'boards = ["sim-m4"]', 'boards = ["sim-m4", "sim-m4"]', "boards"),
    c("unknown-board", 'boards = ["sim-m4"]', 'boards = ["sim-nonexistent"]', "boards.0"),
    c("resize-huge", "resize = 28", "resize = 100000", "dataset.resize"),
    c("unknown-rig", 'rig = "sim"', 'rig = "no-such-rig"', "rig"),
    Case("campaigns", "campaign-binary", lambda: b"\xff" + os.urandom(64), "UTF-8"),
    Case("campaigns", "campaign-directory", lambda: None, "directory"),
]


def test_suite_is_big_enough() -> None:
    kinds = {k: sum(1 for x in CASES if x.kind == k) for k in ("boards", "instruments", "campaigns")}
    assert len(CASES) >= 40 and min(kinds.values()) >= 10, kinds


@pytest.mark.parametrize("case", CASES, ids=lambda x: f"{x.kind}/{x.name}")
def test_bad_input_refused_with_file_and_field(case: Case, tmp_path: Path) -> None:
    path = case.write(tmp_path)
    with pytest.raises(ConfigError) as ei:
        check_file(path)
    msg = str(ei.value)
    assert str(path) in msg
    assert case.field in msg, msg


def test_cli_reports_every_bad_file_without_traceback(tmp_path: Path) -> None:
    paths = [str(case.write(tmp_path)) for case in CASES]
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "validate", *paths],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "400"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert out.count("FAIL ") == len(CASES), out
    assert "ok   " not in out


def test_unplugged_serial_port_warns_at_validate_and_fails_in_doctor(tmp_path: Path) -> None:
    rig = tmp_path / "instruments" / "unplugged.toml"
    rig.parent.mkdir()
    rig.write_text(sub(REAL_RIG, 'serial = "/dev/ttyACM0"', 'serial = "/dev/ttyACM-unplugged-42"'))
    _summary, warnings = check_file(rig)
    assert warnings and "/dev/ttyACM-unplugged-42" in warnings[0] and "duts.0.serial" in warnings[0]
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "validate", str(rig)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "400"})
    assert proc.returncode == 0 and "warn" in proc.stdout and "unplugged" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ["two-boards-one-channel", "supply-beyond-module", "visa-malformed"])
def test_rig_doctor_rejects_the_config_before_touching_the_bench(name: str, tmp_path: Path) -> None:
    case = next(x for x in CASES if x.kind == "instruments" and x.name == name)
    path = case.write(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "rig", "doctor", str(path)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "400"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out and str(path) in out and case.field in out
