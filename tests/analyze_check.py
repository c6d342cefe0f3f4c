#!/usr/bin/python3
"""Independent checks of `softcot analyze` and tools/plot.py output, for tests/test_analyze.sh.

Every number is recomputed here from the HDF5 and JSON files with h5py/numpy/math, without
any of softcot's code, and compared with what analyze printed. Each subcommand prints one
line: "ok: ..." (exit 0) or what differed (exit 1).

  values RUN_DIR BIN1.json BIN4.json BIN1.txt     tables vs recomputed values
  rollout TRAJ STEP IDX ROLLOUT.txt ROLLOUT.json  --rollout vs the stored row
  png MIN_COLOURS FILE...                         valid, plausible, non-blank PNGs
  old TRAJ OUT                                    copy without the columns added later
  foreign OUT                                     an HDF5 file that is not softcot's
  drop TRAJ OUT DATASET                           copy without one dataset
"""
import json
import math
import re
import shutil
import struct
import sys

import h5py
import numpy as np

STEP_COLS = ["reward_mean", "frac_correct", "cot_len", "ans_len", "frac_stop_string", "frac_stop_length",
             "frac_stop_eos", "logp_cot", "logp_ans", "loss", "grad_norm", "lr"]


class Fail(Exception):
    pass


def close(what, got, want, tol):
    if got is None or want is None or not math.isfinite(want):
        if not (got is None and (want is None or not math.isfinite(want))):
            raise Fail(f"{what}: got {got}, want {want}")
        return
    if abs(got - want) > tol * max(1.0, abs(want)):
        raise Fail(f"{what}: got {got!r}, want {want!r} (tolerance {tol})")


def load(traj):
    f = h5py.File(traj, "r")
    s, r = f["steps"], f["rollouts"]
    ns, nr = int(s.attrs["nrows"]), int(r.attrs["nrows"])
    d = {"step": s["step"][:ns]}
    for c in STEP_COLS:
        d["s_" + c] = s[c][:ns].astype(np.float64)
    d["r_step"] = r["step"][:nr]
    d["reward"] = r["reward"][:nr].astype(np.float64)
    d["cot_len"] = r["cot_len"][:nr].astype(np.int64)
    d["cot_stop"] = r["cot_stop"][:nr]
    off = r["entropy_offsets"][: nr + 1]
    d["off"] = off
    d["entropy"] = r["entropy"][: off[-1]].astype(np.float64)
    d["top"] = r["topk_probs"][: off[-1]].astype(np.float64)
    d["mix"] = r["mix_entropy"][: off[-1]].astype(np.float64) if "mix_entropy" in r else None
    d["mode"] = f.attrs["mode"].decode()
    return d


def expected_positions(d, pos_bin):
    """Per-bin means by CoT position: bin p // pos_bin over every (rollout, position)."""
    lens, off = d["cot_len"], d["off"]
    pos = np.arange(off[-1]) - np.repeat(off[:-1], lens)
    steps = np.repeat(d["r_step"], lens)
    first, last = int(d["r_step"][0]), int(d["r_step"][-1])
    span = last - first
    early, late = steps <= first + span // 4, steps >= last - span // 4
    nb = (int(lens.max()) + pos_bin - 1) // pos_bin
    b = pos // pos_bin
    out = {k: [] for k in ("count", "entropy", "entropy_early", "entropy_late", "top1", "top3", "eff_tokens")}
    for i in range(nb):
        m = b == i
        out["count"].append(int(m.sum()))
        out["entropy"].append(d["entropy"][m].mean())
        out["entropy_early"].append(d["entropy"][m & early].mean() if (m & early).any() else None)
        out["entropy_late"].append(d["entropy"][m & late].mean() if (m & late).any() else None)
        out["top1"].append(d["top"][m, 0].mean())
        out["top3"].append(d["top"][m, :3].sum(1).mean())
        out["eff_tokens"].append(np.exp(d["mix"][m]).mean() if d["mix"] is not None else None)
    return out


def pass_at_k(n, c, k):
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def check_values(run_dir, j1_path, j4_path, text_path):
    d = load(f"{run_dir}/trajectories.h5")
    j1, j4 = json.load(open(j1_path)), json.load(open(j4_path))
    run1, run4 = j1["runs"][0], j4["runs"][0]
    t1 = run1["trajectory"]
    n_checked = 0
    # per-step: reward mean recomputed from the rollouts of each step, and the /steps columns
    steps = t1["steps"]
    if steps["first_step"] != [int(x) for x in d["step"]]:
        raise Fail(f"--bin 1 rows {steps['first_step']} != steps {list(d['step'])}")
    for i, st in enumerate(d["step"]):
        rew = d["reward"][d["r_step"] == st]
        close(f"step {st} reward_mean vs rollouts", steps["reward_mean"][i], rew.mean(), 1e-5)
        close(f"step {st} frac_correct vs rollouts", steps["frac_correct"][i], (rew == 100).mean(), 1e-6)
        for c in STEP_COLS:
            close(f"step {st} {c}", steps[c][i], float(d["s_" + c][i]), 1e-6)
            n_checked += 1
    # --bin 4: rows are steps [4b, 4b+3], each value the mean of the steps' values
    s4 = run4["trajectory"]["steps"]
    bins = sorted(set(int(x) // 4 for x in d["step"]))
    if s4["first_step"] != [int(d["step"][(d["step"] // 4) == b][0]) for b in bins]:
        raise Fail(f"--bin 4 rows start at {s4['first_step']}")
    for i, b in enumerate(bins):
        m = (d["step"] // 4) == b
        for c in STEP_COLS:
            v = d["s_" + c][m]
            v = v[np.isfinite(v)]
            close(f"--bin 4 row {i} {c}", s4[c][i], v.mean() if v.size else None, 1e-6)
            n_checked += 1
    # rollout shares and CoT length quantiles (nearest rank)
    ro = t1["rollouts"]
    n = d["reward"].size
    close("reward 100 share", ro["frac_reward"]["100"], (d["reward"] == 100).mean(), 1e-12)
    close("reward 10 share", ro["frac_reward"]["10"], (d["reward"] == 10).mean(), 1e-12)
    close("cot_max share", ro["frac_cot_stop"]["cot_max"], (d["cot_stop"] == 1).mean(), 1e-12)
    srt = np.sort(d["cot_len"])
    if ro["cot_len"]["median"] != srt[math.ceil(n / 2) - 1] or ro["cot_len"]["p90"] != srt[math.ceil(0.9 * n) - 1]:
        raise Fail(f"cot_len quantiles {ro['cot_len']} vs sorted {srt.tolist()}")
    # entropy profile and mixture concentration by CoT position
    exp_pos = expected_positions(d, 8)
    pos = t1["positions"]
    if pos["count"] != exp_pos["count"]:
        raise Fail(f"position counts {pos['count']} != {exp_pos['count']}")
    for key in ("entropy", "entropy_early", "entropy_late", "top1", "top3", "eff_tokens"):
        if len(pos[key]) != len(exp_pos[key]):
            raise Fail(f"{key}: {len(pos[key])} bins, want {len(exp_pos[key])}")
        for b, (got, want) in enumerate(zip(pos[key], exp_pos[key])):
            close(f"position bin {b} {key}", got, want, 1e-5)
            n_checked += 1
    # pass@k from the eval file's per-problem correct counts (math.comb, exact binomials)
    n_pk = 0
    for ev in run1["evals"]:
        src = json.load(open(ev["path"]))
        for name, m in src["modes"].items():
            nn, cs = m["samples_per_problem"], m["per_problem"]["n_correct"]
            for k, got in ev["modes"][name]["pass_at_k"].items():
                want = sum(pass_at_k(nn, c, int(k)) for c in cs) / len(cs)
                close(f"{ev['label']} {name} pass@{k}", got, want, 1e-12)
                n_pk += 1
            if m["sampling"] == "greedy":
                close(f"{name} greedy@1", ev["modes"][name]["greedy_pass_at_1"], float(np.mean(cs)), 1e-12)
    if n_pk == 0:
        raise Fail("no pass@k value was reported")
    # the text tables carry the same numbers at their printed precision
    text = open(text_path).read()
    curve = section(text, "== training curve")
    rows = [l.split() for l in curve[1:] if l.strip()]
    if len(rows) != d["step"].size:
        raise Fail(f"text training curve has {len(rows)} rows, want {d['step'].size}")
    for row, st in zip(rows, d["step"]):
        rew = d["reward"][d["r_step"] == st]
        if row[0] != str(st) or abs(float(row[1]) - rew.mean()) > 0.0051 or abs(float(row[2]) - (rew == 100).mean()) > 0.00051:
            raise Fail(f"text row {row} vs step {st}: reward {rew.mean():.3f}, correct {(rew == 100).mean():.4f}")
    ent = section(text, "== entropy of the next-token")
    erows = [l.split() for l in ent[1:] if l.strip()]
    for b, row in enumerate(erows):
        if int(row[1]) != exp_pos["count"][b] or abs(float(row[2]) - exp_pos["entropy"][b]) > 0.00051:
            raise Fail(f"text entropy row {row} vs count {exp_pos['count'][b]}, mean {exp_pos['entropy'][b]:.4f}")
    pk = section(text, "== pass@k")
    header = pk[0].split()
    for line in pk[1:]:
        cells = line.split()
        if not cells or not cells[-1][0].isdigit() or "sample" not in line:
            continue
        mode = next(c for c in cells if c.endswith("-sample"))
        ev = next(e for e in run1["evals"] if e["label"] == cells[0])
        for k, got in zip(header[-len(ev["modes"][mode]["pass_at_k"]):], cells[-len(ev["modes"][mode]["pass_at_k"]):]):
            want = ev["modes"][mode]["pass_at_k"][k.split("@")[1]]
            if abs(float(got) - want) > 0.00051:
                raise Fail(f"text {cells[0]} {mode} {k} = {got}, want {want:.4f}")
    print(f"ok: {d['step'].size} steps, {n} rollouts, {n_checked} table values and {n_pk} pass@k values match")


def section(text, title):
    lines = text.splitlines()
    for i, l in enumerate(lines):
        if l.startswith(title):
            j = i + 1
            while j < len(lines) and lines[j].startswith("   "):
                j += 1  # the section's explanation lines
            out = []
            while j < len(lines) and lines[j].strip():
                out.append(lines[j])
                j += 1
            return out
    raise Fail(f"no section '{title}' in the text output")


CELL = re.compile(r'(-?\d+)(?: "((?:[^"\\]|\\.)*)")?(?: (\d\.\d{3}))?')


def check_rollout(traj, step, idx, text_path, json_path):
    f = h5py.File(traj, "r")
    r = f["rollouts"]
    rows = np.nonzero(r["step"][()] == step)[0]
    row = int(rows[idx])

    def rag(name):
        o = r[name + "_offsets"][row:row + 2]
        return r[name][o[0]:o[1]]

    cot_text, ans_text = rag("cot_text").tobytes(), rag("answer_text").tobytes()
    shadow, ids, probs = rag("shadow"), rag("topk_ids"), rag("topk_probs")
    ans_tok, prompt = rag("answer_tokens"), rag("prompt_tokens")
    raw = open(text_path, "rb").read()
    # stored text, byte for byte, between its marker line and the next marker
    for title, want in ((b"--- CoT text", cot_text), (b"--- answer text", ans_text)):
        i = raw.index(title)
        body = raw[raw.index(b"\n", i) + 1:]
        if not body.startswith(want + b"\n---"):
            raise Fail(f"{title.decode()} differs: got {body[:len(want) + 4]!r}, want {want!r}")
    lines = raw.decode("utf-8", "replace").splitlines()
    at = lines.index(next(l for l in lines if l.startswith("--- prompt:")))
    if [int(x) for x in lines[at + 1].split()] != prompt.tolist():
        raise Fail(f"prompt ids {lines[at + 1]!r} != {prompt.tolist()}")
    at = lines.index(next(l for l in lines if l.startswith("--- answer tokens")))
    got_ans = [int(m.group(1)) for m in re.finditer(r'(?:^|  )(-?\d+)(?= "|$|  )', lines[at + 1])]
    if got_ans != ans_tok.tolist():
        raise Fail(f"answer tokens {lines[at + 1]!r} != {ans_tok.tolist()}")
    # the position grid: cells separated by " | "; collect shadow and top-k rows in order
    grid = {}
    for l in lines:
        name, sep, rest = l.partition(" | ")
        if sep and name.strip() in ("pos", "shadow", "top-1", "top-2", "top-3"):
            grid.setdefault(name.strip(), []).extend(c.strip() for c in rest.split(" | "))
    if [int(c) for c in grid["pos"]] != list(range(len(shadow))):
        raise Fail(f"grid positions {grid['pos']}")
    if [int(CELL.match(c).group(1)) for c in grid["shadow"]] != shadow.tolist():
        raise Fail("shadow ids in the grid differ from /rollouts/shadow")
    for k in range(3):
        cells = [CELL.match(c) for c in grid[f"top-{k + 1}"]]
        if [int(c.group(1)) for c in cells] != ids[:, k].tolist():
            raise Fail(f"top-{k + 1} ids differ")
        if any(abs(float(c.group(3)) - p) > 0.00051 for c, p in zip(cells, probs[:, k])):
            raise Fail(f"top-{k + 1} weights differ")
    # --json: every array exactly as stored
    j = json.load(open(json_path))
    exact = {"shadow": shadow.tolist(), "topk_ids": ids.tolist(), "answer_tokens": ans_tok.tolist(),
             "prompt_tokens": prompt.tolist(), "reward": float(r["reward"][row]), "cot_len": int(r["cot_len"][row])}
    for key, want in exact.items():
        if j[key] != want:
            raise Fail(f"--json {key}: {j[key]} != {want}")
    # float32 values survive the JSON round trip exactly (>= 9 significant digits)
    for key, want in (("topk_probs", probs), ("entropy", rag("entropy")), ("mix_entropy", rag("mix_entropy"))):
        if not np.array_equal(np.asarray(j[key], dtype=np.float32), want):
            raise Fail(f"--json {key} differs from the stored float32 values")
    if j["cot_text"].encode() != cot_text or j["answer_text"].encode() != ans_text:
        raise Fail("--json text differs")
    print(f"ok: step {step} rollout {idx}: {len(shadow)} CoT positions, {len(prompt)} prompt and {len(ans_tok)} answer tokens exact")


def check_png(min_colours, paths):
    import matplotlib.image as mpimg
    for p in paths:
        data = open(p, "rb").read()
        if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
            raise Fail(f"{p}: not a PNG")
        w, h = struct.unpack(">II", data[16:24])
        if not (300 <= w <= 3000 and 200 <= h <= 2000) or not (8000 <= len(data) <= 600000):
            raise Fail(f"{p}: implausible {w}x{h}, {len(data)} bytes")
        img = mpimg.imread(p)
        rgb = (img[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
        colours = np.unique(rgb, axis=0)
        # saturated colours: the lines, not the grey axes and anti-aliasing of text
        sat = colours[(colours.max(1).astype(int) - colours.min(1)) > 60]
        hues = {tuple((c // 32).tolist()) for c in sat}
        if len(colours) < 20 or len(hues) < min_colours:
            raise Fail(f"{p}: {len(colours)} colours, {len(hues)} distinct saturated hues (want >= {min_colours}): blank?")
    print(f"ok: {len(paths)} PNGs valid, plausible sizes, several colours")


def make_old(traj, out):
    shutil.copy(traj, out)
    with h5py.File(out, "a") as f:
        for name in ("mix_entropy", "mix_entropy_offsets", "prompt_tokens", "prompt_tokens_offsets"):
            del f["rollouts"][name]
    print("ok")


def make_foreign(out):
    with h5py.File(out, "w") as f:
        f["steps/step"] = np.arange(3)
        f.attrs["format"] = b"someone-elses-format"
    print("ok")


def make_drop(traj, out, name):
    shutil.copy(traj, out)
    with h5py.File(out, "a") as f:
        del f[name]
    print("ok")


def main(a):
    try:
        cmd = a[0]
        if cmd == "values":
            check_values(*a[1:5])
        elif cmd == "rollout":
            check_rollout(a[1], int(a[2]), int(a[3]), a[4], a[5])
        elif cmd == "png":
            check_png(int(a[1]), a[2:])
        elif cmd == "old":
            make_old(a[1], a[2])
        elif cmd == "foreign":
            make_foreign(a[1])
        elif cmd == "drop":
            make_drop(a[1], a[2], a[3])
        else:
            raise Fail(f"unknown subcommand {cmd}")
    except Fail as e:
        print(f"mismatch: {e}")
        return 1
    except Exception as e:  # a crash is a failure with its reason on the line
        print(f"error: {type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
