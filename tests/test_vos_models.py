"""The published VOS networks (FusionSeg, MATNet): the release's state dicts, taps, outputs and checkpoint formats.

The release's key sets and shapes are recorded here as data, read from YorkUCVIL/Static-Dynamic-Interpretability
(``models/vos_models``): both networks hold two torchvision ResNet-101s (keys from torchvision itself, under the
release's module names) plus the layers listed below.
"""
from __future__ import annotations

import functools
import math
import re

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from lit_stbias.models import CheckpointError, build, load_weights
from lit_stbias.models.vos import ResNetStream, release_stage
from lit_stbias.models.vos.common import RESNET101
from lit_stbias.probe import capture

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


# ------------------------------------------------------------------------------------------- the release's keys


def bn(prefix: str, c: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def conv(prefix: str, out: int, inp: int, kh: int, kw: int | None = None, bias: bool = True) -> dict[str, tuple]:
    keys = {f"{prefix}.weight": (out, inp, kh, kh if kw is None else kw)}
    return {**keys, f"{prefix}.bias": (out,)} if bias else keys


def linear(prefix: str, out: int, inp: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (out, inp), f"{prefix}.bias": (out,)}


@functools.lru_cache(maxsize=None)
def torchvision_resnet101_shapes() -> dict[str, tuple]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in torchvision.models.resnet101().state_dict().items()}


def resnet101_keys(rename: dict[str, str]) -> dict[str, tuple]:
    """torchvision's ResNet-101 without ``fc``, its top-level modules renamed (``conv1`` -> ``conv1_1`` ...)."""
    keys = {}
    for key, value in torchvision_resnet101_shapes().items():
        top, _, rest = key.partition(".")
        if top != "fc":
            keys[f"{rename[top]}.{rest}"] = value
    return keys


def release_fusionseg_keys(fuse_early: bool = True, num_classes: int = 2) -> dict[str, tuple]:
    """``twostream_deeplabv3plus_resnet101``: ``DeepLabV3(TwoStream backbone, DeepLabHeadV3Plus)`` at stride 16."""
    keys = {}
    for stream in ("app_stream", "mot_stream"):  # IntermediateLayerGetter over the ResNet up to layer4
        names = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
        keys.update(resnet101_keys({n: f"backbone.{stream}.{n}" for n in names}))
    if fuse_early:  # TwoStream.sensor_fusion: all four stages, though only layer1 and layer4 are used
        for k, c in zip(range(1, 5), (256, 512, 1024, 2048)):
            keys.update(conv(f"backbone.sensor_fusion.layer{k}", c, 2 * c, 1))
    head = "classifier"
    keys.update(conv(f"{head}.project.0", 48, 256, 1, bias=False))
    keys.update(bn(f"{head}.project.1", 48))
    keys.update(conv(f"{head}.aspp.convs.0.0", 256, 2048, 1, bias=False))
    keys.update(bn(f"{head}.aspp.convs.0.1", 256))
    for i in (1, 2, 3):  # ASPPConv: 3x3 dilated
        keys.update(conv(f"{head}.aspp.convs.{i}.0", 256, 2048, 3, bias=False))
        keys.update(bn(f"{head}.aspp.convs.{i}.1", 256))
    keys.update(conv(f"{head}.aspp.convs.4.1", 256, 2048, 1, bias=False))  # ASPPPooling
    keys.update(bn(f"{head}.aspp.convs.4.2", 256))
    keys.update(conv(f"{head}.aspp.project.0", 256, 1280, 1, bias=False))
    keys.update(bn(f"{head}.aspp.project.1", 256))
    keys.update(conv(f"{head}.classifier.0", 256, 304, 3, bias=False))
    keys.update(bn(f"{head}.classifier.1", 256))
    keys.update(conv(f"{head}.classifier.3", num_classes, 256, 1))
    if not fuse_early:  # DeepLabHeadV3Plus.sensor_fusion
        keys.update(conv(f"{head}.sensor_fusion.low_level", 256, 512, 1))
        keys.update(conv(f"{head}.sensor_fusion.out", 256, 512, 1))
    return keys


def release_matnet_keys() -> dict[str, tuple]:
    """``MATNet(Encoder, Decoder)`` with ``fusion_type: gated`` and the default ``coatt`` cross connections."""
    keys = {}
    for i in (1, 2):
        rename = {"conv1": f"encoder.conv1_{i}", "bn1": f"encoder.bn1_{i}"}
        rename.update({f"layer{k}": f"encoder.res{k + 1}_{i}" for k in range(1, 5)})
        keys.update(resnet101_keys(rename))
    for level, c in zip((2, 3, 4, 5), (512, 1024, 2048, 4096)):  # Gated(256*2), ... Gated(2048*2)
        g = f"encoder.gated_res{level}"
        keys.update(linear(f"{g}.excitation_1.0", c // 16, c))
        keys.update(linear(f"{g}.excitation_2.0", c, c // 16))
        keys.update(linear(f"{g}.global_attention.0", 1, c // 16))
        keys.update(conv(f"{g}.spatial.conv", 1, 1, 7, bias=False))
        keys.update(bn(f"{g}.spatial.bn", 1))
    for level, c in zip((3, 4, 5), (512, 1024, 2048)):  # CoAttention(channel)
        a = f"encoder.coa_res{level}"
        keys.update(conv(f"{a}.proja", c // 16, c, 1))
        keys.update(conv(f"{a}.projb", c // 16, c, 1))
        for b in ("bottolneck1", "bottolneck2"):
            keys.update(conv(f"{a}.{b}.0", c, c, 1))
            keys.update(bn(f"{a}.{b}.1", c))
        keys.update(conv(f"{a}.proj1", 1, c, 1))
        keys.update(conv(f"{a}.proj2", 1, c, 1))
        keys.update(bn(f"{a}.bna", c))
        keys.update(bn(f"{a}.bnb", c))
    d = "decoder"
    keys.update(conv(f"{d}.GC.conv_l1", 256, 4097, 7, 1))
    keys.update(conv(f"{d}.GC.conv_l2", 256, 256, 1, 7))
    keys.update(conv(f"{d}.GC.conv_r1", 256, 4097, 1, 7))
    keys.update(conv(f"{d}.GC.conv_r2", 256, 256, 7, 1))
    keys.update(conv(f"{d}.convG1", 256, 256, 3))
    keys.update(conv(f"{d}.convG2", 256, 256, 3))
    for rf, inp in (("RF4", 2049), ("RF3", 1025), ("RF2", 513)):
        keys.update(conv(f"{d}.{rf}.convFS1", 256, inp, 3))
        for name in ("convFS2", "convFS3", "convMM1", "convMM2"):
            keys.update(conv(f"{d}.{rf}.{name}", 256, 256, 3))
        keys.update(conv(f"{d}.{rf}.pdc.block0", 64, inp, 1))
        for block in ("block1", "block2", "block3"):
            keys.update(conv(f"{d}.{rf}.pdc.{block}.conv", 64, inp, 3))
        keys.update(bn(f"{d}.{rf}.pdc.bn", 256))
    for level in (5, 4, 3, 2):
        keys.update(conv(f"{d}.pred{level}", 1, 256, 3))
    keys.update(conv(f"{d}.concat", 1, 4, 3))
    for level, c in zip((5, 4, 3, 2), (4096, 2048, 1024, 512)):
        b = f"{d}.bdry{level}"
        keys.update(bn(f"{b}.bn1", c))
        keys.update(conv(f"{b}.conv1", 64, c, 3))
        keys.update(bn(f"{b}.bn2", 64))
        keys.update(conv(f"{b}.conv2", 64, 64, 3))
        keys.update(conv(f"{b}.conv3", 1, 64, 1))
    return keys


# what the release builds but its forward pass never uses (so no gradient reaches it)
RELEASE_UNUSED = {
    "fusionseg": [r"backbone\.sensor_fusion\.layer[23]\."],
    "matnet": [r"encoder\.coa_res\d\.(bottolneck[12]|bna|bnb)\.", r"decoder\.RF\d\.convFS1\.",
               r"decoder\.RF\d\.pdc\.block[23]\.", r"decoder\.pred[345]\.", r"decoder\.concat\."],
}

# the release's stage names (main_vos.py stage_map, the default stages 0..13) each network has
RELEASE_STAGES = {
    "fusionseg": [f"{s},{stream}" for stream in ("app_stream", "mot_stream")
                  for s in ("conv1", "layer1", "layer2", "layer3", "layer4")]
    + ["layer1,sensor_fusion", "layer4,sensor_fusion"],
    "matnet": [f"{s},{stream}" for stream in ("app_stream", "mot_stream")
               for s in ("conv1", "layer1", "layer2", "layer3", "layer4")]
    + [f"layer{k},sensor_fusion" for k in range(1, 5)],
}


def shapes(model: nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@functools.lru_cache(maxsize=None)
def _build_meta(name: str, options: tuple) -> nn.Module:
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        return build(name, "full", **dict(options))


def build_meta(name: str, **kwargs) -> nn.Module:
    """The full preset on the meta device, built once per test session."""
    return _build_meta(name, tuple(sorted(kwargs.items())))


# ------------------------------------------------------------------------------------ full presets = the release


@pytest.mark.parametrize("name, kwargs, expected, params_m", [
    ("fusionseg", {}, release_fusionseg_keys(), 112.39),  # configs/twostreamv3plus_davis.json: fuse_early true
    ("fusionseg", {"fuse_early": False}, release_fusionseg_keys(fuse_early=False), 101.51),
    ("matnet", {}, release_matnet_keys(), 142.69),
])
def test_full_state_dict_is_the_releases(name, kwargs, expected, params_m):
    model = build_meta(name, **kwargs)
    ours = shapes(model)
    assert sorted(set(ours) - set(expected)) == [] and sorted(set(expected) - set(ours)) == []
    assert {k: v for k, v in ours.items() if expected[k] != v} == {}
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(params_m, abs=0.005)


def test_totals_agree_with_the_references():
    """REFERENCES.md counts FusionSeg at 101.51 M / 1,302 entries and MATNet at 142.69 M / 1,547 entries. MATNet's
    match the published configuration; FusionSeg's match the release built with ``fuse_early=False``. The
    published DAVIS configuration (fuse_early true, which the release's FusionSeg taps need) has 1,306 entries."""
    assert len(release_matnet_keys()) == len(build_meta("matnet").state_dict()) == 1547
    late = build_meta("fusionseg", fuse_early=False)
    assert len(late.state_dict()) == 1302 and sum(p.numel() for p in late.parameters()) == 101_511_906
    early = build_meta("fusionseg")
    assert len(early.state_dict()) == len(release_fusionseg_keys()) == 1306
    with pytest.raises(ValueError, match="num_classes"):
        build_meta("fusionseg", num_classes=3)
    assert shapes(build_meta("fusionseg", num_classes=1))["classifier.classifier.3.weight"] == (1, 256, 1, 1)


@pytest.mark.parametrize("dilate_last", [True, False])
def test_stream_is_torchvisions_resnet(dilate_last):
    """Same weights, same input: our stream's layer4 equals torchvision's Bottleneck ResNet (FusionSeg: stride 16
    with a dilated layer4 as ``replace_stride_with_dilation=[False, False, True]``; MATNet: plain). Two blocks per
    stage keep it fast; the full depth's keys are checked above."""
    torch.manual_seed(0)
    reference = torchvision.models.resnet.ResNet(
        torchvision.models.resnet.Bottleneck, [2, 2, 2, 2], replace_stride_with_dilation=[False, False, dilate_last]
    ).eval()
    stream = ResNetStream(**{**RESNET101, "blocks": (2, 2, 2, 2)}, dilate_last=dilate_last).eval()
    stream.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = nn.Sequential(*list(reference.children())[:-2])(x)
        torch.testing.assert_close(stream(x), expected)
    assert expected.shape[-1] == (4 if dilate_last else 2)


@pytest.mark.parametrize("name", ["fusionseg", "matnet"])
def test_tiny_preset_has_the_full_networks_modules(name):
    """Same module structure: the tiny state dict is the full one with one block per stage, at smaller widths."""
    full = set(build_meta(name).state_dict())
    tiny = set(build(name, "tiny").state_dict())
    deeper_blocks = re.compile(r"\.(layer\d|res\d_\d)\.([1-9]\d*)\.")
    assert tiny == {k for k in full if not deeper_blocks.search(k)}


# -------------------------------------------------------------------------------------------- the tiny models


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return {name: build(name, "tiny").eval() for name in ("fusionseg", "matnet")}


def inputs(b=2, h=48, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g), torch.rand(b, 3, h, w, generator=g)


def normalised(x):
    return (x - IMAGENET_MEAN) / IMAGENET_STD


@pytest.mark.parametrize("name", ["fusionseg", "matnet"])
def test_uniform_call_gives_mask_logits_at_the_input_size(tiny, name):
    model = tiny[name]
    for h, w in ((48, 80), (37, 53)):
        with torch.no_grad():
            out = model(*inputs(2, h, w))
        assert out.shape == (2, 1, h, w) and torch.isfinite(out).all()
    spec = model.input_spec
    assert spec.two_stream and tuple(spec.mean) == (0.485, 0.456, 0.406) and tuple(spec.std) == (0.229, 0.224, 0.225)
    with pytest.raises(ValueError, match="same B, H and W"):
        model(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 48))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(2, 2, 32, 32), torch.rand(2, 2, 32, 32))


def test_fusionseg_output_is_the_foreground_logit_of_the_releases_two_classes(tiny):
    """sigmoid(ours) = the release's softmax foreground probability; the release resizes its logits to the input."""
    model = tiny["fusionseg"]
    rgb, flow = inputs()
    with torch.no_grad():
        ours = model(rgb, flow)
        release = model.classifier(model.backbone(normalised(rgb), normalised(flow)))  # _SimpleSegmentationModel
        release = F.interpolate(release, size=rgb.shape[-2:], mode="bilinear", align_corners=False)
    assert release.shape == (2, 2, 48, 80)
    torch.testing.assert_close(torch.sigmoid(ours[:, 0]), release.softmax(dim=1)[:, 1])

    one = build("fusionseg", "tiny", num_classes=1).eval()
    with torch.no_grad():
        logits = F.interpolate(one.classifier(one.backbone(normalised(rgb), normalised(flow))), size=(48, 80),
                               mode="bilinear", align_corners=False)
        torch.testing.assert_close(one(rgb, flow), logits)


def test_matnet_output_is_the_releases_mask_before_its_sigmoid_and_473_resize(tiny):
    # narrower than tiny: co-attention over the 60 x 60 positions of res3 is the cost at 473 x 473
    torch.manual_seed(0)
    narrow = dict(block="bottleneck", blocks=(1, 1, 1, 1), widths=(4, 4, 8, 8), stem_width=4)
    model = build("matnet", "tiny", stream=narrow, mdim=8, boundary_channels=4).eval()
    rgb, flow = inputs(1, 473, 473)
    with torch.no_grad():
        ours = model(rgb, flow)
        coarse = model.decoder(*model.encoder(normalised(rgb), normalised(flow)))  # pred2 at stride 4
        release = torch.sigmoid(F.interpolate(coarse, size=(473, 473), mode="bilinear"))  # Decoder.forward_mask
    assert coarse.shape[-1] == math.ceil(473 / 4)
    torch.testing.assert_close(torch.sigmoid(ours), release)
    rgb, flow = inputs(1, 64, 96)
    with torch.no_grad():
        assert model(rgb, flow).shape == (1, 1, 64, 96)  # at the input size, where the release returns 473 x 473


# ----------------------------------------------------------------------------------------------------- the taps


def pooled(x):
    return x.flatten(2).mean(2)  # the release's set_stage_stream: x.view(B, C, -1).mean(dim=2)


def release_fusionseg_stages(model, rgb, flow):
    """The release's ``TwoStream.forward`` bookkeeping, restated with its module names: each stream's child
    outputs except bn1/relu/maxpool, and the fused features at the return layers (layer1, layer4)."""
    out = {}
    x, y = normalised(rgb), normalised(flow)
    backbone = model.backbone
    for (name, app), (_, mot) in zip(backbone.app_stream.named_children(), backbone.mot_stream.named_children()):
        x, y = app(x), mot(y)
        if name in ("bn1", "relu", "maxpool"):
            continue
        out[f"{name},app_stream"], out[f"{name},mot_stream"] = pooled(x), pooled(y)
        if name in ("layer1", "layer4"):
            out[f"{name},sensor_fusion"] = pooled(backbone.sensor_fusion[name](torch.cat((x, y), dim=1)))
    return out


def release_matnet_stages(model, rgb, flow):
    """The release's ``Encoder.forward`` bookkeeping (``coatt``, ``gated``), restated with its module names."""
    e = model.encoder
    out = {}
    c1, c2 = e.conv1_1(normalised(rgb)), e.conv1_2(normalised(flow))
    out["conv1,app_stream"], out["conv1,mot_stream"] = pooled(c1), pooled(c2)
    r1 = e.res2_1(e.maxpool_1(e.relu_1(e.bn1_1(c1))))
    r2 = e.res2_2(e.maxpool_2(e.relu_2(e.bn1_2(c2))))
    out["layer1,app_stream"], out["layer1,mot_stream"] = pooled(r1), pooled(r2)
    fused = [e.gated_res2(torch.cat([r1, r2], dim=1))]
    for level in (3, 4, 5):
        r1 = getattr(e, f"res{level}_1")(r1)
        r2 = getattr(e, f"res{level}_2")(r2)
        _, zb, _, qb = getattr(e, f"coa_res{level}")(r1, r2)
        r1, r2 = F.relu(zb + r1), F.relu(qb + r2)
        out[f"layer{level - 1},app_stream"], out[f"layer{level - 1},mot_stream"] = pooled(r1), pooled(r2)
        fused.append(getattr(e, f"gated_res{level}")(torch.cat([r1, r2], dim=1)))
    for k, f in enumerate(fused, start=1):
        out[f"layer{k},sensor_fusion"] = pooled(f)
    return out


@pytest.mark.parametrize("name, reference", [("fusionseg", release_fusionseg_stages),
                                             ("matnet", release_matnet_stages)])
def test_each_tap_reads_the_tensor_the_release_reads(tiny, name, reference):
    model = tiny[name]
    rgb, flow = inputs()
    with torch.no_grad(), capture(model) as features:  # raises if a tap fires twice or not at all
        model(rgb, flow)
    with torch.no_grad():
        expected = reference(model, rgb, flow)
    assert [release_stage(t) for t in model.taps] == RELEASE_STAGES[name]  # in stage_map's order
    assert sorted(expected) == sorted(RELEASE_STAGES[name])
    for tap, feature in features.items():
        torch.testing.assert_close(feature, expected[release_stage(tap)], msg=tap)
    assert {t.split(".")[0] for t in model.taps} == {"app", "mot", "fusion"}  # the reports' stream groups


def test_late_fusion_fusionseg_taps_the_heads_fusions():
    """``fuse_early=False`` (not the published FusionSeg) fuses in the head; its fusion taps read those layers."""
    torch.manual_seed(0)
    model = build("fusionseg", "tiny", fuse_early=False).eval()
    assert model.taps["fusion.layer1"].module == "classifier.sensor_fusion.low_level"
    assert model.taps["fusion.layer4"].module == "classifier.sensor_fusion.out"
    with torch.no_grad(), capture(model) as features:
        out = model(*inputs())
    assert out.shape == (2, 1, 48, 80)
    assert features["fusion.layer1"].shape == (2, 64) and features["fusion.layer4"].shape == (2, 64)  # ASPP width


def test_matnet_decoder_feature_the_release_calls_layerf_is_decoder_rf2(tiny):
    """``layerf,sensor_fusion`` (outside the release's default stages) is the feature the mask is predicted from."""
    model = tiny["matnet"]
    rgb, flow = inputs()
    seen = []
    handle = model.decoder.RF2.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        out = model(rgb, flow)
        expected = F.interpolate(model.decoder.pred2(F.relu(seen[0])), size=(48, 80), mode="bilinear")
    handle.remove()
    torch.testing.assert_close(out, expected)


def test_conv1_taps_read_before_batch_norm(tiny):
    model = tiny["fusionseg"]
    rgb, flow = inputs()
    with torch.no_grad(), capture(model, ["app.conv1", "mot.conv1"]) as features:
        model(rgb, flow)
    with torch.no_grad():
        for tap, image, stream in (("app.conv1", rgb, "app_stream"), ("mot.conv1", flow, "mot_stream")):
            conv = model.backbone.get_submodule(stream).conv1  # both inputs arrive normalised
            torch.testing.assert_close(features[tap], pooled(conv(normalised(image))))


# ---------------------------------------------------------------------------------------- training and freezing


@pytest.mark.parametrize("name", ["fusionseg", "matnet"])
def test_only_the_releases_unused_layers_are_frozen(name):
    """Every trainable parameter gets a gradient from the mask; the frozen ones are exactly those the release
    builds but never uses (so DDP and optimisers work, and checkpoints keep them as published)."""
    torch.manual_seed(0)
    model = build(name, "tiny").train()
    model(*inputs(2, 32, 32)).sum().backward()
    frozen = {k for k, p in model.named_parameters() if not p.requires_grad}
    no_grad = {k for k, p in model.named_parameters() if p.requires_grad and p.grad is None}
    unused = {k for k, _ in model.named_parameters() if any(re.match(p, k) for p in RELEASE_UNUSED[name])}
    assert no_grad == set() and frozen == unused and unused


# ----------------------------------------------------------------------------------------- checkpoint formats


def outputs_equal(a, b):
    x = inputs(1, 32, 48, seed=5)
    with torch.no_grad():
        return torch.equal(a.eval()(*x), b.eval()(*x))


@pytest.mark.parametrize("name", ["fusionseg", "matnet"])
def test_saved_and_reloaded_state_dict_gives_identical_outputs(name, tmp_path):
    torch.manual_seed(1)
    source = build(name, "tiny").eval()
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    target = build(name, "tiny").eval()
    assert not outputs_equal(source, target)
    load_weights(target, tmp_path / "weights.pt")
    assert outputs_equal(source, target)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_fusionseg_release_checkpoint_loads_strictly(prefix, tmp_path):
    """The release saves ``{"model_state": ...}`` with the training state beside it (DeepLabV3Plus-Pytorch layout)."""
    torch.manual_seed(2)
    source = build("fusionseg", "tiny")
    checkpoint = {"cur_itrs": 30000, "best_score": 0.81, "model_state": {prefix + k: v for k, v in
                                                                          source.state_dict().items()},
                  "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]}}
    torch.save(checkpoint, tmp_path / "best_twostream_deeplabv3plus_resnet101_davis_os16.pth")
    target = build("fusionseg", "tiny")
    load_weights(target, tmp_path / "best_twostream_deeplabv3plus_resnet101_davis_os16.pth")
    assert outputs_equal(source, target)


def write_matnet_folder(folder, model, epoch, prefix=""):
    folder.mkdir(exist_ok=True)
    for part in ("encoder", "decoder"):
        state = getattr(model, part).state_dict()
        torch.save({prefix + k: v for k, v in state.items()}, folder / f"{part}_{epoch}.pt")


@pytest.mark.parametrize("prefix", ["", "module."])
def test_matnet_release_folder_loads_the_newest_epoch_strictly(prefix, tmp_path):
    torch.manual_seed(3)
    old, new = build("matnet", "tiny"), build("matnet", "tiny")
    folder = tmp_path / "matnet_davis"
    write_matnet_folder(folder, old, 3, prefix)
    write_matnet_folder(folder, new, 12, prefix)
    torch.save({"state": {}, "param_groups": []}, folder / "enc_opt_12.pt")  # optimiser files are ignored
    torch.save(old.encoder.state_dict(), folder / "encoder.pt")  # the release's "best" copy has no epoch
    target = build("matnet", "tiny")
    load_weights(target, folder)
    assert outputs_equal(new, target) and not outputs_equal(old, target)


def test_wrong_or_incomplete_checkpoints_are_one_clear_error(tmp_path):
    torch.manual_seed(4)
    matnet, fusionseg = build("matnet", "tiny"), build("fusionseg", "tiny")
    folder = tmp_path / "matnet"
    write_matnet_folder(folder, matnet, 7)
    before = {k: v.clone() for k, v in fusionseg.state_dict().items()}
    with pytest.raises(ValueError, match=r"checkpoint .*matnet does not fit FusionSeg: missing"):
        load_weights(fusionseg, folder)  # a MATNet checkpoint for FusionSeg
    assert all(torch.equal(v, fusionseg.state_dict()[k]) for k, v in before.items())  # nothing loaded
    torch.save({"model_state": fusionseg.state_dict()}, tmp_path / "fusionseg.pth")
    with pytest.raises(ValueError, match=r"checkpoint .*fusionseg\.pth does not fit MATNet"):
        load_weights(matnet, tmp_path / "fusionseg.pth")
    with pytest.raises(ValueError, match="shape mismatch"):  # the tiny checkpoint in the full network
        load_weights(build_meta("matnet"), folder)
    (folder / "decoder_7.pt").unlink()
    with pytest.raises(CheckpointError, match=r"decoder_7\.pt is missing"):
        load_weights(matnet, folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="holds no encoder_<epoch>.pt"):
        load_weights(matnet, empty)
    (folder / "decoder_7.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"decoder_7\.pt"):
        load_weights(matnet, folder)


def test_unknown_builder_arguments_are_refused():
    with pytest.raises(ValueError, match=r"fusionseg has no argument\(s\) \['cross'\]"):
        build("fusionseg", "tiny", cross="sideways")
    with pytest.raises(ValueError, match="matnet has no argument"):
        build("matnet", "tiny", fuse_early=False)
    with pytest.raises(ValueError, match="one mask channel"):
        build("matnet", "tiny", num_classes=2)
    with pytest.raises(ValueError, match="output stride 16"):
        build("fusionseg", "tiny", output_stride=8)
