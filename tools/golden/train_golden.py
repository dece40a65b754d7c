#!/usr/bin/python3
"""Golden values for io.sparkdpo.train, computed with PyTorch (Debian python3-torch).

Run from the repository root with Debian's interpreter (not the pyenv one first on PATH):

    /usr/bin/python3 tools/golden/train_golden.py

It rewrites src/test/resources/golden/train/*.json. Every file holds its inputs and the expected outputs, so the
Java tests need no Python. Inputs come from seeded generators; all maths is float32 as in training. The loss
formulas follow TRL's DPOTrainer.dpo_loss and the DPO reference code's preference_loss; the optimiser is
torch.optim.AdamW itself, the schedules are transformers' lambda formulas driven by torch's LambdaLR, and clipping is
torch.nn.utils.clip_grad_norm_.
"""
import json
import math
import os
from functools import partial

import torch
import torch.nn.functional as F

OUT = os.path.join("src", "test", "resources", "golden", "train")


def floats(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def write(name, payload):
    payload = {"generator": "tools/golden/train_golden.py", "torch": torch.__version__, **payload}
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", path)


# ---------------------------------------------------------------- DPO losses (TRL DPOTrainer.dpo_loss)
def dpo_loss(loss_type, beta, label_smoothing, pc, pr, rc, rr):
    pi_logratios = pc - pr
    ref_logratios = torch.zeros_like(pi_logratios) if loss_type == "reference_free" else rc - rr
    logits = pi_logratios - ref_logratios
    if loss_type in ("sigmoid", "reference_free"):
        losses = (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
                  - F.logsigmoid(-beta * logits) * label_smoothing)
    elif loss_type == "robust":
        losses = (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
                  + F.logsigmoid(-beta * logits) * label_smoothing) / (1 - 2 * label_smoothing)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(loss_type)
    chosen_rewards = beta * (pc - rc).detach()
    rejected_rewards = beta * (pr - rr).detach()
    return losses, chosen_rewards, rejected_rewards


def dpo_cases():
    g = torch.Generator().manual_seed(20240601)
    batch = 6
    # Summed log-probs of responses of a few dozen tokens; the reference close to the policy.
    pc = -30 + 10 * torch.rand(batch, generator=g)
    pr = -30 + 10 * torch.rand(batch, generator=g)
    rc = pc + 4 * torch.randn(batch, generator=g)
    rr = pr + 4 * torch.randn(batch, generator=g)
    # IPO works on per-token mean log-probs (TRL divides by the completion length for ipo).
    mc, mr = pc / 25, pr / 25
    mrc, mrr = rc / 25, rr / 25
    specs = [
        ("sigmoid", 0.1, 0.0, "sum"),
        ("sigmoid", 0.5, 0.1, "sum"),
        ("robust", 0.1, 0.2, "sum"),
        ("robust", 0.3, 0.0, "sum"),
        ("ipo", 0.1, 0.0, "mean"),
        ("ipo", 0.5, 0.0, "mean"),
        ("hinge", 0.1, 0.0, "sum"),
        ("hinge", 0.4, 0.0, "sum"),
        ("reference_free", 0.1, 0.0, "sum"),
        ("reference_free", 0.2, 0.1, "sum"),
    ]
    cases = []
    for loss_type, beta, ls, scale in specs:
        inputs = (pc, pr, rc, rr) if scale == "sum" else (mc, mr, mrc, mrr)
        p_c = inputs[0].clone().requires_grad_(True)
        p_r = inputs[1].clone().requires_grad_(True)
        losses, cr, rj = dpo_loss(loss_type, beta, ls, p_c, p_r, inputs[2], inputs[3])
        loss = losses.mean()
        loss.backward()
        cases.append({
            "loss_type": loss_type, "beta": beta, "label_smoothing": ls,
            "policy_chosen": floats(inputs[0]), "policy_rejected": floats(inputs[1]),
            "reference_chosen": floats(inputs[2]), "reference_rejected": floats(inputs[3]),
            "loss": float(loss), "losses": floats(losses),
            "chosen_rewards": floats(cr), "rejected_rewards": floats(rj),
            "grad_policy_chosen": floats(p_c.grad), "grad_policy_rejected": floats(p_r.grad),
            "metrics": {
                "rewards/chosen": float(cr.mean()), "rewards/rejected": float(rj.mean()),
                "rewards/margins": float((cr - rj).mean()),
                "rewards/accuracies": float((cr > rj).float().mean()),
                "logps/chosen": float(inputs[0].mean()), "logps/rejected": float(inputs[1].mean()),
            },
        })
    write("dpo_loss.json", {"cases": cases})


# ---------------------------------------------------------------- SFT loss (transformers' causal-LM loss)
def sft_cases():
    g = torch.Generator().manual_seed(7)
    b, t, v = 2, 5, 11
    logits = 2 * torch.randn(b, t, v, generator=g)
    targets = torch.randint(0, v, (b, t), generator=g)
    completion = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 1, 0]])   # row 1 ends with padding
    everything = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    cases = []
    for name, mask in (("completion_only", completion), ("whole_sequence", everything)):
        x = logits.clone().requires_grad_(True)
        labels = torch.where(mask.bool(), targets, torch.full_like(targets, -100))
        loss = F.cross_entropy(x.reshape(-1, v), labels.reshape(-1), ignore_index=-100, reduction="mean")
        loss.backward()
        cases.append({"name": name, "shape": [b, t, v], "logits": floats(logits),
                      "targets": [int(i) for i in targets.reshape(-1).tolist()],
                      "mask": [int(i) for i in mask.reshape(-1).tolist()],
                      "loss": float(loss), "tokens": int(mask.sum()), "grad_logits": floats(x.grad)})
    write("sft_loss.json", {"cases": cases})


# ---------------------------------------------------------------- schedules (transformers' formulas)
def linear_lambda(step, warmup, total):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    return max(0.0, float(total - step) / float(max(1, total - warmup)))


def cosine_lambda(step, warmup, total, cycles=0.5):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * progress)))


def constant_with_warmup_lambda(step, warmup):
    if step < warmup:
        return float(step) / float(max(1.0, warmup))
    return 1.0


def lambdas(kind, warmup, total):
    return {"linear": partial(linear_lambda, warmup=warmup, total=total),
            "cosine": partial(cosine_lambda, warmup=warmup, total=total),
            "constant": lambda step: 1.0,
            "constant_with_warmup": partial(constant_with_warmup_lambda, warmup=warmup)}[kind]


def applied_lrs(kind, base_lr, warmup, total, steps):
    """The rate each optimizer step actually uses, read from the param group as Trainer's loop sees it."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=base_lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambdas(kind, warmup, total))
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        p.grad = torch.zeros(1)
        opt.step()
        sched.step()
    return lrs


def schedule_cases():
    cases = []
    for kind in ("linear", "cosine", "constant", "constant_with_warmup"):
        for warmup, total in ((3, 10), (0, 7)):
            cases.append({"type": kind, "base_lr": 1e-3, "warmup_steps": warmup, "total_steps": total,
                          "lrs": applied_lrs(kind, 1e-3, warmup, total, total + 2)})
    write("schedules.json", {"cases": cases})


# ---------------------------------------------------------------- AdamW (torch.optim.AdamW)
def adamw_cases():
    cases = []
    specs = [
        {"name": "no_weight_decay", "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "lr": 1e-2},
        {"name": "weight_decay", "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1, "lr": 1e-2},
        {"name": "other_betas", "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.01, "lr": 3e-2},
    ]
    steps, warmup = 6, 2
    for spec in specs:
        g = torch.Generator().manual_seed(99)
        w = torch.randn(3, 4, generator=g)
        n = 1 + 0.1 * torch.randn(5, generator=g)
        grads = [(torch.randn(3, 4, generator=g), 0.5 * torch.randn(5, generator=g)) for _ in range(steps)]
        pw, pn = torch.nn.Parameter(w.clone()), torch.nn.Parameter(n.clone())
        # Hugging Face's Trainer puts norm weights and biases in a group without weight decay.
        opt = torch.optim.AdamW([{"params": [pw], "weight_decay": spec["weight_decay"]},
                                 {"params": [pn], "weight_decay": 0.0}],
                                lr=spec["lr"], betas=spec["betas"], eps=spec["eps"])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambdas("linear", warmup, steps))
        trajectory = []
        for gw, gn in grads:
            lr = opt.param_groups[0]["lr"]
            pw.grad, pn.grad = gw.clone(), gn.clone()
            opt.step()
            sched.step()
            trajectory.append({"lr": lr, "weight": floats(pw), "norm": floats(pn)})
        sw, sn = opt.state[pw], opt.state[pn]
        cases.append({
            "name": spec["name"], "beta1": spec["betas"][0], "beta2": spec["betas"][1], "eps": spec["eps"],
            "weight_decay": spec["weight_decay"], "base_lr": spec["lr"], "warmup_steps": warmup,
            "total_steps": steps, "weight_shape": [3, 4], "norm_shape": [5],
            "weight": floats(w), "norm": floats(n),
            "grads": [{"weight": floats(gw), "norm": floats(gn)} for gw, gn in grads],
            "steps": trajectory,
            "final_state": {"step": int(sw["step"]),
                            "weight.exp_avg": floats(sw["exp_avg"]), "weight.exp_avg_sq": floats(sw["exp_avg_sq"]),
                            "norm.exp_avg": floats(sn["exp_avg"]), "norm.exp_avg_sq": floats(sn["exp_avg_sq"])},
        })
    write("adamw.json", {"cases": cases})


# ---------------------------------------------------------------- clipping (torch.nn.utils.clip_grad_norm_)
def clip_cases():
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(3, 4, generator=g), 3 * torch.randn(5, generator=g)
    cases = []
    for max_norm in (1.0, 100.0):
        pa, pb = torch.nn.Parameter(torch.zeros(3, 4)), torch.nn.Parameter(torch.zeros(5))
        pa.grad, pb.grad = a.clone(), b.clone()
        total = torch.nn.utils.clip_grad_norm_([pa, pb], max_norm)
        cases.append({"max_norm": max_norm, "shapes": [[3, 4], [5]], "grads": [floats(a), floats(b)],
                      "total_norm": float(total), "clipped": [floats(pa.grad), floats(pb.grad)]})
    write("clip.json", {"cases": cases})


if __name__ == "__main__":
    torch.set_num_threads(1)
    dpo_cases()
    sft_cases()
    schedule_cases()
    adamw_cases()
    clip_cases()
