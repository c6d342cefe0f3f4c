#!/usr/bin/python3
"""train_tokenizer.py - a small byte-level BPE tokenizer for the built-in base model.

Standard library only (run with /usr/bin/python3). Three subcommands:

  train  --out DIR [--vocab-size 512] [--template T] [--lead-in TEXT] FILE...
         Learns byte-level BPE merges on the text of FILE... (GSM8K-format JSONL rows are
         rendered exactly as `softcot sft` renders them: question in the prompt template,
         then " [<lead-in> ]<worked solution> The final answer is: \\boxed{N}"; any other file is read
         as plain text) and writes DIR/tokenizer.json and DIR/tokenizer_config.json in the
         Hugging Face format that src/text/ loads.
  render [--template T] [--lead-in TEXT] --index I FILE.jsonl
         Prints row I of a GSM8K-format file as `softcot sft` renders it (for tests).
  encode --tokenizer DIR [--add-special] (TEXT | -)
         Encodes TEXT with the tokenizer.json exactly as Hugging Face tokenizers would
         (Split regex, ByteLevel, BPE by merge rank, TemplateProcessing) and prints the ids
         separated by single spaces: the reference the C encoder is tested against
         (tests/test_base_tokenizer.sh).

Why the design:
  * The 256 byte tokens come first (id = byte value), so every text is encodable and the
    vocabulary is the byte alphabet plus merges plus <|bos|> and <|eos|>.
  * No merge ever involves a digit: each digit is its own token wherever it appears, so
    the tiny model sees the same token for "7" in every number (arithmetic is learnable).
  * The split regex is accepted by both Python's re and PCRE2 with the same meaning on
    ASCII text, so this file is an independent reference implementation of the encoder.
  * Training is deterministic: ties between equally frequent pairs are broken by the
    pair's spelling, and corpus order does not matter.
"""
import argparse
import collections
import json
import os
import re
import sys

SPLIT_REGEX = r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"
BOS = "<|bos|>"
EOS = "<|eos|>"
DEFAULT_TEMPLATE = "Question: {question}\nAnswer:"  # the base model's (docs/base-model.md)
STOP = "The final answer is:"


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map (Hugging Face ByteLevel)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHAR = bytes_to_unicode()
DIGIT_CHARS = {BYTE_CHAR[b] for b in b"0123456789"}


def pre_tokenize(text):
    """Split(SPLIT_REGEX, Isolated) then ByteLevel(add_prefix_space=False, use_regex=False)."""
    pieces = []
    pos = 0
    for m in re.finditer(SPLIT_REGEX, text):
        if m.start() > pos:  # Isolated keeps the unmatched gap as its own piece
            pieces.append(text[pos:m.start()])
        if m.end() > m.start():
            pieces.append(m.group(0))
        pos = m.end()
    if pos < len(text):
        pieces.append(text[pos:])
    return ["".join(BYTE_CHAR[b] for b in p.encode("utf-8")) for p in pieces]


def strip_calculator(s):
    """GSM8K's <<48/2=24>> calculator annotations are not part of the prose."""
    return re.sub(r"<<[^>]*>>", "", s)


def render_row(row, template, lead_in=""):
    """The text `softcot sft` trains on for one GSM8K-format row (prompt + target)."""
    q = row["question"]
    ans = row["answer"]
    sol, _, gold = ans.rpartition("####")
    sol = strip_calculator(sol).strip()
    gold = gold.strip().replace(",", "")
    prompt = template.replace("{question}", q)
    if lead_in and sol:
        sol = lead_in + " " + sol
    return prompt + " " + sol + " " + STOP + " \\boxed{" + gold + "}"


def corpus_texts(paths, template, lead_in=""):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            if path.endswith(".jsonl"):
                for i, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        yield render_row(json.loads(line), template, lead_in)
                    except (ValueError, KeyError) as e:
                        sys.exit(f"train_tokenizer.py: {path}:{i}: bad row ({e})")
            else:
                yield f.read()


def train(paths, vocab_size, template, lead_in=""):
    n_merges = vocab_size - 256 - 2
    if n_merges < 0:
        sys.exit("train_tokenizer.py: --vocab-size must be at least 258")
    words = collections.Counter()
    for text in corpus_texts(paths, template, lead_in):
        words.update(pre_tokenize(text))
    # each distinct word as a list of symbols, with its count
    seqs = [(list(w), c) for w, c in sorted(words.items())]
    merges = []
    vocab = [BYTE_CHAR[b] for b in range(256)]
    known = set(vocab)
    while len(merges) < n_merges:
        pairs = collections.Counter()
        for sym, c in seqs:
            for a, b in zip(sym, sym[1:]):
                pairs[(a, b)] += c
        best = None
        for (a, b), c in pairs.items():
            if any(ch in DIGIT_CHARS for ch in a + b):
                continue
            if a + b in known:  # another pair already spells this token
                continue
            key = (c, tuple(-ord(ch) for ch in a + " " + b))
            if best is None or key > best[0]:
                best = (key, (a, b))
        if best is None or best[0][0] < 2:
            break
        a, b = best[1]
        merges.append((a, b))
        vocab.append(a + b)
        known.add(a + b)
        for sym, _ in seqs:
            i = 0
            while i < len(sym) - 1:
                if sym[i] == a and sym[i + 1] == b:
                    sym[i:i + 2] = [a + b]
                i += 1
    return vocab, merges


def tokenizer_json(vocab, merges):
    bos_id, eos_id = len(vocab), len(vocab) + 1
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in ((bos_id, BOS), (eos_id, EOS))]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": SPLIT_REGEX}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": BOS, "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": BOS, "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": BOS, "type_id": 1}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {BOS: {"id": BOS, "ids": [bos_id], "tokens": [BOS]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(vocab)},
                  "merges": [[a, b] for a, b in merges]},
    }


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def cmd_train(args):
    vocab, merges = train(args.files, args.vocab_size, args.template, args.lead_in)
    os.makedirs(args.out, exist_ok=True)
    tj = tokenizer_json(vocab, merges)
    write_atomic(os.path.join(args.out, "tokenizer.json"), json.dumps(tj, ensure_ascii=False, indent=1) + "\n")
    cfg = {"bos_token": BOS, "eos_token": EOS, "add_bos_token": True, "add_eos_token": False,
           "model_max_length": 512, "clean_up_tokenization_spaces": False,
           "tokenizer_class": "PreTrainedTokenizerFast"}
    write_atomic(os.path.join(args.out, "tokenizer_config.json"), json.dumps(cfg, indent=1) + "\n")
    print(f"train_tokenizer.py: {len(vocab)} tokens + 2 special ({len(merges)} merges) -> {args.out}")


# ---- reference encoder ------------------------------------------------------------

def load(dir_):
    with open(os.path.join(dir_, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    pre = tj["pre_tokenizer"]["pretokenizers"]
    if pre[0]["type"] != "Split" or pre[0]["pattern"]["Regex"] != SPLIT_REGEX or pre[1]["type"] != "ByteLevel":
        sys.exit("train_tokenizer.py: encode only knows the tokenizers this script writes")
    model = tj["model"]
    ranks = {tuple(m if isinstance(m, list) else m.split(" ", 1)): i for i, m in enumerate(model["merges"])}
    added = {t["content"]: t["id"] for t in tj["added_tokens"]}
    prefix = [tj["post_processor"]["special_tokens"][BOS]["ids"][0]]
    return model["vocab"], ranks, added, prefix


def bpe(word, ranks):
    """Hugging Face BPE: repeatedly merge the adjacent pair with the lowest merge rank."""
    sym = list(word)
    while len(sym) > 1:
        best = None
        for i in range(len(sym) - 1):
            r = ranks.get((sym[i], sym[i + 1]))
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        sym[i:i + 2] = [sym[i] + sym[i + 1]]
    return sym


def encode(text, vocab, ranks, added, prefix, add_special):
    ids = list(prefix) if add_special else []
    # added tokens written in the text become their ids; the text between is encoded
    parts = re.split("(" + "|".join(re.escape(a) for a in sorted(added, key=len, reverse=True)) + ")", text)
    for k, part in enumerate(parts):
        if k % 2 == 1:
            ids.append(added[part])
            continue
        for word in pre_tokenize(part):
            ids.extend(vocab[s] for s in bpe(word, ranks))
    return ids


def cmd_encode(args):
    vocab, ranks, added, prefix = load(args.tokenizer)
    text = sys.stdin.buffer.read().decode("utf-8") if args.text == "-" else args.text
    print(" ".join(str(i) for i in encode(text, vocab, ranks, added, prefix, args.add_special)))


def cmd_render(args):
    with open(args.file, encoding="utf-8") as f:
        rows = [line for line in f if line.strip()]
    sys.stdout.write(render_row(json.loads(rows[args.index]), args.template, args.lead_in))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="learn merges and write DIR/tokenizer.json")
    t.add_argument("--out", required=True)
    t.add_argument("--vocab-size", type=int, default=512, help="total ids incl. 256 bytes and 2 special")
    t.add_argument("--template", default=DEFAULT_TEMPLATE, help="prompt template with {question}")
    t.add_argument("--lead-in", default="", help="text before every worked solution, as sft --lead-in")
    t.add_argument("files", nargs="+")
    e = sub.add_parser("encode", help="reference encoding, ids on one line")
    e.add_argument("--tokenizer", required=True)
    e.add_argument("--add-special", action="store_true")
    e.add_argument("text")
    r = sub.add_parser("render", help="print one JSONL row as sft renders it")
    r.add_argument("--template", default=DEFAULT_TEMPLATE)
    r.add_argument("--lead-in", default="")
    r.add_argument("--index", type=int, required=True)
    r.add_argument("file")
    args = ap.parse_args()
    {"train": cmd_train, "encode": cmd_encode, "render": cmd_render}[args.cmd](args)


if __name__ == "__main__":
    main()
