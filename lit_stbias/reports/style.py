"""One colour per class everywhere, and figures that never touch pyplot.

Figures are made as ``matplotlib.figure.Figure`` with an Agg canvas, so writing a report neither switches
the process's backend (a notebook keeps its inline backend) nor registers figures in pyplot's global list,
where a long loop of plots would pile up memory.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lit_stbias.reports.doc import atomic_write

COLORS = {
    "static": "#2f6db3",     # blue: what one frame shows
    "dynamic": "#e4572e",    # orange-red: what only several frames show
    "joint": "#7b52ab",      # purple: both, the mix of the two
    "identical": "#a6a6a6",  # grey: dimensions shared by both pair kinds
    "residual": "#d0d0d0",   # light grey: units that are neither
}
DPI = 120


def new_figure(width: float, height: float, **subplots):
    """A constrained-layout Figure on an Agg canvas and its axes (``subplots`` go to ``Figure.subplots``)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(**subplots)


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Render ``fig`` to PNG, write it atomically, then clear the figure so its artists are freed at once."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=DPI)
    finally:
        fig.clear()
    return atomic_write(path, buffer.getvalue())


def tick_labels(ax, labels: list[str]) -> None:
    """Tap names as x tick labels, slanted when there are many or they are long, so none overlap."""
    longest = max((len(line) for label in labels for line in label.splitlines()), default=0)
    slant = len(labels) > 6 or longest > 9
    ax.set_xticks(range(len(labels)), labels, rotation=40 if slant else 0, ha="right" if slant else "center",
                  rotation_mode="anchor" if slant else "default")


def legend_outside(fig, ax, reverse: bool = True) -> None:
    """Legend right of the axes; ``reverse`` lists stacked segments top first, the order the eye meets them."""
    handles, labels = ax.get_legend_handles_labels()
    if reverse:
        handles, labels = handles[::-1], labels[::-1]
    fig.legend(handles, labels, loc="outside right center", frameon=False)
