"""What the published two-stream VOS networks share: ResNet streams, the uniform call, taps named as the paper.

The release (YorkUCVIL/Static-Dynamic-Interpretability, ``models/vos_models``) calls each network as
``model({"Image": x, "Flow": f}, stages)`` and returns its own output format. Here every VOS network is called
as ``model(rgb, flow_image)`` with [0, 1] images (B, 3, H, W) and returns mask logits (B, 1, H, W) at the input
size; the state-dict keys stay the release's, so its checkpoints load unchanged.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from lit_stbias.models.spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, declare
from lit_stbias.probe import Tap

#: the project's tap prefixes (reports group streams by them) -> the release's stream names in ``stage_map``
RELEASE_STREAMS = {"app": "app_stream", "mot": "mot_stream", "fusion": "sensor_fusion"}
#: ResNet-101 as torchvision builds it (the release uses torchvision's ResNet, or a copy of it, in both networks)
RESNET101 = dict(block="bottleneck", blocks=(3, 4, 23, 3), widths=(64, 128, 256, 512), stem_width=64)
#: the tiny presets' stream: the same Bottleneck structure, one block per stage, a quarter of the widths
RESNET_TINY = dict(block="bottleneck", blocks=(1, 1, 1, 1), widths=(16, 32, 64, 128), stem_width=16)
BLOCKS = {"bottleneck": Bottleneck, "basic": BasicBlock}


def release_stage(tap: str) -> str:
    """The release's name of a tap (``main_vos.py``'s ``stage_map``): ``"app.layer2"`` -> ``"layer2,app_stream"``.

    >>> release_stage("fusion.layer4")
    'layer4,sensor_fusion'
    """
    stream, _, stage = tap.partition(".")
    if stream not in RELEASE_STREAMS or not stage:
        raise ValueError(f"{tap!r} is not a two-stream tap name (app.*, mot.*, fusion.*).")
    return f"{stage},{RELEASE_STREAMS[stream]}"


class ResNetStream(nn.Module):
    """One stream: torchvision's ResNet up to ``layer4`` (no pooling, no classifier), any widths and depths.

    Built from torchvision's residual blocks with its module names (``conv1``, ``bn1``, ``layer1.0.conv1``,
    ``layer1.0.downsample.0``, ...) and its initialisation, so with ``RESNET101`` the state dict is
    ``torchvision.models.resnet101()``'s without ``fc``. ``dilate_last`` replaces the stride of ``layer4`` by a
    dilation (torchvision's ``replace_stride_with_dilation=[False, False, True]``: output stride 16).
    """

    def __init__(self, *, block: str = "bottleneck", blocks: Sequence[int] = (3, 4, 23, 3),
                 widths: Sequence[int] = (64, 128, 256, 512), stem_width: int = 64, dilate_last: bool = False) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {list(BLOCKS)}, got {block!r}.")
        if len(blocks) != 4 or len(widths) != 4 or min(blocks) < 1 or min(widths) < 1:
            raise ValueError(f"a ResNet stream has 4 stages of >= 1 block; got blocks={blocks}, widths={widths}.")
        self.block = BLOCKS[block]
        self.inplanes, self.dilation = stem_width, 1
        self.conv1 = nn.Conv2d(3, stem_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(widths[0], blocks[0])
        self.layer2 = self._make_layer(widths[1], blocks[1], stride=2)
        self.layer3 = self._make_layer(widths[2], blocks[2], stride=2)
        self.layer4 = self._make_layer(widths[3], blocks[3], stride=2, dilate=dilate_last)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        self.out_channels = [stem_width] + [w * self.block.expansion for w in widths]

    def _make_layer(self, planes: int, blocks: int, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        """torchvision's ``ResNet._make_layer``: a dilated stage keeps the previous dilation in its first block."""
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        out = planes * self.block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))
        layers = [self.block(self.inplanes, planes, stride, downsample, dilation=previous_dilation)]
        self.inplanes = out
        layers += [self.block(out, planes, dilation=self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def check_inputs(_model: nn.Module, args: tuple) -> None:
    """Forward pre-hook: one line naming the problem when the inputs do not fit ``model(rgb, flow_image)``.

    A hook registered before the input normalisation, so bad input is named before anything computes with it.
    """
    if len(args) != 2 or not all(isinstance(x, Tensor) for x in args):
        raise ValueError("a two-stream VOS model is called as model(rgb, flow_image) with two tensors (B, 3, H, W).")
    rgb, flow = args
    if rgb.ndim != 4 or rgb.shape[1] != 3 or rgb.shape != flow.shape:
        raise ValueError(f"rgb {tuple(rgb.shape)} and flow image {tuple(flow.shape)} must both be (B, 3, H, W) "
                         "with the same B, H and W (a flow image is flow_to_rgb of the raw flow).")


def check_arguments(network: str, unknown: Mapping[str, Any], known: Sequence[str]) -> None:
    """Refuse builder arguments a network does not have (one line naming them and what it takes)."""
    if unknown:
        raise ValueError(f"{network} has no argument(s) {sorted(unknown)}; it takes: {', '.join(known)}.")


def declare_two_stream(model: nn.Module, taps: Mapping[str, str], size: int) -> nn.Module:
    """Attach the taps (name -> module name), a two-stream input spec and the release's input normalisation.

    The release normalises both the RGB frame and the flow image with ImageNet's mean and std
    (``StylizedDAVIS``'s ``ExtNormalize``); the model does it itself on its [0, 1] inputs, after checking them.
    """
    model.register_forward_pre_hook(check_inputs)
    return declare(model, {name: Tap(module) for name, module in taps.items()},
                   InputSpec(1, size, two_stream=True, mean=IMAGENET_MEAN, std=IMAGENET_STD))


def freeze_unused(*modules: nn.Module) -> None:
    """Parameters the released network holds but never uses (they are in its checkpoints) get no gradient:
    they load and save as published, and DDP and optimisers leave them alone."""
    for module in modules:
        module.requires_grad_(False)
