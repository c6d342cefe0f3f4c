#!/bin/sh
# make base-model: rebuilds the built-in base model inputs/models/base from nothing
# (recipe and measured numbers: docs/base-model.md).
#   1. the synthetic task's train split (softcot data synth)
#   2. a byte-level BPE tokenizer trained on it (tools/train_tokenizer.py)
#   3. a tiny Llama trained from random init by `softcot sft` on the same train split
# Every step is seeded, so the result is reproducible on a given machine (floating-point
# summation order can differ across BLAS builds and thread counts). Set BENCH=1 to also
# measure hard-greedy pass@1 and pass@32 on 200 held-out test problems afterwards.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=build/softcot
out=${OUT:-inputs/models/base}
work=${WORK:-build/base-model}
# The task difficulty (data/synth.h knobs) and the prompt template of the recipe.
SYNTH=${SYNTH:-max_steps=3,max_number=20,max_factor=5,max_value=200,ops=+-*/}
N_TRAIN=${N_TRAIN:-20000}
TEMPLATE='Question: {question}\nAnswer:'
STEPS=${STEPS:-800}
ANSWER_ONLY=${ANSWER_ONLY:-0.5}
# Worked solutions begin with this sentence, so that working the problem and answering at
# once start with different single tokens (docs/base-model.md, "Why the lead-in").
LEAD_IN=${LEAD_IN-Let us work it out.}

mkdir -p "$work" "$out"
flags=$(printf '%s' "$SYNTH" | tr ',' '\n' | sed -n 's/^\([a-z_]*\)=\(.*\)$/--\1 \2/p' | tr '_' '-' | tr '\n' ' ')
start=$(date +%s)
# shellcheck disable=SC2086
"$bin" data synth --split train --n "$N_TRAIN" $flags --out "$work/train.jsonl"
/usr/bin/python3 tools/train_tokenizer.py train --vocab-size 512 --template "$(printf 'Question: {question}\nAnswer:')" \
    --lead-in "$LEAD_IN" --out "$work/tokenizer" "$work/train.jsonl"
# One process; OpenBLAS may use both cores for SFT's matrix products.
OPENBLAS_NUM_THREADS=2 "$bin" sft --init random --tokenizer "$work/tokenizer" \
    --dim 128 --layers 4 --heads 4 --kv-heads 2 --hidden 352 --max-seq 1024 --tied true \
    --synthetic --synth "$SYNTH" --synth-n "$N_TRAIN" --template "$TEMPLATE" --answer-only "$ANSWER_ONLY" --lead-in "$LEAD_IN" \
    --steps "$STEPS" --batch 32 --lr 2e-3 --min-lr-ratio 0.1 --warmup 50 --weight-decay 0.1 \
    --grad-clip 1.0 --seed 1234 --log-every 100 --out "$out"
echo "make_base_model.sh: $out written in $(( $(date +%s) - start )) s"
if [ "${BENCH:-0}" = 1 ]; then
    make -s build/tests/bench_base_model
    build/tests/bench_base_model "$out" 200 32
fi
