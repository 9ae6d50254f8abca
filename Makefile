# Two commands do all the setup on a fresh machine:
#   make demo   venv + install + pull the demo pack and the embedder pack + `ladder demo`: three
#               decisions, report in demo-report/
#   make test   venv + install + pull the test pack and the embedder pack + lint, types and the
#               whole test suite
# Both are idempotent: the install re-runs only when pyproject.toml changes, and pulling a
# pack that is already installed does nothing.
#   make engines  the optional llama.cpp engine (GGUF deploy formats, `gguf:<file>` models):
#               llama-cpp-python built from its pinned sdist for this CPU, in about 4 minutes on
#               2 cores, once (the wheel is kept in $LADDER_HOME/cache/engines/<flags>). Never with
#               -march=native, whose build segfaults on quantized models on AVX-512+AMX CPUs (AMX,
#               by elimination); the x86 features the CPU has are named one by one (docs/gguf.md). Also
#               leaves the sdist in $LADDER_HOME/cache/wheels, where the GGUF converter comes from.
#               `make test` runs it first, so the GGUF tests and the crash guard run in CI.

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
test: $(STAMP) pack-$(TEST_PACK) pack-$(EMBED_PACK) lint browser-deps engines
	$(PY) -m pytest -q $(PYTEST_ARGS)
	$(PY) -m tests.cpu_capabilities -q -m numerics

# llama.cpp, built for this CPU's x86 features (ggml's CMake options, never GGML_NATIVE: see the
# header). A build is keyed by its flags, so another CPU or another flag set builds anew.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CPP_SDIST := llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz
LLAMA_CPP_SHA256 := 832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
ENGINE_CACHE := $(or $(LADDER_HOME),$(HOME)/.ladder)/cache
ENGINE_SDIST_DIR := $(ENGINE_CACHE)/wheels
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has = $(and $(foreach f,$(1),$(filter $(f),$(CPU_FLAGS))),$(2))
LLAMA_CPP_CMAKE ?= -DGGML_NATIVE=OFF \
  $(call has,avx avx2 fma f16c,-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON) \
  $(if $(call has,avx512f avx512bw avx512dq avx512vl avx512cd,x),-DGGML_AVX512=ON \
    $(call has,avx512vbmi,-DGGML_AVX512_VBMI=ON) $(call has,avx512_vnni,-DGGML_AVX512_VNNI=ON) \
    $(call has,avx512_bf16,-DGGML_AVX512_BF16=ON),-DGGML_AVX512=OFF)

.PHONY: engines
engines: $(STAMP)
	@flags="$(strip $(LLAMA_CPP_CMAKE))"; key=$$(echo "$(LLAMA_CPP_VERSION) $$flags" | sha256sum | cut -c1-12); \
	wheels=$(ENGINE_CACHE)/engines/$$key; sdist=$(ENGINE_SDIST_DIR)/$(LLAMA_CPP_SDIST); \
	if [ -f $(VENV)/.engines-$$key ] && $(PY) -c "import llama_cpp" 2>/dev/null; then exit 0; fi; \
	set -e; mkdir -p $(ENGINE_SDIST_DIR) $$wheels; \
	[ -f $$sdist ] || $(PIP) download --quiet --no-deps --no-binary :all: --dest $(ENGINE_SDIST_DIR) \
	  "llama-cpp-python==$(LLAMA_CPP_VERSION)"; \
	echo "$(LLAMA_CPP_SHA256)  $$sdist" | sha256sum --check --quiet; \
	if ! ls $$wheels/*.whl >/dev/null 2>&1; then \
	  echo "building llama-cpp-python $(LLAMA_CPP_VERSION) with $$flags (a few minutes, once)"; \
	  CMAKE_ARGS="$$flags" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	    $(PIP) wheel --quiet --no-deps --no-cache-dir --no-binary :all: --wheel-dir $$wheels $$sdist; \
	fi; \
	$(PIP) install --quiet --no-deps --force-reinstall $$wheels/*.whl; \
	$(PIP) install --quiet -e ".[dev,deploy]" -c constraints.txt; \
	rm -f $(VENV)/.engines-*; touch $(VENV)/.engines-$$key

demo: $(STAMP) pack-$(DEMO_PACK) pack-$(EMBED_PACK)
	$(LADDER) demo --model $(DEMO_PACK) --out demo-report

bench: $(STAMP) pack-$(DEMO_PACK)
	$(PY) benchmarks/generation.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
