# Two commands do all set-up on a fresh machine:
#   make sample   builds the sample clinic's handouts and brochure into out/
#   make test     runs the test suite
# Each creates the virtual environment in .venv/ and installs into it first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: sample test test-public lint bench clean golden

$(BIN)/brochure: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/brochure

sample: $(BIN)/brochure
	$(BIN)/brochure build --project . --out out

test: $(BIN)/brochure
	$(BIN)/python -m pytest -n auto -q

# The same suite with WeasyPrint's internals switched off (brochure/engine/private.py):
# what a WeasyPrint that brochure was not written for gets. Slower copies, the same PDFs.
test-public: $(BIN)/brochure
	BROCHURE_ENGINE_PRIVATE=off $(BIN)/python -m pytest -n auto -q

lint: $(BIN)/brochure
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Redraw the golden pictures of every page of the sample and its print-shop files (tests/test_golden.py) and of the desk's main screens
# after a change that is meant to alter the look; then look at them and commit.
golden: $(BIN)/brochure
	BROCHURE_UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q -n 0 tests/test_golden.py "tests/web/test_desk_browser.py::test_the_main_screens_look_as_they_did"

clean:
	rm -rf $(VENV) out

# The benchmark (not part of the tests): prints one table, measured in one run.
bench: $(BIN)/brochure
	$(BIN)/python bench/run.py
