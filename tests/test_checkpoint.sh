#!/bin/sh
# Checkpoints with real mpirun and real HDF5 files (tests/mpi_checkpoint.c):
#  - written on 2 ranks in small pieces, read back bit-identical on 1, 2 and 3 ranks;
#    h5py sees the documented attributes and CRC-32C checksums;
#  - keep-last-K pruning, `latest`, argument and shape errors (unit mode);
#  - a truncated file and a flipped data byte are refused naming the file (and the
#    dataset); resume falls back to the newest older valid checkpoint and says so;
#  - kill -9 of one rank in the middle of a checkpoint leaves `latest` on the previous
#    checkpoint, which loads;
#  - SIGTERM/SIGUSR1 (twice on one rank) during a checkpoint do not corrupt it; the
#    stop is seen by both ranks afterwards and they exit 3 (EXIT_REQUEUE).
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
. tests/mpi_lib.sh
prog="$BUILD/tests/mpi_checkpoint"
PY=/usr/bin/python3
T="timeout 120"

# --- round trip across rank counts
SOFTCOT_CKPT_PIECE_BYTES=40 run_mpi "write on 2 ranks" 2 "$prog" write "$tmp/a" 3 2
for np in 1 2 3; do
    SOFTCOT_CKPT_PIECE_BYTES=24 run_mpi "read on $np ranks" "$np" "$prog" read "$tmp/a/ckpt_3.h5" 3
done
$PY tests/ckpt_check.py check "$tmp/a/ckpt_3.h5" 3
run_mpi "unit" 2 "$prog" unit "$tmp/u"

# --- corruption and fallback
c="$tmp/c"
for s in 1 2 3; do run_mpi "write step $s" 2 "$prog" write "$c" "$s" 0 >/dev/null; done
cp "$c/ckpt_3.h5" "$tmp/trunc.h5"
truncate -s 40000 "$tmp/trunc.h5"
run_mpi "truncated file refused" 2 "$prog" refuse "$tmp/trunc.h5" "$tmp/trunc.h5: " "truncated file"
cp "$c/ckpt_3.h5" "$tmp/head.h5"
truncate -s 100 "$tmp/head.h5"
run_mpi "file cut inside its superblock refused" 1 "$prog" refuse "$tmp/head.h5" "$tmp/head.h5: "

flip() { # FILE DATASET: xor one byte in the middle of DATASET's data
    off=$($PY tests/ckpt_check.py offset "$1" "$2")
    $PY -c "
import sys
f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2]) + 21); b = f.read(1)
f.seek(int(sys.argv[2]) + 21); f.write(bytes([b[0] ^ 0x10])); f.close()" "$1" "$off"
}
cp "$c/ckpt_3.h5" "$tmp/flip.h5"
flip "$tmp/flip.h5" params/model.norm.weight
run_mpi "flipped byte refused" 2 "$prog" refuse "$tmp/flip.h5" "$tmp/flip.h5: " \
    "dataset params/model.norm.weight: checksum mismatch"

run_mpi "resume, all valid" 2 "$prog" resume "$c" 3 -
flip "$c/ckpt_3.h5" adam_v/model.embed_tokens.weight
run_mpi "resume after a bit flip in the latest" 2 "$prog" resume "$c" 2 \
    "$c/ckpt_3.h5: dataset adam_v/model.embed_tokens.weight: checksum mismatch"
truncate -s 50000 "$c/ckpt_2.h5"
run_mpi "resume after two bad checkpoints" 1 "$prog" resume "$c" 1 "resuming from $c/ckpt_1.h5 instead"
grep -q "ckpt_2.h5: cannot open checkpoint (truncated" "$tmp/run.out" &&
    ok "fallback note names the truncated file too" || bad "fallback note names the truncated file too" "$(cat "$tmp/run.out")"
printf 'garbage\n' >"$c/latest"
run_mpi "resume with a garbage latest" 2 "$prog" resume "$c" 1 "$c/latest: does not name a checkpoint"
printf 'ckpt_9.h5\n' >"$c/latest"
run_mpi "resume with latest naming a missing file" 2 "$prog" resume "$c" 1 "ckpt_9.h5, which does not exist"
rm "$c/latest"
run_mpi "resume without latest" 2 "$prog" resume "$c" 1 "$c/latest is missing"
truncate -s 0 "$c/ckpt_1.h5"
run_mpi "resume with no valid checkpoint" 2 "$prog" resume "$c" error "$c/ckpt_1.h5: not an HDF5 file"
run_mpi "resume in a fresh dir" 2 "$prog" resume "$tmp/none" none -

# --- kill -9 in the middle of a checkpoint
k="$tmp/k"
run_mpi "write step 2 before the crash" 2 "$prog" write "$k" 2 3 >/dev/null
rm -f "$k"/pid.*
# wait_for FILE: up to 30 s
wait_for() {
    i=0
    while [ ! -e "$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$1" ]
}
SOFTCOT_TEST_CKPT_DELAY_MS=40 SOFTCOT_CKPT_PIECE_BYTES=32 $T mpirun -n 2 "$prog" write "$k" 3 3 \
    >"$tmp/kill.out" 2>"$tmp/kill.err" &
mpid=$!
mid=0
if wait_for "$k/ckpt_3.h5.tmp" && wait_for "$k/pid.1"; then
    sleep 0.5
    [ -e "$k/ckpt_3.h5.tmp" ] && [ ! -e "$k/ckpt_3.h5" ] && mid=1
    kill -9 "$(cat "$k/pid.1")"
fi
wait $mpid
rc=$?
if [ $mid -eq 1 ] && [ $rc -ne 0 ] && [ "$(cat "$k/latest")" = "ckpt_2.h5" ] && [ ! -e "$k/ckpt_3.h5" ]; then
    ok "kill -9 mid-checkpoint: job fails, latest still names ckpt_2.h5, no ckpt_3.h5"
else
    bad "kill -9 mid-checkpoint" "mid-write $mid, rc $rc, latest '$(cat "$k/latest")', files: $(ls "$k" | tr '\n' ' ')"
fi
run_mpi "resume after the crash" 2 "$prog" resume "$k" 2 -
run_mpi "checkpoint again after the crash" 2 "$prog" write "$k" 3 3
[ ! -e "$k/ckpt_3.h5.tmp" ] && [ "$(cat "$k/latest")" = "ckpt_3.h5" ] &&
    ok "the rewrite replaces the crashed temp file" || bad "the rewrite replaces the crashed temp file" "$(ls "$k")"

# --- stop signals during a checkpoint
s="$tmp/s"
mkdir -p "$s"
SOFTCOT_TEST_CKPT_DELAY_MS=40 SOFTCOT_CKPT_PIECE_BYTES=32 $T mpirun -n 2 "$prog" write "$s" 4 3 \
    >"$tmp/sig.out" 2>"$tmp/sig.err" &
mpid=$!
mid=0
if wait_for "$s/ckpt_4.h5.tmp" && wait_for "$s/pid.1"; then
    sleep 0.3
    kill -TERM "$(cat "$s/pid.1")"
    sleep 0.3
    kill -TERM "$(cat "$s/pid.1")" # a second signal while still checkpointing
    kill -USR1 "$(cat "$s/pid.1")"
    [ -e "$s/ckpt_4.h5.tmp" ] && [ ! -e "$s/ckpt_4.h5" ] && mid=1
fi
wait $mpid
rc=$?
cat "$tmp/sig.out"
if [ $mid -eq 1 ] && [ $rc -eq 3 ] && grep -q '^ok - write step 4' "$tmp/sig.out" &&
    grep -q 'stop signal seen' "$tmp/sig.out"; then
    ok "SIGTERM x2 + SIGUSR1 to one rank mid-checkpoint: write completes, both ranks exit 3"
else
    bad "signals mid-checkpoint" "mid-write $mid, rc $rc: $(tail -n 5 "$tmp/sig.err" | tr '\n' '|')"
fi
run_mpi "checkpoint written under signals reads back" 2 "$prog" read "$s/ckpt_4.h5" 4
$PY tests/ckpt_check.py check "$s/ckpt_4.h5" 4 | sed 's/h5py:/h5py (after signals):/'
