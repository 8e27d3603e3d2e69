"""Reports: plots, tables, the HTML page and the comparison, from bias documents built by hand."""
import base64
import copy
import csv
import json
import math
import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from lit_stbias.reports import (
    COLORS,
    UNIFORM_SPREAD,
    center_bias_stats,
    compare,
    load_doc,
    plot_center_bias,
    plot_layer_percent,
    plot_threshold_sweep,
    plot_two_stream,
    plot_unit_counts,
    plot_unit_scores,
    summary_table,
    write_report,
)

THRESHOLDS = [round(0.1 * k, 1) for k in range(1, 10)]
PLAIN_TAPS = [f"stage{k}" for k in range(1, 6)]
TWO_STREAM_TAPS = ([f"app.stage{k}" for k in range(1, 6)] + [f"mot.stage{k}" for k in range(1, 6)]
                   + ["fusion.stage2", "fusion.stage5"])
LAYER = ("dynamic", "static", "identical")
UNITS = ("static", "dynamic", "joint", "residual")


def _counts(scores, lam):
    dyn, stat = scores[0] > lam, scores[1] > lam
    return {"dynamic": int((dyn & ~stat).sum()), "static": int((stat & ~dyn).sum()),
            "joint": int((dyn & stat).sum()), "residual": int((~dyn & ~stat).sum())}


def _seed_result(rng, num_units, threshold):
    """One seed's layer, consistent with the estimator: softmax dims, unit classes from unit scores."""
    scores = {"dynamic": rng.uniform(0.05, 0.6), "static": rng.uniform(0.1, 0.8), "identical": 1.0}
    p = np.exp([scores[k] for k in LAYER])
    p /= p.sum()
    dims = {"dynamic": int(p[0] * num_units), "static": int(p[1] * num_units)}
    dims["identical"] = num_units - dims["dynamic"] - dims["static"]
    unit_scores = rng.uniform(-0.2, 1.0, size=(2, num_units))
    return {
        "num_units": num_units, "layer_scores": scores, "layer_dims": dims,
        "layer_percent": {k: 100.0 * v / num_units for k, v in dims.items()},
        "unit_counts": _counts(unit_scores, threshold), "num_dead_units": 0,
        "threshold_sweep": {str(t): _counts(unit_scores, t) for t in THRESHOLDS},
    }, unit_scores


def make_doc(taps=PLAIN_TAPS, seeds=1, model="slow", with_units=False, seed=0):
    """A bias document shaped like analyze.py's: first seed's numbers, or means with mean/ci95 blocks."""
    rng = np.random.default_rng(seed)
    doc = {"model": model, "preset": "tiny", "checkpoint": None, "data": "synthetic:motion", "threshold": 0.5,
           "thresholds": THRESHOLDS, "seeds": list(range(seeds)), "num_pairs": {"dynamic": 64, "static": 64},
           "layer_order": list(taps), "layers": {}}
    for i, tap in enumerate(taps):
        runs = [_seed_result(rng, 32 * 2 ** (i % 5), 0.5) for _ in range(seeds)]
        per_seed = [r for r, _ in runs]
        layer = {**copy.deepcopy(per_seed[0]), "per_seed": per_seed}
        if seeds > 1:
            layer["mean"], layer["ci95"] = {}, {}
            for group in ("layer_scores", "layer_percent", "unit_counts"):
                values = {k: np.array([s[group][k] for s in per_seed], float) for k in per_seed[0][group]}
                layer["mean"][group] = {k: float(v.mean()) for k, v in values.items()}
                layer["ci95"][group] = {k: float(1.96 * v.std(ddof=1) / math.sqrt(seeds)) for k, v in values.items()}
                layer[group] = dict(layer["mean"][group])
        if with_units:
            scores = runs[0][1]
            layer["unit_scores"] = {"dynamic": scores[0].tolist(), "static": scores[1].tolist(),
                                    "dead": [False] * scores.shape[1]}
        doc["layers"][tap] = layer
    return json.loads(json.dumps(doc))  # exactly what a reader of bias.json gets


def _read_png(path):
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] >= 300 and image.shape[1] >= 400, image.shape
    assert image[..., :3].std() > 0.05  # something is drawn
    return image


def _has_colour(image, hex_colour, min_pixels=30):
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    return (np.abs(image[..., :3] - rgb).max(axis=-1) < 2 / 255).sum() >= min_pixels


def _table_rows(table):
    """{first cell: other cells} of a Markdown table (the header row included, the rule left out)."""
    lines = [line for line in table.splitlines() if line.startswith("|") and not line.startswith("|-")]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)}


@pytest.mark.parametrize("seeds", [1, 3])
def test_plots_are_valid_pngs_with_the_class_colours(tmp_path, seeds):
    doc = make_doc(seeds=seeds)
    layer_png = _read_png(plot_layer_percent(doc, tmp_path / "layer_percent.png"))
    units_png = _read_png(plot_unit_counts(doc, None, tmp_path / "unit_counts.png"))
    sweep_png = _read_png(plot_threshold_sweep(doc, "stage3", tmp_path / "sweep.png"))
    for image in (layer_png, units_png, sweep_png):
        assert _has_colour(image, COLORS["static"]) and _has_colour(image, COLORS["dynamic"])
    assert _has_colour(units_png, COLORS["joint"]) and _has_colour(layer_png, COLORS["identical"])
    assert not _has_colour(layer_png, COLORS["joint"])  # layer-wise plots have no joint class
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer_percent.png", "sweep.png", "unit_counts.png"]


def test_error_bars_drawn_only_when_ci95_present(tmp_path):
    doc = make_doc(seeds=3)
    bare = copy.deepcopy(doc)
    for layer in bare["layers"].values():
        del layer["ci95"]
    dark = lambda p: (mpimg.imread(p)[..., :3].max(axis=-1) < 0.3).sum()  # noqa: E731
    with_ci = dark(plot_layer_percent(doc, tmp_path / "ci.png"))
    without = dark(plot_layer_percent(bare, tmp_path / "bare.png"))
    assert with_ci > without + 500


def test_unknown_tap_and_missing_sweep_are_named(tmp_path):
    doc = make_doc()
    with pytest.raises(ValueError, match="stage9.*stage1"):
        plot_unit_counts(doc, "stage9", tmp_path / "u.png")
    for layer in doc["layers"].values():
        del layer["threshold_sweep"]
        for seed in layer["per_seed"]:
            del seed["threshold_sweep"]
    with pytest.raises(ValueError, match="threshold_sweep"):
        plot_threshold_sweep(doc, None, tmp_path / "s.png")
    assert not (tmp_path / "s.png").exists()


def test_threshold_keys_sort_as_numbers(tmp_path):
    doc = make_doc(seeds=1)
    layer = doc["layers"]["stage5"]
    sweep = layer["threshold_sweep"]
    layer["threshold_sweep"] = {("0.30000000000000004" if k == "0.3" else k): sweep[k] for k in reversed(sweep)}
    layer["per_seed"][0]["threshold_sweep"] = layer["threshold_sweep"]
    from lit_stbias.reports.doc import threshold_sweep
    lambdas, mean, ci = threshold_sweep(layer)
    np.testing.assert_allclose(lambdas, THRESHOLDS)
    assert ci is None and mean["static"][4] == layer["unit_counts"]["static"]  # λ = 0.5
    _read_png(plot_threshold_sweep(doc, None, tmp_path / "sweep.png"))


@pytest.mark.parametrize("seeds", [1, 3])
def test_summary_table_has_every_tap_and_its_numbers(seeds):
    doc = make_doc(taps=TWO_STREAM_TAPS, seeds=seeds, model="two_stream")
    table = summary_table(doc)
    rows = _table_rows(table)
    assert list(rows)[1:] == TWO_STREAM_TAPS  # header first, then network order
    assert "λ = 0.5" in table and ("3 seeds" in table) == (seeds == 3)
    for tap, cells in list(rows.items())[1:]:
        layer = doc["layers"][tap]
        assert cells[0] == str(layer["num_units"])
        for cell, cls in zip(cells[1:4], ("static", "dynamic", "identical")):
            expected = f"{layer['layer_percent'][cls]:.1f}"
            assert cell == (expected if seeds == 1 else f"{expected} ± {layer['ci95']['layer_percent'][cls]:.1f}")
        for cell, cls in zip(cells[4:], UNITS):
            if seeds == 1:
                assert cell == str(layer["unit_counts"][cls])
            else:
                assert cell == f"{layer['mean']['unit_counts'][cls]:.1f} ± {layer['ci95']['unit_counts'][cls]:.1f}"


def test_two_stream_plot_needs_app_and_mot_taps(tmp_path):
    with pytest.raises(ValueError, match="app.*mot"):
        plot_two_stream(make_doc(), tmp_path / "two_stream.png")
    with pytest.raises(ValueError):
        plot_two_stream(make_doc(taps=[t for t in TWO_STREAM_TAPS if not t.startswith("mot.")]), tmp_path / "x.png")
    assert not list(tmp_path.iterdir())
    image = _read_png(plot_two_stream(make_doc(taps=TWO_STREAM_TAPS, seeds=3), tmp_path / "two_stream.png"))
    assert _has_colour(image, COLORS["static"]) and _has_colour(image, COLORS["dynamic"])


@pytest.mark.parametrize("taps,seeds,with_units,expected", [
    (PLAIN_TAPS, 1, True, {"layer_percent", "unit_counts", "threshold_sweep", "unit_scores"}),
    (TWO_STREAM_TAPS, 3, False, {"layer_percent", "unit_counts", "threshold_sweep", "two_stream"}),
])
def test_report_is_one_self_contained_page(tmp_path, taps, seeds, with_units, expected):
    doc = make_doc(taps=taps, seeds=seeds, with_units=with_units)
    report = write_report(doc, tmp_path / "run")
    assert report == tmp_path / "run" / "report.html"
    assert {p.name for p in report.parent.iterdir()} == {f"{n}.png" for n in expected} | {"report.html"}
    html = report.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == len(expected)
    assert 'src="http' not in html and "<link" not in html and "<script" not in html
    embedded = html.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(embedded) == (report.parent / "layer_percent.png").read_bytes()
    for tap, cells in _table_rows(summary_table(doc)).items():
        assert f"<td>{tap}</td>" in html or tap == "tap"
        assert all(f"<td>{c}</td>" in html or f"<th>{c}</th>" in html for c in cells)
    assert "synthetic:motion" in html and "Run settings" in html
    assert f"Units of {taps[-1]}" in html


def test_report_unit_plots_follow_the_chosen_layer(tmp_path):
    html = write_report(make_doc(), tmp_path, layer="stage2").read_text(encoding="utf-8")
    assert "Units of stage2" in html and "Units of stage5" not in html


def test_compare_writes_figure_markdown_and_csv(tmp_path):
    docs = [make_doc(model="slow", seed=1), make_doc(model="x3d", seeds=3, seed=2),
            make_doc(taps=[f"block{i}" for i in range(8)], model="timesformer", seed=3)]
    labels = ["Slow", "X3D", "TimeSformer"]
    png, md, csv_path = compare(docs, labels, tmp_path / "cmp.png", tmp_path / "cmp.md")
    _read_png(png)
    rows = _table_rows(md.read_text(encoding="utf-8"))
    assert list(rows)[1:] == labels
    assert rows["TimeSformer"][2] == "block7" and rows["Slow"][2] == "stage5"
    with open(csv_path, newline="") as handle:
        records = list(csv.DictReader(handle))
    assert csv_path == tmp_path / "cmp.csv" and [r["run"] for r in records] == labels
    x3d = docs[1]["layers"]["stage5"]
    assert float(records[1]["static_pct"]) == pytest.approx(x3d["mean"]["layer_percent"]["static"])
    assert float(records[1]["static_pct_ci95"]) == pytest.approx(x3d["ci95"]["layer_percent"]["static"])
    assert records[0]["static_pct_ci95"] == "" and int(float(records[0]["joint_units"])) == \
        docs[0]["layers"]["stage5"]["unit_counts"]["joint"]


def test_compare_common_taps_and_bad_input(tmp_path):
    docs = [make_doc(seed=1), make_doc(seed=2)]
    _, md, _ = compare(docs, ["a", "b"], tmp_path / "c.png", tmp_path / "c.md", taps=["stage4", "stage5"])
    lines = [line for line in md.read_text().splitlines()[2:]]
    assert [(line.split("|")[1].strip(), line.split("|")[4].strip()) for line in lines] == \
        [("a", "stage4"), ("b", "stage4"), ("a", "stage5"), ("b", "stage5")]
    with pytest.raises(ValueError, match="one label per run"):
        compare(docs, ["a"], tmp_path / "d.png", tmp_path / "d.md")
    with pytest.raises(ValueError, match="'b' has no tap block3"):
        compare([make_doc(taps=["block3"]), docs[1]], ["a", "b"], tmp_path / "d.png", tmp_path / "d.md", taps="block3")


def _blob(size, sigma, centre=None):
    y, x = np.mgrid[:size, :size]
    cy, cx = centre or ((size - 1) / 2, (size - 1) / 2)
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma ** 2))


def test_center_bias_numbers(tmp_path):
    uniform = center_bias_stats(np.ones((128, 128)))
    assert UNIFORM_SPREAD == pytest.approx(0.5411, abs=1e-4)
    assert uniform["spread"] == pytest.approx(UNIFORM_SPREAD, abs=0.005)
    assert uniform["spread_vs_uniform"] == pytest.approx(1.0)
    assert uniform["centre_mass"] == pytest.approx(0.5, abs=0.02)
    assert uniform["centroid"] == pytest.approx((63.5, 63.5)) and uniform["coverage"] == 1.0

    blob = plot_center_bias(0.8 * _blob(128, 12), tmp_path / "centre.png", title="centred")
    assert blob["spread"] < 0.4 * uniform["spread"] and blob["centre_mass"] > 0.95
    assert blob["centroid_offset"] == pytest.approx(0, abs=1e-9)
    _read_png(blob["path"])

    point = np.zeros((65, 65))
    point[32, 32] = 1
    assert center_bias_stats(point)["spread"] == 0.0
    corner = center_bias_stats(_blob(128, 4, centre=(20, 30)))
    assert corner["centroid"] == pytest.approx((20, 30), abs=0.01) and corner["spread"] > uniform["spread"]
    assert corner["centroid_offset"] == pytest.approx(corner["spread"], abs=0.02)


@pytest.mark.parametrize("bad,match", [(np.zeros((8, 8)), "no mass"), (-np.ones((8, 8)), "non-negative"),
                                       (np.ones((2, 8, 8)), "2-D"), (np.full((4, 4), np.nan), "finite")])
def test_center_bias_rejects_bad_masks(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        plot_center_bias(bad, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def _document(seeds=3, num_units=12, dead=0):
    """A real BiasDocument: the metric on random features, ``dead`` constant units, several seeds."""
    from lit_stbias.analysis import BiasDocument
    from lit_stbias.metrics.functional import static_dynamic_bias

    results = {}
    for seed in range(seeds):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(16, num_units, generator=g)
        noise = torch.randn(32, num_units, generator=g)
        partners = torch.cat([x + 0.5 * noise[:16], noise[16:]])
        anchors = torch.cat([x, x])
        anchors[:, :dead] = partners[:, :dead] = 1.0
        result = static_dynamic_bias(anchors, partners, torch.tensor([0] * 16 + [1] * 16))
        results[seed] = {"stage4": result, "stage5": result}
    return BiasDocument.from_results(results, model="slow", data="synthetic:motion")


def test_load_doc(tmp_path):
    with pytest.raises(FileNotFoundError, match="bias.json"):
        load_doc(tmp_path / "no_such_run")
    doc = _document(seeds=3)
    doc.write(tmp_path / "bias.json")
    assert load_doc(tmp_path).to_json() == doc.to_json() == load_doc(tmp_path / "bias.json").to_json()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "bias.json").write_text('{"model": "slow", "layers": ')
    with pytest.raises(ValueError, match="bad/bias.json is not valid JSON"):
        load_doc(tmp_path / "bad")
    (tmp_path / "bad" / "bias.json").write_text('{"model": "slow"}')
    with pytest.raises(ValueError, match="no non-empty 'layers'"):
        load_doc(tmp_path / "bad")
    (tmp_path / "bad" / "bias.json").write_text(json.dumps(make_doc()))  # the layout of earlier versions
    with pytest.raises(ValueError, match="bad/bias.json has no 'schema' field.*older analyze.py"):
        load_doc(tmp_path / "bad")
    foreign = {**doc.to_json(), "schema": "someone.else/1"}
    (tmp_path / "bad" / "bias.json").write_text(json.dumps(foreign))
    with pytest.raises(ValueError, match="schema 'someone.else/1'"):
        load_doc(tmp_path / "bad")


def test_reports_read_the_document_in_memory(tmp_path):
    """A BiasDocument and its JSON form make the same report; the unit scores come from the document, not a CSV."""
    doc = _document(seeds=3)
    in_memory = write_report(doc, tmp_path / "memory").read_text(encoding="utf-8")
    from_json = write_report(json.loads(doc.dumps()), tmp_path / "json").read_text(encoding="utf-8")
    assert in_memory == from_json and in_memory.count("data:image/png;base64,") == 4
    scatter = "unit_scores.png"
    assert (tmp_path / "memory" / scatter).read_bytes() == (tmp_path / "json" / scatter).read_bytes()
    assert summary_table(doc) == summary_table(doc.to_json())
    _, md, _ = compare([doc, doc.to_json()], ["a", "b"], tmp_path / "c.png", tmp_path / "c.md")
    rows = _table_rows(md.read_text())
    assert rows["a"] == rows["b"]
    layer = doc.to_json()["layers"]["stage5"]
    values = np.array([s["layer_percent"]["static"] for s in layer["per_seed"]])
    assert layer["ci95"]["layer_percent"]["static"] == pytest.approx(1.96 * values.std(ddof=0) / math.sqrt(3))


def test_unit_scores_count_dead_units_as_residual_and_say_so(tmp_path, monkeypatch):
    import lit_stbias.reports.plots as plots

    drawn = {}
    real = plots.save_figure

    def spy(fig, path):
        drawn["title"] = fig._suptitle.get_text()
        drawn["legend"] = [t.get_text() for t in fig.legends[0].get_texts()]
        drawn["ylabel"] = fig.axes[0].get_ylabel()
        fig.canvas.draw()
        box = fig.axes[0].yaxis.label.get_window_extent()
        drawn["inside"] = box.x0 >= 0 and box.x1 <= fig.bbox.width
        return real(fig, path)

    monkeypatch.setattr(plots, "save_figure", spy)
    doc = _document(seeds=1, num_units=12, dead=3)
    layer = doc.tap("stage5")
    assert layer["num_dead_units"] == 3
    plots.plot_unit_scores(layer["unit_scores"], tmp_path / "u.png", threshold=0.5)
    residual = next(t for t in drawn["legend"] if t.startswith("residual"))
    assert residual == f"residual ({layer['unit_counts']['residual']}, 3 dead)", "counted as the metric counts them"
    counts = [int(t.split("(")[1].split(")")[0].split(",")[0]) for t in drawn["legend"]]
    assert sum(counts) == 12, "every unit is in one class"
    assert "3 dead units" in drawn["title"] and "counted residual" in drawn["title"]
    assert drawn["ylabel"] == "static score" and drawn["inside"], "the y label is on the canvas"


def test_unit_scores_from_csv_mapping_and_array(tmp_path):
    rng = np.random.default_rng(0)
    scores = rng.uniform(-0.2, 1, size=(2, 200))
    path = tmp_path / "units.csv"
    path.write_text("unit,dynamic,static,dead\n" + "".join(
        f"{i},{d},{s},{int(i < 5)}\n" for i, (d, s) in enumerate(scores.T)))
    from_csv = plot_unit_scores(path, tmp_path / "a.png")
    from_array = plot_unit_scores(scores, tmp_path / "b.png", threshold=0.3)
    from_map = plot_unit_scores({"dynamic": scores[0], "static": scores[1]}, tmp_path / "c.png", threshold=0.3)
    for png in (from_csv, from_array):
        image = _read_png(png)
        assert all(_has_colour(image, COLORS[c], 5) for c in UNITS)
    assert from_map.read_bytes() == from_array.read_bytes()
    path.write_text("unit,score\n0,0.5\n")
    with pytest.raises(ValueError, match="'dynamic' and 'static'"):
        plot_unit_scores(path, tmp_path / "d.png")


def _write_units_csv(path, doc, seeds=2):
    """units.csv as analyze.py writes it: one row per (seed, layer, unit)."""
    rng = np.random.default_rng(1)
    scores = {(s, tap): rng.uniform(-0.2, 1, size=(2, layer["num_units"]))
              for s in range(seeds) for tap, layer in doc["layers"].items()}
    path.write_text("seed,layer,unit,dynamic_score,static_score,dead\n" + "".join(
        f"{s},{tap},{i},{d:.6f},{st:.6f},0\n" for (s, tap), sc in scores.items() for i, (d, st) in enumerate(sc.T)))
    return scores


def test_unit_scores_from_analyze_units_csv(tmp_path):
    doc = make_doc()
    path = tmp_path / "units.csv"
    scores = _write_units_csv(path, doc)
    picked = plot_unit_scores(path, tmp_path / "picked.png", layer="stage2", seed=1)
    assert picked.read_bytes() == plot_unit_scores(scores[1, "stage2"].round(6), tmp_path / "ref.png").read_bytes()
    default = plot_unit_scores(path, tmp_path / "default.png")  # last layer, first seed
    assert default.read_bytes() == plot_unit_scores(scores[0, "stage5"].round(6), tmp_path / "r.png").read_bytes()
    with pytest.raises(ValueError, match="no layer 'stage9'; it has stage1"):
        plot_unit_scores(path, tmp_path / "x.png", layer="stage9")
    report = write_report(doc, tmp_path / "run", units=path)
    assert (report.parent / "unit_scores.png").is_file()
    assert report.read_text(encoding="utf-8").count("data:image/png;base64,") == 4


def test_plots_leave_no_pyplot_figures_and_keep_the_backend(tmp_path):
    code = ("import sys, matplotlib; matplotlib.use('svg'); import lit_stbias.reports as r; "
            "sys.path.insert(0, 'tests'); from test_reports import make_doc; "
            f"[r.write_report(make_doc(), r'{tmp_path}') for _ in range(2)]; "
            "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend(); "
            "assert 'matplotlib.pyplot' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report.html").is_file() and not list(tmp_path.glob(".*.tmp"))


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = plot_layer_percent(make_doc(seed=1), tmp_path / "layer_percent.png")
    before = target.read_bytes()

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        plot_layer_percent(make_doc(seed=2), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["layer_percent.png"]
