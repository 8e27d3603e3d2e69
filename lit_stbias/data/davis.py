"""A DAVIS-like video object segmentation folder as per-frame items (frame, forward flow, mask).

Layout (the ``480p`` level is optional; ``resolution`` names another, e.g. ``Full-Resolution``)::

    ROOT/JPEGImages/480p/<video>/00000.jpg    frames, natural order
    ROOT/Annotations/480p/<video>/00000.png   optional masks, same stems; object = any value > 0
    ROOT/Flow/<video>/00000.npy               optional forward flow t -> t+1 in pixels of the frame,
                                              (2, H, W) or (H, W, 2) .npy, or Middlebury .flo

Where a flow file is absent, OpenCV's Farneback flow is computed at the working size and cached as float16
``.npy`` under ``cache_dir`` (default ``ROOT/.flow_cache``), so it is paid once per frame.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lit_stbias.data.flow import farneback_flow
from lit_stbias.data.folders import _Skips, read_or_raise
from lit_stbias.data.video_io import VideoReadError, fit_frame, frame_files, natural_key, read_image

DAVIS_LAYOUT = """expected a DAVIS-like folder, e.g.
  ROOT/JPEGImages/480p/<video>/00000.jpg    (or ROOT/JPEGImages/<video>/00000.jpg)
  ROOT/Annotations/480p/<video>/00000.png   optional, object > 0
  ROOT/Flow/<video>/00000.npy|.flo          optional forward flow t -> t+1 (else Farneback, cached)"""
FLOW_EXTENSIONS = (".npy", ".flo")
FLO_MAGIC = 202021.25


def _level(root: Path, name: str, resolution: str) -> Path:
    """``root/name/resolution`` when it exists, else ``root/name``."""
    return root / name / resolution if (root / name / resolution).is_dir() else root / name


def read_flow_file(path: str | Path) -> np.ndarray:
    """A flow file as (2, H, W) float32 in pixels: ``.npy`` as (2, H, W) or (H, W, 2), or Middlebury ``.flo``."""
    path = Path(path)
    if path.suffix == ".flo":
        with open(path, "rb") as handle:
            if np.fromfile(handle, np.float32, 1)[0] != FLO_MAGIC:
                raise VideoReadError(f"{path} is not a Middlebury .flo file.")
            w, h = np.fromfile(handle, np.int32, 2)
            flow = np.fromfile(handle, np.float32, 2 * w * h).reshape(h, w, 2)
    else:
        try:
            flow = np.load(path)
        except ValueError as err:  # not an .npy file, or one holding objects (never unpickled)
            raise VideoReadError(f"{path} is not a flow array: {err}") from err
    flow = np.asarray(flow, np.float32)
    if flow.ndim == 3 and flow.shape[-1] == 2 and flow.shape[0] != 2:
        flow = flow.transpose(2, 0, 1)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise VideoReadError(f"{path}: flow must be (2, H, W) or (H, W, 2), got {flow.shape}.")
    return np.ascontiguousarray(flow)


def fit_flow(flow: np.ndarray, size: int | tuple[int, int] | None) -> np.ndarray:
    """Resize and crop a (2, H, W) flow like :func:`fit_frame` does a frame, scaling u and v with the image."""
    if size is None:
        return flow
    h, w = flow.shape[1:]
    fitted = fit_frame(np.ascontiguousarray(flow.transpose(1, 2, 0)), size)
    if isinstance(size, int):  # the same resize arithmetic as fit_frame, before its crop
        scale = size / min(h, w)
        sx, sy = max(size, round(w * scale)) / w, max(size, round(h * scale)) / h
    else:
        sy, sx = size[0] / h, size[1] / w
    return np.ascontiguousarray(fitted.transpose(2, 0, 1) * np.array([sx, sy], np.float32)[:, None, None])


def _size_tag(size: int | tuple[int, int] | None) -> str:
    if size is None:
        return "full"
    return f"s{size}" if isinstance(size, int) else f"{size[0]}x{size[1]}"


class DavisLike(_Skips, Dataset):
    """Per-frame items of a DAVIS-like folder (see the module docstring for the layout).

    Item ``k`` is frame ``t`` of video ``v`` (frames 0..n-2 of every video, the last has no forward flow):
    ``{"frame": (3, H, W) float in [0, 1], "flow": (2, H, W) float in pixels, "mask": (1, H, W) float {0, 1},
    "has_mask": bool, "index": k, "video_index": v, "t": t}`` — the same keys as ``SyntheticVOS().frames()``.
    ``self.videos[v]`` is the video's name.

    Args:
        size: short side then centre square crop (int), exact (H, W), or None for the original frames.
        videos: only these video names (default: all); ``split`` instead reads the names from a text file
            (a path, or ``ROOT/ImageSets/**/<split>.txt``; DAVIS 2016's "frame mask" lines work too).
        cache_dir: where computed Farneback flow is cached (default ``ROOT/.flow_cache``).
        resolution: the optional level between ``JPEGImages`` and the video folders.
    Videos with fewer than two frames are skipped (``dataset.skipped``); a frame (or flow file) that fails to
    decode at read time raises :class:`~lit_stbias.data.UnreadableVideo` naming the frame, and no other frame
    is returned in its place.
    """

    kind = "vos-frames"

    def __init__(
        self,
        root: str | Path,
        size: int | tuple[int, int] | None = 112,
        videos: Sequence[str] | None = None,
        split: str | Path | None = None,
        cache_dir: str | Path | None = None,
        resolution: str = "480p",
    ) -> None:
        self.root = Path(root)
        images = _level(self.root, "JPEGImages", resolution)
        if not images.is_dir():
            raise FileNotFoundError(f"DavisLike: {images} not found; {DAVIS_LAYOUT}")
        self.size = size
        self.annotations = _level(self.root, "Annotations", resolution)
        self.flow_root = _level(self.root, "Flow", resolution)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.root / ".flow_cache"
        names = sorted((d.name for d in images.iterdir() if d.is_dir() and not d.name.startswith(".")),
                       key=lambda n: natural_key(Path(n)))
        if split is not None:
            videos = self._read_split(split)
        if videos is not None:
            unknown = sorted(set(videos) - set(names))
            if unknown:
                raise FileNotFoundError(f"DavisLike: videos {unknown[:10]} are not in {images}.")
            names = [n for n in names if n in set(videos)]
        if not names:
            raise FileNotFoundError(f"DavisLike: no video folders in {images}; {DAVIS_LAYOUT}")
        self.skipped = []
        self.videos: list[str] = []
        self.frame_paths: list[list[Path]] = []
        for name in names:
            files = frame_files(images / name)
            if len(files) < 2:
                reason = "empty: no frames" if not files else "too short: 1 frame, flow needs 2"
                self._skip(images / name, reason)
                continue
            self.videos.append(name)
            self.frame_paths.append(files)
        self._warn_skipped(len(names), images)
        if not self.videos:
            raise ValueError(f"DavisLike: no usable video in {images} (skipped: {self.skipped[:5]}).")
        self.items = [(v, t) for v, files in enumerate(self.frame_paths) for t in range(len(files) - 1)]
        self._cache_warned = False

    def _read_split(self, split: str | Path) -> list[str]:
        path = Path(split)
        if not path.is_file():
            hits = sorted((self.root / "ImageSets").rglob(f"{split}.txt")) if (self.root / "ImageSets").is_dir() else []
            if not hits:
                raise FileNotFoundError(
                    f"DavisLike: split {split!r} is neither a file nor ROOT/ImageSets/**/{split}.txt")
            path = hits[0]
        names = []
        for line in path.read_text().split("\n"):
            token = line.split()[0] if line.split() else ""
            name = Path(token).parent.name if "/" in token else token
            if name and name not in names:
                names.append(name)
        return names

    def __len__(self) -> int:
        return len(self.items)

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    def frame_indices(self, video: int) -> list[int]:
        """The item indices of one video's frames, in time order."""
        return [k for k, (v, _) in enumerate(self.items) if v == video]

    def frames(self) -> "DavisLike":
        """Already per-frame; here so that every VOS source answers ``.frames()``."""
        return self

    def _mask(self, video: str, stem: str) -> np.ndarray | None:
        path = self.annotations / video / f"{stem}.png"
        if not path.is_file():
            return None
        from PIL import Image

        with Image.open(path) as image:
            mask = (np.asarray(image) > 0).astype(np.float32)
        if mask.ndim == 3:  # an RGB annotation: object wherever any channel is set
            mask = mask.max(axis=2)
        return (fit_frame(mask, self.size) > 0.5).astype(np.float32)

    def _flow(self, v: int, t: int, frame0: np.ndarray) -> np.ndarray:
        video, stem = self.videos[v], self.frame_paths[v][t].stem
        for ext in FLOW_EXTENSIONS:
            given = self.flow_root / video / f"{stem}{ext}"
            if given.is_file():
                return fit_flow(read_flow_file(given), self.size)
        cached = self.cache_dir / f"farneback_{_size_tag(self.size)}" / video / f"{stem}.npy"
        if cached.is_file():
            try:
                return np.load(cached).astype(np.float32)
            except (OSError, ValueError):
                pass  # a truncated cache file: compute again
        flow = farneback_flow(frame0, read_image(self.frame_paths[v][t + 1], self.size))
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(f".{cached.stem}.{os.getpid()}.npy")
            np.save(partial, flow.astype(np.float16))
            os.replace(partial, cached)  # atomic, so parallel workers never read half a file
        except OSError as err:
            if not self._cache_warned:
                warnings.warn(f"DavisLike: cannot cache flow in {self.cache_dir} ({err}); pass cache_dir=.",
                              stacklevel=3)
                self._cache_warned = True
        return flow

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        v, t = self.items[index]
        path = self.frame_paths[v][t]
        frame = read_or_raise(path, lambda: read_image(path, self.size))
        flow = read_or_raise(path, lambda: self._flow(v, t, frame))
        mask = read_or_raise(path, lambda: self._mask(self.videos[v], path.stem))
        has_mask = mask is not None
        if mask is None:
            mask = np.zeros(frame.shape[:2], np.float32)
        return {
            "frame": torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1), np.float32) / 255.0),
            "flow": torch.from_numpy(flow),
            "mask": torch.from_numpy(mask)[None],
            "has_mask": has_mask,
            "index": index,
            "video_index": v,
            "t": t,
        }

    def __repr__(self) -> str:
        return (f"DavisLike(root={str(self.root)!r}, videos={len(self.videos)}, frames={len(self)}, "
                f"size={self.size}, skipped={len(self.skipped)})")
