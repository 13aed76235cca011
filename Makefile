# Whistle: `make run` brings the system up, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON_VERSION := $(shell cat .python-version)
# pyenv's interpreter for .python-version when pyenv is there, else python3.13 on PATH.
PYTHON ?= $(shell (command -v pyenv >/dev/null && pyenv which python$(PYTHON_VERSION) 2>/dev/null) || command -v python$(PYTHON_VERSION))

.PHONY: install run test test-fast lint format bench bench-district bench-costs docs rabbitmq clean

install: $(BIN)/whistle

$(BIN)/whistle: pyproject.toml uv.lock
	@test -n "$(PYTHON)" || { echo "Python $(PYTHON_VERSION) not found (pyenv install $(PYTHON_VERSION))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.9"
	@$(BIN)/uv sync --locked --inexact --quiet
	@touch $(BIN)/whistle

# Development, said explicitly: production is the default everywhere else (fail closed).
run: install
	WHISTLE_ENV=development $(BIN)/whistle run

rabbitmq:
	@./.ci/ensure-rabbitmq

# Three test files at a time (pytest-xdist, a file's tests on one worker so its module's
# services start once): most of a test waits on processes, the broker and timers.
test: install rabbitmq
	$(BIN)/pytest -n 3 --dist loadfile

test-fast: install
	$(BIN)/pytest -m "unit or memory"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install rabbitmq
	WHISTLE_ENV=development $(BIN)/python -m bench
	WHISTLE_ENV=development $(BIN)/python -m bench.district

# A district (300 communities) at 10x against two replicas of every service (docs/scale.md).
bench-district: install rabbitmq
	WHISTLE_ENV=development $(BIN)/python -m bench.district

# CPU ms and MongoDB commands per event for each service (docs/scale.md quotes a run).
# Development, as `whistle run`: the services refuse the development token secret otherwise.
bench-costs: install rabbitmq
	WHISTLE_ENV=development $(BIN)/python -m bench.costs

docs: install
	$(BIN)/python -m services.cli.docs docs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
