"""RTNet as the paper measures it: the release's ``Interactive`` (``models/vos_models/rtnet/interactive.py``), the
ResNeXt-50 network of "Reciprocal Transformations for Unsupervised Video Object Segmentation" (Ren et al., CVPR
2021; its ``model_RX50`` modules ``Spatial``, ``Temporal``, ``RTModule``, ``SelfModule`` and ``STAFM``).

Inputs: two frames of a video (the anchor frame and a partner frame, ``(B, 2, 3, H, W)``) and, for each frame,
its forward and backward flow images stacked on the channels (``(B, 2, 6, H, W)``), the release's ``Image`` and
``Flow`` tensors. Both frames run through each stream as one batch of 2B rows.

``spatial_net`` (appearance, on the frames) and ``temporal_net`` (motion, on the flow images, a 6-channel stem)
are ResNeXt-50 (32x4d) encoders with the release's module names (``inconv`` = conv1, bn1, relu, maxpool;
``encoder1``..``encoder4``). After every encoder stage the two frames and the two streams meet in reciprocal
transformations: per stage, attention between the two frames of a stream (``SSTransformerK``,
``TTTransformerK``), within a frame (``SselfTransformerK``, ``TselfTransformerK``) and between the streams of a
frame (``STTransformerK``), each a gated residual added to the stream. The decoder runs on the appearance stream:
five parallel dilated convolutions (``dilation0``..``dilation4``) over ``encoder4``, then ``decoder4``..
``decoder1``; at every skip level STAFM (``TransformerstafmK``) fuses the two streams' bridged features (channel
then spatial attention) and the fused map joins the decoder. ``out1``..``out4`` are its side outputs.

Output: the release returns the four sigmoid side outputs ``[out1, out2, out3, out4]``, each (2B, 1, 4h, 4w) for
both frames (h, w: the ``encoder1`` size); RTNet's own test takes ``out1`` of the first frame as the mask. This
model returns that map before its sigmoid, the anchor frame's rows ``out1[:B]`` (B, 1, H, W): for H and W
multiples of 4, ``sigmoid`` of it is exactly the release's ``out1[:B]``; other sizes are resized to the input
(bilinear, align_corners True, as RTNet's test resizes its mask).

Batches: the release splits every stage's 2B rows into the two frames by reading them item-major
(``view(B, 2, ...)``), but from ``encoder2`` on its rows are frame-major (``cat([frame1, frame2])``), so in a batch
of more than one item the transformations at stages 2-4 (and the decoder's skips) pair frames of different items.
``row_pairing="per_item"`` (the default) pairs each item's own frames at every stage, so outputs do not depend on
the batch; ``"release"`` keeps the release's reading, to reproduce its measurements at its batch size (2 by
default in ``main_vos.py``; the mask rows then mix items too, so use it for the taps only). With one item per
batch the two agree exactly.

Modules the published network holds but its mask never uses are kept (the checkpoint has them) and frozen: the
motion stream's decoder (``temporal_net.dilation*``, ``decoder*``, ``out*``; the release computes its dilation
features and drops them), the transformations that only feed the motion stream after stage 4
(``TTTransformer4``, ``TselfTransformer4``: the ``mot.layer4`` tap reads them, the decoder does not) and the side
outputs ``spatial_net.out2``..``out4``. RTNet trained them with its deep supervision of both streams' side outputs.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck

from lit_stbias.models.registry import register
from lit_stbias.models.spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec
from lit_stbias.models.vos.common import check_arguments, freeze_unused
from lit_stbias.probe import Tap

#: torchvision's ``resnext50_32x4d`` (the release's encoders)
RESNEXT50 = dict(blocks=(3, 4, 6, 3), widths=(64, 128, 256, 512), stem_width=64, groups=32, width_per_group=4)
#: the tiny preset's encoders: the same Bottleneck structure with grouped 3x3 convolutions, one block per stage
RESNEXT_TINY = dict(blocks=(1, 1, 1, 1), widths=(16, 32, 64, 128), stem_width=16, groups=4, width_per_group=16)
HEADS = (1, 2, 4, 8)  # attention heads (and scaling reduction ratios) of the transformations at stages 1..4
STAFM_RATIOS = (1, 2, 4)  # channel-attention reduction of STAFM at skip levels 1..3
LEVELS = (1, 2, 3, 4)
ROW_PAIRINGS = ("per_item", "release")
FLOW_CHANNELS = 6  # forward and backward flow image of a frame


# ------------------------------------------------------------------------------------------------ the streams


def resnext_stages(*, blocks: Sequence[int], widths: Sequence[int], stem_width: int, groups: int,
                   width_per_group: int) -> list[nn.Sequential]:
    """torchvision's ResNeXt ``layer1``..``layer4`` (its ``_make_layer`` with grouped Bottlenecks), any depth and
    widths: with :data:`RESNEXT50` the state dict is ``resnext50_32x4d``'s."""
    if len(blocks) != 4 or len(widths) != 4 or min(blocks) < 1 or min(widths) < 1:
        raise ValueError(f"a ResNeXt encoder has 4 stages of >= 1 block; got blocks={blocks}, widths={widths}.")
    stages, inplanes = [], stem_width
    for index, (planes, count) in enumerate(zip(widths, blocks)):
        stride, out = (1 if index == 0 else 2), planes * Bottleneck.expansion
        downsample = None
        if stride != 1 or inplanes != out:
            downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))
        layers = [Bottleneck(inplanes, planes, stride, downsample, groups=groups, base_width=width_per_group)]
        layers += [Bottleneck(out, planes, groups=groups, base_width=width_per_group) for _ in range(1, count)]
        stages.append(nn.Sequential(*layers))
        inplanes = out
    return stages


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation,
                                   bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class DecoderStage(nn.Module):
    """Three 3x3 convolution + batch norm + ReLU (the release's ``decoder_stage``)."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(*conv_bn_relu(in_channels, mid_channels, 3), *conv_bn_relu(mid_channels,
                                   mid_channels, 3), *conv_bn_relu(mid_channels, out_channels, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class SideOutput(nn.Module):
    """A side output (the release's ``out_block``): 3x3 convolution, resize to (H, W), 1x1 convolution to one
    mask logit (align_corners True, as the release)."""

    def __init__(self, in_channels: int, channels: int = 64) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(in_channels, channels, 3)
        self.conv2 = nn.Conv2d(channels, 1, 1)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        return self.conv2(F.interpolate(self.conv1(x), size, mode="bilinear", align_corners=True))


class Stream(nn.Module):
    """One of the release's two networks (``Spatial`` on frames, ``Temporal`` on flow images): a ResNeXt encoder,
    1x1 bridges of its ``encoder1``..``encoder3`` features to a quarter of their channels, five dilated
    convolutions over ``encoder4`` and a four-stage decoder with side outputs."""

    def __init__(self, in_channels: int, encoder: dict, side_channels: int = 64) -> None:
        super().__init__()
        stem = encoder["stem_width"]
        conv1 = nn.Conv2d(in_channels, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.inconv = nn.Sequential(conv1, nn.BatchNorm2d(stem), nn.ReLU(inplace=True),
                                    nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        layers = resnext_stages(**encoder)
        channels = [w * Bottleneck.expansion for w in encoder["widths"]]
        bridged = [c // 4 for c in channels]  # 64, 128, 256, 512 in the published network
        for level, layer in zip(LEVELS, layers):
            self.add_module(f"encoder{level}", layer)
            if level < 4:
                self.add_module(f"bridge{level}", conv_bn_relu(channels[level - 1], bridged[level - 1]))
        for index, rate in enumerate((None, 1, 2, 4, 8)):  # a 1x1 branch and 3x3 branches at four dilations
            kernel = 1 if rate is None else 3
            self.add_module(f"dilation{index}", conv_bn_relu(channels[3], bridged[3], kernel, rate or 1))
        d1, d2, d3, d4 = bridged
        self.decoder4 = DecoderStage(5 * d4, d4, d3)
        self.decoder3 = DecoderStage(2 * d3, d3, d2)
        self.decoder2 = DecoderStage(2 * d2, d2, d1)
        self.decoder1 = DecoderStage(2 * d1, d1, d1)
        for level, c in zip((4, 3, 2, 1), (d3, d2, d1, d1)):
            self.add_module(f"out{level}", SideOutput(c, side_channels))
        for m in [conv1, *layers]:  # the encoder's initialisation (torchvision's)
            for module in m.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        self.bridged = bridged

    def dilated(self, x: Tensor) -> Tensor:
        """The five dilated branches over ``encoder4`` features, concatenated (the decoder's input)."""
        return torch.cat([self.get_submodule(f"dilation{i}")(x) for i in range(5)], dim=1)


# ------------------------------------------------------------------------------------ reciprocal transformations


class Attention(nn.Module):
    """Multi-head attention over positions (the release's ``RTrans``; ``pooled``: ``OldRTrans``, which attends at
    half resolution after a 3x3 max-pool and resizes back). As the release computes it, the output at key
    position j is ``sum_i v_i * softmax_j(q_i . k_j / sqrt(d))``: the values are weighted by the attention of
    every query position to j."""

    def __init__(self, channels: int, heads: int, pooled: bool = False) -> None:
        super().__init__()
        self.heads, self.pooled = heads, pooled
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        size = q.shape[-2:]
        if self.pooled:
            q, k, v = (F.max_pool2d(x, kernel_size=3, stride=2, padding=1) for x in (q, k, v))
        b, c, h, w = q.shape
        d = c // self.heads
        query = self.query(q).view(b, self.heads, d, h * w).transpose(2, 3)
        key = self.key(k).view(b, self.heads, d, h * w)
        value = self.value(v).view(b, self.heads, d, h * w)
        attention = torch.softmax(query @ key / math.sqrt(d), dim=-1)
        out = (value @ attention).view(b, c, h, w)
        return F.interpolate(out, size, mode="bilinear", align_corners=True) if self.pooled else out


class PairScaling(nn.Module):
    """Channel scaling of two feature maps from their joint global average (the release's ``RScaling``)."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(2 * channels, channels // ratio, 1)
        self.fc2 = nn.Conv2d(channels // ratio, 2 * channels, 1)

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(torch.cat([x, y], dim=1), 1)))))
        sx, sy = scale.chunk(2, dim=1)
        return x * sx + x, y * sy + y


class PairGating(nn.Module):
    """A spatial gate for each of two feature maps from both (the release's ``RGating``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(2 * channels, 2, 1), nn.Sigmoid())

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        gate = self.conv(torch.cat([x, y], dim=1))
        return x * gate[:, :1] + x, y * gate[:, 1:] + y


class SelfScaling(nn.Module):
    """Channel scaling of one feature map from its global average (the release's ``SelfScaling``)."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // ratio, 1)
        self.fc2 = nn.Conv2d(channels // ratio, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))) + x


class SelfGating(nn.Module):
    """A spatial gate of one feature map (the release's ``SelfGating``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.conv(x) + x


class RTModule(nn.Module):
    """Reciprocal transformation of two feature maps (the release's ``RTModule``): joint scaling, ``x`` attends
    to ``y``, then ``y`` to the new ``x`` (with a second attention when ``cross_stream``, one shared otherwise),
    then joint gating. Returns the transformed pair."""

    def __init__(self, channels: int, heads: int, cross_stream: bool, pooled: bool = False) -> None:
        super().__init__()
        self.cross_stream = cross_stream
        self.scaling = PairScaling(channels, heads)
        self.transformation1 = Attention(channels, heads, pooled)
        if cross_stream:
            self.transformation2 = Attention(channels, heads, pooled)
        self.gating = PairGating(channels)

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        x, y = self.scaling(x, y)
        x = self.transformation1(x, y, y)
        y = (self.transformation2 if self.cross_stream else self.transformation1)(y, x, x)
        return self.gating(x, y)


class SelfModule(nn.Module):
    """Self transformation of one feature map (the release's ``SelfModule``): scaling, self-attention, gating."""

    def __init__(self, channels: int, heads: int, pooled: bool = False) -> None:
        super().__init__()
        self.scaling = SelfScaling(channels, heads)
        self.transformation = Attention(channels, heads, pooled)
        self.gating = SelfGating(channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.scaling(x)
        return self.gating(self.transformation(x, x, x))


class ChannelAttention(nn.Module):
    """STAFM's channel attention: a channel weighting ``a`` from both maps; appearance * a, motion * (1 - a)."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(2 * channels, channels // ratio, 1)
        self.fc2 = nn.Conv2d(channels // ratio, channels, 1)

    def forward(self, app: Tensor, mot: Tensor) -> tuple[Tensor, Tensor]:
        a = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(torch.cat([app, mot], dim=1), 1)))))
        return app * a, mot * (1 - a)


class SpatialAttention(nn.Module):
    """STAFM's spatial attention: a map ``s`` from each stream's channel mean and maximum (7x7 convolution);
    the fusion is appearance * s + motion * (1 - s)."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, app: Tensor, mot: Tensor) -> Tensor:
        stats = [app.mean(1, keepdim=True), app.amax(1, keepdim=True), mot.mean(1, keepdim=True),
                 mot.amax(1, keepdim=True)]
        s = torch.sigmoid(self.conv1(torch.cat(stats, dim=1)))
        return app * s + mot * (1 - s)


class STAFM(nn.Module):
    """Spatio-temporal attentive fusion of the two streams' bridged features (the release's ``STAFM``)."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, ratio)
        self.spatial = SpatialAttention()

    def forward(self, app: Tensor, mot: Tensor) -> Tensor:
        return self.spatial(*self.channel(app, mot))


# ---------------------------------------------------------------------------------------------------- the network


class RTNet(nn.Module):
    """The release's RTNet ``Interactive`` (ResNeXt-50), called as ``model(frames, flows)``.

    ``frames`` (B, 2, 3, H, W): the anchor frame and its partner frame; ``flows`` (B, 2, 6, H, W): each frame's
    forward then backward flow image. Returns the anchor frame's (B, 1, H, W) mask logits (see the module
    docstring for how they relate to the release's sigmoid side outputs).
    """

    def __init__(self, *, encoder: dict | None = None, side_channels: int = 64, row_pairing: str = "per_item") -> None:
        super().__init__()
        if row_pairing not in ROW_PAIRINGS:
            raise ValueError(f"row_pairing must be one of {list(ROW_PAIRINGS)}, got {row_pairing!r}.")
        encoder = dict(encoder or RESNEXT50)
        self.row_pairing = row_pairing
        self.spatial_net = Stream(3, encoder, side_channels)
        self.temporal_net = Stream(FLOW_CHANNELS, encoder, side_channels)
        channels = [w * Bottleneck.expansion for w in encoder["widths"]]
        for kind, cross_stream in (("SS", False), ("ST", True)):
            for level, c, h in zip(LEVELS, channels, HEADS):
                self.add_module(f"{kind}Transformer{level}", RTModule(c, h, cross_stream, pooled=level == 1))
        for level, c, h in zip(LEVELS, channels, HEADS):
            self.add_module(f"SselfTransformer{level}", SelfModule(c, h, pooled=level == 1))
        for level, c, h in zip(LEVELS, channels, HEADS):
            self.add_module(f"TTTransformer{level}", RTModule(c, h, False, pooled=level == 1))
        for level, c, h in zip(LEVELS, channels, HEADS):
            self.add_module(f"TselfTransformer{level}", SelfModule(c, h, pooled=level == 1))
        bridged = self.spatial_net.bridged
        for level in (3, 2, 1):
            self.add_module(f"Transformerstafm{level}", STAFM(bridged[level - 1], STAFM_RATIOS[level - 1]))
        # each stream's 2B rows after the reciprocal transformations of a stage, as tap points (no weights)
        self.app_reciprocal = nn.ModuleDict({f"layer{level}": nn.Identity() for level in LEVELS})
        self.mot_reciprocal = nn.ModuleDict({f"layer{level}": nn.Identity() for level in LEVELS})
        unused = [getattr(self.temporal_net, f"{part}{i}") for part, ids in
                  (("dilation", range(5)), ("decoder", LEVELS), ("out", LEVELS)) for i in ids]
        unused += [self.TTTransformer4, self.TselfTransformer4, self.spatial_net.out2, self.spatial_net.out3,
                   self.spatial_net.out4]
        freeze_unused(*unused)

    def split_frames(self, x: Tensor, level: int) -> tuple[Tensor, Tensor]:
        """A stage's 2B rows as (first frames, second frames). The stems' rows are item-major (the input's
        ``(B, 2)`` flattened); each stage returns frame-major rows, which ``"release"`` reads item-major again."""
        if level == 1 or self.row_pairing == "release":
            first, second = x.unflatten(0, (-1, 2)).unbind(1)
            return first, second
        first, second = x.chunk(2)
        return first, second

    def reciprocal(self, level: int, spatial: Tensor, temporal: Tensor) -> tuple[Tensor, Tensor]:
        """Stage ``level``'s reciprocal transformations: every stream and frame gets the residuals of attending
        to the other frame of its stream, to itself, and to the other stream of its frame."""
        s1, s2 = self.split_frames(spatial, level)
        t1, t2 = self.split_frames(temporal, level)
        ss, st, tt = (self.get_submodule(f"{kind}Transformer{level}") for kind in ("SS", "ST", "TT"))
        s_self, t_self = (self.get_submodule(f"{kind}Transformer{level}") for kind in ("Sself", "Tself"))
        s1_from_s, s2_from_s = ss(s1, s2)
        s1_from_t, t1_from_s = st(s1, t1)
        s2_from_t, t2_from_s = st(s2, t2)
        t1_from_t, t2_from_t = tt(t1, t2)
        spatial = torch.cat([s1_from_s + s_self(s1) + s1_from_t + s1, s2_from_s + s_self(s2) + s2_from_t + s2])
        temporal = torch.cat([t1_from_s + t_self(t1) + t1_from_t + t1, t2_from_s + t_self(t2) + t2_from_t + t2])
        return spatial, temporal

    def encode(self, frames: Tensor, flows: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Both streams' features after the reciprocal transformations of stages 1..4, each (2B, C, h, w)."""
        spatial = self.spatial_net.inconv(frames.flatten(0, 1))
        temporal = self.temporal_net.inconv(flows.flatten(0, 1))
        app, mot = [], []
        for level in LEVELS:
            spatial = self.spatial_net.get_submodule(f"encoder{level}")(spatial)
            temporal = self.temporal_net.get_submodule(f"encoder{level}")(temporal)
            spatial, temporal = self.reciprocal(level, spatial, temporal)
            app.append(self.app_reciprocal[f"layer{level}"](spatial))
            mot.append(self.mot_reciprocal[f"layer{level}"](temporal))
        return app, mot

    def decode(self, app: list[Tensor], mot: list[Tensor], side_outputs: Sequence[int] = (1,)) -> list[Tensor]:
        """The appearance decoder with STAFM fusions at the skips; the pre-sigmoid side outputs asked for, each
        (2B, 1, 4h, 4w) with (h, w) the ``encoder1`` size."""
        net, motion = self.spatial_net, self.temporal_net
        features = {4: net.decoder4(net.dilated(app[3]))}
        for level in (3, 2, 1):
            skip = app[level - 1]
            bridged_app = net.get_submodule(f"bridge{level}")(skip)
            bridged_mot = motion.get_submodule(f"bridge{level}")(mot[level - 1])
            fused = self.get_submodule(f"Transformerstafm{level}")(bridged_app, bridged_mot)
            deeper = F.interpolate(features[level + 1], skip.shape[-2:], mode="bilinear", align_corners=True)
            features[level] = net.get_submodule(f"decoder{level}")(torch.cat([deeper, fused], dim=1))
        size = (4 * app[0].shape[-2], 4 * app[0].shape[-1])
        return [net.get_submodule(f"out{level}")(features[level], size) for level in side_outputs]

    def forward(self, frames: Tensor, flows: Tensor) -> Tensor:
        (logits,) = self.decode(*self.encode(frames, flows))
        logits = logits[: frames.shape[0]]  # the anchor frames' rows
        if logits.shape[-2:] != frames.shape[-2:]:
            logits = F.interpolate(logits, frames.shape[-2:], mode="bilinear", align_corners=True)
        return logits


# -------------------------------------------------------------------------------------- inputs, taps, registration


def prepare_inputs(_model: nn.Module, args: tuple) -> tuple[Tensor, Tensor]:
    """Forward pre-hook: check ``model(frames, flows)`` (one line naming the problem), then normalise both with
    ImageNet's mean and std per image, as the release's ``ExtNormalize`` does to each frame and flow image."""
    if len(args) != 2 or not all(isinstance(x, Tensor) for x in args):
        raise ValueError("RTNet is called as model(frames, flows) with two tensors: frames (B, 2, 3, H, W) and "
                         "flows (B, 2, 6, H, W).")
    frames, flows = args
    if (frames.ndim != 5 or flows.ndim != 5 or tuple(frames.shape[1:3]) != (2, 3)
            or tuple(flows.shape[1:3]) != (2, FLOW_CHANNELS) or frames.shape[0] != flows.shape[0]
            or frames.shape[-2:] != flows.shape[-2:]):
        raise ValueError(
            f"RTNet takes frames (B, 2, 3, H, W) (the anchor frame and a partner frame) and flows (B, 2, 6, H, W) "
            f"(each frame's forward then backward flow image) with the same B, H and W; got frames "
            f"{tuple(frames.shape)} and flows {tuple(flows.shape)}."
        )
    mean = torch.tensor(IMAGENET_MEAN, dtype=frames.dtype, device=frames.device).view(1, 1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=frames.dtype, device=frames.device).view(1, 1, 3, 1, 1)
    return (frames - mean) / std, (flows - mean.repeat(1, 1, 2, 1, 1)) / std.repeat(1, 1, 2, 1, 1)


def rtnet_taps() -> dict[str, str]:
    """Tap name -> module, in the release's ``stage_map`` order: each stream's ``conv1`` (the stem convolution,
    before its batch norm), ``layer1``..``layer4`` after the stage's reciprocal transformations, then the fusions:
    ``fusion.layer1``..``layer3`` the STAFM outputs at the skips, ``fusion.layer4`` the decoder's first stage
    (``decoder4``), which the release reports as the fused ``layer4``. Every tap has 2B rows (both frames)."""
    taps = {}
    for stream, net in (("app", "spatial_net"), ("mot", "temporal_net")):
        taps[f"{stream}.conv1"] = f"{net}.inconv.0"
        taps.update({f"{stream}.layer{level}": f"{stream}_reciprocal.layer{level}" for level in LEVELS})
    taps.update({f"fusion.layer{level}": f"Transformerstafm{level}" for level in (1, 2, 3)})
    taps["fusion.layer4"] = "spatial_net.decoder4"
    return taps


def rtnet(*, size: int = 480, num_classes: int | None = None, encoder: dict | None = None, side_channels: int = 64,
          row_pairing: str = "per_item", **unknown: Any) -> nn.Module:
    """Build :class:`RTNet` with its taps and input spec (``size``: the side the spec's examples use)."""
    check_arguments("rtnet", unknown, ["size", "num_classes", "encoder", "side_channels", "row_pairing"])
    if num_classes not in (None, 1):
        raise ValueError(f"RTNet predicts one mask channel (num_classes 1), got num_classes={num_classes}.")
    model = RTNet(encoder=encoder, side_channels=side_channels, row_pairing=row_pairing)
    # not models.spec.declare: its InputNormalization normalises dim 1, here the frame axis
    model.register_forward_pre_hook(prepare_inputs)
    model.taps = {name: Tap(module) for name, module in rtnet_taps().items()}
    model.input_spec = InputSpec(2, size, two_stream=True, backward_flow=True, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return model


register(
    "rtnet", rtnet, task="vos",
    summary="RTNet: the release's ResNeXt-50 x2 over two frames and fw/bw flow, reciprocal transformations, STAFM",
    presets={
        "full": dict(size=480, encoder=RESNEXT50),
        "tiny": dict(size=64, encoder=RESNEXT_TINY, side_channels=16),
    },
)
