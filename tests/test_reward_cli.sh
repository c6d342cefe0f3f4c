#!/bin/sh
# softcot reward and softcot data: scores with reasons, --boxed, synth output read back by
# the GSM8K reader (data check), MMLU/ARC row counts, and one-line errors with status 2.
set -u
SOFTCOT=${SOFTCOT:?SOFTCOT must name the softcot binary}
SHARED=${SOFTCOT_SHARED:-../shared}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { echo "ok - reward/data cli: $1"; }
notok() { echo "not ok - reward/data cli: $1: $2"; }
expect() { if [ "$3" = "$2" ]; then ok "$1"; else notok "$1" "got '$3', want '$2'"; fi; }
expect_error() {
    name=$1 want_rc=$2 needle=$3
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" -eq "$want_rc" ] && [ "$lines" -eq 1 ] && grep -qF -- "$needle" "$tmp/err" && [ ! -s "$tmp/out" ]; then
        ok "$name"
    else
        notok "$name" "status $rc, $lines stderr lines: $(head -c 300 "$tmp/err")"
    fi
}

expect "100 for an equivalent answer" "100 equivalent" "$("$SOFTCOT" reward --gold '\frac12' --answer '0.5} and more')"
expect "10 for a closed wrong answer" "10 not equivalent to the gold answer" "$("$SOFTCOT" reward --gold 7 --answer '8}')"
expect "0 for an unclosed answer" "0 no closing brace" "$("$SOFTCOT" reward --gold 7 --answer '7')"
expect "--boxed scores the last box" "100" "$("$SOFTCOT" reward --gold=1080 --answer='first \boxed{2}, then \boxed{1,080}.' --boxed | cut -d' ' -f1)"
expect_error "reward without --gold" 2 "--gold is required" "$SOFTCOT" reward --answer 5
expect_error "reward with an unknown option" 2 "unknown option '--bogus'" "$SOFTCOT" reward --gold 1 --answer 1 --bogus
"$SOFTCOT" reward --help | grep -q 'usage: softcot reward' && ok "reward --help" || notok "reward --help" "no usage"

# data synth -> GSM8K reader
if "$SOFTCOT" data synth --out "$tmp/train.jsonl" --n 200 --seed 5 --max-steps 2 >"$tmp/log" 2>&1; then
    expect "synth writes N rows" "200" "$(wc -l <"$tmp/train.jsonl" | tr -d ' ')"
    expect "synth output reads back as GSM8K" "200 rows, 0 bad lines skipped" "$("$SOFTCOT" data check --format gsm8k "$tmp/train.jsonl")"
    "$SOFTCOT" data synth --out "$tmp/again.jsonl" --n 200 --seed 5 --max-steps 2 >/dev/null
    if cmp -s "$tmp/train.jsonl" "$tmp/again.jsonl"; then ok "synth is deterministic"; else notok "synth is deterministic" "files differ"; fi
    "$SOFTCOT" data synth --out "$tmp/test.jsonl" --split test --n 200 --seed 5 --max-steps 2 >/dev/null
    common=$(sed 's/"answer".*//' "$tmp/train.jsonl" "$tmp/test.jsonl" | sort | uniq -d | wc -l | tr -d ' ')
    expect "synth train and test files share no question" "0" "$common"
    ls "$tmp"/*.tmp >/dev/null 2>&1 && notok "no temp file left" "$(ls "$tmp")" || ok "no temp file left"
else
    notok "synth runs" "$(cat "$tmp/log")"
fi
expect_error "synth without --out" 2 "--out is required" "$SOFTCOT" data synth --n 5
expect_error "synth with bad knob" 2 "synthetic max_steps: expected an integer in [1, 20], got '0'" \
    "$SOFTCOT" data synth --out "$tmp/x.jsonl" --max-steps 0
expect_error "synth with a bad split" 2 "unknown split 'dev'" "$SOFTCOT" data synth --out "$tmp/x.jsonl" --split dev
[ -e "$tmp/x.jsonl" ] && notok "failed synth writes nothing" "file exists" || ok "failed synth writes nothing"

# data check
printf '{"question": "Q", "answer": "#### 1"}\nnot json\n{"question": "Q", "answer": "#### 2"}\n' >"$tmp/bad.jsonl"
expect_error "check stops at a bad line" 2 "bad.jsonl:2: bad JSON at column 1" "$SOFTCOT" data check --format gsm8k "$tmp/bad.jsonl"
expect "check --skip-bad-lines counts" "2 rows, 1 bad lines skipped" \
    "$("$SOFTCOT" data check --format gsm8k --skip-bad-lines "$tmp/bad.jsonl" | head -n 1)"
expect_error "check with an unknown format" 2 "unknown format" "$SOFTCOT" data check --format csv "$tmp/bad.jsonl"
if [ -f "$SHARED/data/ood/mmlu_stem_test.jsonl" ]; then
    expect "check mmlu" "3018 rows, 0 bad lines skipped" "$("$SOFTCOT" data check --format mmlu "$SHARED/data/ood/mmlu_stem_test.jsonl")"
    expect "check arc" "1172 rows, 0 bad lines skipped" "$("$SOFTCOT" data check --format arc "$SHARED/data/ood/arc_challenge_test.jsonl")"
    expect "check math500" "242 rows, 0 bad lines skipped" "$("$SOFTCOT" data check --format math "$SHARED/data/math500/dev.jsonl")"
else
    ok "shared data checks skipped (no $SHARED)"
fi
"$SOFTCOT" data --help | grep -q 'softcot data synth' && ok "data --help" || notok "data --help" "no usage"
