"""StaticDynamicBias and its functional twin against an independent two-pass numpy implementation."""
import json
import math

import numpy as np
import pytest
import torch
from reference import correlated_pairs, reference_bias

from lit_stbias.metrics import SCALAR_NAMES, BiasResult, StaticDynamicBias, static_dynamic_bias


def _stream(z1, z2, factor, splits, **kwargs):
    metric = StaticDynamicBias(z1.shape[1], **kwargs)
    bounds = np.cumsum([0, *splits])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        metric.update(torch.from_numpy(z1[lo:hi]), torch.from_numpy(z2[lo:hi]), torch.from_numpy(factor[lo:hi]))
    return metric.compute_result()


def _assert_matches(result: BiasResult, ref, rtol=1e-9, atol=1e-9):
    assert result.layer_scores["dynamic"] == pytest.approx(ref["scores"][0], rel=rtol, abs=atol)
    assert result.layer_scores["static"] == pytest.approx(ref["scores"][1], rel=rtol, abs=atol)
    assert result.layer_scores["identical"] == 1.0
    assert result.layer_dims == ref["dims"]
    assert result.unit_counts == ref["counts"]
    assert result.num_dead_units == ref["dead"]
    np.testing.assert_allclose(result.unit_scores.double().numpy(), ref["unit"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed,n,c,splits", [
    (0, 40, 16, [80]),
    (1, 50, 7, [1, 2, 3, 94]),
    (2, 33, 64, [10, 10, 10, 36]),
    (3, 120, 3, [17] * 14 + [2]),
])
@pytest.mark.parametrize("layer_score", ["pooled", "unit_mean"])
def test_streaming_metric_and_functional_match_two_pass_reference(seed, n, c, splits, layer_score):
    rng = np.random.default_rng(seed)
    z1, z2, factor = correlated_pairs(rng, n, c)
    ref = reference_bias(z1, z2, factor, layer_score=layer_score)
    _assert_matches(_stream(z1, z2, factor, splits, layer_score=layer_score), ref)
    functional = static_dynamic_bias(torch.from_numpy(z1), torch.from_numpy(z2), torch.from_numpy(factor),
                                     layer_score=layer_score)
    _assert_matches(functional, ref)


def test_pooled_and_unit_mean_forms_differ_when_unit_variances_differ():
    rng = np.random.default_rng(5)
    z1, z2, factor = correlated_pairs(rng, 200, 8)
    z1[:, 0] *= 100  # one loud unit dominates the pooled ratio but counts once in the unit mean
    z2[:, 0] *= 100
    args = [torch.from_numpy(x) for x in (z1, z2, factor)]
    pooled, unit_mean = static_dynamic_bias(*args), static_dynamic_bias(*args, layer_score="unit_mean")
    assert abs(pooled.layer_scores["dynamic"] - unit_mean.layer_scores["dynamic"]) > 0.05


def test_numerically_sound_for_large_mean_small_spread():
    rng = np.random.default_rng(7)
    z1, z2, factor = correlated_pairs(rng, 500, 12, loc=1e4, scale=1e-3)
    ref_centered = reference_bias(z1 - 1e4, z2 - 1e4, factor)  # exact shift-invariant reference
    result = _stream(z1, z2, factor, [37] * 27 + [1])
    assert result.layer_scores["dynamic"] == pytest.approx(ref_centered["scores"][0], abs=1e-6)
    assert result.layer_scores["static"] == pytest.approx(ref_centered["scores"][1], abs=1e-6)
    np.testing.assert_allclose(result.unit_scores.double().numpy(), ref_centered["unit"], atol=1e-6)
    assert result.num_dead_units == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_accepts_half_single_and_double(dtype):
    rng = np.random.default_rng(11)
    z1, z2, factor = correlated_pairs(rng, 64, 10)
    t1, t2 = torch.from_numpy(z1).to(dtype), torch.from_numpy(z2).to(dtype)
    ref = reference_bias(t1.double().numpy(), t2.double().numpy(), factor)  # same rounded inputs
    metric = StaticDynamicBias(10)
    metric.update(t1, t2, torch.from_numpy(factor))
    _assert_matches(metric.compute_result(), ref)
    assert metric.mean_a.dtype == torch.float64


def test_dead_units_are_residual_and_counted_without_nan():
    rng = np.random.default_rng(3)
    z1, z2, factor = correlated_pairs(rng, 50, 6)
    z1[:, 2] = z2[:, 2] = 0.0
    z1[:, 4] = z2[:, 4] = 3.7  # constant, non-zero
    result = _stream(z1, z2, factor, [30, 30, 40])
    ref = reference_bias(z1, z2, factor)
    assert result.num_dead_units == 2 == ref["dead"]
    assert torch.isfinite(result.unit_scores).all()
    assert result.unit_scores[:, [2, 4]].abs().sum() == 0
    assert math.isfinite(result.layer_scores["dynamic"]) and math.isfinite(result.layer_scores["static"])
    _assert_matches(result, ref)
    sweep = result.unit_counts_at([-1.0])  # even at λ < 0, dead units never leave "residual"
    assert sweep[-1.0]["residual"] == 2


def test_every_unit_lands_in_exactly_one_class_and_sweep_matches_recompute():
    rng = np.random.default_rng(4)
    z1, z2, factor = correlated_pairs(rng, 80, 32)
    args = [torch.from_numpy(x) for x in (z1, z2, factor)]
    result = static_dynamic_bias(*args)
    thresholds = [0.0, 0.25, 0.5, 0.75, 0.9]
    sweep = result.unit_counts_at(thresholds)
    for t in thresholds:
        assert sum(sweep[t].values()) == 32
        assert sweep[t] == static_dynamic_bias(*args, threshold=t).unit_counts
        assert sweep[t] == reference_bias(z1, z2, factor, threshold=t)["counts"]
    # more units pass a lower threshold
    assert sweep[0.0]["residual"] <= sweep[0.9]["residual"]


def test_planted_unit_classes_from_synthetic_features():
    g = torch.Generator().manual_seed(0)
    n = 400
    static_content, dynamic_content = torch.randn(n, generator=g), torch.randn(n, generator=g)
    noise = lambda: 0.1 * torch.randn(n, generator=g)  # noqa: E731
    # Views: anchor A, dynamic partner D (same dynamics, new static), static partner S (same static, new dynamics).
    new_static, new_dynamic = torch.randn(n, generator=g), torch.randn(n, generator=g)

    def units(stat, dyn):  # columns: static, dynamic, joint, residual
        return torch.stack([stat + noise(), dyn + noise(), stat + dyn + noise(), torch.randn(n, generator=g)], 1)

    a = units(static_content, dynamic_content)
    d = units(new_static, dynamic_content)
    s = units(static_content, new_dynamic)
    z1, z2 = torch.cat([a, a]), torch.cat([d, s])
    factor = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    result = static_dynamic_bias(z1, z2, factor)
    scores = result.unit_scores
    assert scores[0, 1] > 0.9 and scores[1, 1] < 0.2  # dynamic unit
    assert scores[1, 0] > 0.9 and scores[0, 0] < 0.2  # static unit
    assert abs(scores[0, 2] - 0.5) < 0.1 and abs(scores[1, 2] - 0.5) < 0.1  # half of each
    assert scores[:, 3].abs().max() < 0.2  # noise


def test_to_dict_is_json_ready_and_consistent():
    rng = np.random.default_rng(8)
    z1, z2, factor = correlated_pairs(rng, 40, 9)
    result = static_dynamic_bias(*[torch.from_numpy(x) for x in (z1, z2, factor)])
    d = json.loads(json.dumps(result.to_dict(thresholds=[0.3, 0.5], include_units=True)))
    assert sum(d["layer_dims"].values()) == 9 == d["num_units"]
    assert sum(d["unit_counts"].values()) == 9
    assert sum(d["layer_percent"].values()) == pytest.approx(100.0)
    assert d["num_pairs"] == {"dynamic": 40, "static": 40}
    assert d["threshold_sweep"]["0.5"] == d["unit_counts"]
    assert len(d["unit_scores"]["dynamic"]) == 9


def test_reset_and_merge_state():
    rng = np.random.default_rng(9)
    z1, z2, factor = correlated_pairs(rng, 30, 5)
    t = [torch.from_numpy(x) for x in (z1, z2, factor)]
    left, right = StaticDynamicBias(5), StaticDynamicBias(5)
    left.update(t[0][:25], t[1][:25], t[2][:25])
    right.update(t[0][25:], t[1][25:], t[2][25:])
    left.merge_state(right)
    _assert_matches(left.compute_result(), reference_bias(z1, z2, factor))
    left.reset()
    assert left.num_pairs == {"dynamic": 0, "static": 0}


def test_works_under_inference_mode():
    rng = np.random.default_rng(10)
    z1, z2, factor = correlated_pairs(rng, 20, 4)
    metric = StaticDynamicBias(4)
    with torch.inference_mode():
        for i in range(0, 40, 8):
            batch = slice(i, i + 8)
            metric.update(torch.from_numpy(z1[batch]), torch.from_numpy(z2[batch]), torch.from_numpy(factor[batch]))
    _assert_matches(metric.compute_result(), reference_bias(z1, z2, factor))


@pytest.mark.parametrize("bad,match", [
    (lambda m, x: m.update(x, x[:, :3], torch.zeros(8).long()), "same shape"),
    (lambda m, x: m.update(x[:, :, None], x[:, :, None], torch.zeros(8).long()), r"\(B, C\)"),
    (lambda m, x: m.update(x[:, :3], x[:, :3], torch.zeros(8).long()), "expected 4 units"),
    (lambda m, x: m.update(x, x.clone().index_fill_(1, torch.tensor([2]), float("nan")), torch.zeros(8).long()),
     "non-finite"),
    (lambda m, x: m.update(x, x * float("inf"), torch.zeros(8).long()), "non-finite"),
    (lambda m, x: m.update(x, x, torch.full((8,), 2)), "0 \\(dynamic pair\\) or 1"),
    (lambda m, x: m.update(x, x, torch.zeros(5).long()), "shape \\(8,\\)"),
    (lambda m, x: m.update(x, x, torch.zeros(8)), "integer tensor"),
    (lambda m, x: m.update(x.long(), x.long(), torch.zeros(8).long()), "floating point"),
])
def test_bad_input_raises_named_value_error(bad, match):
    metric = StaticDynamicBias(4)
    x = torch.randn(8, 4)
    with pytest.raises(ValueError, match=match):
        bad(metric, x)


def test_compute_needs_two_pairs_of_each_factor():
    metric = StaticDynamicBias(3)
    x = torch.randn(5, 3)
    metric.update(x, x, torch.tensor([0, 0, 0, 0, 1]))
    with pytest.raises(ValueError, match="at least 2 static pairs"):
        metric.compute()
    with pytest.raises(ValueError, match="at least 2 static pairs"):
        metric.compute_result()
    metric.update(x[:1], x[:1], torch.tensor([1]))
    assert metric.compute_result().num_pairs == {"dynamic": 4, "static": 2}
    assert metric.compute()["units_residual"].ndim == 0


def test_constructor_validation():
    with pytest.raises(ValueError, match="num_units"):
        StaticDynamicBias(0)
    with pytest.raises(ValueError, match="layer_score"):
        StaticDynamicBias(3, layer_score="sum")


# --- the torchmetrics routes: compute() scalars, forward every step, MetricCollection, plot ---------------


def _tensors(seed, n, c):
    return [torch.from_numpy(x) for x in correlated_pairs(np.random.default_rng(seed), n, c)]


def _states(metric):
    return {name: getattr(metric, name).clone() for name in ("n", "mean_a", "mean_b", "m2_a", "m2_b", "c_ab")}


def test_compute_is_a_flat_dict_of_0d_tensors_named_by_scalars():
    z1, z2, factor = _tensors(12, 60, 7)
    metric = StaticDynamicBias(7, threshold=0.3)
    metric.update(z1, z2, factor)
    values, result = metric.compute(), metric.compute_result()
    assert tuple(values) == SCALAR_NAMES == tuple(result.scalars())
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 and v.dtype == torch.float64 for v in values.values())
    assert {k: float(v) for k, v in values.items()} == result.scalars()
    # what each flat name means, at the metric's own λ
    assert float(values["dynamic_percent"]) == result.layer_percent["dynamic"]
    assert float(values["identical_dims"]) == result.layer_dims["identical"]
    assert float(values["score_static"]) == result.layer_scores["static"]
    assert result.threshold == 0.3
    assert {c: int(values[f"units_{c}"]) for c in ("dynamic", "static", "joint", "residual")} == \
        result.unit_counts_at([0.3])[0.3] == result.unit_counts
    assert sum(float(values[f"{c}_percent"]) for c in ("dynamic", "static", "identical")) == pytest.approx(100)


@pytest.mark.parametrize("dist_sync_on_step", [False, True])  # torchmetrics' two forward paths
def test_forward_every_step_leaves_the_state_update_would_and_returns_batch_values(dist_sync_on_step):
    z1, z2, factor = _tensors(13, 40, 6)
    only_static = factor == 1
    batches = [  # mixed; one factor only; one pair of one factor; mixed again
        (z1[:20], z2[:20], factor[:20]),
        (z1[only_static][:9], z2[only_static][:9], factor[only_static][:9]),
        (z1[20:25], z2[20:25], torch.tensor([0, 1, 1, 1, 1])),
        (z1[25:], z2[25:], factor[25:]),
    ]
    by_forward, by_update = StaticDynamicBias(6, dist_sync_on_step=dist_sync_on_step), StaticDynamicBias(6)
    batch_values = []
    for batch in batches:
        batch_values.append(by_forward(*batch))
        by_update.update(*batch)
        for name, value in _states(by_update).items():
            assert torch.equal(getattr(by_forward, name), value), name
    assert by_forward.update_count == by_update.update_count == 4
    expected = sum(torch.bincount(b[2], minlength=2) for b in batches).tolist()
    assert by_forward.num_pairs == by_update.num_pairs == dict(zip(("dynamic", "static"), expected))
    assert by_forward.compute_result() == by_update.compute_result()
    floats = lambda metric: {k: float(v) for k, v in metric.compute().items()}  # noqa: E731
    assert floats(by_forward) == floats(by_update)
    # batch values: the batch alone where it holds >= 2 pairs of each factor, NaN (not an error) otherwise
    for batch, values in zip(batches, batch_values):
        counts = torch.bincount(batch[2], minlength=2)
        assert tuple(values) == SCALAR_NAMES
        if bool((counts >= 2).all()):
            assert {k: float(v) for k, v in values.items()} == static_dynamic_bias(*batch).scalars()
        else:
            assert all(bool(torch.isnan(v)) for v in values.values())
    assert [bool((torch.bincount(b[2], minlength=2) >= 2).all()) for b in batches] == [True, False, False, True]


def test_forward_on_a_bad_batch_raises_and_keeps_the_accumulated_state():
    z1, z2, factor = _tensors(14, 20, 5)
    metric = StaticDynamicBias(5)
    metric(z1, z2, factor)
    before, result = _states(metric), metric.compute_result()
    with pytest.raises(ValueError, match="non-finite"):
        metric(z1, z2.clone().fill_(float("nan")), factor)
    with pytest.raises(ValueError, match="expected 5 units"):
        metric(z1[:, :3], z2[:, :3], factor)
    assert all(torch.equal(getattr(metric, k), v) for k, v in before.items())
    assert metric.compute_result() == result


def test_forward_in_a_mixed_precision_training_step_keeps_float64_and_no_graph():
    z1, z2, factor = _tensors(15, 30, 4)
    reference = StaticDynamicBias(4)
    reference.update(z1.float(), z2.float(), factor)
    metric = StaticDynamicBias(4)
    layer = torch.nn.Linear(4, 4)
    torch.nn.init.eye_(layer.weight), torch.nn.init.zeros_(layer.bias)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
        f1, f2 = layer(z1.float()), layer(z2.float())  # requires grad, like a layer's output in training_step
    assert f1.requires_grad
    with torch.autocast("cpu", dtype=torch.bfloat16):
        values = metric(f1, f2, factor)
    assert all(getattr(metric, k).dtype == torch.float64 and not getattr(metric, k).requires_grad
               for k in _states(metric))
    assert not any(v.requires_grad for v in values.values())
    assert metric.compute_result() == reference.compute_result()


def test_metric_collection_with_prefix_logs_flat_names_per_metric():
    from torchmetrics import MetricCollection

    z1, z2, factor = _tensors(16, 50, 8)
    alone = StaticDynamicBias(8)
    alone.update(z1, z2, factor)
    single = MetricCollection({"conv": StaticDynamicBias(8)}, prefix="val/bias/")
    single(z1[:30], z2[:30], factor[:30])
    single.update(z1[30:], z2[30:], factor[30:])
    values = single.compute()
    assert list(values) == [f"val/bias/{name}" for name in SCALAR_NAMES]
    assert {k: float(v) for k, v in values.items()} == pytest.approx(
        {f"val/bias/{k}": float(v) for k, v in alone.compute().items()}, rel=1e-12)
    # two thresholds on the same features: names get the metric's key, unit counts follow each λ
    sweep = MetricCollection({"low": StaticDynamicBias(8, threshold=0.1), "high": StaticDynamicBias(8, threshold=0.9)},
                             prefix="val/bias/")
    sweep.update(z1, z2, factor)
    values = sweep.compute()
    result = alone.compute_result()
    for key, lam in (("low", 0.1), ("high", 0.9)):
        counts = result.unit_counts_at([lam])[lam]
        assert {c: int(values[f"val/bias/{key}_units_{c}"]) for c in counts} == counts
        assert float(values[f"val/bias/{key}_static_percent"]) == result.layer_percent["static"]


def _drawn(ax):
    """{class: (heights, bottoms)} of the stacked bars on ``ax``."""
    return {c.get_label(): ([p.get_height() for p in c.patches], [p.get_y() for p in c.patches])
            for c in ax.containers}


def test_plot_draws_the_stacked_percent_bar_of_each_result():
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    z1, z2, factor = _tensors(17, 40, 10)
    metric = StaticDynamicBias(10)
    metric.update(z1, z2, factor)
    result = metric.compute_result()
    other = static_dynamic_bias(z1, z1 + 0.01 * z2, factor)

    fig, ax = metric.plot()  # the metric's own state
    assert isinstance(fig, Figure) and isinstance(ax, Axes)
    drawn = _drawn(ax)
    assert list(drawn) == ["static", "dynamic", "identical"]
    p = result.layer_percent
    assert drawn["static"] == ([pytest.approx(p["static"])], [0])
    assert drawn["dynamic"] == ([pytest.approx(p["dynamic"])], [pytest.approx(p["static"])])
    assert drawn["identical"][0] == [pytest.approx(p["identical"])]
    assert drawn["identical"][1] == [pytest.approx(p["static"] + p["dynamic"])]
    assert ax.get_ylim() == (0, 100)

    fig, ax = metric.plot(metric.compute())  # a compute() dict draws the same bar
    assert _drawn(ax)["dynamic"][0] == [pytest.approx(p["dynamic"])]

    fig, ax = metric.plot({"layer1": result, "layer2": other})  # named bars, e.g. BiasProbe.compute()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer1", "layer2"]
    assert _drawn(ax)["static"][0] == [pytest.approx(result.layer_percent["static"]),
                                       pytest.approx(other.layer_percent["static"])]

    given = Figure().subplots()  # a sequence (epochs) on the caller's axes
    fig, ax = metric.plot([result.scalars(), other, metric.compute()], ax=given)
    assert ax is given and fig is given.get_figure()
    assert _drawn(ax)["identical"][0] == [pytest.approx(r.layer_percent["identical"]) for r in (result, other, result)]

    with pytest.raises(ValueError, match="plot\\(\\) takes a BiasResult"):
        metric.plot({"dynamic_percent": 1.0})


def test_no_import_circle_and_no_plotting_imports_when_loading_the_metric():
    """result.py never imports functional; no metrics module imports reports or matplotlib at load time."""
    import ast
    from pathlib import Path

    import lit_stbias.metrics as package

    def imported(tree, top_level_only):
        nodes = tree.body if top_level_only else ast.walk(tree)
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                yield node.module or ""
            elif isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)

    folder = Path(package.__file__).parent
    result_imports = set(imported(ast.parse((folder / "result.py").read_text()), top_level_only=False))
    assert not {m for m in result_imports if m.startswith("lit_stbias")}, result_imports
    for path in folder.glob("*.py"):
        for module in imported(ast.parse(path.read_text()), top_level_only=True):
            assert not module.startswith(("lit_stbias.reports", "matplotlib")), (path.name, module)
