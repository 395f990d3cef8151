# The two set-up commands: `make demo` and `make test`. Both create .venv when absent; the demo
# installs oplearn alone, the tests add the test extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test install clean bench docs lint

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

# The documentation site, in strict mode (a warning, a broken reference or a failing gallery example
# fails the build), from scratch except the gallery's executed examples (re-run when they change).
docs: $(TEST_STAMP)
	rm -rf site build/doctrees docs/sg_execution_times.rst docs/gallery/sg_execution_times.rst
	OMP_NUM_THREADS=1 $(BIN)/sphinx-build -W --keep-going -n -q -b html -d build/doctrees docs site
	@echo "site/index.html"

# ruff's checks and formatting (configured in pyproject.toml) over the code, tests, benchmarks, docs and examples.
lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks docs examples
	$(BIN)/ruff format --check src tests benchmarks docs examples

demo: $(STAMP)
	$(BIN)/oplearn demo --out runs/demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(TEST_STAMP)
	$(BIN)/python -m benchmarks run --quick

clean:
	rm -rf runs build site docs/api docs/gallery docs/sg_execution_times.rst *.egg-info src/*.egg-info
