"""VOS pairs for every published network, one rule: the model's input spec says what a view holds.

* **One frame** (FusionSeg, MATNet: ``model(rgb, flow_image)``): a view is (frame (3, H, W), its forward flow
  image (3, H, W)).
* **Two frames** (RTNet: ``model(frames, flows)``): a view is (the anchor frame and its partner frame
  (2, 3, H, W), each frame's forward then backward flow images (2, 6, H, W)); the partner is the frame the
  release pairs with the anchor (``"partner_index"``, see :func:`~lit_stbias.data.vos.partner_offset`).

anchor = frame(s) in style a with their flow image(s); dynamic = the frame(s) in style b, the same flow
images; static = the frame(s) in style a, every flow image jittered as the release jitters it (per frame, h
and s drawn once, each image its own ColorJitter draw: :func:`~lit_stbias.pairs.views.jitter_frame_flows`).

Sources: per-frame items with a frame and raw flow in pixels (``SyntheticVOS().frames()``, ``DavisLike``),
colour-coded here with :func:`~lit_stbias.pairs.flow.flow_to_rgb`, or with the frame in several styles and
published flow images (``StylizedDavis``), used as they are. :func:`vos_frames` picks the items a network
needs (RTNet: the frames with both flows and a partner).

Randomness, as the release draws it: the style pair once per sequence and repetition, from a generator keyed
on ``(seed, rep, video)``; the flow jitter per frame, keyed on ``(seed, rep, video, t)``. Every draw is a pure
function of the seed and the item, the same in any order, worker or rank; repetitions of ``StylizedDavis``
draw their own styles and jitter.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from lit_stbias.data.vos import BackwardFlowFrames, SyntheticVOS, VOSFrames
from lit_stbias.pairs.flow import flow_to_rgb
from lit_stbias.pairs.stylize import stylize_image
from lit_stbias.pairs.views import random_style_pair, vos_views_from_styled

if TYPE_CHECKING:  # pairs never import the model zoo; a spec is read by its attributes
    from lit_stbias.models.spec import InputSpec

ONE_FRAME, TWO_FRAMES = "one-frame", "two-frames"
#: source keys copied into pair items when present (what reports need to name and score a frame)
PASSTHROUGH_KEYS = ("label", "video_id")
#: keys of a per-frame item copied into :class:`VOSInputs` items when present
FRAME_KEYS = ("video_index", "video_id", "t", "rep", "frame_name", "partner_index", "label")
_U64 = (1 << 64) - 1
RTNET_SOURCES = ("synthetic-vos (SyntheticVOS(...).frames(backward_flow=True)), a DAVIS-like folder "
                 "(BackwardFlowFrames) or StylizedDavis(..., backward_flow=True); vos_frames(source, spec) picks them")


def keyed_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from integer keys alone (any number, negative ones too), well mixed so
    neighbouring keys are unrelated. ``keyed_generator(seed, index)`` is ``item_generator(seed, index)``.

    >>> a, b = keyed_generator(0, 1, 2, 3), keyed_generator(0, 1, 2, 3)
    >>> torch.equal(torch.rand(2, generator=a), torch.rand(2, generator=b))
    True
    """
    words = [int(k) & _U64 for k in keys]  # SeedSequence takes non-negative entropy only
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def input_form(spec: InputSpec | None) -> str:
    """:data:`ONE_FRAME` for ``model(rgb, flow_image)`` (and for ``None``), :data:`TWO_FRAMES` for RTNet's
    ``model(frames (B, 2, 3, H, W), flows (B, 2, 6, H, W))``; any other spec is a ``ValueError``."""
    if spec is None:
        return ONE_FRAME
    if not getattr(spec, "two_stream", False):
        raise ValueError(f"VOS pairs are for two-stream VOS models (model(rgb, flow_image) or RTNet's "
                         f"model(frames, flows)); this model takes {spec.num_frames}-frame clips.")
    if spec.num_frames == 1 and not spec.backward_flow:
        return ONE_FRAME
    if spec.num_frames == 2 and spec.backward_flow:
        return TWO_FRAMES
    raise ValueError(f"no VOS view rule for {spec.num_frames} frames with"
                     f"{'' if spec.backward_flow else 'out'} backward flow; the rules are one frame with its "
                     "forward flow image, or RTNet's two frames with forward and backward flow images.")


def vos_frames(source: Dataset, spec: InputSpec | None = None) -> Dataset:
    """The per-frame items of a VOS source that a network of ``spec`` takes.

    One-frame networks: ``source.frames()`` (every frame with a forward flow), or ``source`` when it is
    per-frame already. RTNet: the frames with both flows and the release's partner frame:
    ``VOSFrames(..., backward_flow=True)`` for synthetic videos (exact backward flow), ``StylizedDavis`` as it
    is when built with ``backward_flow=True``, and :class:`~lit_stbias.data.vos.BackwardFlowFrames` (Farneback
    backward flow) over any other per-frame source (a DAVIS-like folder).
    """
    frames = source.frames() if hasattr(source, "frames") else source
    if input_form(spec) == ONE_FRAME or getattr(frames, "backward_flow", False):
        return frames
    if isinstance(source, SyntheticVOS):
        return source.frames(backward_flow=True)
    if isinstance(frames, VOSFrames):
        return VOSFrames(frames.videos, frames.cache_size, backward_flow=True)
    if getattr(frames, "kind", "") == "stylized-vos":
        raise ValueError(f"{frames!r} has no backward flow images; RTNet's pairs need "
                         "StylizedDavis(..., backward_flow=True) (the FlowImages_gap-1 folder).")
    if hasattr(frames, "frame_indices") and hasattr(frames, "num_videos"):
        return BackwardFlowFrames(frames)
    raise ValueError(f"{type(source).__name__} cannot give RTNet's frames (two frames, forward and backward flow); "
                     f"use {RTNET_SOURCES}.")


def _unwrap(source: Dataset) -> tuple[Dataset, list[int] | None]:
    """The dataset under (nested) ``Subset``s and the indices into it, or None when ``source`` is not one."""
    indices = None
    while isinstance(source, Subset):
        own = [int(i) for i in source.indices]
        indices = own if indices is None else [own[i] for i in indices]
        source = source.dataset
    return source, indices


def _flow_image(item: Mapping[str, Any], key: str, raw_key: str, index: int, source: str) -> Tensor:
    """A flow image as published (``flow_image``…) or colour-coded from raw flow in pixels (``flow``…)."""
    if key in item:
        return item[key]
    if raw_key in item:
        return flow_to_rgb(item[raw_key])
    what = "forward" if raw_key == "flow" else "backward"
    raise ValueError(f"{source} item {index} has no {what} flow ({raw_key!r}: raw (2, H, W) flow in pixels, or "
                     f"{key!r}: a flow image)" + (f"; RTNet's items come from {RTNET_SOURCES}." if what == "backward"
                                                  else "."))


class VOSInputs(Dataset):
    """Per-frame VOS items in a network's input form (see the module docstring), without styles: what
    :class:`~lit_stbias.lightning.vos.VOSModule` trains on and :class:`VOSPairs` makes views from.

    Item i: ``{"rgb": frame(s), "flow_image": flow image(s), "mask": (1, H, W), "has_mask", "index": i}``, the
    frame(s) (3, H, W) or (2, 3, H, W) and the flow images (3, H, W) or (2, 6, H, W), the mask the anchor
    frame's; a pre-stylized source gives ``"styled"`` ({style: frame(s)}) instead of ``"rgb"``. Keys of
    :data:`FRAME_KEYS` are copied from the anchor's item. ``source`` holds per-frame items (see
    :func:`vos_frames`), possibly under ``Subset``s: RTNet's partner frames are read from the dataset below them.
    """

    def __init__(self, source: Dataset, spec: InputSpec | None = None) -> None:
        self.source, self.form = source, input_form(spec)
        self.base, self.indices = _unwrap(source)
        self.name = type(self.base).__name__

    def __len__(self) -> int:
        return len(self.source)

    def source_index(self, index: int) -> int:
        """The index of item ``index`` in the dataset under the ``Subset``s."""
        return int(index) if self.indices is None else self.indices[int(index)]

    def _read(self, index: int) -> Mapping[str, Any]:
        item = self.base[index]
        if not isinstance(item, Mapping) or not ("frame" in item or "styled" in item):
            got = list(item) if isinstance(item, Mapping) else type(item).__name__
            raise ValueError(f"{self.name} items must be dicts with 'frame' (3, H, W) or 'styled' and their flow; "
                             f"got {got}.")
        return item

    def _flows(self, item: Mapping[str, Any], index: int) -> Tensor:
        forward = _flow_image(item, "flow_image", "flow", index, self.name)
        if self.form == ONE_FRAME:
            return forward
        return torch.cat([forward, _flow_image(item, "flow_image_bw", "flow_bw", index, self.name)])

    def __getitem__(self, index: int) -> dict[str, Any]:
        k = self.source_index(index)
        item = self._read(k)
        pictures = item["styled"] if "styled" in item else item["frame"]
        flows = self._flows(item, k)
        if self.form == TWO_FRAMES:
            if "partner_index" not in item:
                raise ValueError(f"{self.name} item {k} names no partner frame ('partner_index'); RTNet's items come "
                                 f"from {RTNET_SOURCES}.")
            partner = self._read(int(item["partner_index"]))
            flows = torch.stack([flows, self._flows(partner, int(item["partner_index"]))])
            if isinstance(pictures, Mapping):
                pictures = {s: torch.stack([frame, partner["styled"][s]]) for s, frame in pictures.items()}
            else:
                pictures = torch.stack([pictures, partner["frame"]])
        out = {"styled" if isinstance(pictures, Mapping) else "rgb": pictures, "flow_image": flows}
        mask = item.get("mask")
        out["mask"] = mask if mask is not None else torch.zeros(1, *flows.shape[-2:])
        out["has_mask"] = bool(item.get("has_mask", mask is not None))
        out["index"] = int(index)
        out.update({key: item[key] for key in FRAME_KEYS if key in item})
        if "video_index" not in out:  # a source of unrelated frames: each is its own sequence
            out["video_index"], out["t"] = k, 0
        return out


class VOSPairs(Dataset):
    """Anchor / dynamic / static views of every frame of ``source`` for a network of ``spec`` (see the module
    docstring): ``(rgb, flow image)`` tuples for FusionSeg and MATNet (``spec=None`` too), ``(frames, flows)``
    for RTNet.

    ``source``: per-frame VOS items (:func:`vos_frames` is applied to anything that is not a ``Subset``, so a
    ``SyntheticVOS`` or ``StylizedDavis`` may be passed directly; give a ``Subset`` of ``vos_frames(source,
    spec)`` to measure some frames). Frames are stylized here with two registered styles (``styles``: the pool
    to draw from, default every registered one), or, for pre-stylized items (``"styled"``), two of the item's
    own styles are picked (restricted to ``styles`` when given).

    Item i: ``{"anchor", "dynamic", "static", "index": i, "styles": (a, b)}`` plus ``"label"`` and
    ``"video_id"`` when the source has them; views are tuples, which ``collate_pairs`` keeps and the probe
    unpacks into the model's positional inputs.
    """

    def __init__(self, source: Dataset, styles: Sequence[str] | None = None, seed: int = 0,
                 spec: InputSpec | None = None) -> None:
        if isinstance(styles, str):
            raise ValueError(f"VOSPairs styles must be a sequence of names, not the single string {styles!r}.")
        self.styles = None if styles is None else list(dict.fromkeys(styles))
        if self.styles is not None and len(self.styles) < 2:
            raise ValueError(f"VOSPairs needs at least 2 distinct styles; got {list(styles)}.")
        self.seed, self.spec = int(seed), spec
        self.inputs = VOSInputs(source if isinstance(source, Subset) else vos_frames(source, spec), spec)

    def __len__(self) -> int:
        return len(self.inputs)

    def generators(self, item: Mapping[str, Any]) -> tuple[torch.Generator, torch.Generator]:
        """The style pair's generator, keyed on (seed, rep, video), and the flow jitter's, keyed on
        (seed, rep, video, t)."""
        sequence = (self.seed, int(item.get("rep", 0)), int(item["video_index"]))
        return keyed_generator(*sequence), keyed_generator(*sequence, int(item["t"]))

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.inputs[index]
        style_generator, jitter_generator = self.generators(item)
        if "styled" in item:
            styled = item["styled"]
            offered = [s for s in styled if self.styles is None or s in self.styles]
            if len(offered) < 2:
                raise ValueError(
                    f"pre-stylized item {index} offers styles {list(styled)}; at least 2 distinct ones are needed"
                    + (f" among {self.styles}." if self.styles is not None else "."))
            a, b = random_style_pair(style_generator, offered)
            anchor, dynamic = styled[a], styled[b]
        else:
            a, b = random_style_pair(style_generator, self.styles)
            anchor, dynamic = stylize_image(item["rgb"], a), stylize_image(item["rgb"], b)
        views = vos_views_from_styled(anchor, dynamic, item["flow_image"], jitter_generator)
        return {**views, "index": int(index), "styles": (a, b), **{k: item[k] for k in PASSTHROUGH_KEYS if k in item}}


__all__ = ["FRAME_KEYS", "ONE_FRAME", "PASSTHROUGH_KEYS", "TWO_FRAMES", "VOSInputs", "VOSPairs", "input_form",
           "keyed_generator", "vos_frames"]
