#!/bin/sh
# `softcot eval` end to end on the imported stories260K model: all six modes on a small
# synthetic set, the results file has every field docs/eval.md documents with sane and
# consistent values; a stop string the model does produce ('.') exercises the
# stop-string path; --ood on 20 rows of each OOD file; usage and input errors (exit 2).
set -u
SOFTCOT=${SOFTCOT:-$(pwd)/softcot}
SHARED=${SOFTCOT_SHARED:-../shared}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { # name, status (0 = pass)
    if [ "$2" -eq 0 ]; then echo "ok - $1"; else echo "not ok - $1"; fi
}
if [ ! -f "$SHARED/models/stories260K/stories260K.bin" ]; then
    echo "not ok - $SHARED/models/stories260K/stories260K.bin missing (set SOFTCOT_SHARED)"
    exit 1
fi
"$SOFTCOT" import --llama2c "$SHARED/models/stories260K/stories260K.bin" --out "$tmp/m" >/dev/null 2>&1
check "import stories260K" $?

# ---- all six modes on 6 synthetic problems ----
"$SOFTCOT" eval --model "$tmp/m" --synthetic 6 --cot-max 24 --ans-max 8 --samples 4 --k 1,2,4 \
    --batch 10 --entropy-bin 5 --out "$tmp/r.json" >"$tmp/out.txt" 2>"$tmp/err.txt"
check "eval runs all six modes (exit 0)" $?
grep -q '^mode ' "$tmp/out.txt" && [ "$(grep -cE '^(hard|soft|fuzzy)-(greedy|sample) ' "$tmp/out.txt")" -eq 6 ]
check "the table has a header and one row per mode" $?

# Schema check shared by the runs below: prints one line per problem, nothing if valid.
cat >"$tmp/check.py" <<'EOF'
import json, math, sys
path, n_problems, samples, ks, modes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    [int(k) for k in sys.argv[4].split(",")], sys.argv[5].split(",")
d = json.load(open(path))
bad = []
def need(cond, what):
    if not cond: bad.append(what)
def frac(x): return isinstance(x, (int, float)) and 0.0 <= x <= 1.0
need(d["schema"] == "softcot-eval/1" and d["complete"] is True, "schema/complete")
need(set(d["model"]) >= {"dir", "n_params", "hidden_size", "num_hidden_layers", "vocab_size"}, "model fields")
need(d["data"]["n_problems"] == n_problems and d["data"]["source"] and d["data"]["format"], "data fields")
s = d["settings"]
for key in ["modes", "samples", "k", "cot_max", "ans_max", "stop_string", "prefill", "template", "chat",
            "tau_hard", "tau_soft", "tau_fuzzy", "noise_gamma", "seed", "batch", "entropy_bin", "limit"]:
    need(key in s, "settings." + key)
need(s["modes"] == modes and list(d["modes"]) == modes, "mode list and order")
need(isinstance(d["ood"], list), "ood list")
fields = ["cot", "sampling", "cot_temperature", "sigma", "ans_temperature", "n_problems", "samples_per_problem",
          "n_rollouts", "greedy_pass_at_1", "sample_pass_at_1", "pass_at_k", "frac_correct", "frac_boxed",
          "mean_cot_len", "mean_ans_len", "frac_stop_string", "frac_stop_length", "frac_stop_eos", "entropy_profile",
          "mean_entropy", "generated_tokens", "forward_rows", "seconds", "tokens_per_second", "per_problem"]
expect_tau = {"hard-greedy": 0, "hard-sample": 1, "soft-greedy": 0.5, "soft-sample": 0.5,
              "fuzzy-greedy": 1e-4, "fuzzy-sample": 1e-4}
for name, m in d["modes"].items():
    for f in fields: need(f in m, name + "." + f)
    if any(f not in m for f in fields): continue
    sample = name.endswith("-sample")
    n = samples if sample else 1
    need(m["cot"] == name.split("-")[0] and m["sampling"] == ("sample" if sample else "greedy"), name + " cot/sampling")
    need(abs(m["cot_temperature"] - expect_tau[name]) < 1e-9, name + " tau")
    need((m["sigma"] > 0) == (sample and m["cot"] != "hard") and m["ans_temperature"] == 0, name + " sigma/answer")
    need(m["n_problems"] == n_problems and m["samples_per_problem"] == n and m["n_rollouts"] == n_problems * n,
         name + " counts")
    pc, pb = m["per_problem"]["n_correct"], m["per_problem"]["n_boxed"]
    need(len(pc) == n_problems and len(pb) == n_problems and all(0 <= c <= b <= n for c, b in zip(pc, pb)),
         name + " per-problem counts")
    need(abs(m["frac_correct"] - sum(pc) / (n_problems * n)) < 1e-12, name + " frac_correct = sum(n_correct)/rollouts")
    need(abs(m["frac_boxed"] - sum(pb) / (n_problems * n)) < 1e-12, name + " frac_boxed")
    if sample:
        pk = m["pass_at_k"]
        need(m["greedy_pass_at_1"] is None and sorted(int(k) for k in pk) == sorted(ks), name + " pass_at_k keys")
        vals = [pk[str(k)] for k in sorted(ks)]
        need(all(frac(v) for v in vals) and all(a <= b + 1e-12 for a, b in zip(vals, vals[1:])),
             name + " pass@k in [0,1] and non-decreasing in k")
        need(abs(m["sample_pass_at_1"] - m["frac_correct"]) < 1e-9, name + " sample pass@1 = frac_correct")
        share = sum(1 for c in pc if c > 0) / n_problems
        need(abs(pk[str(max(ks))] - share) < 1e-9 if max(ks) == n else pk[str(max(ks))] <= share + 1e-9,
             name + " pass@k bounded by the share of problems with a correct sample")
    else:
        need(m["sample_pass_at_1"] is None and m["pass_at_k"] == {} and frac(m["greedy_pass_at_1"]),
             name + " greedy pass@1 only")
    stops = [m["frac_stop_string"], m["frac_stop_length"], m["frac_stop_eos"]]
    need(all(frac(x) for x in stops) and abs(sum(stops) - 1) < 1e-9, name + " stop fractions sum to 1")
    need(frac(m["frac_correct"]) and frac(m["frac_boxed"]) and m["frac_correct"] <= m["frac_boxed"], name + " fractions")
    need(0 < m["mean_cot_len"] <= s["cot_max"] and 0 < m["mean_ans_len"] <= s["ans_max"], name + " lengths")
    if abs(m["frac_stop_length"] - 1) < 1e-12: need(m["mean_cot_len"] == s["cot_max"], name + " length stops = cot_max")
    prof = m["entropy_profile"]
    need(prof["bin"] == s["entropy_bin"] and len(prof["mean"]) == len(prof["count"]) ==
         math.ceil(s["cot_max"] / s["entropy_bin"]), name + " profile shape")
    need(sum(prof["count"]) == round(m["mean_cot_len"] * m["n_rollouts"]), name + " profile counts = CoT positions")
    need(all((v is None) == (c == 0) for v, c in zip(prof["mean"], prof["count"])), name + " empty bins are null")
    vmax = math.log(d["model"]["vocab_size"]) + 1e-4
    need(all(v is None or 0 <= v <= vmax for v in prof["mean"]) and 0 <= m["mean_entropy"] <= vmax,
         name + " entropies in [0, log V]")
    tot = sum(v * c for v, c in zip(prof["mean"], prof["count"]) if c)
    need(abs(tot / sum(prof["count"]) - m["mean_entropy"]) < 1e-6, name + " mean_entropy = weighted profile")
    need(m["generated_tokens"] == round((m["mean_cot_len"] + m["mean_ans_len"]) * m["n_rollouts"]) and
         m["forward_rows"] >= m["generated_tokens"] and m["seconds"] > 0 and m["tokens_per_second"] > 0,
         name + " token counts and timing")
for b in bad: print(b)
EOF
out=$($PY "$tmp/check.py" "$tmp/r.json" 6 4 1,2,4 hard-greedy,hard-sample,soft-greedy,soft-sample,fuzzy-greedy,fuzzy-sample 2>&1)
[ -z "$out" ]
check "results file has every documented field with sane, consistent values${out:+: $out}" $?

# greedy soft/fuzzy are deterministic (sigma = 0): per-problem results of a rerun agree;
# greedy fuzzy (tau 1e-4) is, to rounding, greedy hard.
"$SOFTCOT" eval --model "$tmp/m" --synthetic 6 --cot-max 24 --ans-max 8 --modes hard-greedy,fuzzy-greedy \
    --batch 3 --out "$tmp/r2.json" >/dev/null 2>&1
$PY - "$tmp/r.json" "$tmp/r2.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for m in ["hard-greedy", "fuzzy-greedy"]:
    for f in ["mean_cot_len", "mean_ans_len", "frac_stop_string", "mean_entropy"]:
        assert abs(a["modes"][m][f] - b["modes"][m][f]) < 1e-5, (m, f)
assert abs(a["modes"]["hard-greedy"]["mean_entropy"] - a["modes"]["fuzzy-greedy"]["mean_entropy"]) < 1e-3
EOF
check "greedy modes are deterministic across batch sizes; fuzzy-greedy tracks hard-greedy" $?

# A stop string the model produces: most CoTs end by it, and the counts stay consistent.
"$SOFTCOT" eval --model "$tmp/m" --synthetic 5 --cot-max 40 --ans-max 6 --samples 3 --k 1,3 \
    --modes hard-greedy,soft-sample --stop-string . --out "$tmp/r3.json" >/dev/null 2>&1
check "eval with --stop-string . (exit 0)" $?
out=$($PY "$tmp/check.py" "$tmp/r3.json" 5 3 1,3 hard-greedy,soft-sample 2>&1)
[ -z "$out" ] && $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["modes"]["hard-greedy"]["frac_stop_string"] > 0.5' "$tmp/r3.json"
check "stop-string stops are counted${out:+: $out}" $?

# A JSONL file: the first --limit rows of GSM8K test.
"$SOFTCOT" eval --model "$tmp/m" --data "$SHARED/data/gsm8k/test.jsonl" --format gsm8k --limit 3 --cot-max 16 \
    --ans-max 4 --modes hard-greedy,fuzzy-sample --samples 2 --k 1,2 --out "$tmp/r4.json" >/dev/null 2>&1
check "eval --data gsm8k --limit 3 (exit 0)" $?
out=$($PY "$tmp/check.py" "$tmp/r4.json" 3 2 1,2 hard-greedy,fuzzy-sample 2>&1)
[ -z "$out" ] && grep -q '"format":.*"gsm8k"' "$tmp/r4.json"
check "GSM8K results file is complete${out:+: $out}" $?

# ---- OOD multiple choice: 20 rows of each file ----
"$SOFTCOT" eval --model "$tmp/m" --ood "$SHARED/data/ood/mmlu_stem_test.jsonl,$SHARED/data/ood/arc_challenge_test.jsonl" \
    --limit 20 --out "$tmp/ood.json" >"$tmp/ood.txt" 2>"$tmp/err.txt"
check "eval --ood on MMLU and ARC (exit 0)" $?
$PY - "$tmp/ood.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["data"] is None and d["modes"] == {} and len(d["ood"]) == 2
for o, fmt in zip(d["ood"], ["mmlu", "arc"]):
    assert o["format"] == fmt and o["n_items"] == 20, o
    assert 0 <= o["accuracy"] <= 1 and 0 <= o["accuracy_per_token"] <= 1
    assert o["mean_nll_per_token_correct"] > 0 and o["mean_tokens_correct"] >= 1 and o["n_truncated"] >= 0
    assert len(o["predicted"]) == len(o["correct"]) == 20
    assert abs(o["accuracy"] - sum(p == c for p, c in zip(o["predicted"], o["correct"])) / 20) < 1e-12
    assert o["file"].endswith(fmt + ("_stem_test.jsonl" if fmt == "mmlu" else "_challenge_test.jsonl"))
EOF
check "OOD results: accuracy = share of predicted == correct, NLL per token positive" $?
grep -q 'mmlu_stem_test.jsonl' "$tmp/ood.txt" && grep -q 'arc_challenge_test.jsonl' "$tmp/ood.txt"
check "OOD table lists both files" $?

# ---- usage and input errors: exit 2, one line naming the problem ----
expect_error() { # name, expected substring, args...
    name=$1 want=$2
    shift 2
    "$SOFTCOT" eval "$@" >"$tmp/e.out" 2>"$tmp/e.err"
    rc=$?
    [ "$rc" -eq 2 ] && grep -qF -- "$want" "$tmp/e.err" && [ "$(wc -l <"$tmp/e.err")" -eq 1 ] && [ ! -s "$tmp/e.out" ]
    check "$name (exit $rc: $(head -c 200 "$tmp/e.err"))" $?
}
printf '{"question": "What is 1+1?", "answer": "2 #### 2"}\n{"question": "x", "answer": "no hashes"}\n' >"$tmp/bad.jsonl"
printf '{"question": "q", "choices": ["a", "b"], "answer": 1}\n{"question": "q2", "choices": ["a"]}\n' >"$tmp/bad_mmlu.jsonl"
expect_error "no model" "--model is required" --synthetic 2
expect_error "nothing to evaluate" "nothing to evaluate" --model "$tmp/m"
expect_error "--data and --synthetic together" "either --data or --synthetic" --model "$tmp/m" --data x --synthetic 2
expect_error "unknown mode" "unknown mode 'soft'" --model "$tmp/m" --synthetic 2 --modes soft
expect_error "samples below the largest k" "--k 16 needs at least 16 samples" --model "$tmp/m" --synthetic 2 --samples 8
expect_error "unknown option" "unknown option '--bogus'" --model "$tmp/m" --synthetic 2 --bogus 1
expect_error "bad integer" "expects an integer" --model "$tmp/m" --synthetic two
expect_error "missing model directory" "$tmp/nope" --model "$tmp/nope" --synthetic 2
expect_error "missing data file" "$tmp/none.jsonl" --model "$tmp/m" --data "$tmp/none.jsonl"
expect_error "malformed data line names file:line" "bad.jsonl:2" --model "$tmp/m" --data "$tmp/bad.jsonl"
expect_error "malformed OOD line names file:line" "bad_mmlu.jsonl:2" --model "$tmp/m" --ood "$tmp/bad_mmlu.jsonl"
expect_error "OOD format not inferable" "give --ood_format" --model "$tmp/m" --ood "$tmp/bad.jsonl"
expect_error "prompt + cot_max beyond the model" "max_position_embeddings" --model "$tmp/m" --synthetic 2 --cot-max 600
[ ! -e "$tmp/eval.json" ] && [ ! -e eval.json.tmp ]
check "failed runs write no results file" $?
"$SOFTCOT" eval --help >"$tmp/help.txt" 2>&1 && grep -q 'tau_fuzzy' "$tmp/help.txt" && grep -q 'paper' "$tmp/help.txt"
check "--help lists options with defaults and paper values" $?
