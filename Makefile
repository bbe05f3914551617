# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: .venv demo test lint bench clean

.venv: $(STAMP)

# Re-install when the dependency list changes; the stamp keeps `make test` fast otherwise.
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	bash tools/demo.sh

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# Ratios against a baseline measured in the same run (see bench/); not part of `make test`.
bench: $(STAMP)
	$(BIN)/python bench/send_pipeline.py
	$(BIN)/python bench/resolve.py --runs 3 --freeze
	$(BIN)/python bench/import_speed.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf var/demo .pytest_cache .ruff_cache
