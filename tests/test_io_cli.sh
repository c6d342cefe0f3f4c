#!/bin/sh
# softcot import / export from the command line: llama2.c -> model dir -> exported model
# dir must be byte-identical, and every usage or input error is one line with status 2
# (1 for a runtime failure) and leaves no output behind.
# Run from the repository root with SOFTCOT set to the binary (make test does this).
set -u
: "${SOFTCOT:?set SOFTCOT to the softcot binary}"
shared=${SOFTCOT_SHARED:-../shared}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { echo "ok - $1"; }
bad() { echo "not ok - $1: $2"; }
expect() { # name, condition command...
    name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name" "failed: $*"; fi
}

# expect_fail NAME STATUS EXPECTED_STDERR_LINE CMD...: exact status and exactly one stderr line.
expect_fail() {
    name=$1 want_rc=$2 want=$3
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    lines=$(wc -l <"$tmp/err")
    got=$(cat "$tmp/err")
    if [ "$rc" -eq "$want_rc" ] && [ "$lines" -eq 1 ] && [ "$got" = "$want" ]; then
        ok "$name"
    else
        bad "$name" "status $rc (want $want_rc), $lines stderr lines: '$got' (want '$want')"
    fi
}

# --help and usage errors need no data.
"$SOFTCOT" import --help >"$tmp/out" 2>&1
expect "import --help exits 0 and shows usage" [ $? -eq 0 ]
expect "import --help text" grep -q '^usage: softcot import --llama2c FILE --out DIR' "$tmp/out"
"$SOFTCOT" export --help >"$tmp/out" 2>&1
expect "export --help exits 0 and shows usage" [ $? -eq 0 ]
expect "export --help text" grep -q '^usage: softcot export --model DIR --out DIR2' "$tmp/out"

expect_fail "import without --llama2c" 2 \
    "softcot: import: --llama2c FILE is required (see softcot import --help)" "$SOFTCOT" import --out "$tmp/x"
expect_fail "import without --out" 2 \
    "softcot: import: --out DIR is required (see softcot import --help)" "$SOFTCOT" import --llama2c f.bin
expect_fail "import option without its value" 2 \
    "softcot: import: missing value for --llama2c (see softcot import --help)" "$SOFTCOT" import --out d --llama2c
expect_fail "import unknown option" 2 \
    "softcot: import: unknown argument --bogus (see softcot import --help)" "$SOFTCOT" import --bogus
expect_fail "import of a missing file" 2 \
    "softcot: $tmp/none.bin: cannot open: No such file or directory" \
    "$SOFTCOT" import --llama2c "$tmp/none.bin" --out "$tmp/x"
expect_fail "export unknown option" 2 \
    "softcot: export: unknown argument extra (see softcot export --help)" "$SOFTCOT" export extra
expect_fail "export without --model" 2 \
    "softcot: export: --model DIR is required (see softcot export --help)" "$SOFTCOT" export --out "$tmp/x"
expect_fail "export --checkpoint of a missing file names it" 2 \
    "softcot: $tmp/c.h5: no such file" \
    "$SOFTCOT" export --checkpoint "$tmp/c.h5" --out "$tmp/x"
expect_fail "export of a missing model dir" 2 \
    "softcot: $tmp/nodir/config.json: cannot open: No such file or directory" \
    "$SOFTCOT" export --model "$tmp/nodir" --out "$tmp/x"
expect "failed commands created no output" [ ! -e "$tmp/x" ]

bin="$shared/models/stories260K/stories260K.bin"
tok="$shared/models/stories260K/tok512.bin"
if [ ! -f "$bin" ]; then
    echo "# skip import/export round trip: $bin not found (set SOFTCOT_SHARED)"
    exit 0
fi

"$SOFTCOT" import --llama2c "$bin" --out "$tmp/a" 2>"$tmp/err"
expect "import stories260K" [ $? -eq 0 ]
expect "import is silent when the tokenizer is found" [ ! -s "$tmp/err" ]
for f in model.safetensors config.json tokenizer.bin; do
    expect "import wrote $f" [ -s "$tmp/a/$f" ]
done
expect "tokenizer.bin is a copy of tok512.bin" cmp -s "$tok" "$tmp/a/tokenizer.bin"
expect "config.json says LlamaForCausalLM" grep -q '"LlamaForCausalLM"' "$tmp/a/config.json"

"$SOFTCOT" export --model "$tmp/a" --out "$tmp/b" 2>"$tmp/err"
expect "export the imported model" [ $? -eq 0 ]
expect "export: model.safetensors is byte-identical after reload" cmp -s "$tmp/a/model.safetensors" "$tmp/b/model.safetensors"
expect "export: config.json is byte-identical after reload" cmp -s "$tmp/a/config.json" "$tmp/b/config.json"
expect "export copies tokenizer.bin" cmp -s "$tmp/a/tokenizer.bin" "$tmp/b/tokenizer.bin"
"$SOFTCOT" export --model "$tmp/b" --out "$tmp/b" 2>"$tmp/err"
expect "export onto its own directory" [ $? -eq 0 ]
expect "export onto itself keeps the bytes" cmp -s "$tmp/a/model.safetensors" "$tmp/b/model.safetensors"
expect "no temp files left behind" [ -z "$(find "$tmp/a" "$tmp/b" -name '*.tmp')" ]

# import with the tokenizer given explicitly, and with none to be found
"$SOFTCOT" import --llama2c="$bin" --out="$tmp/c" --tokenizer="$tok" 2>"$tmp/err"
expect "import --key=value forms and --tokenizer" [ $? -eq 0 ]
expect "--tokenizer copies that file" cmp -s "$tok" "$tmp/c/tokenizer.bin"
mkdir -p "$tmp/solo"
cp "$bin" "$tmp/solo/m.bin"
"$SOFTCOT" import --llama2c "$tmp/solo/m.bin" --out "$tmp/d" 2>"$tmp/err"
expect "import without a tokenizer still succeeds" [ $? -eq 0 ]
expect "import without a tokenizer warns in one line" [ "$(cat "$tmp/err")" = \
    "softcot: warning: $tmp/solo/m.bin: no tokenizer found next to it (tok512.bin or tokenizer.bin); $tmp/d has no tokenizer.bin" ]
expect "import without a tokenizer writes none" [ ! -e "$tmp/d/tokenizer.bin" ]
expect "model is the same without the tokenizer" cmp -s "$tmp/a/model.safetensors" "$tmp/d/model.safetensors"

# bad inputs
head -c 1000 "$bin" >"$tmp/t.bin"
expect_fail "import of a truncated .bin" 2 "softcot: $tmp/t.bin: file is 1000 bytes, header implies 1056540" \
    "$SOFTCOT" import --llama2c "$tmp/t.bin" --out "$tmp/y"
head -c 3000 "$tok" >"$tmp/tok.bin"
expect_fail "import with a tokenizer of the wrong size" 2 \
    "softcot: $tmp/tok.bin: llama2.c tokenizer ends at token 214, the model has 512 tokens" \
    "$SOFTCOT" import --llama2c "$bin" --tokenizer "$tmp/tok.bin" --out "$tmp/y"
expect_fail "import with a .bin given as the tokenizer" 2 \
    "softcot: $bin: llama2.c tokenizer ends at token 2, the model has 512 tokens" \
    "$SOFTCOT" import --llama2c "$bin" --tokenizer "$bin" --out "$tmp/y"
expect_fail "import with a missing tokenizer" 2 "softcot: $tmp/nt.bin: cannot open: No such file or directory" \
    "$SOFTCOT" import --llama2c "$bin" --tokenizer "$tmp/nt.bin" --out "$tmp/y"
expect "failed imports created no output" [ ! -e "$tmp/y" ]
mkdir -p "$tmp/e"
cp "$tmp/a/config.json" "$tmp/e/"
head -c 100000 "$tmp/a/model.safetensors" >"$tmp/e/model.safetensors"
expect_fail "export of a truncated model.safetensors" 2 \
    "softcot: $tmp/e/model.safetensors: tensor 'model.embed_tokens.weight' data_offsets [0, 131072] run past the end of the data section (95144 bytes): truncated file or bad offsets" \
    "$SOFTCOT" export --model "$tmp/e" --out "$tmp/y"
expect_fail "export to a path that cannot be created is a runtime error" 1 \
    "softcot: /dev/null/x: cannot create directory: Not a directory" \
    "$SOFTCOT" export --model "$tmp/a" --out /dev/null/x
exit 0
