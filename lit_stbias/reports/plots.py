"""The figures of a bias document: layer-wise stacked bars, unit classes, the λ sweep, two-stream panels
and the unit-score scatter. Each ``plot_*`` function writes one PNG and returns its path.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lit_stbias.reports.doc import (
    LAYER_CLASSES,
    UNIT_CLASSES,
    as_json,
    get_layer,
    interval_method,
    is_two_stream,
    seed_note,
    stat,
    stream_groups,
    tap_order,
    threshold_sweep,
)
from lit_stbias.reports.style import COLORS, legend_outside, new_figure, save_figure, tick_labels

PathLike = str | os.PathLike


def _run_title(doc: dict) -> str:
    return f"{doc.get('model', '?')} on {doc.get('data', '?')} ({seed_note(doc)})"


def stacked_percent_bars(ax, labels: Sequence[str], layers: Sequence[dict], annotate: bool = True) -> None:
    """One bar per layer: static, dynamic and identical percentages stacked to 100.

    The ci95 error bar of static and dynamic sits on the top edge of its own segment; identical is the
    remainder up to 100 %, so it has none.
    """
    x = np.arange(len(layers))
    bottom = np.zeros(len(layers))
    for cls in LAYER_CLASSES:
        values, errors = zip(*(stat(layer, "layer_percent", cls) for layer in layers))
        values = np.array(values)
        ax.bar(x, values, 0.7, bottom=bottom, color=COLORS[cls], label=cls, edgecolor="white", linewidth=0.6)
        has_ci = np.array([e is not None for e in errors])
        if cls != "identical" and has_ci.any():  # runs without seeds (compare mixes them) get no bar at all
            ax.errorbar(x[has_ci], (bottom + values)[has_ci], yerr=[e for e in errors if e is not None],
                        fmt="none", ecolor="black", elinewidth=1, capsize=3)
        if annotate and len(layers) <= 12:
            for xi, b, v in zip(x, bottom, values):
                if v >= 8:
                    ax.text(xi, b + v / 2, f"{v:.0f}", ha="center", va="center", fontsize=8, color="white")
        bottom += values
    tick_labels(ax, list(labels))
    ax.set_ylim(0, 100)
    ax.set_xlim(-0.6, len(layers) - 0.4)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def plot_layer_percent(doc, path: PathLike) -> Path:
    """Layer-wise static / dynamic / identical share of dimensions per tap, in network order."""
    doc = as_json(doc)
    taps = tap_order(doc)
    fig, ax = new_figure(max(5.5, 0.55 * len(taps) + 2.5), 4.2)
    stacked_percent_bars(ax, taps, [doc["layers"][t] for t in taps])
    ax.set_ylabel("% of dimensions")
    fig.suptitle(f"Layer-wise static / dynamic dimensions\n{_run_title(doc)}", fontsize=10)
    legend_outside(fig, ax)
    return save_figure(fig, path)


def plot_unit_counts(doc, layer: str | None, path: PathLike) -> Path:
    """Units of one tap (the last by default) classified static, dynamic, joint or residual at λ."""
    doc = as_json(doc)
    tap, data = get_layer(doc, layer)
    counts, errors = zip(*(stat(data, "unit_counts", c) for c in UNIT_CLASSES))
    errors = None if errors[0] is None else np.array(errors)
    fig, ax = new_figure(5.5, 4.0)
    x = np.arange(len(UNIT_CLASSES))
    ax.bar(x, counts, 0.65, color=[COLORS[c] for c in UNIT_CLASSES], yerr=errors,
           error_kw={"elinewidth": 1, "capsize": 4})
    tops = np.array(counts) + (0 if errors is None else errors)
    top = max(tops.max(), 1)
    for xi, n, y in zip(x, counts, tops):
        count = f"{n:.0f}" if errors is None and float(n).is_integer() else f"{n:.1f}"
        ax.text(xi, y + 0.02 * top, f"{count}\n{100 * n / data['num_units']:.1f}%", ha="center", va="bottom",
                fontsize=9)
    ax.set_xticks(x, UNIT_CLASSES)
    ax.set_ylim(0, top * 1.3)
    ax.set_ylabel("units")
    fig.suptitle(f"Unit classes at {tap} (λ = {doc.get('threshold', 0.5):g}, {data['num_units']} units)\n"
                 f"{_run_title(doc)}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return save_figure(fig, path)


def plot_threshold_sweep(doc, layer: str | None, path: PathLike) -> Path:
    """How many units fall in each class as λ varies, with the run's chosen λ marked.

    Shaded bands are the ci95 across seeds when the document has several.
    """
    doc = as_json(doc)
    tap, data = get_layer(doc, layer)
    lambdas, mean, ci = threshold_sweep(data, interval_method(doc))
    fig, ax = new_figure(5.8, 4.0)
    for cls in UNIT_CLASSES:
        ax.plot(lambdas, mean[cls], "o-", ms=3.5, color=COLORS[cls], label=cls,
                lw=2 if cls in ("static", "dynamic") else 1.5)
        if ci is not None:
            ax.fill_between(lambdas, mean[cls] - ci[cls], mean[cls] + ci[cls], color=COLORS[cls], alpha=0.2, lw=0)
    chosen = doc.get("threshold")
    if chosen is not None:
        ax.axvline(chosen, color="black", ls="--", lw=1, label=f"chosen λ = {chosen:g}")
    ax.set_xlabel("threshold λ")
    ax.set_ylabel("units")
    ax.set_ylim(0, data["num_units"] * 1.02)
    fig.suptitle(f"Unit classes against λ at {tap} ({data['num_units']} units)\n{_run_title(doc)}", fontsize=10)
    ax.grid(alpha=0.3)
    legend_outside(fig, ax, reverse=False)
    return save_figure(fig, path)


def plot_two_stream(doc, path: PathLike) -> Path:
    """Appearance, motion and fusion taps of a two-stream model side by side, one panel each.

    Raises ``ValueError`` when the document has no ``app.*``/``mot.*`` taps.
    """
    doc = as_json(doc)
    if not is_two_stream(doc):
        raise ValueError("not a two-stream document: it needs both 'app.*' and 'mot.*' taps, and has "
                         + ", ".join(tap_order(doc)))
    groups = stream_groups(doc)
    widths = [len(taps) for taps in groups.values()]
    fig, axes = new_figure(max(7.0, 0.6 * sum(widths) + 3.5), 4.2, ncols=len(groups), sharey=True,
                           gridspec_kw={"width_ratios": widths})
    for ax, (name, taps) in zip(np.atleast_1d(axes), groups.items()):
        stacked_percent_bars(ax, [t.split(".", 1)[1] for t in taps], [doc["layers"][t] for t in taps])
        ax.set_title(name)
    np.atleast_1d(axes)[0].set_ylabel("% of dimensions")
    fig.suptitle(f"Two-stream static / dynamic dimensions\n{_run_title(doc)}", fontsize=10)
    legend_outside(fig, np.atleast_1d(axes)[0])
    return save_figure(fig, path)


def _read_units_csv(path: PathLike, layer: str | None, seed: int | None) -> dict[str, list]:
    """Columns of one layer and one seed of a unit-score CSV.

    Takes ``dynamic``/``static`` or ``dynamic_score``/``static_score`` columns; when the file holds several
    layers (a ``layer`` column) or seeds (a ``seed`` column), keeps ``layer`` (default: the last in the file)
    and ``seed`` (default: the first).
    """
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    names = next(((d, s) for d, s in (("dynamic", "static"), ("dynamic_score", "static_score"))
                  if rows and {d, s} <= set(rows[0])), None)
    if names is None:
        raise ValueError(f"{path}: a unit-score CSV needs 'dynamic' and 'static' (or 'dynamic_score' and "
                         "'static_score') columns")
    for column, wanted in (("layer", layer), ("seed", seed)):
        if column in rows[0]:
            values = list(dict.fromkeys(row[column] for row in rows))
            pick = str(wanted) if wanted is not None else values[-1 if column == "layer" else 0]
            if pick not in values:
                raise ValueError(f"{path}: no {column} {pick!r}; it has {', '.join(values)}")
            rows = [row for row in rows if row[column] == pick]
    return {"dynamic": [row[names[0]] for row in rows], "static": [row[names[1]] for row in rows],
            "dead": [row.get("dead", "0").strip().lower() in ("1", "true") for row in rows]}


def _read_unit_scores(source: Any, layer: str | None = None,
                      seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dynamic, static, dead) per unit from a CSV path, a mapping or a (2, C) array."""
    if isinstance(source, (str, os.PathLike)):
        source = _read_units_csv(source, layer, seed)
    if isinstance(source, Mapping):
        source = source.get("unit_scores", source)
        dynamic, static, dead = source["dynamic"], source["static"], source.get("dead")
    else:
        (dynamic, static), dead = np.asarray(source, dtype=float), None
    dynamic, static = np.asarray(dynamic, dtype=float), np.asarray(static, dtype=float)
    if dynamic.shape != static.shape or dynamic.ndim != 1:
        raise ValueError(f"unit scores must be two equal-length vectors, got {dynamic.shape} and {static.shape}")
    dead = np.zeros(dynamic.shape, bool) if dead is None else np.asarray(dead, dtype=bool)
    return dynamic, static, dead


def plot_unit_scores(source: Any, path: PathLike, threshold: float = 0.5, title: str | None = None,
                     layer: str | None = None, seed: int | None = None) -> Path:
    """Every live unit's dynamic against static score, coloured by its class at ``threshold``.

    ``source`` is a CSV (``units.csv`` as analyze.py writes it, with ``layer``/``seed`` columns picked by
    ``layer`` and ``seed``, or any CSV with ``dynamic``/``static`` and optional ``dead`` columns), a mapping
    with those keys (``BiasResult.to_dict(include_units=True)["unit_scores"]`` or the layer dict holding it),
    or a (2, C) array with the dynamic row first, as ``BiasResult.unit_scores``. Dead units (no variance, so
    no score) are counted as residual, as the metric counts them, and not drawn; the legend and title say so.
    """
    dynamic, static, dead = _read_unit_scores(source, layer, seed)
    live_dynamic, live_static = dynamic[~dead], static[~dead]
    is_dyn, is_stat = live_dynamic > threshold, live_static > threshold
    classes = {"static": is_stat & ~is_dyn, "dynamic": is_dyn & ~is_stat, "joint": is_dyn & is_stat,
               "residual": ~is_dyn & ~is_stat}
    num_dead = int(dead.sum())
    # No fixed aspect ratio: with one, constrained layout pushed the y label off the canvas. The size keeps the
    # axes about square beside the legend.
    fig, ax = new_figure(6.6, 4.8)
    for cls in UNIT_CLASSES:
        mask = classes[cls]
        count = int(mask.sum()) + (num_dead if cls == "residual" else 0)
        note = f", {num_dead} dead" if cls == "residual" and num_dead else ""
        ax.scatter(live_dynamic[mask], live_static[mask], s=14, color=COLORS[cls], edgecolor="white", lw=0.3,
                   label=f"{cls} ({count}{note})")
    ax.axvline(threshold, color="black", ls="--", lw=1)
    ax.axhline(threshold, color="black", ls="--", lw=1)
    low = min(-0.1, float(np.min(live_dynamic, initial=0)), float(np.min(live_static, initial=0))) - 0.02
    ax.set_xlim(low, 1.02)
    ax.set_ylim(low, 1.02)
    ax.set_xlabel("dynamic score")
    ax.set_ylabel("static score")
    heading = title or f"Unit scores (λ = {threshold:g})"
    if num_dead:
        heading += f"\n{num_dead} dead unit{'s' if num_dead > 1 else ''} (no variance): counted residual, not drawn"
    fig.suptitle(heading, fontsize=10)
    legend_outside(fig, ax, reverse=False)
    return save_figure(fig, path)
