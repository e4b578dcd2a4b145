# Set-up and everyday commands. `make demo` and `make test` work on a fresh clone: they create
# .venv and install trustlab with its pinned torch (constraints.txt) first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install bench-install demo test test-fast lint typecheck unit unit-fast clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The anchor libraries the benchmarks compare against (see benchmarks/README.md).
bench-install: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python -m pip install --quiet --no-deps "torchattacks==3.5.1" "pytorch-ood==0.2.1" "torchcp==1.0.2"

demo: $(STAMP)
	$(BIN)/trustlab demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# The fast tier: every test not marked slow (small models, small data, fixed seeds).
unit-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

# Everything CI runs.
test: lint typecheck unit

# The everyday loop: lint and the fast tier.
test-fast: lint unit-fast

clean:
	rm -rf $(VENV) trustlab-data .pytest_cache .mypy_cache .ruff_cache
