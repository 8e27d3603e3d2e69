"""Optical flow for user data: OpenCV's Farneback method, the one place its settings live.

No learned weights, so nothing to download. Flow is (2, H, W) = (u, v) displacements in pixels from the first
frame to the second (u to the right, v downwards).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

#: (pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags): OpenCV's sample defaults, with 4 pyramid
#: levels to cover displacements of ~15 % of a 112-224 px frame.
FARNEBACK_PARAMS = dict(pyr_scale=0.5, levels=4, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
_RANGE_TOLERANCE = 1e-3


def tensor_to_uint8(frame: Tensor) -> np.ndarray:
    """(3, H, W), (1, H, W) or (H, W) float in [0, 1] -> (H, W, 3) or (H, W) uint8, as OpenCV takes it."""
    if frame.ndim == 2:
        frame = frame.unsqueeze(0)
    if frame.ndim != 3 or frame.shape[0] not in (1, 3):
        raise ValueError(f"a frame must be (3, H, W), (1, H, W) or (H, W); got {tuple(frame.shape)}.")
    if not frame.is_floating_point():
        raise ValueError(f"a frame must be a float tensor in [0, 1], got dtype {frame.dtype} (divide uint8 by 255).")
    low, high = frame.min().item(), frame.max().item()
    if not (-_RANGE_TOLERANCE <= low and high <= 1 + _RANGE_TOLERANCE):
        raise ValueError(f"a frame must hold values in [0, 1]; got [{low:.3g}, {high:.3g}].")
    array = (frame.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(array if array.shape[2] == 3 else array[..., 0])


def farneback_flow(frame0: np.ndarray | Tensor, frame1: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """Dense forward flow (2, H, W) from ``frame0`` to ``frame1``, in pixels, with OpenCV's Farneback method.

    Frames are uint8 numpy arrays, (H, W, 3) RGB or (H, W) grey, and the flow comes back as float32 numpy; or
    float tensors in [0, 1], (3, H, W) RGB or (1, H, W) / (H, W) grey, and the flow comes back as a float32
    tensor on the frames' device (computed on the CPU).

    >>> import numpy, torch
    >>> flow = farneback_flow(torch.rand(3, 32, 32), torch.rand(3, 32, 32))
    >>> grey = numpy.zeros((32, 32), numpy.uint8)
    >>> tuple(flow.shape), flow.dtype, farneback_flow(grey, grey).shape
    ((2, 32, 32), torch.float32, (2, 32, 32))
    """
    import cv2

    if isinstance(frame0, Tensor) != isinstance(frame1, Tensor):
        raise ValueError("pass both frames as tensors or both as numpy arrays.")
    if tuple(frame0.shape) != tuple(frame1.shape):
        raise ValueError(f"frames differ in shape: {tuple(frame0.shape)} vs {tuple(frame1.shape)}.")
    if isinstance(frame0, Tensor):
        return torch.from_numpy(farneback_flow(tensor_to_uint8(frame0), tensor_to_uint8(frame1))).to(frame0.device)

    def grey(frame: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame

    flow = cv2.calcOpticalFlowFarneback(grey(frame0), grey(frame1), None, **FARNEBACK_PARAMS)
    return np.ascontiguousarray(flow.transpose(2, 0, 1))
