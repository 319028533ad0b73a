# The handful of commands the README names. Everything runs inside .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test demo lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Run every test (unit, property, end-to-end), then lint and type checks.
test: $(STAMP)
	$(BIN)/pytest
	$(BIN)/ruff check dispatch simulations api tests benchmarks
	$(BIN)/mypy

## The main job: a small simulated city dispatched end to end.
demo: $(STAMP)
	$(BIN)/dispatch demo

lint: $(STAMP)
	$(BIN)/ruff check dispatch simulations api tests benchmarks
	$(BIN)/ruff format --check dispatch simulations api tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/tick_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
