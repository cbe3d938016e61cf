# The verbs a newcomer needs. `make test-fast` installs the Python part alone; `make demo` and
# `make test` install everything first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON_STAMP := $(VENV)/.installed-python
STAMP := $(VENV)/.installed
# The Python part: FFCV's build asks pkg-config for opencv4 and libturbojpeg.
BUILD_PACKAGES := pkg-config libturbojpeg0-dev libopencv-dev python3-venv
# The services of the integration tests: the SLURM/MariaDB/munge daemons back the launcher
# tests' single-node cluster; headless Chromium renders the MLflow UI in the browser test;
# iproute2's `ip` makes the namespaced nodes of the multi-node tests.
SERVICE_PACKAGES := slurmctld slurmd slurm-client slurmdbd munge mariadb-server chromium iproute2
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install install-python build-packages service-packages demo test test-fast lint format \
	bench gpu-check clean

# Installs those of the Debian packages $(1) that are missing; nothing when all are there.
define apt-install
	@missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

install: $(STAMP)

install-python: $(PYTHON_STAMP)

build-packages:
	$(call apt-install,$(BUILD_PACKAGES))

service-packages:
	$(call apt-install,$(SERVICE_PACKAGES))

$(PYTHON_STAMP): pyproject.toml | build-packages
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(STAMP): $(PYTHON_STAMP) | service-packages
	touch $@

demo: install
	$(BIN)/scale-lth lottery configs/digits_lenet.yaml

# Every test: those that start no process spread over every core (as `test-fast`), then the
# integration tests one at a time (they start clusters and services of their own).
test: install
	$(BIN)/python -m pytest -m "not integration" -n auto --dist worksteal
	$(BIN)/python -m pytest -m integration

# The tests that need no service, no Ray and no other process, spread over every core
# (pytest-xdist; an idle core takes tests queued for a busy one, so the minute-long ImageNet
# configs do not leave one core waiting at the end): minutes, not the better part of an hour.
test-fast: install-python
	$(BIN)/python -m pytest -m "not integration" -n auto --dist worksteal

bench: install
	$(BIN)/python bench/prune_and_step.py
	$(BIN)/python bench/loader.py
	$(BIN)/python bench/schedule.py
	$(BIN)/python bench/structured.py

# On a machine with a CUDA device: the GPU tests alone, then the benchmarks on the GPU.
gpu-check: install
	CUBLAS_WORKSPACE_CONFIG=:4096:8 $(BIN)/python -m pytest -m gpu tests
	$(BIN)/python bench/prune_and_step.py --device cuda --out bench/results-cuda.json
	$(BIN)/python bench/structured.py --device cuda --out bench/results-cuda.json

lint: install-python
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy scale_lth

format: install-python
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
