#!/bin/bash
# shellcheck disable=SC2046 # the $(...) pid lists are split on purpose
# Stops the local cluster started by start.sh: cancels its jobs, stops slurmd, slurmctld
# and munged, then ends any process still holding a file under the state directory
# (job step daemons left by slurmd). Leaves no daemon of this cluster running.
#
# usage: slurm/local-cluster/stop.sh [--clean] [STATE_DIR]
#   --clean    also delete STATE_DIR (logs included) once everything is stopped
#   STATE_DIR  default $SOFTCOT_SLURM_DIR, else /tmp/softcot-slurm
# Exit status 0 when nothing of the cluster is left running, 1 otherwise.
set -u
clean=0
[ "${1:-}" = --clean ] && { clean=1; shift; }
dir=${1:-${SOFTCOT_SLURM_DIR:-/tmp/softcot-slurm}}
PATH=$PATH:/usr/sbin:/sbin
say() { echo "local-cluster: $*" >&2; }
[ -d "$dir" ] || { say "no state directory $dir: nothing to stop"; exit 0; }
dir=$(cd "$dir" && pwd)
export SLURM_CONF=$dir/slurm.conf

pid_of() { [ -s "$dir/$1" ] && cat "$dir/$1"; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
# stop_pids SECONDS PID...: SIGTERM, wait up to SECONDS, then SIGKILL what is left.
stop_pids() {
    local t=$(($1 * 10)) p left
    shift
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null
    while [ $t -gt 0 ]; do
        left=
        for p in "$@"; do alive "$p" && left=1; done
        [ -z "$left" ] && return 0
        sleep 0.1
        t=$((t - 1))
    done
    for p in "$@"; do alive "$p" && { say "killing $p ($({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null))"; kill -KILL "$p" 2>/dev/null; }; done
    sleep 0.2
}
# Processes (other than this shell) with an open file or cwd under the state directory.
holders() {
    local p f
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = $$ ] && continue
        for f in /proc/$p/cwd /proc/$p/fd/*; do
            case "$(readlink "$f" 2>/dev/null)" in "$dir"/*) echo "$p"; break ;; esac
        done
    done
}

ctld=$(pid_of slurmctld.pid)
if alive "$ctld" && [ -f "$SLURM_CONF" ]; then
    # Cancel every job and give running ones up to 30 s to end.
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null)
    if [ -n "$jobs" ]; then
        timeout 10 scancel $jobs 2>/dev/null
        for _ in $(seq 60); do
            [ -z "$(timeout 10 squeue -h -t R,CG,S -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi
stop_pids 15 $(pid_of slurmd.pid)
stop_pids 15 $ctld
stop_pids 10 $(holders | grep -vx "$(pid_of munge/munged.pid)")
stop_pids 10 $(pid_of munge/munged.pid)
stop_pids 5 $(holders)

left=$(holders)
for p in $(pid_of slurmd.pid) $ctld $(pid_of munge/munged.pid); do alive "$p" && left="$left $p"; done
if [ -n "${left// /}" ]; then
    say "still running: $left"
    exit 1
fi
rm -f "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munge/munged.pid "$dir"/munge/munge.socket*
[ $clean -eq 1 ] && rm -rf "$dir"
say "stopped"
exit 0
