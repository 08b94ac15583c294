# Quick start: `make repro` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: repro test clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0 -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)   # the tests also need pytest and Ray (the cluster backend's tests)
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	touch $(TEST_STAMP)

repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pipeline.reporting.summary   # ends with the reproduction check

test: $(TEST_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -n auto --dist loadfile tests

clean-venv:
	rm -rf $(VENV)
