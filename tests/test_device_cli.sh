#!/bin/sh
# Device selection and the per-op profiler from the command line (CPU build): --device,
# --precision and --allreduce are checked before any work or output, with one-line errors
# and exit status 2; SOFTCOT_PROFILE=1 prints a per-op time table at exit.
set -u
SOFTCOT=${SOFTCOT:?SOFTCOT must name the softcot binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { echo "ok - device cli: $1"; }
notok() { echo "not ok - device cli: $1: $2"; }

# expect_usage NAME PATTERN command...: exit 2, one stderr line matching PATTERN, no output dir
expect_usage() {
    name=$1 pattern=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -- "$pattern" "$tmp/err" && [ ! -e "$tmp/run" ]; then
        ok "$name"
    else
        notok "$name" "status $rc: $(head -c 300 "$tmp/err")"
    fi
}

"$SOFTCOT" train --help >"$tmp/help" 2>&1
if grep -q -- '--device  *cpu' "$tmp/help" && grep -q -- '--precision  *auto' "$tmp/help" &&
    grep -q -- '--allreduce  *auto' "$tmp/help"; then
    ok "train --help lists --device, --precision and --allreduce with their defaults"
else
    notok "train --help" "$(grep -e device -e precision -e allreduce "$tmp/help" | head -c 300)"
fi

if "$SOFTCOT" train --help 2>/dev/null | grep -q 'needs make CUDA=1' && ! nm "${SOFTCOT}" 2>/dev/null | grep -q 'cudaMalloc'; then
    expect_usage "--device cuda in a build without CUDA" 'built without CUDA (rebuild with make CUDA=1)' \
        "$SOFTCOT" train --device cuda --steps 1 --out "$tmp/run"
    expect_usage "eval --device cuda in a build without CUDA" 'built without CUDA' \
        "$SOFTCOT" eval --model inputs/models/base --synthetic 2 --device cuda --out "$tmp/run/e.json"
fi
expect_usage "an unknown device" "unknown device 'gpu' (expected cpu or cuda)" \
    "$SOFTCOT" train --device gpu --steps 1 --out "$tmp/run"
expect_usage "bf16 on the CPU backend" 'precision bf16 needs --device cuda' \
    "$SOFTCOT" train --precision bf16 --steps 1 --out "$tmp/run"
expect_usage "an unknown precision" "unknown precision 'fp8'" \
    "$SOFTCOT" eval --model inputs/models/base --synthetic 2 --precision fp8 --out "$tmp/run/e.json"
expect_usage "an unknown all-reduce" "unknown value 'ring' (expected auto, nccl or mpi)" \
    "$SOFTCOT" train --allreduce ring --steps 1 --out "$tmp/run"
expect_usage "NCCL without a GPU" 'allreduce nccl needs --device cuda' \
    "$SOFTCOT" train --allreduce nccl --steps 1 --out "$tmp/run"

SOFTCOT_PROFILE=1 "$SOFTCOT" eval --model inputs/models/base --synthetic 4 --modes hard-greedy --k 1 \
    --out "$tmp/e.json" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ] && grep -q '^# softcot profile (cpu backend): [0-9.]* s in ops' "$tmp/err" &&
    grep -q '^#   op_matmul  *[0-9.]* s  *[0-9.]*%  *[0-9]* calls' "$tmp/err" &&
    grep -q '^#   op_attention_forward ' "$tmp/err"; then
    ok "SOFTCOT_PROFILE=1 prints a per-op time table at exit"
else
    notok "SOFTCOT_PROFILE" "status $rc: $(head -c 400 "$tmp/err")"
fi
"$SOFTCOT" eval --model inputs/models/base --synthetic 4 --modes hard-greedy --k 1 --out "$tmp/e2.json" >"$tmp/out" 2>"$tmp/err"
if ! grep -q 'softcot profile' "$tmp/err"; then ok "no profile table without SOFTCOT_PROFILE"; else notok "profile off" "table printed"; fi
