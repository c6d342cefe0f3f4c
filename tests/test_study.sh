#!/bin/sh
# `make study` at a toy size (tools/study.mk, docs/results.md): two seeds of hard and soft RL
# for 2 steps, 4 problems. Checks that every cell ran and wrote its command, that the report's
# numbers are the mean and sd over seeds of the evaluation files (recomputed here
# independently), that a rerun of one cell's recorded command gives bit-identical weights and
# evaluation numbers, that a second `make study` runs nothing, and that the report refuses
# an incomplete evaluation (exit 2).
set -u
BUILD=${BUILD:-build}
SOFTCOT=${SOFTCOT:-$(pwd)/$BUILD/softcot}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { # name, status (0 = pass)
    if [ "$2" -eq 0 ]; then echo "ok - $1"; else echo "not ok - $1"; fi
}
out="$tmp/study"
study() {
    make --no-print-directory -f tools/study.mk -j2 SOFTCOT="$SOFTCOT" STUDY_OUT="$out" STUDY_QUICK=1 \
        SEEDS="1 2" MODES="hard soft" STEPS=2 N_EVAL=4 N_OOD=4 "$@"
}
study >"$tmp/make.log" 2>&1
check "make -f tools/study.mk runs a toy study (exit 0)" $?
n=0
for cell in base hard-s1 hard-s2 soft-s1 soft-s2; do
    [ -s "$out/eval/$cell.json" ] && [ -s "$out/cmd/$cell.eval.sh" ] && n=$((n + 1))
done
[ "$n" -eq 5 ]
check "five evaluation cells, each with its recorded command" $?
[ -s "$out/train/hard-s2/final/model.safetensors" ] && [ -s "$out/cmd/soft-s1.train.sh" ] &&
    [ -s "$out/img/study_passk.png" ] && [ -s "$out/img/study_entropy.png" ] && [ -s "$out/img/study_ood.png" ]
check "trained models, training commands and the figures exist" $?
grep -q '^| base | 1 |' "$out/report.md" && grep -q '^| soft | 2 |' "$out/report.md" &&
    grep -q 'soft-s2.train' "$out/report.md"
check "report.md has the table rows and lists every cell's command" $?

# The report's numbers, recomputed from the evaluation files without tools/study_report.py.
cat >"$tmp/recompute.py" <<'EOF'
import json, statistics, sys
out = sys.argv[1]
res = json.load(open(out + "/results.json"))
bad = []
for t in ("hard", "soft"):
    evals = [json.load(open("%s/eval/%s-s%d.json" % (out, t, s))) for s in (1, 2)]
    for mode, key, fn in (("hard-greedy", "pass@1", lambda m: m["greedy_pass_at_1"]),
                          ("soft-sample", "pass@1", lambda m: m["sample_pass_at_1"]),
                          ("fuzzy-sample", "pass@32", lambda m: m["pass_at_k"]["32"])):
        xs = [fn(e["modes"][mode]) for e in evals]
        got = res["table"][t][mode][key]
        if abs(got["mean"] - statistics.mean(xs)) > 1e-12 or abs(got["sd"] - statistics.stdev(xs)) > 1e-12:
            bad.append("%s %s %s: report %s, files %s" % (t, mode, key, got, xs))
    base = json.load(open(out + "/eval/base.json"))["ood"][0]["mean_nll_per_token_correct"]
    nll = [e["ood"][0]["mean_nll_per_token_correct"] - base for e in evals]
    if abs(res["table"][t]["ood_nll_change"]["mean"] - statistics.mean(nll)) > 1e-12:
        bad.append("%s OOD NLL change" % t)
print("\n".join(bad))
EOF
bad=$($PY "$tmp/recompute.py" "$out" 2>&1)
[ -z "$bad" ]
check "report means and sds equal those recomputed from the evaluation files${bad:+: $bad}" $?

# Reproducibility: rerun one training cell and one evaluation cell from their recorded
# commands into a copy, compare bit for bit (timings excluded).
cp -r "$out/train/soft-s2/final" "$tmp/final-before"
cp "$out/eval/soft-s2.json" "$tmp/eval-before.json"
rm -rf "$out/train/soft-s2"
sh "$out/cmd/soft-s2.train.sh" && cmp -s "$tmp/final-before/model.safetensors" "$out/train/soft-s2/final/model.safetensors"
check "rerunning soft-s2's training command gives bit-identical weights" $?
sh "$out/cmd/soft-s2.eval.sh" && $PY - "$tmp/eval-before.json" "$out/eval/soft-s2.json" <<'EOF'
import json, sys
def strip(d):
    for m in d["modes"].values():
        m.pop("seconds"), m.pop("tokens_per_second")
    return d
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
sys.exit(0 if a == b else 1)
EOF
check "rerunning soft-s2's evaluation command gives identical numbers" $?

study >"$tmp/make2.log" 2>&1 && ! grep -q '^== ' "$tmp/make2.log"
check "a second make study with everything done runs no cell" $?

# An evaluation stopped midway ("complete": false) is refused, not averaged in.
$PY - "$out/eval/hard-s1.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); d["complete"] = False
json.dump(d, open(sys.argv[1], "w"))
EOF
$PY tools/study_report.py "$out" --no-plots >/dev/null 2>"$tmp/err.txt"
rc=$?
[ "$rc" -eq 2 ] && grep -q 'hard-s1.json: evaluation incomplete' "$tmp/err.txt" && [ "$(wc -l <"$tmp/err.txt")" -eq 1 ]
check "an incomplete evaluation file is refused with one line naming it (exit 2, got $rc)" $?
