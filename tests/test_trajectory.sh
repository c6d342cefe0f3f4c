#!/bin/sh
# Trajectory files with real mpirun, checked by h5py (tests/mpi_trajectory.c,
# tests/traj_check.py): 2 ranks append 5 steps with unequal row counts (one step where a
# rank has none) and ragged columns, deflate-compressed; resume on 2 ranks truncating to
# step 3 and re-appending 4..6 (steps 4 and 5 overwritten); resume on 1 rank after an
# append interrupted by a "crash" (extended datasets, uncommitted rows); an uncompressed
# file on 3 ranks; schema and argument errors.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
. tests/mpi_lib.sh
prog="$BUILD/tests/mpi_trajectory"
PY=/usr/bin/python3
f="$tmp/traj.h5"

run_mpi "create on 2 ranks" 2 "$prog" create "$f" 1 5 4
$PY tests/traj_check.py "$f" 1:2 2:2 3:2 4:2 5:2
grep -q '^# compressed: 1' "$tmp/run.out" && ok "deflate works with collective writes here (HDF5 1.10.8)" ||
    bad "deflate works with collective writes here (HDF5 1.10.8)" "the writer fell back to uncompressed"

run_mpi "resume on 2 ranks" 2 "$prog" resume "$f" 3 4 6
$PY tests/traj_check.py "$f" 1:2 2:2 3:2 4:2 5:2 6:2 | sed 's/^\(not \)\{0,1\}ok - h5py traj.h5/&, after resume at step 3/'

$PY tests/traj_interrupt.py "$f"
run_mpi "resume on 1 rank after an interrupted append" 1 "$prog" resume "$f" 5 6 7
$PY tests/traj_check.py "$f" 1:2 2:2 3:2 4:2 5:2 6:1 7:1 |
    sed 's/^\(not \)\{0,1\}ok - h5py traj.h5/&, after a cut-short append and resume 2->1 ranks/'

u="$tmp/plain.h5"
run_mpi "uncompressed on 3 ranks" 3 "$prog" create "$u" 1 4 0
$PY tests/traj_check.py "$u" 1:3 2:3 3:3 4:3 | sed 's/^\(not \)\{0,1\}ok - h5py plain.h5/&, 3 ranks, uncompressed/'

run_mpi "errors" 2 "$prog" errors "$tmp"
