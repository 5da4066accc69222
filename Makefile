# Two entry points on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= $(firstword $(wildcard crossroute.yaml))

.PHONY: run test lint typecheck check clean

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

test: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
