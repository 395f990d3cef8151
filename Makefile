# The two set-up commands: `make demo` and `make test`. Both create .venv when absent; the demo
# installs oplearn alone, the tests add the test extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test install clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(TEST_STAMP)

install: $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/oplearn demo --out runs/demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(TEST_STAMP)
	$(BIN)/python -m benchmarks run --quick

clean:
	rm -rf runs build *.egg-info src/*.egg-info
