#!/usr/bin/python3
"""Checks that the sample preference data is well formed and that its preference is learnable and generalises.

Usage (from the repository root):
  /usr/bin/python3 tools/sample_data/check_preferences.py sample-data/preferences/hh-sample.jsonl

Reports:
  - format: every row has chosen/rejected sharing the transcript up to the last "\\n\\nAssistant:", and the replies differ;
  - learnability: a bag-of-words logistic reward model (numpy) trained on pairs, with pairwise accuracy on
    (a) a 10% eval split by prompt hash (as the prepare stage splits) and (b) 20% of topics held out entirely;
  - sentiment: how often the AFINN-111 valence of the chosen reply exceeds the rejected one's
    (the ground-truth reward of the later controlled-sentiment experiment).
Exits non-zero if a row is malformed or either accuracy is not clearly above chance (0.75).
"""
import hashlib
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from preference_blocks import NON_ASCII, QUESTIONS, TASKS  # noqa: E402

MARK = "\n\nAssistant:"
WORD = re.compile(r"[\w']+|[^\w\s]", re.UNICODE)


def split_row(row, n):
    c, r = row["chosen"], row["rejected"]
    i, j = c.rfind(MARK), r.rfind(MARK)
    if i < 0 or j < 0 or c[:i] != r[:j]:
        sys.exit("row %d: chosen and rejected do not share the prompt" % n)
    prompt, good, bad = c[:i + len(MARK)], c[i + len(MARK):].strip(), r[j + len(MARK):].strip()
    if not good or not bad or good == bad:
        sys.exit("row %d: empty or identical replies" % n)
    return prompt, good, bad


def topic_of(prompt):
    first = prompt.split("\n\nHuman: ")
    text = " ".join(first[1:3])
    for k, (task, _) in enumerate(TASKS):
        if task in text:
            return "task-%d" % k
    for k, (q, _) in enumerate(QUESTIONS):
        if q in text:
            return "question-%d" % k
    for k, (q, _, _) in enumerate(NON_ASCII):
        if q in text:
            return "non-ascii-%d" % k
    return "unknown"


def features(texts, vocab):
    x = np.zeros((len(texts), len(vocab)))
    for i, t in enumerate(texts):
        for w in WORD.findall(t.lower()):
            if w in vocab:
                x[i, vocab[w]] += 1
    return x


def train_and_score(train, test):
    vocab = {}
    for _, good, bad in train:
        for t in (good, bad):
            for w in WORD.findall(t.lower()):
                vocab.setdefault(w, len(vocab))
    xg, xb = features([g for _, g, _ in train], vocab), features([b for _, _, b in train], vocab)
    d = xg - xb
    w = np.zeros(len(vocab))
    for _ in range(300):  # Bradley-Terry: maximise log sigmoid(score(chosen) - score(rejected)), L2 0.01
        p = 1 / (1 + np.exp(-(d @ w)))
        w -= 0.5 * (-(d.T @ (1 - p)) / len(d) + 0.01 * w)
    tg, tb = features([g for _, g, _ in test], vocab), features([b for _, _, b in test], vocab)
    return float(np.mean((tg - tb) @ w > 0))


def afinn(path):
    scores = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            word, value = line.rstrip("\n").rsplit(",", 1)
            scores[word] = int(value)
    return scores


def valence(text, lexicon):
    words = re.findall(r"[a-z']+", text.lower())
    return sum(lexicon.get(w, 0) for w in words)


def main(path, lexicon_path):
    with open(path, encoding="utf-8") as f:
        rows = [split_row(json.loads(line), n + 1) for n, line in enumerate(f)]
    by_hash = [int(hashlib.sha256((p + g + b).encode()).hexdigest(), 16) % 10 for p, g, b in rows]
    train = [r for r, h in zip(rows, by_hash) if h != 0]
    test = [r for r, h in zip(rows, by_hash) if h == 0]
    acc_split = train_and_score(train, test)

    topics = sorted({topic_of(p) for p, _, _ in rows})
    held = {t for k, t in enumerate(topics) if k % 5 == 0}
    t_train = [r for r in rows if topic_of(r[0]) not in held]
    t_test = [r for r in rows if topic_of(r[0]) in held]
    acc_topic = train_and_score(t_train, t_test)

    lex = afinn(lexicon_path)
    diffs = [valence(g, lex) - valence(b, lex) for _, g, b in rows]
    print("%d pairs, %d topics (%d unmatched rows)" % (len(rows), len(topics),
                                                      sum(1 for p, _, _ in rows if topic_of(p) == "unknown")))
    print("bag-of-words reward model, pairwise accuracy: %.3f on a %d-pair hash split (trained on %d), "
          "%.3f on %d pairs of %d held-out topics (trained on %d)"
          % (acc_split, len(test), len(train), acc_topic, len(t_test), len(held), len(t_train)))
    print("AFINN-111 valence chosen > rejected: %.3f, equal: %.3f, lower: %.3f; mean difference %.2f"
          % (np.mean([d > 0 for d in diffs]), np.mean([d == 0 for d in diffs]), np.mean([d < 0 for d in diffs]),
             np.mean(diffs)))
    if acc_split < 0.75 or acc_topic < 0.75:
        sys.exit("preference is not clearly learnable")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "sample-data/lexicon/afinn-111.csv")
