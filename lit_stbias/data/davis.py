"""DAVIS on disk as per-frame items: a DAVIS-like folder (:class:`DavisLike`: frame, forward flow, mask), the
Stylized DAVIS release as the paper measures it (:class:`StylizedDavis`: the frame in every style, the published
flow images, the mask), and the sum of a VOS dataset's masks at its own frame size (:func:`mask_sum`, Fig. 7).

DAVIS-like layout (the ``480p`` level is optional; ``resolution`` names another, e.g. ``Full-Resolution``)::

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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lit_stbias.data.flow import farneback_flow
from lit_stbias.data.folders import SKIPPED_HINT, _Skips, read_or_raise
from lit_stbias.data.video_io import VideoReadError, fit_frame, frame_files, natural_key, read_image
from lit_stbias.data.vos import SyntheticVOS, VOSFrames

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


def read_binary_mask(path: str | Path) -> np.ndarray:
    """An annotation image as a bool (H, W) mask: object wherever the value is > 0 (any colour channel; an alpha
    channel is ignored). Palette PNGs count by index (DAVIS 2017's object ids), grey ones by value (DAVIS 2016's
    0/255, where this equals the release's ``annot // 255``). :class:`VideoReadError` when it cannot be decoded."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image)
            if image.mode.endswith("A"):  # RGBA, LA, PA: the alpha channel says nothing about the object
                array = array[..., :-1]
    except FileNotFoundError:
        raise
    except Exception as err:
        raise VideoReadError(f"cannot decode mask {path}: {err}") from err
    mask = array > 0
    return mask.any(axis=2) if mask.ndim == 3 else mask


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
        mask = read_binary_mask(path).astype(np.float32)
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


# --- Stylized DAVIS, as the release reads it -----------------------------------------------------------------

#: The styles of the Stylized DAVIS release, by the folder names it ships (its style ids 1-4, in this order).
STYLIZED_DAVIS_STYLES = ("Lynx", "Maruska640", "Zuzka1", "Zuzka2")
#: Repetitions of the split the release measures (``nreps`` in its VOS configs).
RELEASE_REPS = 5
#: RTNet's second frame lies ``other`` frames away, ``other`` drawn from the integers -10..9 (the release's
#: ``np.random.randint(-10, 10)``) once per sequence and repetition, wrapping around within the sequence.
PARTNER_SCOPE = 10
FORWARD_FLOW_DIR, BACKWARD_FLOW_DIR = "FlowImages_gap1", "FlowImages_gap-1"
_ITEM_FILES = ("mask", "flow_image", "flow_image_bw")  # the other files of a frame, next to its styles
_U64 = (1 << 64) - 1

STYLIZED_DAVIS_LAYOUT = """expected DAVIS 2016 with the Stylized DAVIS release, e.g.
  ROOT/ImageSets/480p/val.txt                  split: '/JPEGImages/480p/<seq>/00000.jpg ...' lines, or names
  ROOT/Annotations/480p/<seq>/00000.png        masks, object > 0
  ROOT/FlowImages_gap1/<seq>/00000.png         forward flow images t -> t+1 (every frame but the last)
  ROOT/FlowImages_gap-1/<seq>/00001.png        backward flow images t -> t-1 (backward_flow=True; not the first)
  STYLIZED/JPEGImages/<Style>/<seq>/00000.jpg  one folder per style: Lynx, Maruska640, Zuzka1, Zuzka2
STYLIZED is ROOT unless stylized_root= names another folder; the flow folders may sit in either"""


def is_stylized_davis(path: str | Path) -> bool:
    """Whether ``path`` holds the release's style folders (``JPEGImages/Lynx`` etc.) next to DAVIS."""
    images = Path(path) / "JPEGImages"
    return any((images / style).is_dir() for style in STYLIZED_DAVIS_STYLES)


def _check_size(size: int | tuple[int, int] | None) -> int | tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    if (isinstance(size, (tuple, list)) and len(size) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        return (int(size[0]), int(size[1]))
    raise ValueError(f"size must be None (the files' own size), a short side (int) or (H, W); got {size!r}.")


def _target_size(native: tuple[int, int], size: int | tuple[int, int] | None) -> tuple[int, int]:
    """The (H, W) a frame of ``native`` (H, W) is read at: as is, short side ``size`` keeping the aspect (no
    crop), or exactly ``size``."""
    if size is None:
        return native
    if isinstance(size, int):
        scale = size / min(native)
        return max(1, round(native[0] * scale)), max(1, round(native[1] * scale))
    return size


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) from an image's header, without decoding its pixels."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception as err:
        raise VideoReadError(f"unreadable: cannot read the header of {path.name}: {err}") from err
    return height, width


def _by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in frame_files(folder)} if folder.is_dir() else {}


class StylizedDavis(_Skips, Dataset):
    """The Stylized DAVIS release read as the paper measures it: every frame of the split, at its full size,
    ``reps`` times (layout: ``STYLIZED_DAVIS_LAYOUT``, or docs/data.md).

    Item ``k`` is frame ``frames[k % n]`` in repetition ``k // n`` (``n = len(dataset) // reps``; every
    repetition holds the same frames in the same order, so repetitions differ only in the draws a pair dataset
    makes for them)::

        {"styled": {style: (3, H, W) float in [0, 1]},   # the frame in every style
         "flow_image": (3, H, W) float in [0, 1],          # the published forward flow image, as read
         "mask": (1, H, W) float {0, 1}, "has_mask": True,
         "index": k, "rep": r, "video_index": v, "video_id": str, "t": int, "frame_name": str}

    ``t`` is the frame's position in its sequence (0 = first frame). With ``backward_flow=True`` (RTNet, which
    takes two frames and both flows) the items are the frames that have both flow images (all but a sequence's
    first and last) and also carry ``"flow_image_bw"`` and the second frame the release pairs with this one:
    ``"other"`` (an offset in -10..9 drawn once per sequence and repetition from a generator seeded by
    ``(seed, rep, video_index)``), ``"partner_index"`` (the item holding that frame, same repetition) and
    ``"partner_t"``. Without it the items are every frame but the last (the one without forward flow).

    Flow images are never re-coded: the PNG's RGB, scaled to [0, 1]. A flow image of another size than its
    frame is resized to it (as the release does). ``size``: None keeps the files' size (DAVIS 480p: 480 x 854);
    an int sets the short side keeping the aspect ratio; (H, W) resizes exactly; frames are never cropped.
    All items share one size, checked at construction, so any batch stacks; a frame whose size differs raises
    ``ValueError`` naming it. Missing folders or files the release needs raise ``FileNotFoundError`` naming
    them; a mask of another size than its frame raises ``ValueError``. A file whose header cannot be read drops
    its frame (``dataset.skipped``); one that fails to decode later raises
    :class:`~lit_stbias.data.UnreadableVideo` naming it, never replaced by another frame.

    Args:
        root: the DAVIS 2016 folder (``ImageSets``, ``Annotations``; ``FlowImages_gap1`` here or in
            ``stylized_root``).
        stylized_root: the folder holding ``JPEGImages/<Style>`` (default: ``root``).
        split: a split name (``ROOT/ImageSets/480p/<split>.txt`` or ``ROOT/ImageSets/<split>.txt``) or a path.
        styles: the style folders to read (default: the release's four).
        reps: repetitions of the split (the release: 5).
        backward_flow: RTNet's items (see above).
        seed: seeds the second-frame offsets.
    """

    kind = "stylized-vos"

    def __init__(
        self,
        root: str | Path,
        stylized_root: str | Path | None = None,
        split: str | Path = "val",
        styles: Sequence[str] = STYLIZED_DAVIS_STYLES,
        size: int | tuple[int, int] | None = None,
        reps: int = RELEASE_REPS,
        backward_flow: bool = False,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        self.stylized_root = Path(stylized_root) if stylized_root is not None else self.root
        for folder in dict.fromkeys((self.root, self.stylized_root)):
            if not folder.is_dir():
                raise FileNotFoundError(f"StylizedDavis: {folder} is not a folder; {STYLIZED_DAVIS_LAYOUT}")
        if (isinstance(styles, str) or not styles or len(set(styles)) != len(styles)
                or not all(isinstance(s, str) and s and s not in _ITEM_FILES for s in styles)):
            raise ValueError(f"StylizedDavis: styles must be distinct style folder names; got {styles!r}.")
        if not isinstance(reps, (int, np.integer)) or isinstance(reps, bool) or reps < 1:
            raise ValueError(f"StylizedDavis: reps must be an integer >= 1; got {reps!r}.")
        self.styles, self.reps, self.size = tuple(styles), int(reps), _check_size(size)
        self.backward_flow, self.seed = bool(backward_flow), int(seed)
        self.skipped = []
        self.split_file = self._split_file(split)
        self.annotations = self._folder(self.root, "Annotations", "the masks")
        style_root = self._folder(self.stylized_root, "JPEGImages", "the style folders", level=False)
        self.style_dirs = {style: style_root / style for style in self.styles}
        for style, folder in self.style_dirs.items():
            if not folder.is_dir():
                present = sorted(d.name for d in style_root.iterdir() if d.is_dir())
                raise FileNotFoundError(f"StylizedDavis: style folder {folder} not found (style {style!r}; "
                                        f"{style_root} holds {present}); {STYLIZED_DAVIS_LAYOUT}")
        self.flow_dirs = {"flow_image": self._flow_folder(FORWARD_FLOW_DIR)}
        if self.backward_flow:
            self.flow_dirs["flow_image_bw"] = self._flow_folder(BACKWARD_FLOW_DIR)
        #: every sequence of the split with all its frame stems, in order (the masks :func:`mask_sum` adds up)
        self.sequences = self._read_split()
        self._index_frames()

    # -- construction ----------------------------------------------------------------------------------------

    def _folder(self, base: Path, name: str, what: str, level: bool = True) -> Path:
        folder = _level(base, name, "480p") if level else base / name
        if not folder.is_dir():
            raise FileNotFoundError(f"StylizedDavis: {base / name} ({what}) not found; {STYLIZED_DAVIS_LAYOUT}")
        return folder

    def _flow_folder(self, name: str) -> Path:
        bases = list(dict.fromkeys((self.root, self.stylized_root)))
        for base in bases:
            if (base / name).is_dir():
                return _level(base, name, "480p")
        raise FileNotFoundError(f"StylizedDavis: flow image folder {name} not found in {' or '.join(map(str, bases))}"
                                f"; {STYLIZED_DAVIS_LAYOUT}")

    def _split_file(self, split: str | Path) -> Path:
        sets = self.root / "ImageSets"
        if not sets.is_dir():
            raise FileNotFoundError(f"StylizedDavis: {sets} not found; {STYLIZED_DAVIS_LAYOUT}")
        candidates = [Path(split), sets / "480p" / f"{split}.txt", sets / f"{split}.txt"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"StylizedDavis: split {str(split)!r} is neither a file nor "
                                    f"{candidates[1]} or {candidates[2]}.")
        return found

    def _read_split(self) -> dict[str, list[str]]:
        """Sequence -> frame stems in natural order. Lines naming frames ('/JPEGImages/480p/bear/00000.jpg
        /Annotations/...', DAVIS 2016) list them; a line naming a sequence takes every frame of
        ``ROOT/JPEGImages/480p/<seq>``."""
        listed: dict[str, list[str]] = {}
        for line in self.split_file.read_text().splitlines():
            token = line.split()[0] if line.split() else ""
            if "/" in token:
                path = Path(token.lstrip("/"))
                stems = listed.setdefault(path.parent.name, [])
                if path.stem not in stems:
                    stems.append(path.stem)
            elif token:
                folder = _level(self.root, "JPEGImages", "480p") / token
                if not folder.is_dir():
                    raise FileNotFoundError(f"StylizedDavis: {self.split_file} names sequence {token!r}, but "
                                            f"{folder} (its frames) does not exist.")
                listed[token] = [p.stem for p in frame_files(folder)]
        if not listed:
            raise ValueError(f"StylizedDavis: {self.split_file} names no sequence; {STYLIZED_DAVIS_LAYOUT}")
        return {seq: sorted(stems, key=lambda s: natural_key(Path(s))) for seq, stems in listed.items()}

    def _index_frames(self) -> None:
        """Find every file each usable frame needs (one error listing the missing ones), read the headers and
        fix one item size."""
        folders = {**self.style_dirs, "mask": self.annotations, **self.flow_dirs}
        first = 1 if self.backward_flow else 0
        self.videos: list[str] = []
        self.items: list[tuple[int, int]] = []
        self._files: list[dict[str, Path]] = []
        missing: list[Path] = []
        for seq, stems in self.sequences.items():
            absent = [d / seq for d in folders.values() if not (d / seq).is_dir()]
            if absent:
                more = f" (nor {len(absent) - 1} more of its folders)" if len(absent) > 1 else ""
                raise FileNotFoundError(f"StylizedDavis: {self.split_file} names sequence {seq!r}, but {absent[0]} "
                                        f"does not exist{more}.")
            usable = range(first, len(stems) - 1)
            if not usable:
                self._skip(self.style_dirs[self.styles[0]] / seq,
                           f"too short: {len(stems)} frames; a frame needs {'both flows' if first else 'a next frame'}")
                continue
            found = {key: _by_stem(d / seq) for key, d in folders.items()}
            v = len(self.videos)
            for t in usable:
                stem = stems[t]
                files = {}
                for key, d in folders.items():
                    path = found[key].get(stem)
                    if path is None:
                        missing.append(d / seq / f"{stem}{'.jpg' if key in self.style_dirs else '.png'}")
                    files[key] = path
                if None not in files.values():
                    self.items.append((v, t))
                    self._files.append(files)
            self.videos.append(seq)
        if missing:
            more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
            raise FileNotFoundError(f"StylizedDavis: missing {len(missing)} of the files the release reads: "
                                    f"{', '.join(map(str, missing[:3]))}{more}.")
        self._check_sizes()
        if self.skipped:
            kinds = Counter(entry["reason"].split(":", 1)[0] for entry in self.skipped)
            summary = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
            warnings.warn(f"StylizedDavis: left out {len(self.skipped)} sequences or frames of {self.split_file} "
                          f"({summary}); {SKIPPED_HINT}", stacklevel=3)
        if not self.items:
            raise ValueError(f"StylizedDavis: no usable frame in {self.split_file} (skipped: {self.skipped[:5]}).")
        self._positions: dict[int, list[int]] = {}
        for j, (v, _) in enumerate(self.items):
            self._positions.setdefault(v, []).append(j)

    def _check_sizes(self) -> None:
        """Every frame's styles and mask share its size; all frames share one item size (else no batch
        stacks). Frames whose headers cannot be read are dropped."""
        items, files, self.frame_size, reference = [], [], None, None
        for (v, t), paths in zip(self.items, self._files):
            sizes = {}
            for key, path in paths.items():
                try:
                    sizes[key] = _image_size(path)
                except VideoReadError as err:
                    self._skip(path, str(err))
                    break
            if len(sizes) < len(paths):
                continue
            native = sizes[self.styles[0]]
            for key in (*self.styles, "mask"):
                if sizes[key] != native:
                    what = "a mask" if key == "mask" else "every style of a frame"
                    raise ValueError(f"StylizedDavis: {paths[key]} is {_hw(sizes[key])}, but "
                                     f"{paths[self.styles[0]]} is {_hw(native)}; {what} must have the frame's size.")
            target = _target_size(native, self.size)
            if self.frame_size is None:
                self.frame_size, reference = target, paths[self.styles[0]]
            elif target != self.frame_size:
                raise ValueError(f"StylizedDavis: {paths[self.styles[0]]} is read at {_hw(target)}, but {reference} "
                                 f"at {_hw(self.frame_size)}; frames of different sizes cannot share a batch: pass "
                                 "size=(H, W) to resize every frame to one size.")
            items.append((v, t))
            files.append(paths)
        self.items, self._files = items, files

    # -- items -----------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.items) * self.reps

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    @property
    def frames_per_rep(self) -> int:
        return len(self.items)

    def frame_indices(self, video: int, rep: int = 0) -> list[int]:
        """The item indices of one sequence's frames in one repetition, in time order."""
        return [rep * len(self.items) + j for j in self._positions.get(video, [])]

    def partner(self, index: int) -> dict[str, int]:
        """RTNet's second frame for item ``index``, as the release picks it: ``other`` (-10..9, one draw per
        sequence and repetition, seeded by ``(seed, rep, video_index)``) frames further along the sequence's
        usable frames, wrapping around; ``{"other", "partner_index", "partner_t"}``."""
        rep, j = divmod(int(index), len(self.items))
        v = self.items[j][0]
        positions = self._positions[v]
        rng = np.random.default_rng([self.seed & _U64, rep, v])
        other = int(rng.integers(-PARTNER_SCOPE, PARTNER_SCOPE))
        q = positions[(positions.index(j) + other) % len(positions)]
        return {"other": other, "partner_index": rep * len(self.items) + q, "partner_t": self.items[q][1]}

    def _rgb(self, path: Path) -> torch.Tensor:
        array = read_image(path)
        if array.shape[:2] != self.frame_size:
            array = fit_frame(array, self.frame_size)
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), np.float32) / 255.0)

    def _mask(self, path: Path) -> torch.Tensor:
        import cv2

        mask = read_binary_mask(path).astype(np.uint8)
        if mask.shape != self.frame_size:
            mask = cv2.resize(mask, self.frame_size[::-1], interpolation=cv2.INTER_NEAREST)
        return torch.from_numpy(mask.astype(np.float32))[None]

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items.")
        rep, j = divmod(index, len(self.items))
        (v, t), files = self.items[j], self._files[j]
        item = {
            "styled": {s: read_or_raise(files[s], lambda s=s: self._rgb(files[s])) for s in self.styles},
            **{key: read_or_raise(files[key], lambda key=key: self._rgb(files[key])) for key in self.flow_dirs},
            "mask": read_or_raise(files["mask"], lambda: self._mask(files["mask"])),
            "has_mask": True,
            "index": index,
            "rep": rep,
            "video_index": v,
            "video_id": self.videos[v],
            "t": t,
            "frame_name": self.sequences[self.videos[v]][t],
        }
        if self.backward_flow:
            item.update(self.partner(index))
        return item

    def mask_files(self) -> list[Path]:
        """The annotation of every frame of every sequence of the split that has one (each once, whatever
        ``reps``): what :func:`mask_sum` adds up."""
        files = []
        for seq, stems in self.sequences.items():
            found = _by_stem(self.annotations / seq)
            files += [found[s] for s in stems if s in found]
        return files

    def __repr__(self) -> str:
        return (f"StylizedDavis(root={str(self.root)!r}, stylized_root={str(self.stylized_root)!r}, "
                f"split={self.split_file.stem!r}, styles={list(self.styles)}, videos={self.num_videos}, "
                f"frames={len(self.items)}, reps={self.reps}, size={self.frame_size}, "
                f"backward_flow={self.backward_flow}, skipped={len(self.skipped)})")


def _hw(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]} (HxW)"


# --- the sum of a dataset's masks (Fig. 7) -------------------------------------------------------------------

@dataclass(frozen=True)
class MaskSum:
    """The binary masks of a VOS dataset added up at one frame size: ``total[i, j]`` counts the annotated frames
    in which pixel (i, j) is object, over ``frames`` frames; ``mean`` = total / frames, in [0, 1]."""

    total: np.ndarray
    frames: int

    @property
    def mean(self) -> np.ndarray:
        return self.total / self.frames

    @property
    def shape(self) -> tuple[int, int]:
        return self.total.shape


def _mask_readers(source: Dataset) -> list[tuple[str, Callable[[], np.ndarray]]]:
    """(name, read) per annotation file, or per rendered video, of a source: each ``read()`` gives (n, H, W)
    masks at the files' own size, whatever size the source's items are resized to."""
    if isinstance(source, VOSFrames):
        source = source.videos
    if isinstance(source, StylizedDavis):
        paths = source.mask_files()
    elif isinstance(source, DavisLike):
        candidates = (source.annotations / name / f"{f.stem}.png"
                      for name, files in zip(source.videos, source.frame_paths) for f in files)
        paths = [p for p in candidates if p.is_file()]
    elif isinstance(source, SyntheticVOS):
        return [(f"{source!r} video {i}", lambda i=i: source[i]["masks"].numpy() > 0.5) for i in range(len(source))]
    else:
        raise ValueError(f"mask_sum takes a DavisLike, StylizedDavis or SyntheticVOS source (or its .frames()); "
                         f"got {type(source).__name__}.")
    return [(str(p), lambda p=p: read_binary_mask(p)[None]) for p in paths]


def mask_sum(source: Dataset, size: tuple[int, int] | None = None, progress: bool = True) -> MaskSum:
    """Add up every binary mask of a VOS dataset at its own full frame size, never cropped: the centre-bias map
    of the paper's Fig. 7 (``.total``) and the mean mask (``.mean``).

    ``source``: :class:`DavisLike` (every annotated frame of its videos, the last frames included),
    :class:`StylizedDavis` (every annotated frame of the split, once whatever ``reps``) or
    :class:`~lit_stbias.data.SyntheticVOS` (every frame of every video); masks are read from the files at their
    own size, whatever ``size`` the source resizes its items to. All masks must share one size (else a
    ``ValueError`` names the first that differs); ``size=(H, W)`` resizes each one (nearest neighbour) first,
    as the release does for its 480 x 854 map. ``progress`` shows a progress bar.

    >>> from lit_stbias.data import SyntheticVOS
    >>> summed = mask_sum(SyntheticVOS(num_videos=2, num_frames=3, size=32), progress=False)
    >>> summed.frames, summed.shape, bool(summed.total.max() <= 6)
    (6, (32, 32), True)
    """
    from tqdm.auto import tqdm

    if size is not None:
        size = _check_size(size)
        if isinstance(size, int):
            raise ValueError(f"mask_sum: size must be (H, W) or None, not a short side ({size}).")
    total, frames, first = None, 0, ""
    for name, read in tqdm(_mask_readers(source), desc="mask sum", unit="file", disable=not progress):
        masks = read()
        if size is not None and masks.shape[1:] != size:
            import cv2

            masks = np.stack([cv2.resize(m.astype(np.uint8), size[::-1], interpolation=cv2.INTER_NEAREST)
                              for m in masks]) > 0
        if total is None:
            total, first = np.zeros(masks.shape[1:], np.float64), name
        elif masks.shape[1:] != total.shape:
            raise ValueError(f"mask_sum: {name} is {_hw(masks.shape[1:])}, but {first} is {_hw(total.shape)}; pass "
                             "size=(H, W) to resize every mask to one size (nearest neighbour).")
        total += masks.sum(axis=0)
        frames += len(masks)
    if total is None:
        raise ValueError(f"mask_sum: {source!r} holds no annotated frame.")
    return MaskSum(total, frames)
