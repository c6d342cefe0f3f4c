"""traj_check.py — h5py reads a trajectory written by tests/mpi_trajectory.c and checks
the documented layout and every value (recomputed from (step, sample)).

Usage: traj_check.py FILE STEP:WORLD...   (the steps the file must hold, in order, each
with the world size that wrote it). Prints ok / not ok lines. Run with /usr/bin/python3.
"""
import sys

import h5py
import numpy as np


def n_samples(s):
    return 1 if s == 2 else 4 + s % 3


def cot_len(s, k):
    return (s * 7 + k * 3) % 5


def text_of(s, k):
    return ("step %d sample %d" % (s, k) + "!" * (k % 3)).encode()


def shard_owner(k, n, world):
    base, rem = divmod(n, world)
    for r in range(world):
        b = r * base + min(r, rem)
        if b <= k < b + base + (1 if r < rem else 0):
            return r
    raise ValueError


def report(name, good, why=""):
    print(("ok - " if good else "not ok - ") + name + ("" if good else ": " + str(why)))


def ragged(g, name):
    off = g[name + "_offsets"][()]
    vals = g[name][()]
    ok = off[0] == 0 and np.all(np.diff(off) >= 0) and off[-1] == len(vals)
    return off, vals, ok


def main():
    path = sys.argv[1]
    plan = [tuple(int(x) for x in a.split(":")) for a in sys.argv[2:]]
    label = "h5py %s" % path.split("/")[-1]
    with h5py.File(path, "r") as f:
        a = f.attrs
        comp = a["compression"].decode()
        r = f["rollouts"]
        filt = {r[n].compression for n in r}
        consistent = (comp.startswith("deflate") and filt == {"gzip"} and all(r[n].shuffle for n in r)) or (
            comp.startswith("none") and filt == {None})
        report("%s: root attributes; compression attribute '%s' matches the datasets' filters" % (label, comp),
               a["format"] == b"softcot-trajectory" and int(a["format_version"]) == 1
               and a["config"] == b"[train]\nsteps = 7\n" and consistent, (dict(a), filt))
        print("# compression: %s" % comp)

        exp = {k: [] for k in ("step", "sample", "rank", "reward", "tag", "top")}
        exp_tok, exp_topk, exp_text, exp_lc, exp_lt = [], [], [], [], []
        for s, world in plan:
            n = n_samples(s)
            for k in range(n):
                exp["step"].append(s)
                exp["sample"].append(k)
                exp["rank"].append(shard_owner(k, n, world))
                exp["reward"].append(np.float32(s) + np.float32(0.25) * np.float32(k))
                exp["tag"].append(("t%d" % (s * 10 + k)).encode().ljust(8, b"\0"))
                exp["top"].append([s * 100 + k * 3 + j for j in range(3)])
                lc = cot_len(s, k)
                exp_lc.append(lc)
                for j in range(lc):
                    exp_tok.append(s * 1000 + k * 10 + j)
                    exp_topk.append([0.5 * (s + k + j), -float(j)])
                t = text_of(s, k)
                exp_lt.append(len(t))
                exp_text.append(t)
        nrows = len(exp["step"])
        dt = {"step": "<i8", "sample": "<i8", "rank": "<i4", "reward": "<f4", "tag": "|u1", "top": "<i4",
              "cot_tok": "<i4", "topk": "<f4", "text": "|u1", "cot_tok_offsets": "<i8"}
        bad = [n for n, t in dt.items() if r[n].dtype != np.dtype(t)]
        report("%s: dtypes and shapes as documented" % label,
               not bad and r["tag"].shape == (nrows, 8) and r["top"].shape == (nrows, 3)
               and r["topk"].ndim == 2 and r["topk"].shape[1] == 2 and int(r.attrs["nrows"]) == nrows
               and all(len(r[n]) == nrows for n in ("step", "sample", "rank", "reward")) and
               all("doc" in r[n].attrs for n in r), (bad, r["tag"].shape, int(r.attrs["nrows"]), nrows))
        steps_seen = list(r["step"][()])
        once = [s for s, _ in plan]
        report("%s: every step exactly once, in order (%s)" % (label, ",".join(map(str, once))),
               sorted(set(steps_seen)) == once and steps_seen == exp["step"], steps_seen)
        fixed_ok = (np.array_equal(r["sample"][()], exp["sample"]) and np.array_equal(r["rank"][()], exp["rank"])
                    and np.array_equal(r["reward"][()], np.array(exp["reward"], dtype="<f4"))
                    and np.array_equal(r["top"][()], np.array(exp["top"]).reshape(-1, 3))
                    and [bytes(x) for x in r["tag"][()]] == exp["tag"])
        report("%s: fixed columns (sample, writer rank, reward, tag, top) equal the recomputed values" % label,
               fixed_ok, (list(r["sample"][()]), list(r["rank"][()])))
        off, tok, ok1 = ragged(r, "cot_tok")
        off2, topk, ok2 = ragged(r, "topk")
        off3, text, ok3 = ragged(r, "text")
        rows_txt = [bytes(text[off3[i]:off3[i + 1]]) for i in range(nrows)]
        report("%s: ragged columns (offsets, per-position ids, top-k pairs, text bytes)" % label,
               ok1 and ok2 and ok3 and len(off) == nrows + 1 and list(np.diff(off)) == exp_lc
               and np.array_equal(off, off2) and np.array_equal(tok, exp_tok)
               and np.array_equal(topk, np.array(exp_topk, dtype="<f4").reshape(-1, 2))
               and list(np.diff(off3)) == exp_lt and rows_txt == exp_text,
               (list(off), list(tok)[:20], rows_txt[:3]))
        st = f["steps"]
        report("%s: steps table (one row per step from rank 0)" % label,
               list(st["step"][()]) == once and np.array_equal(st["loss"][()], np.array([-s / 8 for s in once], "<f4")),
               list(st["step"][()]))


main()
