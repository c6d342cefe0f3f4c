#!/bin/sh
# softcot sft end to end: a tiny random model trained a few steps on the synthetic task and
# on a GSM8K-format file writes a complete, loadable model directory (also over an existing
# one); --help lists options with defaults; usage and input errors are one line with exit
# status 2 and leave no output directory.
set -u
SOFTCOT=${SOFTCOT:?SOFTCOT must name the softcot binary}
TOK=inputs/models/base
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { echo "ok - sft cli: $1"; }
notok() { echo "not ok - sft cli: $1: $2"; }

tiny="--init random --tokenizer $TOK --dim 32 --layers 1 --heads 2 --kv-heads 1 --hidden 64 --batch 4 --log-every 2 --warmup 1"

"$SOFTCOT" sft --help >"$tmp/help" 2>&1
if [ $? -eq 0 ] && grep -q -- '--synth_n' "$tmp/help" && grep -q 'Question: {question}' "$tmp/help"; then
    ok "--help lists the options with defaults"
else
    notok "--help" "$(head -c 300 "$tmp/help")"
fi

# shellcheck disable=SC2086
"$SOFTCOT" sft $tiny --synthetic --synth max_steps=1 --synth-n 50 --steps 4 --out "$tmp/m" >"$tmp/log" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ -f "$tmp/m/model.safetensors" ] && [ -f "$tmp/m/config.json" ] && [ -f "$tmp/m/tokenizer.json" ] &&
    [ -f "$tmp/m/tokenizer_config.json" ] && grep -q '^steps = 4$' "$tmp/m/sft_config.ini" && [ ! -e "$tmp/m.tmp" ] &&
    grep -q '^step     4/4  loss [0-9.]*  lr .* tok/s [0-9]* .*eta' "$tmp/log"; then
    ok "synthetic run writes a model directory and progress lines"
else
    notok "synthetic run" "status $rc: $(tail -c 400 "$tmp/log")"
fi
if "$SOFTCOT" generate --model "$tmp/m" --prompt "Question: 1+1" --max-new 4 --greedy >/dev/null 2>&1; then
    ok "the written model loads and generates"
else
    notok "written model loads" "generate failed"
fi

# --answer-only: a seeded share of the examples is trained on just "The final answer is: \boxed{N}"
answer_only_count() { # share -> "N" from the startup line "(N answer-only; ..."
    # shellcheck disable=SC2086
    "$SOFTCOT" sft $tiny --synthetic --synth max_steps=1 --synth-n 50 --steps 1 --answer-only "$1" \
        --out "$tmp/ao$1" 2>&1 | sed -n 's/.*50 examples (\([0-9]*\) answer-only; \([0-9.]*\) target tokens.*/\1 \2/p'
}
set -- "$(answer_only_count 0)" "$(answer_only_count 0.5)" "$(answer_only_count 1)" "$(answer_only_count 0.5)"
n0=${1% *} nh=${2% *} n1=${3% *} t0=${1#* } t1=${3#* }
if [ "$n0" = 0 ] && [ "$n1" = 50 ] && [ "$nh" -gt 10 ] && [ "$nh" -lt 40 ] && [ "$2" = "$4" ] &&
    awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b < a / 2) }' && grep -q '^answer_only = 0.5$' "$tmp/ao0.5/sft_config.ini"; then
    ok "--answer-only 0 / 0.5 / 1 drops the working from 0 / $nh / 50 of 50 examples, the same ones every run"
else
    notok "--answer-only" "counts and target tokens: '$1' '$2' '$3' '$4'"
fi

# --lead-in goes before each worked solution only: the target grows by its tokens times the
# number of worked examples (the means are printed to 0.1, so allow 5 tokens of rounding)
lead="Let us work it out."
nlead=$("$SOFTCOT" tokenize --tokenizer "$TOK" --ids " $lead" 2>/dev/null | wc -w)
# shellcheck disable=SC2086
tl=$("$SOFTCOT" sft $tiny --synthetic --synth max_steps=1 --synth-n 50 --steps 1 --answer-only 0.5 --lead-in "$lead" \
    --out "$tmp/lead" 2>&1 | sed -n 's/.*50 examples ([0-9]* answer-only; \([0-9.]*\) target tokens.*/\1/p')
th=${2#* }
if [ "$nlead" -gt 0 ] && [ -n "$tl" ] && grep -q "^lead_in = $lead\$" "$tmp/lead/sft_config.ini" &&
    awk -v a="$th" -v b="$tl" -v w=$((50 - nh)) -v k="$nlead" 'BEGIN { d = (b - a) * 50 - w * k; exit !(d < 5 && d > -5) }'; then
    ok "--lead-in adds its $nlead tokens to the $((50 - nh)) worked examples only"
else
    notok "--lead-in" "mean target tokens $th -> '$tl', $nlead lead-in tokens, $((50 - nh)) worked"
fi

# a GSM8K-format file (calculator annotations are stripped), over the existing directory
"$SOFTCOT" data synth --n 20 --max-steps 1 --out "$tmp/train.jsonl" >/dev/null 2>&1
before=$(cksum <"$tmp/m/model.safetensors")
# shellcheck disable=SC2086
"$SOFTCOT" sft $tiny --data "$tmp/train.jsonl" --steps 3 --lr 1e-2 --seed 9 --out "$tmp/m" >"$tmp/log2" 2>&1
rc=$?
after=$(cksum <"$tmp/m/model.safetensors")
if [ $rc -eq 0 ] && [ "$before" != "$after" ] && grep -q '^steps = 3$' "$tmp/m/sft_config.ini" && [ ! -e "$tmp/m.tmp" ]; then
    ok "--data FILE run replaces the files of an existing directory"
else
    notok "--data run over an existing directory" "status $rc: $(tail -c 300 "$tmp/log2")"
fi

# errors: one stderr line, status 2, no output directory
expect_error() {
    name=$1 needle=$2
    shift 2
    "$SOFTCOT" sft "$@" --out "$tmp/bad" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -qF -- "$needle" "$tmp/err" && [ ! -e "$tmp/bad" ]; then
        ok "$name"
    else
        notok "$name" "status $rc: $(head -c 300 "$tmp/err")"
    fi
}
# shellcheck disable=SC2086
expect_error "unknown option" "unknown option '--bogus'" $tiny --synthetic --bogus 1
# shellcheck disable=SC2086
expect_error "neither --model nor --init" "exactly one of --model DIR and --init random" --synthetic
# shellcheck disable=SC2086
expect_error "no data" "exactly one of --data FILE and --synthetic" $tiny
# shellcheck disable=SC2086
expect_error "bad synthetic setting" "max_steps" $tiny --synthetic --synth max_steps=0
# shellcheck disable=SC2086
expect_error "answer-only share out of range" "--answer-only must be a share in [0, 1]" $tiny --synthetic --answer-only 1.5
printf '{"question": "q", "answer": "no hashes"}\n' >"$tmp/bad.jsonl"
# shellcheck disable=SC2086
expect_error "bad data line names file and line" "bad.jsonl:1" $tiny --data "$tmp/bad.jsonl"
# shellcheck disable=SC2086
expect_error "example longer than the model" "exceeds the model's 16 positions" $tiny --synthetic --max-seq 16
