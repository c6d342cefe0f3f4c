#!/bin/sh
# The built-in base model's tokenizer (inputs/models/base, made by tools/train_tokenizer.py):
# the C encoder (softcot tokenize) and the script's independent Python reference encoder
# give identical ids on synthetic problems rendered as `softcot sft` renders them and on
# whitespace / punctuation / non-ASCII edge cases; every digit is a token of its own; BOS
# and EOS are the tokenizer_config.json ones.
set -u
SOFTCOT=${SOFTCOT:?SOFTCOT must name the softcot binary}
PY=/usr/bin/python3
TOOL=tools/train_tokenizer.py
DIR=inputs/models/base
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { echo "ok - base tokenizer: $1"; }
notok() { echo "not ok - base tokenizer: $1: $2"; }

if [ ! -f "$DIR/tokenizer.json" ]; then
    notok "present" "$DIR/tokenizer.json missing (make base-model)"
    exit 1
fi

# same ids from C and Python for the file $1 (raw bytes); $2 = name, $3 = extra flag
compare() {
    c=$("$SOFTCOT" tokenize --tokenizer "$DIR" --ids $3 - <"$1" 2>&1)
    p=$("$PY" "$TOOL" encode --tokenizer "$DIR" $3 - <"$1" 2>&1)
    if [ -n "$c" ] && [ "$c" = "$p" ]; then ok "C and Python agree: $2"; else notok "C and Python agree: $2" "C '$c' vs Python '$p'"; fi
}

"$SOFTCOT" data synth --split test --n 6 --seed 7 --out "$tmp/test.jsonl" >/dev/null 2>&1 ||
    notok "synthetic problems" "softcot data synth failed"
lead=$(sed -n 's/^lead_in = //p' "$DIR/sft_config.ini" 2>/dev/null)
for i in 0 1 2 3 4 5; do
    "$PY" "$TOOL" render --lead-in "$lead" --index $i "$tmp/test.jsonl" >"$tmp/p$i.txt"
    compare "$tmp/p$i.txt" "synthetic test problem $i" ""
done
compare "$tmp/p0.txt" "synthetic problem with --add-special" "--add-special"

printf '  two  spaces,\ttab\n\nnewlines   \n' >"$tmp/e1.txt"
compare "$tmp/e1.txt" "runs of whitespace, tabs, newlines" ""
printf 'x<|eos|>y <|bos|> 1,234.50 -7 \\frac{3}{4} (a+b)^2 caf\303\251 \342\202\254 42%%' >"$tmp/e2.txt"
compare "$tmp/e2.txt" "special tokens in text, numbers, LaTeX, UTF-8" "--add-special"

# digits: every piece that contains a digit is exactly that digit
"$SOFTCOT" tokenize --tokenizer "$DIR" - <"$tmp/p1.txt" >"$tmp/pieces" 2>&1
bad=$(tr ',' '\n' <"$tmp/pieces" | tr -d '[]' | grep '[0-9]' | grep -v '^"[0-9]"$' | head -3)
ndig=$(tr ',' '\n' <"$tmp/pieces" | grep -c '^"[0-9]"$')
if [ -z "$bad" ] && [ "$ndig" -gt 3 ]; then ok "digits are single tokens ($ndig digit tokens)"; else notok "digits are single tokens" "pieces $bad (digits $ndig)"; fi

# BOS is prepended; <|eos|> in text becomes the EOS id; both are the last two ids
bos=$(printf '' | "$SOFTCOT" tokenize --tokenizer "$DIR" --ids --add-special - 2>&1)
eos=$(printf '<|eos|>' | "$SOFTCOT" tokenize --tokenizer "$DIR" --ids - 2>&1)
n=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["model"]["vocab"]))' "$DIR/tokenizer.json")
if [ "$bos" = "$n" ] && [ "$eos" = "$((n + 1))" ] && [ "$n" -le 510 ]; then
    ok "BOS $bos and EOS $eos follow the $n byte+merge tokens"
else
    notok "BOS and EOS ids" "bos '$bos' eos '$eos' vocab $n"
fi
