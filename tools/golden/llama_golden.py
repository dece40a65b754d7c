#!/usr/bin/python3
"""Independent reference for spark-dpo's Llama-family model (io.sparkdpo.model).

Written from the published architecture (Llama / Qwen2 / Mistral as Hugging Face transformers implements
them: RMSNorm, rotate-half rotary embeddings with rope_scaling "linear" and "llama3" as transformers'
modeling_rope_utils defines them, an explicit head_dim, grouped-query attention with repeat_kv, SwiGLU MLP,
optional q/k/v (and for Llama o_proj and MLP) biases, tied or untied LM head, Mistral's sliding window, Qwen2's
sliding_window ignored while use_sliding_window is false) and from the published safetensors format (8-byte
little-endian header length, JSON header, raw little-endian data). It shares no code with the Java
implementation and computes in float64.

Run with Debian's python3-torch (not the pyenv python first on PATH):

  /usr/bin/python3 tools/golden/llama_golden.py generate
      Writes random tiny checkpoints in Hugging Face layout (F32, BF16, F16, and a sharded one with
      model.safetensors.index.json) plus golden.json (logits, response log-probs, greedy continuations) to
      src/test/resources/io/sparkdpo/model/golden/<case>/. The JUnit test GoldenReferenceTest checks the Java
      model against them. Also writes golden/rope_inv_freq.json: rotary inverse frequencies of published
      configs computed in float32 with transformers' own expressions (RopeScalingTest).

  /usr/bin/python3 tools/golden/llama_golden.py verify target/golden-java
      Checks folders the Java code wrote (GoldenReferenceTest writes them): each must follow the format
      transformers loads (config fields, safetensors header with format=pt, HF tensor names and shapes, no
      lm_head.weight when tied, a consistent shard index), and this implementation's log-probs on the inputs in
      the folder's java-logprobs.json must match the Java model's within 1e-4.
"""
import argparse
import json
import math
import os
import re
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "src", "test", "resources", "io", "sparkdpo", "model", "golden")
TOLERANCE = 1e-4

ARCH_TYPES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "MistralForCausalLM": "mistral"}
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}


# ----------------------------------------------------------------------------------------------------------
# safetensors, by hand

def write_safetensors(path, tensors, dtype):
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.detach().to(torch.float32).contiguous()
        if dtype == "F32":
            raw = t.numpy().astype("<f4").tobytes()
        elif dtype == "F16":
            raw = t.to(torch.float16).numpy().astype("<f2").tobytes()
        elif dtype == "BF16":
            raw = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    """Strict reader: what the safetensors library and transformers check, returning float64 tensors."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: shorter than the header length field")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} beyond the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    if meta is None or meta.get("format") not in ("pt", "tf", "flax", "mlx"):
        raise ValueError(f"{path}: __metadata__.format must be set (transformers refuses the file otherwise)")
    body = data[8 + n:]
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    expected = 0
    for begin, end, name in spans:
        if begin != expected:
            raise ValueError(f"{path}: tensor {name} does not start where the previous one ended")
        expected = end
    if expected != len(body):
        raise ValueError(f"{path}: data section has {len(body)} bytes, tensors cover {expected}")
    out = {}
    for name, v in header.items():
        begin, end = v["data_offsets"]
        shape = v["shape"]
        count = math.prod(shape)
        if end - begin != count * DTYPE_BYTES[v["dtype"]]:
            raise ValueError(f"{path}: tensor {name} size does not match its shape")
        raw = bytearray(body[begin:end])
        if v["dtype"] == "F32":
            t = torch.frombuffer(raw, dtype=torch.float32) if count else torch.zeros(0)
        elif v["dtype"] == "F16":
            t = torch.frombuffer(raw, dtype=torch.float16).float() if count else torch.zeros(0)
        else:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16).float() if count else torch.zeros(0)
        out[name] = t.reshape(shape).double()
    return out, {k: v["dtype"] for k, v in header.items()}


# ----------------------------------------------------------------------------------------------------------
# The model, from the published architecture

def rms_norm(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def inverse_frequencies(cfg, hd, dtype=torch.float64):
    """Rotary inverse frequencies as transformers' modeling_rope_utils computes them ("default", "linear",
    "llama3"; the type under "rope_type" or the legacy "type"), here in `dtype` (transformers: float32)."""
    base = cfg.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (base ** (torch.arange(0, hd, 2, dtype=torch.int64).to(dtype) / hd))
    scaling = cfg.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / scaling["factor"]
    if kind != "llama3":
        raise ValueError(f"rope_scaling type {kind} is not implemented here")
    factor = scaling["factor"]
    low_freq_factor = scaling["low_freq_factor"]
    high_freq_factor = scaling["high_freq_factor"]
    old_context_len = scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    # longer than the low-frequency wavelength: divided by factor; shorter than the high one: unchanged
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    # in between: interpolated
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)


def rope(x, positions, inv_freq):
    """x [B, H, T, hd]; positions [T]; inv_freq [hd / 2]."""
    angles = positions.double()[:, None] * inv_freq.double()[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def shape_of(cfg):
    """The architecture as transformers reads it from config.json: head layout and which biases exist."""
    model_type = ARCH_TYPES[cfg["architectures"][0]]
    heads = cfg["num_attention_heads"]
    attention_bias = cfg.get("attention_bias", False)
    return {
        "type": model_type,
        "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads", heads),
        "hd": cfg.get("head_dim", cfg["hidden_size"] // heads),
        "qkv_bias": model_type == "qwen2" or attention_bias,
        "o_bias": model_type != "qwen2" and attention_bias,
        "mlp_bias": model_type == "llama" and cfg.get("mlp_bias", False),
    }


def model_forward(cfg, w, ids, lora=None):
    """Logits [B, T, V] in float64 for ids [B, T] (no padding). `lora` (optional) maps a linear layer's name
    (e.g. "model.layers.0.self_attn.q_proj") to (A [r, in], B [out, r], scaling), added to its output as
    scaling * B A x (tools/golden/lora_golden.py)."""
    a = shape_of(cfg)
    heads, kv_heads, hd = a["heads"], a["kv_heads"], a["hd"]
    qkv_bias, o_bias, mlp_bias = a["qkv_bias"], a["o_bias"], a["mlp_bias"]
    eps = cfg["rms_norm_eps"]
    inv_freq = inverse_frequencies(cfg, hd)
    window = cfg.get("sliding_window") if a["type"] == "mistral" else None
    b, t = ids.shape
    positions = torch.arange(t)
    allowed = torch.ones(t, t, dtype=torch.bool).tril()
    if window:
        allowed &= (positions[:, None] - positions[None, :]) < window

    def lin(x, prefix, bias):
        y = x @ w[prefix + ".weight"].T
        y = y + w[prefix + ".bias"] if bias else y
        if lora and prefix in lora:
            a, b_, scaling = lora[prefix]
            y = y + ((x @ a.T) @ b_.T) * scaling
        return y

    x = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = lin(h, p + "self_attn.q_proj", qkv_bias).view(b, t, heads, hd).transpose(1, 2)
        k = lin(h, p + "self_attn.k_proj", qkv_bias).view(b, t, kv_heads, hd).transpose(1, 2)
        v = lin(h, p + "self_attn.v_proj", qkv_bias).view(b, t, kv_heads, hd).transpose(1, 2)
        q, k = rope(q, positions, inv_freq), rope(k, positions, inv_freq)
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        scores = scores.masked_fill(~allowed, float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, heads * hd)
        x = x + lin(y, p + "self_attn.o_proj", o_bias)
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = lin(h, p + "mlp.gate_proj", mlp_bias)
        up = lin(h, p + "mlp.up_proj", mlp_bias)
        x = x + lin(torch.nn.functional.silu(gate) * up, p + "mlp.down_proj", mlp_bias)
    x = rms_norm(x, w["model.norm.weight"], cfg["rms_norm_eps"])
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else w["lm_head.weight"]
    return x @ head.T


def response_logprobs(cfg, w, prompt, response, lora=None):
    ids = torch.tensor([prompt + response])
    logp = torch.log_softmax(model_forward(cfg, w, ids, lora)[0], dim=-1)
    total = 0.0
    for t in range(len(prompt), len(prompt) + len(response)):
        total += logp[t - 1, ids[0, t]].item()
    return total, total / len(response), len(response)


def greedy(cfg, w, prompt, steps):
    ids = list(prompt)
    for _ in range(steps):
        logits = model_forward(cfg, w, torch.tensor([ids]))[0, -1]
        ids.append(int(torch.argmax(logits)))
    return ids[len(prompt):]


def expected_names(cfg):
    """Tensor names and shapes of the HF state dict for this config."""
    a = shape_of(cfg)
    d = cfg["hidden_size"]
    heads, kv, hd = a["heads"], a["kv_heads"], a["hd"]
    inter = cfg["intermediate_size"]
    qkv_bias, o_bias, mlp_bias = a["qkv_bias"], a["o_bias"], a["mlp_bias"]
    names = {"model.embed_tokens.weight": [cfg["vocab_size"], d]}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for proj, out in (("q_proj", heads * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
            names[p + "self_attn." + proj + ".weight"] = [out, d]
            if qkv_bias:
                names[p + "self_attn." + proj + ".bias"] = [out]
        names[p + "self_attn.o_proj.weight"] = [d, heads * hd]
        if o_bias:
            names[p + "self_attn.o_proj.bias"] = [d]
        for proj, shape in (("gate_proj", [inter, d]), ("up_proj", [inter, d]), ("down_proj", [d, inter])):
            names[p + "mlp." + proj + ".weight"] = shape
            if mlp_bias:
                names[p + "mlp." + proj + ".bias"] = [shape[0]]
        names[p + "input_layernorm.weight"] = [d]
        names[p + "post_attention_layernorm.weight"] = [d]
    names["model.norm.weight"] = [d]
    if not cfg.get("tie_word_embeddings", False):
        names["lm_head.weight"] = [cfg["vocab_size"], d]
    return names


# ----------------------------------------------------------------------------------------------------------
# generate

CASES = [
    # name, file dtype, shards, config
    ("llama_gqa_tied_f32", "F32", 1, {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True,
        "attention_bias": False, "mlp_bias": False, "hidden_act": "silu", "bos_token_id": 0, "eos_token_id": 0,
        "pad_token_id": 1, "torch_dtype": "float32"}),
    ("llama_biases_untied_bf16", "BF16", 1, {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 500000.0,
        "tie_word_embeddings": False, "attention_bias": True, "mlp_bias": True, "hidden_act": "silu",
        "bos_token_id": 1, "eos_token_id": [2, 3], "torch_dtype": "bfloat16", "rope_scaling": None,
        "attention_dropout": 0.0, "pretraining_tp": 1, "use_cache": True}),
    ("qwen2_qkv_bias_f16", "F16", 1, {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "tie_word_embeddings": True, "hidden_act": "silu", "bos_token_id": 5, "eos_token_id": 6,
        "torch_dtype": "float16", "use_sliding_window": False, "sliding_window": 32, "max_window_layers": 2}),
    ("mistral_window_sharded_f32", "F32", 3, {
        "architectures": ["MistralForCausalLM"], "model_type": "mistral", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": False, "sliding_window": 5, "hidden_act": "silu", "bos_token_id": 1,
        "eos_token_id": 2, "torch_dtype": "float32"}),
    # Llama 3.1-style scaling with a short original context: head_dim 16 has 8 frequencies, wavelengths
    # 6.3, 13.7, 29.8, 65, ... against high/low limits 32/4 = 8 and 32/1 = 32: one pair unchanged, two
    # interpolated, five divided by the factor.
    ("llama3_rope_scaling_f32", "F32", 1, {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
        "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 500.0, "tie_word_embeddings": True,
        "rope_scaling": {"factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 32, "rope_type": "llama3"},
        "attention_bias": False, "mlp_bias": False, "hidden_act": "silu", "bos_token_id": 0, "eos_token_id": 0,
        "pretraining_tp": 1, "use_cache": True, "transformers_version": "4.45.0", "torch_dtype": "float32"}),
    # Linear scaling under the legacy key "type", on Qwen2, whose sliding_window (4, shorter than the
    # sequences) must be ignored because use_sliding_window is false.
    ("qwen2_linear_rope_scaling_f32", "F32", 1, {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False,
        "rope_scaling": {"type": "linear", "factor": 2.0}, "use_sliding_window": False, "sliding_window": 4,
        "max_window_layers": 1, "use_mrope": False, "hidden_act": "silu", "bos_token_id": 5, "eos_token_id": 6,
        "attention_dropout": 0.0, "torch_dtype": "float32"}),
    # head_dim 16 with hidden 32 / 4 heads: q_proj is [64, 32], o_proj [32, 64].
    ("llama_head_dim_f32", "F32", 1, {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 16, "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": False, "hidden_act": "silu", "bos_token_id": 0, "eos_token_id": 0,
        "rope_scaling": None, "torch_dtype": "float32"}),
]
# The cases above the scaling ones keep their original inputs (so their files regenerate byte-identical);
# the new ones also get one long sequence and one long greedy prompt, where scaled low frequencies matter.
LONG_CASES = {"llama3_rope_scaling_f32", "qwen2_linear_rope_scaling_f32", "llama_head_dim_f32"}
LONG_INPUTS = [{"prompt": [(7 * i + 3) % 64 for i in range(24)], "response": [(11 * i + 5) % 64 for i in range(24)]}]
LONG_GREEDY_PROMPTS = [[(13 * i + 2) % 64 for i in range(36)]]

INPUTS = [
    {"prompt": [0, 17, 33, 4, 9], "response": [21, 42, 7, 0]},
    {"prompt": [3, 60, 12], "response": [5, 5, 58, 30, 11, 2, 63]},
    {"prompt": [8, 1, 44, 19, 27, 36, 50], "response": [13]},
]
GREEDY_PROMPTS = [[0, 17, 33, 4, 9], [12, 40]]
GREEDY_STEPS = 8


def random_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name, shape in expected_names(cfg).items():
        if name.endswith("layernorm.weight") or name == "model.norm.weight":
            t = 1.0 + 0.2 * torch.randn(shape, generator=g)
        elif name.endswith(".bias"):
            t = 0.2 * torch.randn(shape, generator=g)
        elif name == "model.embed_tokens.weight":
            t = torch.randn(shape, generator=g)
        else:
            t = torch.randn(shape, generator=g) / math.sqrt(shape[1]) * 1.5
        w[name] = t.float()
    return w


def compact_json(value):
    """Indented JSON with every list of numbers on one line, so golden files diff by row."""
    text = json.dumps(value, indent=1)
    return re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def generate():
    for index, (name, dtype, shards, cfg) in enumerate(CASES):
        folder = os.path.join(GOLDEN, name)
        os.makedirs(folder, exist_ok=True)
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
        weights = random_weights(cfg, 1000 + index)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        names = list(weights)
        if shards == 1:
            write_safetensors(os.path.join(folder, "model.safetensors"), weights, dtype)
        else:
            per = math.ceil(len(names) / shards)
            weight_map = {}
            total = 0
            for s in range(shards):
                file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
                part = {n: weights[n] for n in names[s * per:(s + 1) * per]}
                write_safetensors(os.path.join(folder, file), part, dtype)
                for n, t in part.items():
                    weight_map[n] = file
                    total += t.numel() * DTYPE_BYTES[dtype]
            with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
                f.write("\n")
        # The reference computes from what the file holds (rounded to its dtype), in float64.
        stored = load_folder(folder)[1]
        cases = []
        for item in INPUTS + (LONG_INPUTS if name in LONG_CASES else []):
            ids = torch.tensor([item["prompt"] + item["response"]])
            logits = model_forward(cfg, stored, ids)[0]
            s, m, n = response_logprobs(cfg, stored, item["prompt"], item["response"])
            cases.append({"prompt": item["prompt"], "response": item["response"],
                          "logits": [[round(float(x), 7) for x in row] for row in logits],
                          "sum_logp": s, "mean_logp": m, "count": n})
        golden = {"case": name, "file_dtype": dtype, "sequences": cases,
                  "greedy": [{"prompt": p, "tokens": greedy(cfg, stored, p, GREEDY_STEPS)}
                             for p in GREEDY_PROMPTS + (LONG_GREEDY_PROMPTS if name in LONG_CASES else [])]}
        with open(os.path.join(folder, "golden.json"), "w") as f:
            f.write(compact_json(golden))
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(f"{name}: {len(names)} tensors, {size} bytes")
    write_rope_table()


# Published rotary settings (theta, head_dim, rope_scaling) whose float32 inverse frequencies the Java side must
# reproduce: Llama-3.1-8B, Llama-3.2-1B, Qwen2.5-0.5B, SmolLM2-1.7B, the built-in tiny model, a linear scaling
# and the llama3 golden case.
ROPE_TABLE = [
    ("llama-3.1-8b", 500000.0, 128, {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}),
    ("llama-3.2-1b", 500000.0, 64, {"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 8192, "rope_type": "llama3"}),
    ("qwen2.5-0.5b", 1000000.0, 64, None),
    ("smollm2-1.7b", 130000.0, 64, None),
    ("tiny", 10000.0, 64, None),
    ("linear-4", 10000.0, 128, {"type": "linear", "factor": 4.0}),
    ("llama3-golden-case", 500.0, 16, {"factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 32, "rope_type": "llama3"}),
]


def write_rope_table():
    rows = []
    for name, theta, hd, scaling in ROPE_TABLE:
        inv = inverse_frequencies({"rope_theta": theta, "rope_scaling": scaling}, hd, torch.float32)
        rows.append({"name": name, "rope_theta": theta, "head_dim": hd, "rope_scaling": scaling,
                     "inv_freq_float32_bits": [int(b) for b in inv.view(torch.int32).tolist()],
                     "inv_freq": [float(x) for x in inv.tolist()]})
    with open(os.path.join(GOLDEN, "rope_inv_freq.json"), "w") as f:
        f.write(compact_json({"torch": torch.__version__, "dtype": "float32", "cases": rows}))
    print(f"rope_inv_freq.json: {len(rows)} configs")


# ----------------------------------------------------------------------------------------------------------
# verify folders written by Java

def load_folder(folder):
    """(config, float64 weights, dtype per tensor) from an HF folder, checking what transformers relies on."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    for key in ("architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
                "num_hidden_layers", "num_attention_heads", "rms_norm_eps"):
        if key not in cfg:
            raise ValueError(f"{folder}/config.json: missing {key}")
    arch = cfg["architectures"][0]
    if ARCH_TYPES.get(arch) != cfg["model_type"]:
        raise ValueError(f"{folder}/config.json: architectures {arch} vs model_type {cfg['model_type']}")
    index = os.path.join(folder, "model.safetensors.index.json")
    weights, dtypes, origin = {}, {}, {}
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        for file in sorted(set(weight_map.values())):
            part, part_dtypes = read_safetensors(os.path.join(folder, file))
            for n in part:
                if weight_map.get(n) != file:
                    raise ValueError(f"{folder}/{file}: {n} not mapped to this shard by the index")
            weights.update(part)
            dtypes.update(part_dtypes)
        if set(weight_map) != set(weights):
            raise ValueError(f"{folder}: index and shards disagree")
    else:
        weights, dtypes = read_safetensors(os.path.join(folder, "model.safetensors"))
    expected = expected_names(cfg)
    if set(expected) != set(weights):
        raise ValueError(f"{folder}: tensors differ from the HF state dict: missing "
                         f"{sorted(set(expected) - set(weights))}, unexpected {sorted(set(weights) - set(expected))}")
    for n, shape in expected.items():
        if list(weights[n].shape) != shape:
            raise ValueError(f"{folder}: {n} has shape {list(weights[n].shape)}, expected {shape}")
    return cfg, weights, dtypes


def verify(root):
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not folders:
        raise SystemExit(f"no model folders under {root}: run GoldenReferenceTest first")
    worst = 0.0
    for name in folders:
        folder = os.path.join(root, name)
        cfg, weights, dtypes = load_folder(folder)
        torch_dtype = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}[next(iter(dtypes.values()))]
        if cfg.get("torch_dtype") != torch_dtype or len(set(dtypes.values())) != 1:
            raise ValueError(f"{folder}: torch_dtype {cfg.get('torch_dtype')} vs stored {set(dtypes.values())}")
        with open(os.path.join(folder, "java-logprobs.json")) as f:
            java = json.load(f)
        for item in java["sequences"]:
            s, m, n = response_logprobs(cfg, weights, item["prompt"], item["response"])
            diff = max(abs(s - item["sum_logp"]), abs(m - item["mean_logp"]))
            worst = max(worst, diff)
            if n != item["count"] or diff > TOLERANCE:
                raise SystemExit(f"{folder}: reference sum/mean/count {s:.6f}/{m:.6f}/{n} vs Java "
                                 f"{item['sum_logp']:.6f}/{item['mean_logp']:.6f}/{item['count']}")
        print(f"{name}: OK ({len(weights)} tensors, {torch_dtype}, {len(java['sequences'])} sequences)")
    print(f"all {len(folders)} Java-written folders load and agree; max |difference| {worst:.2e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("generate")
    v = sub.add_parser("verify")
    v.add_argument("root", nargs="?", default=os.path.join(ROOT, "target", "golden-java"))
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    if args.command == "generate":
        generate()
    else:
        verify(args.root)


if __name__ == "__main__":
    sys.exit(main())
