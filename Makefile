# Quick start: `make demo` (set up, ingest the demo district, serve on :8000) and `make test`.
# Installs come from the hashed locks in requirements/ (`make lock` regenerates them).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The platform the locks are for: CPython 3.11 on Linux x86_64 (this machine, CI's, a server's).
LOCK := $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-unknown-linux-gnu --custom-compile-command 'make lock' $(ARGS)
PIP_LOCKED := $(BIN)/pip install --quiet --require-hashes

.PHONY: install system demo demo-data ingest serve test lint audit lock bench docs clean cluster

# pip and setuptools come from the lock too, so the project is built without build isolation.
$(BIN)/hub: pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_LOCKED) -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(BIN)/hub

# Debian packages the tests need (requirements/debian.txt), installed when missing.
system:
	.ci/system-packages

demo-data: install
	$(BIN)/python pipelines/generate_demo_data.py

ingest: demo-data
	$(BIN)/hub ingest --all
	$(BIN)/hub catalog load
	$(BIN)/hub catalog import catalog/inventory/dateninventur.csv --apply

# The server and the worker (scheduled runs, jobs) together; Ctrl-C stops both.
demo: ingest
	$(BIN)/python pipelines/demo_accounts.py --url http://$(HOST):$(PORT)
	@trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(BIN)/hub worker & worker=$$!; \
	$(BIN)/hub serve --host $(HOST) --port $(PORT)

# The reference deployment on one machine (README, "Operations: several replicas"): PostgreSQL,
# an S3 endpoint (moto), three `hub serve` replicas, a worker and haproxy on $(PORT), the demo
# district ingested into them; in the foreground, Ctrl-C stops everything.
cluster: system demo-data
	$(BIN)/python -m deploy.cluster --port $(PORT)

lint: install
	$(BIN)/ruff check hub tests bench pipelines soak .ci deploy

# Known vulnerabilities in the locked requirements (accepted ones: requirements/audit-ignore.txt).
audit: install
	$(BIN)/python .ci/audit.py

# The suite runs in TEST_PROCESSES processes (pytest-xdist), each taking whole files: a file's
# module fixtures are made once, session fixtures (the demo district, PostgreSQL, the OGC site)
# once per process that needs them; servers take ports from a block of their own per process
# (bench/_serve.py `free_port`). Two by default (about 24 instead of 40 minutes on a quiet
# 2-core machine, bench/RESULTS.md "Test suite wall time"); TEST_PROCESSES=0 for one.
TEST_PROCESSES ?= 2
test: system lint audit
	$(BIN)/python -m pytest -q -n $(TEST_PROCESSES) --dist loadfile

# dev.txt: runtime + test + demo + dev + postgres extras, what `make install` puts in .venv;
# runtime.txt: what a server needs; bench.txt: runtime + bench, added by `make bench`.
# Existing pins are kept; `make lock ARGS=--upgrade` (or `--upgrade-package NAME`) moves them.
lock: install
	$(LOCK) pyproject.toml requirements/build.in --extra test --extra demo --extra dev --extra postgres \
		-o requirements/dev.txt
	$(LOCK) pyproject.toml requirements/build.in -c requirements/dev.txt -o requirements/runtime.txt
	$(LOCK) pyproject.toml requirements/build.in --extra bench -c requirements/dev.txt \
		-o requirements/bench.txt

# API reference of the Python API (hub.open) from its docstrings, into docs/api/ (gitignored).
docs: install
	$(BIN)/pdoc -o docs/api hub.client

# requirements/debian-bench.txt: Debian packages only the benchmarks need (PostGIS for tipg).
bench: install system
	.ci/system-packages requirements/debian-bench.txt
	$(PIP_LOCKED) -r requirements/bench.txt
	$(BIN)/python -m bench $(ARGS)

# The long fault loop (soak/): SOAK_MINUTES (default 10) and SEED (replay a run) are read from
# the environment or the command line, e.g. `make soak SEED=4711 SOAK_MINUTES=3`; needs root for
# the full-disk rounds (a size-limited tmpfs).
.PHONY: soak
soak: install
	$(BIN)/python -m soak

clean:
	rm -rf $(VENV) store .pytest_cache pipelines/data/generated
