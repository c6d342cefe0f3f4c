#!/usr/bin/python3
"""PyTorch twin of the softcot RL objective (reference for tests/test_replay_twin.c).

Builds the random tiny model of a twin.py case, generates in float64 a fixed batch of
B x G rollouts in each CoT mode (hard, soft, fuzzy) with the twin itself, and computes
exactly what DESIGN.md section 1 defines:

    l_i = sum_CoT log pi_t + sum_answer log softmax(z / tau_ans)[a_j]
      hard CoT term:        log softmax(z_{t-1} / tau_hard)[c_t]
      soft / fuzzy term:    -||h~_t - softmax(z_{t-1} / tau)^T E||^2 / (2 sigma^2)
    L = -(1 / (B G)) sum_i A_i l_i

with autograd through the logits, the softmax and E (mu_t = p^T E); the recorded h~_t
are data. It writes, into --out DIR: config.json and model.safetensors (as twin.py) and
rl_ref.safetensors (the rollouts, l_i split into CoT and answer parts, and the gradient
of L and of its CoT part for every parameter). Schema: tests/twin/README.md.

Usage:
  /usr/bin/python3 tests/twin/twin_rl.py --list
  /usr/bin/python3 tests/twin/twin_rl.py --case NAME --out DIR [--seed S] [--selfcheck]
  /usr/bin/python3 tests/twin/twin_rl.py ... --break KIND    (a deliberately wrong twin,
      to see the C test fail: sign = Gaussian term sign flipped, mu-detach = no gradient
      into E through mu_t, answer-shift = answer terms read one logit row too late)
"""

import argparse
import json
import math
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twin  # noqa: E402  (sets the one-thread BLAS environment before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

# The model cases reuse twin.py's configs: a Llama with GQA (and llama3 rope scaling)
# and a Qwen2 with q/k/v biases and tied embeddings.
CASES = ["llama_gqa_rope3", "qwen2_bias_tied"]
MODES = ["hard", "soft", "fuzzy"]

B, G = 2, 3
REWARDS = [[100.0, 10.0, 0.0], [0.0, 100.0, 100.0]]  # RLOO: no group is all-equal
PROMPT_LENS = [5, 8]
COT_LENS = [3, 6, 1, 5, 2, 4]          # per rollout (cot_len >= 1, as generation gives)
PREFILL_LONG = [0, 1, 0, 1, 1, 0]      # both prefills occur in both groups
ANS_LENS = [4, 2, 5, 1, 3, 4]
N_PREFILL, N_PREFILL_LONG = 2, 6
GAMMA = 0.33
# Fuzzy: every CoT position must have a top-2 logit gap of at least this many
# temperatures, so softmax(z / 1e-4) is one-hot to exp(-40) and float32 logits (error
# ~1e-6) give the same mixture. Rollouts that violate it are redrawn.
FUZZY_MIN_GAP_TEMPS = 40.0


def f32(x):
    return float(np.float32(x))


def mode_temps(mode, sigma32):
    """(cot temperature, sigma, answer temperature), all float32-representable, as the C
    side stores them in float."""
    if mode == "hard":
        return 1.0, 0.0, 1.0
    if mode == "soft":
        return 0.5, sigma32, 1.0
    return f32(1e-4), sigma32, 1.0


def rloo(rewards):
    out = []
    for grp in rewards:
        n = len(grp)
        s = sum(grp)
        out.append([r - (s - r) / (n - 1) for r in grp])
    return out


def last_logits(tw, tokens, vectors):
    tok = torch.tensor(tokens, dtype=torch.int64)
    vec = torch.from_numpy(np.stack(vectors).astype(np.float64))
    with torch.no_grad():
        return tw.forward_seq(tw.embed(tok, vec))[-1]


def softmax_t(z, tau):
    return torch.softmax(z / tau, dim=-1)


def generate(tw, E, rng, prompt, mode, tau, sigma, tau_ans, cot_len, prefill, ans_len):
    """One rollout by autoregressive float64 decoding with the twin. Returns a dict, or
    None when a fuzzy step falls under the logit-gap margin."""
    d = E.shape[1]
    zero = np.zeros(d)
    tokens = list(prompt)
    vectors = [zero] * len(prompt)
    cot_tokens, cot_vectors, min_gap = [], [], float("inf")
    for _ in range(cot_len):
        z = last_logits(tw, tokens, vectors)
        if mode == "hard":
            p = softmax_t(z, tau).numpy()
            c = int(rng.choice(len(p), p=p / p.sum()))
            cot_tokens.append(c)
            cot_vectors.append(zero)
            tokens.append(c)
            vectors.append(zero)
        else:
            top2 = torch.topk(z, 2).values
            min_gap = min(min_gap, float(top2[0] - top2[1]))
            mu = (softmax_t(z, tau) @ E).numpy()
            h = (mu + sigma * rng.normal(0.0, 1.0, d)).astype("<f4").astype(np.float64)
            cot_tokens.append(int(torch.argmax(z)))  # shadow token
            cot_vectors.append(h)
            tokens.append(-1)
            vectors.append(h)
    if mode == "fuzzy" and min_gap < FUZZY_MIN_GAP_TEMPS * tau:
        return None
    tokens += list(prefill)
    vectors += [zero] * len(prefill)
    ans = []
    for _ in range(ans_len):
        z = last_logits(tw, tokens, vectors)
        p = softmax_t(z, tau_ans).numpy()
        a = int(rng.choice(len(p), p=p / p.sum()))
        ans.append(a)
        tokens.append(a)
        vectors.append(zero)
    return dict(prompt=list(prompt), cot_tokens=cot_tokens, cot_vectors=cot_vectors,
                ans=ans, min_gap=min_gap)


def rollout_logp(tw, E, ro, mode, tau, sigma, tau_ans, prefill, brk):
    """(l_cot, l_ans) as float64 scalar tensors with autograd to the parameters."""
    d = E.shape[1]
    n_p, n_c = len(ro["prompt"]), len(ro["cot_tokens"])
    soft = mode != "hard"
    toks = list(ro["prompt"]) + ([-1] * n_c if soft else list(ro["cot_tokens"])) \
        + list(prefill) + list(ro["ans"])
    vec = np.zeros((len(toks), d))
    if soft:
        vec[n_p:n_p + n_c] = np.stack(ro["cot_vectors"])
    x = tw.embed(torch.tensor(toks, dtype=torch.int64), torch.from_numpy(vec))
    z = tw.forward_seq(x)
    rows = torch.arange(n_p - 1, n_p - 1 + n_c)
    if soft:
        p = torch.softmax(z[rows] / tau, dim=-1)
        mu = p @ (E.detach() if brk == "mu-detach" else E)  # gradient reaches E here too
        h = torch.from_numpy(vec[n_p:n_p + n_c])      # data: no gradient
        sign = -1.0 if brk == "sign" else 1.0
        l_cot = -(sign * ((h - mu) ** 2).sum()) / (2.0 * sigma * sigma)
    else:
        lp = torch.log_softmax(z[rows] / tau, dim=-1)
        l_cot = lp[torch.arange(n_c), torch.tensor(ro["cot_tokens"])].sum()
    a0 = n_p + n_c + len(prefill) - 1 + (1 if brk == "answer-shift" else 0)
    z = torch.cat([z, z[-1:]]) if brk == "answer-shift" else z
    arows = torch.arange(a0, a0 + len(ro["ans"]))
    lpa = torch.log_softmax(z[arows] / tau_ans, dim=-1)
    l_ans = lpa[torch.arange(len(ro["ans"])), torch.tensor(ro["ans"])].sum()
    return l_cot, l_ans


def selfcheck_fd(c, params32, names, loss_fn, grads, rng):
    """Central finite differences in float64 of the RL loss on a few entries."""
    base = {n: a.astype(np.float64) for n, a in params32}
    h = 1e-5
    worst = 0.0
    picks = [names[0], names[1], names[-1]] + [n for n in names if "down_proj" in n][:1]
    for n in picks:
        g = grads[n].reshape(-1).numpy()
        for idx in [int(np.argmax(np.abs(g))), int(rng.integers(0, g.size))]:
            vals = []
            for delta in (h, -h):
                p = {k: torch.from_numpy(base[k]) for k in names}
                q = p[n].clone()
                q.view(-1)[idx] += delta
                p[n] = q
                with torch.no_grad():
                    vals.append(float(loss_fn(twin.Twin(c, p))))
            fd = (vals[0] - vals[1]) / (2 * h)
            err = abs(fd - g[idx]) / max(1e-3, abs(g[idx]), abs(fd))
            worst = max(worst, err)
            if abs(fd - g[idx]) > 1e-5 * max(abs(g[idx]), 1e-2):
                print("selfcheck FAIL: %s[%d] autograd %.10g finite-diff %.10g" % (n, idx, g[idx], fd),
                      file=sys.stderr)
                return None
    return worst


def main(argv):
    ap = argparse.ArgumentParser(description="PyTorch twin of the softcot RL objective.")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--case")
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--selfcheck", action="store_true",
                    help="check the autograd gradient of L against float64 finite differences")
    ap.add_argument("--break", dest="brk", choices=["sign", "mu-detach", "answer-shift"],
                    help="compute a deliberately wrong reference (to see the C test fail)")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(CASES))
        return 0
    if args.case not in CASES or not args.out:
        print("twin_rl.py: error: need --case (one of %s) and --out DIR" % ", ".join(CASES),
              file=sys.stderr)
        return 2
    c = twin.CASES[args.case]
    os.makedirs(args.out, exist_ok=True)
    case_id = zlib.crc32(("rl:" + args.case).encode())
    rng = np.random.default_rng([args.seed, case_id])
    params32 = twin.init_params(c, rng)
    names = [n for n, _ in params32]
    V, d = c["vocab"], c["hidden"]
    E32 = dict(params32)["model.embed_tokens.weight"]
    sigma32 = f32(GAMMA * math.sqrt(float(np.mean(E32.astype(np.float64) ** 2))))
    prefill = [int(t) for t in rng.integers(3, V, N_PREFILL)]
    prefill_long = [int(t) for t in rng.integers(3, V, N_PREFILL_LONG)]
    prompts = [[1] + [int(t) for t in rng.integers(3, V, n - 1)] for n in PROMPT_LENS]
    adv = [a for grp in rloo(REWARDS) for a in grp]

    # generation uses a no-grad copy of the parameters
    p_nograd = {n: torch.from_numpy(a.astype(np.float64)) for n, a in params32}
    tw0 = twin.Twin(c, p_nograd)
    E0 = p_nograd["model.embed_tokens.weight"]

    ref = [("prefill", np.asarray(prefill, "<i4")), ("prefill_long", np.asarray(prefill_long, "<i4")),
           ("batch", np.asarray([B, G], "<i4"))]
    summary = []
    for mode in MODES:
        tau, sigma, tau_ans = mode_temps(mode, sigma32)
        mrng = np.random.default_rng([args.seed, case_id, MODES.index(mode) + 1])
        rollouts, redraws = [], 0
        for i in range(B * G):
            pf = prefill_long if PREFILL_LONG[i] else prefill
            while True:
                ro = generate(tw0, E0, mrng, prompts[i // G], mode, tau, sigma, tau_ans,
                              COT_LENS[i], pf, ANS_LENS[i])
                if ro is not None:
                    break
                redraws += 1
                if redraws > 50:
                    print("twin_rl.py: cannot draw fuzzy rollouts with a clear logit gap",
                          file=sys.stderr)
                    return 1
            rollouts.append(ro)

        def loss_parts(tw, E):
            lc, la = [], []
            for i, ro in enumerate(rollouts):
                pf = prefill_long if PREFILL_LONG[i] else prefill
                a, b = rollout_logp(tw, E, ro, mode, tau, sigma, tau_ans, pf, args.brk)
                lc.append(a)
                la.append(b)
            return lc, la

        params = {n: torch.from_numpy(a.astype(np.float64)).requires_grad_(True) for n, a in params32}
        tw = twin.Twin(c, params)
        lc, la = loss_parts(tw, params["model.embed_tokens.weight"])
        scale = -1.0 / (B * G)
        L_cot = scale * sum(A * l for A, l in zip(adv, lc))
        L = L_cot + scale * sum(A * l for A, l in zip(adv, la))
        plist = [params[n] for n in names]
        g_all = dict(zip(names, torch.autograd.grad(L, plist, retain_graph=True)))
        g_cot = dict(zip(names, torch.autograd.grad(L_cot, plist)))

        if args.selfcheck:
            def full_loss(t):
                a, b = loss_parts(t, t.p["model.embed_tokens.weight"])
                return scale * sum(A * (x + y) for A, x, y in zip(adv, a, b))
            w = selfcheck_fd(c, params32, names, full_loss, g_all,
                             np.random.default_rng([args.seed, case_id, 99]))
            if w is None:
                return 1
            print("selfcheck %s: finite differences agree (max rel err %.2e)" % (mode, w))

        cat = lambda key: np.asarray([t for ro in rollouts for t in ro[key]], "<i4")  # noqa: E731
        ncot = sum(COT_LENS)
        vecs = np.zeros((ncot, d), "<f4")
        if mode != "hard":
            vecs[:] = np.stack([v for ro in rollouts for v in ro["cot_vectors"]]).astype("<f4")
        m = mode + "."
        ref += [
            (m + "temps", np.asarray([tau, sigma, tau_ans], "<f4")),
            (m + "n_prompt", np.asarray([len(ro["prompt"]) for ro in rollouts], "<i4")),
            (m + "cot_len", np.asarray(COT_LENS, "<i4")),
            (m + "prefill_long", np.asarray(PREFILL_LONG, "<i4")),
            (m + "ans_len", np.asarray(ANS_LENS, "<i4")),
            (m + "prompt", cat("prompt")),
            (m + "cot_tokens", cat("cot_tokens")),
            (m + "cot_vectors", vecs),
            (m + "ans_tokens", cat("ans")),
            (m + "advantage", np.asarray(adv, "<f4")),
            (m + "logp_cot", np.asarray([float(x) for x in lc], "<f4")),
            (m + "logp_ans", np.asarray([float(x) for x in la], "<f4")),
            (m + "loss", np.asarray([float(L), float(L_cot)], "<f4")),
        ]
        for n in names:
            ref.append((m + "grad." + n, g_all[n].numpy().astype("<f4")))
        for n in names:
            ref.append((m + "grad_cot." + n, g_cot[n].numpy().astype("<f4")))
        gn = math.sqrt(sum(float((g ** 2).sum()) for g in g_all.values()))
        gcn = math.sqrt(sum(float((g ** 2).sum()) for g in g_cot.values()))
        gap = min(ro["min_gap"] for ro in rollouts)
        summary.append("%s: L=%.4f |grad|=%.4g |grad_cot|=%.4g mean l_cot=%.3f mean l_ans=%.3f%s"
                       % (mode, float(L), gn, gcn, sum(float(x) for x in lc) / len(lc),
                          sum(float(x) for x in la) / len(la),
                          " min top2 gap/tau=%.0f redraws=%d" % (gap / tau, redraws)
                          if mode == "fuzzy" else ""))

    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(twin.hf_config(args.case, c), f, indent=2)
        f.write("\n")
    twin.write_safetensors(os.path.join(args.out, "model.safetensors"), params32)
    twin.write_safetensors(os.path.join(args.out, "rl_ref.safetensors"), ref,
                           {"case": args.case, "seed": str(args.seed),
                            "broken": args.brk or "no"})
    print("twin_rl case=%s B=%d G=%d V=%d d=%d sigma=%.6g" % (args.case, B, G, V, d, sigma32))
    for s in summary:
        print("  " + s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
