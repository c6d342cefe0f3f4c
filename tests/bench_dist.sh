#!/bin/sh
# make bench (distributed part): checkpoint bandwidth for a 1.2 GB model on 1 and 2 ranks,
# the gradient all-reduce's share of an RL step, and weak scaling 1 -> 2 ranks of
# `softcot train` on the built-in base model (same work per rank). Prints; asserts nothing.
set -u
BUILD=${BUILD:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# distributed bench on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1 /proc/loadavg)"
for np in 1 2; do
    rm -rf "$tmp/ck"
    mpirun -n $np "$BUILD/tests/mpi_bench_ckpt" "$tmp/ck" | grep -v '^#'
done
steps=6
for np in 1 2; do
    # batch_prompts scales with the ranks: each rank does the same work (weak scaling)
    mpirun -n $np "$BUILD/softcot" train --model inputs/models/base --out "$tmp/ws$np" --steps $steps \
        --batch_prompts $((2 * np)) --group_size 16 --gen_batch 16 --cot_max 96 --ans_max 16 \
        --traj_every 0 --ckpt_every 1000 --save_final false >"$tmp/ws$np.log" 2>&1 || { echo "train on $np rank(s) failed"; tail -n 3 "$tmp/ws$np.log"; continue; }
    # skip the first step (allocation); average the rest
    grep '^step ' "$tmp/ws$np.log" | tail -n $((steps - 1)) | awk -v np=$np '
        { for (i = 1; i <= NF; i++) { if ($i == "gen") g += $(i+1); if ($i == "train" && $(i+2) == "tok/s") t += $(i+1);
          if ($i == "allreduce") a += $(i+1); if ($i == "s/step") s += $(i-1) } n++ }
        END { printf "train %d rank(s), %d prompts x 16: gen %.0f tok/s, train %.0f tok/s (all ranks) = %.0f / %.0f per rank; all-reduce %.1f ms = %.1f%% of %.2f s/step\n",
              np, 2 * np, g / n, t / n, g / n / np, t / n / np, a / n, 100 * a / n / 1000 / (s / n), s / n }'
done
