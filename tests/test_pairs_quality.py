"""Styles measured on real footage: they change appearance a lot, differ from each other, and keep motion.

Thresholds (see docs/styles.md): mean absolute pixel change >= 0.08 from the original and between any two
styles, and cosine similarity >= 0.8 between the Farneback flow of the original and of the stylized clip
(flattened flow vectors of all frame pairs). Checked on every clip separately, not only on average.
"""
from __future__ import annotations

from itertools import combinations

import pytest
import torch

from lit_stbias.data.video_io import read_video, sample_video_paths
from lit_stbias.pairs import available_styles, flow_cosine, measure_styles, stylize, video_flow

MIN_CHANGE = 0.08
MIN_FLOW_COSINE = 0.8


@pytest.fixture(scope="module")
def clips() -> dict[str, torch.Tensor]:
    """12 frames of two real sample clips at 112 px (the widest cropped to 160 px to stay fast)."""
    paths = sample_video_paths()
    names = ("bikes", "carphone_pristine")
    return {name: read_video(paths[name], max_frames=12, size=112)[..., :160] for name in names}


@pytest.fixture(scope="module")
def quality(clips):
    return {name: measure_styles([clip]) for name, clip in clips.items()}


def test_clips_are_real_moving_footage(clips):
    for clip in clips.values():
        flow = video_flow(clip)
        assert flow.norm(dim=0).mean() > 0.2, "the measure needs clips that move"


def test_styles_change_static_content(quality):
    for clip, q in quality.items():
        for style in available_styles():
            assert q.change[style] >= MIN_CHANGE, f"{style} on {clip}: pixel change {q.change[style]:.3f}"


def test_styles_differ_from_each_other(quality):
    for clip, q in quality.items():
        for a, b in combinations(available_styles(), 2):
            assert q.between[(a, b)] >= MIN_CHANGE, f"{a} vs {b} on {clip}: {q.between[(a, b)]:.3f}"


def test_styles_keep_the_motion(quality):
    for clip, q in quality.items():
        for style in available_styles():
            assert q.flow_cosine[style] >= MIN_FLOW_COSINE, f"{style} on {clip}: flow cosine {q.flow_cosine[style]:.3f}"


def test_flow_cosine_detects_broken_motion(clips):
    """The flow measure is not vacuous: a shuffled clip, or a strong per-frame random filter, fails it."""
    clip = clips["bikes"]
    reference = video_flow(clip)
    shuffled = clip[:, torch.randperm(clip.shape[1], generator=torch.Generator().manual_seed(0))]
    assert flow_cosine(reference, video_flow(shuffled)) < MIN_FLOW_COSINE
    g = torch.Generator().manual_seed(0)
    noisy = (stylize(clip, available_styles()[0]) + 0.8 * torch.rand(clip.shape, generator=g) - 0.4).clamp(0, 1)
    assert flow_cosine(reference, video_flow(noisy)) < MIN_FLOW_COSINE
