# mpi_lib.sh — sourced by the shell tests that launch tests/mpi_* programs.
# Sets up what mpirun needs in CI and under ASan, and small ok/not-ok helpers.
# Must not: be run as a test itself (run.sh only runs tests/test_*.sh).
: "${BUILD:=build}"
# CI runs as root; Open MPI refuses that unless told twice. Two cores: allow 3 ranks.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Open MPI and HDF5 keep allocations alive until exit on purpose; under `make asan` LSan
# would report them as leaks. tests/lsan.supp suppresses stacks that pass through those
# libraries only, so leaks in softcot code are still reported. For the suppressions to
# match, LSan must see full stacks: Open MPI is built without frame pointers (so use the
# slow unwinder) and unloads its plugins at MPI_Finalize before LSan runs (so keep them
# loaded). None of this changes anything for non-ASan builds.
export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export OMPI_MCA_mca_base_component_disable_dlclose=1
# Keep our vader/shared-memory transport quiet in containers without CMA permission.
export OMPI_MCA_btl_vader_single_copy_mechanism=none

ok() { echo "ok - $1"; }
bad() { echo "not ok - $1: $2"; }

# run_mpi NAME NP PROG ARGS...: runs PROG on NP ranks, relays its ok/not-ok lines and
# reports a failure if it exited nonzero without saying why. Extra stderr is kept in
# $tmp/NAME.err and shown on failure.
run_mpi() {
    rm_name=$1 np=$2
    shift 2
    mpirun -n "$np" "$@" >"$tmp/run.out" 2>"$tmp/run.err"
    rc=$?
    cat "$tmp/run.out"
    if [ "$rc" -ne 0 ]; then
        bad "$rm_name exits 0" "status $rc; stderr: $(tail -n 20 "$tmp/run.err" | tr '\n' '|')"
    elif ! grep -q '^ok - ' "$tmp/run.out"; then
        bad "$rm_name" "no checks reported; stderr: $(tail -n 20 "$tmp/run.err" | tr '\n' '|')"
    fi
}
