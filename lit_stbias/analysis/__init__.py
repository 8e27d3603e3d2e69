"""Measuring a model: one probing session, one results document, atomic outputs, the ``analyze.py`` CLI.

- :class:`ProbeSession` (``session.py``): (model, data, number of pairs, seed, clip settings) → pairs → probe.
  The one selection rule (:func:`choose_items`) and the one pair-kind rule (:func:`make_pairs`).
- :class:`ClipSettings` (``clips.py``): clip length, size, temporal stride, how synthetic videos are drawn.
- :class:`BiasDocument` (``document.py``): per seed and tap the results, the summary with its interval,
  provenance; JSON in and out (``bias.json``). Intervals: :func:`half_width` (``intervals.py``).
- :func:`load_model` (``loading.py``): zoo models, user models, checkpoints (read safely).
- :func:`write_outputs` (``outputs.py``): ``bias.json``, ``units.csv``, plots and ``report.html``, swapped
  into ``--out`` as a whole.
- ``cli.py``: ``analyze.py`` (``lit_stbias.analysis.cli:main``).

See docs/analysis.md.
"""
from __future__ import annotations

import importlib
from typing import Any

# Names are imported from their modules on first use (PEP 562), so the light parts (the document, the intervals)
# can be used by reports without importing torchmetrics, the models and the data sources.
_EXPORTS = {
    "ClipSettings": "clips",
    **dict.fromkeys(["BIAS_FILE", "DEFAULT_THRESHOLDS", "SCHEMA", "SUMMARY_KEYS", "BiasDocument", "check_finite",
                     "provenance"], "document"),
    **dict.fromkeys(["INTERVAL_METHODS", "half_width"], "intervals"),
    **dict.fromkeys(["LoadedModel", "load_model"], "loading"),
    **dict.fromkeys(["OUTPUT_FILES", "check_output_folder", "write_outputs"], "outputs"),
    **dict.fromkeys(["Measurement", "ProbeSession", "choose_items", "make_pairs"], "session"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lit_stbias.analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lit_stbias.analysis.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
