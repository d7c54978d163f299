# Two commands do all set-up: `make dev` runs the whole stack locally, `make test` runs every check.
# Everything is installed from this repo's own files into ignored folders (.venv, .tools, .cache).
SHELL := /bin/bash
# The Lambda runtime's Python (3.12) when the machine has it (pyenv's versions folder, or on PATH),
# else the newest python3 >= 3.11; CI requires 3.12 (.ci/run sets REQUIRE_PY312).
PY312 := $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12.*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
PYTHON ?= $(if $(PY312),$(PY312),python3)
VENV := .venv
PY := $(VENV)/bin/python
SAM := .tools/sam/bin/sam
CHROMIUM_VERSION := 153.0.0
CHROMIUM_DIR := .cache/chromium/$(CHROMIUM_VERSION)
PORT ?= 3000
export PYTHONPATH := $(CURDIR)/shared:$(CURDIR)
export CHROMIUM_CACHE_DIR := $(CURDIR)/.cache/chromium
export AWS_SAM_CLI_TELEMETRY := 0
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv tools chromium dev test test-fast test-slow lint format typecheck validate build bench api-key invoke invoke-schedule deploy clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

# ---------------------------------------------------------------- bootstrap
$(VENV)/.stamp: layers/deps/requirements.txt requirements-renderer.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.stamp ## create .venv with every Python dependency

$(SAM):
	$(PYTHON) -m venv .tools/sam
	.tools/sam/bin/pip install -q --disable-pip-version-check aws-sam-cli==1.170.0

tools: $(SAM) ## install the SAM CLI into .tools/sam (its own venv: its pins clash with moto's)

$(CHROMIUM_DIR)/chromium: scripts/prepare_chromium.py shared/invoicing/adapters/chromium.py | $(VENV)/.stamp
	$(PY) scripts/prepare_chromium.py --version $(CHROMIUM_VERSION) --dest $(CHROMIUM_DIR)

chromium: $(CHROMIUM_DIR)/chromium ## fetch @sparticuz/chromium from npm and unpack it into .cache/

# ---------------------------------------------------------------- run
dev: venv chromium ## run the whole stack on http://127.0.0.1:$(PORT) (no Docker, no AWS account); PERSIST=.local-data keeps data
	$(PY) -m local --port $(PORT) --parameter PaymentProvider=local $(if $(PERSIST),--persist $(PERSIST))

invoke: venv ## invoke one function: make invoke FN=ApiFunction EVENT=events/api_get_invoice.json
	$(PY) -m local.invoke $(FN) $(EVENT)

invoke-schedule: venv ## fire every schedule of the running `make dev` stack now
	$(PY) -m local.invoke_schedule --port $(PORT)

api-key: venv ## create an API key: make api-key NAME=billing-run [SCOPES=invoices:read,invoices:write] [TABLE=...] [ENDPOINT=...]
	$(PY) scripts/create_api_key.py --name "$(NAME)" $(if $(SCOPES),--scopes "$(SCOPES)") $(if $(TABLE),--table "$(TABLE)") $(if $(ENDPOINT),--endpoint-url "$(ENDPOINT)")

# ---------------------------------------------------------------- checks
lint: venv ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: venv ## mypy on shared/
	$(VENV)/bin/mypy shared/invoicing

validate: tools ## sam validate --lint (cfn-lint)
	$(SAM) validate --lint --region us-east-1

build: tools ## sam build (offline; makefile builds for layers)
	$(SAM) build --parallel

test: venv tools chromium lint typecheck validate build ## lint, types, sam validate, sam build, every test (the README's test command)
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: venv ## unit + integration only, no build
	$(PY) -m pytest -q tests/unit tests/integration $(PYTEST_ARGS)

test-slow: venv tools chromium ## long reliability runs: 3,000 fuzzed requests, schemathesis run on the local stack, the big state machine, 200 finalizations over HTTP (CI runs it)
	RUN_SLOW=1 $(PY) -m pytest -q -m slow $(PYTEST_ARGS)
	RUN_SLOW=1 $(PY) -m pytest -q tests/integration/test_concurrency.py tests/integration/test_fuzz_public.py tests/e2e/test_concurrency_e2e.py

$(VENV)/.bench-stamp: bench/requirements.txt | $(VENV)/.stamp
	$(PY) -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench: venv chromium $(VENV)/.bench-stamp ## benchmarks; QUICK=1 for a short run. Figures in bench/results/ and docs/performance.md
	QUICK=$(QUICK) $(PY) -m bench

# ---------------------------------------------------------------- deploy
deploy: build ## sam deploy --guided
	$(SAM) deploy --guided

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
