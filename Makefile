# `make test` and `make demo` work on a fresh machine: each creates .venv and installs what it needs.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= test,web,ray,images,torch
# the CPU build of torch, installed before the extras: a plain torch requirement pulls a multi-GB CUDA build
TORCH_PIN ?= torch==2.13.0
DEMO_DIR ?= demo-out

LABEL_STUDIO_VENV ?= .venv-label-studio

.PHONY: test demo venv lint fashion-mnist chromium label-studio test-label-studio clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"

# ruff's formatter and linter over the whole tree (settings in pyproject.toml)
lint: venv
	$(BIN)/python -m pip install -q "ruff>=0.6"
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/ruff check src tests benchmarks scripts

test: venv chromium
	$(BIN)/python -m pytest -q

FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

demo: venv fashion-mnist
	$(BIN)/python scripts/demo.py --out $(DEMO_DIR)

# Debian's dataset-fashion-mnist package, when it is missing and apt is usable; the demo falls back to digits otherwise.
fashion-mnist:
	@if [ ! -f $(FASHION_MNIST) ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing the Debian package dataset-fashion-mnist with apt-get (about 30 MB) for the demo"; \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
		|| echo "could not install dataset-fashion-mnist; the demo will use scikit-learn's digits"; \
	fi

# Debian's chromium for the labeling page's browser tests, when it is missing and apt is usable;
# otherwise those tests skip and say why.
chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing the Debian package chromium with apt-get (a few hundred MB) for the browser tests"; \
		(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
		|| echo "could not install chromium; the browser tests will be skipped"; \
	fi

# Label Studio in a venv of its own (it pins many packages activemine's venv must not share), with the pins
# it needs to start: sentry-sdk 3 removed an option Label Studio 1.x passes (the server exits at start).
$(LABEL_STUDIO_VENV)/bin/label-studio:
	@echo "building Label Studio's own venv in $(LABEL_STUDIO_VENV) (pip install label-studio, a few minutes)"
	$(PYTHON) -m venv $(LABEL_STUDIO_VENV)
	$(LABEL_STUDIO_VENV)/bin/python -m pip install -q --upgrade pip
	$(LABEL_STUDIO_VENV)/bin/python -m pip install -q "label-studio>=1.18,<2" "sentry-sdk<3"

label-studio: $(LABEL_STUDIO_VENV)/bin/label-studio

# the round trip through a real Label Studio server; fails (never skips) when the server does not start
test-label-studio: venv label-studio
	ACTIVEMINE_LABEL_STUDIO=$(abspath $(LABEL_STUDIO_VENV))/bin/label-studio ACTIVEMINE_LABEL_STUDIO_REQUIRED=1 \
		$(BIN)/python -m pytest -q -m integration tests/test_label_studio_live.py

clean:
	rm -rf $(VENV) $(LABEL_STUDIO_VENV) $(DEMO_DIR) .pytest_cache .hypothesis
