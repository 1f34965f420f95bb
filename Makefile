# The two commands that do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
# Test modules spread over two processes, a module's tests in one (they share its fixtures);
# `make test PYTEST_PARALLEL=` runs them in one.
PYTEST_PARALLEL ?= -n 2 --dist loadfile
VENV   ?= .venv
BIN    := $(VENV)/bin
HASH   := $(shell cat pyproject.toml | sha256sum | cut -c1-12)
STAMP  := $(VENV)/.installed-$(HASH)
# The core only (`make demo`): the local lifecycle needs no cloud SDK, torch or Pulumi.
CORE_STAMP := $(VENV)/.installed-core-$(HASH)
NODE_STAMP := node_modules/.installed-$(shell cat package-lock.json | sha256sum | cut -c1-12)

# The CDK (jsii on Node) offline and quiet, its caches in ignored folders.
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_HOME := $(CURDIR)/.cache/cdk
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(CURDIR)/.cache/jsii

.PHONY: install install-core demo test test-fast lint typecheck synth bench bench-drift bench-serving bench-scaling \
        bench-synth bench-faults bench-values clean example-csv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# Nothing to install after `make install` (dev holds the core); `make install` after this
# adds the rest.
$(CORE_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -f $(STAMP) || $(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@rm -f $(VENV)/.installed-core-* && touch $(CORE_STAMP)

install-core: $(CORE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@rm -f node_modules/.installed-* && touch $(NODE_STAMP)

## synth: the pinned cdk CLI synthesizes every AWS environment offline; cfn-lint checks them
synth: install $(NODE_STAMP)
	npx cdk synth --no-notices --quiet
	$(BIN)/cfn-lint --non-zero-exit-code error cdk.out/assembly-*/*.template.json

## demo: install the core only (`pip install -e .`), then run the whole local lifecycle on
## the example churn project
demo: install-core
	$(BIN)/mlops-kit validate --config mlops.yaml
	$(BIN)/mlops-kit run --config mlops.yaml
	$(BIN)/mlops-kit query --config mlops.yaml \
	  "SELECT contract, count(*) AS customers, round(avg(churned), 3) AS churn_rate FROM curated_customers GROUP BY 1 ORDER BY 1"
	$(BIN)/mlops-kit registry list --config mlops.yaml

## test: install, then lint (ruff, import contracts, mypy) and run the tests
test: install lint $(NODE_STAMP)
	$(BIN)/pytest -q $(PYTEST_PARALLEL)

## test-fast: the inner loop: the tests without the slow ones (whole pipelines, the cdk CLI)
test-fast: install $(NODE_STAMP)
	$(BIN)/pytest -q $(PYTEST_PARALLEL) -m "not slow"

lint: install
	$(BIN)/ruff check src tests bench examples cdk pulumi
	PYTHONPATH=pulumi:cdk $(BIN)/lint-imports --no-cache
	$(BIN)/mypy

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/lifecycle.py

## bench-drift: drift over 1M rows x 50 features, against Evidently (its venv is built once)
bench-drift: install
	$(BIN)/python bench/drift.py

## bench-serving: requests/s, p50/p99 of `mlops-kit serve` and MLServer (its venv is built once)
bench-serving: install
	$(BIN)/python bench/serving.py

## bench-scaling: the scaling planner on the built-in week, beside target tracking, fixed, oracle
bench-scaling: install
	$(BIN)/python bench/scaling.py

## bench-faults: fault drills (kills, corrupt state, full disk, hostile clients): what was lost
bench-faults: install
	$(BIN)/python bench/faults.py

## example-csv: write scikit-learn's breast-cancer data set as a CSV for examples/breast_cancer
example-csv: install
	$(BIN)/python examples/breast_cancer/make_csv.py

## bench-values: rows/s of the value rules on validate and batch, against plain pandas
bench-values: install
	$(BIN)/python bench/values.py

## bench-synth: synth time for 3 environments x 1, 10 and 50 models
bench-synth: install
	$(BIN)/python bench/synth.py

clean:
	rm -rf .mlops examples/*/.mlops bench/results cdk.out
