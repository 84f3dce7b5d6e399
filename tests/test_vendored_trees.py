"""CI must use the third-party trees laid beside the repo: with CI=true and ../shared/vendor
present, the Mbed CE builds and the CMSIS-NN backend tests have to run, not skip (the Makefile's
test target exports MBED_OS_PATH and CMSIS_NN_PATH when those folders exist)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

VENDOR = (Path(__file__).resolve().parents[1] / ".." / "shared" / "vendor").resolve()
IN_CI = os.environ.get("CI") == "true"


@pytest.mark.parametrize(("var", "folder", "marker"), [
    ("CMSIS_NN_PATH", "CMSIS-NN", "Include/arm_nnfunctions.h"),
    ("MBED_OS_PATH", "mbed-ce", "tools/cmake/app.cmake"),
])  # fmt: skip
def test_ci_points_the_tests_at_the_vendored_tree(var: str, folder: str, marker: str) -> None:
    if not (IN_CI and (VENDOR / folder / marker).is_file()):
        pytest.skip(f"only checked in CI with {VENDOR / folder} present")
    value = os.environ.get(var)
    assert value, f"CI=true and {VENDOR / folder} exists but {var} is unset: run the tests through `make test`"
    assert (Path(value) / marker).is_file(), f"{var}={value} has no {marker}"
