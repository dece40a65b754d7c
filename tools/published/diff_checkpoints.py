#!/usr/bin/python3
"""Check that two checkpoint folders hold the same model: the export round trip of the proof.

  /usr/bin/python3 tools/published/diff_checkpoints.py /work/published-ckpt/llama-3.2-1b /tmp/exported

Compares config.json key by key (every key of the first must be in the second with the same value; keys only
the second has are listed), then every tensor: same names (a tied model's lm_head.weight is not expected),
shapes, file dtype and bytes. The shard layout may differ (one file or many, other cut points): tensors are
read one at a time through each folder's own index. Exit status 1 on any difference.
"""
import argparse
import hashlib
import json
import os
import sys

from reference_logprobs import Checkpoint


def tensor_digest(ckpt, name):
    path, code, shape, start, count = ckpt.where[name]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        left = count
        while left:
            block = f.read(min(left, 1 << 24))
            if not block:
                raise SystemExit(f"{path}: tensor {name} truncated")
            h.update(block)
            left -= len(block)
    return code, list(shape), h.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first")
    parser.add_argument("second")
    args = parser.parse_args()
    problems = []
    configs = []
    for folder in (args.first, args.second):
        with open(os.path.join(folder, "config.json")) as f:
            configs.append(json.load(f))
    for key, value in sorted(configs[0].items()):
        if key not in configs[1]:
            problems.append(f"config.json: {key} missing in {args.second}")
        elif configs[1][key] != value:
            problems.append(f"config.json: {key} = {value!r} in {args.first}, {configs[1][key]!r} in {args.second}")
    extra = sorted(set(configs[1]) - set(configs[0]))
    if extra:
        print(f"config.json keys only in {args.second} (not judged): {', '.join(extra)}")

    a, b = Checkpoint(args.first), Checkpoint(args.second)
    tied = configs[0].get("tie_word_embeddings", False)
    names_a = {n for n in a.where if not (tied and n == "lm_head.weight")}
    names_b = {n for n in b.where if not (tied and n == "lm_head.weight")}
    for n in sorted(names_a - names_b):
        problems.append(f"tensor {n} missing in {args.second}")
    for n in sorted(names_b - names_a):
        problems.append(f"tensor {n} only in {args.second}")
    same = 0
    for n in sorted(names_a & names_b):
        da, db = tensor_digest(a, n), tensor_digest(b, n)
        if da != db:
            problems.append(f"tensor {n}: {da[0]} {da[1]} vs {db[0]} {db[1]}"
                            + (", bytes differ" if da[:2] == db[:2] else ""))
        else:
            same += 1
    for p in problems:
        print(p)
    print(f"{same} of {len(names_a)} tensors identical (dtype, shape, bytes); {len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
