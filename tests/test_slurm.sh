#!/bin/sh
# softcot under a real Slurm controller: starts the one-node local cluster
# (slurm/local-cluster/start.sh), submits slurm/train.sbatch and checks
#  1. a short run completes; log, checkpoints, trajectories and final/ are where
#     docs/slurm.md says (outputs/<job name>/ under the submit directory);
#  2. preemption: a longer run is signalled the way Slurm does it, first
#     `scancel --signal=USR1 --batch` (the batch shell forwards it to the ranks), then
#     `scontrol requeue` (SIGTERM to every process); each time it checkpoints, is requeued
#     (Restarts and SLURM_RESTART_COUNT 1, then 2), resumes and finishes. Its final weights
#     and final checkpoint are bit-identical to an uninterrupted Slurm run of the same
#     config on the same 2 ranks, and every step appears exactly once in its trajectories;
#  3. a bad config ends the job FAILED (exit 2), not requeued, with the error in its log;
#  4. with SOFTCOT_LAUNCHER=mpirun (the fallback without PMIx) the batch-shell signal
#     reaches the ranks too, and the job requeues, resumes and completes;
#  5. slurm/eval.sbatch completes and writes outputs/<job name>/eval.json.
# The cluster is stopped and its state removed on every exit path; every wait is bounded.
# Skipped (no ok/not ok line) when slurm-wlm or munge is not installed.
# Environment: SOFTCOT (binary), BUILD; SOFTCOT_SHARED (../shared);
#   SOFTCOT_SLURM_CTLD_PORT / SOFTCOT_SLURM_SLURMD_PORT (default: two free ports);
#   SOFTCOT_SLURM_TEST_BUDGET: seconds for all waits together (600).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
PATH=$PATH:/usr/sbin:/sbin
for b in sbatch slurmctld slurmd munged scontrol; do
    if ! command -v "$b" >/dev/null 2>&1; then
        echo "# test_slurm.sh skipped: $b not installed (apt-get install slurm-wlm munge)"
        exit 0
    fi
done

repo=$(pwd)
: "${BUILD:=build}"
SOFTCOT=${SOFTCOT:-$repo/$BUILD/softcot}
case "$SOFTCOT" in /*) ;; *) SOFTCOT=$repo/$SOFTCOT ;; esac
export SOFTCOT
SHARED=${SOFTCOT_SHARED:-../shared}
PY=/usr/bin/python3
# Two free TCP ports, so that a developer's own cluster or a parallel run does not clash.
ports=$($PY -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))' 2>/dev/null)
export SOFTCOT_SLURM_CTLD_PORT=${SOFTCOT_SLURM_CTLD_PORT:-${ports% *}}
export SOFTCOT_SLURM_SLURMD_PORT=${SOFTCOT_SLURM_SLURMD_PORT:-${ports#* }}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# Under `make asan`: Open MPI's and HDF5's deliberate exit-time allocations (tests/lsan.supp).
export LSAN_OPTIONS="suppressions=$repo/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
unset SLURM_JOB_ID SLURM_JOBID SLURM_RESTART_COUNT

# Every wait below is also capped by one deadline for the whole test, so that a hung job
# or a broken cluster costs at most this long before the remaining checks fail fast.
budget=${SOFTCOT_SLURM_TEST_BUDGET:-600}
tmp=$(mktemp -d /tmp/softcot-slurm-test.XXXXXX)
cluster=$tmp/cluster
sub=$tmp/submit # the submit directory: outputs/<job name>/ is created under it
mkdir -p "$sub/outputs"
t_start=$(date +%s)
deadline=$((t_start + budget))
# capped SECONDS: SECONDS, or what is left of the budget if that is less (at least 1).
capped() {
    left=$((deadline - $(date +%s)))
    [ "$left" -lt 1 ] && left=1
    [ "$1" -lt "$left" ] && echo "$1" || echo "$left"
}

ok() { echo "ok - $1"; }
bad() { echo "not ok - $1: $2"; }
elapsed() { echo "$(($(date +%s) - t_start))s"; }

cleanup() {
    trap - EXIT INT TERM
    if [ -e "$cluster/slurm.conf" ]; then
        if slurm/local-cluster/stop.sh "$cluster" >"$tmp/stop.log" 2>&1; then
            # Nothing may survive: no daemon, no job step, no rank of ours.
            left=""
            for p in /proc/[0-9]*; do
                p=${p#/proc/}
                [ "$p" = $$ ] && continue
                { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "$tmp" && left="$left $p"
            done
            if [ -z "$left" ]; then
                ok "local cluster stopped, no daemon or job process left behind ($(elapsed) in all)"
            else
                bad "no process left behind" "still running:$left"
            fi
        else
            bad "local cluster stops" "$(tr '\n' '|' <"$tmp/stop.log")"
        fi
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Shows the end of a job's log and of the daemons' logs after a failure.
dump() { # LOGFILE
    echo "# --- tail of $1"
    tail -n 25 "$1" 2>/dev/null | sed 's/^/#   /'
    for f in "$cluster/slurmctld.log" "$cluster/slurmd.log"; do
        echo "# --- tail of $f"
        tail -n 8 "$f" 2>/dev/null | sed 's/^/#   /'
    done
}

# --- the cluster
if ! slurm/local-cluster/start.sh "$cluster" >"$tmp/start.out" 2>"$tmp/start.err"; then
    bad "local cluster starts (munged, slurmctld, slurmd)" "$(tail -n 30 "$tmp/start.err" | tr '\n' '|')"
    exit 1
fi
. "$cluster/env.sh"
ok "local cluster starts: $(grep -o 'MpiDefault=[a-z0-9]*' "$tmp/start.err" || echo 'MpiDefault=none') ($(elapsed))"

# --- the model and configs. With the built-in base model (inputs/models/base): the
# built-in default config (B=4, G=16, real rewards, so weights change). Without it:
# stories260K imported from shared/ with a small config (rewards are all 0 there).
if [ -s inputs/models/base/config.json ] && [ -s inputs/models/base/model.safetensors ]; then
    model=$repo/inputs/models/base
    base=1
    default="--model=$model"                   # the defaults, with an absolute model path
    per_step=64                                # batch_prompts * group_size
    steps2=16
else
    model=$tmp/stories260K
    base=0
    if ! "$SOFTCOT" import --llama2c "$SHARED/models/stories260K/stories260K.bin" --out "$model" >"$tmp/import.log" 2>&1; then
        bad "import stories260K" "$(tail -n 5 "$tmp/import.log" | tr '\n' '|')"
        exit 1
    fi
    default="--model=$model --data=synthetic --synth_n=50 --batch_prompts=2 --group_size=4 --cot_max=16 --ans_max=8"
    per_step=8
    steps2=30
fi
small="--model=$model --data=synthetic --synth_n=50 --batch_prompts=2 --group_size=4 --cot_max=16 --ans_max=8"
echo "# model $model ($([ $base = 1 ] && echo 'built-in base model, default config' || echo 'stories260K: no inputs/models/base yet'))"

job_field() { # JOBID FIELD: one field of `scontrol show job`
    scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
# wait_done JOBID SECONDS: waits until the job reaches a final state; prints it.
wait_done() {
    i=0
    lim=$(capped "$2")
    while [ $i -lt $((lim * 2)) ]; do
        st=$(job_field "$1" JobState)
        case "$st" in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
            echo "$st"
            return 0
            ;;
        esac
        sleep 0.5
        i=$((i + 1))
    done
    echo "still ${st:-unknown} after $lim s$([ "$lim" -lt "$2" ] && echo " (test budget of $budget s used up)")"
    return 1
}
# wait_grep FILE PATTERN SECONDS: waits until FILE has a line matching PATTERN (ERE).
wait_grep() {
    i=0
    lim=$(capped "$3")
    while [ $i -lt $((lim * 5)) ]; do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}
# submit NAME ARGS...: sbatch from the submit directory; prints the job id.
submit() {
    name=$1
    shift
    mkdir -p "$sub/outputs/$name"
    (cd "$sub" && sbatch --parsable -J "$name" "$repo/slurm/train.sbatch" "$@") 2>>"$tmp/sbatch.err" | cut -d';' -f1
}

# ---------------------------------------------------------------- 1. short run
t0=$(date +%s)
steps1=3
job=$(submit sc-short $default --steps=$steps1 --ckpt_every=2)
run=$sub/outputs/sc-short
if [ -z "$job" ]; then
    bad "sbatch slurm/train.sbatch" "$(tail -n 5 "$tmp/sbatch.err" | tr '\n' '|')"
else
    st=$(wait_done "$job" 240)
    out=$run/slurm-$job.out
    if [ "$st" = COMPLETED ] && [ "$(job_field "$job" ExitCode)" = 0:0 ]; then
        ok "short run: sbatch slurm/train.sbatch ($steps1 steps, 2 ranks) completes, exit 0:0 ($(($(date +%s) - t0))s)"
    else
        bad "short run completes" "state $st, exit $(job_field "$job" ExitCode)"
        dump "$out"
    fi
    missing=""
    for f in "$out" "$run/train.log" "$run/checkpoints/latest" "$run/checkpoints/ckpt_2.h5" \
        "$run/checkpoints/ckpt_$steps1.h5" "$run/final/model.safetensors" "$run/final/config.json"; do
        [ -s "$f" ] || missing="$missing ${f#"$sub"/}"
    done
    if [ -z "$missing" ] && [ "$(cat "$run/checkpoints/latest")" = "ckpt_$steps1.h5" ] &&
        grep -q "step $steps1/$steps1 " "$run/train.log" && grep -q 'SLURM_RESTART_COUNT=0' "$out"; then
        ok "short run: slurm-<id>.out, train.log, checkpoints/ (latest = ckpt_$steps1.h5), final/ under outputs/sc-short/"
    else
        bad "short run outputs where docs/slurm.md says" "missing:${missing:- none}; latest '$(cat "$run/checkpoints/latest" 2>/dev/null)'"
        dump "$out"
    fi
    if [ -e "$run/trajectories.h5" ]; then
        $PY tests/slurm_check.py traj-once "$run/trajectories.h5" $steps1 $per_step | sed 's/^\(n*o*t* *ok - \)/\1short run: /'
    else
        ok "short run: trajectories skipped: no trajectories yet (no outputs/sc-short/trajectories.h5)"
    fi
fi

# ---------------------------------------------------------------- 2. preemption
# The same config twice on 2 ranks: uninterrupted, then preempted twice (after step >= 3,
# then 2 steps after the first resume; the run has 16-30 steps, so both land mid-run).
cfg2="$default --steps=$steps2 --ckpt_every=1000 --keep_ckpts=2"
t0=$(date +%s)
ref_job=$(submit sc-ref $cfg2)
ref=$sub/outputs/sc-ref
st=$(wait_done "${ref_job:-none}" 300)
if [ "$st" = COMPLETED ] && [ -s "$ref/final/model.safetensors" ]; then
    ok "preemption: uninterrupted reference run of $steps2 steps completes ($(($(date +%s) - t0))s)"
else
    bad "preemption: uninterrupted reference run completes" "job '${ref_job}' state $st"
    dump "$ref/slurm-$ref_job.out"
fi

t0=$(date +%s)
job=$(submit sc-preempt $cfg2)
run=$sub/outputs/sc-preempt
out=$run/slurm-$job.out
preempted=0
# (a) as with --signal=B:USR1: only the batch shell gets SIGUSR1 and must forward it.
if [ -n "$job" ] && wait_grep "$run/train.log" "^step ([3-9]|[1-9][0-9])/$steps2 " 240; then
    scancel --signal=USR1 --batch "$job"
    if wait_grep "$out" 'requeueing job' 120; then
        preempted=1
        s1=$(sed -n 's/.*checkpointed at step \([0-9]*\).*/\1/p' "$run/train.log" | head -n 1)
        ok "preemption: scancel --signal=USR1 --batch -> forwarded, checkpointed at step $s1 of $steps2, exit 3, requeued"
    else
        bad "preemption: batch-shell SIGUSR1 checkpoints and requeues" "no 'requeueing job' line"
        dump "$out"
    fi
else
    bad "preemption: the run starts training" "job '${job}' state $(job_field "${job:-0}" JobState)"
    dump "$out"
fi
# (b) as with preemption or `scontrol requeue`: SIGTERM to every process of the job.
if [ $preempted -eq 1 ] && wait_grep "$out" 'SLURM_RESTART_COUNT=1' 120 &&
    wait_grep "$run/train.log" 'resumed from' 60; then
    n0=$(grep -c "^step " "$run/train.log")
    # two more steps after the resume, then requeue from outside
    i=0
    lim=$(capped 120)
    while [ $i -lt $((lim * 5)) ] && [ "$(grep -c "^step " "$run/train.log")" -lt $((n0 + 2)) ]; do sleep 0.2; i=$((i + 1)); done
    if [ "$(job_field "$job" JobState)" = RUNNING ] && scontrol requeue "$job" 2>"$tmp/requeue.err"; then
        if wait_grep "$out" 'SLURM_RESTART_COUNT=2' 120 && grep -q 'already requeued by Slurm' "$out"; then
            s2=$(sed -n 's/.*checkpointed at step \([0-9]*\).*/\1/p' "$run/train.log" | sed -n 2p)
            ok "preemption: scontrol requeue -> SIGTERM, checkpointed at step ${s2:-?}, script sees the job already requeued, restarted (SLURM_RESTART_COUNT=2)"
        else
            bad "preemption: scontrol requeue restarts the job" "no SLURM_RESTART_COUNT=2 or no 'already requeued by Slurm' in the log"
            dump "$out"
        fi
    else
        bad "preemption: scontrol requeue of the resumed job" "state $(job_field "$job" JobState); $(cat "$tmp/requeue.err")"
    fi
elif [ $preempted -eq 1 ]; then
    bad "preemption: the requeued job restarts and resumes from its checkpoint" \
        "restart logged: $(grep -c 'SLURM_RESTART_COUNT=1' "$out"), resumed: $(grep -c 'resumed from' "$run/train.log")"
fi
if [ -n "$job" ]; then
    st=$(wait_done "$job" 300)
    restarts=$(job_field "$job" Restarts)
    # the steps it resumed at must be the steps it checkpointed at when signalled
    resumed=$(sed -n 's/.*resumed from .*checkpoints\/ckpt_[0-9]*\.h5 at step \([0-9]*\).*/\1/p' "$run/train.log" | tr '\n' ' ')
    signalled=$(sed -n 's/.*checkpointed at step \([0-9]*\).*/\1/p' "$run/train.log" | tr '\n' ' ')
    if [ "$st" = COMPLETED ] && [ "$restarts" = 2 ] && [ "$(echo $resumed | wc -w)" = 2 ] && [ "$resumed" = "$signalled" ] &&
        grep -q "step $steps2/$steps2 " "$run/train.log" && [ -s "$run/final/model.safetensors" ]; then
        ok "preemption: job COMPLETED after Restarts=$restarts, resumed at steps ${resumed% } (where it checkpointed), finished step $steps2 ($(($(date +%s) - t0))s)"
    else
        bad "preemption: job finishes after two requeues" "state $st, Restarts=$restarts, checkpointed at steps [$signalled], resumed at steps [$resumed]"
        dump "$out"
    fi
    if [ -s "$ref/final/model.safetensors" ] && cmp -s "$ref/final/model.safetensors" "$run/final/model.safetensors"; then
        ok "preemption: final/model.safetensors bit-identical to the uninterrupted run (cmp)"
    else
        bad "preemption: final weights bit-identical" "cmp $(cmp "$ref/final/model.safetensors" "$run/final/model.safetensors" 2>&1)"
    fi
    if [ -s "$ref/checkpoints/ckpt_$steps2.h5" ] && [ -s "$run/checkpoints/ckpt_$steps2.h5" ]; then
        # shellcheck disable=SC2046
        $PY tests/slurm_check.py same-ckpt "$ref/checkpoints/ckpt_$steps2.h5" "$run/checkpoints/ckpt_$steps2.h5" \
            $([ $base = 1 ] && echo --require-update) |
            sed 's/^\(n*o*t* *ok - \)/\1preemption: /'
    else
        bad "preemption: final checkpoints" "missing ckpt_$steps2.h5 in $(ls "$ref/checkpoints" "$run/checkpoints" 2>&1 | tr '\n' ' ')"
    fi
    if [ -e "$run/trajectories.h5" ]; then
        $PY tests/slurm_check.py traj-once "$run/trajectories.h5" $steps2 $per_step | sed 's/^\(n*o*t* *ok - \)/\1preemption: /'
        [ -e "$ref/trajectories.h5" ] && $PY tests/slurm_check.py traj-same "$ref/trajectories.h5" "$run/trajectories.h5" |
            sed 's/^\(n*o*t* *ok - \)/\1preemption: /'
    else
        ok "preemption: every step exactly once in the trajectories skipped: no trajectories yet"
    fi
fi

# ---------------------------------------------------------------- 3. bad config
t0=$(date +%s)
printf '[train]\nmode = bogus\nsteps = 3\n' >"$tmp/bad.ini"
job=$(submit sc-bad "$tmp/bad.ini" $small)
out=$sub/outputs/sc-bad/slurm-$job.out
st=$(wait_done "${job:-none}" 120)
sleep 2 # a requeue would show up as PENDING by now
st2=$(job_field "${job:-0}" JobState)
if [ "$st" = FAILED ] && [ "$st2" = FAILED ] && [ "$(job_field "$job" ExitCode)" = 2:0 ] &&
    [ "$(job_field "$job" Restarts)" = 0 ]; then
    ok "bad config: job ends FAILED with exit 2:0, Restarts=0 ($(($(date +%s) - t0))s)"
else
    bad "bad config: job ends FAILED, not requeued" "state $st then $st2, exit $(job_field "${job:-0}" ExitCode), Restarts=$(job_field "${job:-0}" Restarts)"
fi
if grep -q '^softcot train: .*bogus' "$out" && grep -q 'not requeueing' "$out"; then
    ok "bad config: the error is in the job log: $(grep -m1 '^softcot train: ' "$out")"
else
    bad "bad config: error in the job log" "$(tr '\n' '|' <"$out" 2>/dev/null)"
fi

# ---------------------------------------------------------------- 4. mpirun fallback
# Where srun cannot wire up Open MPI (no PMIx), the script starts the ranks with mpirun
# inside the allocation; the batch-shell signal must reach them through mpirun too.
t0=$(date +%s)
steps4=16
job=$(SOFTCOT_LAUNCHER=mpirun submit sc-mpirun $small --steps=$steps4)
run=$sub/outputs/sc-mpirun
out=$run/slurm-$job.out
if [ -n "$job" ] && wait_grep "$run/train.log" "^step ([2-9]|[1-9][0-9])/$steps4 " 240; then
    scancel --signal=USR1 --batch "$job"
fi
st=$(wait_done "${job:-none}" 300)
if [ "$st" = COMPLETED ] && grep -q 'launcher mpirun' "$out" && grep -q 'requeueing job' "$out" &&
    [ "$(job_field "$job" Restarts)" = 1 ] && grep -q 'resumed from' "$run/train.log" &&
    grep -q "step $steps4/$steps4 " "$run/train.log"; then
    ok "mpirun launcher: batch-shell SIGUSR1 reaches the ranks through mpirun, checkpoint, requeue, resume, COMPLETED ($(($(date +%s) - t0))s)"
else
    bad "mpirun launcher: signal, requeue and resume" "state $st, Restarts=$(job_field "${job:-0}" Restarts)"
    dump "$out"
fi

# ---------------------------------------------------------------- 5. eval template
t0=$(date +%s)
mkdir -p "$sub/outputs/sc-eval"
job=$( (cd "$sub" && sbatch --parsable -J sc-eval "$repo/slurm/eval.sbatch" --model="$model" --synthetic=4 \
    --modes=hard-greedy,soft-sample --samples=2 --k=1,2 --cot_max=8 --ans_max=4) 2>>"$tmp/sbatch.err" | cut -d';' -f1)
st=$(wait_done "${job:-none}" 120)
res=$sub/outputs/sc-eval/eval.json
if [ "$st" = COMPLETED ] && $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("complete") is True else 1)' "$res" 2>/dev/null; then
    ok "eval.sbatch: job COMPLETED, outputs/sc-eval/eval.json complete ($(($(date +%s) - t0))s)"
else
    bad "eval.sbatch completes with its results" "state $st; $(tail -n 3 "$sub/outputs/sc-eval/slurm-$job.out" 2>/dev/null | tr '\n' '|') $(tail -n 3 "$tmp/sbatch.err" | tr '\n' '|')"
fi
