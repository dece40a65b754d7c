#!/usr/bin/python3
"""Compare log-probs from spark-dpo (Java) with the golden file of reference_logprobs.py; exit 1 on failure.

  /usr/bin/python3 tools/published/compare.py --golden llama.golden.json --java llama.java.json

The Java file is one record {"model", "dtype", "sequences": [{prompt_ids, response_ids, sum_logp,
token_logps?}]} or several under "runs" (the golden file itself has that shape, so it can be passed as --java
to see the Python float32 flow against float64). Its sequences must be the golden ones, in the same order.

What is compared, and why:
  - The tolerance applies to each sequence's summed response log-prob, relatively: |java - golden| / |golden|.
    The sum is what DPO consumes (policy minus reference log-ratios) and what SequenceLogProbs returns, and it
    grows with the response length (about -12 nats per token here), so a relative bound means the same for a
    15-token and a 128-token response.
  - bfloat16 records are held against the golden bfloat16 flow (transformers' dtype flow) within 1e-3.
  - float32 records are held against the golden float64 flow (the exact maths on the same stored weights)
    within 1e-5. The Python float32 flow itself lands within 5e-8 of float64 on these models, so 1e-5 leaves
    room for other kernels (fused attention, other matmul blocking) but not for a wrong formula.
  - Per-token log-probs, when the Java record has them, are reported (largest absolute difference) but not
    judged: single bf16 tokens move by up to 9e-2 between the bf16 and float64 flows of one implementation.
Random weights make the log-probs sit a little below -log(vocab), so a model that ignored its weights and
predicted uniformly would miss the sums by 2-4 %: far outside both tolerances. See README.md for what
smaller errors each tolerance catches (bf16's misses a dropped llama3 rope scaling; float32's does not).
"""
import argparse
import json
import sys

TOLERANCE = {"bfloat16": 1e-3, "float32": 1e-5}
GOLDEN_FLOW = {"bfloat16": "bfloat16", "float32": "float64"}


def records(doc):
    return doc["runs"] if "runs" in doc else [doc]


def relative(a, b):
    return abs(a - b) / abs(b) if b != 0 else abs(a - b)


def compare(record, golden, tolerances, source):
    dtype = record.get("dtype")
    if dtype not in GOLDEN_FLOW:
        raise SystemExit(f"{source}: dtype {dtype!r}; expected one of {', '.join(GOLDEN_FLOW)}")
    runs = {r["dtype"]: r for r in golden["runs"]}
    flow = GOLDEN_FLOW[dtype] if GOLDEN_FLOW[dtype] in runs else dtype
    if flow not in runs:
        raise SystemExit(f"golden file has no {GOLDEN_FLOW[dtype]} or {dtype} run to hold {dtype} against")
    ref = runs[flow]["sequences"]
    got = record.get("sequences", [])
    if len(got) != len(ref):
        raise SystemExit(f"{source}: {len(got)} sequences, the golden file has {len(ref)}")
    tol = tolerances[dtype]
    bf16_gap = runs.get("float64") if dtype == "bfloat16" else None
    print(f"{dtype} ({record.get('model', '?')}) against golden {flow}, tolerance {tol:g} relative on the sum")
    print(f"  {'seq':>3} {'tokens':>6} {'golden sum':>14} {'java sum':>14} {'rel diff':>9} "
          f"{'max |token diff|':>16}" + ("  (java vs f64, golden bf16 vs f64)" if bf16_gap else ""))
    ok = True
    for k, (g, j) in enumerate(zip(ref, got)):
        if j.get("prompt_ids") != g["prompt_ids"] or j.get("response_ids") != g["response_ids"]:
            raise SystemExit(f"{source}: sequence {k} has other prompt_ids/response_ids than the golden one")
        rel = relative(j["sum_logp"], g["sum_logp"])
        tokens = j.get("token_logps")
        if tokens is not None and len(tokens) != len(g["token_logps"]):
            raise SystemExit(f"{source}: sequence {k} has {len(tokens)} token_logps, expected {len(g['token_logps'])}")
        worst = max(abs(a - b) for a, b in zip(tokens, g["token_logps"])) if tokens is not None else None
        passed = rel <= tol
        ok &= passed
        line = (f"  {k:>3} {len(g['token_logps']):>6} {g['sum_logp']:>14.6f} {j['sum_logp']:>14.6f} {rel:>9.2e} "
                f"{'-' if worst is None else f'{worst:.2e}':>16}")
        if bf16_gap:
            exact = bf16_gap["sequences"][k]["sum_logp"]
            line += f"  ({relative(j['sum_logp'], exact):.2e}, {relative(g['sum_logp'], exact):.2e})"
        print(line + ("" if passed else "  FAIL"))
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--golden", required=True, help="file written by reference_logprobs.py")
    parser.add_argument("--java", required=True, help="log-probs to check (one record, or several under 'runs')")
    parser.add_argument("--bf16-rtol", type=float, default=TOLERANCE["bfloat16"])
    parser.add_argument("--fp32-rtol", type=float, default=TOLERANCE["float32"])
    args = parser.parse_args()
    with open(args.golden) as f:
        golden = json.load(f)
    with open(args.java) as f:
        java = json.load(f)
    tolerances = {"bfloat16": args.bf16_rtol, "float32": args.fp32_rtol}
    results = [compare(r, golden, tolerances, args.java) for r in records(java) if r.get("dtype") != "float64"]
    if not results:
        raise SystemExit(f"{args.java}: no bfloat16 or float32 record")
    verdict = all(results)
    print("PASS" if verdict else "FAIL")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
