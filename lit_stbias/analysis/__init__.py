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
from lit_stbias.analysis.clips import ClipSettings
from lit_stbias.analysis.document import (
    BIAS_FILE,
    DEFAULT_THRESHOLDS,
    SCHEMA,
    SUMMARY_KEYS,
    BiasDocument,
    check_finite,
    provenance,
)
from lit_stbias.analysis.intervals import INTERVAL_METHODS, half_width
from lit_stbias.analysis.loading import LoadedModel, load_model
from lit_stbias.analysis.outputs import OUTPUT_FILES, check_output_folder, write_outputs
from lit_stbias.analysis.session import Measurement, ProbeSession, choose_items, make_pairs

__all__ = [
    "BIAS_FILE",
    "DEFAULT_THRESHOLDS",
    "INTERVAL_METHODS",
    "OUTPUT_FILES",
    "SCHEMA",
    "SUMMARY_KEYS",
    "BiasDocument",
    "ClipSettings",
    "LoadedModel",
    "Measurement",
    "ProbeSession",
    "check_finite",
    "check_output_folder",
    "choose_items",
    "half_width",
    "load_model",
    "make_pairs",
    "provenance",
    "write_outputs",
]
