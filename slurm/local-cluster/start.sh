#!/bin/bash
# Starts a one-node Slurm cluster on this machine for tests and development:
# a private munged, slurmctld and slurmd, all with their state, sockets, pid files and
# logs in one directory. It installs nothing (slurm-wlm and munge come from
# .ci/install-deps) and touches nothing under /etc.
#
# usage: slurm/local-cluster/start.sh [STATE_DIR]
#   STATE_DIR  default $SOFTCOT_SLURM_DIR, else /tmp/softcot-slurm
# Environment: SOFTCOT_SLURM_CTLD_PORT (6817), SOFTCOT_SLURM_SLURMD_PORT (6818),
#   SOFTCOT_SLURM_CPUS (2), SOFTCOT_SLURM_MPI (auto: pmix when srun --mpi=pmix can start
#   a 2-rank Open MPI program here, else none).
# On success prints `export SLURM_CONF=STATE_DIR/slurm.conf`; source STATE_DIR/env.sh
# (that line, plus `export SOFTCOT_LAUNCHER=mpirun` when PMIx does not work here) before
# sbatch/squeue/scontrol. Stop with slurm/local-cluster/stop.sh STATE_DIR.
# Exit status: 0 up; 1 failed (the daemons started so far are stopped again).
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${SOFTCOT_SLURM_DIR:-/tmp/softcot-slurm}}
ctld_port=${SOFTCOT_SLURM_CTLD_PORT:-6817}
slurmd_port=${SOFTCOT_SLURM_SLURMD_PORT:-6818}
cpus=${SOFTCOT_SLURM_CPUS:-2}
mpi=${SOFTCOT_SLURM_MPI:-auto}

say() { echo "local-cluster: $*" >&2; }
die() {
    say "$*"
    for f in slurmctld.log slurmd.log munge/munged.log; do
        [ -s "$dir/$f" ] && { say "--- tail of $dir/$f"; tail -n 15 "$dir/$f" >&2; }
    done
    "$here/stop.sh" "$dir" >&2
    exit 1
}
# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.5 s (WHAT only documents it).
wait_until() {
    local limit=$(($1 * 2)) i=0
    shift 2
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -ge $limit ] && return 1
        sleep 0.5
    done
}
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

for b in munged munge unmunge slurmctld slurmd scontrol sinfo; do
    command -v "$b" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
    command -v "$b" >/dev/null 2>&1 || { say "$b not found: install slurm-wlm and munge (.ci/install-deps)"; exit 1; }
done
for p in munge/munged.pid slurmctld.pid slurmd.pid; do
    alive "$dir/$p" && { say "already running in $dir ($p); run stop.sh $dir first"; exit 1; }
done

mkdir -p "$dir/munge" "$dir/slurmctld" "$dir/slurmd" "$dir/tmp" || exit 1
dir=$(cd "$dir" && pwd)
chmod 700 "$dir" "$dir/munge"
rm -f "$dir"/*.log "$dir"/munge/munged.log "$dir/env.sh"

# --- munge: a fresh key for this cluster only, a private socket.
key=$dir/munge/munge.key
sock=$dir/munge/munge.socket
if [ ! -s "$key" ]; then
    (umask 077 && dd if=/dev/urandom of="$key" bs=1024 count=1 status=none) || die "cannot write $key"
fi
chmod 600 "$key"
munged --force --socket="$sock" --key-file="$key" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" ||
    die "munged did not start"
munge_ok() { munge -n -S "$sock" | unmunge -S "$sock"; }
wait_until 15 munge munge_ok || die "munged does not answer on $sock"

# --- slurm.conf from the template.
host=$(hostname -s)
mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 / 2 }' /proc/meminfo)
[ -n "$mem" ] && [ "$mem" -gt 0 ] || mem=1024
gen_conf() { # MPI_DEFAULT
    sed -e "s|@HOST@|$host|g" -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" \
        -e "s|@USER@|$(id -un)|g" -e "s|@STATE_DIR@|$dir|g" -e "s|@CPUS@|$cpus|g" \
        -e "s|@MEM_MB@|$mem|g" -e "s|@MPI_DEFAULT@|$1|g" "$here/slurm.conf.in" >"$dir/slurm.conf"
}
gen_conf "$([ "$mpi" = auto ] && echo none || echo "$mpi")"
export SLURM_CONF=$dir/slurm.conf

# --- daemons.
slurmctld -c -f "$SLURM_CONF" || die "slurmctld did not start"
wait_until 30 slurmctld scontrol ping || die "slurmctld does not answer on port $ctld_port"
slurmd -f "$SLURM_CONF" || die "slurmd did not start"
node_idle() { [ "$(sinfo -h -n "$host" -o %T 2>/dev/null)" = idle ]; }
wait_until 60 node node_idle || die "node $host is not idle: $(sinfo -h -N -o '%N %T %E' 2>&1)"

# --- MPI plugin: PMIx if srun can really wire up an Open MPI job with it here.
if [ "$mpi" = auto ]; then
    mpi=none
    if srun --mpi=list 2>&1 | grep -qw pmix && command -v mpicc >/dev/null 2>&1; then
        probe=$dir/pmix-probe
        printf '#include <mpi.h>\n#include <stdio.h>\nint main(int c,char**v){int n=0;MPI_Init(&c,&v);MPI_Comm_size(MPI_COMM_WORLD,&n);MPI_Barrier(MPI_COMM_WORLD);printf("size %%d\\n",n);MPI_Finalize();return 0;}\n' >"$probe.c"
        if mpicc -o "$probe" "$probe.c" 2>/dev/null &&
            [ "$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 \
                srun --mpi=pmix -n 2 -t 1 "$probe" 2>/dev/null | grep -c '^size 2$')" = 2 ]; then
            mpi=pmix
        fi
        rm -f "$probe" "$probe.c"
    fi
    # Reconfigure only once the probe job is gone: a reconfigure while it is completing
    # loses its termination and holds the node for a minute.
    no_jobs() { [ -z "$(squeue -h -o %i 2>/dev/null)" ] && node_idle; }
    wait_until 60 jobs no_jobs || die "the PMIx probe job does not finish: $(squeue 2>&1)"
    if [ "$mpi" != none ]; then
        gen_conf "$mpi"
        scontrol reconfigure || die "scontrol reconfigure failed"
        sleep 1
        wait_until 60 node node_idle || die "node $host is not idle after reconfigure: $(sinfo -h -N -o '%N %T %E' 2>&1)"
    fi
    say "MpiDefault=$mpi"
fi

echo "export SLURM_CONF=$SLURM_CONF" >"$dir/env.sh"
# Without working PMIx, tell the sbatch templates to start the ranks with mpirun.
[ "$mpi" = none ] && echo "export SOFTCOT_LAUNCHER=mpirun" >>"$dir/env.sh"
say "up: node $host, $cpus CPUs, state in $dir"
echo "export SLURM_CONF=$SLURM_CONF"
