# Quick start: `make demo` trains on a reference task and writes a report; `make test` runs the tests.
# Each target sets up .venv first (scripts/setup.sh; a no-op when already done).
# `make docs` builds the documentation site (docs/, mkdocs.yml) into site/; `make docs-serve` serves it.
.PHONY: setup demo test test-fast bench docs docs-serve
VENV := .venv/bin

setup:
	@bash scripts/setup.sh

demo: setup
	rm -rf runs/demo
	$(VENV)/toyformer train count_ones --out runs/demo
	$(VENV)/toyformer report runs/demo

test: setup
	$(VENV)/python -m pytest -n auto --dist loadfile

test-fast: setup
	$(VENV)/python -m pytest -n auto --dist loadfile -m "not slow"

bench: setup
	$(VENV)/python -m benchmarks all

docs: setup
	$(VENV)/python -m mkdocs build --strict

docs-serve: setup
	$(VENV)/python -m mkdocs serve
