#!/usr/bin/env python3
"""The learning-rate sweep's scoring (docs/results.md, "Choosing the learning rate").

usage: study_sweep.py [--last N] RUN_DIR...

For each training run directory prints its mode, peak lr, and the fraction of training
rollouts answered correctly over its first N and last N steps (default 100), with the
standard error over those steps. Training prompts are fresh draws from the training split,
so the last-N figure is a held-out-like score that never looks at the test problems the
study evaluates on.
"""
import math
import re
import sys

import h5py
import numpy as np


def lr_of(config):
    m = re.search(r"^lr = (\S+)$", config, re.M)
    return float(m.group(1)) if m else float("nan")


def window(x):
    return x.mean(), x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else 0.0


def main(argv):
    last = 100
    runs = []
    it = iter(argv[1:])
    for a in it:
        if a == "--last":
            last = int(next(it))
        else:
            runs.append(a)
    if not runs:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    print("%-36s %-6s %9s %18s %18s" % ("run", "mode", "lr", "first %d correct" % last, "last %d correct" % last))
    for run in runs:
        path = run.rstrip("/") + "/trajectories.h5"
        try:
            with h5py.File(path, "r") as f:
                c = np.asarray(f["steps/frac_correct"][:], dtype=float)
                mode = f.attrs["mode"]
                mode = mode.decode() if isinstance(mode, bytes) else str(mode)
                config = f.attrs["config"]
                config = config.decode() if isinstance(config, bytes) else str(config)
        except (OSError, KeyError) as e:
            sys.stderr.write("study_sweep.py: %s: %s\n" % (path, e))
            return 2
        a, b = window(c[:last]), window(c[-last:])
        print("%-36s %-6s %9.0e %10.3f ± %.3f %10.3f ± %.3f" % (run, mode, lr_of(config), a[0], a[1], b[0], b[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
