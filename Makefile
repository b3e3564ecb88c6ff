# dynamic_mtl: every target creates .venv and installs the package when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# `cpu` on CPU-only machines (default); `make TF_EXTRA=gpu ...` on CUDA machines.
TF_EXTRA ?= cpu
STAMP := $(VENV)/.installed-$(TF_EXTRA)

DATASET ?= synthfaces
DATA_ROOT ?=
PROFILE ?= quick
STRATEGY ?= default
RUN_ID ?=
RESUME ?=

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv install test test-fast lint reproduce-table2 reproduce-table3 reproduce-table4 \
        reproduce-figure2 prepare-synthfaces prepare-ckplus prepare-oulu figures bench pretrain \
        reproduce-ttc clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e ".[$(TF_EXTRA),dev]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: venv

test: venv
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -m "not slow"

lint: venv
	$(PY) -m compileall -q dynamic_mtl data_prep experiments tests benchmarks

# Data preparation (docs/data.md). OUT defaults to data/<dataset>; CK+/Oulu need DATA_ROOT.
prepare-synthfaces: venv
	$(PY) -m experiments.cli prepare synthfaces --out $(or $(OUT),data/synthfaces)

prepare-ckplus: venv
	@test -n "$(DATA_ROOT)" || { echo "usage: make prepare-ckplus DATA_ROOT=/path/to/CK+ [OUT=data/ckplus]"; exit 2; }
	$(PY) -m experiments.cli prepare ckplus --root "$(DATA_ROOT)" --out $(or $(OUT),data/ckplus)

prepare-oulu: venv
	@test -n "$(DATA_ROOT)" || { echo "usage: make prepare-oulu DATA_ROOT=/path/to/Oulu-CASIA [OUT=data/oulu]"; exit 2; }
	$(PY) -m experiments.cli prepare oulu --root "$(DATA_ROOT)" --out $(or $(OUT),data/oulu)

clean:
	rm -rf build dist *.egg-info .pytest_cache
