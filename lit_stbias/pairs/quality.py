"""How well styles separate static from dynamic content, measured on real footage.

Three figures, each averaged over clips:

* ``change``: mean absolute pixel difference between a clip and its stylized version (static content changed);
* ``between``: the same between two stylized versions (styles differ from each other, so a dynamic pair
  really differs in appearance);
* ``flow_cosine``: cosine similarity between the Farneback flow of the clip and of its stylized version,
  taken over the *flattened* flow vectors of all consecutive frame pairs, i.e. sum(f . g) / (|f| |g|) over
  every pixel and frame. It is magnitude weighted by construction: pixels that move count in proportion to
  how much they move, while still pixels (whose flow direction is noise) barely count.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Mapping, Sequence

import torch
from torch import Tensor

from lit_stbias.pairs.flow import video_flow
from lit_stbias.pairs.styles import available_styles
from lit_stbias.pairs.stylize import stylize


def flow_cosine(flow_a: Tensor, flow_b: Tensor) -> float:
    """Cosine similarity of two flow fields flattened to one vector each (magnitude weighted)."""
    a, b = flow_a.flatten().double(), flow_b.flatten().double()
    return float(torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12))


@dataclass
class StyleQuality:
    """Per style: ``change`` and ``flow_cosine``; per pair of styles: ``between`` (keyed (a, b), a before b
    in registration order). Values are means over the clips measured."""

    change: dict[str, float] = field(default_factory=dict)
    flow_cosine: dict[str, float] = field(default_factory=dict)
    between: dict[tuple[str, str], float] = field(default_factory=dict)


def measure_styles(
    videos: Sequence[Tensor] | Mapping[str, Tensor], styles: Sequence[str] | None = None
) -> StyleQuality:
    """Measure every style on every (C, T, H, W) clip and average over clips."""
    clips = list(videos.values()) if isinstance(videos, Mapping) else list(videos)
    styles = list(styles) if styles is not None else available_styles()
    sums = StyleQuality()
    for clip in clips:
        reference_flow = video_flow(clip)
        styled = {s: stylize(clip, s) for s in styles}
        for s, out in styled.items():
            sums.change[s] = sums.change.get(s, 0.0) + float((out - clip).abs().mean())
            sums.flow_cosine[s] = sums.flow_cosine.get(s, 0.0) + flow_cosine(reference_flow, video_flow(out))
        for a, b in combinations(styles, 2):
            sums.between[(a, b)] = sums.between.get((a, b), 0.0) + float((styled[a] - styled[b]).abs().mean())
    n = len(clips)
    return StyleQuality(
        change={k: v / n for k, v in sums.change.items()},
        flow_cosine={k: v / n for k, v in sums.flow_cosine.items()},
        between={k: v / n for k, v in sums.between.items()},
    )


__all__ = ["StyleQuality", "flow_cosine", "measure_styles"]
