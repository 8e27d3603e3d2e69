"""`BiasResult`: what the static/dynamic bias of one layer is, in a form that plots, logs and JSON can use."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor


@dataclass
class BiasResult:
    """Layer-wise and unit-wise static/dynamic bias of one layer.

    ``layer_scores``, ``layer_dims`` and ``layer_percent`` are keyed ``dynamic``, ``static``, ``identical``;
    ``unit_scores`` is (2, C) with row 0 the dynamic and row 1 the static score of each unit;
    ``unit_counts`` (keys ``dynamic``, ``static``, ``joint``, ``residual``) classifies every unit once at
    ``threshold``. Dead units (zero variance) are residual and reported in ``num_dead_units``.
    """

    num_units: int
    layer_scores: dict[str, float]
    layer_dims: dict[str, int]
    layer_percent: dict[str, float]
    unit_scores: Tensor
    unit_counts: dict[str, int]
    threshold: float
    num_pairs: dict[str, int]
    num_dead_units: int
    dead_units: Tensor = field(repr=False)
    layer_score_mode: str = "pooled"

    def unit_counts_at(self, thresholds: Sequence[float]) -> dict[float, dict[str, int]]:
        """Unit counts for several thresholds λ at once, from the stored unit scores (a λ sweep)."""
        from lit_stbias.metrics.functional import unit_counts_sweep

        return unit_counts_sweep(self.unit_scores, self.dead_units, thresholds)

    def to_dict(self, thresholds: Sequence[float] | None = None, include_units: bool = False) -> dict[str, Any]:
        """JSON-ready summary. ``thresholds`` adds a λ sweep; ``include_units`` adds every unit's two scores."""
        out: dict[str, Any] = {
            "num_units": self.num_units,
            "layer_scores": dict(self.layer_scores),
            "layer_dims": dict(self.layer_dims),
            "layer_percent": dict(self.layer_percent),
            "unit_counts": dict(self.unit_counts),
            "threshold": self.threshold,
            "num_pairs": dict(self.num_pairs),
            "num_dead_units": self.num_dead_units,
            "layer_score_mode": self.layer_score_mode,
        }
        if thresholds is not None:
            out["threshold_sweep"] = {str(t): c for t, c in self.unit_counts_at(thresholds).items()}
        if include_units:
            out["unit_scores"] = {
                "dynamic": self.unit_scores[0].tolist(),
                "static": self.unit_scores[1].tolist(),
                "dead": self.dead_units.tolist(),
            }
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BiasResult):
            return NotImplemented
        return self.to_dict() == other.to_dict() and torch.equal(self.unit_scores, other.unit_scores)
