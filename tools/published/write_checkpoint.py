#!/usr/bin/python3
"""Write a random checkpoint with the published shapes and config of Llama-3.2-1B or Qwen2.5-0.5B.

The folder is what `save_pretrained` leaves (transformers layout): config.json exactly as published (every
key, including those spark-dpo ignores; torch_dtype is the dtype written), generation_config.json, safetensors
shards model-0000i-of-0000n.safetensors with model.safetensors.index.json (or one model.safetensors when
everything fits in --max-shard-size, as transformers saves it), and tokenizer files. Only the weights
are random, so the folder exercises the loader, the dtype handling and the maths at the real sizes.

  /usr/bin/python3 tools/published/write_checkpoint.py --model llama-3.2-1b --out /work/published-ckpt/llama-3.2-1b

Weights: every matrix (embedding, projections) is normal(0, 0.02) as transformers initialises
(`initializer_range`); q/k/v biases normal(0, 0.1) and RMSNorm weights 1 + normal(0, 0.1), so that a loader
which drops or swaps a bias or a norm changes the log-probs (weights of exactly 1 would hide it). Each tensor
has its own torch.Generator seeded from (seed, tensor name), and tensors are generated, converted and written
one at a time, so memory stays near the largest tensor and the bytes do not depend on the shard layout.

safetensors is written by hand (no safetensors package here), as the library does: 8-byte little-endian
header length, JSON header with `__metadata__ {"format": "pt"}` then the tensors in offset order (sorted by
name), padded with spaces to a multiple of 8, then raw little-endian data. Shards are cut in state-dict order
the way transformers' `max_shard_size` does (see plan_shards; "1GB" is 10**9 bytes, "1GiB" 2**30).

Tokenizer: no real Llama 3 / Qwen tokenizer can be downloaded here, so the project's built-in tokenizer
(sample-data/tokenizer/, 4,096 ids, below both vocabularies) is copied with its own tokenizer_config.json. It
has neither Llama 3's header tokens nor Qwen's <|im_start|>, so no family chat template is added (a template
naming tokens the tokenizer lacks would render text that tokenizes differently from what the model saw).
The config's bos/eos ids (128000/128001, 151643) are therefore outside this tokenizer: that is fine for
log-probs of given ids, not for generation with the built-in tokenizer's text.
"""
import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import struct
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOKENIZER = os.path.join(ROOT, "sample-data", "tokenizer")

# config.json as published on the Hugging Face hub (base models, not -Instruct). Checked against copies of
# meta-llama/Llama-3.2-1B/config.json and Qwen/Qwen2.5-0.5B/config.json (snapshot 060db6499f32) quoted in
# public code; the -Instruct variants differ (Llama: eos_token_id [128001, 128008, 128009]; Qwen:
# max_window_layers 21, eos_token_id 151645), which does not change the maths.
CONFIGS = {
    "llama-3.2-1b": {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "head_dim": 64,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "initializer_range": 0.02,
        "intermediate_size": 8192,
        "max_position_embeddings": 131072,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 16,
        "num_key_value_heads": 8,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "factor": 32.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.45.0.dev0",
        "use_cache": True,
        "vocab_size": 128256,
    },
    "qwen2.5-0.5b": {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "hidden_act": "silu",
        "hidden_size": 896,
        "initializer_range": 0.02,
        "intermediate_size": 4864,
        "max_position_embeddings": 32768,
        "max_window_layers": 24,
        "model_type": "qwen2",
        "num_attention_heads": 14,
        "num_hidden_layers": 24,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.40.1",
        "use_cache": True,
        "use_mrope": False,
        "use_sliding_window": False,
        "vocab_size": 151936,
    },
}

# generation_config.json of the same base models (from their hub pages; not re-checked here).
GENERATION_CONFIGS = {
    "llama-3.2-1b": {"_from_model_config": True, "bos_token_id": 128000, "do_sample": True,
                     "eos_token_id": 128001, "temperature": 0.6, "top_p": 0.9,
                     "transformers_version": "4.45.0.dev0"},
    "qwen2.5-0.5b": {"bos_token_id": 151643, "do_sample": False, "eos_token_id": 151643,
                     "max_new_tokens": 2048, "transformers_version": "4.37.0"},
}

DTYPES = {"bfloat16": ("BF16", 2), "float32": ("F32", 4)}
MATRIX_STD = 0.02
BIAS_STD = 0.1
NORM_STD = 0.1


def state_dict_shapes(cfg):
    """HF tensor names in state-dict order (the order transformers shards in), with shapes."""
    d, inter = cfg["hidden_size"], cfg["intermediate_size"]
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", d // heads)
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    shapes = {"model.embed_tokens.weight": [cfg["vocab_size"], d]}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for proj, out in (("q_proj", heads * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
            shapes[p + "self_attn." + proj + ".weight"] = [out, d]
            if qkv_bias:
                shapes[p + "self_attn." + proj + ".bias"] = [out]
        shapes[p + "self_attn.o_proj.weight"] = [d, heads * hd]
        shapes[p + "mlp.gate_proj.weight"] = [inter, d]
        shapes[p + "mlp.up_proj.weight"] = [inter, d]
        shapes[p + "mlp.down_proj.weight"] = [d, inter]
        shapes[p + "input_layernorm.weight"] = [d]
        shapes[p + "post_attention_layernorm.weight"] = [d]
    shapes["model.norm.weight"] = [d]
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = [cfg["vocab_size"], d]
    return shapes


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def tensor_seed(seed, name):
    digest = hashlib.sha256(f"{seed}/{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def random_tensor(seed, name, shape):
    """float32 values of one tensor, from its own generator."""
    g = torch.Generator().manual_seed(tensor_seed(seed, name))
    t = torch.empty(shape, dtype=torch.float32)
    if name.endswith("norm.weight"):
        return t.normal_(0.0, NORM_STD, generator=g).add_(1.0)
    if name.endswith(".bias"):
        return t.normal_(0.0, BIAS_STD, generator=g)
    return t.normal_(0.0, MATRIX_STD, generator=g)


def tensor_bytes(t, dtype):
    """Little-endian bytes of t in the file dtype (bf16 rounds to nearest even, as torch does)."""
    if dtype == "bfloat16":
        return t.to(torch.bfloat16).view(torch.int16).numpy().data
    return t.contiguous().numpy().data


def parse_size(text):
    """transformers' convention: GB/MB/KB are powers of 10, GiB/MiB/KiB powers of 2."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B)?\s*", text)
    if not m:
        raise SystemExit(f"--max-shard-size {text!r}: expected a number of bytes or e.g. 1GB, 500MB, 2GiB")
    unit = {None: 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    return int(float(m.group(1)) * unit[m.group(2)])


def plan_shards(shapes, itemsize, max_bytes):
    """As huggingface_hub's split_torch_state_dict_into_shards (what save_pretrained calls): a tensor larger
    than the limit gets a shard of its own at once; otherwise a tensor that would overflow closes the shard."""
    shards, current, size = [], [], 0
    for name, shape in shapes.items():
        n = numel(shape) * itemsize
        if n > max_bytes:
            shards.append([name])
            continue
        if current and size + n > max_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(name)
        size += n
    if current:
        shards.append(current)
    return shards


def write_shard(path, names, shapes, dtype, seed):
    code, itemsize = DTYPES[dtype]
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in sorted(names):
        n = numel(shapes[name]) * itemsize
        header[name] = {"dtype": code, "shape": shapes[name], "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in sorted(names):
            f.write(tensor_bytes(random_tensor(seed, name, shapes[name]), dtype))
    return offset


def write_json(path, value):
    with open(path, "w") as f:
        f.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=sorted(CONFIGS))
    parser.add_argument("--out", required=True, help="folder to create (must be absent or empty)")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES))
    parser.add_argument("--max-shard-size", default="1GB")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    started = time.time()

    if os.path.exists(args.out) and os.listdir(args.out):
        raise SystemExit(f"{args.out}: exists and is not empty")
    os.makedirs(args.out, exist_ok=True)
    cfg = dict(CONFIGS[args.model], torch_dtype=args.dtype)
    shapes = state_dict_shapes(cfg)
    itemsize = DTYPES[args.dtype][1]
    shards = plan_shards(shapes, itemsize, parse_size(args.max_shard_size))

    write_json(os.path.join(args.out, "config.json"), cfg)
    write_json(os.path.join(args.out, "generation_config.json"), GENERATION_CONFIGS[args.model])
    for file in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(TOKENIZER, file), os.path.join(args.out, file))

    weight_map, total = {}, 0
    for i, names in enumerate(shards):
        # One shard is saved as model.safetensors without an index, as transformers does.
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" if len(shards) > 1 else "model.safetensors"
        total += write_shard(os.path.join(args.out, file), names, shapes, args.dtype, args.seed)
        weight_map.update({n: file for n in names})
        print(f"{file}: {len(names)} tensors, {os.path.getsize(os.path.join(args.out, file)):,} bytes", flush=True)
    if len(shards) > 1:
        write_json(os.path.join(args.out, "model.safetensors.index.json"),
                   {"metadata": {"total_size": total}, "weight_map": weight_map})

    params = sum(numel(s) for s in shapes.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.model}: {params:,} parameters ({args.dtype}, {total:,} bytes of tensors) in {len(shards)} "
          f"shards, {time.time() - started:.1f} s, peak RSS {peak_mb:.0f} MB -> {args.out}")


if __name__ == "__main__":
    sys.exit(main())
