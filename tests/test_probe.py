"""Taps, pooling and the BiasProbe."""
import pytest
import torch
from torch import nn

from lit_stbias.metrics import StaticDynamicBias
from lit_stbias.probe import BiasProbe, Tap, extract, pool


class TwoPath(nn.Module):
    """A toy two-pathway network: the block returns a list, like SlowFast's stages; the head sees tokens."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(3, 4, 1)
        self.paths = nn.ModuleList([nn.Conv3d(4, 6, 1), nn.Conv3d(4, 2, 1)])
        self.tokens = nn.Linear(8, 5)
        self.taps = {
            "stem": Tap("stem"),
            "slow": Tap("pathways", index=0),
            "fast": Tap("pathways", index=1),
            "both": Tap("pathways"),
            "tokens": Tap("tokens", skip_tokens=1),
        }
        self.pathways = _ListOut(self.paths)

    def forward(self, x):
        slow, fast = self.pathways(self.stem(x))
        t = torch.cat([slow, fast], 1).flatten(2).transpose(1, 2)  # (B, N, 8)
        cls = torch.zeros_like(t[:, :1])
        return self.tokens(torch.cat([cls, t], 1))


class _ListOut(nn.Module):
    def __init__(self, paths):
        super().__init__()
        self.paths = paths

    def forward(self, x):
        return [p(x) for p in self.paths]


def test_pool_rules():
    x5 = torch.randn(2, 3, 4, 5, 6)
    assert torch.allclose(pool(x5), x5.mean((2, 3, 4)))
    x4 = torch.randn(2, 3, 5, 6)
    assert torch.allclose(pool(x4), x4.mean((2, 3)))
    tokens = torch.randn(2, 7, 3)
    assert torch.allclose(pool(tokens, skip_tokens=1), tokens[:, 1:].mean(1))
    assert not torch.allclose(pool(tokens, skip_tokens=1), tokens.mean(1))
    flat = torch.randn(2, 3)
    assert pool(flat) is flat
    with pytest.raises(ValueError, match="cannot pool"):
        pool(torch.randn(2, 3, 4, 5, 6, 7))
    with pytest.raises(ValueError, match="no tokens left"):
        pool(torch.randn(2, 1, 3), skip_tokens=1)


def test_capture_declared_taps_list_outputs_and_class_token():
    model = TwoPath()
    x = torch.randn(2, 3, 2, 3, 3)
    feats = extract(model, x)
    assert set(feats) == {"stem", "slow", "fast", "both.0", "both.1", "tokens"}
    assert feats["slow"].shape == (2, 6) and feats["fast"].shape == (2, 2) and feats["tokens"].shape == (2, 5)
    assert torch.allclose(feats["slow"], feats["both.0"])
    # all tokens are pooled, the class token included, as the authors' release; "patches" leaves it out
    with torch.no_grad():
        out = model(x)
    assert torch.allclose(feats["tokens"], out.mean(1))
    assert torch.allclose(extract(model, x, pool_tokens="patches")["tokens"], out[:, 1:].mean(1))
    assert all(len(m._forward_hooks) == 0 for m in model.modules()), "hooks must be removed on exit"


def test_dotted_names_and_modules_as_taps():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Sequential(nn.Conv2d(4, 2, 1)))
    x = torch.randn(3, 3, 5, 5)
    feats = extract(model, x, taps=["0", "2.0"])
    assert feats["0"].shape == (3, 4) and feats["2.0"].shape == (3, 2)
    feats = extract(model, x, taps={"conv": model[0]})
    assert list(feats) == ["conv"]


def test_unknown_tap_and_model_without_taps_give_clear_errors():
    model = TwoPath()
    with pytest.raises(ValueError, match="unknown tap 'stage9'.*Available: stem, slow"):
        BiasProbe(model, taps=["stage9"])
    with pytest.raises(ValueError, match="declares no taps"):
        BiasProbe(nn.Conv2d(3, 3, 1))


def test_tap_firing_twice_raises():
    conv = nn.Conv2d(3, 3, 1)
    model = nn.Sequential(conv, nn.ReLU(), conv)
    with pytest.raises(RuntimeError, match="fired twice"):
        extract(model, torch.randn(1, 3, 4, 4), taps=["0"])


def test_probe_three_passes_all_taps_and_restores_mode():
    model = TwoPath().train()
    calls = []
    model.stem.register_forward_hook(lambda *a: calls.append(1))
    probe = BiasProbe(model)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        x = torch.rand(4, 3, 2, 3, 3, generator=g)
        probe.update({"anchor": x, "dynamic": x.flip(2), "static": torch.rand(4, 3, 2, 3, 3, generator=g)})
    assert len(calls) == 6, "three forward passes per batch"
    assert model.training, "the model gets its training mode back"
    results = probe.compute()
    assert set(results) == {"stem", "slow", "fast", "both.0", "both.1", "tokens"}
    for result in results.values():
        assert result.num_pairs == {"dynamic": 8, "static": 8}
        assert sum(result.unit_counts.values()) == result.num_units
    # the stem is a 1x1x1 conv pooled over time, blind to frame order: the time-flipped partner is identical
    assert results["stem"].unit_scores[0].min() > 0.999
    assert results["stem"].unit_scores[1].max() < 0.9


def test_probe_equals_metric_on_extracted_features_and_respects_valid_mask():
    model = nn.Sequential(nn.Conv3d(3, 5, 3, padding=1), nn.ReLU())
    g = torch.Generator().manual_seed(1)
    views = [{k: torch.rand(3, 3, 4, 6, 6, generator=g) for k in ("anchor", "dynamic", "static")} for _ in range(3)]
    views[2]["valid"] = torch.tensor([True, False, True])
    probe = BiasProbe(model, taps=["1"])
    with torch.inference_mode():
        for v in views:
            probe.update(v)
    metric = StaticDynamicBias(5)
    for v in views:
        keep = v.get("valid", torch.ones(3, dtype=torch.bool))
        a, d, s = (extract(model, v[k][keep], ["1"])["1"] for k in ("anchor", "dynamic", "static"))
        metric.update(torch.cat([a, a]), torch.cat([d, s]), torch.tensor([0] * len(a) + [1] * len(a)))
    assert probe.compute()["1"] == metric.compute_result()
    assert probe.compute()["1"].num_pairs == {"dynamic": 8, "static": 8}


def test_two_stream_views_are_unpacked_as_positional_inputs():
    class TwoStream(nn.Module):
        def __init__(self):
            super().__init__()
            self.app, self.mot = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
            self.taps = {"app": Tap("app"), "mot": Tap("mot")}

        def forward(self, rgb, flow):
            return self.app(rgb) + self.mot(flow)

    g = torch.Generator().manual_seed(2)
    probe = BiasProbe(TwoStream())
    for _ in range(2):
        rgb, flow = torch.rand(3, 3, 8, 8, generator=g), torch.rand(3, 3, 8, 8, generator=g)
        probe.update({"anchor": (rgb, flow), "dynamic": (rgb.flip(1), flow), "static": (rgb, flow.flip(1))})
    results = probe.compute()
    assert results["mot"].unit_scores[0].min() > 0.99  # flow unchanged in dynamic pairs
    assert results["app"].unit_scores[1].min() > 0.99  # rgb unchanged in static pairs


def test_missing_view_and_empty_probe_errors():
    probe = BiasProbe(nn.Sequential(nn.Conv2d(3, 2, 1)), taps=["0"])
    with pytest.raises(ValueError, match="missing \\['static'\\]"):
        probe.update({"anchor": torch.rand(2, 3, 4, 4), "dynamic": torch.rand(2, 3, 4, 4)})
    with pytest.raises(ValueError, match="no pairs yet"):
        probe.compute()


def test_amp_forward_keeps_metric_in_float64():
    model = nn.Sequential(nn.Conv3d(3, 4, 1), nn.ReLU())
    g = torch.Generator().manual_seed(3)
    probe, reference = BiasProbe(model, taps=["1"], amp=True), BiasProbe(model, taps=["1"])
    for _ in range(2):
        views = {k: torch.rand(4, 3, 2, 4, 4, generator=g) for k in ("anchor", "dynamic", "static")}
        probe.update(views)
        reference.update(views)
    assert probe.features(views["anchor"])["1"].dtype == torch.bfloat16
    assert probe.metrics["1"].mean_a.dtype == torch.float64
    amp, full = probe.compute()["1"], reference.compute()["1"]
    assert amp.layer_scores["dynamic"] == pytest.approx(full.layer_scores["dynamic"], abs=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a metric updated inside autocast stays exact
        metric = StaticDynamicBias(3)
        x = torch.randn(6, 3, dtype=torch.float64) * 1e-3 + 1e4
        metric.update(x, x.flip(0), torch.tensor([0, 0, 0, 1, 1, 1]))
    assert metric.mean_a.dtype == torch.float64 and metric.compute_result().num_dead_units == 0


def test_a_non_finite_tap_updates_no_metric_and_is_named():
    """Every tap or none: NaN features at one tap leave every metric as it was, and the error names the tap,
    the view and the units."""
    model = TwoPath()
    probe = BiasProbe(model, taps=["stem", "slow", "fast", "tokens"])
    g = torch.Generator().manual_seed(4)

    def views():
        x = torch.rand(4, 3, 2, 3, 3, generator=g)
        return {"anchor": x, "dynamic": x.flip(2), "static": torch.rand(4, 3, 2, 3, 3, generator=g)}

    probe.update(views())
    before = probe.compute()

    def nan_in_unit_1(_module, _inputs, out):
        return out.index_fill(1, torch.tensor([1]), float("nan"))

    poison = model.paths[1].register_forward_hook(nan_in_unit_1)
    with pytest.raises(ValueError, match=r"tap 'fast': the anchor view's features are non-finite .* units \[1\]"):
        probe.update(views())
    poison.remove()
    assert probe.compute() == before, "no metric took the batch"
    probe.update(views())  # and the probe goes on with the next good batch
    assert {m.num_pairs["dynamic"] for m in probe.metrics.values()} == {8}
