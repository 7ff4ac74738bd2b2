# leadflow — `make up` starts everything, `make test` runs every tier against the real stack.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VAR := $(CURDIR)/var
PYTEST_FLAGS ?= -q -p no:cacheprovider

.PHONY: setup browser up down status demo lint test test-unit test-integration test-e2e bench chaos soak schemas clean

setup: $(VENV)/.installed $(VAR)/kafka/lib/.resolved $(VAR)/bin/ferretdb deploy/web/node_modules/.installed browser

$(VENV)/.installed: pyproject.toml requirements.lock
	@echo "== step: Python virtualenv ($(VENV)) and pinned dependencies"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[test]'
	@touch $@

$(VAR)/kafka/lib/.resolved: deploy/local/kafka/pom.xml
	@echo "== step: resolve the Apache Kafka jars from Maven Central"
	mvn -q -B -f deploy/local/kafka/pom.xml dependency:copy-dependencies \
	  -DincludeScope=runtime -DoutputDirectory=$(VAR)/kafka/lib
	@touch $@

$(VAR)/bin/ferretdb: deploy/local/ferretdb/go.mod deploy/local/ferretdb/go.sum deploy/local/ferretdb/main.go
	@echo "== step: go install FerretDB v1 (SQLite backend) into var/bin"
	cd deploy/local/ferretdb && GOBIN=$(VAR)/bin go install .

deploy/web/node_modules/.installed: deploy/web/package.json deploy/web/package-lock.json
	@echo "== step: front-end packages from npm (Apache ECharts for the ops dashboard)"
	npm ci --prefix deploy/web --no-audit --no-fund --silent
	@touch $@

# Debian's Chromium (with CJK fonts) for the browser tests of the inbox and ops pages, and promtool
# (Debian's prometheus) for the alert-rule tests (Playwright drives /usr/bin/chromium; it never
# downloads a browser of its own).
browser:
	@{ command -v chromium >/dev/null && [ -d /usr/share/fonts/opentype/noto ] && command -v promtool >/dev/null; } || { \
	  echo "== step: Debian's Chromium and CJK fonts for the browser tests, Prometheus's promtool for the alert rules"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends \
	    chromium fonts-noto-cjk prometheus; }

up: setup
	$(BIN)/leadflow stack up

down:
	@if [ -x $(BIN)/leadflow ]; then $(BIN)/leadflow stack down; else echo "nothing to stop (no .venv)"; fi

status:
	$(BIN)/leadflow stack status

demo:
	set -a; source var/leadflow.env; set +a; \
	$(BIN)/leadflow simulate --tenant demo --rate 20 --duration 30 --seed $$RANDOM --truth var/sim-truth.json

test: setup lint
	$(BIN)/pytest $(PYTEST_FLAGS) tests

lint: setup
	$(BIN)/ruff check leadflow services schemas bench tests

test-unit: setup
	$(BIN)/pytest $(PYTEST_FLAGS) tests/unit

test-integration: setup
	$(BIN)/pytest $(PYTEST_FLAGS) tests/integration

test-e2e: setup
	$(BIN)/pytest $(PYTEST_FLAGS) tests/e2e

# The crash test at full length: SIGKILLs every worker three times, the broker and the store once, during a
# stream with duplicated event ids; prints the counts and fails on any loss or duplicate (tests/chaos).
chaos: setup
	$(BIN)/python -m tests.chaos

# An hour at half the sustained rate through the running stack (`make up` first): memory of every
# process at start and end (growth <= 10%) and restarts (bench/soak.py).
soak: setup
	$(BIN)/python -m bench.soak

bench: setup
	$(BIN)/pip install -q -c requirements.lock -e '.[test,bench]'
	$(BIN)/python -m bench.ceiling
	$(BIN)/python -m bench.matching_quality
	$(BIN)/python -m bench.store_ops
	$(BIN)/python -m bench.store_floor
	$(BIN)/python -m bench.stateful_floor
	$(BIN)/python -m bench.stateful_floor --take
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.identity_scale
	$(BIN)/python -m bench.junk_detection
	$(BIN)/python -m bench.scoring_quality
	$(BIN)/python -m bench.scale_out  # a stack of its own (the crash test's ports)
	$(BIN)/python -m bench.ingest  # last: what it posts keeps the workers busy for minutes

schemas:
	$(BIN)/python -m schemas.export

clean: down
	rm -rf var/test var/log var/run
