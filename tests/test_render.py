"""Pre-rendering styled datasets (python -m lit_stbias.pairs.render): the release layout, reading it back with
PrestylizedVideos, resuming, and one-line errors. Tiny synthetic clips and a tiny generator keep it fast."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from lit_stbias.data import PrestylizedVideos, VideoReadError, from_spec
from lit_stbias.pairs import STYLES, ActionPairs, GeneratorJ, load_styles, stylize
from lit_stbias.pairs import render as render_module
from lit_stbias.pairs.render import main, render_dataset

TINY = {"use_bias": True, "tanh": True, "append_smoothers": True, "resnet_blocks": 1,
        "filters": (4, 6, 8, 8, 6, 5), "input_channels": 3}
FRAMES, SIZE = 4, 32


@pytest.fixture(autouse=True)
def registry_restored():
    before = dict(STYLES)
    yield
    STYLES.clear()
    STYLES.update(before)


@pytest.fixture
def texler_dir(tmp_path):
    folder = tmp_path / "texler"
    folder.mkdir()
    generator = GeneratorJ(**TINY)
    with torch.no_grad():
        for name, tensor in generator.state_dict().items():
            if tensor.is_floating_point() and not name.endswith("running_var"):
                tensor.copy_(0.3 * torch.randn(tensor.shape, generator=torch.Generator().manual_seed(0)))
    torch.save(generator.state_dict(), folder / "ink.pth")
    return folder


def run(argv, capsys):
    code = main([str(a) for a in argv] + ["--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def args_for(out, styles, data="synthetic:motion", limit=3):
    return ["--styles", styles, "--data", data, "--out", out, "--size", SIZE, "--num-frames", FRAMES,
            "--limit", limit]


def test_rendered_dataset_reads_back_with_prestylized_videos(tmp_path, texler_dir, capsys):
    out = tmp_path / "rendered"
    code, stdout, _ = run(args_for(out, f"texler:{texler_dir},astronaut"), capsys)
    assert code == 0 and "3 videos rendered" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["labels.csv", "render.json", "style_1", "style_2"]
    assert sorted(p.name for p in (out / "style_1" / "video_00000").iterdir()) == [
        f"frame_{t:05d}.jpg" for t in range(1, FRAMES + 1)]
    manifest = json.loads((out / "render.json").read_text())
    assert manifest["styles"]["style_1"]["name"] == "ink"
    assert manifest["styles"]["style_1"]["source"] == str((texler_dir / "ink.pth").resolve())
    assert manifest["styles"]["style_2"] == {"name": "astronaut"}

    source = from_spec("synthetic:motion", num_frames=FRAMES, size=SIZE)
    back = from_spec(out, num_frames=FRAMES, size=SIZE)
    assert isinstance(back, PrestylizedVideos) and len(back) == 3 and back.styles == ("style_1", "style_2")
    for index in range(3):
        item, original = back[index], source[index]
        assert item["video_id"] == f"video_{index:05d}" and item["label"] == original["label"]
        for folder, style in (("style_1", "ink"), ("style_2", "astronaut")):
            expected = stylize(original["video"], style)
            assert item["styled"][folder].shape == expected.shape
            assert float((item["styled"][folder] - expected).abs().mean()) < 0.03  # JPEG at quality 95
    pair = ActionPairs(back, seed=0)[0]
    assert set(pair["styles"]) == {"style_1", "style_2"}


def test_rerun_skips_finished_videos_and_redoes_half_written_ones(tmp_path, capsys, monkeypatch):
    out = tmp_path / "rendered"
    assert run(args_for(out, "astronaut,hubble"), capsys)[0] == 0
    finished = out / "style_2" / "video_00002" / "frame_00001.jpg"
    stamp = finished.stat().st_mtime_ns
    code, stdout, _ = run(args_for(out, "astronaut,hubble"), capsys)
    assert code == 0 and "0 videos rendered, 3 already complete" in stdout
    assert finished.stat().st_mtime_ns == stamp

    # an interrupted run: the third frame of a video fails to save
    (out / "style_1" / "video_00001").rename(tmp_path / "gone")
    calls = {"n": 0}
    original_save = Image.Image.save

    def failing_save(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original_save(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        run(args_for(out, "astronaut,hubble"), capsys)
    partial = out / "style_1" / ".video_00001.partial"
    assert partial.is_dir() and len(list(partial.iterdir())) == 2
    assert not (out / "style_1" / "video_00001").exists()
    with pytest.raises(ValueError, match=r"style_1 lacks \['video_00001'\]"):  # the half-written video is unseen
        PrestylizedVideos(out, num_frames=FRAMES, size=SIZE)

    monkeypatch.setattr(Image.Image, "save", original_save)
    code, stdout, _ = run(args_for(out, "astronaut,hubble"), capsys)
    assert code == 0 and "1 videos rendered, 2 already complete" in stdout
    assert not partial.exists() and len(list((out / "style_1" / "video_00001").iterdir())) == FRAMES
    assert finished.stat().st_mtime_ns == stamp
    assert len(PrestylizedVideos(out, num_frames=FRAMES, size=SIZE)) == 3


def test_video_folders_keep_their_names_and_labels(tmp_path, capsys):
    root = tmp_path / "videos"
    rng = np.random.default_rng(0)
    for cls, video in (("jump", "a"), ("jump", "b"), ("run", "c")):
        folder = root / cls / video
        folder.mkdir(parents=True)
        for t in range(1, 7):
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"{t:05d}.jpg")
    out = tmp_path / "rendered"
    code, _, _ = run(args_for(out, "astronaut,rocket", data=root, limit=10), capsys)
    assert code == 0
    assert sorted(p.relative_to(out / "style_1").as_posix() for p in (out / "style_1").glob("*/*")) == [
        "jump/a", "jump/b", "run/c"]
    back = PrestylizedVideos(out, num_frames=FRAMES, size=SIZE)
    assert [(back[i]["video_id"], back[i]["label"]) for i in range(3)] == [("jump/a", 0), ("jump/b", 0), ("run/c", 1)]


class Flaky(Dataset):
    """Video 1 cannot be read; video 2 is handed back in place of video 3 (as a replacing source does)."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        if index == 1:
            raise VideoReadError("unreadable: broken file")
        shown = 2 if index == 3 else index
        return {"video": torch.full((3, 3, 8, 8), 0.1 * (shown + 1)), "index": shown, "label": -1}


def test_unreadable_videos_are_reported_and_written_nowhere(tmp_path):
    out = tmp_path / "rendered"
    summary = render_dataset(Flaky(), ["astronaut", "hubble"], out, progress=False)
    assert summary.rendered == 2 and summary.complete == 0
    assert [i for i, _ in summary.unreadable] == [1, 3] and "broken file" in summary.unreadable[0][1]
    assert sorted(p.name for p in (out / "style_1").iterdir()) == ["video_00000", "video_00002"]
    assert not (out / "labels.csv").exists()


def test_other_settings_never_mix_into_an_earlier_rendering(tmp_path, capsys):
    out = tmp_path / "rendered"
    assert run(args_for(out, "astronaut,hubble", limit=1), capsys)[0] == 0
    for changed, differing in ((["--size", 48], "size"), (["--styles", "hubble,astronaut"], "styles")):
        argv = args_for(out, "astronaut,hubble", limit=1)
        position = argv.index(changed[0])
        argv[position + 1] = changed[1]
        code, _, err = run(argv, capsys)
        assert code == 2 and f"other settings (differing: {differing})" in err and err.count("\n") == 1


def test_a_changed_generator_file_is_another_style(tmp_path, texler_dir, capsys):
    out = tmp_path / "rendered"
    assert run(args_for(out, f"texler:{texler_dir},astronaut", limit=1), capsys)[0] == 0
    torch.save(GeneratorJ(**TINY).state_dict(), texler_dir / "ink.pth")  # retrained: same name, other weights
    code, _, err = run(args_for(out, f"texler:{texler_dir},astronaut", limit=1), capsys)
    assert code == 2 and "differing: styles" in err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--styles": "astronaut,vangogh"}, "unknown style 'vangogh'"),
        ({"--styles": "astronaut"}, "at least 2 distinct styles"),
        ({"--styles": "texler:@empty,astronaut"}, "no .pth generator files"),
        ({"--data": "@missing"}, "is neither a known spec nor an existing folder"),
        ({"--data": "synthetic-vos"}, "not a source of plain videos"),
        ({"--out": "@under_file"}, "afile"),
        ({"--out": "@full"}, "not an empty folder"),
        ({"--num-frames": 1}, "--num-frames must be >= 2"),
        ({"--quality": 0}, "--quality must be in 1..100"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, change, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    places = {"@empty": tmp_path / "empty", "@missing": tmp_path / "missing",
              "@under_file": tmp_path / "afile" / "out", "@full": tmp_path / "full"}
    argv = args_for(tmp_path / "out", "astronaut,hubble")
    for option, value in change.items():
        for placeholder, path in places.items():
            value = str(value).replace(placeholder, str(path))
        argv += [option, value]  # the last occurrence of an option wins
    code, stdout, err = run(argv, capsys)
    assert code == 2 and stdout == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["notes.txt"]
    assert not (tmp_path / "out").exists()


def test_module_entry_point_reports_bad_input(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "lit_stbias.pairs.render", "--styles", "astronaut,hubble", "--data",
         str(tmp_path / "missing"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: data spec") and "missing" in lines[0]


def test_library_form_records_its_settings_and_refuses_others(tmp_path, texler_dir):
    styles = load_styles(f"texler:{texler_dir},astronaut")
    source = from_spec("synthetic:motion", num_frames=FRAMES, size=SIZE)
    out = tmp_path / "rendered"
    summary = render_dataset(source, styles, out, limit=1, progress=False, settings={"size": SIZE})
    assert summary.rendered == 1
    manifest = json.loads((out / "render.json").read_text())
    assert manifest["size"] == SIZE and manifest["quality"] == 95 and len(manifest["styles"]["style_1"]["sha256"]) == 64
    with pytest.raises(ValueError, match="differing: quality"):
        render_dataset(source, styles, out, quality=80, limit=1, progress=False, settings={"size": SIZE})
    assert render_module.style_folders(styles) == {"style_1": "ink", "style_2": "astronaut"}
