# `make test` and `make demo` work on a fresh machine: each creates .venv and installs what it needs.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= test,web,ray
DEMO_DIR ?= demo-out

.PHONY: test demo venv bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"

test: venv
	$(BIN)/python -m pytest -q

demo: venv
	$(BIN)/python scripts/demo.py --out $(DEMO_DIR)

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .hypothesis
