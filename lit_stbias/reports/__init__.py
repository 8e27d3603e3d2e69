"""Plots, tables and a self-contained HTML report made from ``bias.json`` (what ``analyze.py`` writes).

Every figure is drawn on a standalone Agg canvas, so using this package never changes the matplotlib
backend of the process (a notebook keeps its inline plots) and leaves no figure open in pyplot.
"""
from lit_stbias.reports.center_bias import UNIFORM_SPREAD, center_bias_stats, plot_center_bias
from lit_stbias.reports.compare import compare
from lit_stbias.reports.doc import load_doc
from lit_stbias.reports.html import write_report
from lit_stbias.reports.plots import (
                                      plot_layer_percent,
                                      plot_threshold_sweep,
                                      plot_two_stream,
                                      plot_unit_counts,
                                      plot_unit_scores,
)
from lit_stbias.reports.style import COLORS
from lit_stbias.reports.tables import summary_table

__all__ = [
    "COLORS", "UNIFORM_SPREAD", "center_bias_stats", "compare", "load_doc", "plot_center_bias",
    "plot_layer_percent", "plot_threshold_sweep", "plot_two_stream", "plot_unit_counts", "plot_unit_scores",
    "summary_table", "write_report",
]
