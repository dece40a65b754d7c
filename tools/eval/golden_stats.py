#!/usr/bin/python3
"""Golden values for io.sparkdpo.eval statistics tests, computed independently with mpmath (40 digits).

Run with Debian's python (has mpmath):  /usr/bin/python3 tools/eval/golden_stats.py
Writes src/test/resources/io/sparkdpo/eval/golden-stats.json; the Java tests read that file.
"""
import json
import os

import mpmath as mp

mp.mp.dps = 40


def t_cdf(t, df):
    t = mp.mpf(t)
    tail = mp.mpf(1) / 2 * mp.betainc(mp.mpf(df) / 2, mp.mpf(1) / 2, 0, df / (df + t * t), regularized=True)
    return 1 - tail if t >= 0 else tail


def t_quantile(p, df):
    p = mp.mpf(p)
    upper = max(p, 1 - p)
    lo, hi = mp.mpf(0), mp.mpf(1)
    while t_cdf(hi, df) < upper:
        lo, hi = hi, hi * 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < upper:
            lo = mid
        else:
            hi = mid
    t = (lo + hi) / 2
    return -t if p < mp.mpf(1) / 2 else t


def normal_quantile(p):
    return mp.sqrt(2) * mp.erfinv(2 * mp.mpf(p) - 1)


def mean_interval(values, confidence):
    xs = [mp.mpf(v) for v in values]
    n = len(xs)
    mean = sum(xs) / n
    sd = mp.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    se = sd / mp.sqrt(n)
    half = t_quantile(1 - (1 - mp.mpf(confidence)) / 2, n - 1) * se
    return {"values": values, "confidence": confidence, "mean": float(mean), "low": float(mean - half),
            "high": float(mean + half), "standard_error": float(se)}


def wilson(wins, ties, losses, confidence):
    n = wins + ties + losses
    p = (mp.mpf(wins) + mp.mpf(ties) / 2) / n
    z = normal_quantile(1 - (1 - mp.mpf(confidence)) / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * mp.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return {"wins": wins, "ties": ties, "losses": losses, "confidence": confidence, "rate": float(p),
            "low": float(max(0, centre - half)), "high": float(min(1, centre + half))}


def main():
    t = [{"p": p, "df": df, "t": float(t_quantile(p, df))}
         for df in [1, 2, 3, 4, 5, 7, 9, 10, 19, 29, 30, 99, 199, 1000, 2.5]
         for p in [0.9, 0.95, 0.975, 0.995, 0.025, 0.6]]
    normal = [{"p": p, "z": float(normal_quantile(p))}
              for p in [0.5, 0.6, 0.9, 0.95, 0.975, 0.995, 0.025, 0.3, 1e-10, 0.999999, 0.07, 0.93]]
    policy = [0.12, 0.05, 0.30, -0.02, 0.18, 0.09, 0.22, 0.15]
    sft = [0.10, 0.07, 0.11, -0.05, 0.02, 0.09, 0.12, 0.01]
    means = [
        mean_interval([1.0, 2.0, 3.0, 4.0, 5.0], 0.95),
        mean_interval(policy, 0.95),
        mean_interval(policy, 0.9),
        mean_interval([round(a - b, 12) for a, b in zip(policy, sft)], 0.95),
    ]
    wins = [wilson(5, 2, 1, 0.95), wilson(10, 0, 0, 0.95), wilson(0, 3, 0, 0.9), wilson(61, 20, 19, 0.99)]
    out = {"t_quantiles": t, "normal_quantiles": normal, "mean_intervals": means,
           "paired": {"policy": policy, "sft": sft, "confidence": 0.95}, "wilson": wins}
    path = os.path.join(os.path.dirname(__file__), "../../src/test/resources/io/sparkdpo/eval/golden-stats.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
