#!/bin/sh
# The committed built-in base model (inputs/models/base, made by `make base-model`): it
# loads, is small, and greedy generation on held-out synthetic test problems (the split
# and knobs of its recipe, sft_config.ini) is well formed: a worked solution, or (the
# recipe trains a share of examples answer-only) none, then "The final answer is: \boxed{N}".
# Accuracy is measured by tests/bench_base_model.c.
set -u
SOFTCOT=${SOFTCOT:?SOFTCOT must name the softcot binary}
DIR=${SOFTCOT_BASE_MODEL:-inputs/models/base}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { echo "ok - base model: $1"; }
notok() { echo "not ok - base model: $1: $2"; }

for f in config.json model.safetensors tokenizer.json tokenizer_config.json sft_config.ini README.md; do
    if [ ! -f "$DIR/$f" ]; then
        notok "files" "$DIR/$f missing (make base-model)"
        exit 1
    fi
done
bytes=$(cat "$DIR"/* | wc -c)
if [ "$bytes" -lt 5000000 ]; then ok "all files together are $bytes bytes (< 5 MB)"; else notok "size" "$bytes bytes"; fi

# prompts below are built with the recipe's template
tmpl=$(sed -n 's/^template = //p' "$DIR/sft_config.ini")
if [ "$tmpl" = 'Question: {question}\nAnswer:' ]; then ok "recipe template is the documented one"; else notok "template" "'$tmpl'"; fi

# the recipe's synthetic-task settings, in `softcot data synth` flags
synth=$(sed -n 's/^synth = //p' "$DIR/sft_config.ini")
flags=$(printf '%s' "$synth" | tr ',' '\n' | sed -n 's/^\([a-z_]*\)=\(.*\)$/--\1 \2/p' | tr '_' '-' | tr '\n' ' ')
# shellcheck disable=SC2086
if ! "$SOFTCOT" data synth --split test --n 4 $flags --out "$tmp/test.jsonl" >/dev/null 2>"$tmp/err"; then
    notok "test problems" "softcot data synth $flags: $(cat "$tmp/err")"
    exit 1
fi

i=0
while IFS= read -r line; do
    i=$((i + 1))
    q=$(printf '%s' "$line" | sed 's/^{"question":"\([^"]*\)".*/\1/')
    prompt=$(printf 'Question: %s\nAnswer:' "$q")
    "$SOFTCOT" generate --model "$DIR" --prompt "$prompt" --max-new 200 --greedy >"$tmp/out" 2>"$tmp/err"
    rc=$?
    # the continuation ends with the boxed integer, then EOS stops generation; before it
    # comes either working or nothing at all
    form=""
    if grep -q ' so [a-z]* has [0-9]* [-+*/] [0-9]* = [0-9]*' "$tmp/out"; then form="worked solution"
    elif grep -q '^Answer: The final answer is:' "$tmp/out"; then form="answer-only"
    fi
    if [ $rc -eq 0 ] && grep -q 'The final answer is: \\boxed{[0-9][0-9]*}$' "$tmp/out" && [ -n "$form" ]; then
        ok "problem $i: greedy $form ends in a boxed answer"
    else
        notok "problem $i: well-formed greedy answer" "status $rc: $(tr '\n' ' ' <"$tmp/out" | tail -c 300) $(head -c 200 "$tmp/err")"
    fi
done <"$tmp/test.jsonl"

# The recipe's lead-in puts the choice between working the problem and answering at once
# into the first CoT token (docs/base-model.md, "Why the lead-in"): on held-out problems
# that token is the lead-in's first word or " The" (of the stop string), nothing else.
lead=$(sed -n 's/^lead_in = //p' "$DIR/sft_config.ini")
first=${lead%% *}
if [ -z "$first" ]; then
    notok "first CoT token" "no lead_in in $DIR/sft_config.ini"
elif /usr/bin/python3 tools/first_token.py --softcot "$SOFTCOT" --n 8 --top 2 "$DIR" >"$tmp/first" 2>&1 &&
    /usr/bin/python3 - "$first" "$tmp/first" <<'PY'
import re, sys
want, line = sys.argv[1], open(sys.argv[2]).read()
cells = re.findall(r"'([^']*)' p ([0-9.]+) argmax ([0-9]+)", line)
toks = {t.strip(): (float(p), int(a)) for t, p, a in cells}
ok = set(toks) == {want, "The"} and sum(p for p, _ in toks.values()) > 0.99 and \
    sum(a for _, a in toks.values()) == 8
sys.exit(0 if ok else 1)
PY
then
    ok "the first CoT token is ' $first' (working) or ' The' (answering at once): $(sed 's/.*: //' "$tmp/first")"
else
    notok "first CoT token" "$(cat "$tmp/first")"
fi
