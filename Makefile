# Quick start: `make demo` (set up, ingest the demo district, serve on :8000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo demo-data ingest serve test lint bench clean

$(BIN)/hub: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/hub

demo-data: install
	$(BIN)/python pipelines/generate_demo_data.py

ingest: demo-data
	$(BIN)/hub ingest --all
	$(BIN)/hub catalog load
	$(BIN)/hub catalog import catalog/inventory/dateninventur.csv --apply

demo: ingest
	$(BIN)/hub serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check hub tests bench pipelines

test: lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m bench $(ARGS)

# The long fault loop (soak/): SOAK_MINUTES (default 10) and SEED (replay a run) are read from
# the environment or the command line, e.g. `make soak SEED=4711 SOAK_MINUTES=3`; needs root for
# the full-disk rounds (a size-limited tmpfs).
.PHONY: soak
soak: install
	$(BIN)/python -m soak

clean:
	rm -rf $(VENV) store .pytest_cache pipelines/data/generated
