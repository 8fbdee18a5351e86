# feedloop: the targets people guess. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
EVAL_DIR ?= ../shared/eval
FEEDLOOP := target/release/feedloop

# Tools from the venv (moto, sam, cargo-lambda and its zig) come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
SAM_ENV := AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1}

.PHONY: help demo test chromium check bench eval parity-corpus build sam-check deploy local-up local-run local-down venv clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

demo: ## run the embedded demo (no AWS): NPS, drivers, segments, at-risk customers
	$(CARGO) run --quiet --release -p feedloop-cli -- demo

test: $(PY) chromium ## the whole test suite (installs what it needs): unit, moto integration, browser, SAM checks
	$(CARGO) test --workspace --locked
	$(MAKE) --no-print-directory sam-check

sam-check: $(PY) ## sam validate, sam validate --lint, sam build (x86_64)
	$(SAM_ENV) sam validate
	$(SAM_ENV) sam validate --lint
	$(SAM_ENV) sam build --parameter-overrides Architecture=x86_64

check: ## formatting and lints, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

$(PY): infra/requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-dev.txt
	@touch $(PY)

# The dashboard browser test needs Debian's chromium (FEEDLOOP_CHROMIUM overrides).
chromium: ## install Debian's chromium for the dashboard browser test, if missing
	@command -v chromium >/dev/null || [ -n "$$FEEDLOOP_CHROMIUM" ] || { \
	  echo "installing chromium (apt)..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

venv: $(PY) ## install the Python tools (moto, SAM CLI, cargo-lambda, vaderSentiment) into ./.venv

bench: $(PY) ## throughput of both modes vs Python vaderSentiment on the same corpus
	FEEDLOOP_PYTHON=$(abspath $(PY)) $(CARGO) bench --locked -p feedloop-core --bench throughput

eval: ## quality on ../shared/eval (reference vs feedloop, train and test)
	$(CARGO) build --quiet --release --locked -p feedloop-cli
	EVAL_DIR=$(EVAL_DIR) FEEDLOOP=$(FEEDLOOP) bench/eval.sh

parity-corpus: $(PY) ## regenerate the VADER parity corpus from Python vaderSentiment 3.3.2
	$(PY) crates/core/tests/parity/generate.py > crates/core/tests/parity/vader_3.3.2.jsonl

build: ## release build of the workspace
	$(CARGO) build --release --locked --workspace

deploy: $(PY) ## build (arm64) and deploy to your AWS account, guided
	$(SAM_ENV) sam build
	sam deploy --guided

local-up: $(PY) ## start moto on 127.0.0.1:4566 and create the table and queues
	infra/local.sh up

local-run: $(PY) ## run the ingest function (cargo lambda watch) on the demo feedback via the local queue
	infra/local.sh run

local-down: ## stop what local-up / local-run started (by PID)
	infra/local.sh down

clean: ## remove build output and the venv
	$(CARGO) clean
	rm -rf $(VENV)
