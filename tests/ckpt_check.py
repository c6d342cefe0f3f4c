"""ckpt_check.py — h5py's view of a softcot checkpoint (tests/test_checkpoint.sh).

Usage: ckpt_check.py check FILE STEP   -> prints ok/not ok lines: the documented root
                                          attributes, and every dataset's crc32c attribute
                                          equals CRC-32C of its little-endian bytes
       ckpt_check.py offset FILE DSET  -> prints the file offset of DSET's first byte
Run with /usr/bin/python3 (Debian's h5py and numpy).
"""
import sys

import h5py
import numpy as np


def crc32c(data: bytes) -> int:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    c = 0xFFFFFFFF
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def check(path, step):
    with h5py.File(path, "r") as f:
        a = f.attrs
        good = (a["format"] == b"softcot-checkpoint" and int(a["format_version"]) == 1
                and int(a["step"]) == step and int(a["world_size"]) >= 1
                and len(a["softcot_version"]) > 0 and len(a["config"]) == 70000)
        print(("ok" if good else "not ok") + " - h5py: root attributes of %s" % path.split("/")[-1]
              + ("" if good else ": %r" % dict(a)))
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        bad = []
        for n in names:
            d = f[n]
            want = int(d.attrs["crc32c"])
            arr = d[()]
            dt = "<f4" if d.dtype.kind == "f" else "<i8"
            got = crc32c(np.ascontiguousarray(arr, dtype=dt).tobytes())
            layout_ok = d.chunks is None and d.compression is None
            if got != want or not layout_ok:
                bad.append("%s crc %08x/%08x chunks %s" % (n, got, want, d.chunks))
        good = not bad and len(names) == 9 and f["params/model.layers.0.mlp.up_proj.weight"].shape == (3, 5, 7)
        print(("ok" if good else "not ok") + " - h5py: %d datasets contiguous, crc32c attribute = CRC-32C of the bytes"
              % len(names) + ("" if good else ": " + "; ".join(bad)))


if sys.argv[1] == "check":
    check(sys.argv[2], int(sys.argv[3]))
elif sys.argv[1] == "offset":
    with h5py.File(sys.argv[2], "r") as f:
        print(f[sys.argv[3]].id.get_offset())
