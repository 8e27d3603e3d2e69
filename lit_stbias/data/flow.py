"""Optical flow for user data: OpenCV's Farneback method, the one place its settings live.

No learned weights, so nothing to download. Flow is (2, H, W) = (u, v) displacements in pixels from the first
frame to the second (u to the right, v downwards).
"""
from __future__ import annotations

import numpy as np

#: (pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags): OpenCV's sample defaults, with 4 pyramid
#: levels to cover displacements of ~15 % of a 112-224 px frame.
FARNEBACK_PARAMS = dict(pyr_scale=0.5, levels=4, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def farneback_flow(frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
    """Dense forward flow (2, H, W) float32 between two uint8 frames, (H, W, 3) RGB or (H, W) grey."""
    import cv2

    def grey(frame: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame

    if frame0.shape != frame1.shape:
        raise ValueError(f"frames differ in shape: {frame0.shape} vs {frame1.shape}.")
    flow = cv2.calcOpticalFlowFarneback(grey(frame0), grey(frame1), None, **FARNEBACK_PARAMS)
    return np.ascontiguousarray(flow.transpose(2, 0, 1))
