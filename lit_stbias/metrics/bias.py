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
from lit_stbias.metrics.result import SCALAR_NAMES, BiasResult

_STATES = PairMoments._fields


def _merge_ranks(states: PairMoments) -> PairMoments:
    """Moments of every rank together: states are (C,)-shaped per factor, or stacked (world_size, ...) after a sync."""
    if states.n.ndim == 1:
        return states
    merged = PairMoments(*(s[0] for s in states))
    for rank in range(1, states.n.shape[0]):  # in rank order, so every rank computes the same numbers
        merged = merge_moments(merged, PairMoments(*(s[rank] for s in states)))
    return merged


class StaticDynamicBias(Metric):
    """Static vs. dynamic information of one layer, accumulated exactly over any number of pairs.

    State is O(C): per factor, the count, both means, both centred second moments and the centred
    co-moment, in float64. Batches (``update``, ``forward``) and processes (DDP) are merged with Chan's
    parallel update, so any split gives the single-pass answer. See :mod:`lit_stbias.metrics.functional`.

    * ``compute()`` returns a flat dict of 0-d float64 tensors (names in
      :data:`lit_stbias.metrics.SCALAR_NAMES`), ready for ``self.log_dict``; it needs at least 2
      pairs of each factor and raises ``ValueError`` otherwise.
    * ``compute_result()`` returns the whole :class:`BiasResult` (unit scores, λ sweeps, JSON), synced the same way.
    * ``forward`` (``metric(z1, z2, factor)``) adds the batch to the state and returns the batch's own dict;
      a batch with fewer than 2 pairs of a factor gives NaN for every key instead of an error, so a
      training step never fails on a batch that happens to hold one kind of pair.

    Args:
        num_units: channels C of the layer.
        threshold: λ for the unit-wise classification (static, dynamic, joint, residual).
        layer_score: ``"pooled"`` (default, as the paper's figures) or ``"unit_mean"`` (Eq. 1 as written).
        kwargs: torchmetrics' Metric options (``sync_on_compute``, ``process_group``, ...).

    Example:
        >>> import torch
        >>> from lit_stbias.metrics import StaticDynamicBias
        >>> metric = StaticDynamicBias(num_units=4)
        >>> g = torch.Generator().manual_seed(0)
        >>> for _ in range(3):
        ...     x = torch.randn(16, 4, generator=g)
        ...     metric.update(x, x + 0.1 * torch.randn(16, 4, generator=g), factor=0)  # dynamic pairs
        ...     metric.update(x, torch.randn(16, 4, generator=g), factor=1)            # static pairs
        >>> metric.compute()["units_dynamic"]
        tensor(4., dtype=torch.float64)
        >>> metric.compute_result().unit_counts
        {'dynamic': 4, 'static': 0, 'joint': 0, 'residual': 0}
        >>> x = torch.randn(8, 4, generator=g)
        >>> batch = metric(x, x + 0.1 * torch.randn(8, 4, generator=g), factor=0)  # forward: dynamic pairs only
        >>> batch["score_dynamic"]  # one factor in this batch: no batch value, and no error
        tensor(nan, dtype=torch.float64)
        >>> metric.num_pairs  # the batch still counts
        {'dynamic': 56, 'static': 48}
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
        self._batch_value = False  # True while forward() computes the value of its own batch
        # dist_reduce_fx=None: torchmetrics gathers and stacks the ranks' states; _merge_ranks merges them.
        for name, value in zip(_STATES, empty_moments(num_units)):
            self.add_state(name, default=value, dist_reduce_fx=None)

    def _moments(self) -> PairMoments:
        return _merge_ranks(PairMoments(*(getattr(self, name) for name in _STATES)))

    def _store(self, moments: PairMoments) -> None:
        for name, value in zip(_STATES, moments):
            setattr(self, name, value)

    def update(self, z1: Tensor, z2: Tensor, factor: Tensor | int) -> None:
        """Add a batch of pairs: ``z1``, ``z2`` (B, C) pooled features, ``factor`` (B,) 0 = dynamic, 1 = static."""
        factor = check_pairs(z1, z2, factor, self.num_units)
        device = self.n.device
        # float64 all the way, even when called inside an autocast region (mixed-precision training);
        # detached, as the metric is not differentiable and must not keep a training step's graph alive.
        with torch.autocast(device.type, enabled=False):
            batch = batch_moments(z1.detach().to(device), z2.detach().to(device), factor.to(device))
            self._store(merge_moments(self._moments(), batch))

    def forward(self, z1: Tensor, z2: Tensor, factor: Tensor | int) -> dict[str, Tensor]:
        """Add the batch to the state and return the batch's own values (NaN where it has < 2 pairs of a factor)."""
        # Check first: torchmetrics resets the state to compute the batch value, and a bad batch found
        # inside that window would lose everything accumulated so far.
        check_pairs(z1, z2, factor, self.num_units)
        self._batch_value = True
        try:
            return super().forward(z1, z2, factor)
        finally:
            self._batch_value = False

    def _reduce_states(self, incoming_state: dict[str, Any]) -> None:
        """Fold in ``incoming_state`` exactly: forward's running total, or the other metric of ``merge_state``."""
        missing = [name for name in _STATES if name not in incoming_state]
        if missing:
            raise ValueError(f"a StaticDynamicBias state needs {_STATES}; missing {missing}.")
        earlier = _merge_ranks(PairMoments(*(incoming_state[name] for name in _STATES)))
        with torch.autocast(self.n.device.type, enabled=False):
            self._store(merge_moments(earlier, self._moments()))

    def _result(self) -> BiasResult:
        return bias_from_moments(self._moments(), threshold=self.threshold, layer_score=self.layer_score)

    def compute(self) -> dict[str, Tensor]:
        """The flat scalars of :meth:`BiasResult.scalars` as 0-d float64 tensors on the metric's device."""
        if self._batch_value and int(self._moments().n.min()) < 2:
            values = dict.fromkeys(SCALAR_NAMES, float("nan"))
        else:
            values = self._result().scalars()
        return {name: torch.tensor(v, dtype=torch.float64, device=self.n.device) for name, v in values.items()}

    def compute_result(self) -> BiasResult:
        """The full :class:`BiasResult` of every pair seen, synced across processes exactly like ``compute()``."""
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=self._should_unsync
        ):
            return self._result()

    def plot(self, val: Any = None, ax: Any = None) -> tuple[Any, Any]:
        """Layer-wise stacked bar of static / dynamic / identical percent; returns ``(fig, ax)``.

        ``val``: None (this metric's result), one ``BiasResult`` or ``compute()`` dict, a sequence of them (one
        bar each: layers or epochs), or a mapping name -> result (one labelled bar each, e.g.
        ``BiasProbe.compute()``). ``ax``: draw on these axes instead of a new figure.
        """
        from lit_stbias.metrics.plot import plot_layer_percent

        return plot_layer_percent(self.compute_result() if val is None else val, ax=ax)

    @property
    def num_pairs(self) -> dict[str, int]:
        n = self._moments().n
        return {"dynamic": int(n[0]), "static": int(n[1])}
