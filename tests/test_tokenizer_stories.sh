#!/bin/sh
# stories260K end to end: import the llama2.c checkpoint (which brings tok512.bin along as
# tokenizer.bin), tokenize the prompt, generate greedily from the text prompt and check
# the decoded story. Needs `softcot import` and `softcot generate`.
set -u
SOFTCOT=${SOFTCOT:?SOFTCOT must name the softcot binary}
SHARED=${SOFTCOT_SHARED:-../shared}
M=$SHARED/models/stories260K
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

if "$SOFTCOT" import --llama2c "$M/stories260K.bin" --out "$tmp/m" >"$tmp/log" 2>&1 &&
    [ -f "$tmp/m/tokenizer.bin" ]; then
    echo "ok - stories260K: import writes a model directory with tokenizer.bin"
else
    echo "not ok - stories260K: import writes a model directory with tokenizer.bin: $(tail -n 3 "$tmp/log")"
    exit 1
fi

ids=$("$SOFTCOT" tokenize --tokenizer "$tmp/m" --ids "Once upon a time" 2>"$tmp/log")
if [ "$ids" = "403 407 261 378" ]; then
    echo "ok - stories260K: tokenize \"Once upon a time\" = 403 407 261 378"
else
    echo "not ok - stories260K: tokenize \"Once upon a time\": got '$ids' $(head -c 200 "$tmp/log")"
fi

"$SOFTCOT" generate --model "$tmp/m" --prompt "Once upon a time" --greedy --max-new 60 >"$tmp/out" 2>"$tmp/log"
rc=$?
want="Once upon a time, there was a little girl named Lily."
if [ $rc -eq 0 ] && [ "$(head -c ${#want} "$tmp/out")" = "$want" ]; then
    echo "ok - stories260K: greedy generation from the text prompt decodes to the published story"
else
    echo "not ok - stories260K: greedy generation: status $rc, got '$(head -c 120 "$tmp/out")' $(tail -n 2 "$tmp/log")"
fi
