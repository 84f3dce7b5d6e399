"""Rules for the whole suite.

* With ``CI=true`` a skipped test is a failure (a missing external tool the suite expects,
  arm-none-eabi-gcc, qemu-system-arm, sigrok-cli, cmake, or a vendored tree, must not turn into
  silent skips); only tests marked ``hardware`` (they need a real bench) may skip there.
* Tests marked ``hardware`` run only with ``HARNESS_HARDWARE=1``.
* The simulated boards' flash state lives in a folder of this session (``HARNESS_SIM_STATE``), so
  the suite never shares it with campaigns or other test runs on the same machine."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
EXTERNAL_TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm", "sigrok-cli", "cmake")


def pytest_report_header(config: pytest.Config) -> list[str]:
    missing = [t for t in EXTERNAL_TOOLS if shutil.which(t) is None]
    lines = [f"external tools missing: {', '.join(missing) or 'none'}"]
    if IN_CI:
        lines.append("CI=true: a skipped test fails unless it is marked 'hardware'")
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("HARNESS_HARDWARE") == "1":
        return
    skip = pytest.mark.skip(reason="needs a real bench rig (set HARNESS_HARDWARE=1 to run)")
    for item in items:
        if item.get_closest_marker("hardware") is not None:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("hardware") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which is not allowed (install what it needs): {reason}"


@pytest.fixture(scope="session", autouse=True)
def private_sim_state() -> Iterator[None]:
    if os.environ.get("HARNESS_SIM_STATE"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="harness-sim-state-") as d:
        os.environ["HARNESS_SIM_STATE"] = d
        try:
            yield
        finally:
            os.environ.pop("HARNESS_SIM_STATE", None)
