#!/usr/bin/python3
"""Figures of softcot runs from their trajectory (HDF5) and eval results (JSON) files.

    /usr/bin/python3 tools/plot.py [--out DIR] [--smooth N] RUN [RUN ...]
    make plots RUN="outputs/hard outputs/soft outputs/fuzzy" [PLOTS=DIR]

Each RUN is one run: a directory (softcot train's --out, or make run's output folder:
DIR/trajectories.h5 or DIR/run/trajectories.h5, plus every softcot eval JSON file in DIR)
or a single .h5 trajectory / eval .json file. Writes PNG files to --out (default:
RUN/plots for a single run, ./plots otherwise), each atomically (temporary file, then
rename), so a reader never sees half a figure:

  reward.png    reward and fraction correct vs training step, smoothed, one line per run
  passk.png     pass@k vs k (log x) per train x inference mode (the paper's Fig. 3)
  entropy.png   entropy of softmax(z) vs CoT position per mode (the paper's Fig. 4)
  cot_len.png   histogram of CoT lengths per run, first vs last quarter of the steps
  mixture.png   soft/fuzzy runs: mean top-1 mixture weight and effective number of tokens
                exp(H) vs CoT position

Figures whose data no run has (no eval file: no passk.png) are skipped with a note on
stderr. Definitions of every quantity: docs/analysis.md. Exit status 0; 2 for bad
arguments or an unreadable, foreign or truncated file (one line naming it).
Uses only h5py, numpy and matplotlib (Agg backend, default style: nothing is fetched).
"""
import argparse
import json
import os
import sys

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

try:
    import h5py
except ImportError:  # pragma: no cover - reported below
    h5py = None

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Per-position columns are read this many CoT positions at a time, so memory stays
# bounded for long runs.
BLOCK = 1 << 21
# Positions reached by fewer rollouts than this share of the most-reached position are not
# drawn: a mean over a handful of long CoTs is noise that dominates the y range.
MIN_SHARE = 0.01


class InputError(Exception):
    """Bad input: reported as one line, exit status 2."""


# ---------------------------------------------------------------- reading


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def config_value(config, key):
    for line in config.splitlines():
        k, sep, v = line.partition("=")
        if sep and k.strip() == key:
            v = v.strip()
            return v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v
    return None


def need(group, name, path):
    if name not in group:
        raise InputError(f"{path}: missing dataset {group.name.rstrip('/')}/{name}")
    return group[name]


class Trajectory:
    """The parts of OUT/trajectories.h5 the figures use (docs/hdf5-schema.md)."""

    def __init__(self, path):
        self.path = path
        try:
            f = h5py.File(path, "r", locking=False)
        except OSError as e:
            raise InputError(f"{path}: cannot open as HDF5 (truncated or corrupted?): {e}") from None
        with f:
            if text(f.attrs.get("format", b"")) != "softcot-trajectory":
                raise InputError(f"{path}: not a softcot trajectory file (root attribute format)")
            self.mode = text(f.attrs["mode"])
            self.config = text(f.attrs.get("config", b""))
            steps = need(f, "steps", path)
            n = int(steps.attrs["nrows"])  # committed rows: a writer may be mid-append
            self.step = need(steps, "step", path)[:n]
            self.reward = need(steps, "reward_mean", path)[:n]
            self.correct = need(steps, "frac_correct", path)[:n]
            r = need(f, "rollouts", path)
            m = int(r.attrs["nrows"])
            self.r_step = need(r, "step", path)[:m]
            self.cot_len = need(r, "cot_len", path)[:m].astype(np.int64)
            off = need(r, "entropy_offsets", path)[: m + 1]
            if m and (off[0] != 0 or np.any(np.diff(off) != self.cot_len)):
                raise InputError(f"{path}: /rollouts/entropy_offsets disagree with cot_len (corrupted)")
            self.has_mix = "mix_entropy" in r
            span = int(self.r_step[-1] - self.r_step[0]) if m else 0
            self.early_max = int(self.r_step[0]) + span // 4 if m else 0
            self.late_min = int(self.r_step[-1]) - span // 4 if m else 0
            maxlen = int(self.cot_len.max()) if m else 0
            # per-position sums: entropy (all / late), top-1 weight, exp(mixture entropy)
            self.pos_count = np.zeros(maxlen)
            self.pos_late = np.zeros(maxlen)
            self.ent = np.zeros(maxlen)
            self.ent_late = np.zeros(maxlen)
            self.top1 = np.zeros(maxlen)
            self.eff = np.zeros(maxlen)
            ent, probs = need(r, "entropy", path), need(r, "topk_probs", path)
            mix = r["mix_entropy"] if self.has_mix else None
            total = int(off[-1]) if m else 0
            if ent.shape[0] < total or probs.shape[0] < total:
                raise InputError(f"{path}: /rollouts per-position datasets are shorter than their offsets (truncated?)")
            row = 0
            while row < m:
                end = int(np.searchsorted(off, off[row] + BLOCK, side="right")) - 1
                end = max(end, row + 1)
                end = min(end, m)
                a, b = int(off[row]), int(off[end])
                lens = self.cot_len[row:end]
                pos = np.arange(b - a) - np.repeat(off[row:end] - a, lens)
                late = np.repeat(self.r_step[row:end] >= self.late_min, lens)
                e = ent[a:b].astype(np.float64)
                np.add.at(self.pos_count, pos, 1)
                np.add.at(self.ent, pos, e)
                np.add.at(self.pos_late, pos[late], 1)
                np.add.at(self.ent_late, pos[late], e[late])
                np.add.at(self.top1, pos, probs[a:b, 0].astype(np.float64))
                if mix is not None:
                    np.add.at(self.eff, pos, np.exp(mix[a:b].astype(np.float64)))
                row = end


class EvalResults:
    def __init__(self, path):
        self.path = path
        try:
            with open(path, encoding="utf-8") as fp:
                d = json.load(fp)
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: not a readable JSON file: {e}") from None
        if not isinstance(d, dict) or not str(d.get("schema", "")).startswith("softcot-eval/"):
            raise InputError(f'{path}: not a softcot eval results file (no "schema": "softcot-eval/1")')
        self.stem = os.path.splitext(os.path.basename(path))[0]
        self.model_dir = (d.get("model") or {}).get("dir", "")
        self.modes = d.get("modes", {})
        for name, m in self.modes.items():
            for key in ("samples_per_problem", "per_problem", "entropy_profile", "sampling"):
                if key not in m:
                    raise InputError(f"{path}: modes.{name}.{key}: missing")


def pass_at_k(n, c, k):
    """Unbiased estimator 1 - C(n-c, k)/C(n, k), in the product form of src/rl/passk.c."""
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


class Run:
    def __init__(self, arg):
        self.arg = arg
        self.traj = None
        self.evals = []
        if os.path.isdir(arg):
            for cand in (os.path.join(arg, "trajectories.h5"), os.path.join(arg, "run", "trajectories.h5")):
                if os.path.isfile(cand):
                    self.traj = Trajectory(cand)
                    break
            for name in sorted(os.listdir(arg)):
                p = os.path.join(arg, name)
                if name.endswith(".json") and os.path.isfile(p):
                    try:
                        self.evals.append(EvalResults(p))
                    except InputError:
                        pass  # other JSON files (configs) share the directory
            if self.traj is None and not self.evals:
                raise InputError(f"{arg}: no trajectories.h5 (or run/trajectories.h5) and no softcot eval results (*.json)")
        elif os.path.isfile(arg):
            with open(arg, "rb") as fp:
                head = fp.read(8)
            if head == HDF5_SIGNATURE:
                self.traj = Trajectory(arg)
            else:
                self.evals.append(EvalResults(arg))
        else:
            raise InputError(f"{arg}: no such file or directory")
        self.label = self.traj.mode if self.traj else os.path.basename(os.path.normpath(arg))

    def model_label(self, ev):
        """Which model an eval scored: '<mode>-trained' for this run's output, else the dir's name."""
        out = config_value(self.traj.config, "out") if self.traj else None
        if out and (ev.model_dir == out or ev.model_dir.startswith(out.rstrip("/") + "/")):
            return f"{self.traj.mode}-trained"
        return os.path.basename(os.path.normpath(ev.model_dir)) or ev.model_dir


# ---------------------------------------------------------------- figures


def save(fig, out_dir, name, written):
    """Atomic: a temporary file in the same directory, then rename over the target."""
    path = os.path.join(out_dir, name)
    tmp = os.path.join(out_dir, f".{name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    written.append(path)


def smooth(y, window):
    """Centered moving average; the window shrinks at the ends (no padding artefacts)."""
    if window <= 1 or len(y) < 3:
        return y
    c = np.concatenate([[0.0], np.cumsum(y, dtype=np.float64)])
    h = window // 2
    i = np.arange(len(y))
    lo, hi = np.maximum(i - h, 0), np.minimum(i + h + 1, len(y))
    return (c[hi] - c[lo]) / (hi - lo)


def reached(count):
    """Positions with enough rollouts to draw (see MIN_SHARE)."""
    return count >= max(1.0, MIN_SHARE * (count.max() if count.size else 0))


def colors(n):
    cyc = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return [cyc[i % len(cyc)] for i in range(n)]


def fig_reward(runs, out_dir, window, written):
    rs = [r for r in runs if r.traj is not None and len(r.traj.step)]
    if not rs:
        return "no run has training steps"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r, col in zip(rs, colors(len(rs))):
        t = r.traj
        w = window or max(1, len(t.step) // 15)
        for ax, y in zip(axes, (t.reward, t.correct)):
            ax.plot(t.step, y, color=col, alpha=0.25, linewidth=0.8)
            ax.plot(t.step, smooth(y.astype(np.float64), w), color=col, linewidth=2,
                    label=f"{r.label} (moving average of {w} steps)")
    axes[0].set_ylabel("mean reward per rollout (0 / 10 / 100)")
    axes[1].set_ylabel("fraction of rollouts correct")
    for ax in axes:
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("Reward")
    axes[1].set_title("Fraction correct (reward 100)")
    fig.tight_layout()
    save(fig, out_dir, "reward.png", written)


def fig_passk(runs, out_dir, written):
    lines = []
    for r in runs:
        for ev in r.evals:
            for name, m in ev.modes.items():
                n = int(m["samples_per_problem"])
                c = m["per_problem"]["n_correct"]
                if not c:
                    continue
                lab = f"{r.model_label(ev)} × {name}"
                if m["sampling"] == "sample":
                    ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if k <= n]
                    ys = [float(np.mean([pass_at_k(n, ci, k) for ci in c])) for k in ks]
                    lines.append((lab, ks, ys, "-o"))
                else:
                    lines.append((lab, [1], [float(np.mean(np.asarray(c) > 0))], "D"))
    if not lines:
        return "no eval results file"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (lab, ks, ys, style), col in zip(lines, colors(len(lines))):
        ax.plot(ks, ys, style, color=col, label=lab, markersize=5,
                markerfacecolor="none" if style == "D" else col)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per problem, log scale)")
    ax.set_ylabel("pass@k (fraction of problems)")
    ax.set_title("pass@k by trained model × inference mode (greedy modes: ◇ at k = 1)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out_dir, "passk.png", written)


def fig_entropy(runs, out_dir, written):
    train = [r for r in runs if r.traj is not None and r.traj.pos_count.size]
    evals = [(r, ev, name, m) for r in runs for ev in r.evals for name, m in ev.modes.items()]
    if not train and not evals:
        return "no rollouts and no eval results"
    panels = [p for p in (train and "train", evals and "eval") if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "train":
            for r, col in zip(train, colors(len(train))):
                t = r.traj
                ok = reached(t.pos_count)
                x = np.arange(t.pos_count.size)
                ax.plot(x[ok], t.ent[ok] / t.pos_count[ok], color=col, linewidth=1.6, label=f"{r.label}: all steps")
                okl = reached(t.pos_late)
                ax.plot(x[okl], t.ent_late[okl] / t.pos_late[okl], "--", color=col, linewidth=1,
                        label=f"{r.label}: steps ≥ {t.late_min}")
            ax.set_title("Training rollouts")
        else:
            for (r, ev, name, m), col in zip(evals, colors(len(evals))):
                prof = m["entropy_profile"]
                b = int(prof["bin"])
                y = np.array([np.nan if v is None else v for v in prof["mean"]], dtype=np.float64)
                x = np.arange(len(y)) * b + (b - 1) / 2
                ax.plot(x, y, "-o", markersize=3, color=col, label=f"{r.model_label(ev)} × {name}")
            ax.set_title("Evaluation (bins of the eval's entropy_bin positions)")
        ax.set_xlabel("CoT position")
        ax.set_ylabel("mean entropy of softmax(z) (nats)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out_dir, "entropy.png", written)


def fig_cot_len(runs, out_dir, written):
    rs = [r for r in runs if r.traj is not None and r.traj.cot_len.size]
    if not rs:
        return "no rollouts"
    fig, ax = plt.subplots(figsize=(7, 4.2))
    top = max(int(r.traj.cot_len.max()) for r in rs)
    width = -(-(top + 1) // 48)  # whole positions per bar, at most 48 bars: no aliasing
    edges = np.arange(-0.5, top + width + 0.5, width)
    for r, col in zip(rs, colors(len(rs))):
        t = r.traj
        for sel, style, what in ((t.r_step <= t.early_max, "--", f"steps ≤ {t.early_max}"),
                                 (t.r_step >= t.late_min, "-", f"steps ≥ {t.late_min}")):
            v = t.cot_len[sel]
            if v.size:
                ax.hist(v, bins=edges, weights=np.full(v.size, 1.0 / v.size), histtype="step", linestyle=style,
                        linewidth=1.5, color=col, label=f"{r.label}: {what} ({v.size} rollouts)")
    ax.set_xlabel("CoT length (positions)")
    ax.set_ylabel("fraction of rollouts")
    ax.set_title("CoT length of training rollouts, first vs last quarter of the steps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    save(fig, out_dir, "cot_len.png", written)


def fig_mixture(runs, out_dir, written):
    rs = [r for r in runs if r.traj is not None and r.traj.mode in ("soft", "fuzzy") and r.traj.pos_count.size]
    if not rs:
        return "no soft or fuzzy run"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r, col in zip(rs, colors(len(rs))):
        t = r.traj
        ok = reached(t.pos_count)
        x = np.arange(t.pos_count.size)[ok]
        axes[0].plot(x, t.top1[ok] / t.pos_count[ok], color=col, label=r.label)
        if t.has_mix:
            axes[1].plot(x, t.eff[ok] / t.pos_count[ok], color=col, label=r.label)
    axes[0].set_ylabel("mean top-1 weight of softmax(z/τ)")
    axes[1].set_ylabel("mean effective tokens exp(H(softmax(z/τ)))")
    axes[0].set_title("Weight of the largest mixture token")
    axes[1].set_title("Effective number of tokens mixed")
    for ax in axes:
        ax.set_xlabel("CoT position")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out_dir, "mixture.png", written)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], usage="%(prog)s [--out DIR] [--smooth N] RUN [RUN ...]")
    ap.add_argument("runs", nargs="+", metavar="RUN", help="run directory, trajectory .h5 or eval .json (one run each)")
    ap.add_argument("--out", help="output directory (default RUN/plots for one run directory, else ./plots)")
    ap.add_argument("--smooth", type=int, default=0, help="moving-average window in steps (0 = a fifteenth of the steps)")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    if h5py is None:
        print("plot.py: h5py is not available to this Python (use /usr/bin/python3)", file=sys.stderr)
        return 1
    if a.smooth < 0:
        print("plot.py: --smooth must be >= 0", file=sys.stderr)
        return 2
    try:
        runs = [Run(r) for r in a.runs]
    except (InputError, KeyError) as e:
        print(f"plot.py: {e}", file=sys.stderr)
        return 2
    seen = {}
    for r in runs:  # unique legend labels
        seen[r.label] = seen.get(r.label, 0) + 1
    count = {}
    for r in runs:
        if seen[r.label] > 1:
            count[r.label] = count.get(r.label, 0) + 1
            r.label = f"{r.label}#{count[r.label]}"
    out = a.out or (os.path.join(a.runs[0], "plots") if len(runs) == 1 and os.path.isdir(a.runs[0]) else "plots")
    os.makedirs(out, exist_ok=True)
    written = []
    for name, fn in (("reward.png", lambda: fig_reward(runs, out, a.smooth, written)),
                     ("passk.png", lambda: fig_passk(runs, out, written)),
                     ("entropy.png", lambda: fig_entropy(runs, out, written)),
                     ("cot_len.png", lambda: fig_cot_len(runs, out, written)),
                     ("mixture.png", lambda: fig_mixture(runs, out, written))):
        why = fn()
        if why:
            print(f"plot.py: {name} skipped: {why}", file=sys.stderr)
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
