# Quick start: `make demo` trains on a reference task and writes a report; `make test` runs the tests.
# Each target sets up .venv first (scripts/setup.sh; a no-op when already done).
.PHONY: setup demo test test-fast bench
VENV := .venv/bin

setup:
	@bash scripts/setup.sh

demo: setup
	rm -rf runs/demo
	$(VENV)/toyformer train count_ones --out runs/demo
	$(VENV)/toyformer report runs/demo

test: setup
	$(VENV)/python -m pytest

test-fast: setup
	$(VENV)/python -m pytest -m "not slow"

bench: setup
	$(VENV)/python -m benchmarks all
