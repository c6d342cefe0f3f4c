#!/usr/bin/env python3
"""Turns GSM8K-format synthetic problems into the out-of-domain multiple-choice set of the
study (docs/results.md, "Out-of-domain NLL"), in the MMLU row format that `softcot eval --ood`
scores (docs/eval.md).

The correct choice is the whole target the base model was trained to write, worked solution
included: "Let us work it out. <solution> The final answer is: \\boxed{N}" (docs/base-model.md).
Its per-token NLL therefore measures how well a model still models reasoning text on problems
longer and with larger numbers than any it saw. The three distractors are the same text with
another final number, so accuracy says whether the model prefers the right result.

usage: study_ood.py IN.jsonl OUT.jsonl
"""
import json
import os
import random
import sys

LEAD_IN = "Let us work it out."
STOP = "The final answer is:"


def target_text(solution, value):
    return "%s %s %s \\boxed{%d}" % (LEAD_IN, solution, STOP, value)


def distractors(gold):
    """Three other positive results near the gold one, always the same for one gold."""
    out = []
    for v in (gold + 1, gold - 1, gold + 10, gold * 2, gold + 2):
        if v > 0 and v != gold and v not in out:
            out.append(v)
    return out[:3]


def row(problem, index):
    answer = problem["answer"]
    if "####" not in answer:
        raise ValueError("no '####' final-answer line")
    solution, final = answer.rsplit("####", 1)
    gold = int(final.strip())
    values = [gold] + distractors(gold)
    random.Random(index).shuffle(values)
    return {
        "question": problem["question"],
        "choices": [target_text(solution.strip(), v) for v in values],
        "answer": values.index(gold),
    }


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__.split("\n\n")[-1] + "\n")
        return 2
    src, dst = argv[1], argv[2]
    rows = []
    with open(src, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                rows.append(row(json.loads(line), lineno))
            except (ValueError, KeyError) as e:
                sys.stderr.write("study_ood.py: %s:%d: %s\n" % (src, lineno, e))
                return 2
    tmp = dst + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, dst)
    print("study_ood.py: %d multiple-choice rows -> %s" % (len(rows), dst))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
