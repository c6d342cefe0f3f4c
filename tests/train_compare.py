"""train_compare.py — compares softcot training runs for the restart and rank tests.

Usage (run with /usr/bin/python3):
  train_compare.py weights RUN_A RUN_B [REL_TOL]
      final/model.safetensors of both runs: bit-identical (REL_TOL omitted) or every
      tensor within REL_TOL relative L2 error
  train_compare.py state RUN_A RUN_B
      the newest checkpoint of both runs: params, adam_m, adam_v, data order bit-identical,
      and the step / cursor / seed attributes equal
  train_compare.py gradient RUN_A RUN_B REL_TOL
      checkpoints/ckpt_1.h5 of both runs: Adam's first moment after step 1, which is
      (1 - beta1) times the step's summed gradient, every tensor within REL_TOL relative L2
  train_compare.py rollouts RUN_A RUN_B
      trajectories: identical rollout tokens (shadow, answer), rewards, and per-step rows
  train_compare.py steps RUN STEPS
      trajectories: /steps and /rollouts cover steps 0..STEPS-1, each exactly once
      (every step's rollouts appear once per (prompt, sample))
Prints one line and exits 0 if the check holds, 1 otherwise.
"""
import json
import os
import struct
import sys

import h5py
import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=np.float32).reshape(info["shape"])
    return out


def newest_checkpoint(run):
    d = os.path.join(run, "checkpoints")
    with open(os.path.join(d, "latest")) as f:
        return os.path.join(d, f.read().strip())


def weights(a, b, tol=None):
    fa, fb = (os.path.join(r, "final", "model.safetensors") for r in (a, b))
    if tol is None:
        same = open(fa, "rb").read() == open(fb, "rb").read()
        return same, "final weights bit-identical" if same else "final weights differ"
    ta, tb = read_safetensors(fa), read_safetensors(fb)
    worst, name = 0.0, ""
    for k in ta:
        x, y = ta[k].astype(np.float64), tb[k].astype(np.float64)
        den = np.linalg.norm(y)
        e = np.linalg.norm(x - y) / den if den > 0 else np.linalg.norm(x - y)
        if e > worst:
            worst, name = e, k
    ok = worst <= tol and set(ta) == set(tb)
    return ok, "final weights within %g (worst %.3g at %s)" % (tol, worst, name)


def state(a, b):
    pa, pb = newest_checkpoint(a), newest_checkpoint(b)
    with h5py.File(pa, "r") as fa, h5py.File(pb, "r") as fb:
        for attr in ("step", "cursor", "seed"):
            if fa.attrs[attr] != fb.attrs[attr]:
                return False, "%s differs: %s vs %s" % (attr, fa.attrs[attr], fb.attrs[attr])
        names = []
        fa.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            if n not in fb or fa[n].shape != fb[n].shape or not np.array_equal(fa[n][()], fb[n][()]):
                return False, "dataset %s differs between %s and %s" % (n, pa, pb)
        return True, "checkpoint state bit-identical (%d datasets, step %d)" % (len(names), fa.attrs["step"])


def gradient(a, b, tol):
    pa, pb = (os.path.join(r, "checkpoints", "ckpt_1.h5") for r in (a, b))
    with h5py.File(pa, "r") as fa, h5py.File(pb, "r") as fb:
        if fa.attrs["step"] != 1 or fb.attrs["step"] != 1:
            return False, "ckpt_1.h5 is not the state after step 1"
        worst, name = 0.0, ""
        for k in fa["adam_m"]:
            if k not in fb["adam_m"]:
                return False, "adam_m/%s missing from %s" % (k, pb)
            x, y = fa["adam_m/" + k][()].astype(np.float64), fb["adam_m/" + k][()].astype(np.float64)
            den = np.linalg.norm(y)
            e = np.linalg.norm(x - y) / den if den > 0 else np.linalg.norm(x - y)
            if e > worst:
                worst, name = e, k
    return worst <= tol, "step-1 gradient within %g (worst %.3g at %s)" % (tol, worst, name)


def rollouts(a, b):
    fa = h5py.File(os.path.join(a, "trajectories.h5"), "r")
    fb = h5py.File(os.path.join(b, "trajectories.h5"), "r")
    for col in ("step", "prompt_index", "sample_index", "reward", "cot_len", "ans_len", "shadow",
                "answer_tokens", "cot_stop", "ans_stop"):
        x, y = fa["rollouts/" + col][()], fb["rollouts/" + col][()]
        if x.shape != y.shape or not np.array_equal(x, y):
            return False, "rollouts/%s differs" % col
    n = fa["rollouts/step"].shape[0]
    return True, "identical rollouts (%d rows: tokens, lengths, rewards)" % n


def steps(run, n_steps):
    f = h5py.File(os.path.join(run, "trajectories.h5"), "r")
    s = f["steps/step"][()]
    if list(s) != list(range(n_steps)):
        return False, "steps/step is %s, expected 0..%d" % (list(s), n_steps - 1)
    r = f["rollouts/step"][()]
    keys = list(zip(r, f["rollouts/prompt_index"][()], f["rollouts/sample_index"][()]))
    if len(set(keys)) != len(keys):
        return False, "a rollout appears twice"
    per = np.bincount(r, minlength=n_steps)
    if len(per) != n_steps or len(set(per.tolist())) != 1:
        return False, "rollouts per step uneven: %s" % per.tolist()
    return True, "every step 0..%d appears exactly once (%d rollouts each)" % (n_steps - 1, per[0])


def main(argv):
    cmd = argv[1]
    if cmd == "weights":
        ok, msg = weights(argv[2], argv[3], float(argv[4]) if len(argv) > 4 else None)
    elif cmd == "state":
        ok, msg = state(argv[2], argv[3])
    elif cmd == "gradient":
        ok, msg = gradient(argv[2], argv[3], float(argv[4]))
    elif cmd == "rollouts":
        ok, msg = rollouts(argv[2], argv[3])
    elif cmd == "steps":
        ok, msg = steps(argv[2], int(argv[3]))
    else:
        print("train_compare.py: unknown check %s" % cmd)
        return 2
    print(msg)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
