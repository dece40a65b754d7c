#!/usr/bin/python3
"""Golden values for spark-dpo's low-precision weights (io.sparkdpo.model), from Debian's python3-torch.

  /usr/bin/python3 tools/golden/bf16_golden.py
      Writes src/test/resources/io/sparkdpo/model/golden/low_precision.json:
      - "logprobs": response log-probs of two golden checkpoints (written by llama_golden.py) computed in torch
        bfloat16 the way transformers runs a model loaded with torch_dtype=bfloat16: weights rounded to bf16,
        RMSNorm in float32 cast back before the weight, rotary cos/sin computed in float32 and cast to bf16,
        eager attention (scores and mask in bf16, softmax in float32 cast back), linears and the residual stream
        in bf16, logits.float() and log_softmax in float32. Checked by LowPrecisionTest within 1e-3 relative.
      - "rounding": float32 bit patterns and torch's .to(torch.float16) and .to(torch.bfloat16) bits of them
        (round to nearest even, subnormals, overflow), for Safetensors' converters.

The model code here follows transformers' LlamaForCausalLM (eager attention) and reads weights with
llama_golden.py's independent safetensors reader; it shares no code with the Java side.
"""
import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_golden as lg  # noqa: E402

CASES = ["llama_biases_untied_bf16", "llama_gqa_tied_f32"]


def rms_norm(x, weight, eps):
    dtype = x.dtype
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward_bf16(cfg, w, ids):
    a = lg.shape_of(cfg)
    heads, kv_heads, hd = a["heads"], a["kv_heads"], a["hd"]
    dt = torch.bfloat16
    eps = cfg["rms_norm_eps"]
    theta = cfg.get("rope_theta", 10000.0)
    b, t = ids.shape
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    positions = torch.arange(t)[None, :].float()
    freqs = (inv_freq[None, :, None].float() @ positions[:, None, :]).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(dt)[:, None], emb.sin().to(dt)[:, None]
    mask = torch.full((t, t), torch.finfo(dt).min, dtype=dt).triu(1)

    def lin(x, prefix, bias):
        return torch.nn.functional.linear(x, w[prefix + ".weight"], w[prefix + ".bias"] if bias else None)

    x = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = lin(h, p + "self_attn.q_proj", a["qkv_bias"]).view(b, t, heads, hd).transpose(1, 2)
        k = lin(h, p + "self_attn.k_proj", a["qkv_bias"]).view(b, t, kv_heads, hd).transpose(1, 2)
        v = lin(h, p + "self_attn.v_proj", a["qkv_bias"]).view(b, t, kv_heads, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) * hd ** -0.5 + mask
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(dt)
        y = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, heads * hd)
        x = x + lin(y, p + "self_attn.o_proj", a["o_bias"])
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = lin(h, p + "mlp.gate_proj", a["mlp_bias"])
        up = lin(h, p + "mlp.up_proj", a["mlp_bias"])
        x = x + lin(torch.nn.functional.silu(gate) * up, p + "mlp.down_proj", a["mlp_bias"])
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else w["lm_head.weight"]
    return torch.nn.functional.linear(x, head).float()


def logprobs(name):
    folder = os.path.join(lg.GOLDEN, name)
    cfg, weights, _ = lg.load_folder(folder)
    w = {n: t.to(torch.float32).to(torch.bfloat16) for n, t in weights.items()}
    with open(os.path.join(folder, "golden.json")) as f:
        golden = json.load(f)
    out = []
    for s in golden["sequences"]:
        prompt, response = s["prompt"], s["response"]
        ids = torch.tensor([prompt + response])
        logp = torch.log_softmax(forward_bf16(cfg, w, ids)[0], dim=-1)
        total = sum(logp[i - 1, ids[0, i]].item() for i in range(len(prompt), len(prompt) + len(response)))
        out.append({"prompt": prompt, "response": response, "sum_logp": total,
                    "float64_sum_logp": s["sum_logp"]})
    return out


def rounding():
    g = torch.Generator().manual_seed(7)
    values = torch.cat([
        torch.randn(64, generator=g) * 3,
        torch.randn(16, generator=g) * 1e-5,   # f16 subnormals
        torch.randn(8, generator=g) * 1e-8,    # below f16's range: zero or smallest subnormal
        torch.tensor([0.0, -0.0, 1.0, 65504.0, 65519.0, 65520.0, 1e6, -1e6, 2.0 ** -24, 2.0 ** -25,
                      3 * 2.0 ** -26, 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8,
                      float("inf"), float("-inf")]),
    ]).float()
    bits = [struct.unpack("<I", struct.pack("<f", v))[0] for v in values.tolist()]
    f16 = values.to(torch.float16).view(torch.int16).tolist()
    bf16 = values.to(torch.bfloat16).view(torch.int16).tolist()
    return [{"f32": b, "f16": h & 0xFFFF, "bf16": z & 0xFFFF} for b, h, z in zip(bits, f16, bf16)]


def main():
    torch.set_grad_enabled(False)
    out = {"torch": torch.__version__, "logprobs": {name: logprobs(name) for name in CASES}, "rounding": rounding()}
    path = os.path.join(lg.GOLDEN, "low_precision.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    for name, items in out["logprobs"].items():
        worst = max(abs(i["sum_logp"] - i["float64_sum_logp"]) / abs(i["float64_sum_logp"]) for i in items)
        print(f"{name}: bf16 vs float64 relative difference of summed log-probs up to {worst:.2e}")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
