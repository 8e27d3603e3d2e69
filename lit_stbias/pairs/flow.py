"""Optical flow of whole videos and its colour coding; the Farneback wrapper itself is
:func:`lit_stbias.data.flow.farneback_flow` (re-exported here), the one place its settings live.

Flow tensors are (2, H, W) = (u, v) displacements in pixels (u to the right, v downwards), or batched
(B, 2, H, W). A flow *image* is the (3, H, W) RGB picture of a flow field that two-stream VOS models take.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from lit_stbias.data.flow import farneback_flow
from lit_stbias.pairs.stylize import check_video


def video_flow(video: Tensor) -> Tensor:
    """Farneback flow between consecutive frames of a (C, T, H, W) video: (2, T - 1, H, W)."""
    if not isinstance(video, Tensor) or video.ndim != 4:
        raise ValueError(f"video_flow takes one (C, T, H, W) video; got {getattr(video, 'shape', type(video))}.")
    check_video(video)
    if video.shape[1] < 2:
        raise ValueError(f"flow needs at least 2 frames; the video has {video.shape[1]}.")
    flows = [farneback_flow(video[:, t], video[:, t + 1]) for t in range(video.shape[1] - 1)]
    return torch.stack(flows, dim=1)


def flow_to_rgb(flow: Tensor, max_magnitude: float | None = None) -> Tensor:
    """Colour-code flow (2, H, W) -> (3, H, W) (or (B, 2, H, W) -> (B, 3, H, W)) in [0, 1].

    Hue is the direction (angle of (u, v), a full turn of the colour wheel), saturation the magnitude divided
    by ``max_magnitude`` (clipped at 1), value is 1; so zero flow is white. With ``max_magnitude=None`` each
    image is normalised by its own largest magnitude (the common convention for flow images fed to two-stream
    networks: the fastest pixel is fully saturated); pass a number to compare magnitudes across images.
    """
    from kornia.color import hsv_to_rgb

    if not isinstance(flow, Tensor) or flow.ndim not in (3, 4) or flow.shape[-3] != 2:
        raise ValueError(f"flow must be (2, H, W) or (B, 2, H, W); got {getattr(flow, 'shape', type(flow))}.")
    if max_magnitude is not None and max_magnitude <= 0:
        raise ValueError(f"max_magnitude must be positive; got {max_magnitude}.")
    flow = flow.float()
    u, v = flow.unbind(-3)
    magnitude = torch.hypot(u, v)
    if max_magnitude is None:
        scale = magnitude.flatten(-2).amax(-1).clamp_min(1e-6)[..., None, None]
    else:
        scale = torch.as_tensor(max_magnitude, dtype=flow.dtype, device=flow.device)
    hue = torch.atan2(v, u).remainder(2 * math.pi)
    saturation = (magnitude / scale).clamp(0, 1)
    hsv = torch.stack([hue, saturation, torch.ones_like(hue)], dim=-3)
    return hsv_to_rgb(hsv).clamp(0, 1)


__all__ = ["farneback_flow", "flow_to_rgb", "video_flow"]
