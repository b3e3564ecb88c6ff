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
        reproduce-figure2 reproduce-figure7 reproduce-study prepare-synthfaces prepare-ckplus prepare-oulu figures bench pretrain eval-lfw \
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

# Verification pretraining (docs/pretraining.md): the embedded synthfaces identity set (generated once),
# single-task pretraining (resumable: reruns continue or just re-export), then eval-lfw on held-out pairs.
PRETRAIN_DATA ?= data/synthfaces_identities
PRETRAIN_OUT ?= checkpoints/pretrained/synthfaces_small_cnn
PRETRAIN_CKPT ?= checkpoints/pretrained/synthfaces_small_cnn.keras
PRETRAIN_ARGS ?= --backbone small_cnn --width 16 --image-size 48 --batch-size 64 --epochs 8 --lr-decay-epochs 6

pretrain: venv
	@test -f $(PRETRAIN_DATA)/summary.json || $(PY) -m experiments.cli synthfaces-identities --out $(PRETRAIN_DATA) --quiet
	$(PY) -m experiments.cli pretrain --data $(PRETRAIN_DATA)/train --aligned --out $(PRETRAIN_OUT) \
		--export $(PRETRAIN_CKPT) --strategy $(STRATEGY) --resume $(PRETRAIN_ARGS)
	$(PY) -m experiments.cli eval-lfw --pairs $(PRETRAIN_DATA)/pairs.txt --images $(PRETRAIN_DATA)/heldout \
		--model $(PRETRAIN_CKPT)

eval-lfw: venv
	@test -n "$(PAIRS)" -a -n "$(IMAGES)" || { echo "usage: make eval-lfw PAIRS=pairs.txt IMAGES=DIR [MODEL=$(PRETRAIN_CKPT)] [FLIP=1]"; exit 2; }
	$(PY) -m experiments.cli eval-lfw --pairs "$(PAIRS)" --images "$(IMAGES)" --model "$(or $(MODEL),$(PRETRAIN_CKPT))" $(if $(FLIP),--flip)

# Experiments (experiments/configs/*.yaml). DATASET=ckplus|oulu needs DATA_ROOT (the raw
# dataset) the first time; it is prepared into data/<dataset>. PROFILE=paper for the paper's
# setting, STRATEGY=mirrored for every visible GPU, RUN_ID=... RESUME=1 to continue a run.
RUN := $(PY) -m experiments.cli run
RUN_COMMON = --dataset $(DATASET) --strategy $(STRATEGY) $(if $(DATA_ROOT),--data-root "$(DATA_ROOT)") \
             $(if $(RUN_ID),--run-id $(RUN_ID)) $(if $(RESUME),--resume)

reproduce-table2: venv
	$(RUN) --config $(PROFILE) $(RUN_COMMON)

# The study (experiments/configs/study.yaml): every row over 10 folds x SEEDS, paired statistics and
# the claim-by-claim verdicts, published to docs/reproduction.md. RESUME=1 continues it.
SEEDS ?= 0 1 2
reproduce-study: venv
	$(PY) -m experiments.cli study --config study --seeds $(SEEDS) --publish docs/reproduction.md \
		$(if $(RESUME),--resume)

# Table 3 is the expression table of a CK+ (or synthfaces) run: the same job as Table 2.
reproduce-table3: reproduce-table2

# Table 4: Oulu-CASIA's 6 expression classes (on synthfaces unless DATASET=oulu).
reproduce-table4: venv
	$(RUN) --config $(PROFILE) $(RUN_COMMON) --expression-protocol oulu6

reproduce-figure2: venv
	$(RUN) --config figure2 $(RUN_COMMON)

reproduce-figure7: venv
	$(RUN) --config figure7 $(RUN_COMMON)

# Figures 2, 4-7: executes notebooks/figure*.ipynb headless (experiments/notebooks.py). TABLE2_RUN (Figures 4-6),
# FIGURE2_RUN, FIGURE7_RUN: run directories; default: the latest finished run of each kind under
# results/$(DATASET)/, whose profile (quick, figure2, figure7) runs first when there is none. FIGURES="figure4 figure7":
# only these. Executed notebooks go to <run>/notebooks/, PNG + PDF to <run>/figures/.
figures: venv
	$(PY) -m experiments.notebooks --dataset $(DATASET) $(if $(TABLE2_RUN),--table2-run "$(TABLE2_RUN)") \
	  $(if $(FIGURE2_RUN),--figure2-run "$(FIGURE2_RUN)") $(if $(FIGURE7_RUN),--figure7-run "$(FIGURE7_RUN)") \
	  $(if $(FIGURES),--only $(FIGURES))

# Fang et al. 2017 task transfer connections (docs/ttc.md): the embedded digits + synthetic attributes,
# or one of DATASET=synthattrs|digits|celeba|cifar10 (celeba/cifar10 need DATA_ROOT), over TTC_SEEDS paired
# seeds with intervals and verdicts; the full run rewrites docs/ttc.md's generated section 7.
# TTC_ARGS=--quick: smoke run (docs untouched).
TTC_OUT = $(or $(OUT),results/ttc)
TTC_DATASETS = $(if $(filter $(DATASET),synthattrs digits celeba cifar10),$(DATASET),digits synthattrs)
TTC_SEEDS ?= 5

reproduce-ttc: venv
	$(PY) -m experiments.ttc.seeds --datasets $(TTC_DATASETS) --seeds $(TTC_SEEDS) --out $(TTC_OUT) \
	  $(if $(DATA_ROOT),--data-root "$(DATA_ROOT)") $(if $(filter --quick,$(TTC_ARGS)),,--docs docs/ttc.md) $(TTC_ARGS)
	@for d in $(TTC_DATASETS); do $(PY) -m experiments.ttc.notebook $(TTC_OUT)/$$d || exit $$?; done

# Benchmarks (docs/performance.md): benchmarks/results/<date>-<host>.md + .csv. BENCH_QUICK=1: reduced run.
bench: venv
	$(PY) -m benchmarks.run

clean:
	rm -rf build dist *.egg-info .pytest_cache
