"""The planted-unit network: the probe recovers, from real restyled and shuffled pairs, what was built in."""
import pytest
import torch

from lit_stbias.demo import format_table, main, run_planted
from lit_stbias.pairs import make_action_views
from lit_stbias.probe.planted import PlantedUnits, dynamic_features, static_features


@pytest.mark.parametrize("seed", [0, 1])
def test_unit_counts_exactly_as_planted_and_layer_percentages_ordered(seed):
    model, results = run_planted(num_videos=64, frames=8, size=48, seed=seed, progress=False)
    for name, result in results.items():
        assert result.unit_counts == model.planted[name], name
        assert result.num_dead_units == model.planted[name]["residual"] // 2  # the constant units
    assert results["mostly_static"].layer_percent["static"] > results["mostly_static"].layer_percent["dynamic"]
    assert results["mostly_dynamic"].layer_percent["dynamic"] > results["mostly_dynamic"].layer_percent["static"]
    assert results["mostly_static"].layer_scores["static"] > results["mostly_dynamic"].layer_scores["static"]
    assert results["mostly_dynamic"].layer_scores["dynamic"] > results["mostly_static"].layer_scores["dynamic"]
    table = format_table(model, results)
    assert "| mostly_static | 36 | 20 / 20 |" in table


def test_planted_features_behave_as_designed_on_one_clip():
    from lit_stbias.data import SyntheticVideos

    video = SyntheticVideos("motion", num_videos=4, num_frames=8, size=48, seed=3)[0]["video"]
    views = make_action_views(video, styles=("astronaut", "brick"), generator=torch.Generator().manual_seed(0))
    batch = torch.stack([views["anchor"], views["dynamic"], views["static"]])
    stat = static_features(batch)
    assert torch.allclose(stat[0], stat[2], atol=1e-5), "frame order cannot change time-averaged statistics"
    assert not torch.allclose(stat[0], stat[1], atol=1e-2), "another style changes colour statistics"
    flipped = static_features(video.flip(1)[None]), dynamic_features(video.flip(1)[None])
    reversed_velocity = -dynamic_features(video[None])
    assert torch.allclose(flipped[1], reversed_velocity, rtol=0.2, atol=1e-3), "time reversal flips velocity"


def test_planted_model_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(B, 3, T>=2, H, W\)"):
        PlantedUnits()(torch.rand(2, 3, 1, 16, 16))


def test_demo_main_prints_table_and_succeeds(capsys):
    assert main(["--num-videos", "48", "--frames", "8", "--size", "48"]) == 0
    out = capsys.readouterr().out
    assert "Unit counts match the planted ones" in out and "mostly_dynamic" in out
