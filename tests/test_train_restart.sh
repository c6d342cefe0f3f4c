#!/bin/sh
# Preemption and restart of softcot train (real signals, real HDF5 files, real mpirun):
# random-instant SIGTERM trials, world size 2 -> 1, rank-count equivalence, kill -9
# during a checkpoint, and corrupted checkpoints.
set -u
. tests/train_lib.sh
require_model
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Bit-exact resume at random instants (make test runs a small N; the script takes any N).
sh tests/restart_random_signal.sh 2 >"$tmp/trials" 2>&1
cat "$tmp/trials" | grep -E '^(ok|not ok) - '
tail -n 1 "$tmp/trials" | grep -q "^2/2 bit-identical"
check "restart_random_signal.sh 2: $(tail -n 1 "$tmp/trials")" $?

# 1 rank and 2 ranks: identical rollouts; the all-reduced step-1 gradient and the final
# weights equal to within 1e-5. The float comparisons use hard CoT: the soft-CoT gradient
# of the built-in model is a sum of large Gaussian-term contributions that mostly cancel,
# so any change of summation order moves it by ~1e-4 relative, on one rank too
# (micro_batch_tokens 4096 vs 128: 9.8e-5; 1 vs 2 ranks: 6.2e-5; hard: 3.2e-6). The
# reduction does not depend on the mode; soft is checked for identical rollouts.
A="$SMALL --steps 3 --mode hard --ckpt_every 1 --keep_ckpts 10"
"$SOFTCOT" train $A --out "$tmp/r1" >"$tmp/r1.log" 2>&1
mpirun -n 2 "$SOFTCOT" train $A --out "$tmp/r2" >"$tmp/r2.log" 2>&1
check "train runs under mpirun -n 2" $? "$(tail -n 3 "$tmp/r2.log")"
compare "1 vs 2 ranks, hard" rollouts "$tmp/r1" "$tmp/r2"
compare "1 vs 2 ranks, hard" gradient "$tmp/r1" "$tmp/r2" 1e-5
compare "1 vs 2 ranks, hard" weights "$tmp/r1" "$tmp/r2" 1e-5
S="$SMALL --steps 3 --mode soft"
"$SOFTCOT" train $S --out "$tmp/s1" >/dev/null 2>&1
mpirun -n 2 "$SOFTCOT" train $S --out "$tmp/s2" >/dev/null 2>&1
compare "1 vs 2 ranks, soft" rollouts "$tmp/s1" "$tmp/s2"
$PY -c "import h5py,sys; r=h5py.File('$tmp/r2/trajectories.h5','r')['rollouts/rank'][()]; sys.exit(0 if set(r.tolist())=={0,1} else 1)"
check "2 ranks each wrote their own rollouts (rank column)" $?

# World size 2 -> 1: stop a 2-rank run, resume on 1 rank. mpirun forwards SIGUSR1 to the
# ranks and waits for them (SIGTERM would make mpirun itself give up on them).
B="$SMALL --steps 6 --ckpt_every 2 --mode hard" # hard: see the 1-vs-2-rank comment
"$SOFTCOT" train $B --out "$tmp/w1" >/dev/null 2>&1
mpirun -n 2 "$SOFTCOT" train $B --out "$tmp/w2" >"$tmp/w2.log" 2>&1 &
pid=$!
i=0
while [ ! -f "$tmp/w2/checkpoints/latest" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
kill -USR1 $pid
wait $pid
first=$?
[ $first -eq 3 ]
check "2-rank run stops on SIGUSR1 (via mpirun) with status 3" $? "status $first: $(tail -n 2 "$tmp/w2.log" | tr '\n' '|')"
"$SOFTCOT" train $B --out "$tmp/w2" --resume auto >"$tmp/w2b.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "written by 2 rank(s), now 1" "$tmp/w2b.log"
check "resume with world size 2 -> 1 continues to the end" $? "status $rc: $(head -n 3 "$tmp/w2b.log" | tr '\n' '|')"
compare "world size 2 -> 1" steps "$tmp/w2" 6
compare "world size 2 -> 1 vs uninterrupted 1-rank run" weights "$tmp/w1" "$tmp/w2" 1e-5

# kill -9 while a checkpoint is being written: latest still names the previous one.
C="$SMALL --steps 6 --ckpt_every 1 --keep_ckpts 10"
SOFTCOT_TEST_CKPT_DELAY_MS=15 "$SOFTCOT" train $C --out "$tmp/k" >"$tmp/k.log" 2>&1 &
pid=$!
i=0
while [ ! -f "$tmp/k/checkpoints/ckpt_2.h5.tmp" ] && [ $i -lt 1200 ]; do sleep 0.02; i=$((i + 1)); done
kill -KILL $pid
wait $pid 2>/dev/null
[ "$(cat "$tmp/k/checkpoints/latest" 2>/dev/null)" = "ckpt_1.h5" ]
check "kill -9 during checkpoint 2 leaves latest = ckpt_1.h5" $? "latest: $(cat "$tmp/k/checkpoints/latest" 2>/dev/null); files: $(ls "$tmp/k/checkpoints" | tr '\n' ' ')"
"$SOFTCOT" train $C --out "$tmp/k" --resume auto >"$tmp/k2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "resumed from .*ckpt_1.h5 at step 1" "$tmp/k2.log"
check "the previous checkpoint loads and the run finishes" $? "status $rc: $(head -n 3 "$tmp/k2.log" | tr '\n' '|')"
compare "after the crash" steps "$tmp/k" 6

# Corruption: a truncated latest checkpoint is refused by name and resume falls back.
"$SOFTCOT" train $SMALL --steps 4 --ckpt_every 1 --keep_ckpts 3 --out "$tmp/c" >/dev/null 2>&1
f="$tmp/c/checkpoints/ckpt_4.h5"
head -c $(( $(stat -c %s "$f") / 2 )) "$f" >"$f.cut" && mv "$f.cut" "$f"
"$SOFTCOT" train $SMALL --steps 5 --ckpt_every 1 --keep_ckpts 3 --out "$tmp/c" --resume auto >"$tmp/c.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "ckpt_4.h5" "$tmp/c.log" && grep -q "resumed from .*ckpt_3.h5 at step 3" "$tmp/c.log"
check "truncated latest checkpoint: named, resume falls back to ckpt_3" $? "status $rc: $(head -n 4 "$tmp/c.log" | tr '\n' '|')"
# A flipped byte inside a tensor fails its checksum.
f="$tmp/c/checkpoints/ckpt_5.h5"
off=$($PY tests/ckpt_check.py offset "$f" params/model.norm.weight)
printf '\377' | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null
"$SOFTCOT" train $SMALL --steps 6 --ckpt_every 1 --keep_ckpts 3 --out "$tmp/c" --resume auto >"$tmp/c2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "ckpt_5.h5" "$tmp/c2.log" && grep -qi "checksum\|crc" "$tmp/c2.log" && grep -q "resumed from .*ckpt_3.h5\|resumed from .*ckpt_4" "$tmp/c2.log"
check "checkpoint with a bad checksum: named, resume falls back" $? "status $rc: $(head -n 4 "$tmp/c2.log" | tr '\n' '|')"
