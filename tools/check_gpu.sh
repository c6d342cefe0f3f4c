#!/bin/sh
# make check-gpu: the CUDA backend's checks on a machine with a GPU (docs/gpu.md).
#   tools/check_gpu.sh BIN_DIR [PART...]
# BIN_DIR holds softcot and tests/gpu_* (build-cuda after `make CUDA=1 BUILD=build-cuda
# gpu-checks`). PARTs: ops model e2e bench profile[-3b|-rl|-decode] (default: the first four). Each program runs
# in its own process, so a CUDA error in one cannot poison the next. Prints TAP lines and
# the throughput table; exits 1 if any check failed.
set -u
bin=${1:?usage: check_gpu.sh BIN_DIR [ops|model|e2e|bench ...]}
shift
parts=${*:-ops model e2e bench}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail=0
start=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "# nvidia-smi not found"

run() { # name timeout command...
    name=$1 limit=$2
    shift 2
    echo "## $name"
    timeout "$limit" "$@"
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "not ok - $name exited with status $rc"
        fail=1
    fi
}

for part in $parts; do
    case $part in
    ops) run "every op vs the CPU backend" 120 "$bin/tests/gpu_ops" ;;
    model) run "whole model and rollouts vs the CPU backend" 90 "$bin/tests/gpu_model" ;;
    e2e)
        # The built-in model evaluated on both backends: fp32 must give the same answers.
        tmp=$(mktemp -d)
        ev="eval --model inputs/models/base --synthetic 100 --modes hard-greedy,soft-greedy,fuzzy-greedy --k 1"
        for dev in "cpu fp32" "cuda fp32" "cuda bf16"; do
            set -- $dev
            t0=$(date +%s)
            if ! timeout 60 "$bin/softcot" $ev --device "$1" --precision "$2" --out "$tmp/$1_$2.json" >"$tmp/$1_$2.txt" 2>&1; then
                echo "not ok - softcot eval --device $1 --precision $2"; cat "$tmp/$1_$2.txt"; fail=1
            fi
            echo "# eval --device $1 --precision $2: $(( $(date +%s) - t0 )) s"
        done
        python3 - "$tmp" <<'PYEOF' || fail=1
import json, sys, os
d = sys.argv[1]
res = {}
for k in ("cpu_fp32", "cuda_fp32", "cuda_bf16"):
    p = os.path.join(d, k + ".json")
    res[k] = json.load(open(p))["modes"] if os.path.exists(p) else None
bad = 0
for mode in ("hard-greedy", "soft-greedy", "fuzzy-greedy"):
    vals = {k: (v[mode]["greedy_pass_at_1"] if v else None) for k, v in res.items()}
    print("# %-13s greedy pass@1: cpu fp32 %s, cuda fp32 %s, cuda bf16 %s" % (mode, vals["cpu_fp32"], vals["cuda_fp32"], vals["cuda_bf16"]))
    same = vals["cpu_fp32"] is not None and vals["cuda_fp32"] is not None and abs(vals["cpu_fp32"] - vals["cuda_fp32"]) <= 0.011
    print("%s - %s: cuda fp32 pass@1 within one problem of cpu" % ("ok" if same else "not ok", mode))
    bad += not same
sys.exit(1 if bad else 0)
PYEOF
        # A short training run on the GPU, started without a launcher (MPI singleton).
        if timeout 60 "$bin/softcot" train --model inputs/models/base --device cuda --steps 3 --batch_prompts 2 --group_size 8 \
            --out "$tmp/run" --ckpt_every 3 >"$tmp/train.txt" 2>&1; then
            tail -n 4 "$tmp/train.txt"
            if [ -f "$tmp/run/final/model.safetensors" ]; then echo "ok - softcot train --device cuda: 3 steps, final model written"
            else echo "not ok - softcot train --device cuda wrote no final model"; fail=1; fi
        else
            echo "not ok - softcot train --device cuda"; tail -n 20 "$tmp/train.txt"; fail=1
        fi
        rm -rf "$tmp"
        ;;
    bench)
        run "throughput" 240 "$bin/tests/gpu_bench"
        run "memory budget: a 3B RL step on one GPU" 180 "$bin/tests/gpu_bench" --only rl3b ;;
    profile|profile-3b|profile-rl|profile-decode)
        # where the time goes: every op synchronised and timed (slower than the bench)
        whats=${part#profile-}
        [ "$part" = profile ] && whats="3b rl decode"
        export SOFTCOT_PROFILE=1
        for what in $whats; do
            run "per-op profile: $what" 120 "$bin/tests/gpu_bench" --only $what
        done
        unset SOFTCOT_PROFILE ;;
    *) echo "check_gpu.sh: unknown part '$part' (ops, model, e2e, bench, profile)" >&2; exit 2 ;;
    esac
done
echo "# check_gpu.sh: $(( $(date +%s) - start )) s"
exit $fail
