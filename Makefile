# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: .venv demo test lint bench clean i18n

# Operator language catalogs (issue 11): compiled here, at install, from the committed .po files
# (jobs/i18n.py reads a .po itself when its .mo is missing or older, e.g. after `pip install -e .`).
LOCALES := jobs/locale
MO      := $(patsubst %.po,%.mo,$(wildcard $(LOCALES)/*/LC_MESSAGES/swmail.po))
PYBABEL := PYTHONPATH=. $(BIN)/pybabel

.venv: $(STAMP) $(MO)

$(LOCALES)/%/LC_MESSAGES/swmail.mo: $(LOCALES)/%/LC_MESSAGES/swmail.po $(STAMP)
	$(BIN)/pybabel compile --domain swmail --directory $(LOCALES) --locale $* --statistics

# Extract every operator-facing string (_, N_, tr, click help) into the template, merge it into
# the ja and en catalogs, then compile. Translate new ja entries, run again; `make test` fails
# while one is missing (tests/i18n/test_catalogs.py).
i18n: $(STAMP)
	$(PYBABEL) extract --mapping-file babel.cfg --keywords N_ --keywords tr --no-location \
		--sort-output --project smileworks-mailer --version 0.1.0 --copyright-holder SmileWorks \
		--output-file $(LOCALES)/swmail.pot .
	$(BIN)/pybabel update --input-file $(LOCALES)/swmail.pot --output-dir $(LOCALES) \
		--domain swmail --no-fuzzy-matching --ignore-obsolete --width 100
	$(BIN)/pybabel compile --domain swmail --directory $(LOCALES) --statistics

# Re-install when the dependency list changes; the stamp keeps `make test` fast otherwise.
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP) $(MO)
	bash tools/demo.sh

test: $(STAMP) $(MO)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# Ratios against a baseline measured in the same run (see bench/); not part of `make test`.
bench: $(STAMP)
	$(BIN)/python bench/send_pipeline.py
	$(BIN)/python bench/send_latency.py
	$(BIN)/python bench/send_cpu_bound.py
	$(BIN)/python bench/resolve.py --runs 3 --freeze
	$(BIN)/python bench/import_speed.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf var/demo .pytest_cache .ruff_cache
