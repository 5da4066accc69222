# Two entry points on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= $(firstword $(wildcard crossroute.yaml))

.PHONY: run test check e2e lint typecheck clean

$(BIN)/crossroute: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(BIN)/crossroute
	$(BIN)/crossroute serve $(if $(CONFIG),--config $(CONFIG))

lint: $(BIN)/crossroute
	$(BIN)/ruff check crossroute tests

typecheck: $(BIN)/crossroute
	$(BIN)/mypy crossroute

# Everything: lint, types, the SDK-driven suite, then the agent CLI grid.
test: check e2e

# The fast part: lint, types, unit and SDK-driven tests (no agent CLIs).
check: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

# Real agent CLIs (installed on first use into .e2e-cache/) through `crossroute launch`.
e2e: $(BIN)/crossroute
	scripts/e2e.sh

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
