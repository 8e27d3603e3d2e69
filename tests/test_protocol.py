"""The measurement protocol as the authors' release runs it: per-model clip sampling of real videos, the styles
option (Texler generators applied on the model's device), pooling and taps recorded, the centre-bias map at full
frame size, and the fidelity table of docs/fidelity.md."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import analyze
from lit_stbias.analysis import ClipSettings, ProbeSession
from lit_stbias.analysis.cli import center_bias_parser, measure_parser
from lit_stbias.analysis.clips import release_clip
from lit_stbias.data import from_spec, mask_sum, sample_indices, uniform_subsample
from lit_stbias.models import ClipInput, InputSpec, aliases, build, get_entry, resolve
from lit_stbias.pairs import STYLES, ActionPairs, GeneratorJ, load_styles, pair_loader
from lit_stbias.pairs.datasets import ActionClips, action_views, collate_pairs
from lit_stbias.probe import BiasProbe

ROOT = Path(__file__).resolve().parents[1]

#: The release's window (frames read before uniform subsampling) and (short side, crop) per published model, as
#: its utils.py::get_model, config.py (--n_sample_frames 64, --image_size 256) and dataset_factory/*.py
#: get_data_transforms set them; recorded as data from reading YorkUCVIL/Static-Dynamic-Interpretability.
RELEASE = {
    "c2d_r50": (64, 256, 256), "i3d_r50": (64, 256, 256), "slow_r50": (64, 256, 256),
    "slowfast_r50": (64, 256, 256), "slowfast_16x8_r101_50_50": (64, 256, 256),
    "x3d_xs": (4 * 12, 182, 160), "x3d_s": (13 * 6, 182, 160), "x3d_m": (16 * 5, 256, 224), "x3d_l": (16 * 5, 356, 312),
    "mvit_base_16x4": (16 * 4, 256, 224), "timesformer": (8 * 32, 256, 256),
}


@pytest.fixture(autouse=True)
def registry_restored():
    """Styles loaded in a test stay in it: other tests draw style pairs from every registered style."""
    before = dict(STYLES)
    yield
    STYLES.clear()
    STYLES.update(before)


def published(name: str) -> tuple[str, str]:
    """(canonical name, preset) of a published model: a pytorchvideo name, or a zoo name's full preset."""
    return resolve(name, None if name in aliases() else "full")


def spec_of(name: str) -> InputSpec:
    """The input spec of a published model from its registry preset, without building the network."""
    canonical, preset = published(name)
    kwargs = get_entry(canonical).kwargs(preset)
    return InputSpec(kwargs["num_frames"], kwargs["size"], alpha=kwargs.get("alpha"),
                     sampling_rate=kwargs.get("sampling_rate"))


@pytest.mark.parametrize("name", list(RELEASE))
def test_release_window_and_crop_of_every_published_model(name):
    window, side, crop = RELEASE[name]
    assert release_clip(published(name), spec_of(name)) == (window, side, crop)
    spec = spec_of(name)
    settings = ClipSettings().resolved(spec, vos=False, num_pairs=4, synthetic=False, zoo=published(name))
    # the clip the model takes, cut from that window: sampling_rate x num_frames = the window
    assert settings.num_frames * settings.sampling_rate == window
    assert (settings.short_side, settings.size, settings.window, settings.cycle) == (side, crop, "random", True)


# --- frames read from a real video folder --------------------------------------------------------------------

LONG, SHORT = 300, 40


@pytest.fixture(scope="module")
def numbered(tmp_path_factory):
    """Two frame folders whose frame k is one flat colour that spells k (red k % 256, green k // 256)."""
    root = tmp_path_factory.mktemp("numbered")
    for name, count in (("long", LONG), ("short", SHORT)):
        folder = root / name
        folder.mkdir()
        for k in range(count):
            frame = np.zeros((16, 24, 3), np.uint8)
            frame[..., 0], frame[..., 1] = k % 256, k // 256
            Image.fromarray(frame).save(folder / f"{k + 1:06d}.png")
    return root


def frame_numbers(video: torch.Tensor) -> list[int]:
    """The frame numbers a (3, T, H, W) clip of the numbered folder shows."""
    rgb = (video[:, :, 0, 0] * 255).round().long()
    assert torch.equal(video, video[:, :, :1, :1].expand_as(video)), "frames stay flat"
    return (rgb[0] + 256 * rgb[1]).tolist()


def model_inputs(session: ProbeSession, seed: int) -> list[tuple[int, list[list[int]]]]:
    """(frames in the video, frame numbers of each pathway the model gets) for every item of ``seed``."""
    pairs = session.pairs(seed)
    out = []
    for i in range(len(pairs.source)):
        item = pairs.source[i]
        model_input = pairs.pathways(item["video"])
        pathways = model_input if isinstance(model_input, list) else [model_input]
        out.append((LONG if "long" in item["path"] else SHORT, [frame_numbers(p) for p in pathways]))
    return out


#: (zoo name, tiny model with the published clip, the release's window, frames of each pathway)
MODELS = [
    ("slow_r50", lambda: build("slow"), 64, [8]),
    ("slowfast_r50", lambda: build("slowfast"), 64, [8, 32]),
    ("x3d_s", lambda: build("x3d", num_frames=13, sampling_rate=6), 78, [13]),
    ("mvit_base_16x4", lambda: build("mvit", num_frames=16, sampling_rate=4), 64, [16]),
    ("timesformer", lambda: build("timesformer", num_frames=8, sampling_rate=32), 256, [8]),
]


@pytest.mark.parametrize("name,make,window,frames", MODELS, ids=[m[0] for m in MODELS])
def test_a_video_folder_gives_each_model_the_release_frames(numbered, name, make, window, frames):
    """The release reads a window of `window` frames from a random start (videos not longer than the window:
    from a start in [0, n - 8], cycling to the end), then takes each pathway's frames uniformly from it."""
    model = make()
    session = ProbeSession(model, str(numbered), num_pairs=2, clip=ClipSettings(size=16),
                           describe={"model": published(name)[0], "preset": "tiny"}, taps=[next(iter(model.taps))])
    assert session.clip.window == "random" and session.clip.sampling_rate * session.clip.num_frames == window
    starts = set()
    for seed in (0, 1, 2):
        for length, pathways in model_inputs(session, seed):
            assert [len(p) for p in pathways] == frames
            start = pathways[-1][0]
            if length > window:
                assert 0 <= start <= length - window
                expected = [[start + k for k in uniform_subsample(window, t)] for t in frames]
            else:
                assert 0 <= start <= length - 8
                cycled = [start + k % (length - start) for k in range(window)]
                expected = [[cycled[k] for k in uniform_subsample(window, t)] for t in frames]
            assert pathways == expected
            starts.add((length, start))
    assert len(starts) > 2, "each seed draws its own windows"
    # the data seed fixes the windows across measurement seeds
    fixed = ProbeSession(model, str(numbered), num_pairs=2, clip=ClipSettings(size=16, data_seed=5),
                         describe={"model": published(name)[0], "preset": "tiny"}, taps=[next(iter(model.taps))])
    assert model_inputs(fixed, 0) == model_inputs(fixed, 3)


def test_centre_and_first_segment_windows_and_the_crop(numbered, tmp_path):
    model = build("slow")  # 8 frames
    center = ProbeSession(model, str(numbered), num_pairs=2, describe={"model": "slow"},
                          clip=ClipSettings(size=16, window="center", sampling_rate=2), taps=["stage5"])
    assert model_inputs(center, 0) == [(LONG, [[(LONG - 16) // 2 + k for k in uniform_subsample(16, 8)]]),
                                      (SHORT, [[(SHORT - 16) // 2 + k for k in uniform_subsample(16, 8)]])]
    notes = tmp_path / "notes.json"  # ActivityNet layout: the release's 5 fps frames, first segment 10-30 s
    notes.write_text(json.dumps({"database": {"long": {"annotations": [{"segment": [10.0, 30.0]}]},
                                              "short": {"annotations": [{"segment": [1.0, 3.0]}]}}}))
    segment = ProbeSession(model, str(numbered), num_pairs=2, describe={"model": "slow"},
                           clip=ClipSettings(size=16, annotations=str(notes), fps=5), taps=["stage5"])
    assert segment.clip.window == "first-segment" and segment.clip.sampling_rate == 8
    cycled = [5 + k % 10 for k in range(64)]  # frames 5..14 of the short video's segment, cycled to 64
    assert model_inputs(segment, 0) == [(LONG, [[50 + k for k in uniform_subsample(64, 8)]]),
                                       (SHORT, [[cycled[k] for k in uniform_subsample(64, 8)]])]
    # short side 24, crop 16: the source resizes to 24 and the pair rule cuts the centre 16 x 16 of it
    cropped = ProbeSession(model, str(numbered), num_pairs=2, describe={"model": "slow"},
                           clip=ClipSettings(size=16, short_side=24), taps=["stage5"])
    pairs = cropped.pairs(0)
    raw = pairs.source[0]["video"]
    assert raw.shape[-2:] == (24, 24) and pairs.pathways(raw).shape[-2:] == (16, 16)
    assert torch.equal(pairs.pathways(raw), raw[..., 4:20, 4:20])


def test_video_folder_settings_are_refused_where_they_would_not_be_used(numbered, capsys):
    model = build("slow")
    with pytest.raises(ValueError, match="--sampling-rate, --window: synthetic sources draw whole clips"):
        ProbeSession(model, "synthetic:motion", num_pairs=2, clip=ClipSettings(window="center", sampling_rate=2))
    with pytest.raises(ValueError, match="--window spread has none"):
        ProbeSession(model, str(numbered), num_pairs=2, clip=ClipSettings(window="spread", sampling_rate=2))
    with pytest.raises(ValueError, match="--short-side 8 is smaller than --size 16"):
        ProbeSession(model, str(numbered), num_pairs=2, clip=ClipSettings(size=16, short_side=8))
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        ProbeSession(model, str(numbered), num_pairs=2, clip=ClipSettings(annotations="missing.json"))
    args = ["--model", "fusionseg", "--data", "synthetic-vos", "--window", "center", "--out", "unused"]
    assert analyze.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "VOS sources are read frame by frame" in err


def test_spread_keeps_the_whole_video_spread(numbered):
    session = ProbeSession(build("slow"), str(numbered), num_pairs=2, describe={"model": "slow"},
                           clip=ClipSettings(size=16, window="spread"), taps=["stage5"])
    assert session.clip.sampling_rate is None
    assert model_inputs(session, 0) == [(LONG, [sample_indices(LONG, 8)]), (SHORT, [sample_indices(SHORT, 8)])]


# --- synthetic sources are measured as before -----------------------------------------------------------------

@pytest.mark.parametrize("model_name,stride", [("slowfast", 1), ("slow", 2)])
def test_synthetic_measurement_is_the_plain_whole_clip_pipeline(model_name, stride):
    """The session's synthetic numbers are those of the pipeline it had before the release options: the
    synthetic source's whole clips, ActionPairs with ClipInput, BiasProbe. Equal to the last bit."""
    model = build(model_name)
    taps = list(model.taps)[-1:]
    session = ProbeSession(model, "synthetic:motion", num_pairs=3, taps=taps, batch_size=2,
                           clip=ClipSettings(temporal_stride=stride, num_frames=16 if stride > 1 else None))
    doc = session.run(seeds=[1], progress=False)
    frames = 16 if stride > 1 else model.input_spec.num_frames
    source = from_spec("synthetic:motion", num_frames=frames, size=64, num_videos=3, seed=1)
    probe = BiasProbe(model, taps)
    for batch in pair_loader(ActionPairs(source, seed=1, pathways=ClipInput(model.input_spec, stride)), 2):
        probe.update(batch)
    for tap, result in probe.compute().items():
        assert doc.tap(tap, seed=1) == result.to_dict(thresholds=session.thresholds, include_units=True)
    assert session.clip.window is None and session.clip.sampling_rate is None and session.clip.short_side is None


# --- styles ---------------------------------------------------------------------------------------------------

def texler_folder(tmp_path: Path, count: int = 2) -> Path:
    """Tiny GeneratorJ files with random weights and batch-norm statistics, saved as state dicts."""
    folder = tmp_path / "texler"
    folder.mkdir()
    for i in range(count):
        generator = GeneratorJ(resnet_blocks=1, filters=(4, 6, 8, 8, 6, 5))
        g = torch.Generator().manual_seed(i)
        with torch.no_grad():
            for key, tensor in generator.state_dict().items():
                if key.endswith("running_var"):
                    tensor.copy_(0.5 + torch.rand(tensor.shape, generator=g))
                elif tensor.is_floating_point():
                    tensor.copy_(0.3 * torch.randn(tensor.shape, generator=g))
        torch.save(generator.state_dict(), folder / f"gen{i}.pth")
    return folder


def clips_source(count: int, frames: int = 8) -> list[dict]:
    return [{"video": torch.rand(3, frames, 12, 12, generator=torch.Generator().manual_seed(i)), "label": i}
            for i in range(count)]


@pytest.mark.parametrize("pathways", [None, ClipInput(InputSpec(8, 12, alpha=4))], ids=["one", "slowfast"])
def test_views_made_on_the_device_are_the_pair_datasets(tmp_path, pathways):
    """ActionClips + action_views draw what ActionPairs draws; built-in styles give the same views bit for bit,
    a generator's to float rounding (it runs over batches of another size)."""
    names = load_styles(f"texler:{texler_folder(tmp_path)},astronaut,hubble")
    source = clips_source(5)
    for styles, exact in ((["astronaut", "hubble", "rocket"], True), (names, False)):
        reference = ActionPairs(source, styles=styles, seed=3, pathways=pathways)
        raw = ActionClips(source, styles=styles, seed=3, pathways=pathways)
        batch = action_views(collate_pairs([raw[i] for i in range(5)]), "cpu")
        expected = collate_pairs([reference[i] for i in range(5)])
        assert batch["styles"] == expected["styles"] and torch.equal(batch["index"], expected["index"])
        assert torch.equal(batch["label"], expected["label"])
        for key in ("anchor", "dynamic", "static"):
            got, want = batch[key], expected[key]
            for g, w in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
                if exact:
                    assert torch.equal(g, w), key
                else:
                    torch.testing.assert_close(g, w, atol=1e-5, rtol=0)
    drawn = {s for pair in batch["styles"] for s in pair}
    assert drawn <= set(names) and drawn & {"gen0", "gen1"}


def test_the_session_stylizes_network_styles_on_the_model_device(tmp_path):
    folder = texler_folder(tmp_path)
    model = build("slow")
    clip = ClipSettings(styles=f"texler:{folder},rocket")
    session = ProbeSession(model, "synthetic:motion", num_pairs=3, clip=clip, taps=["stage5"])
    assert isinstance(session.pairs(0), ActionClips) and "clip" in session.pairs(0)[0]
    doc = session.run(seeds=[0], progress=False)
    assert doc.clip.styles == f"texler:{folder},rocket" and doc.tap("stage5")["num_pairs"] == {"dynamic": 3,
                                                                                                "static": 3}
    # the same measurement with the views made in the dataset (ActionPairs) gives the same numbers
    same = ProbeSession(model, "synthetic:motion", num_pairs=3, clip=clip, taps=["stage5"],
                        pairs=lambda items, seed: ActionPairs(items, styles=session.styles(seed), seed=seed,
                                                              pathways=ClipInput(model.input_spec)))
    other = same.run(seeds=[0], progress=False)
    for key in ("dynamic", "static"):
        assert doc.tap("stage5")["layer_scores"][key] == pytest.approx(other.tap("stage5")["layer_scores"][key],
                                                                        abs=1e-4)


def test_the_styles_option(tmp_path, capsys):
    out = tmp_path / "out"
    common = ["--model", "slow", "--data", "synthetic:motion", "--num-pairs", "3", "--layers", "stage5",
              "--no-progress"]
    assert analyze.main([*common, "--styles", "hubble,rocket", "--out", str(out)]) == 0
    assert json.loads((out / "bias.json").read_text())["clip"]["styles"] == "hubble,rocket"
    session = ProbeSession(build("slow"), "synthetic:motion", num_pairs=4, clip=ClipSettings(styles="hubble,rocket"))
    assert {tuple(sorted(session.pairs(0)[i]["styles"])) for i in range(4)} == {("hubble", "rocket")}
    capsys.readouterr()
    for styles, message in (("hubble,nope", "unknown style 'nope'"), ("hubble", "at least 2 distinct styles"),
                            (f"texler:{tmp_path / 'none'}", "texler style folder not found")):
        assert analyze.main([*common, "--styles", styles, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "bad").exists()


def test_styles_of_a_prestylized_folder_are_its_own(tmp_path):
    for k in range(3):
        for v in range(2):
            folder = tmp_path / f"style_{k}" / f"video{v}"
            folder.mkdir(parents=True)
            for t in range(12):
                Image.fromarray(np.full((16, 16, 3), 20 * k + t, np.uint8)).save(folder / f"{t + 1:06d}.png")
    session = ProbeSession(build("slow"), str(tmp_path), num_pairs=2, describe={"model": "slow"},
                           clip=ClipSettings(size=16, styles="style_0,style_2"), taps=["stage5"])
    assert {tuple(sorted(session.pairs(0)[i]["styles"])) for i in range(2)} == {("style_0", "style_2")}
    bad = ProbeSession(build("slow"), str(tmp_path), num_pairs=2, describe={"model": "slow"},
                       clip=ClipSettings(size=16, styles="style_0,astronaut"), taps=["stage5"])
    with pytest.raises(ValueError, match="pre-stylized with styles style_0, style_1, style_2.*unknown: astronaut"):
        bad.pairs(0)


# --- pooling, taps and intervals reach the document -------------------------------------------------------------

def test_pooling_taps_and_interval_are_recorded(tmp_path):
    out = tmp_path / "tsf"
    assert analyze.main(["--model", "timesformer", "--data", "synthetic:motion", "--num-pairs", "3", "--seeds", "0,1",
                         "--layers", "block3", "--pool-tokens", "patches", "--interval", "student-t",
                         "--no-progress", "--out", str(out)]) == 0
    doc = json.loads((out / "bias.json").read_text())
    assert doc["tap_modules"] == {"block3": "blocks.3 (mean of the patch tokens: the first 1 left out)"}
    assert doc["interval"]["method"] == "student-t"
    default = ProbeSession(build("timesformer"), "synthetic:motion", num_pairs=2, taps=["block3"])
    assert default.tap_modules == {"block3": "blocks.3 (mean of all tokens)"}
    fused = ProbeSession(build("slowfast"), "synthetic:motion", num_pairs=2, taps=["slow.stage2.fused", "slow.stage2"])
    assert fused.tap_modules == {"slow.stage2.fused": "blocks.1.multipathway_fusion[0]",
                                 "slow.stage2": "blocks.1.multipathway_blocks.0"}


def test_pytorchvideo_names_bring_their_preset(numbered):
    from lit_stbias.analysis import load_model

    loaded = load_model("x3d_xs", preset=None)
    session = ProbeSession(loaded.model, str(numbered), num_pairs=2, describe=loaded.describe, taps=["stage5"])
    assert session.describe["preset"] == "xs"
    assert (session.clip.short_side, session.clip.size, session.clip.num_frames, session.clip.sampling_rate) == (
        182, 160, 4, 12)


# --- the fidelity table -------------------------------------------------------------------------------------------

CHOICES = ("pairs per factor", "pair construction", "permutation", "sampling", "crop", "normalisation", "pooling",
           "taps", "estimator", "dead units", "ties", "intervals", "styles", "flow", "VOS frames")


def test_every_option_the_fidelity_table_names_exists():
    """Every choice has a row, and every analyze.py option the lit_stbias columns name exists (the release's
    column names the release's own options, such as --n_sample_frames)."""
    text = (ROOT / "docs" / "fidelity.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == ["choice", "the release", "lit_stbias default", "option", "why lit_stbias differs"]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    assert all(len(row) == len(header) for row in rows)
    for choice in CHOICES:
        assert any(choice.lower() in row[0].lower() for row in rows), f"no row for {choice!r}"
    ours = "\n".join(cell for row in rows for cell in row[2:])
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", ours))
    assert len(options) >= 15 and "--window" in options and "--styles" in options
    known = measure_parser().format_help() + center_bias_parser().format_help()
    missing = sorted(o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", known))
    assert not missing, f"options in docs/fidelity.md that analyze.py does not have: {missing}"


# --- centre bias at full frame size -----------------------------------------------------------------------------

def test_center_bias_sums_the_masks_at_full_frame_size(tmp_path, capsys):
    from test_davis import FRAMES, SEQUENCES, H, W, mask_of, write_release

    davis = tmp_path / "DAVIS"
    write_release(davis, stylized_root=tmp_path / "styles")  # no style folders next to it: DavisLike
    expected = sum((mask_of(s, t) > 0).astype(float) for s in range(len(SEQUENCES)) for t in range(FRAMES))
    out = tmp_path / "cb"
    assert analyze.main(["center-bias", "--data", str(davis), "--no-progress", "--out", str(out)]) == 0
    total = np.load(out / "mask_sum.npy")
    assert total.shape == (H, W) and np.array_equal(total, expected)
    summary = json.loads((out / "center_bias.json").read_text())
    assert (summary["height"], summary["width"], summary["frames"]) == (H, W, len(SEQUENCES) * FRAMES)
    image = np.asarray(Image.open(out / "mask_sum.png"))
    assert image.shape == (H, W) and image.max() == 255 and image.min() == 0  # Fig. 7: least black, most white
    assert np.array_equal(image == 255, expected == expected.max())
    mean = np.asarray(Image.open(out / "mask_mean.png"))
    assert mean.shape == (H, W) and np.array_equal(mean, np.round(expected / summary["frames"] * 255))
    assert summary["coverage"] == pytest.approx(expected.mean() / summary["frames"])
    assert (out / "center_bias.png").stat().st_size > 0
    # Stylized DAVIS: the split's masks, at full size, once whatever the repetitions
    release = tmp_path / "release"
    write_release(release)
    assert analyze.main(["center-bias", "--data", str(release), "--no-progress", "--out", str(tmp_path / "s")]) == 0
    assert np.array_equal(np.load(tmp_path / "s" / "mask_sum.npy"), mask_sum(from_spec(release), progress=False).total)
    # --resize: every mask to one size first; synthetic data at its own side
    assert analyze.main(["center-bias", "--data", str(davis), "--resize", "24,40", "--no-progress",
                         "--out", str(tmp_path / "r")]) == 0
    assert np.load(tmp_path / "r" / "mask_sum.npy").shape == (24, 40)
    assert analyze.main(["center-bias", "--data", "synthetic-vos", "--num-videos", "2", "--size", "40",
                         "--no-progress", "--out", str(tmp_path / "syn")]) == 0
    assert np.load(tmp_path / "syn" / "mask_sum.npy").shape == (40, 40)
    capsys.readouterr()
    assert analyze.main(["center-bias", "--data", str(davis), "--size", "64", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "summed at its own frame size" in err and not (tmp_path / "x").exists()
