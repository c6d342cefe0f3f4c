# train_lib.sh — sourced by the training shell tests: the model they train, small run
# settings, MPI environment, and ok/not-ok helpers.
# Must not: be run as a test itself (run.sh only runs tests/test_*.sh).
: "${BUILD:=build}"
SOFTCOT=${SOFTCOT:-$(pwd)/softcot}
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
MODEL=${SOFTCOT_TEST_MODEL:-inputs/models/base}
# Small but real runs of the built-in base model on the synthetic task: rewards vary, so
# gradients and optimizer states are non-trivial.
SMALL="--model $MODEL --synth_n 200 --batch_prompts 2 --group_size 4 --gen_batch 4 --cot_max 48 --ans_max 8 --warmup 2 --lr 5e-4 --log_every 1"

ok() { echo "ok - $1"; }
bad() { echo "not ok - $1: $2"; }
check() { # name status [detail]
    if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-failed}"; fi
}
compare() { # name check args...: runs tests/train_compare.py and reports its line
    name=$1
    shift
    msg=$($PY tests/train_compare.py "$@" 2>&1)
    check "$name ($msg)" $? "$msg"
}
require_model() {
    if [ ! -f "$MODEL/model.safetensors" ]; then
        bad "training tests need $MODEL" "missing; run make base-model"
        exit 1
    fi
}
