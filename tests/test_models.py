"""The model zoo: registry, tiny forwards with taps and the probe, full configurations, checkpoints, inputs."""
from __future__ import annotations

import gc
import re

import pytest
import torch
from torch import nn

from lit_stbias.metrics import BiasResult
from lit_stbias.models import InputSpec, available, build, get_entry, load_weights, pack_pathways
from lit_stbias.probe import BiasProbe, capture, run_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

ACTION = ["c2d", "i3d", "slow", "fast", "slowfast", "x3d", "mvit", "timesformer"]
VOS = ["fusionseg", "matnet", "rtnet"]
R50_TINY = [16, 64, 128, 256, 512]
FAST_TINY = [4, 16, 32, 64, 128]
VOS_TINY = {
    **{f"{s}.stage{k}": c for s in ("app", "mot") for k, c in zip(range(1, 6), [64, 64, 128, 256, 512])},
    "fusion.stage2": 64,
    "fusion.stage5": 512,
}


def stages(channels, prefix=""):
    return {f"{prefix}stage{k}": c for k, c in enumerate(channels, start=1)}


# tap name -> channels of the tiny preset (the pooled feature width the probe sees)
TINY_TAP_CHANNELS = {
    "c2d": stages(R50_TINY),
    "i3d": stages(R50_TINY),
    "slow": stages(R50_TINY),
    "fast": stages(FAST_TINY),
    "slowfast": {**stages(R50_TINY, "slow."), **stages(FAST_TINY, "fast."), "fused": 512 + 128},
    "x3d": stages([8, 8, 16, 32, 64]),
    "mvit": {"block0": 64, "block1": 64, "block2": 128, "block3": 128},
    "timesformer": {f"block{i}": 64 for i in range(4)},
    **{name: VOS_TINY for name in VOS},
}

# published parameter counts (millions) of the full presets with 400 classes
PUBLISHED_PARAMS = {
    "c2d": 24.33,
    "i3d": 28.04,
    "slow": 32.45,
    "slowfast": 34.57,
    "x3d": 3.79,
    "mvit": 36.61,
    "timesformer": 121.4,
}


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_every_model_and_rejects_unknown_names():
    assert available() == ACTION + VOS
    assert available("action") == ACTION and available("vos") == VOS
    with pytest.raises(ValueError, match="Available: c2d, i3d"):
        build("resnet9000")
    with pytest.raises(ValueError, match="Available: full, tiny"):
        build("slow", preset="huge")
    with pytest.raises(ValueError, match="task"):
        available("detection")


@pytest.mark.parametrize("name", ACTION + VOS)
def test_tiny_forward_taps_and_probe(name):
    torch.manual_seed(0)
    num_classes = 1 if name in VOS else 7
    model = build(name, "tiny", num_classes=num_classes).eval()
    spec = model.input_spec
    x = spec.example(batch_size=2)

    with torch.no_grad(), capture(model) as feats:  # capture raises if a tap fires twice or not at all
        out = run_model(model, x)
    expected_out = (2, 1, spec.size, spec.size) if spec.two_stream else (2, num_classes)
    assert tuple(out.shape) == expected_out
    assert {k: v.shape for k, v in feats.items()} == {
        k: (2, c) for k, c in TINY_TAP_CHANNELS[name].items()
    }
    assert set(model.taps) == set(TINY_TAP_CHANNELS[name])

    probe = BiasProbe(model)
    for _ in range(2):  # compute() needs >= 2 pairs per factor
        probe.update({k: spec.example(batch_size=2) for k in ("anchor", "dynamic", "static")})
    results = probe.compute()
    assert set(results) == set(model.taps)
    assert all(isinstance(r, BiasResult) and r.num_units == TINY_TAP_CHANNELS[name][k] for k, r in results.items())


def test_full_timesformer_matches_published_parameter_count():
    model = build("timesformer", "full", num_classes=400)
    assert num_params(model) / 1e6 == pytest.approx(PUBLISHED_PARAMS["timesformer"], rel=0.02)
    assert list(model.taps) == [f"block{i}" for i in range(12)]
    del model
    gc.collect()


def test_full_fast_is_slowfast_fast_pathway_and_vos_uses_resnet101():
    fast = build("fast", "full")
    slowfast = build("slowfast", "full")
    fast_stages = [fast.get_submodule(t.module) for k, t in fast.taps.items()]
    sf_stages = [slowfast.get_submodule(t.module) for k, t in slowfast.taps.items() if k.startswith("fast.")]
    # laterals run fast-to-slow only, so the fast pathway inside SlowFast is FastOnly stage for stage
    assert [num_params(a) for a in fast_stages] == [num_params(b) for b in sf_stages]
    del fast, slowfast
    vos = build("rtnet", "full")
    assert num_params(vos.app_encoder) / 1e6 == pytest.approx(42.5, rel=0.01)  # ResNet-101 without fc
    assert vos.input_spec.two_stream
    del vos
    gc.collect()


@pytest.mark.parametrize("name, hub_fn", [("c2d", "c2d_r50"), ("i3d", "i3d_r50"), ("slow", "slow_r50"),
                                          ("slowfast", "slowfast_r50"), ("x3d", "x3d_s"), ("mvit", "mvit_base_16x4")])
def test_full_preset_is_the_published_model(name, hub_fn):
    """Published parameter count, and pytorchvideo's hub builders (which define the published checkpoints'
    keys and shapes) give a state dict that loads strictly."""
    from pytorchvideo.models import hub

    torch.manual_seed(3)
    published = getattr(hub, hub_fn)(pretrained=False)  # pretrained=False: nothing is downloaded
    model = build(name, "full", num_classes=400)
    assert num_params(model) / 1e6 == pytest.approx(PUBLISHED_PARAMS[name], rel=0.02)
    load_weights(model, {"model_state": published.state_dict(), "epoch": 200})
    head = [k for k in published.state_dict() if k.endswith("proj.weight")][-1]
    assert torch.equal(model.state_dict()[head], published.state_dict()[head])
    del published, model
    gc.collect()


def test_full_state_dict_round_trip(tmp_path):
    path = tmp_path / "x3d.pt"
    source = build("x3d", "full")
    torch.save(source.state_dict(), path)
    target = build("x3d", "full")
    load_weights(target, path)
    for (k, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("name", ["slowfast", "matnet"])
def test_tiny_round_trip_gives_equal_outputs(name, tmp_path):
    torch.manual_seed(1)
    source = build(name, "tiny").eval()
    torch.save({"model_state": source.state_dict()}, tmp_path / "ckpt.pyth")  # pytorchvideo model-zoo layout
    target = build(name, "tiny").eval()
    load_weights(target, tmp_path / "ckpt.pyth")
    x = source.input_spec.example(2)
    with torch.no_grad():
        assert torch.equal(run_model(source, x), run_model(target, x))


def test_mismatching_state_dict_raises_naming_keys():
    model = build("slow", "tiny")
    state = dict(model.state_dict())
    state.pop("blocks.0.conv.weight")
    state["blocks.9.extra.weight"] = torch.zeros(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"missing \(1\): blocks\.0\.conv\.weight.*unexpected \(1\): blocks\.9\.extra"):
        load_weights(model, state)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # nothing loaded

    with pytest.warns(UserWarning, match="partial load"):
        report = load_weights(model, state, strict=False)
    assert report.missing == ["blocks.0.conv.weight"] and report.unexpected == ["blocks.9.extra.weight"]

    with pytest.raises(ValueError, match="shape mismatch.*blocks.5.proj.weight"):
        load_weights(build("slow", "tiny", num_classes=3), model.state_dict(), strict=False)
    with pytest.raises(ValueError, match="shape mismatch"):  # C2D's kernels are not Slow's
        load_weights(build("c2d", "tiny"), build("slow", "tiny").state_dict())


def test_lightning_checkpoint_loads(tmp_path):
    source = build("timesformer", "tiny", num_classes=4).eval()
    checkpoint = {
        "epoch": 3,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {**{f"model.{k}": v for k, v in source.state_dict().items()}, "criterion.weight": torch.ones(4)},
    }
    torch.save(checkpoint, tmp_path / "last.ckpt")
    target = build("timesformer", "tiny", num_classes=4).eval()
    load_weights(target, tmp_path / "last.ckpt")
    x = torch.rand(2, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))


def test_wrapper_prefixes_are_stripped():
    source = build("timesformer", "tiny")
    target = build("timesformer", "tiny")
    load_weights(target, {"model_state": {f"model.{k}": v for k, v in source.state_dict().items()}})  # the release
    load_weights(target, {f"module.{k}": v for k, v in source.state_dict().items()})  # DDP
    assert torch.equal(source.pos_embed, target.pos_embed)


PYSLOWFAST_BLOCK = {"branch1_conv": "branch1", "branch1_norm": "branch1_bn",
                    "branch2.conv_a": "branch2.a", "branch2.norm_a": "branch2.a_bn",
                    "branch2.conv_b": "branch2.b", "branch2.norm_b": "branch2.b_bn",
                    "branch2.conv_c": "branch2.c", "branch2.norm_c": "branch2.c_bn"}
PYSLOWFAST_STEM = {"conv": "conv", "norm": "bn"}
PYSLOWFAST_FUSE = {"conv_fast_to_slow": "conv_f2s", "norm": "bn"}


def to_pyslowfast(key: str, model: nn.Module) -> str:
    """The PySlowFast name of a zoo key, written independently of the loader's mapping."""
    for tap, spec in model.taps.items():
        if "stage" not in tap:
            continue
        stage, pathway, module = int(tap[-1]), int(tap.startswith("fast.")), spec.module
        if key.startswith(module + ".res_blocks."):
            block, rest = key[len(module + ".res_blocks."):].split(".", 1)
            layer, param = rest.rsplit(".", 1)
            return f"s{stage}.pathway{pathway}_res{block}.{PYSLOWFAST_BLOCK[layer]}.{param}"
        if stage == 1 and key.startswith(module + "."):
            layer, param = key[len(module + "."):].split(".")
            return f"s1.pathway{pathway}_stem.{PYSLOWFAST_STEM[layer]}.{param}"
    if match := re.match(r"blocks\.(\d)\.multipathway_fusion\.(\w+)\.(\w+)", key):
        k, layer, param = match.groups()
        return f"s{int(k) + 1}_fuse.{PYSLOWFAST_FUSE[layer]}.{param}"
    if re.match(r"blocks\.\d\.proj\.", key):
        return "head.projection." + key.rsplit(".", 1)[1]
    raise AssertionError(f"no PySlowFast name for {key}")


@pytest.mark.parametrize("name", ["slowfast", "i3d"])
def test_pyslowfast_checkpoint_loads(name):
    torch.manual_seed(2)
    source = build(name, "tiny").eval()
    state = {to_pyslowfast(k, source): v for k, v in source.state_dict().items()}
    assert "s1.pathway0_stem.conv.weight" in state and "head.projection.weight" in state
    if name == "slowfast":
        assert "s2.pathway1_res0.branch2.a_bn.running_mean" in state and "s3_fuse.conv_f2s.weight" in state
    target = build(name, "tiny").eval()
    load_weights(target, {"model_state": state, "epoch": 196, "cfg": "..."})
    x = source.input_spec.example(2)
    with torch.no_grad():
        assert torch.equal(run_model(source, x), run_model(target, x))


def test_fast_samples_alpha_times_the_frames_of_slow():
    for preset in ("tiny", "full"):
        alpha = get_entry("slowfast").kwargs(preset)["alpha"]
        slow, fast, slowfast = (get_entry(n).kwargs(preset)["num_frames"] for n in ("slow", "fast", "slowfast"))
        assert fast == alpha * slow and slowfast == fast
    spec = build("fast", "tiny").input_spec
    assert spec.num_frames == 4 * build("slow", "tiny").input_spec.num_frames

    clip = torch.arange(32.0).view(1, 1, 32, 1, 1).expand(2, 3, 32, 4, 4)
    slow_clip, fast_clip = pack_pathways(clip, alpha=4)
    assert fast_clip is clip
    assert slow_clip[0, 0, :, 0, 0].tolist() == [0, 4, 8, 12, 16, 20, 24, 28]
    assert [t.shape for t in pack_pathways(clip[0], 4)] == [(3, 8, 4, 4), (3, 32, 4, 4)]  # unbatched
    with pytest.raises(ValueError, match="multiple of alpha"):
        pack_pathways(clip[:, :, :30], 4)


def test_slowfast_leaves_its_input_list_alone():
    model = build("slowfast", "tiny").eval()
    views = model.input_spec.example(2)
    shapes = [v.shape for v in views]
    with torch.no_grad():
        first, second = model(views), model(views)
    assert [v.shape for v in views] == shapes and torch.equal(first, second)


def test_overrides_and_other_input_sizes():
    model = build("slow", "tiny", num_classes=3, num_frames=16, size=96).eval()
    assert model.input_spec == InputSpec(16, 96)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 16, 96, 96)).shape == (1, 3)
        assert build("x3d", "tiny").eval()(torch.rand(1, 3, 12, 96, 96)).shape == (1, 400)  # global pooling
        # TimeSformer interpolates its space and time embeddings
        assert build("timesformer", "tiny", num_classes=2).eval()(torch.rand(1, 3, 4, 96, 96)).shape == (1, 2)
    with pytest.raises(ValueError, match="cross"):
        build("fusionseg", "tiny", cross="sideways")


def test_vos_cross_connections_differ_only_in_gates():
    params = {name: num_params(build(name, "tiny")) for name in VOS}
    assert params["fusionseg"] < params["matnet"] < params["rtnet"]
    assert not build("fusionseg", "tiny").app_gates and not build("matnet", "tiny").mot_gates


def test_building_never_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model builder tried to download weights")

    import segmentation_models_pytorch.encoders as smp_encoders

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(smp_encoders, "hf_hub_download", refuse, raising=False)
    for name in ("slowfast", "rtnet"):
        build(name, "tiny")


def test_models_normalise_their_unit_range_inputs_themselves():
    """Zoo models take [0, 1] inputs: the spec's mean and std are applied by the model, once."""
    from lit_stbias.models.spec import InputNormalization

    for name in ("slow", "slowfast", "fusionseg"):
        model = build(name).eval()
        spec = model.input_spec
        x = spec.example(batch_size=1, generator=torch.Generator().manual_seed(0))
        seen = []
        first = next(m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)))
        handle = first.register_forward_pre_hook(lambda _m, args, seen=seen: seen.append(args[0]))
        with torch.no_grad():
            model(*x) if isinstance(x, tuple) else model(x)
        handle.remove()
        raw = (x[0] if isinstance(x, (tuple, list)) else x)
        mean = torch.tensor(spec.mean).view((1, 3) + (1,) * (raw.ndim - 2))
        std = torch.tensor(spec.std).view((1, 3) + (1,) * (raw.ndim - 2))
        assert torch.allclose(seen[0], (raw - mean) / std, atol=1e-6), name
        hooks = [h for h in model._forward_pre_hooks.values() if isinstance(h, InputNormalization)]
        assert len(hooks) == 1, name
