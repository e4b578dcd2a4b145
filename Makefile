# Set-up and everyday commands. `make demo` and `make test` work on a fresh clone: they create
# .venv and install trustlab with its pinned torch (constraints.txt) first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install bench-install demo test lint typecheck unit clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The anchor libraries the benchmarks compare against (see benchmarks/README.md).
bench-install: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python -m pip install --quiet --no-deps "torchattacks==3.5.1"

demo: $(STAMP)
	$(BIN)/trustlab demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) trustlab-data .pytest_cache .mypy_cache .ruff_cache
