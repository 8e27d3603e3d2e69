"""Render one textured object moving over a (possibly panning) scene, with its exact masks and optical flow.

The object follows a per-frame similarity transform: a sprite pixel ``p`` lands at ``x = L_t (p - p0) + c_t``
with ``L_t = s_t R(theta_t)`` (image coordinates: x right, y down, so a growing ``theta`` turns clockwise on
screen). The scene is shifted by ``offset_t`` (the camera pan). Because the generator knows both motions, the
forward flow from t to t+1 is exact: ``L_{t+1} L_t^{-1} (x - c_t) + c_{t+1} - x`` on object pixels, and
``offset_{t+1} - offset_t`` on scene pixels. Pixel centres sit at integer coordinates, as in OpenCV.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from lit_stbias.data.imagery import scenes


@dataclass
class Trajectory:
    """Per-frame pose of the object (centre (T, 2) as x, y in pixels; scale (T,); angle (T,) in radians) and
    of the scene (offset (T, 2), how far scene content has moved in the image)."""

    centre: np.ndarray
    scale: np.ndarray
    angle: np.ndarray
    offset: np.ndarray

    def reversed(self) -> "Trajectory":
        """The same motion played backwards."""
        return Trajectory(self.centre[::-1].copy(), self.scale[::-1].copy(), self.angle[::-1].copy(),
                          self.offset[::-1].copy())

    def linear(self) -> np.ndarray:
        """(T, 2, 2) linear parts ``s_t R(theta_t)``."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        return self.scale[:, None, None] * np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def render(
    scene: np.ndarray, crop: tuple[float, float], sprite: np.ndarray, motion: Trajectory, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, size, size, 3) float32 and object alpha (T, size, size) float32.

    ``scene`` is an (H, W, 3) image at least ``size`` px plus the pan on each side; ``crop`` is the (x, y) of
    the frame's top-left corner in it at offset zero; ``sprite`` is premultiplied RGBA (R, R, 4).
    """
    p0 = (sprite.shape[0] - 1) / 2.0
    linear = motion.linear()
    frames = np.empty((len(linear), size, size, 3), np.float32)
    obj = np.empty((len(linear), size, size, 4), np.float32)
    for t, lin in enumerate(linear):
        ox, oy = motion.offset[t]
        to_scene = np.array([[1.0, 0.0, crop[0] - ox], [0.0, 1.0, crop[1] - oy]])
        cv2.warpAffine(scene, to_scene, (size, size), dst=frames[t],
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT101)
        to_image = np.concatenate([lin, (motion.centre[t] - lin @ [p0, p0])[:, None]], axis=1)
        cv2.warpAffine(sprite, to_image, (size, size), dst=obj[t], flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = np.clip(obj[..., 3], 0.0, 1.0)
    frames *= 1.0 - alpha[..., None]
    frames += obj[..., :3]
    np.clip(frames, 0.0, 1.0, out=frames)
    return frames, alpha


def exact_flow(motion: Trajectory, masks: np.ndarray) -> np.ndarray:
    """Forward flow (T-1, 2, H, W) float32 (u, v in pixels) from frame t to t+1, given binary masks (T, H, W)."""
    _, h, w = masks.shape
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)), 0)  # (2, H, W)
    linear = motion.linear()
    flows = np.empty((len(linear) - 1, 2, h, w), np.float32)
    for t in range(len(linear) - 1):
        step = linear[t + 1] @ np.linalg.inv(linear[t])
        rel = grid - motion.centre[t][:, None, None]
        moved = np.einsum("ij,jhw->ihw", step, rel) + motion.centre[t + 1][:, None, None]
        scene = (motion.offset[t + 1] - motion.offset[t])[:, None, None]
        flows[t] = np.where(masks[t][None] > 0, moved - grid, scene)
    return flows


def scene_canvas(size: int) -> int:
    """Short side of the scene images for frames of ``size`` px: room for a pan of up to 15% of the frame each
    way, and for random crops. One value per size, so each process resizes the scenes once."""
    return int(math.ceil(1.3 * (size + 2 * math.ceil(0.15 * size + 1))))


def render_on_scene(
    rng: np.random.Generator, scene_index: int, sprite: np.ndarray, motion: Trajectory, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Render over a random crop (random mirror) of a scene large enough for any pan at this size."""
    pan = int(math.ceil(np.abs(motion.offset).max())) + 1
    scene = scenes(scene_canvas(size))[scene_index]
    if rng.random() < 0.5:
        scene = scene[:, ::-1]
    h, w = scene.shape[:2]
    crop = (rng.uniform(pan, w - size - pan), rng.uniform(pan, h - size - pan))
    return render(np.ascontiguousarray(scene), crop, sprite, motion, size)


def to_tensor(array: np.ndarray, *axes: int) -> torch.Tensor:
    """numpy -> torch, transposed by numpy: torch's threaded copy costs milliseconds on small clips."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(axes) if axes else array))
