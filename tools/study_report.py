#!/usr/bin/env python3
"""Aggregates a study directory written by tools/study.mk into its report (docs/results.md).

usage: study_report.py STUDY_DIR [--no-plots]

Reads STUDY_DIR/eval/<cell>.json (softcot-eval/1, docs/eval.md; cells "base" and
"<mode>-s<seed>"), STUDY_DIR/train/<cell>/trajectories.h5 (docs/hdf5-schema.md) and
STUDY_DIR/cmd/<cell>.sh. Writes, each atomically:
  STUDY_DIR/report.md      the tables (mean ± sd over seeds), the verdicts, every cell's command
  STUDY_DIR/results.json   the same numbers, machine-readable ("schema": "softcot-study/1")
  STUDY_DIR/img/*.png      pass@k curves with seed bands, entropy by CoT position, OOD NLL bars,
                           training correct rate
Exit 2 when the directory holds no complete evaluation of the base model or of a trained cell.
"""
import glob
import json
import math
import os
import re
import sys

TRAININGS = ["base", "hard", "soft", "fuzzy"]
MODES = ["hard-greedy", "hard-sample", "soft-greedy", "soft-sample", "fuzzy-greedy", "fuzzy-sample"]
SAMPLE_MODES = [m for m in MODES if m.endswith("-sample")]
# A finding is settled when the difference is larger than this many standard errors.
Z = 2.0


class StudyError(Exception):
    pass


# ---- loading -------------------------------------------------------------------------------

def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_evals(study):
    """{training: {seed: eval dict}}; the base model has the single seed None."""
    evals = {t: {} for t in TRAININGS}
    for path in sorted(glob.glob(os.path.join(study, "eval", "*.json"))):
        cell = os.path.basename(path)[:-5]
        r = load_json(path)
        if not r.get("complete"):
            raise StudyError("%s: evaluation incomplete (\"complete\": false); rerun make study" % path)
        if cell == "base":
            evals["base"][None] = r
            continue
        m = re.fullmatch(r"(hard|soft|fuzzy)-s(\d+)", cell)
        if not m:
            raise StudyError("%s: not a study cell name (base or <mode>-s<seed>)" % path)
        evals[m.group(1)][int(m.group(2))] = r
    if not evals["base"]:
        raise StudyError("%s/eval/base.json: missing; run make study" % study)
    if not any(evals[t] for t in TRAININGS[1:]):
        raise StudyError("%s/eval: no trained cell evaluated; run make study" % study)
    return evals


def pass1(r, mode):
    m = r["modes"][mode]
    return m["greedy_pass_at_1"] if m["sampling"] == "greedy" else m["sample_pass_at_1"]


def passk(r, mode, k):
    return r["modes"][mode]["pass_at_k"].get(str(k))


def ood_nll(r):
    return r["ood"][0]["mean_nll_per_token_correct"] if r.get("ood") else None


def ood_acc(r):
    return r["ood"][0]["accuracy"] if r.get("ood") else None


# ---- statistics ----------------------------------------------------------------------------

def mean_sd(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, 0
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd, len(xs)


def stat(evals, training, fn):
    m, sd, n = mean_sd([fn(r) for r in evals[training].values()])
    return {"mean": m, "sd": sd, "n": n, "se": sd / math.sqrt(n) if n else None,
            "trained": training != "base"}


def diff(a, b):
    """a - b for independent means, with its standard error (n: the fewer seeds of the two
    trained sides; the base model is one deterministic evaluation and does not limit it)."""
    if a["mean"] is None or b["mean"] is None:
        return None
    n = min(x["n"] for x in (a, b) if x.get("trained", True))
    return {"diff": a["mean"] - b["mean"], "se": math.sqrt(a["se"] ** 2 + b["se"] ** 2), "n": n}


def paired(evals, training, fa, fb):
    """mean over seeds of fa - fb on the same model, with its standard error."""
    m, sd, n = mean_sd([fa(r) - fb(r) for r in evals[training].values()])
    return None if m is None else {"diff": m, "se": sd / math.sqrt(n) if n else 0.0, "n": n}


# ---- the table -----------------------------------------------------------------------------

def table(evals):
    rows = {}
    for t in TRAININGS:
        if not evals[t]:
            continue
        row = {"n_seeds": len(evals[t]), "seeds": sorted(s for s in evals[t] if s is not None)}
        for mode in MODES:
            row[mode] = {"pass@1": stat(evals, t, lambda r, m=mode: pass1(r, m))}
            if mode in SAMPLE_MODES:
                row[mode]["pass@32"] = stat(evals, t, lambda r, m=mode: passk(r, m, 32))
            row[mode]["cot_len"] = stat(evals, t, lambda r, m=mode: r["modes"][m]["mean_cot_len"])
        row["ood_nll"] = stat(evals, t, ood_nll)
        row["ood_acc"] = stat(evals, t, ood_acc)
        rows[t] = row
    base_nll = rows["base"]["ood_nll"]["mean"]
    for t, row in rows.items():
        if base_nll is not None and row["ood_nll"]["mean"] is not None:
            row["ood_nll_change"] = {**row["ood_nll"], "mean": row["ood_nll"]["mean"] - base_nll}
    return rows


def pct(s):
    if s is None or s["mean"] is None:
        return "—"
    if s["n"] > 1:
        return "%.1f ± %.1f" % (100 * s["mean"], 100 * s["sd"])
    return "%.1f" % (100 * s["mean"])


def nats(s, signed=False):
    if s is None or s["mean"] is None:
        return "—"
    f = "%+.3f" if signed else "%.3f"
    return (f % s["mean"]) + (" ± %.3f" % s["sd"] if s["n"] > 1 else "")


def table_md(rows):
    out = ["| training | seeds | " + " | ".join(MODES) + " |",
           "| --- | --- |" + " --- |" * len(MODES)]
    for t, row in rows.items():
        out.append("| %s | %d | " % (t, row["n_seeds"]) + " | ".join(pct(row[m]["pass@1"]) for m in MODES) + " |")
    out += ["", "pass@32 (32 samples per problem, unbiased estimator), and the out-of-domain set:", "",
            "| training | " + " | ".join(SAMPLE_MODES) + " | OOD NLL/token | OOD NLL change | OOD accuracy |",
            "| --- |" + " --- |" * (len(SAMPLE_MODES) + 3)]
    for t, row in rows.items():
        out.append("| %s | " % t + " | ".join(pct(row[m]["pass@32"]) for m in SAMPLE_MODES) +
                   " | %s | %s | %s |" % (nats(row["ood_nll"]), nats(row.get("ood_nll_change"), True),
                                          pct(row["ood_acc"])))
    out += ["", "Mean CoT length (tokens) by inference mode:", "",
            "| training | " + " | ".join(MODES) + " |", "| --- |" + " --- |" * len(MODES)]
    for t, row in rows.items():
        out.append("| %s | " % t + " | ".join("%.1f" % row[m]["cot_len"]["mean"] for m in MODES) + " |")
    return "\n".join(out)


# ---- the verdicts --------------------------------------------------------------------------

def settle(d, higher_is_paper):
    """reproduced / not reproduced / inconclusive for a difference the paper predicts > 0
    (higher_is_paper) or predicts to be no worse than zero (matching)."""
    if d is None:
        return "not measured"
    if d["n"] < 2:
        return "inconclusive (one seed: no standard error)"
    lo, hi = d["diff"] - Z * d["se"], d["diff"] + Z * d["se"]
    if higher_is_paper:
        return "reproduced" if lo > 0 else ("not reproduced (opposite)" if hi < 0 else "inconclusive")
    return "not reproduced" if hi < 0 else "reproduced"


def fmt_diff(d, scale=100.0, unit="points"):
    if d is None:
        return "—"
    return "%+.1f ± %.1f %s" % (scale * d["diff"], scale * d["se"], unit) if unit == "points" else \
        "%+.3f ± %.3f %s" % (d["diff"], d["se"], unit)


def verdicts(evals, rows):
    def s(t, mode, key):
        return rows[t][mode][key] if t in rows else {"mean": None}
    found = []
    for t in ("soft", "fuzzy"):
        if t not in rows or "hard" not in rows:
            continue
        for mode in ("hard-sample", "hard-greedy"):
            d = diff(s(t, mode, "pass@1"), s("hard", mode, "pass@1"))
            found.append({"finding": "%s training matches hard training at pass@1 (%s)" % (t, mode),
                          "effect": d, "verdict": settle(d, False),
                          "rule": "reproduced unless %s - hard < 0 by more than %g SE" % (t, Z)})
        d = diff(s(t, "hard-sample", "pass@32"), s("hard", "hard-sample", "pass@32"))
        found.append({"finding": "%s training beats hard training at pass@32 (hard-sample)" % t,
                      "effect": d, "verdict": settle(d, True),
                      "rule": "reproduced when %s - hard > %g SE; opposite when < -%g SE" % (t, Z, Z)})
        if "ood_nll_change" in rows[t] and "ood_nll_change" in rows["hard"]:
            d = diff(rows["hard"]["ood_nll_change"], rows[t]["ood_nll_change"])
            found.append({"finding": "%s training keeps the out-of-domain NLL better than hard training" % t,
                          "effect": d, "unit": "nats/token", "verdict": settle(d, True),
                          "rule": "effect = NLL change of hard minus that of %s; reproduced when > %g SE" % (t, Z)})
    for t in ("soft", "fuzzy"):
        if t not in rows:
            continue
        for other in ("soft-sample", "fuzzy-sample"):
            d = paired(evals, t, lambda r: pass1(r, "hard-sample"), lambda r, o=other: pass1(r, o))
            found.append({"finding": "a %s-trained model decodes better with hard tokens than %s (pass@1)" % (t, other),
                          "effect": d, "verdict": settle(d, True),
                          "rule": "paired over seeds: hard-sample - %s; reproduced when > %g SE" % (other, Z)})
    for t in ("hard", "soft", "fuzzy"):
        if t not in rows:
            continue
        d = diff(s(t, "hard-sample", "pass@32"), s("base", "hard-sample", "pass@32"))
        found.append({"finding": "%s training changes hard-sample pass@32 from the base model" % t,
                      "effect": d, "verdict": "measured", "rule": "effect only"})
    return found


def verdicts_md(found):
    out = ["| finding | effect (mean ± SE) | verdict |", "| --- | --- | --- |"]
    for f in found:
        unit = f.get("unit", "points")
        out.append("| %s | %s | %s |" % (f["finding"], fmt_diff(f["effect"], unit=unit), f["verdict"]))
    return "\n".join(out)


# ---- figures -------------------------------------------------------------------------------

COLORS = {"base": "black", "hard": "tab:red", "soft": "tab:blue", "fuzzy": "tab:green"}


def band(ax, xs, curves, color, label):
    import numpy as np
    a = np.array(curves, dtype=float)
    m = np.nanmean(a, axis=0)
    ax.plot(xs, m, color=color, label=label, marker="o", ms=3)
    if len(curves) > 1:
        ax.fill_between(xs, np.nanmin(a, axis=0), np.nanmax(a, axis=0), color=color, alpha=0.2)


def plot_passk(evals, img):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for ax, mode in zip(axes, SAMPLE_MODES):
        for t in TRAININGS:
            if not evals[t]:
                continue
            ks = sorted(int(k) for k in next(iter(evals[t].values()))["modes"][mode]["pass_at_k"])
            curves = [[r["modes"][mode]["pass_at_k"][str(k)] * 100 for k in ks] for r in evals[t].values()]
            band(ax, ks, curves, COLORS[t], "%s (%d)" % (t, len(curves)))
        ax.set_xscale("log", base=2)
        ax.set_title("%s inference" % mode)
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("pass@k (%)")
    axes[0].legend(title="RL training (seeds)")
    fig.suptitle("pass@k on the held-out problems; band = min..max over seeds")
    save(fig, os.path.join(img, "study_passk.png"))


def plot_entropy(evals, img):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for ax, mode in zip(axes, SAMPLE_MODES):
        for t in TRAININGS:
            if not evals[t]:
                continue
            profs = [r["modes"][mode]["entropy_profile"] for r in evals[t].values()]
            nb = min(len(p["mean"]) for p in profs)
            xs = [profs[0]["bin"] * (b + 0.5) for b in range(nb)]
            curves = [[float("nan") if v is None else v for v in p["mean"][:nb]] for p in profs]
            band(ax, xs, curves, COLORS[t], t)
        ax.set_title("%s inference" % mode)
        ax.set_xlabel("CoT position")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("entropy of softmax(z) (nats)")
    axes[0].legend(title="RL training")
    fig.suptitle("Entropy of the next-token distribution by CoT position; band = min..max over seeds")
    save(fig, os.path.join(img, "study_entropy.png"))


def plot_ood(rows, img):
    import matplotlib.pyplot as plt
    ts = [t for t in ("hard", "soft", "fuzzy") if t in rows and "ood_nll_change" in rows[t]]
    if not ts:
        return
    fig, ax = plt.subplots(figsize=(5, 4))
    ch = [rows[t]["ood_nll_change"] for t in ts]
    ax.bar(ts, [c["mean"] for c in ch], yerr=[c["sd"] for c in ch], color=[COLORS[t] for t in ts], capsize=6)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("OOD NLL/token change from base (nats)")
    ax.set_title("Out-of-domain NLL after RL (± sd over seeds)")
    save(fig, os.path.join(img, "study_ood.png"))


def plot_training(study, img):
    try:
        import h5py
    except ImportError:
        return
    import matplotlib.pyplot as plt
    import numpy as np
    fig, ax = plt.subplots(figsize=(7, 4))
    for t in ("hard", "soft", "fuzzy"):
        curves = []
        for path in sorted(glob.glob(os.path.join(study, "train", "%s-s*" % t, "trajectories.h5"))):
            with h5py.File(path, "r") as f:
                c = np.asarray(f["steps/frac_correct"][:], dtype=float)
            w = max(1, len(c) // 30)
            curves.append(np.convolve(c, np.ones(w) / w, mode="valid") * 100)
        if curves:
            n = min(len(c) for c in curves)
            band(ax, np.arange(n), [c[:n] for c in curves], COLORS[t], t)
    ax.set_xlabel("step")
    ax.set_ylabel("training rollouts correct (%), moving mean")
    ax.set_title("Training correct rate; band = min..max over seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, os.path.join(img, "study_training.png"))


def save(fig, path):
    tmp = path + ".tmp.png"
    fig.tight_layout()
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    import matplotlib.pyplot as plt
    plt.close(fig)


# ---- the report ----------------------------------------------------------------------------

def commands(study):
    out = []
    for path in sorted(glob.glob(os.path.join(study, "cmd", "*.sh"))):
        with open(path, encoding="utf-8") as f:
            lines = [l for l in f.read().splitlines() if l and not l.startswith("#") and l != "set -e"]
        out.append((os.path.basename(path)[:-3], " ".join(lines)))
    return out


def settings_line(evals):
    r = evals["base"][None]
    s = r["settings"]
    return ("%d held-out problems (synthetic test split), %d samples per problem in the sample modes, "
            "cot_max %d, ans_max %d, τ soft %s, τ fuzzy %s, γ %s, evaluation seed %d; OOD: %d rows" %
            (r["data"]["n_problems"], s["samples"], s["cot_max"], s["ans_max"], s["tau_soft"],
             s["tau_fuzzy"], s["noise_gamma"], s["seed"], r["ood"][0]["n_items"] if r.get("ood") else 0))


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def report(study, plots):
    evals = load_evals(study)
    rows = table(evals)
    found = verdicts(evals, rows)
    img = os.path.join(study, "img")
    if plots:
        import matplotlib
        matplotlib.use("Agg")
        os.makedirs(img, exist_ok=True)
        plot_passk(evals, img)
        plot_entropy(evals, img)
        plot_ood(rows, img)
        plot_training(study, img)
    md = ["# Study report: %s" % study, "",
          "Evaluation: " + settings_line(evals) + ".", "",
          "pass@1 (%), mean ± sd over seeds, by RL training (rows) and inference mode (columns):", "",
          table_md(rows), "",
          "## Verdicts", "",
          "SE: standard error of the mean over seeds (independent for two trainings, paired for two "
          "inference modes of one model); a difference is settled beyond %g SE." % Z, "",
          verdicts_md(found), "",
          "## Cells", "", "Each cell reruns alone with `sh %s/cmd/<cell>.sh`:" % study, ""]
    md += ["    %-16s %s" % c for c in commands(study)]
    write_atomic(os.path.join(study, "report.md"), "\n".join(md) + "\n")
    write_atomic(os.path.join(study, "results.json"), json.dumps(
        {"schema": "softcot-study/1", "table": rows, "verdicts": found,
         "settings": evals["base"][None]["settings"]}, indent=1, default=str) + "\n")
    print("\n".join(md[:md.index("## Cells")]))
    print("study_report.py: wrote %s/report.md, results.json%s" % (study, ", img/*.png" if plots else ""))


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1 or any(a not in ("--no-plots",) for a in argv[1:] if a.startswith("--")):
        sys.stderr.write("usage: study_report.py STUDY_DIR [--no-plots]\n")
        return 2
    try:
        report(args[0], "--no-plots" not in argv)
    except StudyError as e:
        sys.stderr.write("study_report.py: %s\n" % e)
        return 2
    except (OSError, ValueError, KeyError) as e:
        sys.stderr.write("study_report.py: %s: %s\n" % (args[0], e))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
