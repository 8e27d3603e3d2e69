"""Optical flow for user videos (OpenCV Farneback: no learned weights to download) and its colour coding.

Flow tensors are (2, H, W) = (u, v) displacements in pixels (u to the right, v downwards), or batched
(B, 2, H, W). A flow *image* is the (3, H, W) RGB picture of a flow field that two-stream VOS models take.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from lit_stbias.data.flow import farneback_flow as _farneback
from lit_stbias.pairs.stylize import check_range, check_video


def _uint8(frame: Tensor) -> np.ndarray:
    """(3, H, W) or (1, H, W) or (H, W) float in [0, 1] -> (H, W, 3) or (H, W) uint8, as OpenCV takes it."""
    if frame.ndim == 2:
        frame = frame.unsqueeze(0)
    if frame.ndim != 3 or frame.shape[0] not in (1, 3):
        raise ValueError(f"a frame must be (3, H, W), (1, H, W) or (H, W); got {tuple(frame.shape)}.")
    check_range(frame, "frame")
    array = (frame.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(array if array.shape[2] == 3 else array[..., 0])


def farneback_flow(frame0: Tensor, frame1: Tensor) -> Tensor:
    """Dense flow (2, H, W) from ``frame0`` to ``frame1`` in pixels with OpenCV's Farneback method.

    Frames are (3, H, W) RGB (or (1, H, W) / (H, W) grey) floats in [0, 1]; computed on the CPU, returned as
    float32 on the frames' device.
    """
    if frame0.shape != frame1.shape:
        raise ValueError(f"frames differ in shape: {tuple(frame0.shape)} vs {tuple(frame1.shape)}.")
    return torch.from_numpy(_farneback(_uint8(frame0), _uint8(frame1))).to(frame0.device)


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
