"""The three views of one video (or one VOS frame) that give a dynamic pair and a static pair.

Action recognition (videos):

* ``anchor``  = the clip in style a;
* ``dynamic`` = the clip in style b: the same motion, another appearance (the anchor's *dynamic* partner);
* ``static``  = the anchor with its frames shuffled: the same appearance, motion destroyed (*static* partner).

Two-stream VOS (an RGB frame and the colour-coded flow image; for RTNet two frames, each with its forward and
backward flow images):

* ``anchor``  = (frame(s) in style a, flow image(s));
* ``dynamic`` = (frame(s) in style b, same flow image(s));
* ``static``  = (frame(s) in style a, flow images with hue and saturation jittered as the release jitters them,
  see :func:`jitter_frame_flows`): same appearance, other motion.

All randomness comes from an optional ``torch.Generator`` so datasets can make every pair reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import Tensor

from lit_stbias.pairs.styles import available_styles, get_style
from lit_stbias.pairs.stylize import check_image, check_range, check_video, stylize, stylize_image

Video = Union[Tensor, Sequence[Tensor]]  # one tensor, or a list of pathway tensors (SlowFast: [slow, fast])

#: ranges the static VOS partner draws ColorJitter's ``hue`` and ``saturation`` arguments from, per image
#: (the release's ``ExtFlowColorJitter``: ``random.uniform(0.1, 0.5)`` and ``random.uniform(0.1, 1.0)``)
JITTER_HUE = (0.1, 0.5)
JITTER_SATURATION = (0.1, 1.0)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def random_style_pair(generator: torch.Generator | None = None, styles: Sequence[str] | None = None) -> tuple[str, str]:
    """Two distinct style names drawn uniformly from ``styles`` (default: every registered style).

    As in the paper, each video gets its own random pair; the first is the anchor's style."""
    pool = list(dict.fromkeys(available_styles() if styles is None else styles))
    if len(pool) < 2:
        raise ValueError(f"a style pair needs at least 2 distinct styles; got {pool}.")
    first, second = torch.randperm(len(pool), generator=generator)[:2].tolist()
    return pool[first], pool[second]


def _check_pair(styles: Sequence[str]) -> tuple[str, str]:
    if isinstance(styles, str) or len(styles) != 2:
        raise ValueError(f"styles must be a pair (a, b) of style names; got {styles!r}.")
    a, b = styles
    get_style(a), get_style(b)
    if a == b:
        raise ValueError(f"the two styles must differ (a dynamic pair must change appearance); got {a!r} twice.")
    return a, b


def shuffle_permutation(num_frames: int, generator: torch.Generator | None = None) -> Tensor:
    """A random order of ``num_frames`` frames that moves at least half of them (so temporal order is really
    destroyed, not a near-identity). Drawn by rejection from uniform permutations, which succeeds within a
    few draws; a cyclic shift by a random offset is the fallback."""
    if num_frames < 2:
        raise ValueError(f"shuffling frames needs at least 2 frames; got {num_frames}.")
    need = -(-num_frames // 2)
    for _ in range(100):
        perm = torch.randperm(num_frames, generator=generator)
        if int((perm != torch.arange(num_frames)).sum()) >= need:
            return perm
    shift = 1 + int(torch.randint(num_frames - 1, (), generator=generator))
    return torch.roll(torch.arange(num_frames), shift)


def shuffle_frames(video: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``video`` (C, T, H, W) or (B, C, T, H, W) with frames reordered by :func:`shuffle_permutation`; each
    video of a batch gets its own order."""
    if video.ndim == 4:
        return video[:, shuffle_permutation(video.shape[1], generator).to(video.device)]
    return torch.stack([clip[:, shuffle_permutation(clip.shape[1], generator).to(video.device)] for clip in video])


def make_action_views(
    video: Video, styles: Sequence[str] | None = None, generator: torch.Generator | None = None
) -> dict[str, Video]:
    """The anchor, dynamic and static views of a video (see the module docstring).

    ``video`` is (C, T, H, W), (B, C, T, H, W), or a list of such pathway tensors (SlowFast's [slow, fast]): then
    each view is a list too, every pathway stylized, and each pathway shuffled with its own permutation.
    ``styles`` defaults to a :func:`random_style_pair` drawn from ``generator``.
    """
    _check_videos(video)
    a, b = _check_pair(random_style_pair(generator) if styles is None else styles)
    restyle = (lambda v, s: stylize(v, s)) if isinstance(video, Tensor) else (lambda v, s: [stylize(p, s) for p in v])
    return views_from_styled(restyle(video, a), restyle(video, b), generator)


def views_from_styled(anchor: Video, dynamic: Video, generator: torch.Generator | None = None) -> dict[str, Video]:
    """Views from a clip already rendered in two styles (pre-stylized datasets): the static view is the anchor
    shuffled, each pathway of a list on its own."""
    _check_videos(anchor, "anchor")
    _check_videos(dynamic, "dynamic")
    if isinstance(anchor, Tensor):
        static: Video = shuffle_frames(anchor, generator)
    else:
        static = [shuffle_frames(p, generator) for p in anchor]
    return {"anchor": anchor, "dynamic": dynamic, "static": static}


def _check_videos(video: Video, what: str = "video") -> None:
    """A video tensor or a non-empty list of pathway tensors, each (C, T, H, W) / (B, C, T, H, W) in [0, 1] with
    at least 2 frames to shuffle."""
    if isinstance(video, Tensor):
        pathways = {what: video}
    elif isinstance(video, (list, tuple)) and video and all(isinstance(v, Tensor) for v in video):
        pathways = {f"{what} pathway {i}": v for i, v in enumerate(video)}
    else:
        raise ValueError(
            f"{what} must be a tensor (C, T, H, W) / (B, C, T, H, W) or a non-empty list of pathway tensors."
        )
    for name, p in pathways.items():
        check_video(p, name)
        if p.shape[-3] < 2:
            raise ValueError(
                f"the static view shuffles frames, so {name} needs >= 2 frames; got shape {tuple(p.shape)}."
            )


@dataclass(frozen=True)
class FlowJitter:
    """One draw of torchvision ``ColorJitter(brightness=0, contrast=0, saturation=s, hue=h)``'s parameters.

    Attributes:
        hue_shift: fraction of a turn, drawn from U(-h, h).
        saturation: factor, drawn from U(max(0, 1 - s), 1 + s).
        hue_first: ColorJitter applies its operations in a random order; whether the hue goes first.
    """

    hue_shift: float
    saturation: float
    hue_first: bool

    def __call__(self, image: Tensor) -> Tensor:
        """Apply to a [0, 1] RGB image (..., 3, H, W) with torchvision's ``adjust_hue`` / ``adjust_saturation``."""
        from torchvision.transforms.v2 import functional as TF  # here: torchvision's import takes seconds

        if self.hue_first:
            return TF.adjust_saturation(TF.adjust_hue(image, self.hue_shift), self.saturation)
        return TF.adjust_hue(TF.adjust_saturation(image, self.saturation), self.hue_shift)


def draw_hue_saturation(generator: torch.Generator | None = None) -> tuple[float, float]:
    """ColorJitter's ``hue`` (h) and ``saturation`` (s) arguments as the release draws them for one frame:
    h ~ U(:data:`JITTER_HUE`), then s ~ U(:data:`JITTER_SATURATION`)."""
    h = _uniform(*JITTER_HUE, generator)
    return h, _uniform(*JITTER_SATURATION, generator)


def draw_flow_jitter(
    generator: torch.Generator | None = None, hue: float | None = None, saturation: float | None = None
) -> FlowJitter:
    """The release's flow jitter: ``hue`` (h) and ``saturation`` (s) drawn by :func:`draw_hue_saturation`
    unless given, then ``ColorJitter(0, 0, s, h)``'s parameters drawn as torchvision draws them (operation
    order, then the saturation factor, then the hue shift), all from ``generator``.

    With h and s given, a generator in the state of torch's global one draws exactly what ColorJitter draws.
    """
    if hue is None or saturation is None:
        drawn = draw_hue_saturation(generator)
        hue = drawn[0] if hue is None else hue
        saturation = drawn[1] if saturation is None else saturation
    h, s = float(hue), float(saturation)
    if not (0 <= h <= 0.5 and s >= 0):
        raise ValueError(f"ColorJitter needs 0 <= hue <= 0.5 and saturation >= 0, got hue={h}, saturation={s}.")
    order = torch.randperm(4, generator=generator).tolist()  # ColorJitter's fn_idx: 2 = saturation, 3 = hue
    # ColorJitter turns an operation off (and draws nothing for it) when its range is a single point
    factor = float(torch.empty(1).uniform_(max(0.0, 1 - s), 1 + s, generator=generator)) if s else 1.0
    shift = float(torch.empty(1).uniform_(-h, h, generator=generator)) if h else 0.0
    return FlowJitter(hue_shift=shift, saturation=factor, hue_first=order.index(3) < order.index(2))


def jitter_flow_image(flow_rgb: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The static VOS partner's flow image, jittered as the release jitters it (its ``ExtFlowColorJitter``).

    Per image, h ~ U(0.1, 0.5) and s ~ U(0.1, 1.0), then ``ColorJitter(brightness=0, contrast=0, saturation=s,
    hue=h)``: a hue shift ~ U(-h, h) of a turn and a saturation factor ~ U(max(0, 1 - s), 1 + s), applied in a
    random order (:func:`draw_flow_jitter`). Directions change colour and magnitudes fade or strengthen, so the
    motion the image encodes changes while the frame does not. Each image of a batch gets its own draw.
    """
    check_image(flow_rgb, "flow image")
    return jitter_frame_flows(flow_rgb, generator)


def jitter_frame_flows(flows: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The static partner's flow images of one frame or of several, jittered as the release jitters them.

    ``flows`` is (3k, H, W), one frame's k flow images stacked on the channels (RTNet: forward then backward,
    k = 2), or (N, 3k, H, W), N frames. Per frame, h and s are drawn once (:func:`draw_hue_saturation`) and
    each of its images gets its own ColorJitter draw with them (:func:`draw_flow_jitter`), as the release's
    ``ExtFlowColorJitter`` does for RTNet's two flow images. With k = 1 this is :func:`jitter_flow_image`,
    draw for draw.
    """
    if flows.ndim > 3:
        return torch.stack([jitter_frame_flows(frame, generator) for frame in flows])
    h, s = draw_hue_saturation(generator)
    return torch.cat([draw_flow_jitter(generator, hue=h, saturation=s)(image) for image in flows.split(3)])


def _check_vos_inputs(frames: Tensor, flows: Tensor, what: str = "frame") -> None:
    """Frames (..., 3, H, W) in [0, 1] and their flow images (..., 3k, H, W) with the same leading dimensions."""
    check_range(frames, what)
    check_range(flows, "flow image")
    if frames.ndim < 3 or frames.shape[-3] != 3:
        raise ValueError(f"{what} must be RGB (..., 3, H, W); got {tuple(frames.shape)}.")
    if flows.ndim != frames.ndim or flows.shape[-3] % 3 or flows.shape[-3] == 0:
        raise ValueError(f"flow images must be (..., 3k, H, W) like the {what} {tuple(frames.shape)} (k colour-coded "
                         f"flow images per frame: use flow_to_rgb on raw (2, H, W) flow); got {tuple(flows.shape)}.")
    if frames.shape[:-3] != flows.shape[:-3] or frames.shape[-2:] != flows.shape[-2:]:
        raise ValueError(f"{what} {tuple(frames.shape)} and flow images {tuple(flows.shape)} must match in "
                         "every dimension but the channels.")


def vos_views_from_styled(
    anchor: Tensor, dynamic: Tensor, flows: Tensor, generator: torch.Generator | None = None
) -> dict[str, tuple[Tensor, Tensor]]:
    """The anchor, dynamic and static views from frames already in two styles (see the module docstring).

    ``anchor`` and ``dynamic`` are the same frame(s) in styles a and b: (3, H, W) for a one-frame network, or
    (F, 3, H, W) for RTNet's F = 2 frames (or a batch of frames); ``flows`` are their flow images, (3, H, W)
    or (F, 3k, H, W) (RTNet: forward then backward, (2, 6, H, W)). The static view's flow images come from
    :func:`jitter_frame_flows`, drawn from ``generator``.
    """
    _check_vos_inputs(anchor, flows, "anchor frame")
    _check_vos_inputs(dynamic, flows, "dynamic frame")
    return {
        "anchor": (anchor, flows),
        "dynamic": (dynamic, flows),
        "static": (anchor, jitter_frame_flows(flows, generator)),
    }


def make_vos_views(
    frame: Tensor, flow: Tensor, styles: Sequence[str] | None = None, generator: torch.Generator | None = None
) -> dict[str, tuple[Tensor, Tensor]]:
    """The anchor, dynamic and static (rgb, flow image) views of a VOS frame (see the module docstring).

    ``frame`` is an RGB image (3, H, W) or frames (F, 3, H, W) in [0, 1] (a batch, or RTNet's two frames),
    stylized with :func:`stylize_image`; ``flow`` is its flow *image* from
    :func:`~lit_stbias.pairs.flow.flow_to_rgb`, same layout, or (F, 3k, H, W) with k images per frame (RTNet:
    forward and backward). ``styles`` defaults to a :func:`random_style_pair` drawn from ``generator``.
    """
    check_image(frame, "frame")
    _check_vos_inputs(frame, flow)
    a, b = _check_pair(random_style_pair(generator) if styles is None else styles)
    return vos_views_from_styled(stylize_image(frame, a), stylize_image(frame, b), flow, generator)


__all__ = [
    "JITTER_HUE",
    "JITTER_SATURATION",
    "FlowJitter",
    "draw_flow_jitter",
    "draw_hue_saturation",
    "jitter_flow_image",
    "jitter_frame_flows",
    "make_action_views",
    "make_vos_views",
    "random_style_pair",
    "shuffle_frames",
    "shuffle_permutation",
    "views_from_styled",
    "vos_views_from_styled",
]
