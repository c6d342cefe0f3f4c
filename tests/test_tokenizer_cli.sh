#!/bin/sh
# softcot tokenize: ids and pieces for both tokenizer kinds, stdin, --add-special, and
# one-line errors with exit status 2 (and nothing on stdout) for bad input.
set -u
SOFTCOT=${SOFTCOT:?SOFTCOT must name the softcot binary}
SHARED=${SOFTCOT_SHARED:-../shared}
L3=$SHARED/tokenizers/llama3
QW=$SHARED/tokenizers/qwen2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { echo "ok - tokenize cli: $1"; }
notok() { echo "not ok - tokenize cli: $1: $2"; }
# expect NAME WANT GOT
expect() { if [ "$3" = "$2" ]; then ok "$1"; else notok "$1" "got '$3', want '$2'"; fi; }
# expect_error NAME STATUS NEEDLE CMD...: status, one stderr line containing NEEDLE, empty stdout
expect_error() {
    name=$1 want_rc=$2 needle=$3
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" -eq "$want_rc" ] && [ "$lines" -eq 1 ] && grep -qF -- "$needle" "$tmp/err" &&
        grep -q '^softcot: ' "$tmp/err" && [ ! -s "$tmp/out" ]; then
        ok "$name"
    else
        notok "$name" "status $rc, $lines stderr lines: $(head -c 300 "$tmp/err")"
    fi
}

golden_ids() { # tokenizer, exact text as it appears in golden.jsonl
    grep -F "\"tokenizer\":\"$1\",\"text\":\"$2\"" "$SHARED/tokenizers/golden.jsonl" |
        sed 's/.*"ids":\[\(.*\)\]}.*/\1/' | tr ',' ' '
}

"$SOFTCOT" tokenize --help >"$tmp/help" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q 'usage: softcot tokenize --tokenizer DIR' "$tmp/help" && grep -q -- '--add-special' "$tmp/help"; then
    ok "--help exits 0 with usage"
else
    notok "--help exits 0 with usage" "status $rc"
fi

want=$(golden_ids llama3 "1234567 + 89 = 1234656")
expect "llama3 --ids matches golden" "$want" "$("$SOFTCOT" tokenize --tokenizer "$L3" --ids "1234567 + 89 = 1234656")"
want=$(golden_ids qwen2 "1234567 + 89 = 1234656")
expect "qwen2 --ids matches golden" "$want" "$("$SOFTCOT" tokenize --tokenizer "$QW" --ids "1234567 + 89 = 1234656")"
expect "--add-special prepends <|begin_of_text|>" "128000 9906 1917" \
    "$("$SOFTCOT" tokenize --tokenizer "$L3" --ids --add-special "Hello world")"
expect "special token in text is one id" "9906 128009 1917" \
    "$("$SOFTCOT" tokenize --tokenizer="$L3" --ids "Hello<|eot_id|> world")"
expect "stdin with '-' is read byte for byte" "9906 1917 198" \
    "$(printf 'Hello world\n' | "$SOFTCOT" tokenize --tokenizer "$L3" --ids -)"
expect "pieces as a JSON array" '["Hello","Ġworld","<|eot_id|>"]' \
    "$("$SOFTCOT" tokenize --tokenizer "$L3" "Hello world<|eot_id|>")"
expect "empty text gives an empty line" "" "$("$SOFTCOT" tokenize --tokenizer "$L3" --ids "")"

mkdir "$tmp/l2c"
cp "$SHARED/models/stories260K/tok512.bin" "$tmp/l2c/tokenizer.bin"
expect "llama2.c tokenizer.bin --ids" "403 407 261 378" \
    "$("$SOFTCOT" tokenize --tokenizer "$tmp/l2c" --ids "Once upon a time")"
expect "llama2.c --add-special prepends BOS 1" "1 403 407 261 378" \
    "$("$SOFTCOT" tokenize --tokenizer "$tmp/l2c" --ids --add-special "Once upon a time")"
expect "llama2.c pieces" '[" Once"," upon"," a"," time"]' \
    "$("$SOFTCOT" tokenize --tokenizer "$tmp/l2c" "Once upon a time")"

expect_error "missing --tokenizer" 2 "missing --tokenizer" "$SOFTCOT" tokenize --ids "x"
expect_error "missing TEXT" 2 "missing TEXT" "$SOFTCOT" tokenize --tokenizer "$L3"
expect_error "unknown option" 2 "unknown option '--frobnicate'" "$SOFTCOT" tokenize --tokenizer "$L3" --frobnicate x
expect_error "two TEXT arguments" 2 "more than one TEXT" "$SOFTCOT" tokenize --tokenizer "$L3" a b
expect_error "directory without a tokenizer" 2 "$tmp: no tokenizer.json or tokenizer.bin" \
    "$SOFTCOT" tokenize --tokenizer "$tmp" x
printf 'ab\377cd' >"$tmp/bad.txt"
expect_error "invalid UTF-8 on stdin" 2 "<stdin>: invalid UTF-8 at byte 2" \
    sh -c "\"$SOFTCOT\" tokenize --tokenizer \"$L3\" --ids - <\"$tmp/bad.txt\""
mkdir "$tmp/broken"
printf '{"model": {"type": "Unigram", "vocab": []}}' >"$tmp/broken/tokenizer.json"
expect_error "unsupported model type names the file" 2 "$tmp/broken/tokenizer.json: model.type \"Unigram\" is not supported" \
    "$SOFTCOT" tokenize --tokenizer "$tmp/broken" x
head -c 3000000 "$QW/tokenizer.json" >"$tmp/broken/tokenizer.json"
expect_error "truncated tokenizer.json" 2 "unexpected end of file" "$SOFTCOT" tokenize --tokenizer "$tmp/broken" x
printf '{"bos_token": "<nope>"}' >"$tmp/broken/tokenizer_config.json"
cp "$QW/tokenizer.json" "$tmp/broken/tokenizer.json"
expect_error "config naming an unknown token" 2 "tokenizer_config.json: bos_token \"<nope>\" is not a token" \
    "$SOFTCOT" tokenize --tokenizer "$tmp/broken" x
