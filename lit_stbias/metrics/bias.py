"""`StaticDynamicBias`: the streaming, DDP-synced torchmetrics Metric. It holds state; the maths is in `functional`."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lit_stbias.metrics.functional import (
    LAYER_SCORE_MODES,
    PairMoments,
    batch_moments,
    bias_from_moments,
    check_pairs,
    empty_moments,
    merge_moments,
)
from lit_stbias.metrics.result import BiasResult

_STATES = PairMoments._fields


class StaticDynamicBias(Metric):
    """Static vs. dynamic information of one layer, accumulated exactly over any number of pairs.

    State is O(C): per factor, the count, both means, both centred second moments and the centred
    co-moment, in float64. Processes are merged with Chan's parallel update, so a DDP run gives the
    single-process answer whatever the split. See :mod:`lit_stbias.metrics.functional` for the formulas.

    Args:
        num_units: channels C of the layer.
        threshold: λ for the unit-wise classification (static, dynamic, joint, residual).
        layer_score: ``"pooled"`` (default, as the paper's figures) or ``"unit_mean"`` (Eq. 1 as written).

    Example:
        >>> import torch
        >>> from lit_stbias.metrics import StaticDynamicBias
        >>> metric = StaticDynamicBias(num_units=4)
        >>> g = torch.Generator().manual_seed(0)
        >>> for _ in range(3):
        ...     x = torch.randn(16, 4, generator=g)
        ...     metric.update(x, x + 0.1 * torch.randn(16, 4, generator=g), factor=0)  # dynamic pairs
        ...     metric.update(x, torch.randn(16, 4, generator=g), factor=1)            # static pairs
        >>> result = metric.compute()
        >>> result.unit_counts
        {'dynamic': 4, 'static': 0, 'joint': 0, 'residual': 0}
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    def __init__(self, num_units: int, threshold: float = 0.5, layer_score: str = "pooled", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_units, int) or num_units < 1:
            raise ValueError(f"num_units must be a positive int (channels of the layer), got {num_units!r}.")
        if layer_score not in LAYER_SCORE_MODES:
            raise ValueError(f"layer_score must be one of {LAYER_SCORE_MODES}, got {layer_score!r}.")
        self.num_units = num_units
        self.threshold = float(threshold)
        self.layer_score = layer_score
        # dist_reduce_fx=None: processes' states are gathered and stacked, then merged in compute().
        for name, value in zip(_STATES, empty_moments(num_units)):
            self.add_state(name, default=value, dist_reduce_fx=None)

    def _moments(self) -> PairMoments:
        states = PairMoments(*(getattr(self, name) for name in _STATES))
        if states.n.ndim == 1:
            return states
        # After a DDP sync every state is stacked (world_size, ...): merge ranks in rank order.
        merged = PairMoments(*(s[0] for s in states))
        for rank in range(1, states.n.shape[0]):
            merged = merge_moments(merged, PairMoments(*(s[rank] for s in states)))
        return merged

    def _store(self, moments: PairMoments) -> None:
        for name, value in zip(_STATES, moments):
            setattr(self, name, value)

    def update(self, z1: Tensor, z2: Tensor, factor: Tensor | int) -> None:
        """Add a batch of pairs: ``z1``, ``z2`` (B, C) pooled features, ``factor`` (B,) 0 = dynamic, 1 = static."""
        factor = check_pairs(z1, z2, factor, self.num_units)
        device = self.n.device
        # float64 all the way, even when called inside an autocast region (mixed-precision training).
        with torch.autocast(device.type, enabled=False):
            batch = batch_moments(z1.to(device), z2.to(device), factor.to(device))
            self._store(merge_moments(self._moments(), batch))

    def compute(self) -> BiasResult:
        return bias_from_moments(self._moments(), threshold=self.threshold, layer_score=self.layer_score)

    def merge_state(self, incoming_state: dict[str, Tensor] | "StaticDynamicBias") -> None:
        """Fold another metric's pairs into this one (exact, as for DDP)."""
        if isinstance(incoming_state, StaticDynamicBias):
            other = incoming_state._moments()
        else:
            other = PairMoments(*(incoming_state[name] for name in _STATES))
        self._store(merge_moments(self._moments(), other))

    @property
    def num_pairs(self) -> dict[str, int]:
        n = self._moments().n
        return {"dynamic": int(n[0]), "static": int(n[1])}
