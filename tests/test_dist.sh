#!/bin/sh
# The dist layer (tests/mpi_dist.c) on 1, 2 and 3 ranks under mpirun (3 ranks on this
# 2-core machine: oversubscribed), and as a plain process with no launcher (Open MPI
# singleton init), which is how `softcot` runs on a laptop.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
. tests/mpi_lib.sh

for np in 1 2 3; do
    run_mpi "mpi_dist on $np ranks" "$np" "$BUILD/tests/mpi_dist" "$np"
done

# No launcher: the output of a singleton run must look like the 1-rank run.
"$BUILD/tests/mpi_dist" 1 >"$tmp/plain.out" 2>"$tmp/plain.err"
rc=$?
sed 's/dist n=1:/dist plain process:/' "$tmp/plain.out"
if [ "$rc" -eq 0 ] && [ "$(grep -c '^ok - ' "$tmp/plain.out")" -ge 10 ]; then
    ok "plain process (no mpirun) runs as 1 rank"
else
    bad "plain process (no mpirun) runs as 1 rank" "status $rc: $(tail -n 5 "$tmp/plain.err" | tr '\n' '|')"
fi
