"""`BiasResult`: what the static/dynamic bias of one layer is, in a form that plots, logs and JSON can use.

This module also holds the rule that sorts units into classes at a threshold λ (:func:`unit_counts`),
because a result applies it again for every λ of a sweep; :mod:`lit_stbias.metrics.functional` imports it
from here when it builds a result, so the dependency runs one way only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

DYNAMIC, STATIC = 0, 1  # rows of ``unit_scores``, values of ``factor``
LAYER_CLASSES = ("dynamic", "static", "identical")
UNIT_CLASSES = ("dynamic", "static", "joint", "residual")
# The flat names of BiasResult.scalars(), which StaticDynamicBias.compute() returns as 0-d tensors.
SCALAR_NAMES = (
    *(f"{c}_percent" for c in LAYER_CLASSES),
    *(f"{c}_dims" for c in LAYER_CLASSES),
    "score_dynamic",
    "score_static",
    *(f"units_{c}" for c in UNIT_CLASSES),
)


def unit_class_masks(unit_scores: Tensor, dead_units: Tensor, threshold: float) -> dict[str, Tensor]:
    """The rule that classifies every unit once, as bool masks (C,) that partition the units: joint (both
    scores > λ), dynamic, static (only that score > λ), residual (neither). Dead units (no variance) are
    always residual."""
    alive = ~dead_units.to(torch.bool)
    dyn = (unit_scores[DYNAMIC] > threshold) & alive
    stat = (unit_scores[STATIC] > threshold) & alive
    return {"dynamic": dyn & ~stat, "static": stat & ~dyn, "joint": dyn & stat, "residual": ~dyn & ~stat}


def unit_counts(unit_scores: Tensor, dead_units: Tensor, threshold: float) -> dict[str, int]:
    """How many units :func:`unit_class_masks` puts in each class."""
    return {name: int(mask.sum()) for name, mask in unit_class_masks(unit_scores, dead_units, threshold).items()}


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
        return {float(t): unit_counts(self.unit_scores, self.dead_units, float(t)) for t in thresholds}

    def scalars(self) -> dict[str, float]:
        """The flat numbers a logger takes, named as in ``SCALAR_NAMES``; unit counts at this result's λ.

        Example:
            >>> import torch
            >>> from lit_stbias.metrics.functional import static_dynamic_bias
            >>> x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
            >>> result = static_dynamic_bias(torch.cat([x, x]), torch.cat([x, x.flip(0)]),
            ...                              torch.cat([torch.zeros(32), torch.ones(32)]).long())
            >>> scalars = result.scalars()
            >>> list(scalars)[:3]
            ['dynamic_percent', 'static_percent', 'identical_percent']
            >>> scalars["units_dynamic"], scalars["score_dynamic"]
            (4.0, 1.0)
        """
        values = (
            *(self.layer_percent[c] for c in LAYER_CLASSES),
            *(self.layer_dims[c] for c in LAYER_CLASSES),
            self.layer_scores["dynamic"],
            self.layer_scores["static"],
            *(self.unit_counts[c] for c in UNIT_CLASSES),
        )
        return {name: float(v) for name, v in zip(SCALAR_NAMES, values, strict=True)}

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
