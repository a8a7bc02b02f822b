# FacePass developer commands. Quick start: `make run` (the real stack + API), `make test`.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install install-gpu test-tools run test test-slow lint format bench clean-state help

help:
	@echo "make run        start the embedded stack and the services (Ctrl-C stops everything)"
	@echo "make test       run the test suite (starts its own embedded servers)"
	@echo "make test-slow  run the slow fault and load tests"
	@echo "make lint       ruff (lint + format check) and mypy"
	@echo "make format     apply ruff formatting and safe fixes"
	@echo "make bench      every benchmark suite (~50-65 min on 2 cores), then docs/benchmarks.md"
	@echo "make install-gpu  onnxruntime's CUDA build (then: python -m bench.gpu_check)"

# The virtualenv is (re)built when the dependency pins change.
$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP)

# NVIDIA GPUs: onnxruntime's CUDA build in place of the CPU one (both are the `onnxruntime`
# module, so one replaces the other; insightface's requirement on `onnxruntime` then reads as
# unmet to `pip check`, harmlessly). FACE_BACKEND=auto then runs onnxruntime on CUDA.
install-gpu: install
	$(BIN)/python -m pip uninstall -y onnxruntime
	$(BIN)/python -m pip install --no-deps -c requirements/constraints.txt onnxruntime-gpu

# Debian tools some tests use (docker-compose, promtool, chromium, ab, wrk); see the script.
test-tools:
	@tests/install-tools.sh

run: install
	$(BIN)/facepass up

test: install test-tools
	$(BIN)/pytest

test-slow: install test-tools
	$(BIN)/pytest -m slow

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install test-tools
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev,bench]'
	$(BIN)/python -m bench all

clean-state:
	rm -rf .facepass
