#!/usr/bin/python3
"""first_token.py - what a model writes first after the prompt, on the synthetic test set.

    /usr/bin/python3 tools/first_token.py [--n 200] [--softcot build/softcot] MODEL_DIR...

For each model: the first CoT token's probability, averaged over the first N held-out
synthetic test problems, for the tokens with the largest averages, and how many problems
have each token as the argmax (what greedy decoding writes). The built-in base model
chooses its habit there: ' The' starts "The final answer is:" (answer at once) and the
lead-in's first token starts the working (docs/base-model.md).

The logits come from the PyTorch twin (tests/twin/twin.py) in float64; the prompts are
the recipe's template encoded by `softcot tokenize --add-special`, as sft, train and
eval encode them. Needs /usr/bin/python3 with Debian's python3-torch and python3-numpy.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "twin"))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import twin  # noqa: E402

TEMPLATE = "Question: {question}\nAnswer:"


def die(msg):
    sys.exit("first_token.py: " + msg)


def load_twin(mdir):
    try:
        with open(os.path.join(mdir, "config.json")) as f:
            cfg = json.load(f)
        if cfg.get("model_type") != "llama" or cfg.get("rope_scaling"):
            die(f"{mdir}/config.json: only Llama without rope scaling is supported")
        c = dict(arch="llama", hidden=cfg["hidden_size"], inter=cfg["intermediate_size"],
                 layers=cfg["num_hidden_layers"], heads=cfg["num_attention_heads"],
                 kv_heads=cfg["num_key_value_heads"], head_dim=cfg.get("head_dim"),
                 vocab=cfg["vocab_size"], tied=cfg["tie_word_embeddings"], eps=cfg["rms_norm_eps"],
                 theta=cfg["rope_theta"], rope_scaling=None, max_pos=cfg["max_position_embeddings"])
        arrays, _ = twin.read_safetensors(os.path.join(mdir, "model.safetensors"))
    except (OSError, KeyError, ValueError, AssertionError) as e:
        die(f"{mdir}: cannot load the model ({e})")
    params = {n: torch.from_numpy(a.astype(np.float64)) for n, a in arrays.items()}
    return twin.Twin(c, params)


def encode_prompts(softcot, tok_dir, questions):
    out = []
    for q in questions:
        r = subprocess.run([softcot, "tokenize", "--tokenizer", tok_dir, "--ids", "--add-special",
                            TEMPLATE.replace("{question}", q)], capture_output=True, text=True)
        if r.returncode != 0:
            die(f"softcot tokenize: {r.stderr.strip()}")
        out.append([int(x) for x in r.stdout.split()])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="test problems (default 200)")
    ap.add_argument("--softcot", default=os.path.join(ROOT, "build", "softcot"))
    ap.add_argument("--top", type=int, default=3, help="tokens shown per model")
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    if a.n < 1:
        die("--n must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "test.jsonl")
        r = subprocess.run([a.softcot, "data", "synth", "--split", "test", "--n", str(a.n), "--out", path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            die(f"softcot data synth: {r.stderr.strip()}")
        with open(path) as f:
            questions = [json.loads(line)["question"] for line in f if line.strip()]
    torch.set_num_threads(1)
    for mdir in a.models:
        m = load_twin(mdir)
        with open(os.path.join(mdir, "tokenizer.json")) as f:
            inv = {v: k.replace("\u0120", " ") for k, v in json.load(f)["model"]["vocab"].items()}
        probs = []
        with torch.no_grad():
            for ids in encode_prompts(a.softcot, mdir, questions):
                tok = torch.tensor(ids, dtype=torch.int64)
                zeros = torch.zeros(len(ids), m.c["hidden"], dtype=torch.float64)
                logits = m.forward_packed(tok, zeros, [len(ids)])[-1]
                probs.append(torch.softmax(logits, -1).numpy())
        probs = np.array(probs)
        mean = probs.mean(0)
        argmax = np.bincount(probs.argmax(1), minlength=probs.shape[1])
        cells = [f"'{inv.get(int(t), t)}' p {mean[t]:.3f} argmax {argmax[t]}"
                 for t in np.argsort(-mean)[:a.top]]
        print(f"{mdir}: " + ", ".join(cells) + f" (of {len(questions)})")


if __name__ == "__main__":
    main()
