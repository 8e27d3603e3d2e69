"""Plain-text / Markdown tables of a bias document: one row per tap, the same cells in the HTML report."""
from __future__ import annotations

from typing import Sequence

from lit_stbias.reports.doc import LAYER_CLASSES, UNIT_CLASSES, as_json, seed_note, stat, tap_order

LAYER_HEADER = ["units", "static %", "dynamic %", "identical %",
                "static units", "dynamic units", "joint units", "residual units"]


def format_stat(value: float, ci: float | None, digits: int = 1) -> str:
    """``29.7``, or ``29.7 ± 1.2`` when there is a ci."""
    text = f"{value:.{digits}f}"
    return text if ci is None else f"{text} ± {ci:.{digits}f}"


def layer_cells(layer: dict) -> list[str]:
    """Cells of one tap under :data:`LAYER_HEADER`: units, layer-wise percentages, unit counts."""
    cells = [str(layer["num_units"])]
    cells += [format_stat(*stat(layer, "layer_percent", c)) for c in LAYER_CLASSES]
    for cls in UNIT_CLASSES:
        value, ci = stat(layer, "unit_counts", cls)
        cells.append(format_stat(value, ci, 0 if ci is None and value.is_integer() else 1))  # one seed: whole units
    return cells


def summary_rows(doc) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the per-tap summary, in network order."""
    doc = as_json(doc)
    return ["tap", *LAYER_HEADER], [[tap, *layer_cells(doc["layers"][tap])] for tap in tap_order(doc)]


def caption(doc) -> str:
    """What the numbers in a summary are: the run, λ for the unit counts, and how many seeds."""
    doc = as_json(doc)
    return (f"{doc.get('model', '?')} on {doc.get('data', '?')}: % of dimensions per class, "
            f"unit counts at λ = {doc.get('threshold', 0.5):g} ({seed_note(doc)})")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1) -> str:
    """A Markdown table padded into columns, so it also reads as plain text in a terminal.

    The first ``text_columns`` columns are left-aligned names; the rest are right-aligned numbers.
    """
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells) -> str:
        return "| " + " | ".join(str(c).ljust(w) if i < text_columns else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join("-" * (w + 2) if i < text_columns else "-" * (w + 1) + ":" for i, w in enumerate(widths))
    return "\n".join([line(header), rule + "|", *(line(r) for r in rows)])


def summary_table(doc) -> str:
    """A caption line and a Markdown table with one row per tap (units, percentages, unit counts)."""
    doc = as_json(doc)
    header, rows = summary_rows(doc)
    return f"{caption(doc)}\n\n{markdown_table(header, rows)}"
