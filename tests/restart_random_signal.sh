#!/bin/sh
# restart_random_signal.sh N — the bit-exact resume test, N times, each with SIGTERM
# delivered at a random instant of a run (during generation, backward or checkpoint
# writing: checkpoints are written every step and slowed down so some signals land in
# them; every third trial sends a second signal right after the first). Each interrupted
# run must exit with status 3, resume with --resume auto, and end with final weights and
# optimizer state bit-identical to an uninterrupted run, and trajectories that cover every
# step exactly once. Last line: "K/N bit-identical".
set -u
N=${1:-3}
. tests/train_lib.sh
require_model
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
STEPS=8
ARGS="$SMALL --steps $STEPS --ckpt_every 1 --keep_ckpts 2"
export SOFTCOT_TEST_CKPT_DELAY_MS=5

start=$(date +%s%N)
"$SOFTCOT" train $ARGS --out "$tmp/ref" >"$tmp/ref.log" 2>&1 || { bad "reference run" "$(tail -n 3 "$tmp/ref.log")"; echo "0/$N bit-identical"; exit 1; }
ref_ms=$(( ($(date +%s%N) - start) / 1000000 ))

good=0
i=1
while [ $i -le "$N" ]; do
    run="$tmp/run$i"
    # random instant in the middle 80% of a run's duration
    delay_ms=$(( ref_ms / 10 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % (ref_ms * 8 / 10 + 1) ))
    "$SOFTCOT" train $ARGS --out "$run" >"$run.log" 2>&1 &
    pid=$!
    sleep "$(awk "BEGIN{print $delay_ms/1000}")"
    kill -TERM $pid 2>/dev/null
    [ $((i % 3)) -eq 0 ] && kill -TERM $pid 2>/dev/null
    wait $pid
    rc=$?
    detail="signal after ${delay_ms}ms"
    if [ $rc -eq 0 ]; then
        detail="$detail: run had already finished"
    elif [ $rc -ne 3 ]; then
        bad "trial $i" "$detail: exit status $rc, expected 3: $(tail -n 2 "$run.log" | tr '\n' '|')"
        i=$((i + 1))
        continue
    else
        "$SOFTCOT" train $ARGS --out "$run" --resume auto >>"$run.log" 2>&1
        rc=$?
        detail="$detail, stopped at step $(grep -o 'checkpointed at step [0-9]*' "$run.log" | grep -o '[0-9]*$')"
    fi
    w=$($PY tests/train_compare.py weights "$tmp/ref" "$run" 2>&1)
    wr=$?
    s=$($PY tests/train_compare.py state "$tmp/ref" "$run" 2>&1)
    sr=$?
    t=$($PY tests/train_compare.py steps "$run" $STEPS 2>&1)
    tr_=$?
    if [ $rc -eq 0 ] && [ $wr -eq 0 ] && [ $sr -eq 0 ] && [ $tr_ -eq 0 ]; then
        good=$((good + 1))
        ok "trial $i: $detail; resumed run bit-identical, every step once"
    else
        bad "trial $i" "$detail; resume status $rc; $w; $s; $t"
    fi
    i=$((i + 1))
done
echo "$good/$N bit-identical"
[ "$good" -eq "$N" ]
