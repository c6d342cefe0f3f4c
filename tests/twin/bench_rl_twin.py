#!/usr/bin/python3
"""Times one RL step of DESIGN.md section 1 in PyTorch, implemented the obvious way: the
baseline tests/bench_rl.c compares softcot's train_step against.

For B prompts with G samples each (N = B*G sequences, the same random prompt per group):
  generation (torch.no_grad, float32, Hugging Face-style): one prefill forward of the
    prompts (last-position logits only), then batched incremental decoding with a KV cache
    (past keys/values concatenated each step, repeat_kv + eager attention, as
    transformers' LlamaModel does), every sequence in the batch at every step:
      CoT, cot_len steps: hard = sample c ~ softmax(z / tau) and feed E[c];
        soft = feed inputs_embeds h = softmax(z / tau) @ E + sigma * noise, shadow token
        argmax z (sigma = gamma * rms(E));
      then the prefill tokens (fed together with the last CoT input), then ans_len answer
      tokens sampled with tau_ans = 1 (the last one is not fed back);
  training: one teacher-forced forward over the full [N, T] batch (prompt, CoT inputs
    E[c] or the recorded h as data, prefill, answer), the RL loss
      L = -(1/N) sum_i A_i (sum_CoT log pi_t + sum_answer log softmax(z)[a_j])
    with the categorical (hard) or Gaussian -||h - softmax(z/tau) @ E||^2 / (2 sigma^2)
    (soft) CoT terms, RLOO advantages of random 0/10 rewards, backward, and one
    torch.optim.AdamW step.
The CoT, prefill and answer lengths are given (no stop detection), so the work matches
the softcot step exactly when softcot's rollouts all have these lengths.

Usage:
  /usr/bin/python3 tests/twin/bench_rl_twin.py --dim 1024 --layers 8 --heads 16 --kv-heads 4 \
      --hidden 2816 --vocab 32000 --mode soft --batch 2 --group 8 --prompt-len 40 \
      --cot-len 64 --prefill-len 10 --ans-len 16 [--head-dim 64] [--tied] [--repeats 2]
      [--threads 1] [--no-malloc-tuning]

Runs --repeats steps and reports the last (the first pays for page faults). Prints human
lines prefixed with '#', then exactly one machine-readable line:
  twin_rl seconds=<f> gen_seconds=<f> train_seconds=<f> gen_tokens=<n> train_tokens=<n> cpu_seconds=<f>
(train_seconds includes the AdamW step; gen_tokens counts decoded rows after the prompt
prefill, as softcot's gen_rows does; cpu_seconds is the process CPU time of the step.)
"""

import argparse
import math
import os
import sys
import time

# As in bench_twin.py: Debian's torch uses the system OpenBLAS, which reads its thread
# count when it loads, so pin it before importing torch; and re-exec once with glibc's
# malloc told to keep freed memory, so large activations are not page-faulted back in on
# every step (softcot allocates its buffers once).
_MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
               "MALLOC_TOP_PAD_": str(1 << 28)}


def _peek_threads(argv):
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--threads", type=str, default="1")
    ns, _ = ap.parse_known_args(argv)
    return ns.threads if ns.threads.isdigit() and int(ns.threads) >= 1 else "1"


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
    print("bench_rl_twin.py: error: " + msg, file=sys.stderr)
    sys.exit(2)


class Llama(torch.nn.Module):
    """LlamaForCausalLM, float32, batched, with inputs_embeds and a KV cache."""

    def __init__(self, d, L, nh, nkv, hs, ff, V, tied, theta, eps):
        super().__init__()
        self.nh, self.nkv, self.hs, self.eps = nh, nkv, hs, eps
        g = torch.Generator().manual_seed(1234)

        def P(*shape, std=0.02):
            return torch.nn.Parameter(torch.randn(*shape, generator=g) * std)

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

    def forward(self, x, past=None, pos0=0, last_only=False):
        """x: inputs_embeds [N, T, d]; past: list of (k, v) [N, nkv, S, hs] or None.
        Returns (logits [N, T or 1, V], new past)."""
        N, T, _ = x.shape
        nh, nkv, hs = self.nh, self.nkv, self.hs
        rep = nh // nkv
        pos = torch.arange(pos0, pos0 + T, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        S = pos0 + T
        mask = None
        if T > 1:
            mask = torch.full((T, S), float("-inf")).triu(pos0 + 1)
        scale = 1.0 / math.sqrt(hs)

        def rope(t):
            t1, t2 = t[..., : hs // 2], t[..., hs // 2:]
            return t * cos + torch.cat((-t2, t1), dim=-1) * sin

        new_past = []
        for li, m in enumerate(self.layers):
            h = self.rms(x, m.ln1)
            q = F.linear(h, m.wq).view(N, T, nh, hs).transpose(1, 2)
            k = F.linear(h, m.wk).view(N, T, nkv, hs).transpose(1, 2)
            v = F.linear(h, m.wv).view(N, T, nkv, hs).transpose(1, 2)
            q, k = rope(q), rope(k)
            if past is not None:
                k = torch.cat((past[li][0], k), dim=2)
                v = torch.cat((past[li][1], v), dim=2)
            new_past.append((k, v))
            # repeat_kv, then eager attention (transformers' LlamaAttention)
            kr = k[:, :, None].expand(N, nkv, rep, S, hs).reshape(N, nh, S, hs)
            vr = v[:, :, None].expand(N, nkv, rep, S, hs).reshape(N, nh, S, hs)
            s = torch.matmul(q, kr.transpose(2, 3)) * scale
            if mask is not None:
                s = s + mask
            a = torch.softmax(s, dim=-1)
            o = torch.matmul(a, vr).transpose(1, 2).reshape(N, T, nh * hs)
            x = x + F.linear(o, m.wo)
            h = self.rms(x, m.ln2)
            x = x + F.linear(F.silu(F.linear(h, m.wg)) * F.linear(h, m.wu), m.wd)
        if last_only:
            x = x[:, -1:]
        x = self.rms(x, self.norm)
        return F.linear(x, self.embed if self.lm_head is None else self.lm_head), new_past


def main(argv):
    ap = argparse.ArgumentParser(description="Time one RL step in the PyTorch twin.")
    for name in ("dim", "layers", "heads", "kv-heads", "hidden", "vocab", "batch", "group",
                 "prompt-len", "cot-len", "prefill-len", "ans-len"):
        ap.add_argument("--" + name, type=int, required=True)
    ap.add_argument("--head-dim", type=int, default=0, help="default dim / heads")
    ap.add_argument("--mode", choices=("hard", "soft", "fuzzy"), required=True)
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--theta", type=float, default=10000.0)
    ap.add_argument("--norm-eps", type=float, default=1e-5)
    ap.add_argument("--gamma", type=float, default=0.33)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-malloc-tuning", action="store_true")
    a = ap.parse_args(argv)
    for name in ("dim", "layers", "heads", "kv_heads", "hidden", "vocab", "batch", "group",
                 "prompt_len", "cot_len", "prefill_len", "ans_len", "repeats", "threads"):
        if getattr(a, name) < 1:
            die("--%s must be >= 1" % name.replace("_", "-"))
    hs = a.head_dim or a.dim // a.heads
    if a.heads % a.kv_heads or hs % 2:
        die("heads must be a multiple of kv-heads and the head size even")

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Llama(a.dim, a.layers, a.heads, a.kv_heads, hs, a.hidden, a.vocab, a.tied,
                  a.theta, a.norm_eps)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0)
    B, G, N = a.batch, a.group, a.batch * a.group
    Pn, Tc, Pf, Ta = a.prompt_len, a.cot_len, a.prefill_len, a.ans_len
    tau = {"hard": 1.0, "soft": 0.5, "fuzzy": 1e-4}[a.mode]
    soft = a.mode != "hard"
    gen = torch.Generator().manual_seed(99)
    prompts = torch.randint(0, a.vocab, (B, Pn), generator=gen)
    prompt = prompts.repeat_interleave(G, dim=0)              # [N, Pn]
    prefill = torch.randint(0, a.vocab, (Pf,), generator=gen).expand(N, Pf)
    print("# twin RL bench: torch %s, float32, threads=%d, OPENBLAS_NUM_THREADS=%s, "
          "OPENBLAS_CORETYPE=%s, malloc tuning %s; mode %s, N=%d x (prompt %d + cot %d + "
          "prefill %d + answer %d)"
          % (torch.__version__, torch.get_num_threads(), os.environ.get("OPENBLAS_NUM_THREADS"),
             os.environ.get("OPENBLAS_CORETYPE", "(auto)"),
             "on" if all(os.environ.get(k) == v for k, v in _MALLOC_ENV.items()) else "off",
             a.mode, N, Pn, Tc, Pf, Ta))

    def step():
        E = model.embed
        c0, t0 = time.process_time(), time.perf_counter()
        # ---- generation ----
        with torch.no_grad():
            sigma = a.gamma * float(E.pow(2).mean().sqrt()) if soft else 0.0
            logits, past = model(F.embedding(prompt, E), None, 0, last_only=True)
            pos = Pn
            cot_tok, cot_vec = [], []
            for t in range(Tc):
                z = logits[:, -1]
                if soft:
                    p = torch.softmax(z / tau, dim=-1)
                    hv = p @ E + sigma * torch.randn(N, E.shape[1])
                    cot_tok.append(z.argmax(-1))      # shadow token
                    cot_vec.append(hv)
                    x = hv[:, None]
                else:
                    c = torch.multinomial(torch.softmax(z / tau, dim=-1), 1)[:, 0]
                    cot_tok.append(c)
                    x = F.embedding(c[:, None], E)
                if t == Tc - 1:
                    x = torch.cat((x, F.embedding(prefill, E)), dim=1)
                logits, past = model(x, past, pos, last_only=True)
                pos += x.shape[1]
            ans = []
            for j in range(Ta):
                aj = torch.multinomial(torch.softmax(logits[:, -1], dim=-1), 1)[:, 0]
                ans.append(aj)
                if j < Ta - 1:
                    logits, past = model(F.embedding(aj[:, None], E), past, pos, last_only=True)
                    pos += 1
            del past, logits
        cot_tok = torch.stack(cot_tok, 1)                     # [N, Tc]
        ans = torch.stack(ans, 1)                             # [N, Ta]
        H = torch.stack(cot_vec, 1) if soft else None          # [N, Tc, d]
        t_gen = time.perf_counter()
        # ---- rewards (random 0/10) and RLOO advantages ----
        r = (torch.rand(B, G, generator=gen) < 0.5).float() * 10.0
        adv = (r - (r.sum(1, keepdim=True) - r) / (G - 1)).reshape(N)
        # ---- teacher-forced replay, backward, AdamW ----
        opt.zero_grad(set_to_none=True)
        if soft:
            x = torch.cat((F.embedding(prompt, E), H, F.embedding(torch.cat((prefill, ans), 1), E)), 1)
        else:
            x = F.embedding(torch.cat((prompt, cot_tok, prefill, ans), 1), E)
        logits, _ = model(x)                                  # [N, T, V]
        a0 = Pn + Tc + Pf - 1
        la = torch.log_softmax(logits[:, a0:a0 + Ta], -1).gather(-1, ans[..., None])[..., 0].sum(1)
        zc = logits[:, Pn - 1:Pn - 1 + Tc]
        if soft:
            mu = torch.softmax(zc / tau, -1) @ E
            lc = -((H - mu) ** 2).sum(-1).sum(1) / (2 * sigma * sigma)
        else:
            lc = torch.log_softmax(zc / tau, -1).gather(-1, cot_tok[..., None])[..., 0].sum(1)
        loss = -(adv * (lc + la)).sum() / N
        loss.backward()
        opt.step()
        t_end = time.perf_counter()
        return t_end - t0, t_gen - t0, t_end - t_gen, time.process_time() - c0, float(loss)

    for i in range(a.repeats):
        tot, tg, tt, cpu, loss = step()
        print("# step %d: %.3f s (generation %.3f s, train+AdamW %.3f s), cpu %.3f s, loss %.4g"
              % (i, tot, tg, tt, cpu, loss))
    gen_tokens = N * (Tc + Pf + Ta - 1)
    train_tokens = N * (Pn + Tc + Pf + Ta)
    print("twin_rl seconds=%.4f gen_seconds=%.4f train_seconds=%.4f gen_tokens=%d "
          "train_tokens=%d cpu_seconds=%.4f" % (tot, tg, tt, gen_tokens, train_tokens, cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
