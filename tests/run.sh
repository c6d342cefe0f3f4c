#!/bin/sh
# Runs every test binary (build/tests/test_*) and shell test (tests/test_*.sh), counts the
# "ok - " and "not ok - " lines they print and ends with "N passed, N failed".
# A binary that dies without reporting counts as one failure. Usage: tests/run.sh BUILD_DIR
set -u
build=${1:-build}
log=$(mktemp)
status=0
pass=0
fail=0
for t in "$build"/tests/test_* tests/test_*.sh; do
    [ -e "$t" ] || continue
    case "$t" in *.o|*.d) continue ;; esac
    [ -x "$t" ] || [ "${t%.sh}" != "$t" ] || continue
    name=$(basename "$t")
    start=$(date +%s)
    if [ "${t%.sh}" != "$t" ]; then
        BUILD="$build" sh "$t" >"$log" 2>&1
    else
        "$t" >"$log" 2>&1
    fi
    rc=$?
    p=$(grep -c '^ok - ' "$log")
    f=$(grep -c '^not ok - ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "not ok - $name exited with status $rc without reporting a failure" >>"$log"
        f=1
    fi
    pass=$((pass + p))
    fail=$((fail + f))
    echo "== $name: $p passed, $f failed ($(( $(date +%s) - start ))s)"
    if [ "$f" -ne 0 ]; then
        grep -v '^ok - ' "$log" | tail -n 40
        status=1
    fi
done
rm -f "$log"
echo "$pass passed, $fail failed"
exit $status
