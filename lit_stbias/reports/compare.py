"""One figure and one table across several runs: architectures, datasets or checkpoints side by side."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Sequence

from lit_stbias.reports.doc import LAYER_CLASSES, UNIT_CLASSES, as_json, atomic_write, num_seeds, stat, tap_order
from lit_stbias.reports.plots import stacked_percent_bars
from lit_stbias.reports.style import legend_outside, new_figure, save_figure
from lit_stbias.reports.tables import LAYER_HEADER, layer_cells, markdown_table


def _selection(docs: Sequence[dict], labels: Sequence[str], taps: str | Sequence[str] | None):
    """(label, doc, tap) in plotting order: each run's last tap, or the given taps, grouped tap by tap."""
    if taps is None:
        return [(label, doc, tap_order(doc)[-1]) for label, doc in zip(labels, docs)]
    taps = [taps] if isinstance(taps, str) else list(taps)
    for label, doc in zip(labels, docs):
        missing = [t for t in taps if t not in doc["layers"]]
        if missing:
            raise ValueError(f"run {label!r} has no tap {', '.join(missing)}; it has {', '.join(tap_order(doc))}")
    return [(label, doc, tap) for tap in taps for label, doc in zip(labels, docs)]


def compare(docs: Sequence, labels: Sequence[str], path_png: str | os.PathLike, path_md: str | os.PathLike,
            taps: str | Sequence[str] | None = None) -> tuple[Path, Path, Path]:
    """Static / dynamic / identical percentages of several runs in one stacked-bar figure and one table.

    By default each run contributes its last tap (the representation its head reads; names may differ
    between architectures); ``taps`` names taps every run has, and then bars are grouped tap by tap. The
    Markdown table goes to ``path_md`` and the same numbers, unformatted, to a CSV beside it. ``docs`` are
    ``BiasDocument``s or their JSON form.
    Returns (png, md, csv) paths.
    """
    docs = [as_json(doc) for doc in docs]
    if not docs or len(docs) != len(labels):
        raise ValueError(f"compare needs one label per run: got {len(docs)} runs and {len(labels)} labels")
    chosen = _selection(docs, labels, taps)

    fig, ax = new_figure(max(5.5, 0.75 * len(chosen) + 2.5), 4.4)
    stacked_percent_bars(ax, [f"{label}\n{tap}" for label, _, tap in chosen],
                         [doc["layers"][tap] for _, doc, tap in chosen])
    ax.set_ylabel("% of dimensions")
    fig.suptitle("Static / dynamic dimensions across runs", fontsize=10)
    legend_outside(fig, ax)
    png = save_figure(fig, path_png)

    header = ["run", "model", "data", "tap", "λ", *LAYER_HEADER]
    rows = [[label, str(doc.get("model", "?")), str(doc.get("data", "?")), tap, f"{doc.get('threshold', 0.5):g}",
             *layer_cells(doc["layers"][tap])] for label, doc, tap in chosen]
    md = atomic_write(path_md, markdown_table(header, rows, text_columns=4) + "\n")
    csv_path = atomic_write(Path(path_md).with_suffix(".csv"), _csv_text(chosen))
    return png, md, csv_path


def _csv_text(chosen) -> str:
    """Unrounded numbers, one row per (run, tap), with a ``_ci95`` column beside each (empty with one seed)."""
    fields = ["run", "model", "data", "tap", "threshold", "seeds", "num_units"]
    fields += [f"{c}_pct{s}" for c in LAYER_CLASSES for s in ("", "_ci95")]
    fields += [f"{c}_units{s}" for c in UNIT_CLASSES for s in ("", "_ci95")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for label, doc, tap in chosen:
        layer = doc["layers"][tap]
        row = [label, doc.get("model", ""), doc.get("data", ""), tap, doc.get("threshold", ""), num_seeds(doc),
               layer["num_units"]]
        for group, classes in (("layer_percent", LAYER_CLASSES), ("unit_counts", UNIT_CLASSES)):
            for cls in classes:
                value, ci = stat(layer, group, cls)
                row += [value, "" if ci is None else ci]
        writer.writerow(row)
    return buffer.getvalue()

