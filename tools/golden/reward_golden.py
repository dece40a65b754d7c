#!/usr/bin/python3
"""Independent reference for spark-dpo's reward models (spark-dpo reward).

Written from the published definitions, sharing no code with the Java side:
- the Bradley-Terry loss of TRL's RewardTrainer.compute_loss (TRL 0.22.2): per pair
  -logsigmoid(r_chosen - r_rejected - margin), averaged, plus center_rewards_coefficient * mean((r_c + r_r) ** 2);
- transformers' LlamaForSequenceClassification / Qwen2ForSequenceClassification: the decoder stack (tools/golden/
  llama_golden.py's model, float64), a bias-free `score` Linear(hidden_size, num_labels) on every position, pooled at
  the rightmost token that is not config.pad_token_id ((arange(T) * (ids != pad)).argmax(-1)); num_labels is
  len(id2label).

Run with Debian's python3-torch (not the pyenv python first on PATH):

  /usr/bin/python3 tools/golden/reward_golden.py generate
      Writes src/test/resources/golden/train/reward_loss.json (rewards, margins, coefficients -> per-pair losses, mean
      loss and its gradient with respect to each reward) and src/test/resources/io/sparkdpo/model/golden/reward/<case>/
      (a random tiny sequence classifier in Hugging Face layout + golden.json: right-padded token rows and their
      scores; and preference pairs (prompt, chosen, rejected token ids, TRL margin) with each pair's loss at
      center_rewards_coefficient 0.01 and the gradient of the batch's summed loss with respect to score.weight).
      RewardLossTest, RewardModelTest and RewardObjectiveGoldenTest check the Java code against them. Also
      <case>_lora/: a PEFT SEQ_CLS adapter of the llama_pad1 classifier (adapter_config.json as
      PeftModelForSequenceClassification saves it: task_type SEQ_CLS, modules_to_save ["classifier", "score"];
      adapter_model.safetensors with lora_A/lora_B of q_proj, v_proj and down_proj and the score head saved whole as
      base_model.model.score.weight) and golden.json: the scores of the same rows with the adapter (RewardLoraTest).

  /usr/bin/python3 tools/golden/reward_golden.py verify [target/reward-java]
      Checks reward-model folders the Java code wrote (RewardModelTest and the reward stage write them): the config
      and tensors transformers' *ForSequenceClassification expects (architectures, model_type, one label,
      pad_token_id, score.weight [1, hidden], no lm_head), and this implementation's scores of the rows in the
      folder's java-scores.json must match the Java scores within 1e-4.

  /usr/bin/python3 tools/golden/reward_golden.py verify-lora [target/reward-java-lora]
      Checks the SEQ_CLS adapter folders RewardLoraTest writes (<case>/base, <case>/adapter, java-scores.json) as
      PEFT reads them: adapter_config.json (peft_type LORA, task_type SEQ_CLS, "classifier" and "score" in
      modules_to_save as PeftModelForSequenceClassification puts them there), exactly the keys
      get_peft_model_state_dict gives (lora_A/lora_B per target, base_model.model.score.weight and any other module
      saved whole), float32; and recomputes the scores of base + adapter, which must match Java's within 1e-4.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_golden as lg  # noqa: E402  (the independent Llama-family forward pass and the safetensors reader)
import lora_golden  # noqa: E402  (PEFT's adapter config, random adapters and their float64 forward form)

ROOT = lg.ROOT
LOSS_OUT = os.path.join(ROOT, "src", "test", "resources", "golden", "train", "reward_loss.json")
MODEL_OUT = os.path.join(ROOT, "src", "test", "resources", "io", "sparkdpo", "model", "golden", "reward")
TOLERANCE = 1e-4
CLASSIFIERS = {"LlamaForSequenceClassification": "LlamaForCausalLM",
               "Qwen2ForSequenceClassification": "Qwen2ForCausalLM",
               "MistralForSequenceClassification": "MistralForCausalLM"}


# ----------------------------------------------------------------------------------------------------------
# The loss

def bradley_terry(chosen, rejected, margin, coefficient):
    """TRL's compute_loss on [B] rewards: (mean loss, per-pair losses)."""
    diff = chosen - rejected - (margin if margin is not None else 0.0)
    per_pair = -torch.nn.functional.logsigmoid(diff)
    loss = per_pair.mean()
    if coefficient is not None:
        centering = (chosen + rejected) ** 2
        loss = loss + coefficient * centering.mean()
        per_pair = per_pair + coefficient * centering
    return loss, per_pair


def loss_cases():
    g = torch.Generator().manual_seed(16)
    cases = []
    for i, (margins, coefficient, scale) in enumerate([(False, None, 1.0), (True, None, 1.0), (False, 0.01, 1.0),
                                                       (True, 0.5, 2.0), (False, None, 40.0)]):
        chosen = (torch.randn(6, generator=g, dtype=torch.float64) * scale).float().double()
        rejected = (torch.randn(6, generator=g, dtype=torch.float64) * scale).float().double()
        margin = torch.rand(6, generator=g, dtype=torch.float64).float().double() if margins else None
        c = chosen.clone().requires_grad_(True)
        r = rejected.clone().requires_grad_(True)
        loss, per_pair = bradley_terry(c, r, margin, coefficient)
        loss.backward()
        cases.append({
            "name": f"case{i}" + ("_margin" if margins else "") + (f"_center{coefficient}" if coefficient else ""),
            "chosen": chosen.tolist(), "rejected": rejected.tolist(),
            "margin": margin.tolist() if margin is not None else None,
            "center_rewards_coefficient": coefficient,
            "losses": per_pair.detach().tolist(), "loss": loss.item(),
            "grad_chosen": c.grad.tolist(), "grad_rejected": r.grad.tolist()})
    return cases


# ----------------------------------------------------------------------------------------------------------
# The sequence classifier

def scores(cfg, w, rows, lora=None):
    """transformers' pooled logits [B] of a one-label *ForSequenceClassification on token rows [B, T] (with PEFT's
    LoRA layers when `lora` maps modules to (A, B, scaling), as llama_golden.model_forward takes them)."""
    causal = dict(cfg, architectures=[CLASSIFIERS[cfg["architectures"][0]]], tie_word_embeddings=False)
    per_position = lg.model_forward(causal, dict(w, **{"lm_head.weight": w["score.weight"]}), rows, lora)[..., 0]
    pad = cfg["pad_token_id"]
    non_pad = (rows != pad).to(torch.int64)
    last = (torch.arange(rows.shape[-1]) * non_pad).argmax(-1)
    return per_position[torch.arange(rows.shape[0]), last]


def expected_names(cfg):
    causal = dict(cfg, architectures=[CLASSIFIERS[cfg["architectures"][0]]], tie_word_embeddings=True)
    names = lg.expected_names(causal)  # tied: the decoder's tensors without lm_head
    names["score.weight"] = [1, cfg["hidden_size"]]
    return names


def check_config(folder, cfg):
    arch = cfg.get("architectures", [None])[0]
    if arch not in CLASSIFIERS:
        raise ValueError(f"{folder}/config.json: architectures {arch} is not a sequence classifier")
    if lg.ARCH_TYPES[CLASSIFIERS[arch]] != cfg.get("model_type"):
        raise ValueError(f"{folder}/config.json: architectures {arch} vs model_type {cfg.get('model_type')}")
    id2label = cfg.get("id2label")
    num_labels = len(id2label) if id2label is not None else cfg.get("num_labels", 2)  # PretrainedConfig's rule
    if num_labels != 1 or cfg.get("num_labels", num_labels) != num_labels:
        raise ValueError(f"{folder}/config.json: num_labels {num_labels} (id2label {id2label}, "
                         f"num_labels {cfg.get('num_labels')}), a reward model has 1")
    if cfg.get("pad_token_id") is None:
        raise ValueError(f"{folder}/config.json: no pad_token_id (transformers refuses batches of more than one row)")


def load_classifier(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    check_config(folder, cfg)
    weights, dtypes = lg.read_safetensors(os.path.join(folder, "model.safetensors"))
    expected = expected_names(cfg)
    if set(expected) != set(weights):
        raise ValueError(f"{folder}: tensors differ from the HF state dict: missing "
                         f"{sorted(set(expected) - set(weights))}, unexpected {sorted(set(weights) - set(expected))}")
    for n, shape in expected.items():
        if list(weights[n].shape) != shape:
            raise ValueError(f"{folder}: {n} has shape {list(weights[n].shape)}, expected {shape}")
    return cfg, weights, dtypes


MODEL_CASES = [
    ("llama_pad1", {"architectures": ["LlamaForSequenceClassification"], "model_type": "llama", "vocab_size": 32,
                    "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
                    "rope_theta": 10000.0, "tie_word_embeddings": False, "hidden_act": "silu",
                    "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 1, "torch_dtype": "float32",
                    "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}),
    # Qwen2 (q/k/v biases) with pad = eos, as Qwen2 tokenizers ship: a row ending in EOS is scored one token earlier.
    ("qwen2_pad_is_eos", {"architectures": ["Qwen2ForSequenceClassification"], "model_type": "qwen2",
                          "vocab_size": 32, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
                          "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": False,
                          "hidden_act": "silu", "use_sliding_window": False, "eos_token_id": 3, "pad_token_id": 3,
                          "torch_dtype": "float32", "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0},
                          "num_labels": 1}),
]


def model_rows(pad):
    """Right-padded rows: plain, with a pad id inside the text, ending in the pad id, short, and padding only."""
    rows = [[5, 9, 12, 7, 30, 2], [4, 8, 15, 16, 23, 31], [6, pad, 11, 13], [7, 21, 14, pad], [17, 18], []]
    width = max(len(r) for r in rows)
    return [r + [pad] * (width - len(r)) for r in rows]


PAIR_COEFFICIENT = 0.01


def model_pairs(pad, eos):
    """Pairs of token ids (no padding; the scorer pools at the last non-pad token of prompt + response) with TRL
    margins: positive, zero, negative and larger than the reward gap; one response ends in EOS."""
    pairs = [([5, 9, 12], [7, 30, 2], [4, 8], 0.5),
             ([6, 11], [13, 14, 15, 16], [17], 0.0),
             ([20, 21, 22, 23], [24, eos], [25, 26, 27], -1.25),
             ([28], [29, 30], [31, 2, 4], 3.0)]
    for prompt, chosen, rejected, _ in pairs:
        assert pad not in prompt + chosen[:-1] + rejected, "pad ids only where the scorer's pooling is pinned"
    return pairs


def pair_golden(cfg, weights):
    """Per-pair losses -logsigmoid(r_c - r_r - margin) + c (r_c + r_r)^2 and d(sum of losses)/d score.weight."""
    w = dict(weights)
    head = w["score.weight"].clone().requires_grad_(True)
    w["score.weight"] = head
    pairs = model_pairs(cfg["pad_token_id"], cfg["eos_token_id"])
    losses = []
    for prompt, chosen, rejected, margin in pairs:
        r_c = scores(cfg, w, torch.tensor([prompt + chosen]))[0]
        r_r = scores(cfg, w, torch.tensor([prompt + rejected]))[0]
        _, per_pair = bradley_terry(r_c.reshape(1), r_r.reshape(1), torch.tensor([margin], dtype=torch.float64),
                                    PAIR_COEFFICIENT)
        losses.append(per_pair[0])
    total = torch.stack(losses).sum()
    total.backward()
    return {"center_rewards_coefficient": PAIR_COEFFICIENT,
            "pairs": [{"prompt": p, "chosen": c, "rejected": r, "margin": m} for p, c, r, m in pairs],
            "pair_losses": [x.item() for x in losses], "grad_score_weight": head.grad.reshape(-1).tolist()}


def generate():
    os.makedirs(os.path.dirname(LOSS_OUT), exist_ok=True)
    cases = loss_cases()
    with open(LOSS_OUT, "w") as f:
        f.write(lg.compact_json({"torch": torch.__version__, "source": "TRL 0.22.2 RewardTrainer.compute_loss",
                                 "cases": cases}))
    print(f"{os.path.relpath(LOSS_OUT, ROOT)}: {len(cases)} cases")
    for index, (name, cfg) in enumerate(MODEL_CASES):
        folder = os.path.join(MODEL_OUT, name)
        os.makedirs(folder, exist_ok=True)
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
        g = torch.Generator().manual_seed(2000 + index)
        weights = {}
        for n, shape in expected_names(cfg).items():
            if n.endswith("layernorm.weight") or n == "model.norm.weight":
                t = 1.0 + 0.2 * torch.randn(shape, generator=g)
            elif n.endswith(".bias"):
                t = 0.2 * torch.randn(shape, generator=g)
            elif n == "model.embed_tokens.weight":
                t = torch.randn(shape, generator=g)
            else:
                t = torch.randn(shape, generator=g) / shape[1] ** 0.5 * 1.5
            weights[n] = t.float()
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        lg.write_safetensors(os.path.join(folder, "model.safetensors"), weights, "F32")
        cfg_read, stored, _ = load_classifier(folder)
        rows = model_rows(cfg["pad_token_id"])
        result = scores(cfg_read, stored, torch.tensor(rows))
        golden = {"case": name, "rows": rows, "scores": result.tolist()}
        with torch.enable_grad():
            golden.update(pair_golden(cfg_read, {n: t.double() for n, t in stored.items()}))
        with open(os.path.join(folder, "golden.json"), "w") as f:
            f.write(lg.compact_json(golden))
        print(f"{name}: {len(weights)} tensors, scores {[round(x, 4) for x in result.tolist()]}")


LORA_CASE = ("llama_pad1", 2, 6.0, ["q_proj", "v_proj", "down_proj"])


def generate_lora():
    """A SEQ_CLS adapter with random nonzero B and a perturbed score head, and the classifier's scores with it."""
    name, r, alpha, targets = LORA_CASE
    cfg, stored, _ = load_classifier(os.path.join(MODEL_OUT, name))
    folder = os.path.join(MODEL_OUT, name + "_lora")
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    adapter = lora_golden.random_adapter(cfg, stored, r, targets, ["score"], torch.Generator().manual_seed(2100))
    config = dict(lora_golden.adapter_config(r, alpha, targets, ["classifier", "score"]), task_type="SEQ_CLS")
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    lg.write_safetensors(os.path.join(folder, "adapter_model.safetensors"), adapter, "F32")
    w, lora = lora_golden.adapted(stored, adapter, alpha / r)
    rows = model_rows(cfg["pad_token_id"])
    result = scores(cfg, w, torch.tensor(rows), lora)
    with open(os.path.join(folder, "golden.json"), "w") as f:
        f.write(lg.compact_json({"case": name + "_lora", "base": name, "rows": rows, "scores": result.tolist()}))
    print(f"{name}_lora: {len(adapter)} adapter tensors, scores {[round(x, 4) for x in result.tolist()]}")


def verify(root):
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not folders:
        raise SystemExit(f"no model folders under {root}: run RewardModelTest first")
    worst = 0.0
    for name in folders:
        folder = os.path.join(root, name)
        cfg, weights, dtypes = load_classifier(folder)
        with open(os.path.join(folder, "java-scores.json")) as f:
            java = json.load(f)
        ours = scores(cfg, weights, torch.tensor(java["rows"]))
        diff = (ours - torch.tensor(java["scores"], dtype=torch.float64)).abs().max().item()
        worst = max(worst, diff)
        if diff > TOLERANCE:
            raise SystemExit(f"{folder}: scores {ours.tolist()} vs Java {java['scores']} (max |difference| {diff:.2e})")
        print(f"{name}: OK ({cfg['architectures'][0]}, {len(weights)} tensors, pad_token_id {cfg['pad_token_id']}, "
              f"{len(java['rows'])} rows, max |difference| {diff:.2e})")
    print(f"all {len(folders)} Java-written reward models load as transformers would and agree; max |difference| "
          f"{worst:.2e}")


def expected_adapter_keys(cfg, config):
    """PEFT's keys and shapes for a SEQ_CLS adapter of `config` on the classifier `cfg`."""
    targets = config["target_modules"]
    saved = config.get("modules_to_save") or []
    keys = {}
    for name, shape in expected_names(cfg).items():
        module = name[:-len(".weight")] if name.endswith(".weight") else None
        if module is None:
            continue
        leaf = module.split(".")[-1]
        if leaf in targets and len(shape) == 2:
            keys["base_model.model." + module + ".lora_A.weight"] = [config["r"], shape[1]]
            keys["base_model.model." + module + ".lora_B.weight"] = [shape[0], config["r"]]
        elif leaf in saved:
            keys["base_model.model." + name] = shape
    return keys


def verify_lora(root):
    cases = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))) if os.path.isdir(root) else []
    if not cases:
        raise SystemExit(f"no adapter folders under {root}: run RewardLoraTest first")
    worst = 0.0
    for name in cases:
        folder = os.path.join(root, name)
        cfg, weights, _ = load_classifier(os.path.join(folder, "base"))
        with open(os.path.join(folder, "adapter", "adapter_config.json")) as f:
            config = json.load(f)
        required = {"peft_type": "LORA", "task_type": "SEQ_CLS", "bias": "none", "fan_in_fan_out": False,
                    "use_dora": False, "use_rslora": False}
        for key, value in required.items():
            if config.get(key) != value:
                raise SystemExit(f"{folder}: adapter_config.json {key} is {config.get(key)!r}, expected {value!r}")
        if not {"classifier", "score"} <= set(config.get("modules_to_save") or []):
            raise SystemExit(f"{folder}: modules_to_save {config.get('modules_to_save')} lacks PEFT's SEQ_CLS names")
        adapter, dtypes = lg.read_safetensors(os.path.join(folder, "adapter", "adapter_model.safetensors"))
        expected = expected_adapter_keys(cfg, config)
        if set(adapter) != set(expected):
            raise SystemExit(f"{folder}: adapter keys differ from PEFT's: missing {sorted(set(expected) - set(adapter))}"
                             f", unexpected {sorted(set(adapter) - set(expected))}")
        for key, shape in expected.items():
            if list(adapter[key].shape) != shape or dtypes[key] != "F32":
                raise SystemExit(f"{folder}: {key} is {dtypes[key]} {list(adapter[key].shape)}, expected F32 {shape}")
        w, lora = lora_golden.adapted(weights, adapter, config["lora_alpha"] / config["r"])
        with open(os.path.join(folder, "java-scores.json")) as f:
            java = json.load(f)
        ours = scores(cfg, w, torch.tensor(java["rows"]), lora)
        diff = (ours - torch.tensor(java["scores"], dtype=torch.float64)).abs().max().item()
        worst = max(worst, diff)
        if diff > TOLERANCE:
            raise SystemExit(f"{folder}: scores {ours.tolist()} vs Java {java['scores']} (max |difference| {diff:.2e})")
        print(f"{name}: OK ({len(adapter)} PEFT tensors, r={config['r']}, modules_to_save "
              f"{config['modules_to_save']}, {len(java['rows'])} rows, max |difference| {diff:.2e})")
    print(f"all {len(cases)} Java-written SEQ_CLS adapters are PEFT's layout and agree; max |difference| {worst:.2e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("generate")
    v = sub.add_parser("verify")
    v.add_argument("root", nargs="?", default=os.path.join(ROOT, "target", "reward-java"))
    vl = sub.add_parser("verify-lora")
    vl.add_argument("root", nargs="?", default=os.path.join(ROOT, "target", "reward-java-lora"))
    args = parser.parse_args()
    if args.command == "generate":
        generate()
        generate_lora()
    elif args.command == "verify-lora":
        torch.set_grad_enabled(False)
        verify_lora(args.root)
    else:
        torch.set_grad_enabled(False)
        verify(args.root)


if __name__ == "__main__":
    sys.exit(main())
