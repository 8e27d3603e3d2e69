"""The static/dynamic bias estimator of Kowal et al. (CVPR 2022), as pure functions on feature tensors.

All the maths lives here, once. :class:`~lit_stbias.metrics.StaticDynamicBias` only holds the
sufficient statistics and calls these functions; :func:`static_dynamic_bias` is the one-shot twin. The rule
that sorts units into classes at λ lives with :class:`~lit_stbias.metrics.BiasResult`, which applies it again
for a λ sweep.

For factor f (0 = dynamic pairs, 1 = static pairs) with pairs (a_j, b_j), j = 1..n_f, and unit i::

    mu_f(i)  = (mean_j a_j(i) + mean_j b_j(i)) / 2
    cov_f(i) = mean_j (a_j(i) - mu_f(i)) (b_j(i) - mu_f(i))
    var_f(i) = population variance of the 2 n_f values {a_j(i)} and {b_j(i)} together
    s_f(i)   = cov_f(i) / var_f(i)                              (unit score)
    Var(i)   = population variance of every a and b of unit i, both factors together
    S_f      = sum_i cov_f(i) / sum_i Var(i)                    (layer score, "pooled")

The statistics are kept per factor as counts, means, centred second moments and the centred co-moment,
all in float64, and merged with the parallel update of Chan et al., so streaming over batches or
processes gives the two-pass answer without storing a single feature.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from lit_stbias.metrics.result import DYNAMIC, STATIC, BiasResult, unit_counts

LAYER_SCORE_MODES = ("pooled", "unit_mean")
FACTOR_NAMES = ("dynamic", "static")
# A unit whose standard deviation is within a few float64 ulps of its mean carries no signal: it is dead.
_DEAD_ULPS = 64 * torch.finfo(torch.float64).eps


class PairMoments(NamedTuple):
    """Sufficient statistics of the pairs of each factor. Shapes: ``n`` (2,), the rest (2, C)."""

    n: Tensor
    mean_a: Tensor
    mean_b: Tensor
    m2_a: Tensor  # sum_j (a_j - mean_a)^2
    m2_b: Tensor  # sum_j (b_j - mean_b)^2
    c_ab: Tensor  # sum_j (a_j - mean_a)(b_j - mean_b)


def empty_moments(num_units: int, device: torch.device | str | None = None) -> PairMoments:
    zeros = torch.zeros(2, num_units, dtype=torch.float64, device=device)
    return PairMoments(torch.zeros(2, dtype=torch.float64, device=device), *(zeros.clone() for _ in range(5)))


def _as_factor(factor: Tensor | int, batch: int, device: torch.device) -> Tensor:
    if isinstance(factor, int):
        factor = torch.full((batch,), factor, dtype=torch.int64, device=device)
    if not isinstance(factor, Tensor):
        factor = torch.as_tensor(factor)
    if factor.ndim != 1 or factor.shape[0] != batch:
        raise ValueError(
            f"factor must have shape ({batch},), one entry per pair, but has shape {tuple(factor.shape)}."
        )
    if factor.is_floating_point() or factor.is_complex():
        raise ValueError(f"factor must be an integer tensor (0 = dynamic pair, 1 = static pair), got {factor.dtype}.")
    factor = factor.to(device=device, dtype=torch.int64)
    if bool(((factor != DYNAMIC) & (factor != STATIC)).any()):
        bad = sorted(set(factor[(factor != DYNAMIC) & (factor != STATIC)].tolist()))[:5]
        raise ValueError(f"factor values must be 0 (dynamic pair) or 1 (static pair); got {bad}.")
    return factor


def check_pairs(z1: Tensor, z2: Tensor, factor: Tensor | int, num_units: int | None = None) -> Tensor:
    """Validate one batch of pairs and return ``factor`` as an int64 tensor of shape (B,)."""
    if not isinstance(z1, Tensor) or not isinstance(z2, Tensor):
        raise ValueError("z1 and z2 must be torch tensors of pooled features, shaped (B, C).")
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must both be (B, C) pooled features of the same shape; got {tuple(z1.shape)} and "
            f"{tuple(z2.shape)}. Pool layer outputs first (lit_stbias.probe.pool)."
        )
    if num_units is not None and z1.shape[1] != num_units:
        raise ValueError(f"expected {num_units} units (channels) per feature vector, got {z1.shape[1]}.")
    if not (z1.is_floating_point() and z2.is_floating_point()):
        raise ValueError(f"features must be floating point (float16/32/64), got {z1.dtype} and {z2.dtype}.")
    for name, z in (("z1", z1), ("z2", z2)):
        if not bool(torch.isfinite(z).all()):
            bad = (~torch.isfinite(z)).any(0).nonzero().flatten()[:5].tolist()
            raise ValueError(
                f"{name} holds non-finite features (NaN or inf) in units {bad}; check the model's inputs and "
                "numerical precision (e.g. run the probe in float32)."
            )
    return _as_factor(factor, z1.shape[0], z1.device)


def batch_moments(z1: Tensor, z2: Tensor, factor: Tensor) -> PairMoments:
    """Two-pass moments of one batch, per factor, in float64. ``factor`` must already be checked."""
    a, b = z1.to(torch.float64), z2.to(torch.float64)
    onehot = torch.stack([factor == DYNAMIC, factor == STATIC]).to(torch.float64)  # (2, B)
    n = onehot.sum(1)
    safe_n = n.clamp_min(1).unsqueeze(1)
    mean_a, mean_b = onehot @ a / safe_n, onehot @ b / safe_n
    da, db = a - mean_a[factor], b - mean_b[factor]
    return PairMoments(n, mean_a, mean_b, onehot @ (da * da), onehot @ (db * db), onehot @ (da * db))


def merge_moments(x: PairMoments, y: PairMoments) -> PairMoments:
    """Chan et al.'s parallel merge: the moments of the union of two disjoint sets of pairs."""
    n = x.n + y.n
    wy = (y.n / n.clamp_min(1)).unsqueeze(1)  # share of y; 0 where both are empty
    cross = (x.n * y.n / n.clamp_min(1)).unsqueeze(1)
    delta_a, delta_b = y.mean_a - x.mean_a, y.mean_b - x.mean_b
    return PairMoments(
        n,
        x.mean_a + delta_a * wy,
        x.mean_b + delta_b * wy,
        x.m2_a + y.m2_a + delta_a * delta_a * cross,
        x.m2_b + y.m2_b + delta_b * delta_b * cross,
        x.c_ab + y.c_ab + delta_a * delta_b * cross,
    )


def _ratio(num: Tensor, den: Tensor, valid: Tensor) -> Tensor:
    return torch.where(valid, num / torch.where(valid, den, torch.ones_like(den)), torch.zeros_like(num))


def bias_from_moments(
    m: PairMoments,
    threshold: float = 0.5,
    layer_score: str = "pooled",
) -> BiasResult:
    """Turn the sufficient statistics into layer-wise and unit-wise biases (the formulas in the module doc)."""
    if layer_score not in LAYER_SCORE_MODES:
        raise ValueError(f"layer_score must be one of {LAYER_SCORE_MODES}, got {layer_score!r}.")
    counts = [int(c) for c in m.n.tolist()]
    for f, name in enumerate(FACTOR_NAMES):
        if counts[f] < 2:
            raise ValueError(
                f"need at least 2 {name} pairs (factor {f}) before compute(), got {counts[f]}; "
                "feed more pairs of that kind."
            )
    n = m.n.unsqueeze(1)  # (2, 1)
    half_gap = (m.mean_a - m.mean_b) / 2
    mu = (m.mean_a + m.mean_b) / 2  # (2, C): mu_f
    cov = m.c_ab / n - half_gap * half_gap  # mean_j (a - mu)(b - mu)
    var = (m.m2_a + m.m2_b) / (2 * n) + half_gap * half_gap  # pop. variance of {a} and {b} together

    # Pool the four groups (a and b of each factor) for the variance of the whole unit.
    total = 2 * m.n.sum()
    grand_mean = (n * (m.mean_a + m.mean_b)).sum(0) / total
    spread = n * ((m.mean_a - grand_mean) ** 2 + (m.mean_b - grand_mean) ** 2)
    var_total = (m.m2_a + m.m2_b + spread).sum(0) / total  # (C,)

    dead = var_total <= (_DEAD_ULPS * grand_mean.abs()) ** 2
    alive = ~dead
    factor_alive = alive & (var > (_DEAD_ULPS * mu.abs()) ** 2)
    unit_scores = _ratio(cov, var, factor_alive).to(torch.float32)

    if layer_score == "pooled":
        den = var_total[alive].sum()
        scores = (cov * alive).sum(1) / den if bool(alive.any()) else torch.zeros(2, dtype=torch.float64)
    else:  # "unit_mean": the per-unit correlation form of the paper's Eq. 1, averaged over live units
        n_alive = int(alive.sum())
        scores = (_ratio(cov, var, factor_alive).sum(1) / n_alive) if n_alive else torch.zeros(2, dtype=torch.float64)
    num_units = int(var_total.numel())
    layer = {"dynamic": float(scores[DYNAMIC]), "static": float(scores[STATIC]), "identical": 1.0}
    dims = layer_dims(layer, num_units)
    unit_scores, dead = unit_scores.cpu(), dead.cpu()
    return BiasResult(
        num_units=num_units,
        layer_scores=layer,
        layer_dims=dims,
        layer_percent={k: 100.0 * v / num_units for k, v in dims.items()},
        unit_scores=unit_scores,
        unit_counts=unit_counts(unit_scores, dead, threshold),
        threshold=float(threshold),
        num_pairs={"dynamic": counts[DYNAMIC], "static": counts[STATIC]},
        num_dead_units=int(dead.sum()),
        dead_units=dead,
        layer_score_mode=layer_score,
    )


def static_dynamic_bias(
    z1: Tensor,
    z2: Tensor,
    factor: Tensor | int,
    threshold: float = 0.5,
    layer_score: str = "pooled",
) -> BiasResult:
    """Static/dynamic bias of one layer from all its pairs at once.

    Args:
        z1, z2: (B, C) pooled features of the two videos of each pair.
        factor: (B,) int64, 0 = dynamic pair (same dynamics, different static content),
            1 = static pair (same static content, different dynamics); or one int for the whole batch.
        threshold: λ of the unit-wise classification.
        layer_score: ``"pooled"`` (sum of covariances over sum of variances, as the paper's figures)
            or ``"unit_mean"`` (mean of the per-unit correlations, as the paper's Eq. 1 reads).

    Example:
        >>> import torch
        >>> from lit_stbias.metrics.functional import static_dynamic_bias
        >>> g = torch.Generator().manual_seed(0)
        >>> content = torch.randn(64, 8, generator=g)
        >>> z1 = torch.cat([content, content])
        >>> z2 = torch.cat([content, torch.randn(64, 8, generator=g)])  # dynamic pairs share, static don't
        >>> factor = torch.cat([torch.zeros(64), torch.ones(64)]).long()
        >>> result = static_dynamic_bias(z1, z2, factor)
        >>> result.unit_counts["dynamic"]
        8
    """
    factor = check_pairs(z1, z2, factor)
    return bias_from_moments(batch_moments(z1, z2, factor), threshold=threshold, layer_score=layer_score)


def layer_dims(layer_scores: dict[str, float], num_units: int) -> dict[str, int]:
    """Softmax over (dynamic, static, identical) scores, turned into whole units: floor for the first two."""
    p = torch.softmax(
        torch.tensor([layer_scores["dynamic"], layer_scores["static"], layer_scores["identical"]], dtype=torch.float64),
        dim=0,
    )
    dynamic, static = int(torch.floor(p[0] * num_units)), int(torch.floor(p[1] * num_units))
    return {"dynamic": dynamic, "static": static, "identical": num_units - dynamic - static}
