# wallet-mcp: `make dev` runs the whole stack locally, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Any CPython >= 3.11 on PATH (a pyenv shim that cannot run is skipped).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	if $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then echo $$p; break; fi; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# SAM CLI and cfn-lint pin their own boto3, so they live in a tool venv of their own.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
SAM := SAM_CLI_TELEMETRY=0 $(TOOLS)/bin/sam
# `sam build` needs the Lambda runtime's Python (python3.13) on PATH.
LAMBDA_PY_DIR ?= $(shell for p in python3.13 $$(ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | sort -V | tail -1); do \
	if $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then dirname $$(command -v $$p); break; fi; done)

.PHONY: help dev test test-fast bench conformance lint typecheck unit template-check sam-env clean

help:
	@echo "make dev    - run the whole stack locally at http://localhost:$${PORT:-3000} (Ctrl-C stops it)"
	@echo "make test   - lint, type-check, unit + handler + flow tests, template checks and sam build"
	@echo "make test-fast - the unit tests only, for the edit loop"
	@echo "make bench  - cold start, warm latency and AWS calls per operation"
	@echo "make conformance - the official MCP conformance suite (server and authorization modes) against a local stack"

$(STAMP): pyproject.toml src/requirements.txt
	@test -n "$(PYTHON)" || { echo "error: no CPython >= 3.11 found on PATH" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

$(TOOLS_STAMP): tools-requirements.txt
	@test -n "$(PYTHON)" || { echo "error: no CPython >= 3.11 found on PATH" >&2; exit 1; }
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r tools-requirements.txt
	@touch $@

dev: $(STAMP)
	@exec $(PY) -m devstack dev

sam-env: $(STAMP)
	@$(PY) -m devstack sam-env

lint: $(STAMP)
	$(VENV)/bin/ruff check src dev functions tests bench infra
	$(VENV)/bin/ruff format --check src dev functions tests bench infra
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)
	$(VENV)/bin/mypy
	@# each function is a top-level `app` module of its own, so each is checked on its own
	@for f in functions/*/app.py; do $(VENV)/bin/mypy --strict $$f || exit 1; done

# extra pytest arguments, e.g. `make unit PYTEST_ARGS="-k access_ends"` (`-n 0` runs in one process)
PYTEST_ARGS ?=
# one worker per core, each taking whole modules (a module's stack and emulator stay in one worker),
# the longest modules first (tests/support/scheduling.py)
PYTEST_WORKERS ?= -n auto --dist loadfile --no-loadscope-reorder

unit: $(STAMP)
	@# a headless Chromium and Node.js with npm, set up when missing (dev/devstack/toolchain.py)
	@set -e; eval "$$($(PY) -m devstack toolchain)"; \
	LAMBDA_PYTHON="$(if $(LAMBDA_PY_DIR),$(LAMBDA_PY_DIR)/python3.13)" $(PY) -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

# the pure unit tests, for the edit loop (the layer build, ~20 s, runs in `make test`)
test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/unit --ignore tests/unit/test_layer_build.py

template-check: $(TOOLS_STAMP)
	$(SAM) validate --lint --template infra/template.yaml --region us-east-1
	$(TOOLS)/bin/cfn-lint infra/template.yaml
	$(TOOLS)/bin/python infra/check_sam_routes.py infra/template.yaml
	@test -n "$(LAMBDA_PY_DIR)" || { echo "error: sam build needs python3.13 (the Lambda runtime) on PATH" >&2; exit 1; }
	PATH="$(LAMBDA_PY_DIR):$$PATH" $(SAM) build --template infra/template.yaml --build-dir .aws-sam/build --parallel

# Both venvs are built side by side; lint runs first (seconds, and the most common failure); the
# type and template checks then run beside the tests, whose workers leave a core idle now and then
# (a module waiting on a subprocess, a browser, a token's lifetime): ~40 s less on a fresh clone,
# where the template checks also wait for the SAM CLI venv. Their output follows the tests'.
test:
	@start=$$(date +%s); checks_log=$$(mktemp); \
	finish() { echo "make test: $$1 $$(( $$(date +%s) - start )) s wall" >&2; rm -f "$$checks_log"; }; \
	if ! $(MAKE) --no-print-directory -j2 $(STAMP) $(TOOLS_STAMP) || ! $(MAKE) --no-print-directory lint; then \
		finish "FAILED after"; exit 1; \
	fi; \
	$(MAKE) --no-print-directory typecheck template-check >"$$checks_log" 2>&1 & checks=$$!; \
	$(MAKE) --no-print-directory unit; tests=$$?; \
	wait $$checks; checked=$$?; \
	echo "--- type and template checks ($$([ $$checked = 0 ] && echo passed || echo FAILED)):"; \
	cat "$$checks_log"; \
	if [ $$tests = 0 ] && [ $$checked = 0 ]; then \
		echo "make test: lint, types, tests and template checks passed in $$(( $$(date +%s) - start )) s wall"; \
		rm -f "$$checks_log"; \
	else \
		finish "FAILED after"; exit 1; \
	fi

bench: $(STAMP)
	@test -n "$(LAMBDA_PY_DIR)" || { echo "error: make bench needs python3.13 (the Lambda runtime) on PATH" >&2; exit 1; }
	@LAMBDA_PYTHON="$(LAMBDA_PY_DIR)/python3.13" $(PY) bench/run.py

# `@modelcontextprotocol/conformance` (pinned in dev/conformance) against a stack of its own, on a
# free port unless PORT is set; CONFORMANCE_ARGS=--all also runs the scenarios that are not scored
CONFORMANCE_ARGS ?=
conformance: $(STAMP)
	@$(PY) -m devstack.conformance $(CONFORMANCE_ARGS)

clean:
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
