"""Reading bias documents and the accessors every plot and table shares.

Every report function takes a :class:`lit_stbias.analysis.BiasDocument` (in memory, as ``analyze.py``, the
monitor and the notebooks make it) or its JSON form (a dict, as in ``bias.json``); :func:`as_json` turns the
first into the second once. Per tap the JSON form holds the first seed's numbers (one seed) or the means over
seeds (several, with ``mean`` and ``ci95`` blocks beside them). The helpers here hide that difference:
:func:`stat` gives a value and its 95% interval half-width (``None`` with one seed), so no plot or table has to
count seeds.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

BIAS_FILE = "bias.json"
LAYER_CLASSES = ("static", "dynamic", "identical")
UNIT_CLASSES = ("static", "dynamic", "joint", "residual")
TWO_STREAM_GROUPS = {"app": "appearance", "mot": "motion", "fusion": "fusion"}


def as_json(doc: Any) -> dict[str, Any]:
    """The JSON form of a document: a ``BiasDocument``'s ``to_json()``, or a dict as it is."""
    to_json = getattr(doc, "to_json", None)
    return to_json() if callable(to_json) else doc


def load_doc(path: str | os.PathLike):
    """Read the ``BiasDocument`` of a run, given its output folder or the ``bias.json`` file itself.

    Raises ``FileNotFoundError`` naming the expected file when it is missing, and ``ValueError`` naming the
    file when it is not JSON, has no ``layers`` mapping, or was written by another version or tool.
    """
    from lit_stbias.analysis.document import BiasDocument

    return BiasDocument.read(path)


def interval_method(doc: Mapping[str, Any]) -> str:
    """How the document's intervals were computed (``normal`` unless it says otherwise)."""
    return (doc.get("interval") or {}).get("method", "normal")


def tap_order(doc: dict) -> list[str]:
    """Tap names in network order: ``layer_order`` first, then any tap it leaves out, as stored."""
    layers = doc["layers"]
    order = [tap for tap in doc.get("layer_order", []) if tap in layers]
    return order + [tap for tap in layers if tap not in order]


def get_layer(doc: dict, tap: str | None) -> tuple[str, dict]:
    """The named tap, or the last tap in network order (the representation a head reads) when ``None``."""
    taps = tap_order(doc)
    tap = taps[-1] if tap is None else tap
    if tap not in doc["layers"]:
        raise ValueError(f"tap {tap!r} is not in this document; it has {', '.join(taps)}")
    return tap, doc["layers"][tap]


def num_seeds(doc: dict) -> int:
    """Seeds the document aggregates (1 when it lists none)."""
    return max(len(doc.get("seeds") or ()), 1)


def stat(layer: dict, group: str, key: str) -> tuple[float, float | None]:
    """(value, ci95 half-width or None) of ``layer[group][key]``, preferring the seed mean when present."""
    value = (layer.get("mean") or {}).get(group, layer[group])[key]
    ci = (layer.get("ci95") or {}).get(group, {}).get(key)
    return float(value), (None if ci is None else float(ci))


def threshold_sweep(layer: dict, method: str = "normal"
                    ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """λ values (ascending), mean unit counts per class, and their ci95 across seeds (``None`` with one seed).

    Uses every seed's own sweep when there are several, so the band shows seed variation; otherwise the
    layer's top-level sweep. Keys are parsed as floats, so ``"0.30000000000000004"`` sorts where it should.
    ``method`` is the document's interval method (:func:`lit_stbias.analysis.intervals.half_width`).
    """
    from lit_stbias.analysis.intervals import half_width

    runs = [s["threshold_sweep"] for s in layer.get("per_seed", []) if "threshold_sweep" in s]
    if len(runs) < 2 and "threshold_sweep" in layer:
        runs = [layer["threshold_sweep"]]
    if not runs:
        raise ValueError("this tap has no threshold_sweep (run analyze.py with a list of thresholds)")
    keys = sorted(runs[0], key=float)
    counts = np.array([[[run[k][c] for c in UNIT_CLASSES] for k in keys] for run in runs], dtype=float)
    mean = {c: counts[:, :, i].mean(axis=0) for i, c in enumerate(UNIT_CLASSES)}
    ci = None
    if len(runs) > 1:
        ci = {c: half_width(counts[:, :, i], method) for i, c in enumerate(UNIT_CLASSES)}
    return np.array([float(k) for k in keys]), mean, ci


def unit_scores(layer: dict) -> dict | None:
    """The unit scores of a tap (``dynamic``, ``static``, ``dead``): the layer's own or its first seed's."""
    if "unit_scores" in layer:
        return layer["unit_scores"]
    return next((s["unit_scores"] for s in layer.get("per_seed", []) if "unit_scores" in s), None)


def has_threshold_sweep(layer: dict) -> bool:
    """Whether :func:`threshold_sweep` has anything to read for this tap."""
    return "threshold_sweep" in layer or any("threshold_sweep" in s for s in layer.get("per_seed", []))


def stream_groups(doc: dict) -> dict[str, list[str]]:
    """Two-stream taps as {"appearance": [...], "motion": [...], "fusion": [...]} in network order.

    Groups without taps are left out, so a plain model gives ``{}``.
    """
    groups: dict[str, list[str]] = {name: [] for name in TWO_STREAM_GROUPS.values()}
    for tap in tap_order(doc):
        prefix, dot, _ = tap.partition(".")
        if dot and prefix in TWO_STREAM_GROUPS:
            groups[TWO_STREAM_GROUPS[prefix]].append(tap)
    return {name: taps for name, taps in groups.items() if taps}


def is_two_stream(doc: dict) -> bool:
    """Whether the document has both appearance (``app.*``) and motion (``mot.*``) taps."""
    return {"appearance", "motion"} <= set(stream_groups(doc))


def seed_note(doc: dict) -> str:
    """How the numbers were aggregated, for titles and captions."""
    seeds = num_seeds(doc)
    return f"mean ± 95% CI over {seeds} seeds" if seeds > 1 else "1 seed"


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A crash or a full disk leaves either the old file or none, never a truncated PNG or HTML page.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
