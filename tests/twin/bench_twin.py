#!/usr/bin/python3
"""Times the PyTorch twin (float32, CPU) on a Llama model: one forward pass over one
sequence, and one forward+backward of L = sum(logits * dlogits) with a fixed dlogits.

Usage:
  /usr/bin/python3 tests/twin/bench_twin.py --dim 1024 --layers 8 --heads 16 --kv-heads 4 \
      --hidden 2816 --vocab 32000 --tokens 2048 [--threads 1] [--repeats 3] [--tied]
      [--no-malloc-tuning]

Prints human lines prefixed with '#', then exactly one machine-readable line:
  twin fwd_tok_s=<float> fwdbwd_tok_s=<float> threads=<n>

The forward timing runs under torch.no_grad() (inference: no activations kept); the
forward+backward timing is one autograd forward followed by backward into every
parameter. Each number is the best of --repeats runs after one warm-up run. Random init,
nothing is written to disk.
"""

import argparse
import math
import os
import sys
import time


def _peek_threads(argv):
    """--threads, read before torch is imported (see below); invalid values are left to
    the real parser in main()."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--threads", type=str, default="1")
    ns, _ = ap.parse_known_args(argv)
    return ns.threads if ns.threads.isdigit() and int(ns.threads) >= 1 else "1"


# Debian's torch does its GEMMs in the system BLAS (OpenBLAS, pthreads build), whose thread
# count is read from the environment when the library loads and is NOT changed by
# torch.set_num_threads(). So pin it before importing torch.
#
# glibc serves every allocation above 32 MiB with a fresh mmap and unmaps it on free, so
# each step of a T=2048 run page-faults gigabytes of attention and logit buffers back in
# (a large share of the run time, as system time). The C engine allocates its buffers once;
# to compare like with like the script re-executes itself once with glibc's malloc told to
# keep freed memory (MALLOC_MMAP_MAX_=0, a huge MALLOC_TRIM_THRESHOLD_). These variables
# are only read at process start, hence the re-exec. --no-malloc-tuning skips it.
_MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
               "MALLOC_TOP_PAD_": str(1 << 28)}
if __name__ == "__main__":
    _n = _peek_threads(sys.argv[1:])
    for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_v] = _n
    if ("--no-malloc-tuning" not in sys.argv[1:]
            and os.environ.get("SOFTCOT_BENCH_TWIN_REEXEC") != "1"):
        os.environ.update(_MALLOC_ENV)
        os.environ["SOFTCOT_BENCH_TWIN_REEXEC"] = "1"
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable] + sys.argv)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def die(msg):
    print("bench_twin.py: error: " + msg, file=sys.stderr)
    sys.exit(2)


class Llama(torch.nn.Module):
    def __init__(self, d, L, nh, nkv, ff, V, tied, theta, eps):
        super().__init__()
        self.d, self.L, self.nh, self.nkv, self.hs = d, L, nh, nkv, d // nh
        self.eps = eps
        g = torch.Generator().manual_seed(1234)

        def P(*shape, std=0.02, mean=0.0):
            return torch.nn.Parameter(torch.randn(*shape, generator=g) * std + mean)

        hs = self.hs
        self.embed = P(V, d)
        self.layers = torch.nn.ModuleList()
        for _ in range(L):
            m = torch.nn.Module()
            m.ln1 = torch.nn.Parameter(torch.ones(d))
            m.wq = P(nh * hs, d)
            m.wk = P(nkv * hs, d)
            m.wv = P(nkv * hs, d)
            m.wo = P(d, nh * hs)
            m.ln2 = torch.nn.Parameter(torch.ones(d))
            m.wg = P(ff, d)
            m.wu = P(ff, d)
            m.wd = P(d, ff)
            self.layers.append(m)
        self.norm = torch.nn.Parameter(torch.ones(d))
        self.lm_head = None if tied else P(V, d)
        inv_freq = 1.0 / (theta ** (torch.arange(0, hs, 2, dtype=torch.float32) / hs))
        self.register_buffer("inv_freq", inv_freq)

    def rms(self, x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def forward(self, tokens):
        T = tokens.shape[0]
        nh, nkv, hs = self.nh, self.nkv, self.hs
        rep = nh // nkv
        x = F.embedding(tokens, self.embed)
        freqs = torch.arange(T, dtype=self.inv_freq.dtype)[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), float("-inf"), dtype=x.dtype).triu(1)
        # rows of a query group are ordered (head in group, position): mask [rep*T, T]
        gmask = mask.repeat(rep, 1).expand(nkv, -1, -1)
        scale = 1.0 / math.sqrt(hs)

        def rope(t):
            t1, t2 = t[..., : hs // 2], t[..., hs // 2:]
            return t * cos + torch.cat((-t2, t1), dim=-1) * sin

        for m in self.layers:
            h = self.rms(x, m.ln1)
            q = F.linear(h, m.wq).view(T, nh, hs).transpose(0, 1)
            k = F.linear(h, m.wk).view(T, nkv, hs).transpose(0, 1)
            v = F.linear(h, m.wv).view(T, nkv, hs).transpose(0, 1)
            q, k = rope(q), rope(k)
            # GQA without materialising repeated K/V: group the query heads per KV head
            qg = q.reshape(nkv, rep * T, hs)
            s = torch.baddbmm(gmask, qg, k.transpose(1, 2), alpha=scale)
            a = torch.softmax(s, dim=-1)
            o = torch.bmm(a, v).view(nh, T, hs).transpose(0, 1).reshape(T, nh * hs)
            x = x + F.linear(o, m.wo)
            h = self.rms(x, m.ln2)
            x = x + F.linear(F.silu(F.linear(h, m.wg)) * F.linear(h, m.wu), m.wd)
        x = self.rms(x, self.norm)
        return F.linear(x, self.embed if self.lm_head is None else self.lm_head)


def main(argv):
    ap = argparse.ArgumentParser(description="Time the PyTorch twin (float32).")
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, required=True)
    ap.add_argument("--hidden", type=int, required=True, help="MLP intermediate size")
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--tokens", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tied", action="store_true", help="tie lm_head to the embedding")
    ap.add_argument("--theta", type=float, default=10000.0)
    ap.add_argument("--no-malloc-tuning", action="store_true",
                    help="keep glibc's default malloc behaviour (see the source)")
    a = ap.parse_args(argv)
    for name in ("dim", "layers", "heads", "kv_heads", "hidden", "vocab", "tokens",
                 "threads", "repeats"):
        if getattr(a, name) < 1:
            die("--%s must be >= 1" % name.replace("_", "-"))
    if a.dim % a.heads:
        die("--dim must be a multiple of --heads")
    if a.heads % a.kv_heads:
        die("--heads must be a multiple of --kv-heads")
    if (a.dim // a.heads) % 2:
        die("head size must be even")

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Llama(a.dim, a.layers, a.heads, a.kv_heads, a.hidden, a.vocab, a.tied,
                  a.theta, 1e-5)
    g = torch.Generator().manual_seed(99)
    tokens = torch.randint(0, a.vocab, (a.tokens,), generator=g)
    dlogits = torch.randn(a.tokens, a.vocab, generator=g)
    nparam = sum(p.numel() for p in model.parameters())
    print("# twin bench: torch %s, float32, threads=%d, d=%d L=%d heads=%d kv=%d ff=%d "
          "V=%d T=%d tied=%d params=%.1fM"
          % (torch.__version__, torch.get_num_threads(), a.dim, a.layers, a.heads,
             a.kv_heads, a.hidden, a.vocab, a.tokens, int(a.tied), nparam / 1e6))
    tuned = all(os.environ.get(k) == v for k, v in _MALLOC_ENV.items())
    print("# OPENBLAS_NUM_THREADS=%s, malloc tuning %s"
          % (os.environ.get("OPENBLAS_NUM_THREADS"), "on" if tuned else "off"))

    def fwd():
        with torch.no_grad():
            return model(tokens)

    def fwdbwd():
        model.zero_grad(set_to_none=True)
        logits = model(tokens)
        logits.backward(dlogits)  # d/dparams of sum(logits * dlogits)

    def best(fn):
        fn()  # warm-up
        ts, cpu = [], []
        for _ in range(a.repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return min(ts), ts, sum(cpu) / sum(ts)

    tf, tfs, cf = best(fwd)
    tb, tbs, cb = best(fwdbwd)
    print("# forward (no_grad):  best %.3f s  runs: %s  cpu/wall %.2f"
          % (tf, " ".join("%.3f" % t for t in tfs), cf))
    print("# forward+backward:   best %.3f s  runs: %s  cpu/wall %.2f"
          % (tb, " ".join("%.3f" % t for t in tbs), cb))
    print("twin fwd_tok_s=%.1f fwdbwd_tok_s=%.1f threads=%d"
          % (a.tokens / tf, a.tokens / tb, torch.get_num_threads()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
