#!/usr/bin/python3
"""Independent reference for spark-dpo's LoRA adapters (io.sparkdpo.model.CausalLM, PEFT's format).

No peft package is installed here, so PEFT's definition is written out in plain torch, from PEFT's LoRA layer
(peft/tuners/lora/layer.py, Linear.forward) and its save code (peft/utils/save_and_load.py,
get_peft_model_state_dict):

  forward:  result = base_layer(x) + lora_B(lora_A(dropout(x))) * scaling,   scaling = lora_alpha / r
            lora_A.weight [r, in_features], lora_B.weight [out_features, r], no biases (bias="none")
  init:     lora_A kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)); lora_B zeros
  keys:     "base_model.model." + module name + ".lora_A.weight" / ".lora_B.weight" (adapter name removed);
            a module in modules_to_save is saved whole as "base_model.model." + module name + ".weight"
  merge:    W + scaling * B @ A

The adapters here have a random (nonzero) B, as after training, so the adapter changes every output.

  /usr/bin/python3 tools/golden/lora_golden.py generate
      Writes, per case, a tiny base model folder (config.json + model.safetensors, float32), a PEFT adapter
      folder (adapter_config.json + adapter_model.safetensors) and golden.json with the per-sequence response
      log-probs of base + adapter and of the base alone, computed in float64 by llama_golden.py's independent
      Llama with the adapter added to each target layer's output, to
      src/test/resources/io/sparkdpo/model/golden/lora/<case>/. LoraGoldenTest checks the Java model against them.

  /usr/bin/python3 tools/golden/lora_golden.py verify target/golden-java-lora
      Checks adapter folders the Java code wrote (LoraGoldenTest writes them, each beside the base folder it
      belongs to and java-logprobs.json): adapter_config.json as PEFT's LoraConfig reads it, exactly the tensor
      keys get_peft_model_state_dict would produce for that config and base (names, shapes, float32), and this
      script's log-probs of base + adapter on the Java inputs within 1e-5 of the Java model's.
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_golden as llama  # noqa: E402  (the independent Llama and the hand-written safetensors)

OUT = os.path.join(llama.GOLDEN, "lora")
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

CASES = [
    # name, config, r, lora_alpha, target_modules, modules_to_save
    ("llama_all_linear_lm_head", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
        "attention_bias": False, "mlp_bias": False, "hidden_act": "silu", "bos_token_id": 0, "eos_token_id": 0,
        "torch_dtype": "float32"}, 4, 8, PROJECTIONS, ["lm_head"]),
    # Qwen2 with q/k/v biases and a tied head; only q_proj and v_proj adapted, r=2, scaling 2.5.
    ("qwen2_q_v_tied", {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True,
        "hidden_act": "silu", "bos_token_id": 5, "eos_token_id": 6, "torch_dtype": "float32",
        "use_sliding_window": False}, 2, 5, ["q_proj", "v_proj"], None),
]


def adapter_config(r, alpha, targets, modules_to_save):
    """adapter_config.json as PEFT's LoraConfig.save_pretrained writes it (json, indent 2, sorted keys)."""
    return {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "base", "bias": "none",
        "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layers_pattern": None,
        "layers_to_transform": None, "loftq_config": {}, "lora_alpha": alpha, "lora_dropout": 0.0,
        "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": modules_to_save,
        "peft_type": "LORA", "r": r, "rank_pattern": {}, "revision": None, "target_modules": targets,
        "task_type": "CAUSAL_LM", "use_dora": False, "use_rslora": False}


def random_adapter(cfg, weights, r, targets, modules_to_save, g):
    """PEFT keys -> float32 tensors: A as PEFT initialises it, B random (as if trained), whole modules perturbed."""
    tensors = {}
    for name, w in weights.items():
        module = name[:-len(".weight")]
        if name.endswith(".weight") and module.split(".")[-1] in targets:
            out_features, in_features = w.shape
            bound = 1.0 / math.sqrt(in_features)
            tensors["base_model.model." + module + ".lora_A.weight"] = (
                (torch.rand(r, in_features, generator=g) * 2 - 1) * bound).float()
            tensors["base_model.model." + module + ".lora_B.weight"] = (
                0.4 * torch.randn(out_features, r, generator=g)).float()
        elif modules_to_save and module.split(".")[-1] in modules_to_save:
            tensors["base_model.model." + name] = (w + 0.3 * torch.randn(w.shape, generator=g)).float()
    return tensors


def adapted(weights, adapter, scaling):
    """(weights with whole modules replaced, {module: (A, B, scaling)}) in float64, as PEFT's forward sees them."""
    w = dict(weights)
    lora = {}
    for key, t in adapter.items():
        name = key[len("base_model.model."):]
        if name.endswith(".lora_A.weight"):
            module = name[:-len(".lora_A.weight")]
            lora[module] = (t.double(), adapter["base_model.model." + module + ".lora_B.weight"].double(), scaling)
        elif not name.endswith(".lora_B.weight"):
            w[name] = t.double()
    return w, lora


def generate():
    for index, (name, cfg, r, alpha, targets, modules_to_save) in enumerate(CASES):
        folder = os.path.join(OUT, name)
        base_dir = os.path.join(folder, "base")
        adapter_dir = os.path.join(folder, "adapter")
        for d in (base_dir, adapter_dir):
            os.makedirs(d, exist_ok=True)
            for f in os.listdir(d):
                os.remove(os.path.join(d, f))
        weights = llama.random_weights(cfg, 2000 + index)
        # Milder logits than llama_golden's cases (response log-probs of a few nats per token, not tens), so
        # float32 sums over a sequence stay well inside the 1e-5 compared against.
        for n in ("model.embed_tokens.weight", "lm_head.weight"):
            if n in weights:
                weights[n] = weights[n] * 0.25
        with open(os.path.join(base_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        llama.write_safetensors(os.path.join(base_dir, "model.safetensors"), weights, "F32")
        g = torch.Generator().manual_seed(3000 + index)
        adapter = random_adapter(cfg, weights, r, targets, modules_to_save, g)
        with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
            json.dump(adapter_config(r, alpha, targets, modules_to_save), f, indent=2, sort_keys=True)
            f.write("\n")
        llama.write_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"), adapter, "F32")
        # The reference computes from what the files hold, in float64.
        stored = llama.load_folder(base_dir)[1]
        stored_adapter, _ = llama.read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
        w, lora = adapted(stored, stored_adapter, alpha / r)
        sequences = []
        for item in llama.INPUTS:
            s, m, n = llama.response_logprobs(cfg, w, item["prompt"], item["response"], lora)
            bs, bm, _ = llama.response_logprobs(cfg, stored, item["prompt"], item["response"])
            sequences.append({"prompt": item["prompt"], "response": item["response"], "sum_logp": s,
                              "mean_logp": m, "count": n, "base_sum_logp": bs, "base_mean_logp": bm})
        golden = {"case": name, "r": r, "lora_alpha": alpha, "scaling": alpha / r, "sequences": sequences}
        with open(os.path.join(folder, "golden.json"), "w") as f:
            f.write(llama.compact_json(golden))
        size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(folder) for f in fs)
        print(f"{name}: {len(adapter)} adapter tensors, {size} bytes")


def expected_keys(cfg, config):
    """PEFT keys and shapes for an adapter of `config` on a base of `cfg`."""
    keys = {}
    targets = config["target_modules"]
    if targets == "all-linear":
        targets = PROJECTIONS
    saved = config.get("modules_to_save") or []
    for name, shape in llama.expected_names(cfg).items():
        if not name.endswith(".weight"):
            continue
        module = name[:-len(".weight")]
        leaf = module.split(".")[-1]
        if leaf in targets and len(shape) == 2:
            keys["base_model.model." + module + ".lora_A.weight"] = [config["r"], shape[1]]
            keys["base_model.model." + module + ".lora_B.weight"] = [shape[0], config["r"]]
        elif leaf in saved:
            keys["base_model.model." + name] = shape
    return keys


def verify(root):
    cases = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not cases:
        raise SystemExit(f"no adapter folders under {root}: run LoraGoldenTest first")
    worst = 0.0
    for name in cases:
        folder = os.path.join(root, name)
        cfg, weights, _ = llama.load_folder(os.path.join(folder, "base"))
        with open(os.path.join(folder, "adapter", "adapter_config.json")) as f:
            config = json.load(f)
        required = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "bias": "none", "fan_in_fan_out": False,
                    "use_dora": False, "use_rslora": False}
        for key, value in required.items():
            if config.get(key) != value:
                raise SystemExit(f"{folder}: adapter_config.json {key} is {config.get(key)!r}, expected {value!r}")
        for key in ("r", "lora_alpha", "lora_dropout", "target_modules", "modules_to_save", "inference_mode",
                    "base_model_name_or_path"):
            if key not in config:
                raise SystemExit(f"{folder}: adapter_config.json lacks {key}")
        adapter, dtypes = llama.read_safetensors(os.path.join(folder, "adapter", "adapter_model.safetensors"))
        expected = expected_keys(cfg, config)
        if set(adapter) != set(expected):
            raise SystemExit(f"{folder}: adapter keys differ from PEFT's: missing {sorted(set(expected) - set(adapter))}"
                             f", unexpected {sorted(set(adapter) - set(expected))}")
        for key, shape in expected.items():
            if list(adapter[key].shape) != shape or dtypes[key] != "F32":
                raise SystemExit(f"{folder}: {key} is {dtypes[key]} {list(adapter[key].shape)}, expected F32 {shape}")
        w, lora = adapted(weights, adapter, config["lora_alpha"] / config["r"])
        with open(os.path.join(folder, "java-logprobs.json")) as f:
            java = json.load(f)
        for item in java["sequences"]:
            s, m, n = llama.response_logprobs(cfg, w, item["prompt"], item["response"], lora)
            diff = max(abs(s - item["sum_logp"]), abs(m - item["mean_logp"]))
            worst = max(worst, diff)
            if n != item["count"] or diff > 1e-5:
                raise SystemExit(f"{folder}: reference {s:.7f}/{m:.7f}/{n} vs Java {item['sum_logp']:.7f}/"
                                 f"{item['mean_logp']:.7f}/{item['count']}")
        print(f"{name}: OK ({len(adapter)} PEFT tensors, r={config['r']}, {len(java['sequences'])} sequences)")
    print(f"all {len(cases)} Java-written adapter folders are PEFT's layout and agree; max |difference| {worst:.2e}")


def main():
    args = sys.argv[1:]
    torch.set_grad_enabled(False)
    if args == ["generate"]:
        generate()
    elif len(args) in (1, 2) and args[0] == "verify":
        verify(args[1] if len(args) == 2 else os.path.join(llama.ROOT, "target", "golden-java-lora"))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
