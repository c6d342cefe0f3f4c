"""slurm_check.py — h5py checks for tests/test_slurm.sh (run with /usr/bin/python3).

Usage:
  slurm_check.py same-ckpt A.h5 B.h5 [--require-update]
      Two checkpoints hold the same state bit for bit: every dataset (parameters, AdamW m
      and v, data order) byte-identical, and the same step, cursor, seed, world size, task
      count, mode, bad-step count and config (the `out` line excepted: the runs differ in
      their directory). With --require-update the AdamW first moments must also be nonzero
      somewhere (the run really updated its weights, so the comparison is not vacuous).
      Prints one ok / not ok line.
  slurm_check.py traj-once FILE STEPS ROLLOUTS_PER_STEP
      Every step 0..STEPS-1 appears exactly once in the per-step table (steps/step) and
      exactly ROLLOUTS_PER_STEP times in the per-rollout table (rollouts/step), and no
      (step, prompt_index, sample_index) repeats. Prints one ok / not ok line.
  slurm_check.py traj-same A.h5 B.h5
      Two trajectory files hold the same rollouts in the same order (step, prompt and
      sample index, reward, advantage, CoT/answer lengths, log-probabilities, shadow tokens).
Dataset names follow docs/hdf5-schema.md.
"""
import sys

import h5py
import numpy as np

ATTRS = ["step", "cursor", "seed", "world_size", "n_tasks", "mode", "bad_steps", "format_version"]


def report(good, name, why=""):
    print(("ok - " if good else "not ok - ") + name + ("" if good or not why else ": " + why))


def datasets(f):
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return sorted(names)


def config_without_out(text):
    if isinstance(text, bytes):
        text = text.decode()
    return "\n".join(l for l in text.split("\n") if not l.startswith("out ="))


def same_ckpt(a, b, require_update=False):
    name = "checkpoints %s and %s hold bit-identical state" % (a.split("/")[-1], b.split("/")[-1])
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        na, nb = datasets(fa), datasets(fb)
        if na != nb:
            return report(False, name, "dataset lists differ: %s" % sorted(set(na) ^ set(nb))[:5])
        diff = [n for n in na
                if fa[n].shape != fb[n].shape or fa[n].dtype != fb[n].dtype
                or np.ascontiguousarray(fa[n][()]).tobytes() != np.ascontiguousarray(fb[n][()]).tobytes()]
        for k in ATTRS:
            if k not in fa.attrs or k not in fb.attrs or fa.attrs[k] != fb.attrs[k]:
                diff.append("attribute %s: %r vs %r" % (k, fa.attrs.get(k), fb.attrs.get(k)))
        if config_without_out(fa.attrs.get("config", "")) != config_without_out(fb.attrs.get("config", "")):
            diff.append("attribute config")
        groups = sorted({n.split("/")[0] for n in na})
        updated = any(np.any(fa[n][()] != 0) for n in na if n.startswith("adam_m/"))
        if require_update and not updated:
            diff.append("AdamW m is zero everywhere: no update happened, the comparison proves nothing")
        report(not diff and {"params", "adam_m", "adam_v"} <= set(groups),
               name + " (%d datasets in %s; step %s; weights updated: %s)"
               % (len(na), ",".join(groups), fa.attrs.get("step"), "yes" if updated else "no, zero rewards"),
               "differ: " + "; ".join(diff[:6]))


def traj_once(path, steps, per_step):
    name = "trajectories: each of the %d steps appears exactly once (%d rollouts each)" % (steps, per_step)
    with h5py.File(path, "r") as f:
        missing = [d for d in ("steps/step", "rollouts/step", "rollouts/prompt_index", "rollouts/sample_index")
                   if d not in f]
        if missing:
            return report(False, name, "%s lacks %s (docs/hdf5-schema.md)" % (path, ", ".join(missing)))
        s = np.asarray(f["steps/step"][()]).astype(np.int64)
        r = np.asarray(f["rollouts/step"][()]).astype(np.int64)
        pi = np.asarray(f["rollouts/prompt_index"][()]).astype(np.int64)
        si = np.asarray(f["rollouts/sample_index"][()]).astype(np.int64)
    want = np.arange(steps)
    why = []
    if s.size != steps or not np.array_equal(np.sort(s), want):
        u, c = np.unique(s, return_counts=True)
        why.append("steps/step has %d rows; repeated %s; missing %s"
                   % (s.size, u[c > 1].tolist()[:10], sorted(set(want) - set(u.tolist()))[:10]))
    u, c = np.unique(r, return_counts=True)
    if not np.array_equal(u, want) or not np.all(c == per_step):
        why.append("rollouts/step: steps %s with counts %s" % (u.tolist()[:12], c.tolist()[:12]))
    keys = set(zip(r.tolist(), pi.tolist(), si.tolist()))
    if len(keys) != r.size:
        why.append("%d repeated (step, prompt, sample) rows" % (r.size - len(keys)))
    report(not why, name, "; ".join(why))


def traj_same(a, b):
    cols = ["rollouts/step", "rollouts/prompt_index", "rollouts/sample_index", "rollouts/reward",
            "rollouts/advantage", "rollouts/cot_len", "rollouts/ans_len", "rollouts/logp_cot",
            "rollouts/logp_ans", "rollouts/shadow"]
    name = "trajectories of the preempted run equal the uninterrupted run's, row for row"
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        diff = []
        for c in cols:
            if c not in fa or c not in fb:
                diff.append("%s missing" % c)
            elif not np.array_equal(fa[c][()], fb[c][()]):
                diff.append(c)
    report(not diff, name, "differ: " + ", ".join(diff))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "same-ckpt":
        same_ckpt(sys.argv[2], sys.argv[3], "--require-update" in sys.argv[4:])
    elif cmd == "traj-once":
        traj_once(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "traj-same":
        traj_same(sys.argv[2], sys.argv[3])
    else:
        sys.exit("unknown command " + cmd)
