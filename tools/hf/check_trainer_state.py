#!/usr/bin/python3
"""Reads a spark-dpo checkpoint the way Hugging Face transformers does, without transformers installed.

transformers 4.56 (the version TRL 0.22.2 requires at least) keeps a checkpoint's progress in trainer_state.json and
reads it with TrainerState.load_from_json, which is `cls(**json.loads(text))` on the TrainerState dataclass of
trainer_callback.py: a key the dataclass does not have raises TypeError. TrainerState below repeats that dataclass
field for field (names, defaults, __post_init__), so a file this script accepts is one transformers accepts. Beyond
what load_from_json checks, the file must hold every field (save_to_json writes them all, via dataclasses.asdict),
and its content must hang together: global_step is the folder's N, log_history steps never go backwards nor past
global_step, evaluation entries use transformers' eval_ prefix (never eval/), best_model_checkpoint ends in
checkpoint-<best_global_step>, the state was written by process zero.

Given a checkpoint folder, it also checks that the model in it loads as from_pretrained would: config.json and
model.safetensors (or the index and its shards) with the tensor names, shapes and safetensors header transformers
expects (tools/golden/llama_golden.py's independent reader), or for a LoRA run adapter_config.json and
adapter_model.safetensors with PEFT's key names.

Run with Debian's python3-torch (not the pyenv python first on PATH):

  /usr/bin/python3 tools/hf/check_trainer_state.py RUN/checkpoint-N          # trainer_state.json and the model
  /usr/bin/python3 tools/hf/check_trainer_state.py tools/hf/fixtures/trainer_state.json   # the state file alone
"""
import dataclasses
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Union

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "golden"))


@dataclass
class TrainerState:
    """transformers 4.56's TrainerState fields, in its order, with its defaults."""
    epoch: Optional[float] = None
    global_step: int = 0
    max_steps: int = 0
    logging_steps: int = 500
    eval_steps: int = 500
    save_steps: int = 500
    train_batch_size: Optional[int] = None
    num_train_epochs: int = 0
    num_input_tokens_seen: int = 0
    total_flos: float = 0
    log_history: List[Dict[str, float]] = None
    best_metric: Optional[float] = None
    best_global_step: Optional[int] = None
    best_model_checkpoint: Optional[str] = None
    is_local_process_zero: bool = True
    is_world_process_zero: bool = True
    is_hyper_param_search: bool = False
    trial_name: Optional[str] = None
    trial_params: Optional[Dict[str, Union[str, float, int, bool]]] = None
    stateful_callbacks: Optional[List[object]] = None

    def __post_init__(self):
        if self.log_history is None:
            self.log_history = []
        if self.stateful_callbacks is None:
            self.stateful_callbacks = {}
        elif not isinstance(self.stateful_callbacks, dict):
            # transformers turns callback objects into their state() dicts here; a file holds the dict already.
            raise TypeError("stateful_callbacks read from a file must be a dict of callback states")

    @classmethod
    def load_from_json(cls, json_path):
        with open(json_path, "r", encoding="utf-8") as f:
            text = f.read()
        return cls(**json.loads(text))


def fail(path, message):
    raise SystemExit(f"{path}: {message}")


def check_state(path, expected_step=None):
    try:
        state = TrainerState.load_from_json(path)
    except TypeError as e:  # what transformers raises on a key the dataclass lacks
        fail(path, f"TrainerState.load_from_json fails: {e}")
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    fields = [f.name for f in dataclasses.fields(TrainerState)]
    missing = [n for n in fields if n not in raw]
    if missing:
        fail(path, f"save_to_json writes every field; missing {missing}")
    if expected_step is not None and state.global_step != expected_step:
        fail(path, f"global_step {state.global_step} in folder checkpoint-{expected_step}")
    for name in ("global_step", "max_steps", "logging_steps", "eval_steps", "save_steps", "num_train_epochs",
                 "num_input_tokens_seen"):
        if not isinstance(getattr(state, name), int) or isinstance(getattr(state, name), bool):
            fail(path, f"{name} must be an int, got {getattr(state, name)!r}")
    if state.global_step > state.max_steps:
        fail(path, f"global_step {state.global_step} beyond max_steps {state.max_steps}")
    if not state.is_world_process_zero or not state.is_local_process_zero:
        fail(path, "written by a process other than process zero")
    previous, evaluations = 0, 0
    for i, entry in enumerate(state.log_history):
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
            fail(path, f"log_history[{i}] needs an int step: {entry!r}")
        if entry["step"] < previous or entry["step"] > state.global_step:
            fail(path, f"log_history[{i}] step {entry['step']} out of order (after {previous}, "
                       f"global_step {state.global_step})")
        previous = entry["step"]
        for key, value in entry.items():
            if key.startswith("eval/"):
                fail(path, f"log_history[{i}] key {key}: transformers names evaluation metrics eval_...")
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                fail(path, f"log_history[{i}] {key} is not a number: {value!r}")
        if any(k.startswith("eval_") for k in entry):
            evaluations += 1
            if any(not (k.startswith("eval_") or k in ("epoch", "step")) for k in entry):
                fail(path, f"log_history[{i}] mixes evaluation and training keys: {sorted(entry)}")
    if state.best_model_checkpoint is not None:
        if state.best_global_step is None or not state.best_model_checkpoint.rstrip("/").endswith(
                f"checkpoint-{state.best_global_step}"):
            fail(path, f"best_model_checkpoint {state.best_model_checkpoint} is not checkpoint-{state.best_global_step}")
    if (state.best_metric is None) != (state.best_global_step is None):
        fail(path, "best_metric and best_global_step are set together")
    control = state.stateful_callbacks.get("TrainerControl")
    if control is not None and set(control) != {"args", "attributes"}:
        fail(path, f"stateful_callbacks.TrainerControl must hold args and attributes: {control!r}")
    print(f"{path}: loads as transformers' TrainerState (global_step {state.global_step} of {state.max_steps}, "
          f"{len(state.log_history)} log entries, {evaluations} evaluations, best_metric {state.best_metric} at step "
          f"{state.best_global_step})")
    return state


LORA_KEY = re.compile(r"base_model\.model\.(.+)\.lora_([AB])\.weight")


def check_adapter(folder):
    import llama_golden as llama  # noqa: E402  (the hand-written safetensors reader; needs torch)
    with open(os.path.join(folder, "adapter_config.json")) as f:
        cfg = json.load(f)
    for key in ("peft_type", "r", "lora_alpha", "target_modules"):
        if key not in cfg:
            fail(folder, f"adapter_config.json: missing {key}")
    if cfg["peft_type"] != "LORA":
        fail(folder, f"adapter_config.json: peft_type {cfg['peft_type']}, expected LORA")
    weights, _ = llama.read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    pairs = {}
    for name, tensor in weights.items():
        m = LORA_KEY.fullmatch(name)
        if m is None:
            if not name.startswith("base_model.model.") or not name.endswith(".weight"):
                fail(folder, f"adapter tensor {name} is not named as PEFT saves it")
            continue  # a module in modules_to_save, saved whole
        module, which = m.group(1), m.group(2)
        if module.split(".")[-1] not in cfg["target_modules"]:
            fail(folder, f"adapter tensor {name}: {module} is not in target_modules {cfg['target_modules']}")
        rank_dim = tensor.shape[0] if which == "A" else tensor.shape[1]
        if rank_dim != cfg["r"]:
            fail(folder, f"adapter tensor {name} has shape {list(tensor.shape)}, r is {cfg['r']}")
        pairs.setdefault(module, set()).add(which)
    incomplete = sorted(m for m, s in pairs.items() if s != {"A", "B"})
    if not pairs or incomplete:
        fail(folder, f"lora_A/lora_B pairs incomplete: {incomplete or 'none at all'}")
    print(f"{folder}: a PEFT LoRA adapter (r {cfg['r']}, {len(pairs)} adapted modules)")


def check_model(folder):
    import llama_golden as llama  # noqa: E402  (the independent loader: names, shapes, header, shard index)
    cfg, weights, dtypes = llama.load_folder(folder)
    stored = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}[next(iter(dtypes.values()))]
    if cfg.get("torch_dtype") != stored or len(set(dtypes.values())) != 1:
        fail(folder, f"config.json torch_dtype {cfg.get('torch_dtype')}, tensors stored as {set(dtypes.values())}")
    bad = [n for n, t in weights.items() if not bool(t.isfinite().all())]
    if bad:
        fail(folder, f"non-finite values in {bad}")
    print(f"{folder}: loads as {cfg['architectures'][0]} ({len(weights)} tensors, {stored})")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    target = sys.argv[1].rstrip("/")
    if os.path.isfile(target):
        check_state(target)
        return
    m = re.fullmatch(r"checkpoint-(\d+)", os.path.basename(target))
    if m is None:
        fail(target, "not a checkpoint-N folder (nor a trainer_state.json file)")
    check_state(os.path.join(target, "trainer_state.json"), int(m.group(1)))
    if os.path.exists(os.path.join(target, "adapter_config.json")):
        check_adapter(target)
    else:
        check_model(target)


if __name__ == "__main__":
    main()
