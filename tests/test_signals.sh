#!/bin/sh
# Real signals from the shell (tests/mpi_signals.c):
#  - a plain process (no mpirun) gets SIGUSR1, sees the flag at the next step boundary
#    and exits 3 (EXIT_REQUEUE, "checkpointed, resubmit");
#  - on 2 ranks under mpirun, SIGUSR1 or SIGTERM sent to ONE rank only stops both at the
#    same step boundary (dist_any), and both exit 3.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
. tests/mpi_lib.sh
prog="$BUILD/tests/mpi_signals"

wait_for() {
    i=0
    while [ ! -e "$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$1" ]
}

# plain process
mkdir -p "$tmp/p"
timeout 60 "$prog" "$tmp/p" >"$tmp/p.out" 2>"$tmp/p.err" &
pid=$!
wait_for "$tmp/p/pid.0" && sleep 0.2 && kill -USR1 "$(cat "$tmp/p/pid.0")"
wait $pid
rc=$?
sed 's/^ok - 1 ranks:/ok - plain process:/' "$tmp/p.out" | grep -v '^#'
[ $rc -eq 3 ] && ok "plain process: SIGUSR1 -> exit status 3" ||
    bad "plain process: SIGUSR1 -> exit status 3" "status $rc: $(tail -n 3 "$tmp/p.err" | tr '\n' '|')"

# two ranks, the signal to one of them
for sig in USR1 TERM; do
    for target in 1 0; do
        dir="$tmp/m$sig$target"
        mkdir -p "$dir"
        timeout 60 mpirun -n 2 "$prog" "$dir" >"$tmp/m.out" 2>"$tmp/m.err" &
        mpid=$!
        wait_for "$dir/pid.0" && wait_for "$dir/pid.1" && sleep 0.3 && kill -"$sig" "$(cat "$dir/pid.$target")"
        wait $mpid
        rc=$?
        sed "s/^\(not \)\{0,1\}ok - 2 ranks:/&[SIG$sig to rank $target only]/" "$tmp/m.out" | grep -v '^#'
        if [ $rc -eq 3 ] && grep -q "reached 1 rank(s)" "$tmp/m.out"; then
            ok "2 ranks: SIG$sig to rank $target only -> both exit 3"
        else
            bad "2 ranks: SIG$sig to rank $target only -> both exit 3" "status $rc: $(tail -n 5 "$tmp/m.err" | tr '\n' '|')"
        fi
    done
done

# SIGUSR1 sent to mpirun itself is forwarded to every rank (SIGTERM to mpirun is also
# forwarded, but mpirun then exits 1 on its own account: use SIGUSR1 with mpirun).
dir="$tmp/fwd"
mkdir -p "$dir"
# No `timeout` wrapper here: the signal must go to mpirun itself (the program gives up
# by itself after 30 s without a signal).
mpirun -n 2 "$prog" "$dir" >"$tmp/f.out" 2>"$tmp/f.err" &
mpid=$!
wait_for "$dir/pid.0" && wait_for "$dir/pid.1" && sleep 0.3 && kill -USR1 $mpid
wait $mpid
rc=$?
if [ $rc -eq 3 ] && grep -q "^ok - 2 ranks: every rank stops at the same step" "$tmp/f.out"; then
    ok "SIGUSR1 to mpirun reaches the ranks; they stop together and exit 3"
else
    bad "SIGUSR1 to mpirun reaches the ranks; they stop together and exit 3" "status $rc: $(tail -n 3 "$tmp/f.err" | tr '\n' '|')"
fi
