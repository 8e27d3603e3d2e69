"""`ClipSettings`: how clips are cut from a data source, in one small record.

Every field is optional: ``None`` means "as the model's input spec (or the source) says"; for real videos (video
folders, pre-stylized folders, ``samples``) the defaults are the authors' release protocol for the model
(:func:`release_clip`: its window of frames, resize and crop). A Lightning checkpoint of this project fills the
fields from its saved hyper-parameters (:meth:`ClipSettings.from_checkpoint`), options on the command line
override them (:meth:`ClipSettings.updated`), and ``bias.json`` records the result. ``analyze.py`` makes one
command-line option per field (``--num-frames``, ``--data-seed``, ...) from the field's type and its ``help``
metadata, so adding a setting is adding a field here and using it in :meth:`ClipSettings.source_kwargs` (what
``lit_stbias.data.from_spec`` receives) or in the session's pair rule.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, NamedTuple

from torch.utils.data import Dataset, Subset

#: The release's window in frames (``config.py``: ``--n_sample_frames 64``), which ``utils.py::get_model`` keeps
#: for the SlowFast-zoo ResNets (C2D, I3D, Slow, Fast, SlowFast) and replaces by sampling_rate x num_frames for
#: :data:`RATE_WINDOW_MODELS`. Tiny presets and user models get it too.
RELEASE_WINDOW = 64
#: Models whose release window is their published clip, ``sampling_rate x num_frames`` (``get_model``).
RATE_WINDOW_MODELS = ("x3d", "mvit", "timesformer")
#: (short side, crop) of the release's transforms (``dataset_factory/*.py::get_data_transforms``:
#: ``ShortSideScale`` then ``CenterCropVideo``) for the published presets: 256 / 256 by default (SlowFast-zoo
#: ResNets and TimeSformer), 256 / 224 for MViT, and X3D's ``TRAIN_JITTER_SCALES[0]`` / ``TEST_CROP_SIZE``.
RELEASE_CROP = {"x3d": {"xs": (182, 160), "s": (182, 160), "full": (182, 160), "m": (256, 224), "l": (356, 312)},
                "mvit": (256, 224)}
RELEASE_CROP_DEFAULT = (256, 256)
#: Settings that only video folders (and ``samples``) take: synthetic sources draw whole clips.
#: Frames a folder source cuts when neither the model nor the settings say (``lit_stbias.data`` folders' default).
DEFAULT_FOLDER_FRAMES = 16
VIDEO_ONLY = ("sampling_rate", "window", "annotations", "cycle", "fps", "short_side")
Window = Literal["spread", "random", "center", "first-segment"]


class ReleaseClip(NamedTuple):
    """What the release reads for one model: a window of ``window`` frames, frames resized to ``short_side``
    (short side) and centre-cropped to ``crop`` (``None``: not published, as the model's input spec says)."""

    window: int
    short_side: int | None = None
    crop: int | None = None


def release_clip(zoo: tuple[str, str] | None, input_spec: Any) -> ReleaseClip:
    """The release's window and crop for a zoo model ``(canonical name, preset)`` (``None``: a user's model).

    >>> from lit_stbias.models import build
    >>> release_clip(("x3d", "m"), build("x3d_m").input_spec)
    ReleaseClip(window=80, short_side=256, crop=224)
    >>> release_clip(("slow", "tiny"), build("slow").input_spec)
    ReleaseClip(window=64, short_side=None, crop=None)
    """
    name, preset = zoo if zoo is not None else (None, None)
    rate, frames = getattr(input_spec, "sampling_rate", None), getattr(input_spec, "num_frames", None)
    window = rate * frames if name in RATE_WINDOW_MODELS and rate and frames else RELEASE_WINDOW
    if name is None or preset == "tiny":
        return ReleaseClip(window)
    crop = RELEASE_CROP.get(name, RELEASE_CROP_DEFAULT)
    side, size = crop.get(preset, RELEASE_CROP_DEFAULT) if isinstance(crop, dict) else crop
    return ReleaseClip(window, side, size)


def _opt(help: str) -> Any:
    return field(default=None, metadata={"help": help})


@dataclass(frozen=True)
class ClipSettings:
    """Clip length, size, temporal stride and, for synthetic sources, how the videos are drawn."""

    num_frames: int | None = _opt("frames cut from each video (the model sees every temporal-stride-th); "
                                  "synthetic VOS: frames per video. Default: the checkpoint's, else the model's")
    size: int | None = _opt("side of the square crop in pixels. Default: the checkpoint's, else the model's")
    temporal_stride: int | None = _opt("the model sees every n-th frame of the clip (SlowOnly trained on 16 "
                                       "frames with stride 4 sees 4). Default: the checkpoint's, else 1")
    task_classes: int | None = _opt("synthetic action sources: classes of the task (e.g. 2 for right-vs-left "
                                    "motion). Default: the checkpoint's, else the source's")
    scene_bias: float | None = _opt("synthetic action sources: how often the scene gives the class away "
                                    "(see SyntheticVideos). Default: the checkpoint's, else the source's")
    camera_pan: bool | None = _opt("synthetic sources: pan the camera. Default: the checkpoint's, else off")
    data_seed: int | None = _opt("the seed synthetic videos (and the random windows of video folders) are "
                                 "drawn from. Default: each measurement seed (so seeds see different videos)")
    num_videos: int | None = _opt("synthetic sources: videos to draw. Default: --num-pairs for action "
                                  "models, num-pairs / 4 for VOS models")
    sampling_rate: int | None = _opt("video folders: the clip is num-frames frames taken uniformly from a window "
                                     "of sampling-rate x num-frames consecutive frames. Default: the release's "
                                     "window for the model (64 frames; X3D, MViT, TimeSformer: their published "
                                     "clip)")
    window: Window | None = _opt("video folders: where the window starts: random (seeded), center, "
                                 "first-segment (with --annotations), or spread (no window: frames spread over "
                                 "the whole video). Default: first-segment with --annotations, else random")
    annotations: str | None = _opt("video folders: an ActivityNet-style JSON of annotated segments, for "
                                   "--window first-segment")
    cycle: bool | None = _opt("video folders: a window longer than the video repeats its frames (the "
                              "release); false refuses such videos. Default: true")
    fps: float | None = _opt("video folders: frame rate of frame folders, for --window first-segment "
                             "(the release's ActivityNet frames: 5)")
    short_side: int | None = _opt("video folders: frames are resized so their short side is this, then "
                                  "centre-cropped to --size. Default: the release's for its crop (256 for "
                                  "the full ResNets, TimeSformer and MViT; X3D's), else --size")
    styles: str | None = _opt("styles of the pairs: comma-separated built-in names and/or texler:DIR "
                              "(the paper's stylization networks, run on the model's device); pre-stylized "
                              "folders: their style_<k> names. Default: every built-in style (pre-stylized: "
                              "every style of the folder)")

    # -- making one ----------------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, Any]) -> "ClipSettings":
        """The clips a Lightning checkpoint of this project was trained and validated on (its module's and
        DataModule's saved hyper-parameters); empty settings for any other checkpoint."""
        module = checkpoint.get("hyper_parameters") or {}
        data = checkpoint.get("datamodule_hyper_parameters") or {}
        if not isinstance(module, Mapping) or not isinstance(data, Mapping):
            return cls()
        return cls(
            num_frames=data.get("num_frames"),
            size=data.get("size"),
            temporal_stride=module.get("temporal_stride"),
            task_classes=data.get("num_classes") or module.get("num_classes"),
            scene_bias=data.get("scene_bias"),
            camera_pan=data.get("camera_pan"),
        )

    @classmethod
    def of_source(cls, source: Dataset) -> tuple[str, "ClipSettings"] | None:
        """``(spec, settings)`` that rebuild a synthetic ``source`` through ``from_spec`` (e.g. a DataModule's
        validation set, drawn with its own seed), or ``None`` when the source is not synthetic."""
        from lit_stbias.data import SyntheticVideos, SyntheticVOS, VOSFrames

        while isinstance(source, Subset) and source.indices == range(len(source.dataset)):
            source = source.dataset
        if isinstance(source, VOSFrames) and isinstance(source.videos, SyntheticVOS):
            videos = source.videos
            spec = "synthetic-vos:" + ("centred" if videos.center_bias else "diffuse")
            return spec, cls(num_frames=videos.num_frames, size=videos.size, camera_pan=videos.camera_pan,
                             data_seed=videos.seed, num_videos=videos.num_videos)
        if isinstance(source, SyntheticVideos):
            return f"synthetic:{source.task}", cls(
                num_frames=source.num_frames, size=source.size, task_classes=source.num_classes,
                scene_bias=source.scene_bias, camera_pan=source.camera_pan, data_seed=source.seed,
                num_videos=source.num_videos)
        return None

    def updated(self, **values: Any) -> "ClipSettings":
        """These settings with every given value that is not ``None`` replacing the field's."""
        unknown = set(values) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown clip settings {sorted(unknown)}; known: {', '.join(self.as_dict())}.")
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ClipSettings":
        """The settings a document recorded; fields this version does not know are refused by name."""
        return cls().updated(**dict(values))

    # -- using one -----------------------------------------------------------------------------------------
    def stride(self) -> int:
        stride = 1 if self.temporal_stride is None else int(self.temporal_stride)
        if stride < 1:
            raise ValueError(f"--temporal-stride must be >= 1, got {stride}.")
        return stride

    def resolved(self, input_spec: Any, vos: bool, num_pairs: int, synthetic: bool,
                 zoo: tuple[str, str] | None = None) -> "ClipSettings":
        """These settings with the defaults filled in (what a document records): clip length and size from
        the model's input spec, stride 1, for synthetic sources the number of videos, and for real videos
        (``vos`` and ``synthetic`` false) the release's window, resize and crop for the zoo model ``zoo``
        (``(canonical name, preset)``; :func:`release_clip`). ``data_seed`` stays ``None`` when unset: each
        measurement seed draws its own videos (synthetic) or windows (video folders).

        Video-folder settings given for a synthetic or VOS source are refused: those sources draw whole clips
        (synthetic) or frames (VOS), so the settings would be recorded without having been used.
        """
        given = [name for name in VIDEO_ONLY if getattr(self, name) is not None]
        if given and (synthetic or vos):
            what = "VOS sources are read frame by frame" if vos else "synthetic sources draw whole clips"
            raise ValueError(f"{', '.join(_option(n) for n in given)}: {what}; these options apply to action "
                             "videos in folders (and samples).")
        values: dict[str, Any] = {"temporal_stride": self.stride(),
                                  "size": self.size or getattr(input_spec, "size", None)}
        frames = getattr(input_spec, "num_frames", None)
        if not vos and self.num_frames is None and frames:
            values["num_frames"] = frames * self.stride()
        if synthetic and self.num_videos is None:
            values["num_videos"] = max(1, math.ceil(num_pairs / 4)) if vos else num_pairs  # a VOS video: T-1 frames
        if not (synthetic or vos):
            values.update(self._release_defaults(input_spec, zoo, values.get("num_frames") or self.num_frames))
        resolved = self.updated(**values)
        resolved.sampling(seed=0)  # bad window settings (a missing annotation file, ...) fail here, once
        return resolved

    def _release_defaults(self, input_spec: Any, zoo: tuple[str, str] | None, num_frames: int | None) -> dict:
        """Window, resize and crop of real videos: the release's for the model unless given."""
        release = release_clip(zoo, input_spec)
        frames = num_frames or DEFAULT_FOLDER_FRAMES
        window = self.window or ("first-segment" if self.annotations is not None else "random")
        if window == "spread" and self.sampling_rate is not None:
            raise ValueError(f"--sampling-rate {self.sampling_rate} sets a window, but --window spread has none: "
                             "choose --window random, center or first-segment, or drop --sampling-rate.")
        if self.sampling_rate is not None and self.sampling_rate < 1:
            raise ValueError(f"--sampling-rate must be >= 1, got {self.sampling_rate}.")
        size = self.size or release.crop or getattr(input_spec, "size", None)
        short_side = self.short_side or (release.short_side if release.crop and size == release.crop else size)
        if size is not None and short_side is not None and short_side < size:
            raise ValueError(f"--short-side {short_side} is smaller than --size {size}: the crop must fit in the "
                             "resized frame.")
        values: dict[str, Any] = {"num_frames": frames, "window": window, "size": size, "short_side": short_side,
                                  "cycle": True if self.cycle is None else self.cycle}
        if window != "spread":
            values["sampling_rate"] = self.sampling_rate or max(1, round(release.window / frames))
        return values

    def sampling(self, seed: int, whole_window: bool = False) -> Any:
        """The :class:`~lit_stbias.data.ClipSampling` of :meth:`resolved` real-video settings, drawing random
        windows from ``seed`` (the data seed when one is set); ``None`` for other sources (no window set).

        ``whole_window`` reads every frame of the window (sampling_rate x num_frames), for models that take
        several subsamples of it (SlowFast's two pathways, as the release takes them).
        """
        if self.window is None:
            return None
        from lit_stbias.data import ClipSampling

        if self.window == "spread":
            return ClipSampling(self.num_frames)
        seed = seed if self.data_seed is None else self.data_seed
        frames, rate = self.num_frames, self.sampling_rate
        if whole_window:
            frames, rate = frames * rate, 1
        return ClipSampling(frames, sampling_rate=rate, window=self.window, annotations=self.annotations,
                            cycle=bool(self.cycle), seed=int(seed), fps=self.fps)

    def source_kwargs(self, spec: str, vos: bool, seed: int) -> dict[str, Any]:
        """Keyword arguments for ``from_spec(spec, ...)`` (of :meth:`resolved` settings): clip length and size
        for every source, plus how the videos are drawn for synthetic ones. ``seed`` is the measurement seed,
        the data seed unless one is set. Real videos get their window from :meth:`sampling` (the session passes
        it, per seed) and are read at ``short_side``."""
        kwargs: dict[str, Any] = {"size": self.size}
        synthetic = spec.startswith("synthetic")
        if self.window is not None and not synthetic and not vos:
            return {"size": self.short_side or self.size}
        if not vos or synthetic:
            kwargs["num_frames"] = self.num_frames
        if synthetic:
            kwargs["num_videos"] = self.num_videos
            kwargs["seed"] = seed if self.data_seed is None else self.data_seed
            kwargs["camera_pan"] = self.camera_pan
            if not vos:
                kwargs["num_classes"] = self.task_classes
                kwargs["scene_bias"] = self.scene_bias
        return {k: v for k, v in kwargs.items() if v is not None}

    def cli_args(self) -> list[str]:
        """The ``analyze.py`` options that give these settings (the fields that are set)."""
        args = []
        for name, value in self.as_dict().items():
            if value is not None:
                args += [_option(name), str(value).lower() if isinstance(value, bool) else str(value)]
        return args


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


__all__ = ["RATE_WINDOW_MODELS", "RELEASE_CROP", "RELEASE_WINDOW", "ClipSettings", "ReleaseClip", "release_clip"]
