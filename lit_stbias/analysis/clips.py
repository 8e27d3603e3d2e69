"""`ClipSettings`: how clips are cut from a data source, in one small record.

Every field is optional: ``None`` means "as the model's input spec (or the source) says". A Lightning
checkpoint of this project fills the fields from its saved hyper-parameters (:meth:`ClipSettings.from_checkpoint`),
options on the command line override them (:meth:`ClipSettings.updated`), and ``bias.json`` records the
result. ``analyze.py`` makes one command-line option per field (``--num-frames``, ``--data-seed``, ...) from
the field's type and its ``help`` metadata, so adding a setting is adding a field here and using it in
:meth:`ClipSettings.source_kwargs` (what ``lit_stbias.data.from_spec`` receives) or in the session's pair rule.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from torch.utils.data import Dataset, Subset


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
    data_seed: int | None = _opt("synthetic sources: the seed the videos are drawn from. Default: each "
                                 "measurement seed (so seeds see different videos)")
    num_videos: int | None = _opt("synthetic sources: videos to draw. Default: --num-pairs for action "
                                  "models, num-pairs / 4 for VOS models")

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

    def resolved(self, input_spec: Any, vos: bool, num_pairs: int, synthetic: bool) -> "ClipSettings":
        """These settings with the defaults filled in (what a document records): clip length and size from
        the model's input spec, stride 1, and for synthetic sources the number of videos. ``data_seed`` stays
        ``None`` when unset: each measurement seed draws its own videos."""
        values: dict[str, Any] = {"temporal_stride": self.stride(),
                                  "size": self.size or getattr(input_spec, "size", None)}
        frames = getattr(input_spec, "num_frames", None)
        if not vos and self.num_frames is None and frames:
            values["num_frames"] = frames * self.stride()
        if synthetic and self.num_videos is None:
            values["num_videos"] = max(1, math.ceil(num_pairs / 4)) if vos else num_pairs  # a VOS video: T-1 frames
        return self.updated(**values)

    def source_kwargs(self, spec: str, vos: bool, seed: int) -> dict[str, Any]:
        """Keyword arguments for ``from_spec(spec, ...)`` (of :meth:`resolved` settings): clip length and size
        for every source, plus how the videos are drawn for synthetic ones. ``seed`` is the measurement seed,
        the data seed unless one is set."""
        kwargs: dict[str, Any] = {"size": self.size}
        synthetic = spec.startswith("synthetic")
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
                args += [f"--{name.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
        return args


__all__ = ["ClipSettings"]
