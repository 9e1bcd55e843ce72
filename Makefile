# Breakaway: every target does its own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(UV) run --frozen --no-sync
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: help setup browser test test-fast coverage lint format bench synth deploy destroy demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

setup: $(VENV)/.synced node_modules/.installed ## .venv with the locked dependencies; npm ci (CDK CLI, MQTT broker)

test: setup browser ## run the whole test suite (does all set-up first)
	$(RUN) pytest -n 2 --dist loadgroup

CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser: ## headless Chromium for the browser tests (Debian's package, installed if missing)
	@if [ ! -x $(CHROMIUM) ]; then \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium; \
	fi

test-fast: setup ## unit and integration tests only (no synth, no browser, no end-to-end)
	$(RUN) pytest -n 2 -m "not slow and not browser and not synth"

coverage: setup browser ## the whole suite with line coverage of the project's code (no threshold)
	$(RUN) pytest -n 2 --dist loadgroup --cov --cov-report=term:skip-covered --cov-report=html

lint: setup ## ruff, mypy and the import contracts (the same checks as .pre-commit-config.yaml)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy shared functions simulator local infra benchmarks app.py
	$(RUN) lint-imports

format: setup ## apply ruff fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

bench: setup ## run the benchmarks and write benchmarks/results.json
	$(RUN) python -m benchmarks

clean: ## remove build and run artefacts (keeps .venv)
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache .breakaway .import_linter_cache .coverage htmlcov

# --- The deployable application (CDK) ----------------------------------------------------------
ENV ?= dev
CDK := node_modules/.bin/cdk
CDK_FLAGS := -c env=$(ENV) --no-notices
# With no terminal (CI) the CDK CLI cannot ask, and stops: `deploy` when a change broadens
# security (IAM, security groups), `destroy` at "Are you sure?". APPROVE=1 answers yes to both.
APPROVE ?=
APPROVED := $(filter 1,$(APPROVE))

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

.PHONY: bootstrap cdk-cli
cdk-cli: node_modules/.installed ## install the pinned CDK CLI (npm ci)

synth: setup node_modules/.installed ## synthesize offline, no credentials needed (ENV=dev|prod)
	rm -rf cdk.out
	AWS_EC2_METADATA_DISABLED=true $(CDK) synth $(CDK_FLAGS) --quiet
	$(RUN) cfn-lint -i W3005 -- cdk.out/*.template.json

bootstrap: setup node_modules/.installed ## once per account and region: cdk bootstrap
	$(CDK) bootstrap $(CDK_FLAGS)

deploy: setup node_modules/.installed ## deploy both stacks (ENV=dev|prod; APPROVE=1 where no terminal can confirm, e.g. CI)
	$(CDK) deploy --all $(CDK_FLAGS) --require-approval $(if $(APPROVED),never,broadening)

destroy: setup node_modules/.installed ## remove the simulator's IoT things, then the stacks (prod's data stack is protected; APPROVE=1 in CI)
	$(RUN) breakaway deprovision --env $(ENV) --teardown
	$(CDK) destroy --all $(CDK_FLAGS)$(if $(APPROVED), --force)

TRANSPORT ?= mqtt
demo: setup ## race 1,000 riders for 5 min on the local stack (TRANSPORT=kinesis for PutRecords)
	$(RUN) breakaway demo --transport $(TRANSPORT)
