# The study (`make study`, docs/results.md): RL with hard, soft and fuzzy CoT tokens under
# one recipe (inputs/study.ini), several seeds, every model and the base evaluated in the
# six inference modes on the same held-out problems, plus an out-of-domain NLL set.
#
#   make -f tools/study.mk -j2 [STUDY_QUICK=1] [STUDY_OUT=DIR] [SEEDS="1 2 3"]
#
# Every cell is one command, written to $(STUDY_OUT)/cmd/<cell>.sh before it runs, so
# `sh $(STUDY_OUT)/cmd/<cell>.sh` reruns exactly that cell. Training cells resume from their
# last checkpoint when a previous attempt was stopped (--resume auto gives the same weights
# bit for bit). An evaluation writes eval/<cell>.json.part (rewritten after each mode, with
# "complete": false until the end) and renames it when done, so an interrupted evaluation
# never looks finished to make. Make's own dependency tracking
# makes the whole study restartable: `make study` again runs only what is missing.

STUDY_QUICK ?= 0
ifeq ($(STUDY_QUICK),1)
STUDY_OUT ?= outputs/study-quick
SEEDS ?= 1
STEPS ?= 100
N_EVAL ?= 100
N_OOD ?= 100
else
STUDY_OUT ?= outputs/study
SEEDS ?= 1 2 3
STEPS ?= 800
N_EVAL ?= 500
N_OOD ?= 500
endif
MODES ?= hard soft fuzzy
SAMPLES ?= 32
EVAL_SEED ?= 1234
SOFTCOT ?= build/softcot
CONFIG ?= inputs/study.ini
BASE ?= inputs/models/base
PY ?= /usr/bin/python3
# One thread per process: the study runs one cell per core, and a fixed thread count keeps
# every number bit-reproducible (docs/results.md, "Reproducing a cell").
ENV = OPENBLAS_NUM_THREADS=1

# The out-of-domain set: the synthetic task shifted to 4-5 events and numbers up to 60 (the
# training distribution has 1-3 events and numbers up to 20), scored as multiple choice.
OOD_SYNTH = --split test --n $(N_OOD) --seed 7 --min-steps 4 --max-steps 5 --max-number 60
EVAL_ARGS = --synthetic $(N_EVAL) --samples $(SAMPLES) --cot_max 128 --ans_max 32 \
            --seed $(EVAL_SEED) --ood $(STUDY_OUT)/ood/ood_synth_mmlu.jsonl --ood_format mmlu

TRAIN_CELLS := $(foreach m,$(MODES),$(foreach s,$(SEEDS),$(m)-s$(s)))
EVAL_CELLS := base $(TRAIN_CELLS)
TRAINED := $(TRAIN_CELLS:%=$(STUDY_OUT)/train/%/final/model.safetensors)
EVALS := $(EVAL_CELLS:%=$(STUDY_OUT)/eval/%.json)

.PHONY: all train eval report
all: report
train: $(TRAINED)
eval: $(EVALS)
report: $(STUDY_OUT)/report.md

mode_of = $(word 1,$(subst -s, ,$(1)))
seed_of = $(word 2,$(subst -s, ,$(1)))

# Writes the cell's command to cmd/<cell>.sh, then runs it from there; its output goes to
# logs/<cell>.log (a training run also keeps its own train/<cell>/train.log).
define run_cell
	@mkdir -p $(STUDY_OUT)/cmd $(STUDY_OUT)/logs $(STUDY_OUT)/train $(STUDY_OUT)/eval
	@printf '#!/bin/sh\n# study cell %s (tools/study.mk)\nset -e\n%s\n' '$(1)' '$(2)' > $(STUDY_OUT)/cmd/$(1).sh
	@echo "== $(1): $(2)"
	@sh $(STUDY_OUT)/cmd/$(1).sh
endef

$(STUDY_OUT)/train/%/final/model.safetensors: $(CONFIG) | $(SOFTCOT)
	$(call run_cell,$*.train,$(ENV) $(SOFTCOT) train --config $(CONFIG) --model $(BASE) --mode $(call mode_of,$*) --seed $(call seed_of,$*) --steps $(STEPS) --out $(STUDY_OUT)/train/$* --resume auto > $(STUDY_OUT)/logs/$*.train.log 2>&1)

$(STUDY_OUT)/ood/ood_synth.jsonl: | $(SOFTCOT)
	@mkdir -p $(dir $@)
	$(SOFTCOT) data synth --out $@ $(OOD_SYNTH)

$(STUDY_OUT)/ood/ood_synth_mmlu.jsonl: $(STUDY_OUT)/ood/ood_synth.jsonl tools/study_ood.py
	$(PY) tools/study_ood.py $< $@

$(STUDY_OUT)/eval/base.json: $(STUDY_OUT)/ood/ood_synth_mmlu.jsonl | $(SOFTCOT)
	@mkdir -p $(dir $@)
	$(call run_cell,base.eval,$(ENV) $(SOFTCOT) eval --model $(BASE) $(EVAL_ARGS) --out $@.part > $(STUDY_OUT)/logs/base.eval.log 2>&1 && mv $@.part $@)

$(STUDY_OUT)/eval/%.json: $(STUDY_OUT)/train/%/final/model.safetensors $(STUDY_OUT)/ood/ood_synth_mmlu.jsonl
	@mkdir -p $(dir $@)
	$(call run_cell,$*.eval,$(ENV) $(SOFTCOT) eval --model $(STUDY_OUT)/train/$*/final $(EVAL_ARGS) --out $@.part > $(STUDY_OUT)/logs/$*.eval.log 2>&1 && mv $@.part $@)

$(STUDY_OUT)/report.md: $(EVALS) tools/study_report.py
	$(PY) tools/study_report.py $(STUDY_OUT)
