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
# a pretrained face network (.keras with its .json sidecar, from `dynamic-mtl pretrain --export`): the
# pretrained / fine-tuned rows and every multi-task row start from it; it must fit PROFILE (checked first).
PRETRAINED ?=

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv install test test-fast lint reproduce-table2 reproduce-table3 reproduce-table4 \
        reproduce-figure2 reproduce-figure7 reproduce-study reproduce-study-weighting pretrain-study pretrain-paper rehearse-real-flow prepare-synthfaces prepare-ckplus prepare-oulu figures bench pretrain eval-lfw \
        reproduce-ttc clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e ".[$(TF_EXTRA),dev]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: venv

# TEST_WORKERS pytest-xdist processes (tests that share a session subprocess run in one of them: xdist_group)
TEST_WORKERS ?= 2
test: venv
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

test-fast: venv
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not slow"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

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
# PRETRAIN_CONFIG: a bundled config (experiments/pretraining/configs) or a file; PRETRAIN_ARGS: flags over it
PRETRAIN_CONFIG ?= synthfaces
PRETRAIN_ARGS ?=

pretrain: venv
	@test -f $(PRETRAIN_DATA)/summary.json || $(PY) -m experiments.cli synthfaces-identities --out $(PRETRAIN_DATA) --quiet
	$(PY) -m experiments.cli pretrain --config $(PRETRAIN_CONFIG) --data $(PRETRAIN_DATA)/train --aligned \
		--out $(PRETRAIN_OUT) --export $(PRETRAIN_CKPT) --strategy $(STRATEGY) --resume $(PRETRAIN_ARGS)
	$(PY) -m experiments.cli eval-lfw --pairs $(PRETRAIN_DATA)/pairs.txt --images $(PRETRAIN_DATA)/heldout \
		--model $(PRETRAIN_CKPT)

eval-lfw: venv
	@test -n "$(PAIRS)" -a -n "$(IMAGES)" || { echo "usage: make eval-lfw PAIRS=pairs.txt IMAGES=DIR [MODEL=$(PRETRAIN_CKPT)] [FLIP=1]"; exit 2; }
	$(PY) -m experiments.cli eval-lfw --pairs "$(PAIRS)" --images "$(IMAGES)" --model "$(or $(MODEL),$(PRETRAIN_CKPT))" $(if $(FLIP),--flip)

# Experiments (experiments/configs/*.yaml). DATASET=ckplus|oulu needs DATA_ROOT (the raw
# dataset) the first time; it is prepared into data/<dataset>. PROFILE=paper for the paper's
# setting, STRATEGY=mirrored for every visible GPU, RUN_ID=... RESUME=1 to continue a run,
# PRETRAINED=ckpt.keras for the pretrained face network (docs/pretraining.md).
RUN := $(PY) -m experiments.cli run
RUN_COMMON = --dataset $(DATASET) --strategy $(STRATEGY) $(if $(DATA_ROOT),--data-root "$(DATA_ROOT)") \
             $(if $(RUN_ID),--run-id $(RUN_ID)) $(if $(RESUME),--resume) \
             $(if $(PRETRAINED),--pretrained "$(PRETRAINED)") $(if $(DATA_DIR),--data-dir "$(DATA_DIR)")

reproduce-table2: venv
	$(RUN) --config $(PROFILE) $(RUN_COMMON)

# The study (experiments/configs/study.yaml): every row over 10 folds x SEEDS, paired statistics and
# the claim-by-claim verdicts, published to docs/reproduction.md. RESUME=1 continues it. STUDY_JOBS seeds
# run side by side, each in its own process with the cores shared out (1: one after another).
SEEDS ?= 0 1 2
STUDY_JOBS ?= 3
STUDY_CKPT := checkpoints/pretrained/synthfaces_small_cnn_32px.keras
reproduce-study: venv $(STUDY_CKPT)
	$(PY) -m experiments.cli study --config study --seeds $(SEEDS) --jobs $(STUDY_JOBS) --publish docs/reproduction.md \
		$(if $(RESUME),--resume)

# The other weighting methods of docs/weighting.md at the study's budget and seeds, with static MTL and the
# proposed method in the same runs (paired against them): docs/reproduction_weighting.md. RESUME=1 continues it.
WEIGHTING_STUDY_METHODS ?= static dynamic later_weighting
reproduce-study-weighting: venv $(STUDY_CKPT)
	$(PY) -m experiments.cli study --config study --study-id study_weighting --seeds $(SEEDS) --jobs $(STUDY_JOBS) \
		--methods $(WEIGHTING_STUDY_METHODS) --publish docs/reproduction_weighting.md $(if $(RESUME),--resume)

# the study's pretrained face network: `make pretrain` at the study's 32 px (experiments/pretraining/configs/study.yaml)
pretrain-study: $(STUDY_CKPT)
$(STUDY_CKPT): | venv
	$(MAKE) pretrain PRETRAIN_OUT=$(basename $(STUDY_CKPT)) PRETRAIN_CKPT=$(STUDY_CKPT) PRETRAIN_CONFIG=study

# the paper profile's face network (reduced Inception-ResNet-v1, 160 px) pretrained on the embedded identity set
# (experiments/pretraining/configs/paper.yaml): `dynamic-mtl run --config paper --dataset synthfaces --pretrained $(PAPER_CKPT)`
PAPER_CKPT := checkpoints/pretrained/synthfaces_paper_160px.keras
pretrain-paper: $(PAPER_CKPT)
$(PAPER_CKPT): | venv
	$(MAKE) pretrain PRETRAIN_OUT=$(basename $(PAPER_CKPT)) PRETRAIN_CKPT=$(PAPER_CKPT) PRETRAIN_CONFIG=paper

# Table 3 is the expression table of a CK+ (or synthfaces) run: the same job as Table 2.
reproduce-table3: reproduce-table2

# Table 4: Oulu-CASIA's 6 expression classes (on synthfaces unless DATASET=oulu).
reproduce-table4: venv
	$(RUN) --config $(PROFILE) $(RUN_COMMON) --expression-protocol oulu6

reproduce-figure2: venv
	$(RUN) --config figure2 $(RUN_COMMON)

reproduce-figure7: venv
	$(RUN) --config figure7 $(RUN_COMMON)

# Figures 2, 4-7: executes notebooks/figure*.ipynb headless (experiments/face_expression/figure_notebooks.py). TABLE2_RUN (Figures 4-6),
# FIGURE2_RUN, FIGURE7_RUN: run directories; default: the latest finished run of each kind under
# results/$(DATASET)/; when there is none it stops and names the command (TRAIN_MISSING=1: runs the profile first,
# quick/figure2/figure7, with its progress). FIGURES="figure4 figure7": only these. Executed notebooks go to <run>/notebooks/, PNG + PDF to <run>/figures/.
figures: venv
	$(PY) -m experiments.face_expression.figure_notebooks --dataset $(DATASET) $(if $(TABLE2_RUN),--table2-run "$(TABLE2_RUN)") \
	  $(if $(FIGURE2_RUN),--figure2-run "$(FIGURE2_RUN)") $(if $(FIGURE7_RUN),--figure7-run "$(FIGURE7_RUN)") \
	  $(if $(FIGURES),--only $(FIGURES)) $(if $(TRAIN_MISSING),--train-missing)

# Fang et al. 2017 task transfer connections (docs/ttc.md): the embedded digits + synthetic attributes,
# or one of DATASET=synthattrs|digits|celeba|cifar10 (celeba/cifar10 need DATA_ROOT), over TTC_SEEDS paired
# seeds with intervals and verdicts; the full run rewrites docs/ttc.md's generated section 7.
# TTC_ARGS=--quick: smoke run (docs untouched). TTC_JOBS: seeds run side by side, each in its own process.
TTC_OUT = $(or $(OUT),results/ttc)
TTC_DATASETS = $(if $(filter $(DATASET),synthattrs digits celeba cifar10),$(DATASET),digits synthattrs)
TTC_SEEDS ?= 5
TTC_JOBS ?= 2

reproduce-ttc: venv
	$(PY) -m experiments.ttc.seeds --datasets $(TTC_DATASETS) --seeds $(TTC_SEEDS) --jobs $(TTC_JOBS) --out $(TTC_OUT) \
	  $(if $(DATA_ROOT),--data-root "$(DATA_ROOT)") $(if $(filter --quick,$(TTC_ARGS)),,--docs docs/ttc.md) $(TTC_ARGS)
	@for d in $(TTC_DATASETS); do $(PY) -m experiments.ttc.notebook $(TTC_OUT)/$$d || exit $$?; done

# A rehearsal of the real-data path (its last output: docs/paper-profile/rehearsal.md) on stand-in
# trees in the CK+, Oulu-CASIA and CASIA-WebFace layouts (data_prep/rehearsal.py): MTCNN preparation, pretraining
# the paper network, then `reproduce-table2` / `reproduce-table4` with PROFILE=paper (one fold, one epoch, every row)
# and PRETRAINED=. REHEARSAL_ARGS: sizes of the trees, --methods to run fewer rows (python -m data_prep.rehearsal
# write --help). PUBLISH=file: a copy of the summary (`PUBLISH=docs/paper-profile/rehearsal.md` made that file).
REHEARSAL_DIR ?= results/rehearsal
REHEARSAL_ARGS ?=
REHEARSAL_PRETRAIN_ARGS ?= --epochs 1 --batch-size 16 --optimizer rmsprop --learning-rate 1e-4 --dropout 0.5
REHEARSAL_SIZE = $$($(PY) -c "import json; print(json.load(open('$(REHEARSAL_DIR)/rehearsal.json'))['config']['image_size'])")
REHEARSAL_FOLDS = $$($(PY) -c "import json; print(json.load(open('$(REHEARSAL_DIR)/rehearsal.json'))['config']['num_folds'])")

rehearse-real-flow: venv
	$(PY) -m data_prep.rehearsal write --out $(REHEARSAL_DIR) $(REHEARSAL_ARGS)
	$(PY) -m experiments.cli prepare ckplus --root $(REHEARSAL_DIR)/raw/CK+ --out $(REHEARSAL_DIR)/data/ckplus \
		--num-folds $(REHEARSAL_FOLDS) --quiet
	$(PY) -m experiments.cli prepare oulu --root $(REHEARSAL_DIR)/raw/Oulu-CASIA --out $(REHEARSAL_DIR)/data/oulu \
		--num-folds $(REHEARSAL_FOLDS) --quiet
	$(PY) -m experiments.cli pretrain --data $(REHEARSAL_DIR)/raw/webface --align --out $(REHEARSAL_DIR)/pretrain \
		--backbone inception_resnet_v1_reduced --image-size $(REHEARSAL_SIZE) --progress none --resume \
		--export $(REHEARSAL_DIR)/checkpoints/face.keras $(REHEARSAL_PRETRAIN_ARGS)
	$(MAKE) --no-print-directory reproduce-table2 DATASET=ckplus DATA_ROOT=$(REHEARSAL_DIR)/raw/CK+ \
		DATA_DIR=$(REHEARSAL_DIR)/data/ckplus PRETRAINED=$(REHEARSAL_DIR)/checkpoints/face.keras \
		PROFILE=$(REHEARSAL_DIR)/paper_rehearsal.yaml RUN_ID= RESUME=
	$(MAKE) --no-print-directory reproduce-table4 DATASET=oulu DATA_ROOT=$(REHEARSAL_DIR)/raw/Oulu-CASIA \
		DATA_DIR=$(REHEARSAL_DIR)/data/oulu PRETRAINED=$(REHEARSAL_DIR)/checkpoints/face.keras \
		PROFILE=$(REHEARSAL_DIR)/paper_rehearsal.yaml RUN_ID= RESUME=
	$(PY) -m data_prep.rehearsal summary --out $(REHEARSAL_DIR) $(if $(PUBLISH),--publish $(PUBLISH))

# Benchmarks (docs/performance.md): benchmarks/results/<date>-<host>.md + .csv. BENCH_QUICK=1: reduced run.
bench: venv
	$(PY) -m benchmarks.run

clean:
	rm -rf build dist *.egg-info .pytest_cache

# Each weighting method's step / plain step here and in LibMTL (PyTorch CPU), same CNN, batch and image
# size, one run (benchmarks/peer.py). LibMTL and PyTorch go into their own .venv-peer, never into $(VENV).
.PHONY: bench-peer
PEER_VENV ?= .venv-peer
PEER_STAMP := $(PEER_VENV)/.installed

$(PEER_STAMP):
	@test -x $(PEER_VENV)/bin/python || { $(PYTHON) -m venv --without-pip $(PEER_VENV) && echo '*' > $(PEER_VENV)/.gitignore && $(PYTHON) -m venv $(PEER_VENV); }
	$(PEER_VENV)/bin/pip install torch==2.13.0 numpy scipy
	$(PEER_VENV)/bin/pip install --no-deps LibMTL==1.1.5
	@touch $(PEER_STAMP)

bench-peer: venv $(PEER_STAMP)
	$(PY) -m benchmarks.peer --peer-python $(PEER_VENV)/bin/python
