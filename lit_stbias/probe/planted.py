"""A planted-unit network: hand-built channels whose static/dynamic nature is known by construction.

It is the probe's ground truth. Fed real static and dynamic pairs (restyled, shuffled videos), the metric
must classify every unit as planted:

- static: per-frame colour and texture statistics averaged over time. Shuffling frames leaves them exactly
  unchanged; another style changes them.
- dynamic: global Lucas-Kanade velocity (u, v) of the grey clip, from consecutive frames. Ratios of image
  derivatives, so a style (a fixed per-frame tone and texture map) hardly moves them; shuffling the frames
  scrambles the sign.
- joint: the time-averaged centroid of edge energy (where the object is): order-free and style-robust.
- residual: fresh noise (seeded), and a constant (a dead unit).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lit_stbias.probe.taps import Tap

_LUMA = (0.299, 0.587, 0.114)


def _grey(video: Tensor) -> Tensor:
    w = video.new_tensor(_LUMA).view(1, 3, 1, 1, 1)
    return (video * w).sum(1)  # (B, T, H, W)


def _spatial_grad(grey: Tensor) -> tuple[Tensor, Tensor]:
    gx = (grey[..., 1:-1, 2:] - grey[..., 1:-1, :-2]) / 2
    gy = (grey[..., 2:, 1:-1] - grey[..., :-2, 1:-1]) / 2
    return gx, gy


def static_features(video: Tensor) -> Tensor:
    """(B, 5): mean R, G, B, colourfulness and warmth (red minus blue) of each frame, averaged over frames."""
    rgb = video.mean(dim=(2, 3, 4))
    colourful = video.std(dim=1).mean(dim=(1, 2, 3))
    warmth = rgb[:, 0] - rgb[:, 2]
    return torch.cat([rgb, colourful[:, None], warmth[:, None]], 1)


def lucas_kanade_velocity(grey: Tensor) -> Tensor:
    """(B, 2) global velocity (u, v) in pixels per frame, least squares over all consecutive frame pairs."""
    mid = (grey[:, 1:] + grey[:, :-1]) / 2
    gx, gy = _spatial_grad(mid)
    gt = (grey[:, 1:] - grey[:, :-1])[..., 1:-1, 1:-1]
    sxx, syy, sxy = (gx * gx).sum((1, 2, 3)), (gy * gy).sum((1, 2, 3)), (gx * gy).sum((1, 2, 3))
    sxt, syt = (gx * gt).sum((1, 2, 3)), (gy * gt).sum((1, 2, 3))
    det = (sxx * syy - sxy * sxy).clamp_min(1e-12)
    u = -(syy * sxt - sxy * syt) / det
    v = -(sxx * syt - sxy * sxt) / det
    return torch.stack([u, v], 1)


def dynamic_features(video: Tensor) -> Tensor:
    """(B, 4): velocity of the whole frame and of its central half."""
    grey = _grey(video)
    h, w = grey.shape[-2:]
    centre = grey[..., h // 4: h - h // 4, w // 4: w - w // 4]
    return torch.cat([lucas_kanade_velocity(grey), lucas_kanade_velocity(centre)], 1)


def joint_features(video: Tensor) -> Tensor:
    """(B, 2): where the edges are, (x, y) centroid of gradient energy averaged over frames, in [-1, 1]."""
    gx, gy = _spatial_grad(_grey(video))
    energy = (gx * gx + gy * gy).mean(1)  # time average: (B, H', W')
    energy = energy / energy.sum((1, 2), keepdim=True).clamp_min(1e-12)
    h, w = energy.shape[-2:]
    xs = torch.linspace(-1, 1, w, device=video.device, dtype=video.dtype)
    ys = torch.linspace(-1, 1, h, device=video.device, dtype=video.dtype)
    return torch.stack([(energy.sum(1) * xs).sum(1), (energy.sum(2) * ys).sum(1)], 1)


@dataclass(frozen=True)
class PlantedLayer:
    """Which raw features a layer reads, and the unit classes planted there (in channel order)."""

    static: tuple[int, ...]
    dynamic: tuple[int, ...]
    joint: tuple[int, ...]
    noise: int = 1
    constant: int = 1

    def counts(self) -> dict[str, int]:
        return {"dynamic": len(self.dynamic), "static": len(self.static), "joint": len(self.joint),
                "residual": self.noise + self.constant}

    @property
    def num_units(self) -> int:
        return sum(self.counts().values())


LAYERS = {
    "mostly_static": PlantedLayer(static=(0, 1, 2, 3, 4), dynamic=(0,), joint=(0,)),
    "mostly_dynamic": PlantedLayer(static=(3,), dynamic=(0, 1, 2, 3), joint=(0, 1)),
}


class _Layer(nn.Module):
    """Select the planted features, add residual units, then a fixed affine (like BatchNorm at eval) and tanh.
    Each unit is repeated ``width`` times, as redundant channels of a real layer are."""

    def __init__(self, spec: PlantedLayer, generator: torch.Generator, width: int) -> None:
        super().__init__()
        self.spec = spec
        self.generator = generator
        self.width = width
        self.register_buffer("shift", torch.zeros(spec.num_units))
        self.register_buffer("scale", torch.ones(spec.num_units))

    def raw(self, stat: Tensor, dyn: Tensor, joint: Tensor) -> Tensor:
        """The planted units before the affine and the activation, one column each."""
        b = stat.shape[0]
        noise = torch.randn(b, self.spec.noise, generator=self.generator).to(stat)
        constant = stat.new_ones(b, self.spec.constant)
        return torch.cat([stat[:, list(self.spec.static)], dyn[:, list(self.spec.dynamic)],
                          joint[:, list(self.spec.joint)], noise, constant], 1)

    def forward(self, stat: Tensor, dyn: Tensor, joint: Tensor) -> Tensor:
        units = self.raw(stat, dyn, joint)
        # A squashing activation, as real networks have: an erratic value (e.g. the velocity of a shuffled
        # clip) saturates instead of dominating the unit's variance.
        return torch.tanh((units - self.shift) * self.scale).repeat_interleave(self.width, dim=1)


class PlantedUnits(nn.Module):
    """Hand-built video network with known static, dynamic, joint and residual units.

    Input (B, 3, T, H, W) in [0, 1]; output the concatenated units. Taps ``mostly_static`` and
    ``mostly_dynamic`` each mix the four classes in known numbers (``planted[tap]``), every unit repeated
    ``width`` times. :meth:`calibrate` standardises every unit on a few clips so that the pooled layer score
    weighs units alike.
    """

    def __init__(self, width: int = 4, seed: int = 0) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)
        self.layers = nn.ModuleDict({name: _Layer(spec, self.generator, width) for name, spec in LAYERS.items()})
        self.taps = {name: Tap(f"layers.{name}") for name in LAYERS}
        self.planted = {name: {k: v * width for k, v in spec.counts().items()} for name, spec in LAYERS.items()}

    def forward(self, video: Tensor) -> Tensor:
        if video.ndim != 5 or video.shape[1] != 3 or video.shape[2] < 2:
            raise ValueError(f"expected videos (B, 3, T>=2, H, W), got {tuple(video.shape)}.")
        stat, dyn, joint = static_features(video), dynamic_features(video), joint_features(video)
        return torch.cat([layer(stat, dyn, joint) for layer in self.layers.values()], 1)

    @torch.no_grad()
    def calibrate(self, videos: Tensor) -> "PlantedUnits":
        """Set each unit's shift and scale so that it has zero mean and unit variance on ``videos``."""
        stat, dyn, joint = static_features(videos), dynamic_features(videos), joint_features(videos)
        for layer in self.layers.values():
            units = layer.raw(stat, dyn, joint)
            std = units.std(0)
            layer.shift.copy_(units.mean(0))
            layer.scale.copy_(torch.where(std > 0, 1 / std.clamp_min(1e-12), torch.ones_like(std)))
        return self
