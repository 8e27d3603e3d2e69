"""The model zoo: registry, tiny forwards with taps and the probe, full configurations, checkpoints, inputs."""
from __future__ import annotations

import gc
import re

import pytest
import torch
from torch import nn

from lit_stbias.metrics import BiasResult
from lit_stbias.models import (
    InputSpec,
    aliases,
    available,
    build,
    get_entry,
    import_model,
    load_weights,
    pack_pathways,
    resolve,
)
from lit_stbias.models.spec import InputNormalization
from lit_stbias.probe import BiasProbe, Tap, capture, extract, resolve_taps, run_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

ACTION = ["c2d", "i3d", "slow", "fast", "slowfast", "x3d", "mvit", "timesformer"]
VOS = ["fusionseg", "matnet", "rtnet"]
R50_TINY = [16, 64, 128, 256, 512]
FAST_TINY = [4, 16, 32, 64, 128]
STREAM_TINY = {f"{s}.{t}": c for s in ("app", "mot")
               for t, c in zip(("conv1", "layer1", "layer2", "layer3", "layer4"), [16, 64, 128, 256, 512])}
VOS_TINY = {
    "fusionseg": {**STREAM_TINY, "fusion.layer1": 64, "fusion.layer4": 512},
    "matnet": {**STREAM_TINY, "fusion.layer1": 128, "fusion.layer2": 256, "fusion.layer3": 512, "fusion.layer4": 1024},
    # RTNet: the release's stage_map taps (tests/test_rtnet.py checks them against the release)
    "rtnet": {**{f"{s}.conv1": 16 for s in ("app", "mot")},
              **{f"{s}.layer{k}": c for s in ("app", "mot") for k, c in zip(range(1, 5), [64, 128, 256, 512])},
              "fusion.layer1": 16, "fusion.layer2": 32, "fusion.layer3": 64, "fusion.layer4": 64},
}


def stages(channels, prefix=""):
    return {f"{prefix}stage{k}": c for k, c in enumerate(channels, start=1)}


# tap name -> channels of the tiny preset (the pooled feature width the probe sees)
TINY_TAP_CHANNELS = {
    "c2d": stages(R50_TINY),
    "i3d": stages(R50_TINY),
    "slow": stages(R50_TINY),
    "fast": stages(FAST_TINY),
    "slowfast": {**stages(R50_TINY, "slow."), **stages(FAST_TINY, "fast."), "fused": 512 + 128,
                 # after the lateral connection: slow channels + 2x the fast ones (stem..res4; none after res5)
                 **{f"slow.stage{k}.fused": s + 2 * f for k, s, f in zip(range(1, 5), R50_TINY, FAST_TINY)}},
    "x3d": stages([8, 8, 16, 32, 64]),
    "mvit": {"block0": 64, "block1": 64, "block2": 128, "block3": 128},
    "timesformer": {f"block{i}": 64 for i in range(4)},
    **VOS_TINY,
}

# Published Kinetics-400 networks by pytorchvideo hub name: parameters (millions, 400 classes) and the clip,
# "frame length x sample rate" (pytorchvideo and PySlowFast model zoos; MViT paper for mvit_base_32x3). For
# SlowFast the name gives the slow pathway's clip; the model takes the fast one, alpha times denser.
PUBLISHED = {
    "c2d_r50": (24.33, (8, 8)),
    "i3d_r50": (28.04, (8, 8)),
    "slow_r50": (32.45, (8, 8)),
    "slowfast_r50": (34.57, (8, 8)),
    "slowfast_r101": (62.83, (8, 8)),
    "slowfast_16x8_r101_50_50": (53.77, (16, 8)),
    "x3d_xs": (3.79, (4, 12)),
    "x3d_s": (3.79, (13, 6)),
    "x3d_m": (3.79, (16, 5)),
    "x3d_l": (6.2, (16, 5)),
    "mvit_base_16x4": (36.61, (16, 4)),
    "mvit_base_32x3": (36.6, (32, 3)),
}
TIMESFORMER_PARAMS = 121.4  # TimeSformer-B divST 8x32 (the authors' release)


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
    rows = 2 * spec.num_frames if spec.two_stream else 2  # VOS taps hold one row per frame (RTNet: two frames)
    assert {k: v.shape for k, v in feats.items()} == {
        k: (rows, c) for k, c in TINY_TAP_CHANNELS[name].items()
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
    assert num_params(model) / 1e6 == pytest.approx(TIMESFORMER_PARAMS, rel=0.02)
    assert list(model.taps) == [f"block{i}" for i in range(12)]
    assert (model.input_spec.num_frames, model.input_spec.sampling_rate) == (8, 32)
    del model
    gc.collect()


def test_full_fast_is_slowfast_fast_pathway():
    fast = build("fast", "full")
    slowfast = build("slowfast", "full")
    fast_stages = [fast.get_submodule(t.module) for k, t in fast.taps.items()]
    sf_stages = [slowfast.get_submodule(t.module) for k, t in slowfast.taps.items() if k.startswith("fast.")]
    # laterals run fast-to-slow only, so the fast pathway inside SlowFast is FastOnly stage for stage
    assert [num_params(a) for a in fast_stages] == [num_params(b) for b in sf_stages]
    del fast, slowfast
    gc.collect()


@pytest.mark.parametrize("hub_fn", list(PUBLISHED))
def test_every_hub_name_is_the_published_model(hub_fn):
    """Each pytorchvideo hub name builds its network: published parameter count and clip, and pytorchvideo's
    hub builder (which defines the published checkpoint's keys and shapes) gives a state dict that loads
    strictly."""
    from pytorchvideo.models import hub

    torch.manual_seed(3)
    published = getattr(hub, hub_fn)(pretrained=False)  # pretrained=False: nothing is downloaded
    model = build(hub_fn, num_classes=400)
    params, (frames, rate) = PUBLISHED[hub_fn]
    assert num_params(model) / 1e6 == pytest.approx(params, rel=0.02)
    spec = model.input_spec
    alpha = spec.alpha or 1  # SlowFast: the slow pathway's clip is every alpha-th frame of the model's
    assert (spec.num_frames // alpha, spec.sampling_rate * alpha) == (frames, rate)
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
        if "stage" not in tap or tap.endswith(".fused"):
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


# ------------------------------------------------------------------------------------ pytorchvideo names


def test_hub_names_are_aliases_of_zoo_presets():
    assert set(aliases()) == set(PUBLISHED)
    assert aliases()["x3d_m"] == ("x3d", "m") and aliases()["slow_r50"] == ("slow", "full")
    assert not set(aliases()) & set(available())  # available() stays the canonical names
    assert resolve("slowfast_r101") == ("slowfast", "r101") and resolve("slow_r50", "full") == ("slow", "full")
    assert resolve("slow") == ("slow", "tiny") and resolve("x3d", "l") == ("x3d", "l")
    assert get_entry("x3d_m") is get_entry("x3d")
    with pytest.raises(ValueError, match="'x3d_m' is model 'x3d' with preset 'm'.*presets: full, tiny, xs, s, m, l"):
        build("x3d_m", preset="tiny")
    with pytest.raises(ValueError, match="pytorchvideo names: c2d_r50"):
        build("slowfast_r9000")


def test_x3d_sizes_are_presets_of_one_builder():
    torch.manual_seed(5)
    by_alias = build("x3d_m")
    torch.manual_seed(5)
    by_preset = build("x3d", preset="m")
    assert by_alias.input_spec == by_preset.input_spec == InputSpec(16, 224, sampling_rate=5)
    assert by_alias.state_dict().keys() == by_preset.state_dict().keys()
    assert all(torch.equal(v, by_preset.state_dict()[k]) for k, v in by_alias.state_dict().items())
    # one architecture: XS and M share every shape and differ in the clip (L, deeper, is checked by the hub test)
    xs = build("x3d_xs")
    assert {k: v.shape for k, v in xs.state_dict().items()} == {k: v.shape for k, v in by_alias.state_dict().items()}
    assert xs.input_spec == InputSpec(4, 160, sampling_rate=12)
    assert get_entry("x3d").kwargs("full") == get_entry("x3d").kwargs("s")  # "full" stays X3D-S


def test_only_published_presets_carry_a_sampling_rate():
    for name in available():
        assert get_entry(name).kwargs("tiny").get("sampling_rate") is None, name
    assert build("slow").input_spec.sampling_rate is None
    assert get_entry("fast").kwargs("full")["sampling_rate"] == 2  # the fast pathway of SlowFast 8x8
    assert build("slow", "tiny", sampling_rate=4).input_spec.sampling_rate == 4  # an override like any other


# ------------------------------------------------------------------------------------ SlowFast tap families


def test_slowfast_fused_taps_read_the_slow_pathway_after_the_lateral_connection():
    """``slow.stageK.fused`` = the slow features concatenated with the fast-to-slow convolution of the fast
    ones, as the authors' release measures with ``--fuse True``; ``slow.stageK`` is the slow pathway before."""
    torch.manual_seed(4)
    model = build("slowfast", "tiny").eval()
    for m in model.modules():  # non-trivial BatchNorm statistics so the lateral branch is not a constant
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    outputs = {}
    handles = [model.blocks[k].multipathway_blocks[p].register_forward_hook(
        lambda _m, _i, out, key=(k, p): outputs.__setitem__(key, out)) for k in range(5) for p in (0, 1)]
    x = model.input_spec.example(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), capture(model) as feats:
        model(x)
    for handle in handles:
        handle.remove()
    assert [t for t in model.taps if t.endswith(".fused")] == [f"slow.stage{k}.fused" for k in range(1, 5)]
    for k in range(1, 5):
        fusion = model.blocks[k - 1].multipathway_fusion
        slow, fast = outputs[(k - 1, 0)], outputs[(k - 1, 1)]
        with torch.no_grad():
            lateral = fusion.activation(fusion.norm(fusion.conv_fast_to_slow(fast)))
        expected = torch.cat([slow, lateral], dim=1).mean(dim=(2, 3, 4))
        fused, before = feats[f"slow.stage{k}.fused"], feats[f"slow.stage{k}"]
        assert torch.allclose(fused, expected, atol=1e-5)
        assert torch.allclose(fused[:, : before.shape[1]], before, atol=1e-6)  # the slow part is unchanged
        assert fused.shape[1] > before.shape[1] and lateral.abs().sum() > 0  # and the lateral part is there
        assert torch.allclose(feats[f"fast.stage{k}"], fast.mean(dim=(2, 3, 4)), atol=1e-6)


# ------------------------------------------------------------------------------------ token pooling


@pytest.mark.parametrize("name", ["timesformer", "mvit"])
def test_transformer_taps_pool_all_tokens_unless_patches_are_asked_for(name):
    torch.manual_seed(6)
    model = build(name, "tiny").eval()
    assert all(tap.skip_tokens == 1 for tap in model.taps.values())  # the declaration: one class token
    tokens = []
    handle = model.blocks[1].register_forward_hook(
        lambda _m, _i, out: tokens.append(out[0] if isinstance(out, tuple) else out))
    x = model.input_spec.example(2, generator=torch.Generator().manual_seed(1))
    default = extract(model, x, taps=["block1"])["block1"]
    patches = extract(model, x, taps=["block1"], pool_tokens="patches")["block1"]
    handle.remove()
    assert torch.allclose(default, tokens[0].mean(dim=1), atol=1e-6)  # the release's x.mean(1)
    assert torch.allclose(patches, tokens[1][:, 1:].mean(dim=1), atol=1e-6)
    assert not torch.allclose(default, patches)
    # the choice is stored on the resolution, and capture can override a resolution it is given
    resolved = resolve_taps(model, ["block1"], pool_tokens="patches")
    assert resolved["block1"][1] == Tap("blocks.1", index=model.taps["block1"].index, skip_tokens=1,
                                        pool_tokens="patches")
    assert model.taps["block1"].pool_tokens == "all"  # the model's declaration is untouched
    with torch.no_grad(), capture(model, resolved=resolved, pool_tokens="all") as feats:
        run_model(model, x)
    assert torch.allclose(feats["block1"], default)
    with pytest.raises(ValueError, match="pool_tokens must be 'all'"):
        resolve_taps(model, ["block1"], pool_tokens="cls")


# ------------------------------------------------------------------------------------ a user's own model


def test_import_model_makes_a_users_network_probe_ready():
    model = import_model("user_models:tiny_video_net", num_frames=4, size=16, normalization="kinetics", width=6)
    assert type(model).__name__ == "TinyVideoNet" and model.stem.out_channels == 6
    assert model.input_spec == InputSpec(4, 16) and model.taps == {}
    with pytest.raises(ValueError, match="declares no taps"):
        resolve_taps(model)
    x = model.input_spec.example(2, generator=torch.Generator().manual_seed(0))
    seen = []
    handle = model.stem.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    feats = extract(model, x, taps=["stem", "layer1.0"])
    handle.remove()
    assert torch.allclose(seen[0], (x - 0.45) / 0.225, atol=1e-6)
    assert feats["stem"].shape == (2, 6) and feats["layer1.0"].shape == (2, 6)
    probe = BiasProbe(model, taps=["layer1"])
    for _ in range(2):
        probe.update({k: model.input_spec.example(2) for k in ("anchor", "dynamic", "static")})
    assert probe.compute()["layer1"].num_units == 6


def test_import_model_normalisations():
    plain = import_model("user_models:tiny_video_net", num_frames=2, size=8)  # "none": inputs as they are
    assert not any(isinstance(h, InputNormalization) for h in plain._forward_pre_hooks.values())
    assert plain.input_spec.mean == (0.0, 0.0, 0.0) and plain.input_spec.std == (1.0, 1.0, 1.0)
    custom = import_model("user_models:tiny_video_net", num_frames=2, size=8, normalization=([0.5] * 3, [0.5] * 3))
    seen = []
    custom.stem.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        custom(torch.ones(1, 3, 2, 8, 8))
    assert torch.allclose(seen[0], torch.ones(1)) and custom.input_spec.mean == (0.5, 0.5, 0.5)
    imagenet = import_model("user_models:tiny_video_net", num_frames=2, size=8, normalization="imagenet")
    assert imagenet.input_spec.std == (0.229, 0.224, 0.225)


@pytest.mark.parametrize("target, kwargs, message", [
    ("user_models.tiny_video_net", {}, "not of the form 'package.module:factory'"),
    ("user_models:", {}, "not of the form"),
    ("no_such_package.models:net", {}, "cannot import 'no_such_package.models'.*PYTHONPATH"),
    ("user_models:no_such_net", {}, "has no attribute 'no_such_net'.*Callables in it: .*tiny_video_net"),
    ("user_models:NOT_CALLABLE", {}, "is a int, not a callable"),
    ("user_models:not_a_module", {}, "returned a dict, not a torch.nn.Module"),
    ("user_models:broken", {}, "failed with no arguments: RuntimeError: the factory's own bug"),
    ("user_models:tiny_video_net", {"depth": 3}, "failed with .*depth.*TypeError"),
    ("user_models:tiny_video_net", {"normalization": "cifar"}, "unknown normalization 'cifar'"),
    ("user_models:tiny_video_net", {"normalization": ([0.5] * 3, [0.0] * 3)}, "positive stds"),
    ("user_models:tiny_video_net", {"normalization": ([0.5] * 3, [0.5] * 2)}, "one value per input channel"),
    ("user_models:tiny_video_net", {"normalization": "kinetics", "num_frames": 0}, "num_frames must be a positive"),
    ("lit_stbias.models:build", {"name": "slow"}, "already normalises its inputs"),
])
def test_import_model_errors_are_one_clear_line(target, kwargs, message):
    kwargs = {"num_frames": 4, "size": 16, **kwargs}
    with pytest.raises(ValueError, match=message) as caught:
        import_model(target, **kwargs)
    assert "\n" not in str(caught.value)
