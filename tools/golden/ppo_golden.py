#!/usr/bin/python3
"""Golden values for PPO's maths: per-token KL penalty, GAE, whitening, the clipped surrogate and value losses.

Run from the repository root with Debian's interpreter:

    /usr/bin/python3 tools/golden/ppo_golden.py

It rewrites src/test/resources/golden/train/ppo.json (inputs and expected outputs; the Java tests need no Python).
The steps follow TRL 0.22.2's PPOTrainer.train (trl/trainer/ppo_trainer.py, "4. compute rewards" to the loss) and
trl/core.py's masked_mean / masked_var / masked_whiten, on padded [B, T] tensors with masks and the reversed GAE loop,
as TRL writes them; nothing here reads the Java code. Two deliberate differences from TRL, which the Java side shares
(docs/training.md, "PPO"):

- the score is added at the last response token (the stop token when there is one), and values, rewards and the value
  loss cover the response tokens only; TRL adds it one position later (sequence_length + 1, a padding position) and
  also trains the value there (its padding_mask_p1);
- approxkl and the mean ratio are means over response tokens; TRL averages them over the padded tensor.

Everything is float64 here; the Java loss runs in float32, its host maths (rewards, GAE, whitening) in float64.
"""
import json
import os

import torch

OUT = os.path.join("src", "test", "resources", "golden", "train", "ppo.json")


def flat(t, mask):
    return [float(x) for x in t[mask].detach().reshape(-1).tolist()]


def masked_mean(values, mask):
    return (values * mask).sum() / mask.sum()


def masked_var(values, mask):
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    n = mask.sum()
    return variance * n / (n - 1)  # unbiased, as trl.core.masked_var


def masked_whiten(values, mask, shift_mean=True):
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened += mean
    return whitened


def case(name, seed, lengths, kl_coef, kl_estimator, gamma, lam, whiten_rewards, cliprange, cliprange_value,
         vf_coef):
    g = torch.Generator().manual_seed(seed)
    b, t = len(lengths), max(lengths)
    idx = torch.arange(t).repeat(b, 1)
    lens = torch.tensor(lengths)
    padding_mask = idx >= lens.unsqueeze(1)
    mask = ~padding_mask
    fmask = mask.double()

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(b, t, generator=g, dtype=torch.float64)

    def n(std):
        return std * torch.randn(b, t, generator=g, dtype=torch.float64)

    logprobs = -u(0.05, 4.0)
    ref_logprobs = -u(0.05, 4.0)
    values = n(1.0)
    scores = torch.randn(b, generator=g, dtype=torch.float64)
    new_logprobs = logprobs + n(0.3)
    vpred = values + n(0.4)
    # padding as TRL fills it: INVALID_LOGPROB (1.0) in both log-prob tensors, 0 values
    logprobs = torch.masked_fill(logprobs, padding_mask, 1.0)
    ref_logprobs = torch.masked_fill(ref_logprobs, padding_mask, 1.0)
    new_logprobs = torch.masked_fill(new_logprobs, padding_mask, 1.0)
    values = torch.masked_fill(values, padding_mask, 0)
    vpred = torch.masked_fill(vpred, padding_mask, 0)

    # 4. rewards: -kl_coef * kl per token, the score at the last response token
    logr = ref_logprobs - logprobs
    kl = -logr if kl_estimator == "k1" else (logr.exp() - 1) - logr
    non_score_reward = -kl_coef * kl
    rewards = non_score_reward.clone()
    rewards[torch.arange(b), lens - 1] += scores
    # 5. whiten rewards (without shifting the mean back)
    if whiten_rewards:
        rewards = masked_whiten(rewards, mask=fmask, shift_mean=False)
        rewards = torch.masked_fill(rewards, padding_mask, 0)
    # 6. advantages and returns
    lastgaelam = 0
    advantages_reversed = []
    for s in reversed(range(t)):
        nextvalues = values[:, s + 1] if s < t - 1 else 0.0
        delta = rewards[:, s] + gamma * nextvalues - values[:, s]
        lastgaelam = delta + gamma * lam * lastgaelam
        advantages_reversed.append(lastgaelam)
    advantages = torch.stack(advantages_reversed[::-1], axis=1)
    returns = advantages + values
    raw_advantages = advantages.clone()
    advantages = masked_whiten(advantages, fmask)
    advantages = torch.masked_fill(advantages, padding_mask, 0)

    # the losses of one micro-batch holding the whole rollout batch
    new_logprobs = new_logprobs.clone().requires_grad_(True)
    vpred = vpred.clone().requires_grad_(True)
    vpredclipped = torch.clamp(vpred, values - cliprange_value, values + cliprange_value)
    vf_losses1 = torch.square(vpred - returns)
    vf_losses2 = torch.square(vpredclipped - returns)
    vf_loss = 0.5 * masked_mean(torch.max(vf_losses1, vf_losses2), fmask)
    vf_clipfrac = masked_mean((vf_losses2 > vf_losses1).double(), fmask)
    logprobs_diff = new_logprobs - logprobs
    ratio = torch.exp(logprobs_diff)
    pg_losses = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    pg_loss = masked_mean(torch.max(pg_losses, pg_losses2), fmask)
    loss = pg_loss + vf_coef * vf_loss
    loss.backward()
    pg_clipfrac = masked_mean((pg_losses2 > pg_losses).double(), fmask)
    approxkl = 0.5 * masked_mean(logprobs_diff ** 2, fmask)
    ratio_mean = masked_mean(ratio, fmask)

    kl_sums = (kl * fmask).sum(1)
    nsr_sums = (non_score_reward * fmask).sum(1)
    return {
        "name": name,
        "lengths": lengths,
        "kl_coef": kl_coef, "kl_estimator": kl_estimator, "gamma": gamma, "lam": lam,
        "whiten_rewards": whiten_rewards, "cliprange": cliprange, "cliprange_value": cliprange_value,
        "vf_coef": vf_coef,
        "logprobs": flat(logprobs, mask), "ref_logprobs": flat(ref_logprobs, mask), "values": flat(values, mask),
        "scores": [float(x) for x in scores.tolist()],
        "new_logprobs": flat(new_logprobs, mask), "vpred": flat(vpred, mask),
        "kl": flat(kl, mask), "rewards": flat(rewards, mask), "raw_advantages": flat(raw_advantages, mask),
        "advantages": flat(advantages, mask), "returns": flat(returns, mask),
        "objective_kl": float(kl_sums.mean()), "objective_non_score_reward": float(nsr_sums.mean()),
        "objective_rlhf_reward": float(nsr_sums.mean() + scores.mean()), "objective_scores": float(scores.mean()),
        "pg_loss": float(pg_loss), "vf_loss": float(vf_loss), "loss": float(loss),
        "pg_clipfrac": float(pg_clipfrac), "vf_clipfrac": float(vf_clipfrac), "approxkl": float(approxkl),
        "ratio_mean": float(ratio_mean),
        "grad_new_logprobs": flat(new_logprobs.grad, mask), "grad_vpred": flat(vpred.grad, mask),
    }


def main():
    cases = [
        # TRL 0.22.2's defaults
        case("trl_defaults", 11, [4, 2, 3], 0.05, "k1", 1.0, 0.95, False, 0.2, 0.2, 0.1),
        # k3, whitened rewards, discounting, tighter policy clip and wider value clip; a one-token response
        case("k3_whitened", 23, [1, 5, 3, 2], 0.2, "k3", 0.9, 0.8, True, 0.1, 0.3, 0.5),
    ]
    for c in cases:
        tokens = sum(c["lengths"])
        assert 0 < c["pg_clipfrac"] < 1 and 0 < c["vf_clipfrac"] < 1, (c["name"], "need clipped and unclipped")
        assert len(c["advantages"]) == tokens
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "tools/golden/ppo_golden.py", "torch": torch.__version__, "cases": cases}, f,
                  indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
