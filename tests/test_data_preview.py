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


def test_data_never_imports_the_packages_above_it():
    """``pairs`` may import ``data``; ``data`` (and the package's ``__init__``, which importing it runs) import
    nothing of the project but ``data``, at the top or lazily inside functions."""
    import ast
    from pathlib import Path

    import lit_stbias.data

    folder = Path(lit_stbias.data.__file__).parent
    for path in [*folder.rglob("*.py"), folder.parent / "__init__.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ["<relative import>"]
            above = [n for n in names if n.startswith(("lit_stbias", "<")) and not n.startswith("lit_stbias.data")]
            assert not above, f"{path} imports {above}"


def test_one_farneback_wrapper_for_arrays_and_tensors():
    import torch

    from lit_stbias.data import farneback_flow as data_flow
    from lit_stbias.pairs import farneback_flow as pairs_flow

    assert pairs_flow is data_flow
    y, x = np.mgrid[:48, :48]
    frame0 = (0.5 + 0.4 * np.sin(x / 3.0) * np.cos(y / 4.0)).astype(np.float32)
    frame1 = np.roll(frame0, 2, axis=1)  # the pattern moves 2 px to the right
    tensors = torch.from_numpy(frame0)[None], torch.from_numpy(frame1)[None]
    arrays = [(f * 255).round().astype(np.uint8) for f in (frame0, frame1)]
    from_tensors, from_arrays = data_flow(*tensors), data_flow(*arrays)
    assert isinstance(from_tensors, torch.Tensor) and isinstance(from_arrays, np.ndarray)
    assert np.array_equal(from_tensors.numpy(), from_arrays)
    assert abs(float(from_arrays[0, 8:-8, 8:-8].mean()) - 2) < 0.3
    with pytest.raises(ValueError, match="values in \\[0, 1\\]"):
        data_flow(tensors[0] * 255, tensors[1] * 255)
    with pytest.raises(ValueError, match="both frames as tensors or both as numpy arrays"):
        data_flow(tensors[0], arrays[1])
