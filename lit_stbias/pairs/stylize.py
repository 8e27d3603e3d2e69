"""`stylize` videos and single images with a named style, with the input checks every view maker shares."""
from __future__ import annotations

import torch
from torch import Tensor

from lit_stbias.pairs.styles import get_style

_RANGE_TOLERANCE = 1e-4  # resampling can overshoot [0, 1] by rounding error; anything more is a real mistake


def check_range(x: Tensor, what: str) -> None:
    """ValueError unless ``x`` is a floating tensor with values in [0, 1]."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{what} must be a torch.Tensor, got {type(x).__name__}.")
    if not x.is_floating_point():
        raise ValueError(f"{what} must be a float tensor in [0, 1], got dtype {x.dtype} (divide uint8 by 255).")
    if x.numel() and (x.min() < -_RANGE_TOLERANCE or x.max() > 1 + _RANGE_TOLERANCE):
        raise ValueError(
            f"{what} must hold values in [0, 1]; got [{x.min().item():.3g}, {x.max().item():.3g}]."
        )


def check_video(video: Tensor, what: str = "video") -> None:
    """ValueError unless ``video`` is (C, T, H, W) or (B, C, T, H, W) RGB in [0, 1]."""
    if not isinstance(video, Tensor) or video.ndim not in (4, 5):
        shape = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
        raise ValueError(f"{what} must be (C, T, H, W) or (B, C, T, H, W); got {shape}.")
    if video.shape[-4] != 3:
        raise ValueError(f"{what} must have 3 (RGB) channels at dim -4; got shape {tuple(video.shape)}.")
    check_range(video, what)


def check_image(image: Tensor, what: str = "image") -> None:
    """ValueError unless ``image`` is (3, H, W) or (B, 3, H, W) RGB in [0, 1]."""
    if not isinstance(image, Tensor) or image.ndim not in (3, 4) or image.shape[-3] != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"{what} must be (3, H, W) or (B, 3, H, W) RGB; got {shape}.")
    check_range(image, what)


def _apply(frames: Tensor, style: str) -> Tensor:
    """Apply a style to frames (N, 3, H, W); computed in float32 at least, returned in the input dtype."""
    recipe = get_style(style)
    dtype = frames.dtype if frames.dtype in (torch.float32, torch.float64) else torch.float32
    return recipe(frames.to(dtype)).to(frames.dtype)


def stylize(video: Tensor, style: str) -> Tensor:
    """Apply the named style to every frame of ``video`` on its own.

    ``video`` is (C, T, H, W) or (B, C, T, H, W) float RGB in [0, 1]; a (3, H, W) tensor is taken as a single
    image (a one-frame video) for convenience; batched images (B, 3, H, W) cannot be told apart from a
    (C, T, H, W) video, use :func:`stylize_image` for them. Returns the same shape and dtype, in [0, 1], on the
    input's device. The result is deterministic and has no frame-to-frame dependence, so it commutes with any
    reordering of frames.
    """
    if isinstance(video, Tensor) and video.ndim == 3:
        return stylize_image(video, style)
    check_video(video)
    get_style(style)
    frames = video.movedim(-4, -3)  # (..., T, C, H, W)
    lead = frames.shape[:-3]
    out = _apply(frames.reshape(-1, *frames.shape[-3:]), style)
    return out.reshape(*lead, *out.shape[-3:]).movedim(-3, -4).contiguous()


def stylize_image(image: Tensor, style: str) -> Tensor:
    """Apply the named style to a (3, H, W) frame or a (B, 3, H, W) batch of frames, exactly as
    :func:`stylize` treats each frame of a video."""
    check_image(image)
    get_style(style)
    batched = image if image.ndim == 4 else image.unsqueeze(0)
    out = _apply(batched, style)
    return out if image.ndim == 4 else out.squeeze(0)


__all__ = ["check_image", "check_range", "check_video", "stylize", "stylize_image"]
