# Two commands do all the setup on a fresh machine:
#   make demo   venv + install + pull the demo pack and the embedder pack + `ladder demo`: three
#               decisions, report in demo-report/
#   make test   venv + install + pull the test pack and the embedder pack + lint, types and the
#               whole test suite
# Both are idempotent: the install re-runs only when pyproject.toml changes, and pulling a
# pack that is already installed does nothing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
LADDER := $(VENV)/bin/ladder
# torch goes in first and pinned: a bare `torch` requirement pulls a multi-GB CUDA build.
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.ladder-installed
TEST_PACK := smollm2-135m
DEMO_PACK := qwen2.5-coder-0.5b
# The default embedding model of new knowledge bases (multilingual: Chinese and English).
EMBED_PACK := multilingual-e5-small
PACKAGES := assistant evaluation finetune ui
PYTEST_ARGS ?=

.PHONY: setup test demo lint check bench clean browser-deps

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# constraints.txt pins what the suite last passed with, so a fresh install is reproducible.
$(STAMP): pyproject.toml setup.py constraints.txt | $(PY)
	$(PIP) install --quiet "torch==$(TORCH_VERSION)"
	$(PIP) install --quiet -e ".[dev]" -c constraints.txt
	touch $@

setup: $(STAMP)

pack-%: $(STAMP)
	$(LADDER) models pull $*

# lint-imports checks the floors in .importlinter (ui > evaluation > finetune > assistant, only
# evaluation.decide imports finetune, no import circles): docs/architecture.md.
lint: $(STAMP)
	$(VENV)/bin/ruff check $(PACKAGES) tests benchmarks
	$(VENV)/bin/ruff format --check $(PACKAGES) tests benchmarks
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

# The browser tests (tests/ui/test_ui_browser.py) drive Debian's chromium through playwright,
# which cannot download browsers offline. Installed here when missing and we are root;
# otherwise those tests skip and say why.
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk) \
	      || echo "could not install chromium: the browser tests will be skipped"; \
	  else echo "chromium is missing and we are not root: the browser tests will be skipped"; fi; \
	fi

# The whole suite on this CPU's own kernels, then the numerics tests again under every older
# CPU capability it supports (AVX-512 -> avx2, default; AVX2 -> default): tests/cpu_capabilities.py.
test: $(STAMP) pack-$(TEST_PACK) pack-$(EMBED_PACK) lint browser-deps
	$(PY) -m pytest -q $(PYTEST_ARGS)
	$(PY) -m tests.cpu_capabilities -q -m numerics

demo: $(STAMP) pack-$(DEMO_PACK) pack-$(EMBED_PACK)
	$(LADDER) demo --model $(DEMO_PACK) --out demo-report

bench: $(STAMP) pack-$(DEMO_PACK)
	$(PY) benchmarks/generation.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
