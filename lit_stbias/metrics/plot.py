"""The layer-wise stacked bar of static / dynamic / identical percent, drawn by ``StaticDynamicBias.plot``."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lit_stbias.metrics.result import LAYER_CLASSES, BiasResult

STACK_ORDER = ("static", "dynamic", "identical")  # bottom to top, as the report figures stack them
PlotValue = Any  # BiasResult | Mapping[str, float | Tensor] | Sequence[...] | Mapping[str, BiasResult | Mapping]


def _is_one(value: Any) -> bool:
    return isinstance(value, BiasResult) or (
        isinstance(value, Mapping) and all(f"{c}_percent" in value for c in LAYER_CLASSES)
    )


def layer_percent(value: Any) -> dict[str, float]:
    """Static / dynamic / identical percent of one result: a ``BiasResult`` or a ``compute()`` dict."""
    if isinstance(value, BiasResult):
        return {c: float(value.layer_percent[c]) for c in LAYER_CLASSES}
    if _is_one(value):
        return {c: float(value[f"{c}_percent"]) for c in LAYER_CLASSES}
    raise ValueError(
        "plot() takes a BiasResult, a dict from compute() (with the *_percent keys), or a list or a "
        f"name -> result dict of those; got {type(value).__name__}."
    )


def bars(val: PlotValue) -> tuple[list[str], list[dict[str, float]]]:
    """Tick labels and percents, one bar per result: names of a mapping, positions of a sequence, none for one."""
    if _is_one(val):
        return [""], [layer_percent(val)]
    if isinstance(val, Mapping) and val:
        return [str(k) for k in val], [layer_percent(v) for v in val.values()]
    if isinstance(val, Sequence) and not isinstance(val, str) and len(val) > 0:
        return [str(i) for i in range(len(val))], [layer_percent(v) for v in val]
    return [], [layer_percent(val)]  # raises the one-line error


def plot_layer_percent(val: PlotValue, ax: Any = None) -> tuple[Any, Any]:
    """Draw one stacked bar per result on ``ax`` (a new Agg figure when None); returns ``(fig, ax)``."""
    from lit_stbias.reports.style import COLORS, new_figure, tick_labels  # matplotlib only when plotting

    labels, percents = bars(val)
    if ax is None:
        fig, ax = new_figure(max(4.5, 0.55 * len(labels) + 2.5), 3.6)
    else:
        fig = ax.get_figure()
    x = list(range(len(labels)))
    bottom = [0.0] * len(labels)
    for cls in STACK_ORDER:
        heights = [p[cls] for p in percents]
        ax.bar(x, heights, 0.7, bottom=bottom, color=COLORS[cls], label=cls, edgecolor="white", linewidth=0.6)
        bottom = [b + h for b, h in zip(bottom, heights)]
    tick_labels(ax, labels)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of dimensions")
    ax.set_title("Static / dynamic bias")
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig, ax
