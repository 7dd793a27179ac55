# Two set-up commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# where `make run` serves the HTTP API (HOST:PORT); `LEDGER_HTTP=0.0.0.0:9000 make run`
LEDGER_HTTP ?= 127.0.0.1:8080

.PHONY: run test lint lint-standalone lint-dockerfile bench clean

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
# the user `admin` with the admin role (USER_LIST, if set, adds normal users), renders in
# process; then the service runs. Every step is idempotent: a second `make run` just serves.
run: $(BIN)/.installed-run
	$(BIN)/market-ledger source add market.olares --type remote \
		--url file://$(CURDIR)/market_ledger/examples/catalog.json
	$(BIN)/market-ledger user add admin --role admin
	$(BIN)/market-ledger serve --http $(LEDGER_HTTP)

lint: $(BIN)/.installed-test lint-standalone lint-dockerfile
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# A clone of the repository must stand on its own: no file may read anything beside the
# checkout (the `shared` folder beside it). The pattern is written as `[.][.]/shared` so that
# this rule does not name the folder itself; the Makefile is still left out of the search.
lint-standalone:
	@if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		echo "lint-standalone: not a git checkout, no tracked files to check"; exit 0; \
	fi; \
	found=$$(git grep -lE '[.][.]/shared|["'"'"']shared[/"'"'"']' -- . ':(exclude)Makefile'); \
	if [ -n "$$found" ]; then \
		echo "these files refer to the shared folder beside the checkout, which a clone of the repository does not have:"; \
		echo "$$found" | sed 's/^/  /'; \
		exit 1; \
	fi

lint-dockerfile: $(BIN)/.installed-test
	$(BIN)/hadolint --no-color Dockerfile

test: lint
	$(BIN)/pytest

# every bench with raw anchors, then one table of ratios (BENCH_ARGS="--quick", "--postgres URL")
bench: $(BIN)/.installed-test
	$(BIN)/python bench/ratios.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
