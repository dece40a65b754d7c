#!/usr/bin/python3
"""Golden response log-probs of a Llama / Qwen2 checkpoint folder, from an independent PyTorch implementation.

  /usr/bin/python3 tools/published/reference_logprobs.py --model /work/published-ckpt/llama-3.2-1b \\
      --out /work/published-ckpt/llama-3.2-1b.golden.json

Reads config.json and the safetensors files (single or sharded, by hand: no transformers or safetensors
package here), draws a fixed set of (prompt, response) id sequences from a seeded generator, and writes per
sequence the log-prob of every response token and their sum, in three flows:

  bfloat16  transformers' dtype flow for a bf16 checkpoint loaded with torch_dtype=bfloat16 and
            attn_implementation="eager": embedding, linears, residual adds, SiLU and the rotary multiply in
            bf16; RMSNorm in float32 and cast back to bf16 before the weight multiplies; rotary inv_freq
            (with llama3 scaling as `_compute_llama3_parameters`) and cos/sin in float32, cos/sin cast to
            bf16; attention scores q @ k^T * scale in bf16, softmax in float32 cast back to bf16 (eager
            attention's `softmax(..., dtype=torch.float32).to(query.dtype)`), probs @ v in bf16. We follow the
            eager path because torch 1.13 has no scaled_dot_product_attention (transformers' default "sdpa"
            path computes the softmax inside one fused kernel); the two differ at bf16 rounding level.
            `--attention fused` instead models libtorch's CPU flash kernel for one key block (sequences up
            to 512): scores and softmax in float32 from the bf16 q and k, the unnormalised exp(s - max)
            rounded to bf16 for the product with v (accumulated in float32), divided by the float32 row sum,
            then rounded to bf16. It is an approximation, to tell attention-path noise from real errors.
  float32   the same code with every weight upcast to float32 (torch_dtype=float32).
  float64   the same maths in float64 throughout, inv_freq and cos/sin included: the exact model given the
            stored weights, the golden value for the float32 check.

Logits are cast to float32 (float64 in the float64 flow) before log_softmax. The sum is taken in float64
(math.fsum) over the float32 token log-probs.

Memory: weights are streamed layer by layer from the files in the flow's dtype and every sequence advances
one layer at a time, so a flow holds the embedding (tied head), one layer and the activations: the 1B model
in float64 peaks near 3 GB instead of 10 GB. Each sequence runs alone (batch of one, no padding).

The implementation shares no code with the Java model nor with write_checkpoint.py (it reads what is on disk).
"""
import argparse
import hashlib
import json
import math
import os
import platform
import re
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F

SCHEMA = "spark-dpo/published-logprobs/v1"
ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}
FILE_DTYPES = {"BF16": (torch.bfloat16, 2), "F16": (torch.float16, 2), "F32": (torch.float32, 4)}
FLOWS = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}
# (prompt length, response length): 16 to 200 tokens, 440 in all; the first has a one-token prompt.
LENGTHS = [(1, 15), (8, 24), (24, 40), (60, 68), (72, 128)]
FIRST_ID = 2  # ids 0 and 1 are the built-in tokenizer's <|endoftext|> and <|pad|>


# ----------------------------------------------------------------------------------------------------------
# config and weights

def read_config(folder):
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    arch = (cfg.get("architectures") or [None])[0]
    if arch not in ARCHITECTURES or cfg.get("model_type") != ARCHITECTURES[arch]:
        raise SystemExit(f"{path}: architectures {arch} / model_type {cfg.get('model_type')} is not Llama or Qwen2")
    if cfg.get("hidden_act", "silu") != "silu":
        raise SystemExit(f"{path}: hidden_act {cfg['hidden_act']} (only silu)")
    scaling = cfg.get("rope_scaling")
    if scaling is not None and scaling.get("rope_type", scaling.get("type")) != "llama3":
        raise SystemExit(f"{path}: rope_scaling {scaling} (only llama3)")
    if cfg.get("use_sliding_window", False):
        raise SystemExit(f"{path}: use_sliding_window true is not implemented here")
    return cfg


def layout(cfg):
    heads = cfg["num_attention_heads"]
    llama = cfg["model_type"] == "llama"
    return {
        "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads", heads),
        "hd": cfg.get("head_dim") or cfg["hidden_size"] // heads,
        "qkv_bias": (not llama) or cfg.get("attention_bias", False),
        "o_bias": llama and cfg.get("attention_bias", False),
        "mlp_bias": llama and cfg.get("mlp_bias", False),
    }


class Checkpoint:
    """Tensor locations in the safetensors file(s) of a folder; reads one tensor at a time."""

    def __init__(self, folder):
        index = os.path.join(folder, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                weight_map = json.load(f)["weight_map"]
            files = sorted(set(weight_map.values()))
        else:
            weight_map, files = None, ["model.safetensors"]
        self.files = [os.path.join(folder, f) for f in files]
        self.where = {}
        for path in self.files:
            for name, entry in self._header(path).items():
                if weight_map is not None and weight_map.get(name) != os.path.basename(path):
                    raise SystemExit(f"{path}: tensor {name} is not mapped to this file by {index}")
                self.where[name] = entry
        if weight_map is not None and set(weight_map) != set(self.where):
            raise SystemExit(f"{index}: names tensors the shards do not hold: "
                             f"{sorted(set(weight_map) - set(self.where))[:5]}")

    @staticmethod
    def _header(path):
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if 8 + n > size:
                raise SystemExit(f"{path}: header length {n} beyond the file")
            header = json.loads(f.read(n).decode("utf-8"))
        if (header.pop("__metadata__", None) or {}).get("format") != "pt":
            raise SystemExit(f"{path}: __metadata__.format is not 'pt'")
        entries, expected = {}, 0
        for name, v in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            begin, end = v["data_offsets"]
            if v["dtype"] not in FILE_DTYPES:
                raise SystemExit(f"{path}: tensor {name} has dtype {v['dtype']}")
            if begin != expected or end - begin != math.prod(v["shape"]) * FILE_DTYPES[v["dtype"]][1]:
                raise SystemExit(f"{path}: tensor {name} does not tile the data section")
            expected = end
            entries[name] = (path, v["dtype"], v["shape"], 8 + n + begin, end - begin)
        if 8 + n + expected != size:
            raise SystemExit(f"{path}: {size - 8 - n} data bytes, tensors cover {expected}")
        return entries

    def get(self, name, dtype):
        if name not in self.where:
            raise SystemExit(f"tensor {name} is in none of {self.files}")
        path, code, shape, start, count = self.where[name]
        raw = bytearray(count)
        with open(path, "rb") as f:
            f.seek(start)
            if f.readinto(raw) != count:
                raise SystemExit(f"{path}: tensor {name} truncated")
        stored = FILE_DTYPES[code][0]
        if stored == torch.bfloat16:  # frombuffer has no bf16 in 1.13: read the bits as int16
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=stored)
        return t.reshape(shape).to(dtype)  # .to() copies unless already dtype; frombuffer keeps raw alive

    def sha256(self):
        out = {}
        for path in self.files:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 24), b""):
                    h.update(block)
            out[os.path.basename(path)] = h.hexdigest()
        return out


# ----------------------------------------------------------------------------------------------------------
# the model, in transformers' dtype flow

def inv_frequencies(cfg, hd, dtype):
    """inv_freq as transformers computes it (float32), or in float64 for the exact flow."""
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (base ** (torch.arange(0, hd, 2, dtype=torch.int64).to(dtype) / hd))
    s = cfg.get("rope_scaling")
    if s is None:
        return inv
    # llama3: long wavelengths divided by factor, short ones kept, a smooth blend in between.
    factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
    old = s["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


def rotary_tables(cfg, hd, length, dtype):
    """cos, sin [T, hd] in the activation dtype: computed in float32 (float64 flow: float64), then cast."""
    wide = torch.float64 if dtype == torch.float64 else torch.float32
    inv = inv_frequencies(cfg, hd, wide)
    angles = torch.arange(length, dtype=torch.int64).to(wide)[:, None] * inv[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rms_norm(x, weight, eps):
    wide = torch.float64 if x.dtype == torch.float64 else torch.float32
    h = x.to(wide)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def attention(x, w, a, cos, sin, fused=False):
    """x [T, d] -> [T, d]; causal, grouped-query; eager unless fused."""
    t = x.shape[0]
    heads, kv, hd = a["heads"], a["kv_heads"], a["hd"]
    q = F.linear(x, w["q_proj.weight"], w.get("q_proj.bias")).view(t, heads, hd).transpose(0, 1)
    k = F.linear(x, w["k_proj.weight"], w.get("k_proj.bias")).view(t, kv, hd).transpose(0, 1)
    v = F.linear(x, w["v_proj.weight"], w.get("v_proj.bias")).view(t, kv, hd).transpose(0, 1)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    groups = heads // kv
    k = k[:, None].expand(kv, groups, t, hd).reshape(heads, t, hd)
    v = v[:, None].expand(kv, groups, t, hd).reshape(heads, t, hd)
    future = torch.ones(t, t, dtype=torch.bool).triu(1)
    wide = torch.float64 if x.dtype == torch.float64 else torch.float32
    if fused:
        scores = torch.matmul(q.to(wide), k.to(wide).transpose(1, 2)) * (hd ** -0.5)
        scores = scores.masked_fill(future, float("-inf"))
        e = torch.exp(scores - scores.amax(-1, keepdim=True))
        y = torch.matmul(e.to(x.dtype).to(wide), v.to(wide)) / e.sum(-1, keepdim=True)
        y = y.to(x.dtype).transpose(0, 1).reshape(t, heads * hd)
    else:
        scores = torch.matmul(q, k.transpose(1, 2)) * (hd ** -0.5)
        # transformers adds finfo(dtype).min above the diagonal; -inf gives the same softmax (exp underflows).
        scores = scores.masked_fill(future, float("-inf"))
        probs = F.softmax(scores, dim=-1, dtype=wide).to(x.dtype)
        y = torch.matmul(probs, v).transpose(0, 1).reshape(t, heads * hd)
    return F.linear(y, w["o_proj.weight"], w.get("o_proj.bias"))


def mlp(x, w):
    gate = F.linear(x, w["gate_proj.weight"], w.get("gate_proj.bias"))
    up = F.linear(x, w["up_proj.weight"], w.get("up_proj.bias"))
    return F.linear(F.silu(gate) * up, w["down_proj.weight"], w.get("down_proj.bias"))


def layer_weights(ckpt, cfg, a, i, dtype):
    p = f"model.layers.{i}."
    names = ["self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
             "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
             "input_layernorm.weight", "post_attention_layernorm.weight"]
    if a["qkv_bias"]:
        names += ["self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"]
    if a["o_bias"]:
        names += ["self_attn.o_proj.bias"]
    if a["mlp_bias"]:
        names += ["mlp.gate_proj.bias", "mlp.up_proj.bias", "mlp.down_proj.bias"]
    return {n.split(".", 1)[1] if n.startswith(("self_attn.", "mlp.")) else n: ckpt.get(p + n, dtype)
            for n in names}


def response_logprobs(ckpt, cfg, sequences, dtype, fused=False):
    """Per sequence, the log-prob of each response token given everything before it."""
    a = layout(cfg)
    eps = cfg["rms_norm_eps"]
    embed = ckpt.get("model.embed_tokens.weight", dtype)
    ids = [torch.tensor(s["prompt_ids"] + s["response_ids"], dtype=torch.int64) for s in sequences]
    hidden = [embed[x] for x in ids]
    cos, sin = rotary_tables(cfg, a["hd"], max(len(x) for x in ids), dtype)
    for i in range(cfg["num_hidden_layers"]):
        w = layer_weights(ckpt, cfg, a, i, dtype)
        for j, x in enumerate(hidden):
            t = x.shape[0]
            x = x + attention(rms_norm(x, w["input_layernorm.weight"], eps), w, a, cos[:t], sin[:t], fused)
            hidden[j] = x + mlp(rms_norm(x, w["post_attention_layernorm.weight"], eps), w)
        del w
    norm = ckpt.get("model.norm.weight", dtype)
    head = embed if cfg.get("tie_word_embeddings", False) else ckpt.get("lm_head.weight", dtype)
    wide = torch.float64 if dtype == torch.float64 else torch.float32
    out = []
    for s, x, token_ids in zip(sequences, hidden, ids):
        logits = F.linear(rms_norm(x, norm, eps), head).to(wide)
        logp = torch.log_softmax(logits, dim=-1)
        p = len(s["prompt_ids"])
        picked = logp[p - 1:-1].gather(1, token_ids[p:, None])[:, 0]
        out.append([float(v) for v in picked])
    return out


# ----------------------------------------------------------------------------------------------------------
# sequences and output

def tokenizer_size(folder, cfg):
    """Ids are drawn below both the model's vocabulary and the folder's tokenizer (when it has one)."""
    path = os.path.join(folder, "tokenizer.json")
    if not os.path.exists(path):
        return cfg["vocab_size"]
    with open(path) as f:
        tok = json.load(f)
    ids = list(tok["model"]["vocab"].values()) + [t["id"] for t in tok.get("added_tokens", [])]
    return min(cfg["vocab_size"], max(ids) + 1)


def make_sequences(limit, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for p, r in LENGTHS:
        ids = torch.randint(FIRST_ID, limit, (p + r,), generator=g).tolist()
        out.append({"prompt_ids": ids[:p], "response_ids": ids[p:]})
    return out


def compact_json(value):
    """Indented JSON with each list of numbers on one line."""
    text = json.dumps(value, indent=1)
    return re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint folder (config.json + safetensors)")
    parser.add_argument("--out", required=True, help="golden JSON file to write")
    parser.add_argument("--dtypes", default="bfloat16,float32,float64",
                        help="flows to run, comma-separated, in this order")
    parser.add_argument("--seed", type=int, default=20261205, help="seed of the token ids")
    parser.add_argument("--sequences", help="take the sequences (prompt_ids, response_ids) from this JSON file's "
                                            "top-level 'sequences' instead of drawing them")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--attention", default="eager", choices=["eager", "fused"],
                        help="eager: transformers' eager attention (default); fused: a model of libtorch's "
                             "CPU flash kernel, for diagnosis")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads)
    flows = args.dtypes.split(",")
    for flow in flows:
        if flow not in FLOWS:
            raise SystemExit(f"--dtypes: unknown flow {flow} (one of {', '.join(FLOWS)})")

    folder = os.path.abspath(args.model)
    cfg = read_config(folder)
    ckpt = Checkpoint(folder)
    with open(os.path.join(folder, "config.json"), "rb") as f:
        config_sha = hashlib.sha256(f.read()).hexdigest()
    started = time.time()
    weights_sha = ckpt.sha256()
    print(f"sha256 of {len(weights_sha)} weight file(s): {time.time() - started:.1f} s", flush=True)
    limit = tokenizer_size(folder, cfg)
    if args.sequences:
        with open(args.sequences) as f:
            sequences = [{"prompt_ids": s["prompt_ids"], "response_ids": s["response_ids"]}
                         for s in json.load(f)["sequences"]]
    else:
        sequences = make_sequences(limit, args.seed)
    for k, s in enumerate(sequences):
        ids = s["prompt_ids"] + s["response_ids"]
        if not s["prompt_ids"] or not s["response_ids"] or min(ids) < 0 or max(ids) >= cfg["vocab_size"]:
            raise SystemExit(f"sequence {k}: needs a non-empty prompt and response with ids in [0, vocab_size)")

    runs = []
    for flow in flows:
        started = time.time()
        logps = response_logprobs(ckpt, cfg, sequences, FLOWS[flow], args.attention == "fused")
        seconds = time.time() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        runs.append({
            "model": folder, "dtype": flow, "seconds": round(seconds, 1), "peak_rss_mb": round(peak),
            "sequences": [dict(s, sum_logp=math.fsum(lp), token_logps=lp) for s, lp in zip(sequences, logps)],
        })
        sums = ", ".join(f"{math.fsum(lp):.4f}" for lp in logps)
        print(f"{flow}: {seconds:.1f} s, peak RSS so far {peak:.0f} MB, sums [{sums}]", flush=True)

    golden = {
        "schema": SCHEMA,
        "model": folder,
        "model_type": cfg["model_type"],
        "config_sha256": config_sha,
        "weights_sha256": weights_sha,
        "ids_seed": None if args.sequences else args.seed,
        "ids_below": limit,
        "sequences": sequences,
        "runs": runs,
        "environment": {"script": "tools/published/reference_logprobs.py", "torch": torch.__version__,
                        "python": platform.python_version(), "threads": args.threads,
                        "attention": "eager (softmax in float32, cast to the activation dtype)"
                        if args.attention == "eager" else
                        "fused (float32 scores and softmax, exp rounded to the activation dtype before @ v)"},
    }
    with open(args.out, "w") as f:
        f.write(compact_json(golden))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
