# Everyday commands. The interpreter is the repository's .venv if there is
# one, else `python` (an activated virtualenv), else `python3`; override it
# with `make test PYTHON=/path/to/python`.
PYTHON ?= $(firstword $(wildcard .venv/bin/python) \
                      $(shell command -v python 2>/dev/null) \
                      $(shell command -v python3 2>/dev/null))

.PHONY: run test lint

run:
	$(PYTHON) -m ledger.run

test:
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check .
