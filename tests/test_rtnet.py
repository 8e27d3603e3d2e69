"""RTNet (the release's ``Interactive``, ResNeXt-50): state dict, forward maths, taps, inputs and checkpoints.

The release's key set and shapes are recorded here as data, read from YorkUCVIL/Static-Dynamic-Interpretability
(``models/vos_models/rtnet/interactive.py``) and the RTNet modules it imports (OliverRensu/RTNet ``model_RX50``:
``spatial.py``, ``temporal.py``, ``Attention.py``): both streams hold torchvision's ``resnext50_32x4d`` (keys from
torchvision itself, under the release's names) plus the layers listed below. The release's forward pass is
restated below in its own terms (its row reshapes, its attention maths, sigmoid side outputs, ``set_stage_stream``
pooling) on the model's leaf layers, and compared with the model's call and taps.
"""
from __future__ import annotations

import functools
import math
import re
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from lit_stbias.models import CheckpointError, build, load_weights
from lit_stbias.models.vos import release_stage
from lit_stbias.models.vos.rtnet import RESNEXT50, prepare_inputs, resnext_stages
from lit_stbias.probe import BiasProbe, capture, run_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)
REFERENCE_PARAMETERS = 277_236_532  # REFERENCES.md: 277.24 M
REFERENCE_ENTRIES = 1219


def assert_close(actual, expected, msg=None):
    """Equal up to float32 rounding: sums in another order (batch sizes, einsum vs matmul) differ by a few ulps of
    the largest values in the tensor, so the absolute tolerance scales with them."""
    atol = 1e-5 * max(1.0, float(expected.abs().max()))
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=atol, msg=msg)



# ------------------------------------------------------------------------------------------- the release's keys


def bn(prefix: str, c: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def conv(prefix: str, out: int, inp: int, k: int, bias: bool = True) -> dict[str, tuple]:
    keys = {f"{prefix}.weight": (out, inp, k, k)}
    return {**keys, f"{prefix}.bias": (out,)} if bias else keys


@functools.lru_cache(maxsize=None)
def torchvision_resnext50_shapes() -> dict[str, tuple]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in torchvision.models.resnext50_32x4d().state_dict().items()}


def release_rtnet_keys() -> dict[str, tuple]:
    """``Interactive()``: ``Spatial`` and ``Temporal`` (``models.resnext50_32x4d`` children under new names, the
    temporal stem a 6-channel convolution), then the transformations and STAFMs ``Interactive.__init__`` builds."""
    keys = {}
    rename = {"conv1": "inconv.0", "bn1": "inconv.1", **{f"layer{k}": f"encoder{k}" for k in range(1, 5)}}
    for net, in_channels in (("spatial_net", 3), ("temporal_net", 6)):
        for key, shape in torchvision_resnext50_shapes().items():
            top, _, rest = key.partition(".")
            if top != "fc":
                keys[f"{net}.{rename[top]}.{rest}"] = shape
        keys[f"{net}.inconv.0.weight"] = (64, in_channels, 7, 7)
        for k, (c, d) in enumerate(((256, 64), (512, 128), (1024, 256)), start=1):  # bridgeK: 1x1 conv, bn, relu
            keys.update({**conv(f"{net}.bridge{k}.0", d, c, 1, bias=False), **bn(f"{net}.bridge{k}.1", d)})
        for i in range(5):  # dilation0 1x1; dilation1..4 3x3 at dilations 1, 2, 4, 8
            keys.update({**conv(f"{net}.dilation{i}.0", 512, 2048, 1 if i == 0 else 3, bias=False),
                         **bn(f"{net}.dilation{i}.1", 512)})
        for name, (inp, mid, out) in {"decoder4": (2560, 512, 256), "decoder3": (512, 256, 128),
                                      "decoder2": (256, 128, 64), "decoder1": (128, 64, 64)}.items():
            for index, (o, i) in zip((0, 3, 6), ((mid, inp), (mid, mid), (out, mid))):  # decoder_stage's layer
                keys.update({**conv(f"{net}.{name}.layer.{index}", o, i, 3, bias=False),
                             **bn(f"{net}.{name}.layer.{index + 1}", o)})
        for name, inp in {"out4": 256, "out3": 128, "out2": 64, "out1": 64}.items():  # out_block
            keys.update({**conv(f"{net}.{name}.conv1.0", 64, inp, 3, bias=False), **bn(f"{net}.{name}.conv1.1", 64),
                         **conv(f"{net}.{name}.conv2", 1, 64, 1)})
    for level, (c, h) in enumerate(((256, 1), (512, 2), (1024, 4), (2048, 8)), start=1):
        for kind in ("SS", "ST", "TT"):  # RTModule(c, h, ST=kind == "ST"): RScaling, RTrans (x2 if ST), RGating
            m = f"{kind}Transformer{level}"
            keys.update({**conv(f"{m}.scaling.fc1", c // h, 2 * c, 1), **conv(f"{m}.scaling.fc2", 2 * c, c // h, 1)})
            for t in ("transformation1", "transformation2") if kind == "ST" else ("transformation1",):
                for p in ("query", "key", "value"):
                    keys.update(conv(f"{m}.{t}.{p}", c, c, 1))
            keys.update(conv(f"{m}.gating.conv.0", 2, 2 * c, 1))
        for kind in ("Sself", "Tself"):  # SelfModule(c, h): SelfScaling, RTrans, SelfGating
            m = f"{kind}Transformer{level}"
            keys.update({**conv(f"{m}.scaling.fc1", c // h, c, 1), **conv(f"{m}.scaling.fc2", c, c // h, 1)})
            for p in ("query", "key", "value"):
                keys.update(conv(f"{m}.transformation.{p}", c, c, 1))
            keys.update(conv(f"{m}.gating.conv.0", 1, c, 1))
    for level, (c, ratio) in ((3, (256, 4)), (2, (128, 2)), (1, (64, 1))):  # STAFM(c, ratio)
        m = f"Transformerstafm{level}"
        keys.update({**conv(f"{m}.channel.fc1", c // ratio, 2 * c, 1), **conv(f"{m}.channel.fc2", c, c // ratio, 1),
                     **conv(f"{m}.spatial.conv1", 1, 4, 7, bias=False)})
    return keys


# what the published network holds but its mask never uses (no gradient reaches it)
RELEASE_UNUSED = [r"temporal_net\.(dilation\d|decoder\d|out\d)\.", r"spatial_net\.out[234]\.",
                  r"(TT|Tself)Transformer4\."]  # the motion stream after stage 4 feeds only its own decoder
# main_vos.py's stage_map, stages 0..13 (the release's default), the names the taps map to
RELEASE_STAGES = [f"{s},{stream}" for stream in ("app_stream", "mot_stream")
                  for s in ("conv1", "layer1", "layer2", "layer3", "layer4")] + [
    f"layer{k},sensor_fusion" for k in range(1, 5)]


def shapes(model: nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@functools.lru_cache(maxsize=None)
def full_on_meta() -> nn.Module:
    with torch.device("meta"):  # keys and shapes only: no memory, no initialisation cost
        return build("rtnet", "full")


# ------------------------------------------------------------------------------------ full preset = the release


def test_full_state_dict_is_the_releases():
    ours, expected = shapes(full_on_meta()), release_rtnet_keys()
    assert sorted(set(ours) - set(expected)) == [] and sorted(set(expected) - set(ours)) == []
    assert {k: v for k, v in ours.items() if expected[k] != v} == {}
    assert len(ours) == len(expected) == REFERENCE_ENTRIES
    assert sum(p.numel() for p in full_on_meta().parameters()) == REFERENCE_PARAMETERS


def test_encoder_is_torchvisions_resnext():
    """Same weights, same input: the stem and stages equal torchvision's ResNeXt (32x4d). Two blocks per stage keep
    it fast; the full depth's keys are checked above."""
    torch.manual_seed(0)
    reference = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, [2, 2, 2, 2], groups=32,
                                                 width_per_group=4).eval()
    stages = resnext_stages(**{**RESNEXT50, "blocks": (2, 2, 2, 2)})
    ours = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), bn1=nn.BatchNorm2d(64), relu=nn.ReLU(),
        maxpool=nn.MaxPool2d(3, stride=2, padding=1), **{f"layer{k}": s for k, s in enumerate(stages, start=1)},
    )).eval()
    ours.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_close(ours(x), nn.Sequential(*list(reference.children())[:-2])(x))


def test_tiny_preset_has_the_full_networks_modules():
    """Same module structure: the tiny state dict is the full one with one block per encoder stage."""
    tiny = set(build("rtnet", "tiny").state_dict())
    deeper_blocks = re.compile(r"\.encoder\d\.([1-9]\d*)\.")
    assert tiny == {k for k in full_on_meta().state_dict() if not deeper_blocks.search(k)}


# ------------------------------------------------------------------------------- the release's forward, restated


def rtrans(m, q, k, v, pooled):
    """``RTrans`` (``OldRTrans`` when pooled: 3x3/2 max-pool first, bilinear back): per head, values times the
    softmax over key positions of q.k / sqrt(d_k), the values indexed by the query position."""
    size = q.shape[-2:]
    if pooled:
        q, k, v = (F.max_pool2d(t, 3, 2, 1) for t in (q, k, v))
    b, c, h, w = q.shape
    heads = m.heads
    d = c // heads
    qq = m.query(q).reshape(b, heads, d, h * w).permute(0, 1, 3, 2)
    kk = m.key(k).reshape(b, heads, d, h * w)
    vv = m.value(v).reshape(b, heads, d, h * w)
    attention = torch.softmax(torch.einsum("bhid,bhdj->bhij", qq, kk) / math.sqrt(d), dim=-1)
    out = torch.einsum("bhdi,bhij->bhdj", vv, attention).reshape(b, c, h, w)
    return F.interpolate(out, size, mode="bilinear", align_corners=True) if pooled else out


def rt_module(m, x, y, pooled, cross_stream):
    """``RTModule``: RScaling, x attends y, y attends the new x (a second RTrans when ST), RGating."""
    f = m.scaling.fc2(F.relu(m.scaling.fc1(nn.AdaptiveAvgPool2d(1)(torch.cat([x, y], 1)))))
    c = x.shape[1]
    x, y = x * torch.sigmoid(f[:, :c]) + x, y * torch.sigmoid(f[:, c:]) + y
    x = rtrans(m.transformation1, x, y, y, pooled)
    y = rtrans(m.transformation2 if cross_stream else m.transformation1, y, x, x, pooled)
    gate = torch.sigmoid(m.gating.conv[0](torch.cat([x, y], 1)))
    return x * gate[:, :1] + x, y * gate[:, 1:] + y


def self_module(m, x, pooled):
    """``SelfModule``: SelfScaling, self-attention, SelfGating."""
    x = x * torch.sigmoid(m.scaling.fc2(F.relu(m.scaling.fc1(nn.AdaptiveAvgPool2d(1)(x))))) + x
    x = rtrans(m.transformation, x, x, x, pooled)
    return x * torch.sigmoid(m.gating.conv[0](x)) + x


def stafm(m, s, t):
    """``STAFM``: ChannelAttention (s * a, t * (1 - a)), then SpatialAttention (s * b + t * (1 - b))."""
    a = torch.sigmoid(m.channel.fc2(F.relu(m.channel.fc1(nn.AdaptiveAvgPool2d(1)(torch.cat([s, t], 1))))))
    s, t = s * a, t * (1 - a)
    stats = torch.cat([s.mean(1, keepdim=True), s.max(1, keepdim=True)[0], t.mean(1, keepdim=True),
                       t.max(1, keepdim=True)[0]], 1)
    b = torch.sigmoid(m.spatial.conv1(stats))
    return s * b + t * (1 - b)


def pooled(x):
    return x.view(x.shape[0], x.shape[1], -1).mean(dim=2)  # set_stage_stream


def release_interactive(model, frames, flows):
    """``Interactive.forward({"Image": x, "Flow": f}, stages)`` on normalised inputs: its four sigmoid side outputs
    and the pooled stage features (``interm_out``) of every default stage."""
    x = (frames - IMAGENET_MEAN) / IMAGENET_STD
    flow = (flows - IMAGENET_MEAN.repeat(1, 1, 2, 1, 1)) / IMAGENET_STD.repeat(1, 1, 2, 1, 1)
    sp, tp = model.spatial_net, model.temporal_net
    B, Seq, C, H, W = x.size()
    stages = {}
    spatial, temporal = sp.inconv(x.view(B * Seq, C, H, W)), tp.inconv(flow.view(B * Seq, C * 2, H, W))
    stages["conv1,app_stream"] = pooled(sp.inconv[0](x.view(B * Seq, C, H, W)))
    stages["conv1,mot_stream"] = pooled(tp.inconv[0](flow.view(B * Seq, C * 2, H, W)))
    skips = []
    for level in (1, 2, 3, 4):
        spatial = getattr(sp, f"encoder{level}")(spatial)
        temporal = getattr(tp, f"encoder{level}")(temporal)
        _, C, H, W = spatial.size()
        s1, s2 = (z.squeeze(1) for z in spatial.view(B, Seq, C, H, W).chunk(2, dim=1))
        t1, t2 = (z.squeeze(1) for z in temporal.view(B, Seq, C, H, W).chunk(2, dim=1))
        SS, ST, TT, Sself, Tself = (getattr(model, f"{kind}Transformer{level}")
                                    for kind in ("SS", "ST", "TT", "Sself", "Tself"))
        pool = level == 1  # redunction=True at the first stage
        S1S, S2S = rt_module(SS, s1, s2, pool, False)
        S1self, S2self = self_module(Sself, s1, pool), self_module(Sself, s2, pool)
        S1T, T1S = rt_module(ST, s1, t1, pool, True)
        S2T, T2S = rt_module(ST, s2, t2, pool, True)
        T1T, T2T = rt_module(TT, t1, t2, pool, False)
        T1self, T2self = self_module(Tself, t1, pool), self_module(Tself, t2, pool)
        spatial = torch.cat([S1S + S1self + S1T + s1, S2S + S2self + S2T + s2], 0)
        temporal = torch.cat([T1S + T1self + T1T + t1, T2S + T2self + T2T + t2], 0)
        stages[f"layer{level},app_stream"], stages[f"layer{level},mot_stream"] = pooled(spatial), pooled(temporal)
        skips.append((spatial, temporal))
    spatial5 = torch.cat([getattr(sp, f"dilation{i}")(spatial) for i in range(5)], 1)
    features = {4: sp.decoder4(spatial5)}
    stages["layer4,sensor_fusion"] = pooled(features[4])
    for level in (3, 2, 1):
        s_f, t_f = skips[level - 1]
        fused = stafm(getattr(model, f"Transformerstafm{level}"), getattr(sp, f"bridge{level}")(s_f),
                      getattr(tp, f"bridge{level}")(t_f))
        stages[f"layer{level},sensor_fusion"] = pooled(fused)
        up = F.interpolate(features[level + 1], s_f.shape[-2:], mode="bilinear", align_corners=True)
        features[level] = getattr(sp, f"decoder{level}")(torch.cat((up, fused), 1))
    H, W = skips[0][0].shape[-2:]
    outs = [torch.sigmoid(getattr(sp, f"out{k}")(features[k], (H * 4, W * 4))) for k in (1, 2, 3, 4)]
    return outs, stages


# -------------------------------------------------------------------------------------------- the tiny network


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build("rtnet", "tiny").eval()


def inputs(b=2, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 2, 3, h, w, generator=g), torch.rand(b, 2, 6, h, w, generator=g)


def side_outputs(model, frames, flows):
    """All four pre-sigmoid side outputs of both frames (the model's call keeps the anchor's ``out1``)."""
    return model.decode(*model.encode(*prepare_inputs(model, (frames, flows))), side_outputs=(1, 2, 3, 4))


@pytest.fixture
def release_rows(tiny):
    tiny.row_pairing = "release"
    yield tiny
    tiny.row_pairing = "per_item"


def test_one_item_gives_the_releases_side_outputs_and_stages(tiny):
    """One item per batch (RTNet's own test; both row pairings agree): sigmoid of the mask logits is the
    release's ``out1`` of the anchor frame, the four side outputs are its four outputs for both frames, and every
    tap is its ``interm_out`` stage."""
    frames, flows = inputs(1)
    with torch.no_grad(), capture(tiny) as features:
        logits = tiny(frames, flows)
    with torch.no_grad():
        outs, stages = release_interactive(tiny, frames, flows)
        sides = side_outputs(tiny, frames, flows)
    assert logits.shape == (1, 1, 32, 48) and outs[0].shape == (2, 1, 32, 48)
    assert_close(torch.sigmoid(logits), outs[0][:1])
    for ours, release in zip(sides, outs):
        assert_close(torch.sigmoid(ours), release)
    assert [release_stage(t) for t in tiny.taps] == RELEASE_STAGES  # stage_map's order
    for tap, feature in features.items():
        assert feature.shape[0] == 2  # one row per frame, as the release measures them
        assert_close(feature, stages[release_stage(tap)], msg=tap)
    tiny.row_pairing = "release"
    try:
        with torch.no_grad():
            assert_close(tiny(frames, flows), logits)
    finally:
        tiny.row_pairing = "per_item"


def test_batches_pair_each_items_own_frames(tiny):
    """``per_item``: a batch gives each item what it gives alone; layer and fusion taps hold the first frames'
    rows then the second frames', the stem taps each item's two frames in turn (the release's layouts)."""
    frames, flows = inputs(3, 32, 48, seed=1)
    with torch.no_grad(), capture(tiny) as features:
        logits = tiny(frames, flows)
    with torch.no_grad():
        alone = [release_interactive(tiny, frames[i:i + 1], flows[i:i + 1]) for i in range(3)]
    for i, (outs, stages) in enumerate(alone):
        assert_close(torch.sigmoid(logits[i:i + 1]), outs[0][:1])
        for tap, feature in features.items():
            rows = feature.view(3, 2, -1)[i] if tap.endswith("conv1") else feature.view(2, 3, -1)[:, i]
            assert_close(rows, stages[release_stage(tap)], msg=tap)


def test_release_row_pairing_reproduces_the_releases_batches(release_rows):
    """``release``: a batch of two gives the release's stage features for that batch, in which stages 2-4 pair
    frames of different items; they differ from the per-item ones."""
    model = release_rows
    frames, flows = inputs(2, 32, 48, seed=2)
    with torch.no_grad(), capture(model) as features:
        model(frames, flows)
    with torch.no_grad():
        outs, stages = release_interactive(model, frames, flows)
        sides = side_outputs(model, frames, flows)
    for tap, feature in features.items():
        assert_close(feature, stages[release_stage(tap)], msg=tap)
    for ours, release in zip(sides, outs):
        assert_close(torch.sigmoid(ours), release)
    model.row_pairing = "per_item"
    with torch.no_grad(), capture(model, ["app.layer1", "app.layer2"]) as per_item:
        model(frames, flows)
    assert_close(per_item["app.layer1"], features["app.layer1"])  # stage 1 reads item-major rows
    assert not torch.allclose(per_item["app.layer2"], features["app.layer2"], atol=1e-3)


def test_call_checks_and_normalises_its_inputs(tiny):
    seen = {}
    hooks = [tiny.get_submodule(f"{net}.inconv.0").register_forward_pre_hook(
        lambda _m, args, net=net: seen.__setitem__(net, args[0])) for net in ("spatial_net", "temporal_net")]
    frames, flows = inputs(2, 34, 42)
    with torch.no_grad():
        logits = tiny(frames, flows)
    for hook in hooks:
        hook.remove()
    assert logits.shape == (2, 1, 34, 42) and torch.isfinite(logits).all()  # resized from 36 x 44 to the input
    assert_close(seen["spatial_net"], ((frames - IMAGENET_MEAN) / IMAGENET_STD).flatten(0, 1))
    flow_mean, flow_std = IMAGENET_MEAN.repeat(1, 1, 2, 1, 1), IMAGENET_STD.repeat(1, 1, 2, 1, 1)
    assert_close(seen["temporal_net"], ((flows - flow_mean) / flow_std).flatten(0, 1))

    spec = tiny.input_spec
    assert (spec.num_frames, spec.two_stream, spec.backward_flow) == (2, True, True)
    assert tuple(spec.mean) == (0.485, 0.456, 0.406) and tuple(spec.std) == (0.229, 0.224, 0.225)
    example = spec.example(2)
    assert [tuple(x.shape) for x in example] == [(2, 2, 3, 64, 64), (2, 2, 6, 64, 64)]
    with torch.no_grad():
        assert run_model(tiny, example).shape == (2, 1, 64, 64)

    with pytest.raises(ValueError, match=r"frames \(B, 2, 3, H, W\).*got frames \(2, 3, 32, 32\)"):
        tiny(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))  # the one-frame (rgb, flow image) call
    with pytest.raises(ValueError, match=r"forward then backward flow image"):
        tiny(torch.rand(2, 2, 3, 32, 32), torch.rand(2, 2, 3, 32, 32))  # forward flow only
    with pytest.raises(ValueError, match="same B, H and W"):
        tiny(torch.rand(2, 2, 3, 32, 32), torch.rand(2, 2, 6, 32, 48))
    with pytest.raises(ValueError, match="two tensors"):
        tiny(torch.rand(2, 2, 3, 32, 32))


def test_probe_counts_both_frames_of_every_pair(tiny):
    """The probe measures every tap; each pair gives two samples per factor (one per frame), as the release."""
    probe = BiasProbe(tiny)
    for step in range(2):
        probe.update({k: inputs(2, 32, 32, seed=10 * step + i) for i, k in enumerate(("anchor", "dynamic", "static"))})
    results = probe.compute()
    assert set(results) == set(tiny.taps)
    widths = {t: r.num_units for t, r in results.items()}
    assert widths == {"app.conv1": 16, "app.layer1": 64, "app.layer2": 128, "app.layer3": 256, "app.layer4": 512,
                      "mot.conv1": 16, "mot.layer1": 64, "mot.layer2": 128, "mot.layer3": 256, "mot.layer4": 512,
                      "fusion.layer1": 16, "fusion.layer2": 32, "fusion.layer3": 64, "fusion.layer4": 64}
    assert all(r.num_pairs == {"dynamic": 8, "static": 8} for r in results.values())


def test_only_the_releases_unused_layers_are_frozen():
    """Every trainable parameter gets a gradient from the mask; the frozen ones are exactly those the mask never
    uses (so DDP and optimisers work, and checkpoints keep them as published)."""
    torch.manual_seed(0)
    model = build("rtnet", "tiny").train()
    model(*inputs(2, 32, 32)).sum().backward()
    frozen = {k for k, p in model.named_parameters() if not p.requires_grad}
    no_grad = {k for k, p in model.named_parameters() if p.requires_grad and p.grad is None}
    unused = {k for k, _ in model.named_parameters() if any(re.match(p, k) for p in RELEASE_UNUSED)}
    assert no_grad == set() and frozen == unused and unused


# ----------------------------------------------------------------------------------------- checkpoint formats


def outputs_equal(a, b):
    x = inputs(1, 32, 32, seed=5)
    with torch.no_grad():
        return torch.equal(a.eval()(*x), b.eval()(*x))


def test_saved_and_reloaded_state_dict_gives_identical_outputs(tmp_path):
    torch.manual_seed(1)
    source = build("rtnet", "tiny").eval()
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    target = build("rtnet", "tiny").eval()
    assert not outputs_equal(source, target)
    load_weights(target, tmp_path / "weights.pt")
    assert outputs_equal(source, target)


def test_release_checkpoint_loads_strictly(tmp_path):
    """The release saves ``{"state_dict": DataParallel(model).state_dict(), ...}``: every key ``module.``-prefixed."""
    torch.manual_seed(2)
    source = build("rtnet", "tiny")
    checkpoint = {"epoch": 20, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()},
                  "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}}
    torch.save(checkpoint, tmp_path / "model_RX50.pth")
    target = build("rtnet", "tiny")
    load_weights(target, tmp_path / "model_RX50.pth")
    assert outputs_equal(source, target)
    lightning = build("rtnet", "tiny")  # this project's Lightning checkpoints still load (keys model.*)
    load_weights(lightning, {"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}})
    assert outputs_equal(source, lightning)


def test_another_networks_checkpoint_is_one_clear_error(tmp_path):
    torch.manual_seed(4)
    rtnet = build("rtnet", "tiny")
    before = {k: v.clone() for k, v in rtnet.state_dict().items()}
    fusionseg = build("fusionseg", "tiny")
    torch.save({"model_state": fusionseg.state_dict()}, tmp_path / "fusionseg.pth")
    with pytest.raises(ValueError, match=r"checkpoint .*fusionseg\.pth does not fit RTNet: missing"):
        load_weights(rtnet, tmp_path / "fusionseg.pth")
    torch.save({"state_dict": {f"module.{k}": v for k, v in fusionseg.state_dict().items()}}, tmp_path / "dp.pth")
    with pytest.raises(ValueError, match=r"checkpoint .*dp\.pth does not fit RTNet"):
        load_weights(rtnet, tmp_path / "dp.pth")
    assert all(torch.equal(v, rtnet.state_dict()[k]) for k, v in before.items())  # nothing loaded
    torch.save({"state_dict": {f"module.{k}": v for k, v in rtnet.state_dict().items()}}, tmp_path / "tiny.pth")
    with pytest.raises(ValueError, match=r"tiny\.pth does not fit RTNet: .*shape mismatch"):  # tiny into full
        load_weights(full_on_meta(), tmp_path / "tiny.pth")
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"broken\.pth"):
        load_weights(rtnet, tmp_path / "broken.pth")


def test_unknown_builder_arguments_are_refused():
    with pytest.raises(ValueError, match=r"rtnet has no argument\(s\) \['stream'\]"):
        build("rtnet", "tiny", stream={})
    with pytest.raises(ValueError, match="one mask channel"):
        build("rtnet", "tiny", num_classes=2)
    with pytest.raises(ValueError, match="row_pairing must be one of"):
        build("rtnet", "tiny", row_pairing="sideways")
