"""Unit classes as channel sets: which channels of a tap are static, dynamic, joint or residual, and random
channel sets of the same sizes for the control of an ablation or of StaticDropout."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import torch
from torch import Tensor

from lit_stbias.metrics import BiasResult
from lit_stbias.metrics.result import DYNAMIC, STATIC, unit_class_masks

if TYPE_CHECKING:
    from lit_stbias.analysis.document import BiasDocument


def unit_classes(result: BiasResult, threshold: float | None = None) -> dict[str, Tensor]:
    """Bool masks (C,) of the units of each class at λ = ``threshold`` (default: the result's own λ).

    A unit is joint when both its dynamic and static scores exceed λ, dynamic or static when only that one
    does, residual when neither does; dead units (zero variance) are residual. The four masks partition the
    units, and their sizes are ``result.unit_counts_at([λ])``.

    >>> from lit_stbias.metrics import static_dynamic_bias
    >>> g = torch.Generator().manual_seed(0)
    >>> a, b = torch.randn(64, 6, generator=g), torch.randn(64, 6, generator=g)
    >>> b[:32, :3] = a[:32, :3]  # the 32 dynamic pairs share units 0-2
    >>> b[32:, 3:] = a[32:, 3:]  # the 32 static pairs share units 3-5
    >>> result = static_dynamic_bias(a, b, torch.tensor([0] * 32 + [1] * 32))
    >>> {c: m.nonzero().flatten().tolist() for c, m in unit_classes(result).items()}
    {'dynamic': [0, 1, 2], 'static': [3, 4, 5], 'joint': [], 'residual': []}
    """
    lam = result.threshold if threshold is None else float(threshold)
    return unit_class_masks(result.unit_scores.cpu(), result.dead_units.cpu(), lam)


def document_unit_classes(doc: "BiasDocument", tap: str, threshold: float | None = None,
                          where: str = "the bias document") -> dict[str, Tensor]:
    """Unit classes of ``tap`` from a :class:`~lit_stbias.analysis.BiasDocument` (a ``bias.json``), at λ =
    ``threshold`` (default: the document's).

    With several measurement seeds each unit's two scores are averaged over the seeds first (every seed is
    another sample of pairs of the same network), and a unit is dead only when it is dead in every seed. The
    classification itself is :func:`unit_classes`' rule. ``ValueError`` (naming ``where``) for a tap the
    document does not hold, or a document written without every unit's scores (a monitor's history entry).
    """
    if tap not in doc.taps:
        raise ValueError(f"{where} has no tap {tap!r}; it holds {', '.join(doc.taps)}.")
    runs = [doc.tap(tap, seed).get("unit_scores") for seed in doc.seeds]
    if any(not isinstance(run, Mapping) for run in runs):
        raise ValueError(f"{where} holds no unit scores for tap {tap!r} (it was written without them, e.g. a "
                         "BiasMonitor history entry); measure the model with analyze.py, whose bias.json has them.")
    scores = torch.zeros(2, len(runs[0]["dynamic"]), dtype=torch.float64)
    dead = torch.ones(scores.shape[1], dtype=torch.bool)
    try:
        for run in runs:
            scores[DYNAMIC] += torch.tensor(run["dynamic"], dtype=torch.float64)
            scores[STATIC] += torch.tensor(run["static"], dtype=torch.float64)
            dead &= torch.tensor(run["dead"], dtype=torch.bool)
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: the unit scores of tap {tap!r} are malformed ({err}).") from None
    lam = doc.threshold if threshold is None else float(threshold)
    return unit_class_masks((scores / len(runs)).float(), dead, lam)


def random_unit_sets(classes: Mapping[str, Tensor], draws: int = 1, seed: int = 0) -> dict[str, list[Tensor]]:
    """For every class, ``draws`` random channel sets (bool masks) of the class's size, each drawn uniformly
    without replacement from all the tap's channels.

    Reproducible from ``seed``; draws are made draw by draw, class by class in the mapping's order, so asking
    for more draws keeps the first ones.
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}.")
    sizes = {name: int(mask.sum()) for name, mask in classes.items()}
    lengths = {mask.numel() for mask in classes.values()}
    if len(lengths) > 1:
        raise ValueError(f"the class masks have different lengths {sorted(lengths)}; they must cover one tap.")
    num_units = lengths.pop() if lengths else 0
    generator = torch.Generator().manual_seed(int(seed))
    sets: dict[str, list[Tensor]] = {name: [] for name in classes}
    for _ in range(draws):
        for name, size in sizes.items():
            mask = torch.zeros(num_units, dtype=torch.bool)
            mask[torch.randperm(num_units, generator=generator)[:size]] = True
            sets[name].append(mask)
    return sets
