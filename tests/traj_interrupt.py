"""traj_interrupt.py FILE — simulates an append cut short by a crash: every dataset of
table "rollouts" is extended by 3 rows/values of garbage, but the committed "nrows"
attribute is left alone (the writer updates it last). traj_open_append must trim them.
Run with /usr/bin/python3."""
import sys

import h5py

with h5py.File(sys.argv[1], "r+") as f:
    g = f["rollouts"]
    for name in g:
        d = g[name]
        d.resize(d.shape[0] + 3, axis=0)
        d[-3:] = 77
