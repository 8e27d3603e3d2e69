"""Which frames of a video make a clip: the whole-video spread, or the authors' release protocol.

The release (YorkUCVIL/Static-Dynamic-Interpretability, ``dataset_factory/``) takes a *window* of
``sampling_rate x num_frames`` consecutive frames, starting at the first annotated segment (ActivityNet), at a
random frame (Something-Something v2, Diving48) or, here also, centred; a window longer than what the video
offers is filled by cycling the frames it has; then ``num_frames`` frames are taken uniformly from the window
(pytorchvideo's ``UniformTemporalSubsample``: ``linspace(0, L - 1, T)`` truncated to integers).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from lit_stbias.data.video_io import sample_indices

WINDOWS = ("spread", "random", "center", "first-segment")
#: Fewest distinct frames a random window of a short video keeps (the release draws the start of a video not
#: longer than the window in [0, n - 8] and cycles from there to the end).
MIN_CYCLED_FRAMES = 8
#: Mixed into the random-start generator's seed so it draws independently of other per-item generators.
_START_STREAM = 7


def uniform_subsample(length: int, num_frames: int) -> list[int]:
    """``num_frames`` positions spread over ``length`` frames, end points included, exactly as pytorchvideo's
    ``UniformTemporalSubsample`` computes them (float32 ``linspace``, truncated).

    >>> uniform_subsample(64, 8)
    [0, 9, 18, 27, 36, 45, 54, 63]
    """
    return torch.linspace(0, length - 1, num_frames).clamp(0, length - 1).long().tolist()


def _cycled(start: int, stop: int, length: int) -> list[int]:
    """Frames ``start .. stop - 1`` repeated until there are ``length`` of them (``itertools.cycle``)."""
    span = stop - start
    return [start + k % span for k in range(length)]


def annotation_keys(name: str) -> list[str]:
    """Names under which a video may appear in an annotation file: its key (relative path without extension),
    its base name, and the base name without ActivityNet's ``v_`` file prefix."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    keys = [name, base] + ([base[2:]] if base.startswith("v_") else [])
    return list(dict.fromkeys(keys))


def load_annotations(source: str | Path | Mapping[str, Any]) -> dict[str, tuple[float, float] | None]:
    """The first annotated segment, in seconds, of every video of an ActivityNet-style annotation file.

    Accepts a path to a JSON file or the loaded mapping: ``{"database": {video_id: {"annotations":
    [{"segment": [start_s, end_s], ...}, ...], ...}}}`` (ActivityNet 1.3) or the same mapping without the
    ``"database"`` level. A video listed with no annotations (ActivityNet's test split) maps to None. Anything
    else is a ValueError naming the file and the entry.
    """
    where = str(source) if isinstance(source, (str, Path)) else "the annotations mapping"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"annotation file not found: {path}")
        try:
            source = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"{where} is not valid JSON ({err}); expected ActivityNet-style annotations.") from err
    if not isinstance(source, Mapping):
        raise ValueError(f"{where} must hold a JSON object of videos, got {type(source).__name__}.")
    database = source.get("database", source)
    if not isinstance(database, Mapping) or not database:
        raise ValueError(f"{where} lists no videos; expected {{\"database\": {{video_id: {{\"annotations\": "
                         "[{\"segment\": [start_s, end_s]}]}}}} (ActivityNet 1.3).")
    segments: dict[str, tuple[float, float] | None] = {}
    for video, entry in database.items():
        notes = entry.get("annotations") if isinstance(entry, Mapping) else None
        if not isinstance(notes, list):
            raise ValueError(f"{where}: video {video!r} has no 'annotations' list; expected ActivityNet-style "
                             "entries {\"annotations\": [{\"segment\": [start_s, end_s]}]}.")
        if not notes:
            segments[str(video)] = None
            continue
        segment = notes[0].get("segment") if isinstance(notes[0], Mapping) else None
        try:
            start, end = (float(x) for x in segment)
        except (TypeError, ValueError):
            start = end = math.nan
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
            raise ValueError(f"{where}: video {video!r} has first segment {segment!r}; expected [start_s, end_s] "
                             "with 0 <= start_s < end_s.")
        segments[str(video)] = (start, end)
    return segments


class ClipSampling:
    """How a folder source picks the ``num_frames`` frames of a clip from a video.

    Args:
        num_frames: frames per clip (T).
        sampling_rate: the window holds ``sampling_rate * num_frames`` consecutive frames (the release uses
            64-frame windows: 8 for T=8, 2 for T=32). Needed by every window but ``"spread"``, which has none.
        window: ``"spread"`` (default): T frames spread over the whole video, the centre of each of T equal
            parts, looping a video shorter than T. ``"random"``: the window starts at a random frame, drawn from
            ``(seed, item index)`` so every worker and rank draws the same. ``"center"``: the window is centred.
            ``"first-segment"``: it starts at the first annotated segment of the video (``annotations``), and
            holds only the segment's frames.
        annotations: an ActivityNet-style JSON file (or its loaded mapping) for ``"first-segment"``; segment
            times in seconds become frames with the video's frame rate, ``floor(seconds * fps)`` as the release
            does (its ActivityNet frames were extracted at 5 fps).
        cycle: a window longer than the video (or segment) repeats its frames, as the release does; with
            ``cycle=False`` that is a ValueError naming the video.
        seed: seed of the ``"random"`` starts.
        fps: frame rate of frame folders (image files carry none), for ``"first-segment"``; video files use
            their own.

    A video shorter than (or as long as) a random window starts at a random frame in ``[0, n - 8]`` and cycles
    from there to its end, as the release does.

    >>> ClipSampling(8, sampling_rate=8, window="center").indices(100)
    [18, 27, 36, 45, 54, 63, 72, 81]
    >>> ClipSampling(4).indices(12)  # the default spread
    [1, 4, 7, 10]
    """

    def __init__(
        self,
        num_frames: int,
        sampling_rate: int | None = None,
        window: str = "spread",
        annotations: str | Path | Mapping[str, Any] | None = None,
        cycle: bool = True,
        seed: int = 0,
        fps: float | None = None,
    ) -> None:
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f"ClipSampling: num_frames must be an integer >= 1, got {num_frames!r}.")
        if window not in WINDOWS:
            raise ValueError(f"ClipSampling: unknown window {window!r}; choose one of {', '.join(WINDOWS)}.")
        if sampling_rate is not None and (isinstance(sampling_rate, bool) or not isinstance(sampling_rate, int)
                                          or sampling_rate < 1):
            raise ValueError(f"ClipSampling: sampling_rate must be an integer >= 1, got {sampling_rate!r}.")
        if window == "spread" and sampling_rate is not None:
            raise ValueError("ClipSampling: window='spread' spreads the clip over the whole video and takes no "
                             "sampling_rate; choose window='random', 'center' or 'first-segment' for a window.")
        if window != "spread" and sampling_rate is None:
            raise ValueError(f"ClipSampling: window={window!r} needs sampling_rate (the window holds sampling_rate "
                             f"x num_frames frames; the release's 64-frame windows: {max(1, 64 // num_frames)} for "
                             f"num_frames={num_frames}).")
        if (window == "first-segment") != (annotations is not None):
            raise ValueError("ClipSampling: window='first-segment' needs annotations= (an ActivityNet-style JSON), "
                             "and only that window reads them.")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"ClipSampling: seed must be an integer >= 0, got {seed!r}.")
        if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"ClipSampling: fps must be a positive number, got {fps!r}.")
        self.num_frames, self.sampling_rate, self.window = num_frames, sampling_rate, window
        self.cycle, self.seed, self.fps = bool(cycle), int(seed), fps
        self.annotations = str(annotations) if isinstance(annotations, (str, Path)) else annotations
        self.segments = load_annotations(annotations) if annotations is not None else {}

    @property
    def window_length(self) -> int | None:
        """Frames in the window (None for ``"spread"``)."""
        return None if self.sampling_rate is None else self.sampling_rate * self.num_frames

    def settings(self) -> dict[str, Any]:
        """The settings as plain JSON values, for a results document's provenance."""
        notes = self.annotations if isinstance(self.annotations, (str, type(None))) else "<mapping>"
        return {"num_frames": self.num_frames, "sampling_rate": self.sampling_rate, "window": self.window,
                "annotations": notes, "cycle": self.cycle, "seed": self.seed, "fps": self.fps}

    def __repr__(self) -> str:
        return "ClipSampling(" + ", ".join(f"{k}={v!r}" for k, v in self.settings().items()) + ")"

    def segment(self, name: str) -> tuple[float, float]:
        """The first annotated segment (seconds) of the video ``name`` (see :func:`annotation_keys`)."""
        for key in annotation_keys(name):
            if key in self.segments:
                if self.segments[key] is None:
                    raise ValueError(f"video {name!r} is listed in {self._where()} without annotated segments; "
                                     "window='first-segment' needs one.")
                return self.segments[key]
        raise ValueError(f"video {name!r} has no entry in {self._where()} (looked for "
                         f"{annotation_keys(name)}); add it or leave the video out.")

    def _where(self) -> str:
        return self.annotations if isinstance(self.annotations, str) else "the annotations"

    def check(self, length: int, name: str = "video", fps: float | None = None) -> None:
        """Raise the ValueError :meth:`indices` would raise for this video, without drawing anything."""
        self.indices(length, 0, name=name, fps=fps)

    def indices(self, length: int, index: int = 0, *, name: str = "video", fps: float | None = None) -> list[int]:
        """The frames (0-based, in time order, repeats when cycled) of a clip from a video of ``length`` frames.

        ``index`` is the item's index in its dataset (seeds ``"random"``); ``name`` identifies the video in
        the annotations and in error messages; ``fps`` is its frame rate (``"first-segment"``; the
        ``fps`` given to the constructor wins, for frame folders).
        """
        if length < 1:
            raise ValueError(f"video {name!r} has no frames.")
        if self.window == "spread":
            return sample_indices(length, self.num_frames)
        size = self.window_length
        start, stop = self._range(length, index, name, fps)
        available = stop - start
        if available < size and not self.cycle:
            where = "its first segment holds" if self.window == "first-segment" else "it has"
            raise ValueError(f"video {name!r} is too short for a window of {size} frames ({self.sampling_rate} x "
                             f"{self.num_frames}): {where} {available}; pass cycle=True to repeat its frames, or a "
                             "smaller sampling_rate.")
        frames = _cycled(start, min(stop, start + size), size)
        return [frames[i] for i in uniform_subsample(size, self.num_frames)]

    def _range(self, length: int, index: int, name: str, fps: float | None) -> tuple[int, int]:
        """First frame of the window and the end of the frames it may take (exclusive)."""
        size = self.window_length
        if self.window == "center":
            return max(0, (length - size) // 2), length
        if self.window == "random":
            rng = np.random.default_rng([self.seed, int(index), _START_STREAM])
            if length > size:
                return int(rng.integers(0, length - size + 1)), length
            if not self.cycle:
                return 0, length
            return int(rng.integers(0, max(0, length - MIN_CYCLED_FRAMES) + 1)), length
        begin, end = self.segment(name)
        rate = self.fps or fps
        if not rate:
            raise ValueError(f"the frame rate of video {name!r} is unknown (a frame folder?); pass "
                             "ClipSampling(fps=...) to turn its annotated seconds into frames.")
        start, stop = math.floor(begin * rate), min(math.floor(end * rate), length)
        if start >= stop:
            raise ValueError(f"the first annotated segment of video {name!r}, {begin:g}-{end:g} s, holds no frame "
                             f"of its {length} at {rate:g} fps.")
        return start, stop


__all__ = ["MIN_CYCLED_FRAMES", "WINDOWS", "ClipSampling", "annotation_keys", "load_annotations",
           "uniform_subsample"]
