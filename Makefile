# The two commands that do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: install demo test lint typecheck bench bench-drift bench-serving clean example-csv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## demo: install, then run the whole local lifecycle on the example churn project
demo: install
	$(BIN)/mlops-kit validate --config mlops.yaml
	$(BIN)/mlops-kit run --config mlops.yaml
	$(BIN)/mlops-kit query --config mlops.yaml \
	  "SELECT contract, count(*) AS customers, round(avg(churned), 3) AS churn_rate FROM curated_customers GROUP BY 1 ORDER BY 1"
	$(BIN)/mlops-kit registry list --config mlops.yaml

## test: install, then lint (ruff, import contracts, mypy) and run the tests
test: install lint
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check src tests bench examples pulumi
	PYTHONPATH=pulumi $(BIN)/lint-imports --no-cache
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

## example-csv: write scikit-learn's breast-cancer data set as a CSV for examples/breast_cancer
example-csv: install
	$(BIN)/python examples/breast_cancer/make_csv.py

clean:
	rm -rf .mlops examples/*/.mlops bench/results
