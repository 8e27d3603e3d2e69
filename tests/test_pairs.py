"""Styles, views, flow colour coding and pair datasets of lit_stbias.pairs (small synthetic clips, fast)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from kornia.color import rgb_to_hsv
from torch import nn
from torch.utils.data import Dataset

import lit_stbias.pairs.views as views_module
from lit_stbias.pairs import (
    ActionPairs,
    VOSPairs,
    available_styles,
    collate_pairs,
    farneback_flow,
    flow_to_rgb,
    get_style,
    make_action_views,
    make_vos_views,
    pair_loader,
    random_style_pair,
    shuffle_permutation,
    stylize,
    stylize_image,
    video_flow,
)
from lit_stbias.pairs.views import draw_flow_jitter
from lit_stbias.probe import BiasProbe

STYLES = available_styles()
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def moving_square(frames: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(3, T, H, W): a coloured gradient with noise and a bright square moving right by 2 px per frame, so
    every frame differs and frame order can be read back."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    background = torch.stack([x, y, 1 - x]) * 0.6 + 0.2 * torch.rand(3, size, size, generator=g)
    video = background.unsqueeze(1).repeat(1, frames, 1, 1)
    for t in range(frames):
        video[:, t, 8:16, 2 + 2 * t : 10 + 2 * t] = torch.tensor([0.95, 0.9, 0.3])[:, None, None]
    return video.clamp(0, 1)


def recover_order(shuffled: torch.Tensor, original: torch.Tensor) -> list[int]:
    """For each frame of ``shuffled`` (C, T, H, W), the index of the identical frame of ``original``."""
    order = []
    for t in range(shuffled.shape[1]):
        errors = (original - shuffled[:, t : t + 1]).abs().flatten(2).amax(-1).amax(0)
        assert float(errors.min()) < 1e-6, "a static frame is not a frame of the anchor"
        order.append(int(errors.argmin()))
    return order


# ----------------------------------------------------------------------------------------------------- styles


def test_at_least_four_named_styles():
    assert len(STYLES) >= 4 and len(set(STYLES)) == len(STYLES)
    assert all(isinstance(s, str) and s for s in STYLES)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("style", STYLES)
def test_style_shape_range_determinism(style, device):
    video = moving_square().to(device)
    out = stylize(video, style)
    assert out.shape == video.shape and out.dtype == video.dtype and out.device == video.device
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out, stylize(video.clone(), style))
    assert float((out - video).abs().mean()) > 0.05, "a style must change appearance"
    batch = torch.stack([video, moving_square(seed=1).to(device)])
    batched = stylize(batch, style)
    assert batched.shape == batch.shape
    torch.testing.assert_close(batched[0], out, atol=1e-6, rtol=0)


@pytest.mark.parametrize("style", STYLES)
def test_style_commutes_with_frame_shuffling_and_adds_no_flicker(style):
    video = moving_square(frames=10)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(stylize(video[:, perm], style), stylize(video, style)[:, perm], atol=1e-4, rtol=0)
    still = video[:, :1].repeat(1, 6, 1, 1)  # a clip with no motion stays without motion
    styled = stylize(still, style)
    assert float((styled[:, 1:] - styled[:, :-1]).abs().max()) < 1e-6


@pytest.mark.parametrize("style", STYLES[:2])
def test_images_are_one_frame_videos(style):
    frame = moving_square()[:, 3]
    expected = stylize(frame[:, None], style)[:, 0]
    torch.testing.assert_close(stylize_image(frame, style), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(stylize(frame, style), expected, atol=1e-6, rtol=0)
    batch = torch.stack([frame, frame.flip(-1)])
    torch.testing.assert_close(stylize_image(batch, style)[0], expected, atol=1e-6, rtol=0)


def test_palettes_keep_the_ordering_of_brightness():
    """Edges survive because every palette maps luminance monotonically (reversed for negatives)."""
    from lit_stbias.pairs import Palette
    from lit_stbias.pairs.styles import luminance

    ramp = torch.linspace(0, 1, 64).expand(3, 1, 8, 64).clone()  # grey ramp as a one-frame video
    for style in STYLES:
        for step in (s for s in get_style(style).steps if isinstance(s, Palette)):
            out = luminance(step(ramp.permute(1, 0, 2, 3)))[0, 0]
            steps = out.diff() if not step.invert else -out.diff()
            assert bool((steps > -1e-6).all()) and abs(float(out[-1] - out[0])) > 0.7, style


def test_styles_keep_half_precision_inputs_in_range():
    out = stylize(moving_square().half(), STYLES[0])
    assert out.dtype == torch.float16 and float(out.min()) >= 0 and float(out.max()) <= 1


# ------------------------------------------------------------------------------------------------ action views


def test_shuffle_permutation_moves_at_least_half_the_frames():
    g = torch.Generator().manual_seed(0)
    for frames in (2, 3, 4, 5, 8, 16):
        for _ in range(30):
            perm = shuffle_permutation(frames, g)
            assert sorted(perm.tolist()) == list(range(frames))
            assert int((perm != torch.arange(frames)).sum()) >= math.ceil(frames / 2)


def test_action_views_are_styles_and_a_shuffle():
    video = moving_square()
    views = make_action_views(video, styles=("astronaut", "hubble"), generator=torch.Generator().manual_seed(0))
    assert set(views) == {"anchor", "dynamic", "static"}
    torch.testing.assert_close(views["anchor"], stylize(video, "astronaut"))
    torch.testing.assert_close(views["dynamic"], stylize(video, "hubble"))
    order = recover_order(views["static"], views["anchor"])
    assert sorted(order) == list(range(8))
    assert sum(o != t for t, o in enumerate(order)) >= 4


def test_action_views_are_reproducible_from_the_generator():
    video = moving_square()
    first = make_action_views(video, generator=torch.Generator().manual_seed(5))
    again = make_action_views(video, generator=torch.Generator().manual_seed(5))
    for key in first:
        assert torch.equal(first[key], again[key])
    orders = {
        tuple(recover_order(v["static"], v["anchor"]))
        for v in (make_action_views(video, ("brick", "rocket"), torch.Generator().manual_seed(s)) for s in range(4))
    }
    assert len(orders) > 1, "different seeds must give different shuffles"


def test_batched_videos_get_their_own_shuffles():
    batch = torch.stack([moving_square(seed=s) for s in range(4)])
    views = make_action_views(batch, ("gravel", "astronaut"), torch.Generator().manual_seed(1))
    assert all(v.shape == batch.shape for v in views.values())
    orders = [recover_order(views["static"][b], views["anchor"][b]) for b in range(4)]
    assert len({tuple(o) for o in orders}) > 1


def test_slowfast_pathways_are_stylized_and_shuffled_independently():
    fast = moving_square(frames=8)
    slow = fast[:, ::2]
    same = fast.clone()
    views = make_action_views([slow, fast, same], ("astronaut", "rocket"), torch.Generator().manual_seed(2))
    for key in ("anchor", "dynamic", "static"):
        assert isinstance(views[key], list) and [v.shape for v in views[key]] == [slow.shape, fast.shape, same.shape]
    torch.testing.assert_close(views["anchor"][0], stylize(slow, "astronaut"))
    torch.testing.assert_close(views["dynamic"][1], stylize(fast, "rocket"))
    orders = [recover_order(s, a) for s, a in zip(views["static"], views["anchor"])]
    assert orders[1] != orders[2], "two identical pathways must get their own permutations"
    assert sum(o != t for t, o in enumerate(orders[0])) >= 2


def test_random_style_pair_draws_distinct_styles():
    g = torch.Generator().manual_seed(0)
    pairs = [random_style_pair(g) for _ in range(40)]
    assert all(a != b and a in STYLES and b in STYLES for a, b in pairs)
    assert len(set(pairs)) > 5
    assert set(random_style_pair(g, ["brick", "hubble"])) == {"brick", "hubble"}


# ------------------------------------------------------------------------------------------------------ flow


def test_flow_to_rgb_colour_code():
    flow = torch.zeros(2, 4, 8)
    flow[0, :, 2] = 1.0  # right, slow
    flow[0, :, 3] = 3.0  # right, fast
    flow[0, :, 4] = -3.0  # left, fast
    flow[1, :, 5] = 3.0  # down, fast
    rgb = flow_to_rgb(flow)
    assert rgb.shape == (3, 4, 8) and float(rgb.min()) >= 0 and float(rgb.max()) <= 1
    assert torch.allclose(rgb[:, :, 0], torch.ones(3, 4)), "zero flow must be white"
    hsv = rgb_to_hsv(rgb)
    hue, sat = hsv[0, 0], hsv[1, 0]
    assert sat[3] > sat[2] + 0.3, "a larger magnitude must be more saturated"
    assert sat[3] == pytest.approx(1.0, abs=1e-4), "the per-image max magnitude is fully saturated"
    hue_gap = lambda a, b: min(abs(a - b), 2 * math.pi - abs(a - b))  # noqa: E731
    assert hue_gap(float(hue[3]), float(hue[4])) > 2.5, "opposite directions must get opposite hues"
    assert hue_gap(float(hue[3]), float(hue[5])) > 1.2
    fixed = flow_to_rgb(flow, max_magnitude=6.0)
    assert rgb_to_hsv(fixed)[1, 0, 3] == pytest.approx(0.5, abs=1e-3)
    batch = flow_to_rgb(torch.stack([flow, 2 * flow]))
    assert batch.shape == (2, 3, 4, 8)
    torch.testing.assert_close(batch[1], rgb, atol=1e-5, rtol=0)  # per-image normalisation


def test_farneback_recovers_a_known_translation():
    from skimage.data import astronaut

    image = torch.from_numpy(astronaut()[::4, ::4].copy()).permute(2, 0, 1).float() / 255  # (3, 128, 128)
    dx, dy = 3, 2
    frame0 = image[:, 16:112, 16:112]
    frame1 = image[:, 16 - dy : 112 - dy, 16 - dx : 112 - dx]  # content moves right by dx, down by dy
    flow = farneback_flow(frame0, frame1)
    assert flow.shape == (2, 96, 96) and flow.dtype == torch.float32
    inner = flow[:, 16:-16, 16:-16].flatten(1).median(dim=1).values
    assert inner.tolist() == pytest.approx([dx, dy], abs=0.5)
    video = torch.stack([frame0, frame1, frame0], dim=1)
    flows = video_flow(video)
    assert flows.shape == (2, 2, 96, 96)
    assert flows[:, 1, 16:-16, 16:-16].flatten(1).median(dim=1).values.tolist() == pytest.approx([-dx, -dy], abs=0.5)


# --------------------------------------------------------------------------------------------------- VOS views


def test_vos_views_restyle_rgb_and_jitter_only_the_static_flow():
    frame = moving_square()[:, 0]
    flow = torch.zeros(2, 32, 32)
    flow[0], flow[1] = 2.0, torch.linspace(-2, 2, 32)[:, None]
    flow_rgb = flow_to_rgb(flow)
    views = make_vos_views(frame, flow_rgb, (STYLES[0], STYLES[1]), torch.Generator().manual_seed(0))
    (a_rgb, a_flow), (d_rgb, d_flow), (s_rgb, s_flow) = views["anchor"], views["dynamic"], views["static"]
    torch.testing.assert_close(a_rgb, stylize_image(frame, STYLES[0]))
    torch.testing.assert_close(d_rgb, stylize_image(frame, STYLES[1]))
    assert torch.equal(a_flow, flow_rgb) and torch.equal(d_flow, flow_rgb), "the dynamic view keeps the flow image"
    assert torch.equal(s_rgb, a_rgb), "the static view keeps the anchor's frame"
    assert float((s_flow - flow_rgb).abs().mean()) > 0.02, "the static view's flow image must be jittered"
    # the release's ColorJitter(0, 0, s, h): the hue moves by the drawn shift on saturated pixels, and the
    # saturation goes up or down with the drawn factor
    jitter = draw_flow_jitter(torch.Generator().manual_seed(0))
    hsv_before, hsv_after = rgb_to_hsv(flow_rgb), rgb_to_hsv(s_flow)
    strong = hsv_before[1] > 0.5
    shift = ((hsv_after[0] - hsv_before[0]) / (2 * math.pi) + 0.5).remainder(1.0) - 0.5
    assert float(shift[strong].median()) == pytest.approx(jitter.hue_shift, abs=0.005)
    assert (float(hsv_after[1][strong].mean()) > float(hsv_before[1][strong].mean())) == (jitter.saturation > 1)


def test_vos_views_batched_and_reproducible():
    frames = torch.stack([moving_square(seed=s)[:, 0] for s in range(3)])
    flows = flow_to_rgb(torch.randn(3, 2, 32, 32, generator=torch.Generator().manual_seed(0)))
    first = make_vos_views(frames, flows, generator=torch.Generator().manual_seed(4))
    again = make_vos_views(frames, flows, generator=torch.Generator().manual_seed(4))
    for key in first:
        assert isinstance(first[key], tuple) and [t.shape for t in first[key]] == [frames.shape, flows.shape]
        assert all(torch.equal(x, y) for x, y in zip(first[key], again[key]))
    jitter = (first["static"][1] - flows).abs().flatten(1).mean(1)
    assert bool((jitter > 0.01).all())


# ---------------------------------------------------------------------------------------------------- datasets


class Videos(Dataset):
    """A map-style source of small distinct videos with labels."""

    def __init__(self, n: int = 7, frames: int = 6):
        self.n, self.frames = n, frames

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {"video": moving_square(frames=self.frames, size=24, seed=i), "label": i % 3}


class Prestylized(Dataset):
    """Items as a pre-stylized reader gives them: {"styled": {style_k: video}}, names unknown to the registry."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        base = moving_square(frames=6, size=24, seed=i)
        styled = {f"style_{k}": (base * (0.5 + 0.15 * k)).clamp(0, 1) for k in range(3)}
        return {"styled": styled, "index": i, "video_id": f"clip{i}"}


class Frames(Dataset):
    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        return {"frame": moving_square(size=24, seed=i)[:, 0], "flow": torch.randn(2, 24, 24, generator=g)}


def _assert_same_item(x: dict, y: dict) -> None:
    assert x["index"] == y["index"] and x["styles"] == y["styles"]
    for key in ("anchor", "dynamic", "static"):
        xs, ys = (x[key], y[key]) if isinstance(x[key], (list, tuple)) else ([x[key]], [y[key]])
        assert all(torch.equal(a, b) for a, b in zip(xs, ys))


def test_action_pairs_are_deterministic_per_index_in_any_order():
    pairs = ActionPairs(Videos(), seed=3)
    forward = [pairs[i] for i in range(len(pairs))]
    backward = [ActionPairs(Videos(), seed=3)[i] for i in reversed(range(len(pairs)))][::-1]
    for x, y in zip(forward, backward):
        _assert_same_item(x, y)
    item = forward[2]
    a, b = item["styles"]
    assert a != b and item["label"] == 2
    torch.testing.assert_close(item["anchor"], stylize(Videos()[2]["video"], a))
    torch.testing.assert_close(item["dynamic"], stylize(Videos()[2]["video"], b))
    recover_order(item["static"], item["anchor"])
    assert len({p["styles"] for p in forward}) > 1, "style pairs are drawn per video"
    other = ActionPairs(Videos(), seed=4)
    assert any(other[i]["styles"] != forward[i]["styles"] or not torch.equal(other[i]["static"], forward[i]["static"])
               for i in range(len(pairs)))


def test_pair_loader_shards_without_padding_or_duplicates():
    pairs = ActionPairs(Videos(n=7), styles=["astronaut", "hubble", "rocket"], seed=1)
    whole = [batch for batch in pair_loader(pairs, batch_size=3)]
    assert [i for b in whole for i in b["index"].tolist()] == list(range(7))
    shards = [list(pair_loader(pairs, batch_size=2, rank=r, world_size=2, num_workers=r)) for r in range(2)]
    indices = [i for shard in shards for b in shard for i in b["index"].tolist()]
    assert sorted(indices) == list(range(7)) and len(indices) == 7
    assert [i for b in shards[1] for i in b["index"].tolist()] == [1, 3, 5]
    by_index = {int(i): (b, k) for b in whole for k, i in enumerate(b["index"])}
    for shard in shards:
        for batch in shard:
            for k, i in enumerate(batch["index"].tolist()):
                ref, j = by_index[i]
                assert batch["styles"][k] == ref["styles"][j]
                for key in ("anchor", "dynamic", "static"):
                    assert torch.equal(batch[key][k], ref[key][j])
    assert whole[0]["anchor"].shape == (3, 3, 6, 24, 24) and whole[0]["label"].tolist() == [0, 1, 2]
    assert all(a in ("astronaut", "hubble", "rocket") for b in whole for pair in b["styles"] for a in pair)


def test_pair_loader_rank_defaults_and_checks():
    pairs = ActionPairs(Videos(n=3))
    assert len(pair_loader(pairs, batch_size=1).dataset) == 3  # no process group: rank 0 of 1
    with pytest.raises(ValueError, match="rank"):
        pair_loader(pairs, batch_size=1, rank=2, world_size=2)


def test_prestylized_items_are_used_without_stylizing(monkeypatch):
    def no_stylize(*_args, **_kwargs):
        raise AssertionError("pre-stylized items must not be stylized again")

    monkeypatch.setattr(views_module, "stylize", no_stylize)
    pairs = ActionPairs(Prestylized(), seed=0)
    for i in range(len(pairs)):
        item, source = pairs[i], Prestylized()[i]["styled"]
        a, b = item["styles"]
        assert a != b and {a, b} <= set(source) and item["video_id"] == f"clip{i}"
        assert torch.equal(item["anchor"], source[a]) and torch.equal(item["dynamic"], source[b])
        order = recover_order(item["static"], item["anchor"])
        assert sum(o != t for t, o in enumerate(order)) >= 3
    restricted = ActionPairs(Prestylized(), styles=["style_0", "style_2"])
    assert set(restricted[1]["styles"]) == {"style_0", "style_2"}
    with pytest.raises(ValueError, match="at least 2"):
        ActionPairs(Prestylized(), styles=["style_0", "style_9"])[0]


def test_pathways_become_lists_that_collate_as_lists():
    pairs = ActionPairs(Videos(n=4, frames=8), pathways=lambda v: [v[:, ::4], v], seed=0)
    item = pairs[0]
    assert isinstance(item["static"], list) and [p.shape[1] for p in item["static"]] == [2, 8]
    batch = next(iter(pair_loader(pairs, batch_size=2)))
    for key in ("anchor", "dynamic", "static"):
        assert isinstance(batch[key], list) and [p.shape for p in batch[key]] == [(2, 3, 2, 24, 24), (2, 3, 8, 24, 24)]


def test_vos_pairs_items_and_collated_tuples():
    pairs = VOSPairs(Frames(), seed=2)
    item = pairs[1]
    assert isinstance(item["anchor"], tuple) and item["index"] == 1
    torch.testing.assert_close(item["anchor"][1], flow_to_rgb(Frames()[1]["flow"]))
    torch.testing.assert_close(item["anchor"][0], stylize_image(Frames()[1]["frame"], item["styles"][0]))
    _assert_same_item(item, VOSPairs(Frames(), seed=2)[1])
    batch = collate_pairs([pairs[0], pairs[1]])
    for key in ("anchor", "dynamic", "static"):
        assert isinstance(batch[key], tuple) and [t.shape for t in batch[key]] == [(2, 3, 24, 24)] * 2
    assert batch["styles"] == [pairs[0]["styles"], pairs[1]["styles"]]


class TwoStream(nn.Module):
    """Two inputs (rgb, flow image), like a two-stream VOS model: the probe must unpack tuple views."""

    def __init__(self):
        super().__init__()
        self.app = nn.Conv2d(3, 4, 3)
        self.mot = nn.Conv2d(3, 4, 3)

    def forward(self, rgb, flow):
        return self.app(rgb) + self.mot(flow)


class Pathways(nn.Module):
    """A list input, like SlowFast: the probe must pass a list view as one argument."""

    def __init__(self):
        super().__init__()
        self.slow = nn.Conv3d(3, 4, 1)
        self.fast = nn.Conv3d(3, 4, 1)

    def forward(self, x):
        return self.slow(x[0]).mean((2, 3, 4)) + self.fast(x[1]).mean((2, 3, 4))


def test_probe_consumes_pair_batches():
    vos = BiasProbe(TwoStream(), taps=["app", "mot"])
    for batch in pair_loader(VOSPairs(Frames()), batch_size=3):
        vos.update(batch)
    assert set(vos.compute()) == {"app", "mot"}
    slowfast = BiasProbe(Pathways(), taps=["slow", "fast"])
    for batch in pair_loader(ActionPairs(Videos(n=4, frames=8), pathways=lambda v: [v[:, ::4], v]), batch_size=2):
        slowfast.update(batch)
    assert set(slowfast.compute()) == {"slow", "fast"}


# ------------------------------------------------------------------------------------------------- bad input


def test_bad_input_is_named():
    video = moving_square()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stylize(video * 2, STYLES[0])
    with pytest.raises(ValueError, match="float"):
        stylize((video * 255).to(torch.uint8), STYLES[0])
    with pytest.raises(ValueError, match=r"\(C, T, H, W\)"):
        stylize(video[None, None], STYLES[0])
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        stylize(video[:2], STYLES[0])
    with pytest.raises(ValueError, match="available styles: " + ", ".join(STYLES)):
        stylize(video, "no-such-style")
    with pytest.raises(ValueError, match="2 frames"):
        make_action_views(video[:, :1], (STYLES[0], STYLES[1]))
    with pytest.raises(ValueError, match="differ"):
        make_action_views(video, (STYLES[0], STYLES[0]))
    with pytest.raises(ValueError, match="available styles"):
        make_action_views(video, (STYLES[0], "nope"))
    with pytest.raises(ValueError, match="at least 2"):
        random_style_pair(torch.Generator(), [STYLES[0]])
    with pytest.raises(ValueError, match="at least 2"):
        ActionPairs(Videos(), styles=[STYLES[0], STYLES[0]])
    with pytest.raises(ValueError, match="flow image"):
        make_vos_views(video[:, 0], torch.zeros(2, 32, 32))
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        flow_to_rgb(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="'video' or 'styled'"):
        ActionPairs([{"clip": video}])[0]
    with pytest.raises(ValueError, match="flow"):
        VOSPairs([{"frame": video[:, 0]}])[0]
    with pytest.raises(ValueError, match="2 frames"):
        video_flow(video[:, :1])


def test_generator_seeds_are_independent_of_neighbours():
    from lit_stbias.pairs import item_generator

    draws = [torch.rand(4, generator=item_generator(0, i)) for i in range(3)]
    assert not torch.equal(draws[0], draws[1])
    assert torch.equal(draws[2], torch.rand(4, generator=item_generator(0, 2)))
    assert not np.allclose(draws[0].numpy(), torch.rand(4, generator=item_generator(1, 0)).numpy())
    assert not torch.equal(torch.rand(4, generator=item_generator(0, -1)), draws[1])  # negative indices work
