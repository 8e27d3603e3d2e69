"""``report.html``: one self-contained page per run (settings, the summary table, every applicable plot).

Plots are embedded as base64 data URIs and the style sheet is inline, so the page can be mailed, archived
or opened offline and still shows everything.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

import jinja2

from lit_stbias.reports.doc import as_json, atomic_write, get_layer, has_threshold_sweep, is_two_stream, unit_scores
from lit_stbias.reports.plots import (
    plot_layer_percent,
    plot_threshold_sweep,
    plot_two_stream,
    plot_unit_counts,
    plot_unit_scores,
)
from lit_stbias.reports.tables import caption, summary_rows

_TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Static/dynamic bias: {{ model }} on {{ data }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; }
figcaption { color: #555; font-size: 0.9em; max-width: 80ch; }
</style></head><body>
<h1>Static/dynamic bias: {{ model }} on {{ data }}</h1>
<h2>Run settings</h2>
<table>{% for key, value in settings %}<tr><th>{{ key }}</th><td>{{ value }}</td></tr>{% endfor %}</table>
<h2>Summary</h2>
<p>{{ caption }}</p>
<table><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
<h2>Plots</h2>
{% for fig in figures %}<figure><img alt="{{ fig.name }}" src="data:image/png;base64,{{ fig.data }}">
<figcaption>{{ fig.caption }}</figcaption></figure>
{% endfor %}</body></html>
""")

_CAPTIONS = {
    "layer_percent": "Share of each tap's dimensions that encode static, dynamic or shared (identical) "
                     "information, in network order.",
    "two_stream": "The same shares for the appearance and motion streams and the fused layers.",
    "unit_counts": "Units of {tap} classified at λ: static or dynamic when only that score exceeds λ, joint "
                   "when both do, residual when neither does.",
    "threshold_sweep": "Unit classes at {tap} as λ varies; the dashed line is the λ of this run.",
    "unit_scores": "Every live unit of {tap}: dynamic against static score, with the λ lines; dead units "
                   "(no variance) count as residual and are not drawn.",
}


def _settings(doc: dict) -> list[tuple[str, str]]:
    """Every top-level field except the per-tap results, lists and mappings written out readably."""
    def text(value) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k}: {text(v)}" for k, v in value.items())
        if isinstance(value, (list, tuple)):
            joint = "; " if any(isinstance(v, dict) for v in value) else ", "  # e.g. skipped files, one per entry
            return joint.join(text(v) for v in value) if value else "none"
        return "none" if value is None else str(value)

    return [(key, text(value)) for key, value in doc.items() if key not in ("layers", "layer_order")]


def write_report(doc, out_dir: str | os.PathLike, layer: str | None = None,
                 units: str | os.PathLike | None = None) -> Path:
    """Write the applicable PNGs and ``report.html`` into ``out_dir``; return the report's path.

    ``doc`` is a ``BiasDocument`` or its JSON form. ``layer`` picks the tap of the unit-wise plots (default:
    the last tap). Always written: ``layer_percent.png``, ``unit_counts.png``; when the data allow:
    ``two_stream.png`` (``app.``/``mot.`` taps), ``threshold_sweep.png`` (a λ sweep), ``unit_scores.png``
    (the first seed's unit scores, which documents keep, or else the ``units`` CSV that analyze.py writes
    beside ``bias.json``).
    """
    doc = as_json(doc)
    out = Path(out_dir)
    tap, data = get_layer(doc, layer)
    figures = {"layer_percent": plot_layer_percent(doc, out / "layer_percent.png")}
    if is_two_stream(doc):
        figures["two_stream"] = plot_two_stream(doc, out / "two_stream.png")
    figures["unit_counts"] = plot_unit_counts(doc, tap, out / "unit_counts.png")
    if has_threshold_sweep(data):
        figures["threshold_sweep"] = plot_threshold_sweep(doc, tap, out / "threshold_sweep.png")
    scores = unit_scores(data)
    if scores is not None or units is not None:
        threshold = doc.get("threshold", 0.5)
        figures["unit_scores"] = plot_unit_scores(scores if scores is not None else units, out / "unit_scores.png",
                                                  threshold, title=f"Unit scores at {tap} (λ = {threshold:g})",
                                                  layer=tap)
    header, rows = summary_rows(doc)
    html = _TEMPLATE.render(
        model=doc.get("model", "?"), data=doc.get("data", "?"), settings=_settings(doc), caption=caption(doc),
        header=header, rows=rows,
        figures=[{"name": name, "caption": _CAPTIONS[name].format(tap=tap),
                  "data": base64.b64encode(path.read_bytes()).decode("ascii")} for name, path in figures.items()],
    )
    return atomic_write(out / "report.html", html)
