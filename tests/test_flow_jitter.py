"""The static VOS partner's flow jitter is the release's: per image h ~ U(0.1, 0.5), s ~ U(0.1, 1.0), then
torchvision ColorJitter(brightness=0, contrast=0, saturation=s, hue=h)."""
import math

import pytest
import torch
import torchvision.transforms.functional as TF1  # torchvision's v1 functional ops, independent of the v2 ones used
from torchvision.transforms import v2

from lit_stbias.pairs import flow_to_rgb, jitter_flow_image, make_vos_views
from lit_stbias.pairs.views import JITTER_HUE, JITTER_SATURATION, draw_flow_jitter

DRAWS = 20_000


def flow_images(n: int = 3, size: int = 24, seed: int = 0) -> torch.Tensor:
    """Colour-coded flow of a smooth random field: every hue, saturated and faded pixels."""
    g = torch.Generator().manual_seed(seed)
    field = torch.nn.functional.interpolate(torch.randn(n, 2, 4, 4, generator=g), size=size, mode="bilinear")
    return flow_to_rgb(field * 3)


@pytest.fixture(scope="module")
def draws():
    g = torch.Generator().manual_seed(0)
    jitters = [draw_flow_jitter(g) for _ in range(DRAWS)]
    return (torch.tensor([j.hue_shift for j in jitters], dtype=torch.float64),
            torch.tensor([j.saturation for j in jitters], dtype=torch.float64),
            torch.tensor([j.hue_first for j in jitters], dtype=torch.float64))


def test_hue_shifts_follow_the_release_distribution(draws):
    shift, _, _ = draws
    assert JITTER_HUE == (0.1, 0.5)
    assert float(shift.abs().max()) < 0.5 and float(shift.abs().max()) > 0.49  # U(-h, h), h up to 0.5
    assert float((shift < 0).double().mean()) == pytest.approx(0.5, abs=0.015)  # symmetric: half are negative
    # P(|shift| < 0.1) = E[0.1 / h] over h ~ U(0.1, 0.5) = 0.25 ln 5 (the shift itself is not drawn from [0.1, 0.5])
    assert float((shift.abs() < 0.1).double().mean()) == pytest.approx(0.25 * math.log(5), abs=0.015)
    assert float(shift.abs().mean()) == pytest.approx(0.15, abs=0.005)  # E|shift| = E[h] / 2


def test_saturation_factors_follow_the_release_distribution(draws):
    _, factor, _ = draws
    assert JITTER_SATURATION == (0.1, 1.0)
    assert float(factor.min()) >= 0 and float(factor.max()) <= 2  # U(max(0, 1 - s), 1 + s), s up to 1
    assert float(factor.min()) < 0.02 and float(factor.max()) > 1.98
    assert float(factor.mean()) == pytest.approx(1.0, abs=0.01)  # centred on 1: as often stronger as faded
    assert float((factor > 1).double().mean()) == pytest.approx(0.5, abs=0.015)
    assert float((factor - 1).abs().mean()) == pytest.approx(0.275, abs=0.01)  # E[s] / 2


def test_colorjitter_applies_hue_and_saturation_in_random_order(draws):
    _, _, hue_first = draws
    assert float(hue_first.mean()) == pytest.approx(0.5, abs=0.015)


@pytest.mark.parametrize("seed", range(6))
def test_a_draw_is_exactly_torchvisions_colorjitter(seed):
    """Given h and s, a generator in the global generator's state draws and applies what ColorJitter does."""
    images = flow_images(2, seed=seed)
    h, s = 0.1 + 0.4 * seed / 5, 1.0 - 0.18 * seed
    ours = draw_flow_jitter(torch.Generator().manual_seed(seed), hue=h, saturation=s)(images)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        theirs = v2.ColorJitter(brightness=0, contrast=0, saturation=s, hue=h)(images)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert float((ours - images).abs().mean()) > 1e-3


def test_both_orders_occur_and_differ():
    images = flow_images(1)
    jitters = [draw_flow_jitter(torch.Generator().manual_seed(k), hue=0.3, saturation=0.9) for k in range(12)]
    assert {j.hue_first for j in jitters} == {True, False}
    j = jitters[0]
    swapped = type(j)(hue_shift=j.hue_shift, saturation=j.saturation, hue_first=not j.hue_first)
    assert not torch.allclose(j(images), swapped(images))  # the order is part of the result


def test_jitter_flow_image_applies_the_drawn_factors_with_torchvision_ops():
    images = flow_images(3)
    out = jitter_flow_image(images, torch.Generator().manual_seed(7))
    replay = torch.Generator().manual_seed(7)
    for image, jittered in zip(images, out):
        j = draw_flow_jitter(replay)  # per image: h and s, then ColorJitter's draws
        if j.hue_first:
            expected = TF1.adjust_saturation(TF1.adjust_hue(image, j.hue_shift), j.saturation)
        else:
            expected = TF1.adjust_hue(TF1.adjust_saturation(image, j.saturation), j.hue_shift)
        torch.testing.assert_close(jittered, expected, rtol=0, atol=1e-6)
    assert out.shape == images.shape and float(out.min()) >= 0 and float(out.max()) <= 1


def test_each_image_draws_its_own_jitter_reproducibly():
    same = flow_images(1).expand(4, -1, -1, -1)
    first = jitter_flow_image(same, torch.Generator().manual_seed(1))
    assert torch.equal(first, jitter_flow_image(same, torch.Generator().manual_seed(1)))
    assert not torch.equal(first, jitter_flow_image(same, torch.Generator().manual_seed(2)))
    assert all(not torch.equal(first[0], other) for other in first[1:])
    single = jitter_flow_image(same[0], torch.Generator().manual_seed(1))
    assert torch.equal(single, first[0])  # an image alone draws what the first of a batch draws


def test_vos_views_static_partner_is_the_release_jitter():
    frame, flow = torch.rand(3, 24, 24), flow_images(1)[0]
    views = make_vos_views(frame, flow, ("astronaut", "hubble"), torch.Generator().manual_seed(3))
    assert torch.equal(views["static"][1], jitter_flow_image(flow, torch.Generator().manual_seed(3)))
    assert torch.equal(views["dynamic"][1], flow) and torch.equal(views["static"][0], views["anchor"][0])


def test_bad_jitter_arguments_are_refused():
    with pytest.raises(ValueError, match="hue"):
        draw_flow_jitter(hue=0.7)
    with pytest.raises(ValueError, match="saturation"):
        draw_flow_jitter(saturation=-0.1)
    with pytest.raises(ValueError, match="flow image"):
        jitter_flow_image(torch.rand(2, 24, 24))
