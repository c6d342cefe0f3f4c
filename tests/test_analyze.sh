#!/bin/sh
# softcot analyze and tools/plot.py on short real training runs of the base model: table
# values against an independent h5py/numpy recomputation (tests/analyze_check.py),
# --rollout against the stored row, --compare, the PNG figures, bad and old files, a run
# read while it is being written, and a preempted run.
set -u
. tests/train_lib.sh
require_model
tmp=$(mktemp -d)
live_pid=
trap '[ -n "$live_pid" ] && kill "$live_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
CHK="$PY tests/analyze_check.py"

# Two short real runs (soft and hard, a trajectory row per step) and an eval of the soft one.
"$SOFTCOT" train $SMALL --steps 6 --mode soft --out "$tmp/soft" >"$tmp/soft.log" 2>&1 &&
    "$SOFTCOT" train $SMALL --steps 4 --mode hard --out "$tmp/hard" >"$tmp/hard.log" 2>&1 &&
    "$SOFTCOT" eval --model "$tmp/soft/final" --synthetic 6 --modes hard-greedy,hard-sample,soft-sample \
        --samples 4 --k 1,2,4 --cot_max 48 --ans_max 8 --out "$tmp/soft/eval_after.json" >"$tmp/eval.log" 2>&1
check "short soft and hard training runs and an eval for the analysis" $? "$(tail -n 3 "$tmp/soft.log" "$tmp/eval.log")"
traj=$tmp/soft/trajectories.h5

# Table values: analyze's JSON and text tables against the same numbers recomputed with h5py.
"$SOFTCOT" analyze "$tmp/soft" --json --bin 1 >"$tmp/j1.json" 2>"$tmp/err" &&
    "$SOFTCOT" analyze "$tmp/soft" --json --bin 4 >"$tmp/j4.json" 2>>"$tmp/err" &&
    "$SOFTCOT" analyze "$tmp/soft" --bin 1 >"$tmp/t1.txt" 2>>"$tmp/err"
check "analyze a run directory (text and --json)" $? "$(cat "$tmp/err")"
msg=$($CHK values "$tmp/soft" "$tmp/j1.json" "$tmp/j4.json" "$tmp/t1.txt" 2>&1)
check "analyze tables = h5py recomputation: reward per step, --bin, entropy and mixture bins, pass@k (${msg#ok: })" $? "$msg"
grep -q "^== soft mixture weights" "$tmp/t1.txt" && grep -q "eff.tokens" "$tmp/t1.txt" &&
    grep -q "^== log-probabilities" "$tmp/t1.txt" && grep -q "grad_norm" "$tmp/t1.txt" &&
    grep -q "^answer ended by" "$tmp/t1.txt" && grep -q "soft-trained (this run)" "$tmp/t1.txt"
check "text output has every section (curves, log-probs and gradient norm, stops, mixture, pass@k)" $?

# --steps restricts the analysis; step 2..3 only: two step rows.
"$SOFTCOT" analyze "$traj" --json --steps 2:3 >"$tmp/j23.json" 2>&1 &&
    $PY -c "import json,sys; t=json.load(open(sys.argv[1]))['runs'][0]['trajectory']; sys.exit(not (t['steps']['first_step']==[2,3] and t['rollouts']['first_step']==2 and t['rollouts']['last_step']==3))" "$tmp/j23.json"
check "--steps 2:3 analyses exactly steps 2 and 3" $? "$(head -c 300 "$tmp/j23.json")"

# --rollout: the stored text and tokens, exactly.
"$SOFTCOT" analyze "$tmp/soft" --rollout 3:5 >"$tmp/r.txt" 2>"$tmp/err" &&
    "$SOFTCOT" analyze "$traj" --rollout 3:5 --json >"$tmp/r.json" 2>>"$tmp/err"
check "analyze --rollout STEP:IDX (text and --json)" $? "$(cat "$tmp/err")"
msg=$($CHK rollout "$traj" 3 5 "$tmp/r.txt" "$tmp/r.json" 2>&1)
check "--rollout prints the stored text and tokens exactly (${msg#ok: })" $? "$msg"
"$SOFTCOT" analyze "$traj" --rollout last:0 >"$tmp/last.txt" 2>&1 && grep -q "^rollout 0 of 8 of step 5 " "$tmp/last.txt" &&
    grep -q '^--- prompt text (decoded) ---' "$tmp/last.txt"
check "--rollout last:0 is the last recorded step, token text from the run's tokenizer" $? "$(head -n 3 "$tmp/last.txt")"
"$SOFTCOT" analyze "$traj" --rollout 9:0 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "no rollouts recorded for step 9" "$tmp/err" && [ "$(wc -l <"$tmp/err")" -eq 1 ]
check "--rollout of a step without rollouts: exit 2, one line" $? "$(cat "$tmp/err")"
"$SOFTCOT" analyze "$traj" --rollout 1:8 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "step 1 has 8 rollouts (0..7), not 8" "$tmp/err"
check "--rollout index past the step's rollouts: exit 2" $? "$(cat "$tmp/err")"

# --compare: runs side by side.
"$SOFTCOT" analyze --compare "$tmp/hard" "$tmp/soft" >"$tmp/cmp.txt" 2>"$tmp/err" &&
    grep -q "^steps *hard *soft$" "$tmp/cmp.txt" && grep -q "^positions *top-1 *eff.tokens$" "$tmp/cmp.txt" &&
    grep -q "^rows *32 *48$" "$tmp/cmp.txt" && grep -q "soft/eval_after" "$tmp/cmp.txt"
check "--compare puts the runs side by side (curves, rollouts, entropy, mixture, pass@k)" $? "$(cat "$tmp/err") $(head -n 12 "$tmp/cmp.txt")"

# plot.py: the figures of a real run, atomically written, valid and not blank.
$PY tools/plot.py --out "$tmp/plots" "$tmp/soft" >"$tmp/plot.log" 2>&1
rc=$?
set -- "$tmp/plots/reward.png" "$tmp/plots/passk.png" "$tmp/plots/entropy.png" "$tmp/plots/cot_len.png" "$tmp/plots/mixture.png"
[ $rc -eq 0 ] && [ "$(ls -A "$tmp/plots" | wc -l)" -eq 5 ]
check "plot.py writes reward, passk, entropy, cot_len and mixture PNGs and nothing else" $? "status $rc: $(cat "$tmp/plot.log"; ls -A "$tmp/plots")"
msg=$($CHK png 3 "$@" 2>&1)
check "plot.py PNGs are valid, of plausible size, with several distinct colours (${msg#ok: })" $? "$msg"
$PY tools/plot.py --out "$tmp/plots2" "$tmp/hard" "$tmp/soft" >"$tmp/plot2.log" 2>&1 &&
    msg=$($CHK png 3 "$tmp/plots2/reward.png" "$tmp/plots2/entropy.png" 2>&1)
check "plot.py with two runs (one line each)" $? "$(cat "$tmp/plot2.log") $msg"

# Bad files: a clear one-line error naming the file and what is wrong, exit 2.
head -c 60000 "$traj" >"$tmp/trunc.h5"
$CHK foreign "$tmp/foreign.h5" >/dev/null && $CHK drop "$traj" "$tmp/nogn.h5" steps/grad_norm >/dev/null &&
    $CHK drop "$traj" "$tmp/noent.h5" rollouts/entropy >/dev/null
echo '{"schema": "something-else/2"}' >"$tmp/other.json"
bad_file() { # name file expected-text
    "$SOFTCOT" analyze "$2" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^softcot analyze: $2: $3" "$tmp/err" && [ ! -s "$tmp/out" ]
    check "bad file, $1: exit 2, one line naming the file" $? "status $rc: $(cat "$tmp/err")"
}
bad_file "truncated HDF5" "$tmp/trunc.h5" "cannot open as HDF5 (truncated or corrupted?): truncated file"
bad_file "HDF5 that is not softcot's" "$tmp/foreign.h5" "not a softcot trajectory file"
bad_file "missing /steps dataset" "$tmp/nogn.h5" "missing dataset /steps/grad_norm"
bad_file "missing /rollouts dataset" "$tmp/noent.h5" "missing dataset /rollouts/entropy"
bad_file "JSON that is not eval results" "$tmp/other.json" "not a softcot eval results file"
bad_file "neither HDF5 nor JSON" "$tmp/soft/train.log" "neither a softcot trajectory"
$PY tools/plot.py --out "$tmp/badplots" "$tmp/trunc.h5" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "trunc.h5: cannot open as HDF5" "$tmp/err" && [ -z "$(ls -A "$tmp/badplots" 2>/dev/null)" ]
check "plot.py refuses a truncated file: exit 2, no figure written" $? "$(cat "$tmp/err")"
fails=""
for args in "" "--bin -1 $tmp/soft" "--pos_bin 0 $tmp/soft" "--steps 5:2 $tmp/soft" "--rollout 1:0 --compare $tmp/soft $tmp/hard" \
    "--rollout x:y $tmp/soft" "--bogus $tmp/soft" "$tmp/nonexistent" "--compare $tmp/soft/trajectories.h5 --k 0"; do
    "$SOFTCOT" analyze $args >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] || fails="$fails [$args: $rc $(cat "$tmp/err")]"
done
[ -z "$fails" ]
check "usage errors: exit 2 with one line" $? "$fails"

# Files written before mix_entropy and prompt_tokens existed stay readable, and a run
# resumed on such a file continues it without the newer columns.
$CHK old "$traj" "$tmp/old.h5" >/dev/null && "$SOFTCOT" analyze "$tmp/old.h5" >"$tmp/old.txt" 2>&1 &&
    grep -q "predates the mix_entropy column" "$tmp/old.txt" &&
    "$SOFTCOT" analyze "$tmp/old.h5" --rollout 0:0 >"$tmp/oldr.txt" 2>&1 && grep -q "not recorded in this file" "$tmp/oldr.txt"
check "an older trajectory (no mix_entropy, prompt_tokens) is analysed" $? "$(tail -n 2 "$tmp/old.txt" "$tmp/oldr.txt")"
"$SOFTCOT" train $SMALL --steps 3 --mode soft --ckpt_every 3 --out "$tmp/resume" >/dev/null 2>&1 &&
    $CHK old "$tmp/resume/trajectories.h5" "$tmp/old3.h5" >/dev/null && mv "$tmp/old3.h5" "$tmp/resume/trajectories.h5" &&
    "$SOFTCOT" train $SMALL --steps 5 --mode soft --ckpt_every 3 --out "$tmp/resume" --resume auto >"$tmp/resume.log" 2>&1 &&
    [ -z "$(ls "$tmp/resume" | grep unreadable)" ] &&
    $PY -c "import h5py,sys; f=h5py.File(sys.argv[1]); r=f['rollouts']; sys.exit(not (list(f['steps/step'][()])==[0,1,2,3,4] and 'mix_entropy' not in r and r.attrs['nrows']==40))" "$tmp/resume/trajectories.h5"
check "resuming on an older trajectory file continues it with its own columns" $? "$(tail -n 3 "$tmp/resume.log")"

# A run that is still being written (2 ranks, flushed every step), then preempted by
# SIGUSR1 (Slurm's warning signal; mpirun forwards it, and exits 1 itself on SIGTERM):
# every analysis during the run succeeds; afterwards it covers the checkpointed steps.
launch=""
command -v mpirun >/dev/null 2>&1 && launch="mpirun -n 2"
$launch "$SOFTCOT" train $SMALL --steps 400 --mode soft --ckpt_every 1000 --out "$tmp/live" >"$tmp/live.log" 2>&1 &
live_pid=$!
reads=0 fails="" seen=0
i=0
while [ $i -lt 300 ] && [ "$seen" -lt 8 ]; do
    i=$((i + 1))
    if [ -f "$tmp/live/trajectories.h5" ]; then
        "$SOFTCOT" analyze "$tmp/live" --json >"$tmp/live.json" 2>"$tmp/err"
        rc=$?
        reads=$((reads + 1))
        if [ $rc -ne 0 ]; then fails="$fails [$rc $(cat "$tmp/err")]"; else
            seen=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['runs'][0]['trajectory']['n_steps_in_file'])" "$tmp/live.json")
        fi
    fi
    sleep 0.1
done
kill -USR1 "$live_pid" 2>/dev/null
wait "$live_pid"
rc=$?
live_pid=
[ -z "$fails" ] && [ "$seen" -ge 8 ]
check "analyze while the run writes its trajectory: $reads reads, all succeed (saw $seen steps)" $? "$fails"
"$SOFTCOT" analyze "$tmp/live" --json >"$tmp/live.json" 2>"$tmp/err" &&
    $PY -c "
import json, sys
t = json.load(open(sys.argv[1]))['runs'][0]['trajectory']
last = int(open(sys.argv[2] + '/checkpoints/latest').read().split('_')[1].split('.')[0])
sys.exit(not (t['n_steps_in_file'] == last and t['steps']['last_step'][-1] == last - 1 and last < 400))" "$tmp/live.json" "$tmp/live"
[ $? -eq 0 ] && [ $rc -eq 3 ]
check "a preempted run (SIGUSR1: checkpoint, exit 3) is analysed up to its last checkpoint" $? "status $rc: $(cat "$tmp/err") $(tail -n 2 "$tmp/live.log")"
