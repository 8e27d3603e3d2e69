"""The preview command writes a PNG of the three views for action and VOS sources."""
import numpy as np
import pytest
from PIL import Image

from lit_stbias.pairs.preview import main


@pytest.mark.parametrize("spec,videos", [("synthetic:motion", 2), ("synthetic-vos:diffuse", 1)])
def test_preview_cli_writes_a_png_of_the_views(tmp_path, spec, videos, capsys):
    out = tmp_path / "sub" / "preview.png"
    args = ["--data", spec, "--num-videos", str(videos), "--num-frames", "4", "--size", "32", "--frames", "3"]
    assert main(args + ["--out", str(out)]) == out
    assert f"wrote {out}" in capsys.readouterr().out
    with Image.open(out) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"), np.float32) / 255
    assert pixels.shape[0] > 200 * videos and pixels.std() > 0.1  # one block of three rows per video, not blank


def test_preview_needs_a_data_spec(capsys):
    with pytest.raises(SystemExit):
        main(["--out", "x.png"])
    assert "--data" in capsys.readouterr().err


def test_every_source_feeds_the_pair_datasets(tmp_path):
    """The item keys the pairs package reads: "video"/"styled" for actions, "frame"/"flow" for VOS."""
    from lit_stbias.data import PrestylizedVideos, SyntheticVideos, SyntheticVOS, write_video
    from lit_stbias.pairs import ActionPairs, VOSPairs, collate_pairs

    action = ActionPairs(SyntheticVideos("mixed", num_videos=2, num_frames=4, size=32))
    batch = collate_pairs([action[0], action[1]])
    assert batch["anchor"].shape == (2, 3, 4, 32, 32) and batch["label"].shape == (2,)
    vos = VOSPairs(SyntheticVOS(num_videos=1, num_frames=3, size=32).frames())
    rgb, flow_image = vos[1]["static"]
    assert rgb.shape == flow_image.shape == (3, 32, 32)
    video = SyntheticVideos("motion", num_videos=1, num_frames=4, size=32)[0]["video"]
    for k in range(2):
        (tmp_path / f"style_{k}").mkdir()
        write_video(tmp_path / f"style_{k}" / "clip.mp4", video if k == 0 else 1 - video)
    styled = ActionPairs(PrestylizedVideos(tmp_path, num_frames=4, size=32))[0]
    assert set(styled["styles"]) == {"style_0", "style_1"} and styled["static"].shape == (3, 4, 32, 32)
