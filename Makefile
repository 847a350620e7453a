# Two user commands: `make demo` and `make test` (both install what is missing first).
SHELL := bash
export PYTHONPATH := $(CURDIR)
export PYTHONUNBUFFERED := 1
export JUPYTER_PATH := $(CURDIR)/build/jupyter
PY_MAIN := .venv/bin/python
PY_PARLER := .venv-parler/bin/python
# Test folders per dependency stack; the core tests run on both stacks.
MAIN_TESTS := $(wildcard tests/core tests/data tests/vits tests/baselines tests/kokoro tests/bench tests/pocket tests/kaggle tests/suite tests/rehearsal/main tests/reliability/main)
PARLER_TESTS := $(wildcard tests/core tests/parler tests/distill tests/rehearsal/parler tests/reliability/parler)
PROFILE ?= kaggle-t4
PYTEST_ARGS ?=

.PHONY: setup demo test test-main test-parler lint lock clean platform-check rehearse

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY_MAIN) -m nbhelpers.suite run --profile smoke

test: setup
	@rc=0; \
	echo "== lint"; $(PY_MAIN) -m ruff check nbhelpers kaggle_kernels tests benchmarks || rc=1; \
	echo "== main stack: $(MAIN_TESTS)"; $(PY_MAIN) -m pytest $(PYTEST_ARGS) $(MAIN_TESTS) || rc=1; \
	echo "== parler stack: $(PARLER_TESTS)"; $(PY_PARLER) -m pytest $(PYTEST_ARGS) $(PARLER_TESTS) || rc=1; \
	exit $$rc

test-main: setup
	$(PY_MAIN) -m pytest $(PYTEST_ARGS) $(MAIN_TESTS)

test-parler: setup
	$(PY_PARLER) -m pytest $(PYTEST_ARGS) $(PARLER_TESTS)

lint: setup
	$(PY_MAIN) -m ruff check nbhelpers kaggle_kernels tests benchmarks

# Heavy checks outside CI: the smoke chain on replicas of today's Kaggle and Colab kernels (docs/platforms.md), and
# the dress rehearsal of a real profile against local stand-ins (docs/rehearsal.md).
platform-check: setup
	$(PY_MAIN) scripts/platform_check.py --platform all

rehearse: setup
	$(PY_MAIN) -m nbhelpers.rehearsal run --profile $(PROFILE)

# Regenerate the exact pins after editing requirements*.in (needs the uv that setup installs).
lock:
	uv=$$($(PY_MAIN) -c 'from nbhelpers.stacks import ensure_uv; print(ensure_uv())'); \
	for lock in requirements requirements-parler requirements-kernel; do \
	  $$uv pip compile -q --python-version 3.11 --no-header $$lock.in -o $$lock.txt || exit 1; done

clean:
	rm -rf workspace runs build .pytest_cache
