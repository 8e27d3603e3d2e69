"""An independent two-pass float64 numpy implementation of the estimator, written straight from the formulas.

Shared by the metric tests and the DDP worker; it uses nothing from lit_stbias.
"""
import numpy as np


def reference_bias(z1, z2, factor, threshold=0.5, layer_score="pooled"):
    z1, z2, factor = np.asarray(z1, np.float64), np.asarray(z2, np.float64), np.asarray(factor)
    covs, unit = [], []
    for f in (0, 1):
        a, b = z1[factor == f], z2[factor == f]
        mu = (a.mean(0) + b.mean(0)) / 2
        cov = ((a - mu) * (b - mu)).mean(0)
        var = np.concatenate([a, b]).var(0)
        covs.append(cov)
        with np.errstate(invalid="ignore", divide="ignore"):
            unit.append(np.where(np.ptp(np.concatenate([a, b]), 0) > 0, cov / var, 0.0))
    values = np.concatenate([z1, z2])
    total_var = values.var(0)
    alive = np.ptp(values, 0) > 0  # a dead unit takes one value only
    if layer_score == "pooled":
        scores = [covs[f][alive].sum() / total_var[alive].sum() for f in (0, 1)]
    else:
        scores = [unit[f][alive].mean() for f in (0, 1)]
    unit = np.stack(unit) * alive
    logits = np.array([scores[0], scores[1], 1.0])
    p = np.exp(logits) / np.exp(logits).sum()
    c = z1.shape[1]
    dims = {"dynamic": int(np.floor(p[0] * c)), "static": int(np.floor(p[1] * c))}
    dims["identical"] = c - dims["dynamic"] - dims["static"]
    dyn, stat = (unit[0] > threshold) & alive, (unit[1] > threshold) & alive
    counts = {
        "dynamic": int((dyn & ~stat).sum()),
        "static": int((stat & ~dyn).sum()),
        "joint": int((dyn & stat).sum()),
        "residual": int((~dyn & ~stat).sum()),
    }
    return {"scores": scores, "unit": unit, "dims": dims, "counts": counts, "dead": int((~alive).sum())}


def correlated_pairs(rng, n, c, dyn_share=0.7, stat_share=0.3, loc=0.0, scale=1.0):
    """Random pairs whose units share a different amount of signal in dynamic and static pairs."""
    def pairs(share):
        base = rng.normal(size=(n, c))
        w = rng.uniform(0, 1, size=c) * share * 2
        a = base + rng.normal(size=(n, c)) * (1 - np.minimum(w, 1))
        b = base * w + rng.normal(size=(n, c))
        return a, b

    a0, b0 = pairs(dyn_share)
    a1, b1 = pairs(stat_share)
    z1 = np.concatenate([a0, a1]) * scale + loc
    z2 = np.concatenate([b0, b1]) * scale + loc
    factor = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    perm = rng.permutation(2 * n)
    return z1[perm], z2[perm], factor[perm]
