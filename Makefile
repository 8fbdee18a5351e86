# feedloop: the targets people guess. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
EVAL_DIR ?= ../shared/eval
FEEDLOOP := target/release/feedloop

.PHONY: help demo test check bench eval parity-corpus build deploy local-up local-run local-down venv clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

demo: ## run the embedded demo (no AWS): NPS, drivers, segments, at-risk customers
	$(CARGO) run --quiet --release -p feedloop-cli -- demo

test: ## the whole test suite (installs what it needs)
	$(CARGO) test --workspace --locked

check: ## formatting and lints, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

$(PY): infra/requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-dev.txt
	@touch $(PY)

venv: $(PY) ## install the Python tools (vaderSentiment for bench/parity) into ./.venv

bench: $(PY) ## throughput of both modes vs Python vaderSentiment on the same corpus
	FEEDLOOP_PYTHON=$(abspath $(PY)) $(CARGO) bench --locked -p feedloop-core --bench throughput

eval: ## quality on ../shared/eval (reference vs feedloop, train and test)
	$(CARGO) build --quiet --release --locked -p feedloop-cli
	EVAL_DIR=$(EVAL_DIR) FEEDLOOP=$(FEEDLOOP) bench/eval.sh

parity-corpus: $(PY) ## regenerate the VADER parity corpus from Python vaderSentiment 3.3.2
	$(PY) crates/core/tests/parity/generate.py > crates/core/tests/parity/vader_3.3.2.jsonl

build: ## release build of the workspace
	$(CARGO) build --release --locked --workspace

deploy: ## see README: sam build && sam deploy --guided
	@echo "The serverless stack lands with the ingest issue (#3); see README 'Deploy'." >&2; exit 1

local-up local-run local-down: ## local AWS (moto): lands with the ingest issue (#3)
	@echo "make $@: the local AWS stack lands with the ingest issue (#3)." >&2; exit 1

clean: ## remove build output and the venv
	$(CARGO) clean
	rm -rf $(VENV)
