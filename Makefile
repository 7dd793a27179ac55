# Two set-up commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(BIN)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(BIN)/.installed-run

# The embedded default: a SQLite store under var/, the example catalog as the market source,
# a user from USER_LIST (default: admin), renders in process; then the service runs.
run: $(BIN)/.installed-run
	$(BIN)/market-ledger source add market.olares --type remote \
		--url file://$(CURDIR)/market_ledger/examples/catalog.json
	USER_LIST=$${USER_LIST:-admin} $(BIN)/market-ledger serve --http $${LEDGER_HTTP:-127.0.0.1:8080}

lint: $(BIN)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

bench: $(BIN)/.installed-test
	$(BIN)/python bench/core_bench.py
	$(BIN)/python bench/cycle_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
