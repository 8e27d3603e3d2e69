"""MATNet as the paper measures it: the release's ``MATNet`` (``models/vos_models/MATNet.py``) with the published
configuration (``configs/matnet_davis.json``: ``fusion_type: gated``, the default co-attention ``coatt`` with
``tanh`` normalisation and the global gate on).

``encoder``: two ResNet-101 streams (torchvision's, output stride 32) under the release's names
(``conv1_1``/``res2_1``... for appearance, ``conv1_2``/``res2_2``... for motion); after res3, res4 and res5 a
co-attention cross connection (``coa_res3``..``coa_res5``) adds to the appearance stream the appearance features
re-aggregated by their affinity with the motion features, and to the motion stream its own self-attended
features (motion -> appearance only). Every level is then fused by a gate over the concatenated streams
(``gated_res2``..``gated_res5``: squeeze-excitation, a spatial map and a global gate, added back).
``decoder``: boundary-aware: a boundary map per level (``bdry2``..``bdry5``) is concatenated to the fused
features, which a global convolution (``GC``) and refinement blocks (``RF4``..``RF2``) decode to a mask
(``pred2``) at stride 4.

Output: the release returns ``sigmoid(resize(pred2, 473 x 473))``, whatever the input size. This model returns
the pre-sigmoid ``resize(pred2, H x W)`` at the input size (bilinear, align_corners False, the same
interpolation): for a 473 x 473 input, ``sigmoid`` of it is the release's mask. The release's boundary side
outputs (``concat``, ``pred3``..``pred5``) take no part in the mask and are not computed.

Modules the release builds but never uses are kept (its checkpoints have them) and frozen: the co-attention's
``bottolneck1``/``bottolneck2``/``bna``/``bnb``, each refinement block's ``convFS1`` and ``pdc.block2``/``block3``
(the release's pyramid applies ``block1`` three times), and ``pred3``..``pred5`` and ``concat``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_stbias.models.registry import register
from lit_stbias.models.vos.common import (
    RESNET101,
    RESNET_TINY,
    ResNetStream,
    check_arguments,
    declare_two_stream,
    freeze_unused,
)

CROSS_LEVELS = (3, 4, 5)  # res3..res5 carry a co-attention cross connection
LEVELS = (2, 3, 4, 5)  # res2..res5 are fused and decoded


class CoAttention(nn.Module):
    """The release's co-attention cross connection (``CoAttention``, ``coatt`` with ``tanh``), five cascades.

    Returns ``(Za, Zb, Qa, Qb)`` as the release does; the encoder keeps ``Zb`` (appearance features re-weighted by
    the affinity with motion) for the appearance stream and ``Qb`` (motion, self-attended) for the motion stream.
    """

    def __init__(self, channels: int, cascades: int = 5) -> None:
        super().__init__()
        low = channels // 16
        self.cascades = cascades
        self.proja = nn.Conv2d(channels, low, kernel_size=1)
        self.projb = nn.Conv2d(channels, low, kernel_size=1)
        # built by the release (and in its checkpoints) but never used
        self.bottolneck1 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(True))
        self.bottolneck2 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(True))
        self.proj1 = nn.Conv2d(channels, 1, kernel_size=1)
        self.proj2 = nn.Conv2d(channels, 1, kernel_size=1)
        self.bna = nn.BatchNorm2d(channels)
        self.bnb = nn.BatchNorm2d(channels)
        freeze_unused(self.bottolneck1, self.bottolneck2, self.bna, self.bnb)

    @staticmethod
    def _spatial_softmax(logits: Tensor, x: Tensor) -> Tensor:
        """``x`` weighted by a softmax over all positions of the one-channel map ``logits``."""
        return F.softmax(logits.flatten(1), dim=1).view_as(logits) * x

    def self_attention(self, qa: Tensor, qb: Tensor) -> tuple[Tensor, Tensor]:
        return self._spatial_softmax(self.proj1(qa), qa), self._spatial_softmax(self.proj2(qb), qb)

    def co_attention(self, qa: Tensor, qb: Tensor) -> tuple[Tensor, Tensor]:
        """``Za`` = motion features gathered by affinity, ``Zb`` = appearance features gathered by affinity,
        each L2-normalised over channels. Affinity: tanh of the low-dimensional projections' dot products."""
        affinity = torch.tanh(torch.bmm(self.projb(qb).flatten(2).transpose(1, 2), self.proja(qa).flatten(2)))
        za = torch.bmm(qb.flatten(2), affinity).view_as(qa)
        zb = torch.bmm(qa.flatten(2), affinity.transpose(1, 2)).view_as(qb)
        return F.normalize(za), F.normalize(zb)

    def forward(self, qa: Tensor, qb: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        pa, pb = qa, qb
        for _ in range(self.cascades - 1):
            sa, sb = self.self_attention(pa, pb)
            _, zb = self.co_attention(sa, sb)
            pa, pb = F.relu(zb + pa), F.relu(sb + pb)
        sa, sb = self.self_attention(pa, pb)
        za, zb = self.co_attention(sa, sb)
        return za, zb, sa, sb


class BasicConv(nn.Module):
    """Convolution + batch norm (the release's ``BasicConv`` as the gate uses it: no bias, no ReLU)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.01)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class Gated(nn.Module):
    """The release's gated fusion of the concatenated streams: ``U + g * (s * (e * U))`` with ``e`` a channel
    excitation, ``s`` a spatial map from the channel maximum and ``g`` a global gate (``use_global``)."""

    def __init__(self, channels: int, reduction: int = 16, use_global: bool = True) -> None:
        super().__init__()
        self.use_global = use_global
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.excitation_1 = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(inplace=True))
        self.excitation_2 = nn.Sequential(nn.Linear(channels // reduction, channels), nn.Sigmoid())
        self.global_attention = nn.Sequential(nn.Linear(channels // reduction, 1), nn.Sigmoid())
        self.spatial = BasicConv(1, 1, kernel_size=7)
        if not use_global:
            freeze_unused(self.global_attention)

    def forward(self, u: Tensor) -> Tensor:
        squeezed = self.excitation_1(self.avg_pool(u).flatten(1))
        excited = self.excitation_2(squeezed)[:, :, None, None] * u
        v = self.spatial(excited.amax(dim=1, keepdim=True)) * excited
        if self.use_global:
            v = self.global_attention(squeezed)[:, :, None, None] * v
        return u + v


class Encoder(nn.Module):
    """Both streams with co-attention at res3..res5 and gated fusion at res2..res5 (the release's names)."""

    def __init__(self, stream: dict, *, use_global: bool = True) -> None:
        super().__init__()
        for index in (1, 2):  # 1: appearance, 2: motion (the release's suffixes)
            resnet = ResNetStream(**stream)
            for name, module in (("conv1", resnet.conv1), ("bn1", resnet.bn1), ("relu", resnet.relu),
                                 ("maxpool", resnet.maxpool)):
                self.add_module(f"{name}_{index}", module)
            for level in LEVELS:
                self.add_module(f"res{level}_{index}", resnet.get_submodule(f"layer{level - 1}"))
        channels = dict(zip(LEVELS, resnet.out_channels[1:]))
        for level in LEVELS:
            self.add_module(f"gated_res{level}", Gated(2 * channels[level], use_global=use_global))
        for level in CROSS_LEVELS:
            self.add_module(f"coa_res{level}", CoAttention(channels[level]))
        # each stream after its cross connection, as tap points (no weights)
        self.app_cross = nn.ModuleDict({f"layer{level - 1}": nn.Identity() for level in CROSS_LEVELS})
        self.mot_cross = nn.ModuleDict({f"layer{level - 1}": nn.Identity() for level in CROSS_LEVELS})
        self.channels = [2 * channels[level] for level in LEVELS]

    def forward(self, rgb: Tensor, flow: Tensor) -> list[Tensor]:
        """The fused features of res2..res5."""
        app = self.res2_1(self.maxpool_1(self.relu_1(self.bn1_1(self.conv1_1(rgb)))))
        mot = self.res2_2(self.maxpool_2(self.relu_2(self.bn1_2(self.conv1_2(flow)))))
        levels = [(app, mot)]
        for level in CROSS_LEVELS:
            app = self.get_submodule(f"res{level}_1")(app)
            mot = self.get_submodule(f"res{level}_2")(mot)
            _, zb, _, qb = self.get_submodule(f"coa_res{level}")(app, mot)
            app = self.app_cross[f"layer{level - 1}"](F.relu(zb + app))
            mot = self.mot_cross[f"layer{level - 1}"](F.relu(qb + mot))
            levels.append((app, mot))
        return [self.get_submodule(f"gated_res{level}")(torch.cat(pair, dim=1)) for level, pair in zip(LEVELS, levels)]


class BoundaryModule(nn.Module):
    """A one-channel boundary map from one level's fused features."""

    def __init__(self, in_channels: int, hidden: int = 64) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(hidden, 1, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.conv1(self.bn1(x)))
        return self.conv3(self.relu(self.conv2(self.bn2(x))))


class GC(nn.Module):
    """Global convolution: a 7x1 then 1x7 branch plus a 1x7 then 7x1 branch."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int = 256, k: int = 7) -> None:
        super().__init__()
        self.conv_l1 = nn.Conv2d(in_channels, mid_channels, kernel_size=(k, 1), padding=(k // 2, 0))
        self.conv_l2 = nn.Conv2d(mid_channels, out_channels, kernel_size=(1, k), padding=(0, k // 2))
        self.conv_r1 = nn.Conv2d(in_channels, mid_channels, kernel_size=(1, k), padding=(0, k // 2))
        self.conv_r2 = nn.Conv2d(mid_channels, out_channels, kernel_size=(k, 1), padding=(k // 2, 0))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_l2(self.conv_l1(x)) + self.conv_r2(self.conv_r1(x))


class AtrousBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, rate: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, dilation=rate, padding=rate)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class PyramidDilationConv(nn.Module):
    """A 1x1 branch and dilated 3x3 branches, concatenated and batch-normed. As in the release, the rate-3 branch
    (``block1``) fills all three dilated slots; ``block2`` and ``block3`` (rates 5 and 7) go unused."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block0 = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.block1 = AtrousBlock(in_channels, out_channels, 3)
        self.block2 = AtrousBlock(in_channels, out_channels, 5)
        self.block3 = AtrousBlock(in_channels, out_channels, 7)
        self.bn = nn.BatchNorm2d(out_channels * 4)
        freeze_unused(self.block2, self.block3)

    def forward(self, x: Tensor) -> Tensor:
        dilated = self.block1(x)
        return self.bn(torch.cat([self.block0(x), dilated, dilated, dilated], dim=1))


class Refine(nn.Module):
    """Refinement block: the level's features (pyramid + residual) plus the upsampled coarser mask features."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.convFS1 = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1)  # unused, as in the release
        self.convFS2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.convFS3 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.convMM1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.convMM2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.pdc = PyramidDilationConv(in_channels, channels // 4)
        freeze_unused(self.convFS1)

    def forward(self, f: Tensor, coarser: Tensor) -> Tensor:
        s = self.pdc(f)
        s = s + self.convFS3(F.relu(self.convFS2(F.relu(s))))
        m = s + F.interpolate(coarser, size=s.shape[2:], mode="bilinear", align_corners=False)
        return m + self.convMM2(F.relu(self.convMM1(F.relu(m))))


class Decoder(nn.Module):
    """Boundary-aware decoder over the fused res2..res5 features; returns the stride-4 mask logits."""

    def __init__(self, channels: list[int], *, mdim: int = 256, boundary_channels: int = 64) -> None:
        super().__init__()
        c2, c3, c4, c5 = channels
        self.GC = GC(c5 + 1, mdim, mid_channels=mdim)
        self.convG1 = nn.Conv2d(mdim, mdim, kernel_size=3, padding=1)
        self.convG2 = nn.Conv2d(mdim, mdim, kernel_size=3, padding=1)
        self.RF4 = Refine(c4 + 1, mdim)
        self.RF3 = Refine(c3 + 1, mdim)
        self.RF2 = Refine(c2 + 1, mdim)
        for level in (5, 4, 3, 2):
            self.add_module(f"pred{level}", nn.Conv2d(mdim, 1, kernel_size=3, padding=1))
        self.concat = nn.Conv2d(4, 1, kernel_size=3, padding=1)
        for level, c in zip((5, 4, 3, 2), (c5, c4, c3, c2)):
            self.add_module(f"bdry{level}", BoundaryModule(c, boundary_channels))
        for m in self.modules():  # the release's decoder initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        freeze_unused(self.pred5, self.pred4, self.pred3, self.concat)

    def forward(self, r2: Tensor, r3: Tensor, r4: Tensor, r5: Tensor) -> Tensor:
        r5, r4, r3, r2 = (torch.cat([r, self.get_submodule(f"bdry{level}")(r)], dim=1)
                          for level, r in zip((5, 4, 3, 2), (r5, r4, r3, r2)))
        x = self.GC(r5)
        m5 = x + self.convG2(F.relu(self.convG1(F.relu(x))))
        m2 = self.RF2(r2, self.RF3(r3, self.RF4(r4, m5)))
        return self.pred2(F.relu(m2))


class MATNet(nn.Module):
    """The release's MATNet (``encoder`` + ``decoder``), called as ``model(rgb, flow_image)``.

    Returns (B, 1, H, W) pre-sigmoid mask logits at the input size (see the module docstring).
    """

    def __init__(self, *, stream: dict | None = None, mdim: int = 256, boundary_channels: int = 64,
                 use_global: bool = True) -> None:
        super().__init__()
        self.encoder = Encoder(dict(stream or RESNET101), use_global=use_global)
        self.decoder = Decoder(self.encoder.channels, mdim=mdim, boundary_channels=boundary_channels)

    def forward(self, rgb: Tensor, flow: Tensor) -> Tensor:
        logits = self.decoder(*self.encoder(rgb, flow))
        return F.interpolate(logits, size=rgb.shape[-2:], mode="bilinear", align_corners=False)


def matnet_taps() -> dict[str, str]:
    """Tap name -> module, in the release's ``stage_map`` order: each stream's ``conv1`` (before its batch norm),
    ``layer1`` (res2) and ``layer2``..``layer4`` after their cross connections, then the four gated fusions."""
    taps = {}
    for stream, index in (("app", 1), ("mot", 2)):
        taps[f"{stream}.conv1"] = f"encoder.conv1_{index}"
        taps[f"{stream}.layer1"] = f"encoder.res2_{index}"
        for level in CROSS_LEVELS:
            taps[f"{stream}.layer{level - 1}"] = f"encoder.{stream}_cross.layer{level - 1}"
    taps.update({f"fusion.layer{level - 1}": f"encoder.gated_res{level}" for level in LEVELS})
    return taps


def matnet(*, size: int = 480, num_classes: int | None = None, stream: dict | None = None, mdim: int = 256,
           boundary_channels: int = 64, use_global: bool = True, **unknown: Any) -> nn.Module:
    """Build :class:`MATNet` with its taps and input spec (``size``: the side the spec's examples use)."""
    check_arguments("matnet", unknown, ["size", "num_classes", "stream", "mdim", "boundary_channels", "use_global"])
    if num_classes not in (None, 1):
        raise ValueError(f"MATNet predicts one mask channel (num_classes 1), got num_classes={num_classes}.")
    model = MATNet(stream=stream, mdim=mdim, boundary_channels=boundary_channels, use_global=use_global)
    return declare_two_stream(model, matnet_taps(), size)


register(
    "matnet", matnet, task="vos",
    summary="MATNet: the release's two ResNet-101 streams, co-attention at res3-res5, gated fusion, boundary decoder",
    presets={
        "full": dict(size=480, stream=RESNET101),
        "tiny": dict(size=64, stream=RESNET_TINY, mdim=32, boundary_channels=16),
    },
)
