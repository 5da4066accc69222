# Two entry points on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= $(firstword $(wildcard crossroute.yaml))

.PHONY: run test check e2e lint typecheck clean bench

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

# Benchmark beside LiteLLM, claude-code-router and 9router (bench/README.md). Rewrites docs/benchmarks.md
# and docs/benchmarks.png; BENCH_QUICK=1 for a few-minute run that writes to bench/out/ instead.
bench: $(BIN)/crossroute
	@command -v nginx >/dev/null && command -v wrk >/dev/null || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light wrk; }
	bench/peers/install.sh tools $(subst $(comma), ,$(BENCH_PEERS)) >/dev/null || true
	$$(bench/peers/install.sh tools)/tools/bin/python bench/run.py

comma := ,
BENCH_PEERS ?= litellm,ccr,9router
export BENCH_PEERS

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
