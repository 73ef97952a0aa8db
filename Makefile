# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: run test test-all bench bench-phases bench-large bench-scale check-reference clean

run: $(STAMP)
	$(BIN)/lmm fit sample_data/sleepstudy.csv "Reaction ~ Days + (Days|Subject)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

bench: $(STAMP)
	$(BIN)/python bench/table.py

bench-phases: $(STAMP)
	$(BIN)/python bench/run.py

bench-large: $(STAMP)
	$(BIN)/python bench/run.py --large

bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py $(if $(CASES),--cases $(CASES))

check-reference: $(STAMP)
	$(BIN)/python ../shared/tools/check_reference.py --lmm $(BIN)/lmm --inference --profile --predict

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,plot,duckdb,spark]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
