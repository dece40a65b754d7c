#!/usr/bin/python3
"""Golden values for TRL's other DPO loss types, loss lists with weights, rpo_alpha and bco_pair's running mean.

Run from the repository root with Debian's interpreter:

    /usr/bin/python3 tools/golden/dpo_loss_types_golden.py

It rewrites src/test/resources/golden/train/dpo_loss_types.json (inputs and expected outputs; the Java test needs no
Python). The formulas are written out from TRL 0.22.2's DPOTrainer.dpo_loss, get_batch_loss_metrics and
concatenated_forward (rpo's nll_loss) and trl.trainer.utils.RunningMoments, in float32 as in training; nothing here
reads the Java code.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

OUT = os.path.join("src", "test", "resources", "golden", "train", "dpo_loss_types.json")


def floats(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


class RunningMoments:
    """trl.trainer.utils.RunningMoments on one process: mean, var and count; count starts at 1e-24."""

    def __init__(self):
        self.mean, self.var, self.count = 0.0, 1.0, 1e-24

    def update(self, xs):
        xs_count = xs.numel()
        xs_var, xs_mean = torch.var_mean(xs, unbiased=False)
        delta = xs_mean.float() - self.mean
        tot = self.count + xs_count
        old_sum = self.var * self.count + delta ** 2 * self.count * xs_count / tot
        self.mean += (delta * xs_count / tot).item()
        self.var = ((old_sum + xs_var.float() * xs_count) / tot).item()
        self.count = tot


def dpo_loss(loss_type, beta, ls, tau, pc, pr, rc, rr, running):
    """One loss type, as TRL's dpo_loss (reference_free here is TRL's reference_free=True with sigmoid)."""
    reference_free = loss_type == "reference_free"
    chosen_logratios = pc - (0 if reference_free else rc)
    rejected_logratios = pr - (0 if reference_free else rr)
    logratios = pc - pr
    ref_logratios = torch.tensor([0.0]) if reference_free else rc - rr
    logits = logratios - ref_logratios
    if loss_type in ("sigmoid", "reference_free"):
        losses = -F.logsigmoid(beta * logits) * (1 - ls) - F.logsigmoid(-beta * logits) * ls
    elif loss_type == "robust":
        losses = (-F.logsigmoid(beta * logits) * (1 - ls) + F.logsigmoid(-beta * logits) * ls) / (1 - 2 * ls)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    elif loss_type == "exo_pair":
        eps = 1e-3 if ls == 0 else ls
        losses = (beta * logits).sigmoid() * (F.logsigmoid(beta * logits) - math.log(1 - eps)) + (
            -beta * logits).sigmoid() * (F.logsigmoid(-beta * logits) - math.log(eps))
    elif loss_type == "bco_pair":
        chosen_rewards = beta * (pc - rc)
        rejected_rewards = beta * (pr - rr)
        running.update(torch.cat((chosen_rewards, rejected_rewards), 0).mean().detach())
        delta = running.mean
        losses = -F.logsigmoid(beta * (pc - rc) - delta) - F.logsigmoid(-(beta * (pr - rr) - delta))
    elif loss_type == "sppo_hard":
        a, b = pc - rc, pr - rr
        losses = (a - 0.5 / beta) ** 2 + (b + 0.5 / beta) ** 2
    elif loss_type == "nca_pair":
        cr, rj = (pc - rc) * beta, (pr - rr) * beta
        losses = -F.logsigmoid(cr) - 0.5 * F.logsigmoid(-cr) - 0.5 * F.logsigmoid(-rj)
    elif loss_type == "aot_pair":
        delta = torch.sort(pc - rc, dim=0)[0] - torch.sort(pr - rr, dim=0)[0]
        losses = -F.logsigmoid(beta * delta) * (1 - ls) - F.logsigmoid(-beta * delta) * ls
    elif loss_type == "aot":
        delta = torch.sort(pc - pr, dim=0)[0] - torch.sort(rc - rr, dim=0)[0]
        losses = -F.logsigmoid(beta * delta) * (1 - ls) - F.logsigmoid(-beta * delta) * ls
    elif loss_type == "apo_zero":
        losses = (1 - torch.sigmoid(beta * chosen_logratios)) + torch.sigmoid(beta * rejected_logratios)
    elif loss_type == "apo_down":
        losses = torch.sigmoid(beta * chosen_logratios) + (1 - torch.sigmoid(beta * (chosen_logratios - rejected_logratios)))
    elif loss_type == "discopop":
        z = (logratios - ref_logratios) * beta
        m = torch.sigmoid(z / tau)
        losses = -F.logsigmoid(z) * (1 - m) + torch.exp(-z) * m
    else:
        raise ValueError(loss_type)
    chosen_rewards = beta * (pc - rc).detach()  # TRL: with the reference log-probs whenever they are there
    rejected_rewards = beta * (pr - rr).detach()
    return losses, chosen_rewards, rejected_rewards


def trl_nll(g, chosen_tokens, vocab=11):
    """TRL's nll_loss from token logits (cross_entropy, labels of masked positions 0 and ignored), and the same
    tokens' summed log-probs per sequence; the script checks nll == -sum(sums) / sum(tokens)."""
    batch, width = len(chosen_tokens), max(chosen_tokens) + 1
    logits = torch.randn(batch, width, vocab, generator=g)
    labels = torch.randint(1, vocab, (batch, width), generator=g)  # ids >= 1: TRL's ignore_index=0 drops only masks
    mask = torch.zeros(batch, width, dtype=torch.bool)
    for i, n in enumerate(chosen_tokens):
        mask[i, :n] = True
    labels = labels.masked_fill(~mask, 0)
    nll = F.cross_entropy(torch.flatten(logits, end_dim=1), torch.flatten(labels, end_dim=1), ignore_index=0)
    token_logps = torch.gather(logits.log_softmax(-1), 2, labels.unsqueeze(2)).squeeze(2) * mask
    sums = token_logps.sum(-1)
    assert abs(float(nll) + float(sums.sum()) / sum(chosen_tokens)) < 1e-5, (float(nll), float(sums.sum()))
    return sums


def case(name, types, beta, ls, steps, weights=None, rpo_alpha=None, tau=0.05, training=True):
    """Consecutive micro-batches through one loss (bco_pair's running mean carries over), TRL's combination:
    losses and rewards summed with weights, then + rpo_alpha * nll, mean over pairs."""
    running = RunningMoments()
    out_steps = []
    for inputs in steps:
        pc = torch.tensor(inputs["policy_chosen"]).requires_grad_(True)
        pr = torch.tensor(inputs["policy_rejected"]).requires_grad_(True)
        rc = torch.tensor(inputs["reference_chosen"])
        rr = torch.tensor(inputs["reference_rejected"])
        losses, cr, rj = 0, 0, 0
        for i, t in enumerate(types):
            w = weights[i] if weights else 1.0
            l, c, r = dpo_loss(t, beta, ls, tau, pc, pr, rc, rr, running)
            losses, cr, rj = losses + l * w, cr + c * w, rj + r * w
        step = {k: v for k, v in inputs.items()}
        nll = None
        if rpo_alpha is not None:
            # The chosen sums are their own leaf (with ipo the loss sees means; in the model both come from one pass).
            sums = torch.tensor(inputs["chosen_logp_sum"]).requires_grad_(True)
            nll = -sums.sum() / sum(inputs["chosen_tokens"])
            losses = losses + rpo_alpha * nll
        loss = losses.mean()
        loss.backward()
        step.update({
            "loss": float(loss), "losses": floats(losses), "chosen_rewards": floats(cr), "rejected_rewards": floats(rj),
            "grad_policy_chosen": floats(pc.grad), "grad_policy_rejected": floats(pr.grad),
            "metrics": {
                "rewards/chosen": float(cr.mean()), "rewards/rejected": float(rj.mean()),
                "rewards/margins": float((cr - rj).mean()),
                "rewards/accuracies": float((cr > rj).float().mean()),
            },
        })
        if rpo_alpha is not None:
            step["grad_chosen_logp_sum"] = floats(sums.grad)
            step["metrics"]["nll_loss"] = float(nll)
        if "bco_pair" in types:
            step["running_mean"] = running.mean
        out_steps.append(step)
    return {"name": name, "loss_type": types, "beta": beta, "label_smoothing": ls, "loss_weights": weights,
            "rpo_alpha": rpo_alpha, "discopop_tau": tau, "steps": out_steps}


def batches(g, n, batch=6, scale=1.0, with_nll=False):
    out = []
    for _ in range(n):
        pc = -30 + 10 * torch.rand(batch, generator=g)
        pr = -30 + 10 * torch.rand(batch, generator=g)
        rc = pc + 4 * torch.randn(batch, generator=g)
        rr = pr + 4 * torch.randn(batch, generator=g)
        b = {"policy_chosen": floats(pc / scale), "policy_rejected": floats(pr / scale),
             "reference_chosen": floats(rc / scale), "reference_rejected": floats(rr / scale)}
        if with_nll:
            tokens = [int(x) for x in torch.randint(3, 9, (batch,), generator=g)]
            b["chosen_tokens"] = tokens
            b["chosen_logp_sum"] = floats(trl_nll(g, tokens))
        out.append(b)
    return out


def main():
    g = torch.Generator().manual_seed(20261205)
    cases = []
    for t, beta, ls in [("exo_pair", 0.1, 0.0), ("exo_pair", 0.5, 0.2), ("nca_pair", 0.1, 0.0), ("nca_pair", 0.3, 0.0),
                        ("sppo_hard", 0.1, 0.0), ("sppo_hard", 1.0, 0.0), ("aot", 0.1, 0.0), ("aot", 0.4, 0.1),
                        ("aot_pair", 0.1, 0.0), ("aot_pair", 0.4, 0.1), ("apo_zero", 0.1, 0.0),
                        ("apo_zero", 0.5, 0.0), ("apo_down", 0.1, 0.0), ("apo_down", 0.5, 0.0),
                        ("discopop", 0.1, 0.0)]:
        cases.append(case(f"{t} beta={beta} ls={ls}", [t], beta, ls, batches(g, 1)))
    cases.append(case("discopop tau=0.5", ["discopop"], 0.2, 0.0, batches(g, 1), tau=0.5))
    cases.append(case("bco_pair over three micro-batches", ["bco_pair"], 0.1, 0.0, batches(g, 3)))
    cases.append(case("MPO-like: sigmoid + bco_pair weighted", ["sigmoid", "bco_pair"], 0.1, 0.0, batches(g, 2),
                      weights=[0.8, 0.2]))
    cases.append(case("sigmoid + apo_zero + sppo_hard, unweighted", ["sigmoid", "apo_zero", "sppo_hard"], 0.2, 0.0,
                      batches(g, 1)))
    cases.append(case("robust + hinge + discopop weighted", ["robust", "hinge", "discopop"], 0.1, 0.1,
                      batches(g, 1), weights=[1.0, 0.5, -0.25]))
    cases.append(case("reference_free + apo_zero", ["reference_free", "apo_zero"], 0.1, 0.0, batches(g, 1)))
    cases.append(case("rpo: sigmoid + nll", ["sigmoid"], 0.1, 0.0, batches(g, 1, with_nll=True), rpo_alpha=1.0))
    cases.append(case("rpo with ipo (means) + sigmoid", ["ipo", "sigmoid"], 0.1, 0.0,
                      batches(g, 1, scale=25, with_nll=True), weights=[1.0, 0.5], rpo_alpha=0.5))
    payload = {"generator": "tools/golden/dpo_loss_types_golden.py", "torch": torch.__version__, "trl": "0.22.2",
               "cases": cases}
    with open(OUT, "w") as f:
        json.dump(payload, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", OUT, len(cases), "cases")


if __name__ == "__main__":
    main()
