# The handful of commands the README names. Everything runs inside .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test demo lint bench clean redis-server chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## The Redis tests start their own redis-server (7.x): install Debian's package when it is
## missing and we may (root with apt-get); otherwise those tests skip and say why.
redis-server:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's redis-server package for the Redis tests"; \
	    apt-get install -y -qq redis-server >/dev/null 2>&1 || \
	      { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }; \
	  else \
	    echo "no redis-server on PATH: the Redis tests will be skipped (install redis-server 7.x)"; \
	  fi; }

## The report tests open the page in a real headless Chromium: install Debian's package when it
## is missing and we may (root with apt-get); otherwise those tests skip and say why.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium package for the report tests"; \
	    apt-get install -y -qq chromium >/dev/null 2>&1 || \
	      { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; \
	  else \
	    echo "no chromium on PATH: the report tests will be skipped (install chromium)"; \
	  fi; }

## Run every test (unit, property, end-to-end), then lint and type checks.
test: $(STAMP) redis-server chromium
	$(BIN)/pytest
	$(BIN)/ruff check dispatch simulations api tests benchmarks
	$(BIN)/mypy

## The main job: the demo city simulated with both policies (KPI table, files, report).
demo: $(STAMP)
	$(BIN)/dispatch simulate demo --policy optimizing greedy --out out/demo

lint: $(STAMP)
	$(BIN)/ruff check dispatch simulations api tests benchmarks
	$(BIN)/ruff format --check dispatch simulations api tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/tick_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
