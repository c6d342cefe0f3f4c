#!/bin/sh
# The built-in default job (until `softcot train` lands): import the real pretrained
# stories260K Llama from ../shared into outputs/stories260K and generate from it.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SOFTCOT_SHARED:-$here/../shared}
out=$here/outputs/stories260K
bin=$here/build/softcot
if [ ! -f "$shared/models/stories260K/stories260K.bin" ]; then
    echo "run_default.sh: $shared/models/stories260K/stories260K.bin not found (set SOFTCOT_SHARED)" >&2
    exit 2
fi
"$bin" import --llama2c "$shared/models/stories260K/stories260K.bin" --out "$out"
"$bin" generate --model "$out" --prompt "Once upon a time" --max-new 200 --greedy
