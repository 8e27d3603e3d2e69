"""The interim ``rtnet`` body, until the release's RTNet (``Interactive``, ResNeXt-50) replaces it in ``rtnet.py``.

Not the published network: an appearance and a motion encoder (segmentation-models-pytorch ResNets) with
bidirectional sigmoid gating at every stage (each stream gates the other, after RTNet's reciprocal
transformation), fused by concatenation + 1x1 conv at encoder stages 2 and 5, and a DeepLabv3+ decoder. The
taps ``app.stageK`` / ``mot.stageK`` read a stream after its cross connection; ``fusion.stage2`` /
``fusion.stage5`` the fusions.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from segmentation_models_pytorch.base.heads import SegmentationHead
from segmentation_models_pytorch.decoders.deeplabv3.decoder import DeepLabV3PlusDecoder
from segmentation_models_pytorch.encoders import get_encoder
from torch import Tensor, nn

from lit_stbias.models.registry import register
from lit_stbias.models.spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, declare
from lit_stbias.probe import Tap

STAGES = ("stage1", "stage2", "stage3", "stage4", "stage5")
FUSED_STAGES = ("stage2", "stage5")
GATED_STREAMS = {"none": (), "motion_to_appearance": ("app",), "bidirectional": ("app", "mot")}


def resnet_stages(encoder: nn.Module) -> list[Callable[[Tensor], Tensor]]:
    """An smp ResNet encoder as five callables, so the two streams can be interleaved stage by stage:
    stem (stride 2), pool + res2 (stride 4), res3, res4, res5."""
    return [
        lambda x: encoder.relu(encoder.bn1(encoder.conv1(x))),
        lambda x: encoder.layer1(encoder.maxpool(x)),
        encoder.layer2,
        encoder.layer3,
        encoder.layer4,
    ]


class Fusion(nn.Module):
    """Concatenate appearance and motion features and mix them with a 1x1 convolution (FusionSeg)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, channels, kernel_size=1, bias=False)
        self.norm = nn.BatchNorm2d(channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, app: Tensor, mot: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(torch.cat([app, mot], dim=1))))


class CrossGate(nn.Module):
    """Re-weight one stream's features with attention computed from the other stream.

    A spatial map (1x1 conv) and a channel vector (global pool + bottleneck) from the source, both sigmoid,
    multiply the target; the product is added back, so an uninformative source leaves the target as it was.
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.spatial = nn.Conv2d(channels, 1, kernel_size=1)
        self.channel = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, target: Tensor, source: Tensor) -> Tensor:
        attention = torch.sigmoid(self.spatial(source)) * torch.sigmoid(self.channel(source))
        return target + target * attention


class TwoStreamSegmenter(nn.Module):
    """Appearance + motion encoders, cross connections, fusion at stages 2 and 5, DeepLabv3+ decoder.

    Called as ``model(rgb, flow)`` with (B, 3, H, W) each, H and W multiples of 16; returns (B, num_classes,
    H, W) mask logits.
    """

    def __init__(self, *, encoder: str = "resnet101", cross: str = "none", num_classes: int = 1,
                 decoder_channels: int = 256, atrous_rates: Sequence[int] = (12, 24, 36)) -> None:
        super().__init__()
        if cross not in GATED_STREAMS:
            raise ValueError(f"cross must be one of {list(GATED_STREAMS)}, got {cross!r}.")
        # output stride 16 (dilated res5), as DeepLabv3+ expects; weights=None: nothing is downloaded
        self.app_encoder = get_encoder(encoder, weights=None, output_stride=16)
        self.mot_encoder = get_encoder(encoder, weights=None, output_stride=16)
        channels = dict(zip(STAGES, self.app_encoder.out_channels[1:]))
        gated = GATED_STREAMS[cross]
        self.app_gates = nn.ModuleDict({s: CrossGate(channels[s]) for s in STAGES} if "app" in gated else {})
        self.mot_gates = nn.ModuleDict({s: CrossGate(channels[s]) for s in STAGES} if "mot" in gated else {})
        # identities named for the taps: each outputs exactly a stream's post-cross-connection features
        self.app = nn.ModuleDict({s: nn.Identity() for s in STAGES})
        self.mot = nn.ModuleDict({s: nn.Identity() for s in STAGES})
        self.fusion = nn.ModuleDict({s: Fusion(channels[s]) for s in FUSED_STAGES})
        self.decoder = DeepLabV3PlusDecoder(
            encoder_channels=self.app_encoder.out_channels, encoder_depth=5, out_channels=decoder_channels,
            atrous_rates=tuple(atrous_rates), output_stride=16, aspp_separable=True, aspp_dropout=0.5,
        )
        self.head = SegmentationHead(decoder_channels, num_classes, kernel_size=1, upsampling=4)

    def forward(self, rgb: Tensor, flow: Tensor) -> Tensor:
        app, mot = rgb, flow
        fused = {}
        app_stages, mot_stages = resnet_stages(self.app_encoder), resnet_stages(self.mot_encoder)
        for stage, app_stage, mot_stage in zip(STAGES, app_stages, mot_stages):
            app, mot = app_stage(app), mot_stage(mot)
            # both gates read the other stream before either is updated
            app, mot = (
                self.app_gates[stage](app, mot) if stage in self.app_gates else app,
                self.mot_gates[stage](mot, app) if stage in self.mot_gates else mot,
            )
            app, mot = self.app[stage](app), self.mot[stage](mot)
            if stage in self.fusion:
                fused[stage] = self.fusion[stage](app, mot)
        # the decoder reads the stride-4 skip (index 2) and the deepest map (last)
        features = [rgb, None, fused["stage2"], None, None, fused["stage5"]]
        return self.head(self.decoder(features))


def two_stream(*, size: int = 480, **kwargs) -> nn.Module:
    """Build a :class:`TwoStreamSegmenter` and declare its taps."""
    model = TwoStreamSegmenter(**kwargs)
    taps = {f"{stream}.{s}": Tap(f"{stream}.{s}") for stream in ("app", "mot") for s in STAGES}
    taps.update({f"fusion.{s}": Tap(f"fusion.{s}") for s in FUSED_STAGES})
    return declare(model, taps, InputSpec(1, size, two_stream=True, mean=IMAGENET_MEAN, std=IMAGENET_STD))


VOS_FULL = dict(encoder="resnet101", decoder_channels=256, size=480)
VOS_TINY = dict(encoder="resnet18", decoder_channels=64, size=64)
register("rtnet", two_stream, task="vos", arch=dict(cross="bidirectional"),
         summary="RTNet-style (interim): two ResNet streams with bidirectional gating at every stage, DeepLabv3+",
         presets={"full": VOS_FULL, "tiny": VOS_TINY})
