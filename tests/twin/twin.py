#!/usr/bin/python3
"""PyTorch twin of the softcot model engine (reference for the C model test).

Implements LlamaForCausalLM and Qwen2ForCausalLM the way Hugging Face transformers
defines them (modeling_llama.py / modeling_qwen2.py), in float64, for tiny random
configs. For one case it writes, into --out DIR:

  config.json         Hugging Face config of the case
  model.safetensors   F32 parameters under the exact HF tensor names
  ref.safetensors     inputs (tokens / vectors / seq_lens), logits, the fixed upstream
                      gradient dlogits, and grad.<hf name> for every parameter, where the
                      loss is L = sum(logits * dlogits)

It also runs an incremental KV-cache decode and checks it reproduces the full forward
pass (max abs diff < 1e-9 in float64), exiting 1 otherwise.

Usage:
  /usr/bin/python3 tests/twin/twin.py --list
  /usr/bin/python3 tests/twin/twin.py --case NAME --out DIR [--seed S] [--selfcheck]

Only the Python standard library, numpy and torch are used. All randomness comes from
numpy's PCG64 seeded by (--seed, case), so the same arguments give byte-identical files.
"""

import argparse
import json
import math
import os
import struct
import sys
import zlib

# One BLAS/OpenMP thread: deterministic reductions (the shapes are tiny anyway). Debian's
# torch uses the system OpenBLAS, which reads its thread count when it is loaded.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# --------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------
# arch: "llama" or "qwen2". head_dim: None means hidden/heads and the key is not written.
CASES = {
    # Llama, GQA 4/2, untied lm_head, llama3 rope scaling. With theta=5e5, head size 16
    # and original_max_position_embeddings=64 (low=1, high=4: wavelength thresholds 64
    # and 16) the 8 frequencies have wavelengths 6.3 (kept), 32.4 (interpolated) and
    # 167..6.1e5 (scaled by 1/factor): all three regimes occur.
    "llama_gqa_rope3": dict(
        arch="llama", hidden=64, inter=160, layers=2, heads=4, kv_heads=2, head_dim=None,
        vocab=256, tied=False, eps=1e-5, theta=500000.0,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                          high_freq_factor=4.0, original_max_position_embeddings=64),
        max_pos=512, seq_lens=[7, 13, 4]),
    # Qwen2 with q/k/v biases, tied embeddings, GQA 6/2 (head size 8).
    "qwen2_bias_tied": dict(
        arch="qwen2", hidden=48, inter=128, layers=2, heads=6, kv_heads=2, head_dim=None,
        vocab=300, tied=True, eps=1e-6, theta=1000000.0, rope_scaling=None,
        max_pos=512, seq_lens=[9, 5, 12]),
    # Llama MHA, tied, explicit head_dim (16) != hidden/heads (12), three layers.
    "llama_headdim_tied": dict(
        arch="llama", hidden=48, inter=96, layers=3, heads=4, kv_heads=4, head_dim=16,
        vocab=200, tied=True, eps=1e-5, theta=10000.0, rope_scaling=None,
        max_pos=256, seq_lens=[6, 11, 3]),
    # Qwen2, untied lm_head, multi-query attention (one KV head), single layer, and a
    # batch that includes a length-1 sequence.
    "qwen2_mqa_untied": dict(
        arch="qwen2", hidden=48, inter=112, layers=1, heads=4, kv_heads=1, head_dim=None,
        vocab=128, tied=False, eps=1e-6, theta=1000000.0, rope_scaling=None,
        max_pos=256, seq_lens=[10, 1, 8, 5]),
}


def head_size(c):
    return c["head_dim"] if c["head_dim"] is not None else c["hidden"] // c["heads"]


def hf_config(name, c):
    cfg = {}
    if c["arch"] == "llama":
        cfg["architectures"] = ["LlamaForCausalLM"]
        cfg["model_type"] = "llama"
    else:
        cfg["architectures"] = ["Qwen2ForCausalLM"]
        cfg["model_type"] = "qwen2"
    cfg.update({
        "hidden_size": c["hidden"],
        "intermediate_size": c["inter"],
        "num_hidden_layers": c["layers"],
        "num_attention_heads": c["heads"],
        "num_key_value_heads": c["kv_heads"],
    })
    if c["head_dim"] is not None:
        cfg["head_dim"] = c["head_dim"]
    cfg.update({
        "hidden_act": "silu",
        "rms_norm_eps": c["eps"],
        "rope_theta": c["theta"],
        "rope_scaling": c["rope_scaling"],
        "tie_word_embeddings": c["tied"],
        "vocab_size": c["vocab"],
        "max_position_embeddings": c["max_pos"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float32",
    })
    if c["arch"] == "llama":
        cfg["attention_bias"] = False
        cfg["mlp_bias"] = False
    else:
        cfg["use_sliding_window"] = False
    return cfg


# --------------------------------------------------------------------------------------
# Safetensors (hand-written writer and reader)
# --------------------------------------------------------------------------------------
_DT = {np.dtype("<f4"): "F32", np.dtype("<i4"): "I32", np.dtype("<f8"): "F64"}


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, np.ndarray). Data laid out in list order."""
    header = {}
    blobs = []
    off = 0
    for name, a in tensors:
        a = np.ascontiguousarray(a)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        if a.dtype not in _DT:
            raise ValueError("unsupported dtype %s for %s" % (a.dtype, name))
        b = a.tobytes()
        header[name] = {"dtype": _DT[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    meta = {"format": "pt"}
    if metadata:
        meta.update(metadata)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    """Strict reader used by the self-check: validates the layout, returns dict name->array."""
    inv = {"F32": np.dtype("<f4"), "I32": np.dtype("<i4"), "F64": np.dtype("<f8")}
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) >= 8, "truncated"
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0 and 8 + n <= len(data), "bad header length"
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    out = {}
    spans = []
    for name, e in header.items():
        if name == "__metadata__":
            assert all(isinstance(v, str) for v in e.values())
            continue
        dt = inv[e["dtype"]]
        b, en = e["data_offsets"]
        count = int(np.prod(e["shape"])) if e["shape"] else 1
        assert en - b == count * dt.itemsize, "size mismatch for " + name
        assert 0 <= b <= en <= len(body), "offsets out of range for " + name
        spans.append((b, en, name))
        out[name] = np.frombuffer(body[b:en], dtype=dt).reshape(e["shape"])
    spans.sort()
    pos = 0
    for b, en, name in spans:
        assert b == pos, "gap/overlap before " + name
        pos = en
    assert pos == len(body), "trailing bytes"
    return out, header


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------
def param_specs(c):
    d, ff, V = c["hidden"], c["inter"], c["vocab"]
    nh, nkv, hs = c["heads"], c["kv_heads"], head_size(c)
    bias = c["arch"] == "qwen2"
    specs = [("model.embed_tokens.weight", (V, d), "embed")]
    for i in range(c["layers"]):
        p = "model.layers.%d." % i
        specs.append((p + "input_layernorm.weight", (d,), "norm"))
        specs.append((p + "self_attn.q_proj.weight", (nh * hs, d), "qk"))
        if bias:
            specs.append((p + "self_attn.q_proj.bias", (nh * hs,), "bias"))
        specs.append((p + "self_attn.k_proj.weight", (nkv * hs, d), "qk"))
        if bias:
            specs.append((p + "self_attn.k_proj.bias", (nkv * hs,), "bias"))
        specs.append((p + "self_attn.v_proj.weight", (nkv * hs, d), "mat"))
        if bias:
            specs.append((p + "self_attn.v_proj.bias", (nkv * hs,), "bias"))
        specs.append((p + "self_attn.o_proj.weight", (d, nh * hs), "mat"))
        specs.append((p + "post_attention_layernorm.weight", (d,), "norm"))
        specs.append((p + "mlp.gate_proj.weight", (ff, d), "mat"))
        specs.append((p + "mlp.up_proj.weight", (ff, d), "mat"))
        specs.append((p + "mlp.down_proj.weight", (d, ff), "mat"))
    specs.append(("model.norm.weight", (d,), "norm"))
    if not c["tied"]:
        specs.append(("lm_head.weight", (V, d), "embed"))
    return specs


def init_params(c, rng):
    out = []
    for name, shape, kind in param_specs(c):
        if kind == "embed":
            a = rng.normal(0.0, 0.1, shape)
        elif kind == "qk":
            a = rng.normal(0.0, 0.12, shape)  # a bit larger: non-uniform attention
        elif kind == "mat":
            a = rng.normal(0.0, 0.08, shape)
        elif kind == "norm":
            a = 1.0 + rng.normal(0.0, 0.1, shape)
        elif kind == "bias":
            a = rng.normal(0.0, 0.1, shape)
        else:
            raise AssertionError(kind)
        out.append((name, a.astype("<f4")))
    return out


# --------------------------------------------------------------------------------------
# The model (float64), following transformers' modeling_llama.py / modeling_qwen2.py
# --------------------------------------------------------------------------------------
def rope_inv_freq(c):
    """_compute_default_rope_parameters, then _compute_llama3_parameters if configured.
    Returns (inv_freq float64 [hs/2], regime counts or None)."""
    dim = head_size(c)
    inv_freq = 1.0 / (c["theta"] ** (torch.arange(0, dim, 2, dtype=torch.int64)
                                      .to(torch.float64) / dim))
    rs = c["rope_scaling"]
    if rs is None:
        return inv_freq, None
    assert rs["rope_type"] == "llama3"
    factor = rs["factor"]
    low_freq_factor = rs["low_freq_factor"]
    high_freq_factor = rs["high_freq_factor"]
    old_context_len = rs["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    # wavelen < high_freq_wavelen: do nothing; wavelen > low_freq_wavelen: divide by factor
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    # otherwise: interpolate between the two, using a smooth factor
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (
        high_freq_factor - low_freq_factor)
    smoothed_inv_freq = ((1 - smooth_factor) * inv_freq_llama / factor
                         + smooth_factor * inv_freq_llama)
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    inv_freq_llama = torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    counts = {
        "kept": int((wavelen < high_freq_wavelen).sum()),
        "interpolated": int(is_medium_freq.sum()),
        "scaled": int((wavelen > low_freq_wavelen).sum()),
    }
    # Numerical verification of the regimes on the returned frequencies.
    r = inv_freq_llama / inv_freq
    n_kept = int((r == 1.0).sum())
    n_scaled = int((r == 1.0 / factor).sum())
    n_interp = int(((r > 1.0 / factor) & (r < 1.0)).sum())
    assert (n_kept, n_interp, n_scaled) == (counts["kept"], counts["interpolated"],
                                            counts["scaled"]), (r, counts)
    return inv_freq_llama, counts


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(inv_freq, positions):
    """positions: float64 [T]. Returns cos, sin [T, hs] (LlamaRotaryEmbedding.forward;
    attention_scaling is 1.0 for default and llama3)."""
    freqs = positions[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def apply_rotary(x, cos, sin):
    # x [heads, T, hs], cos/sin [T, hs]
    return x * cos[None] + rotate_half(x) * sin[None]


def rmsnorm(x, w, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + eps))


def repeat_kv(x, n_rep):
    # x [nkv, T, hs] -> [nkv*n_rep, T, hs]; kv head j serves query heads j*n_rep..+n_rep-1
    if n_rep == 1:
        return x
    nkv, T, hs = x.shape
    return x[:, None].expand(nkv, n_rep, T, hs).reshape(nkv * n_rep, T, hs)


class Twin:
    def __init__(self, c, params):
        """params: dict name -> float64 tensor (may require grad)."""
        self.c = c
        self.p = params
        self.nh, self.nkv, self.hs = c["heads"], c["kv_heads"], head_size(c)
        self.bias = c["arch"] == "qwen2"
        self.inv_freq, self.rope_counts = rope_inv_freq(c)

    def embed(self, tokens, vectors):
        """tokens int64 [T] (-1 = vector), vectors float64 [T, d] -> inputs_embeds."""
        E = self.p["model.embed_tokens.weight"]
        is_vec = tokens < 0
        emb = E[tokens.clamp(min=0)]
        return torch.where(is_vec[:, None], vectors, emb)

    def qkv(self, i, h):
        p = "model.layers.%d.self_attn." % i
        T = h.shape[0]
        q = h @ self.p[p + "q_proj.weight"].T
        k = h @ self.p[p + "k_proj.weight"].T
        v = h @ self.p[p + "v_proj.weight"].T
        if self.bias:
            q = q + self.p[p + "q_proj.bias"]
            k = k + self.p[p + "k_proj.bias"]
            v = v + self.p[p + "v_proj.bias"]
        q = q.view(T, self.nh, self.hs).transpose(0, 1)
        k = k.view(T, self.nkv, self.hs).transpose(0, 1)
        v = v.view(T, self.nkv, self.hs).transpose(0, 1)
        return q, k, v

    def attn_out(self, i, o):
        # o [nh, T, hs] -> [T, d]
        T = o.shape[1]
        o = o.transpose(0, 1).reshape(T, self.nh * self.hs)
        return o @ self.p["model.layers.%d.self_attn.o_proj.weight" % i].T

    def mlp(self, i, x):
        p = "model.layers.%d.mlp." % i
        g = x @ self.p[p + "gate_proj.weight"].T
        u = x @ self.p[p + "up_proj.weight"].T
        return (torch.nn.functional.silu(g) * u) @ self.p[p + "down_proj.weight"].T

    def head(self, x):
        x = rmsnorm(x, self.p["model.norm.weight"], self.c["eps"])
        W = self.p["model.embed_tokens.weight" if self.c["tied"] else "lm_head.weight"]
        return x @ W.T

    def forward_seq(self, x):
        """Full causal forward of one sequence. x: inputs_embeds [T, d] -> logits [T, V]."""
        c = self.c
        T = x.shape[0]
        pos = torch.arange(T, dtype=torch.float64)
        cos, sin = rope_cos_sin(self.inv_freq, pos)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        scale = 1.0 / math.sqrt(self.hs)
        for i in range(c["layers"]):
            pl = "model.layers.%d." % i
            h = rmsnorm(x, self.p[pl + "input_layernorm.weight"], c["eps"])
            q, k, v = self.qkv(i, h)
            q = apply_rotary(q, cos, sin)
            k = apply_rotary(k, cos, sin)
            k = repeat_kv(k, self.nh // self.nkv)
            v = repeat_kv(v, self.nh // self.nkv)
            s = (q @ k.transpose(1, 2)) * scale
            s = s.masked_fill(mask[None], float("-inf"))
            a = torch.softmax(s, dim=-1)
            x = x + self.attn_out(i, a @ v)
            h = rmsnorm(x, self.p[pl + "post_attention_layernorm.weight"], c["eps"])
            x = x + self.mlp(i, h)
        return self.head(x)

    def decode_seq(self, x):
        """Incremental decode with a per-layer KV cache, one position at a time.
        Independent code path for attention (explicit per-head loop over the cache)."""
        c = self.c
        T = x.shape[0]
        rep = self.nh // self.nkv
        kc = [[] for _ in range(c["layers"])]  # per layer: list of [nkv, hs] (post-rope)
        vc = [[] for _ in range(c["layers"])]
        out = []
        scale = 1.0 / math.sqrt(self.hs)
        for t in range(T):
            cos, sin = rope_cos_sin(self.inv_freq, torch.tensor([float(t)], dtype=torch.float64))
            xt = x[t:t + 1]
            for i in range(c["layers"]):
                pl = "model.layers.%d." % i
                h = rmsnorm(xt, self.p[pl + "input_layernorm.weight"], c["eps"])
                q, k, v = self.qkv(i, h)  # [heads, 1, hs]
                q = apply_rotary(q, cos, sin)[:, 0]
                k = apply_rotary(k, cos, sin)[:, 0]
                kc[i].append(k)
                vc[i].append(v[:, 0])
                K = torch.stack(kc[i], dim=1)  # [nkv, t+1, hs]
                Vv = torch.stack(vc[i], dim=1)
                heads = []
                for hh in range(self.nh):
                    g = hh // rep
                    s = (K[g] @ q[hh]) * scale  # [t+1]
                    s = s - s.max()
                    e = s.exp()
                    heads.append((e / e.sum()) @ Vv[g])
                o = torch.stack(heads, dim=0)[:, None]  # [nh, 1, hs]
                xt = xt + self.attn_out(i, o)
                h = rmsnorm(xt, self.p[pl + "post_attention_layernorm.weight"], c["eps"])
                xt = xt + self.mlp(i, h)
            out.append(self.head(xt)[0])
        return torch.stack(out, dim=0)

    def forward_packed(self, tokens, vectors, seq_lens):
        x = self.embed(tokens, vectors)
        outs = []
        s = 0
        for n in seq_lens:
            outs.append(self.forward_seq(x[s:s + n]))
            s += n
        return torch.cat(outs, dim=0)

    def decode_packed(self, tokens, vectors, seq_lens):
        x = self.embed(tokens, vectors)
        outs = []
        s = 0
        for n in seq_lens:
            outs.append(self.decode_seq(x[s:s + n]))
            s += n
        return torch.cat(outs, dim=0)


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------
def make_inputs(c, rng, E32):
    """tokens int32 [T] (-1 at vector positions), vectors float32 [T, d]."""
    seq_lens = list(c["seq_lens"])
    T = sum(seq_lens)
    V, d = c["vocab"], c["hidden"]
    tokens = rng.integers(3, V, size=T).astype("<i4")
    is_vec = np.zeros(T, dtype=bool)
    s = 0
    for n in seq_lens:
        if n > 1:
            k = min(n - 1, max(1, int(round(n / 3.0))))  # about a third of the length
            idx = rng.choice(np.arange(1, n), size=k, replace=False)
            is_vec[s + idx] = True
        s += n
    # soft-token-like vectors: p^T E with p = softmax(z / 0.5), plus noise 0.33 * rms(E)
    E = E32.astype(np.float64)
    sigma = 0.33 * math.sqrt(float(np.mean(E * E)))
    vectors = np.zeros((T, d), dtype=np.float64)
    for t in np.nonzero(is_vec)[0]:
        z = rng.normal(0.0, 3.0, V) / 0.5
        p = np.exp(z - z.max())
        p /= p.sum()
        vectors[t] = p @ E + sigma * rng.normal(0.0, 1.0, d)
    tokens[is_vec] = -1
    return tokens, vectors.astype("<f4"), np.asarray(seq_lens, dtype="<i4")


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------
def die(msg):
    print("twin.py: error: " + msg, file=sys.stderr)
    sys.exit(2)


def compute(c, params32, tokens, vectors, seq_lens, dlogits):
    """Returns (twin, params64 dict, logits64, grads dict name->float64 tensor)."""
    params = {n: torch.from_numpy(a.astype(np.float64)).requires_grad_(True)
              for n, a in params32}
    twin = Twin(c, params)
    tok = torch.from_numpy(tokens.astype(np.int64))
    vec = torch.from_numpy(vectors.astype(np.float64))
    logits = twin.forward_packed(tok, vec, [int(n) for n in seq_lens])
    dl = torch.from_numpy(dlogits.astype(np.float64))
    loss = (logits * dl).sum()
    names = [n for n, _ in params32]
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    return twin, params, logits.detach(), dict(zip(names, grads)), tok, vec


def selfcheck(c, params32, tokens, vectors, seq_lens, dlogits, grads, rng_seed, out_dir):
    """Central finite differences in float64 on a few entries of every parameter tensor,
    plus a re-read of both safetensors files."""
    names = [n for n, _ in params32]
    base = {n: a.astype(np.float64) for n, a in params32}
    tok = torch.from_numpy(tokens.astype(np.int64))
    vec = torch.from_numpy(vectors.astype(np.float64))
    dl = torch.from_numpy(dlogits.astype(np.float64))
    lens = [int(n) for n in seq_lens]

    def loss_with(name, idx, delta):
        p = {n: torch.from_numpy(base[n]) for n in names}
        q = p[name].clone()
        q.view(-1)[idx] += delta
        p[name] = q
        return float((Twin(c, p).forward_packed(tok, vec, lens) * dl).sum())

    rng = np.random.default_rng(rng_seed)
    h = 1e-5
    worst = 0.0
    nchk = 0
    for n in names:
        g = grads[n].reshape(-1).numpy()
        # the largest-gradient entry plus two random ones
        idxs = [int(np.argmax(np.abs(g)))] + [int(i) for i in rng.integers(0, g.size, 2)]
        for idx in idxs:
            fd = (loss_with(n, idx, h) - loss_with(n, idx, -h)) / (2 * h)
            # finite-difference noise is ~1e-10 absolute (h=1e-5, |L| ~ 10..100)
            err = abs(fd - g[idx]) / max(1e-3, abs(g[idx]), abs(fd))
            worst = max(worst, err)
            nchk += 1
            if abs(fd - g[idx]) > 1e-6 * abs(g[idx]) + 1e-8:
                print("selfcheck FAIL: %s[%d] autograd %.10g finite-diff %.10g"
                      % (n, idx, g[idx], fd), file=sys.stderr)
                sys.exit(1)
    # files parse, offsets contiguous, contents round-trip
    mdl, _ = read_safetensors(os.path.join(out_dir, "model.safetensors"))
    ref, _ = read_safetensors(os.path.join(out_dir, "ref.safetensors"))
    assert list(mdl.keys()) == names
    for n, a in params32:
        assert np.array_equal(mdl[n], a), n
        assert ref["grad." + n].shape == a.shape, n
    with open(os.path.join(out_dir, "config.json")) as f:
        json.load(f)
    print("selfcheck: %d finite-difference probes, max rel err %.2e (floor 1e-3); files re-read OK"
          % (nchk, worst))


def main(argv):
    ap = argparse.ArgumentParser(description="PyTorch twin of the softcot model engine.")
    ap.add_argument("--list", action="store_true", help="print the case names and exit")
    ap.add_argument("--case", help="case name (see --list)")
    ap.add_argument("--out", help="output directory (created if missing)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--selfcheck", action="store_true",
                    help="also check autograd against finite differences and re-read files")
    args = ap.parse_args(argv)

    if args.list:
        for n in CASES:
            print(n)
        return 0
    if not args.case:
        die("--case is required (or --list)")
    if args.case not in CASES:
        die("unknown case '%s'; known: %s" % (args.case, ", ".join(CASES)))
    if not args.out:
        die("--out DIR is required")
    if args.seed < 0 or args.seed >= 2 ** 32:
        die("--seed must be in [0, 2^32)")
    c = CASES[args.case]
    if c["heads"] % c["kv_heads"] != 0:
        die("bad case: heads not a multiple of kv_heads")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        die("cannot create --out '%s': %s" % (args.out, e))

    # Independent streams per case so adding cases never changes existing outputs.
    case_id = zlib.crc32(args.case.encode())
    rng = np.random.default_rng([args.seed, case_id])
    params32 = init_params(c, rng)
    E32 = dict(params32)["model.embed_tokens.weight"]
    tokens, vectors, seq_lens = make_inputs(c, rng, E32)
    T, V = len(tokens), c["vocab"]
    dlogits = rng.normal(0.0, 1.0, (T, V)).astype("<f4")

    twin, params, logits, grads, tok, vec = compute(c, params32, tokens, vectors, seq_lens,
                                                    dlogits)
    with torch.no_grad():
        dec = twin.decode_packed(tok, vec, [int(n) for n in seq_lens])
    dec_diff = float((dec - logits).abs().max())
    if not (dec_diff < 1e-9):
        print("twin.py: KV-cache decode check FAILED for case %s: max |decode - full| = %.3e "
              "(limit 1e-9); the incremental path disagrees with the full forward"
              % (args.case, dec_diff), file=sys.stderr)
        return 1
    if not torch.isfinite(logits).all():
        print("twin.py: non-finite logits in case %s" % args.case, file=sys.stderr)
        return 1

    # Write files.
    cfg = hf_config(args.case, c)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(args.out, "model.safetensors"), params32)
    ref = [("tokens", tokens), ("vectors", vectors), ("seq_lens", seq_lens),
           ("logits", logits.numpy().astype("<f4")), ("dlogits", dlogits)]
    for n, _ in params32:
        ref.append(("grad." + n, grads[n].numpy().astype("<f4")))
    write_safetensors(os.path.join(args.out, "ref.safetensors"), ref,
                      {"case": args.case, "seed": str(args.seed)})

    if twin.rope_counts is not None:
        rc = twin.rope_counts
        print("rope llama3: %d frequencies kept, %d interpolated, %d scaled"
              % (rc["kept"], rc["interpolated"], rc["scaled"]))
        if min(rc.values()) == 0:
            print("twin.py: case %s does not exercise all three llama3 regimes" % args.case,
                  file=sys.stderr)
            return 1
    if args.selfcheck:
        selfcheck(c, params32, tokens, vectors, seq_lens, dlogits, grads,
                  [args.seed, case_id, 1], args.out)
    nvec = int((tokens < 0).sum())
    print("twin case=%s T=%d B=%d vectors=%d V=%d max|logit|=%.4f logit_std=%.4f "
          "decode_max_diff=%.3e"
          % (args.case, T, len(seq_lens), nvec, V, float(logits.abs().max()),
             float(logits.std()), dec_diff))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
