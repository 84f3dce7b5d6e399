# One command each, on a fresh Debian/Ubuntu machine:
#   make demo   set everything up and run the example campaign on the simulated rig
#   make test   set everything up and run the test suite
.PHONY: setup demo test lint bench clean

CAMPAIGN ?= campaigns/lenet-mnist.toml
PYTEST_ARGS ?=
# Third-party trees beside the repo (CI lays shared/ there): the tests build the real boards
# against Mbed CE and run the CMSIS-NN backend tests instead of skipping them.
VENDOR := $(abspath ../shared/vendor)
ifneq ($(wildcard $(VENDOR)/CMSIS-NN/Include),)
export CMSIS_NN_PATH ?= $(VENDOR)/CMSIS-NN
endif
ifneq ($(wildcard $(VENDOR)/mbed-ce/tools/cmake),)
export MBED_OS_PATH ?= $(VENDOR)/mbed-ce
endif

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/harness run $(CAMPAIGN) --resume

test: setup
	.venv/bin/ruff check harness tests benchmarks
	.venv/bin/python -m mypy harness
	.venv/bin/python -m pytest -q --durations=15 $(PYTEST_ARGS)

lint:
	.venv/bin/ruff check harness tests benchmarks
	.venv/bin/python -m mypy harness

bench: setup
	for b in benchmarks/*.py; do .venv/bin/python $$b || exit 1; done

clean:
	rm -rf results/ .pytest_cache .ruff_cache .mypy_cache
