"""Styles, optical-flow colour coding and the static/dynamic views of videos, with pair datasets.

>>> import torch
>>> from lit_stbias.pairs import available_styles, make_action_views
>>> video = torch.rand(3, 8, 32, 32)
>>> views = make_action_views(video, styles=("astronaut", "hubble"), generator=torch.Generator().manual_seed(0))
>>> sorted(views), views["static"].shape
(['anchor', 'dynamic', 'static'], torch.Size([3, 8, 32, 32]))
"""
from lit_stbias.pairs.datasets import ActionPairs, collate_pairs, item_generator, pair_loader
from lit_stbias.pairs.flow import farneback_flow, flow_to_rgb, video_flow
from lit_stbias.pairs.quality import StyleQuality, flow_cosine, measure_styles
from lit_stbias.pairs.styles import (
    STYLES,
    Palette,
    Style,
    Texture,
    available_styles,
    get_style,
    load_styles,
    register_style,
)
from lit_stbias.pairs.stylize import stylize, stylize_image
from lit_stbias.pairs.texler import GeneratorJ, load_generator
from lit_stbias.pairs.views import (
    jitter_flow_image,
    make_action_views,
    make_vos_views,
    random_style_pair,
    shuffle_frames,
    shuffle_permutation,
    views_from_styled,
)
from lit_stbias.pairs.vos_pairs import VOSInputs, VOSPairs, vos_frames

__all__ = [
    "STYLES",
    "ActionPairs",
    "GeneratorJ",
    "Palette",
    "Style",
    "StyleQuality",
    "Texture",
    "VOSInputs",
    "VOSPairs",
    "available_styles",
    "collate_pairs",
    "farneback_flow",
    "flow_cosine",
    "flow_to_rgb",
    "get_style",
    "item_generator",
    "jitter_flow_image",
    "load_generator",
    "load_styles",
    "make_action_views",
    "make_vos_views",
    "measure_styles",
    "pair_loader",
    "random_style_pair",
    "register_style",
    "shuffle_frames",
    "shuffle_permutation",
    "stylize",
    "stylize_image",
    "video_flow",
    "views_from_styled",
    "vos_frames",
]
