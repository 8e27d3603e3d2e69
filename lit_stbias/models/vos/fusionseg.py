"""FusionSeg as the paper measures it: the release's ``twostream_deeplabv3plus_resnet101``.

Two ResNet-101 streams (appearance on the RGB frame, motion on the flow image; output stride 16, i.e. ``layer4``
dilated) run side by side. With ``fuse_early`` (the release's DAVIS configuration,
``configs/twostreamv3plus_davis.json``) the streams meet in the backbone: ``backbone.sensor_fusion.layer1``
and ``.layer4`` (1x1 convolutions over the concatenated appearance and motion features) feed a DeepLabv3+ head
(``classifier``: ASPP on the fused ``layer4``, skip from the fused ``layer1``). The backbone also holds
``sensor_fusion.layer2`` and ``.layer3``, which the release builds but never uses; they are kept (the
published checkpoint has them) and frozen. Without ``fuse_early`` the head fuses instead: the ``layer1``
features and the two streams' ASPP outputs (``classifier.sensor_fusion.low_level`` / ``.out``).

Output: the release returns (B, num_classes, H, W) logits resized to the input (bilinear, align_corners
False). With its 2 classes (background, foreground) this model returns their difference, logit 1 - logit 0:
``sigmoid`` of it is exactly the release's softmax foreground probability. With ``num_classes=1`` the single
logit is returned as it is.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.segmentation.deeplabv3 import ASPP

from lit_stbias.models.registry import register
from lit_stbias.models.vos.common import (
    RESNET101,
    RESNET_TINY,
    ResNetStream,
    check_arguments,
    declare_two_stream,
    freeze_unused,
)

STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")
FUSED = {"layer1": "low_level", "layer4": "out"}  # the stages DeepLabv3+ reads, by the head's names for them


def _kaiming(module: nn.Module) -> None:
    """The release's DeepLabv3+ head initialisation (convolutions Kaiming-normal, batch norms 1 and 0)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


class TwoStreamBackbone(nn.Module):
    """Appearance and motion ResNet streams in lockstep, fused at ``layer1`` and ``layer4`` (``fuse_early``)."""

    def __init__(self, stream: dict, *, fuse_early: bool = True) -> None:
        super().__init__()
        self.app_stream = ResNetStream(**stream, dilate_last=True)
        self.mot_stream = ResNetStream(**stream, dilate_last=True)
        self.fuse_early = fuse_early
        if fuse_early:
            channels = self.app_stream.out_channels[1:]
            self.sensor_fusion = nn.ModuleDict(
                {f"layer{k}": nn.Conv2d(2 * c, c, kernel_size=1) for k, c in enumerate(channels, start=1)}
            )
            freeze_unused(self.sensor_fusion.layer2, self.sensor_fusion.layer3)

    def forward(self, rgb: Tensor, flow: Tensor) -> dict[str, Tensor | list[Tensor]]:
        """``{"low_level": layer1, "out": layer4}``, each fused (``fuse_early``) or an [app, mot] pair."""
        out: dict[str, Tensor | list[Tensor]] = {}
        app, mot = rgb, flow
        for name, app_module in self.app_stream.named_children():
            app, mot = app_module(app), self.mot_stream.get_submodule(name)(mot)
            if name in FUSED:
                both = [app, mot]
                out[FUSED[name]] = self.sensor_fusion[name](torch.cat(both, dim=1)) if self.fuse_early else both
        return out


class DeepLabHeadV3Plus(nn.Module):
    """The release's DeepLabv3+ head: ASPP on the deep features, upsampled onto the projected low-level ones.

    Without ``fuse_early`` it fuses the two streams itself: their ``layer1`` features by a 1x1 convolution, their
    ``layer4`` features after ASPP (each stream through the same ASPP) by another.
    """

    def __init__(self, in_channels: int, low_level_channels: int, num_classes: int, atrous_rates: Sequence[int],
                 *, aspp_channels: int = 256, project_channels: int = 48, fuse_early: bool = True) -> None:
        super().__init__()
        self.project = nn.Sequential(
            nn.Conv2d(low_level_channels, project_channels, 1, bias=False),
            nn.BatchNorm2d(project_channels),
            nn.ReLU(inplace=True),
        )
        self.aspp = ASPP(in_channels, atrous_rates, out_channels=aspp_channels)
        self.aspp.project[-1].p = 0.1  # the release's ASPP dropout (torchvision's is 0.5)
        self.classifier = nn.Sequential(
            nn.Conv2d(project_channels + aspp_channels, aspp_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(aspp_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(aspp_channels, num_classes, 1),
        )
        _kaiming(self)
        self.fuse_early = fuse_early
        if not fuse_early:
            self.sensor_fusion = nn.ModuleDict({
                "low_level": nn.Conv2d(2 * low_level_channels, low_level_channels, 1),
                "out": nn.Conv2d(2 * aspp_channels, aspp_channels, 1),
            })

    def forward(self, features: dict[str, Tensor | list[Tensor]]) -> Tensor:
        low_level, deep = features["low_level"], features["out"]
        if self.fuse_early:
            deep = self.aspp(deep)
        else:
            low_level = self.sensor_fusion["low_level"](torch.cat(low_level, dim=1))
            deep = self.sensor_fusion["out"](torch.cat([self.aspp(x) for x in deep], dim=1))
        low_level = self.project(low_level)
        deep = F.interpolate(deep, size=low_level.shape[2:], mode="bilinear", align_corners=False)
        return self.classifier(torch.cat([low_level, deep], dim=1))


class FusionSeg(nn.Module):
    """The release's two-stream DeepLabv3+ (``backbone`` + ``classifier``), called as ``model(rgb, flow_image)``.

    Returns (B, 1, H, W) foreground logits at the input size (see the module docstring for how they relate to
    the release's two-class output).
    """

    def __init__(self, *, num_classes: int = 2, output_stride: int = 16, fuse_early: bool = True,
                 stream: dict | None = None, aspp_channels: int = 256, project_channels: int = 48) -> None:
        super().__init__()
        if num_classes not in (1, 2):
            raise ValueError(f"FusionSeg segments one object: num_classes must be 1 or 2 (the release's), "
                             f"got {num_classes}.")
        if output_stride != 16:
            raise ValueError(f"only output stride 16 is implemented (the published FusionSeg's), got {output_stride}.")
        self.backbone = TwoStreamBackbone(dict(stream or RESNET101), fuse_early=fuse_early)
        channels = self.backbone.app_stream.out_channels
        self.classifier = DeepLabHeadV3Plus(
            channels[4], channels[1], num_classes, atrous_rates=(6, 12, 18),  # the release's rates at stride 16
            aspp_channels=aspp_channels, project_channels=project_channels, fuse_early=fuse_early,
        )

    def forward(self, rgb: Tensor, flow: Tensor) -> Tensor:
        logits = self.classifier(self.backbone(rgb, flow))
        logits = F.interpolate(logits, size=rgb.shape[-2:], mode="bilinear", align_corners=False)
        return logits[:, 1:] - logits[:, :1] if logits.shape[1] == 2 else logits


def fusionseg_taps(fuse_early: bool = True) -> dict[str, str]:
    """Tap name -> module, in the release's ``stage_map`` order: each stream's ``conv1`` (before its batch norm)
    and ``layer1``..``layer4``, then the fusion layers (``layer1,sensor_fusion`` and ``layer4,sensor_fusion``)."""
    taps = {f"{s}.{stage}": f"backbone.{s}_stream.{stage}" for s in ("app", "mot") for stage in STAGES}
    fusion = "backbone.sensor_fusion.{}" if fuse_early else "classifier.sensor_fusion.{}"
    taps.update({f"fusion.{stage}": fusion.format(stage if fuse_early else head) for stage, head in FUSED.items()})
    return taps


def fusionseg(*, size: int = 480, num_classes: int = 2, fuse_early: bool = True, stream: dict | None = None,
              aspp_channels: int = 256, project_channels: int = 48, output_stride: int = 16,
              **unknown: Any) -> nn.Module:
    """Build :class:`FusionSeg` with its taps and input spec (``size``: the side the spec's examples use)."""
    check_arguments("fusionseg", unknown, ["size", "num_classes", "fuse_early", "stream", "aspp_channels",
                                           "project_channels", "output_stride"])
    model = FusionSeg(num_classes=num_classes, output_stride=output_stride, fuse_early=fuse_early, stream=stream,
                      aspp_channels=aspp_channels, project_channels=project_channels)
    return declare_two_stream(model, fusionseg_taps(fuse_early), size)


register(
    "fusionseg", fusionseg, task="vos",
    summary="FusionSeg: the release's two-stream DeepLabv3+ (ResNet-101 x2, fused at res2 and res5, stride 16)",
    presets={
        "full": dict(size=480, stream=RESNET101),
        "tiny": dict(size=64, stream=RESNET_TINY, aspp_channels=64, project_channels=16),
    },
)
