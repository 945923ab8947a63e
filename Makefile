# Everyday commands. The interpreter is the repository's .venv if there is
# one, else `python` (an activated virtualenv), else `python3`; override it
# with `make test PYTHON=/path/to/python`.
PYTHON ?= $(firstword $(wildcard .venv/bin/python) \
                      $(shell command -v python 2>/dev/null) \
                      $(shell command -v python3 2>/dev/null))

.PHONY: run demo test lint bench bench-quick

# The main job: embedded Redis, example policy, demo tokens, two gateways.
run:
	$(PYTHON) -m gateway.run

# The library alone: load the example policy, reserve a few orders, print utilization.
demo:
	$(PYTHON) -m ledger.run

test:
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check .

# Benchmarks (needs the bench extra: pip install -e '.[bench]'); see docs/performance.md.
bench:
	$(PYTHON) -m bench

bench-quick:
	$(PYTHON) -m bench --quick
