"""Clip sampling as the authors' release does it (windows, cycling, uniform subsampling), its bad inputs, the
folder sources that take it, and seek decoding that gives exactly the frames of a full decode."""
import json
import pickle
import warnings

import numpy as np
import pytest
import torch

from lit_stbias.data import (
    ClipSampling,
    PrestylizedVideos,
    SampleVideos,
    VideoFolder,
    from_spec,
    load_annotations,
    read_frames,
    read_video,
    sample_video_paths,
    uniform_subsample,
    write_video,
)
from lit_stbias.data.video_io import decode_frames

#: pytorchvideo's UniformTemporalSubsample (torch.linspace(0, L - 1, T).long()), which the release applies to its
#: windows: recorded from pytorchvideo 0.1.5 as data.
RELEASE_SUBSAMPLE = {
    (64, 8): [0, 9, 18, 27, 36, 45, 54, 63],
    (64, 16): [0, 4, 8, 12, 16, 21, 25, 29, 33, 37, 42, 46, 50, 54, 58, 63],
    (32, 16): [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 31],
    (48, 6): [0, 9, 18, 28, 37, 47],
}

NOTES = {"database": {
    "abc": {"subset": "validation", "annotations": [{"segment": [2.0, 5.0], "label": "x"},
                                                    {"segment": [0.5, 1.0], "label": "x"}]},
    "unlabelled": {"subset": "testing", "annotations": []},
}}


@pytest.fixture(scope="module")
def footage():
    """40 real frames (3, 40, 48, 64) from a bundled sample clip."""
    return read_video(sample_video_paths()["carphone_pristine"], max_frames=40, size=(48, 64))


@pytest.mark.parametrize("length,frames", list(RELEASE_SUBSAMPLE))
def test_uniform_subsample_is_pytorchvideos(length, frames):
    assert uniform_subsample(length, frames) == RELEASE_SUBSAMPLE[length, frames]


def test_center_window_and_cycling_short_videos():
    centre = ClipSampling(8, sampling_rate=8, window="center")
    assert centre.window_length == 64
    assert centre.indices(100) == [18 + k for k in RELEASE_SUBSAMPLE[64, 8]]
    # 40 frames cycle to fill the 64-frame window, as itertools.cycle does in the release
    assert centre.indices(40) == [k % 40 for k in RELEASE_SUBSAMPLE[64, 8]] == [0, 9, 18, 27, 36, 5, 14, 23]
    with pytest.raises(ValueError, match="video 'short.mp4' is too short for a window of 64 frames.*it has 40"):
        ClipSampling(8, 8, "center", cycle=False).indices(40, name="short.mp4")
    assert ClipSampling(8, 8, "center", cycle=False).indices(64) == RELEASE_SUBSAMPLE[64, 8]


def test_random_window_is_seeded_by_seed_and_index_in_any_process():
    sampling = ClipSampling(4, sampling_rate=4, window="random", seed=3)
    starts = [sampling.indices(100, i)[0] for i in range(300)]
    assert min(starts) >= 0 and max(starts) <= 84 and len(set(starts)) > 60  # uniform over [0, 100 - 16]
    for i in (0, 7, 299):
        clip = sampling.indices(100, i)
        assert clip == [clip[0] + k for k in (0, 5, 10, 15)]  # one 16-frame window, subsampled
        assert clip == ClipSampling(4, 4, "random", seed=3).indices(100, i)  # another worker or rank
        assert clip == pickle.loads(pickle.dumps(sampling)).indices(100, i)  # a DataLoader worker's copy
    assert starts != [ClipSampling(4, 4, "random", seed=4).indices(100, i)[0] for i in range(300)]


def test_random_window_of_a_short_video_cycles_from_a_random_start_as_the_release():
    sampling = ClipSampling(8, sampling_rate=8, window="random")
    for length in (40, 64):  # not longer than the window: start in [0, n - 8], then frames start..n-1 repeated
        starts = set()
        for i in range(200):
            clip = sampling.indices(length, i)
            start = clip[0]
            assert 0 <= start <= length - 8
            window = [start + k % (length - start) for k in range(64)]
            assert clip == [window[k] for k in RELEASE_SUBSAMPLE[64, 8]]
            starts.add(start)
        assert len(starts) > 10
    with pytest.raises(ValueError, match="too short"):
        ClipSampling(8, 8, "random", cycle=False).indices(40)
    assert ClipSampling(2, 2, "random").indices(3, 5) == [0, 0]  # under 8 frames: window 0, 1, 2, 0 from the first


def test_first_segment_converts_seconds_with_the_frame_rate(tmp_path):
    notes = tmp_path / "activity_net.json"
    notes.write_text(json.dumps(NOTES))
    sampling = ClipSampling(4, sampling_rate=4, window="first-segment", annotations=notes)
    assert sampling.segment("v_abc") == (2.0, 5.0) == sampling.segment("sub/abc")
    # segment 2-5 s at 10 fps: frames 20..49; the 16-frame window is its first 16 frames
    assert sampling.indices(100, name="v_abc", fps=10) == [20, 25, 30, 35]
    # a segment shorter than the window (30 frames for 40) is cycled within the segment
    longer = ClipSampling(4, sampling_rate=10, window="first-segment", annotations=notes)
    assert longer.indices(100, name="abc", fps=10) == [20 + k % 30 for k in (0, 13, 26, 39)]
    with pytest.raises(ValueError, match="first segment holds 30"):
        ClipSampling(4, 10, "first-segment", annotations=notes, cycle=False).indices(100, name="abc", fps=10)
    # the segment's end is clipped to the video; floor(seconds * fps) as the release (5 fps: floor(2.05*5) = 10)
    assert sampling.indices(25, name="abc", fps=10)[0] == 20
    assert ClipSampling(2, 1, "first-segment", annotations={"a": {"annotations": [{"segment": [2.05, 4]}]}}
                        ).indices(50, name="a", fps=5) == [10, 11]
    frames = ClipSampling(2, 1, "first-segment", annotations=NOTES, fps=5)  # frame folders: the given rate wins
    assert frames.indices(50, name="abc", fps=30) == [10, 11]


def test_bad_sampling_options_are_one_clear_error_each(tmp_path):
    cases = [
        (dict(num_frames=0), "num_frames must be an integer >= 1"),
        (dict(num_frames=8, window="middle", sampling_rate=2), "unknown window 'middle'; choose one of spread, random"),
        (dict(num_frames=8, window="random", sampling_rate=0), "sampling_rate must be an integer >= 1, got 0"),
        (dict(num_frames=8, window="random", sampling_rate=2.5), "sampling_rate must be an integer >= 1"),
        (dict(num_frames=8, window="random"), "needs sampling_rate.*8 for num_frames=8"),
        (dict(num_frames=8, sampling_rate=8), "'spread' .* takes no sampling_rate"),
        (dict(num_frames=8, sampling_rate=8, window="first-segment"), "needs annotations="),
        (dict(num_frames=8, sampling_rate=8, window="random", annotations=NOTES), "only that window reads them"),
        (dict(num_frames=8, sampling_rate=8, window="random", seed=-1), "seed must be an integer >= 0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            ClipSampling(**kwargs)
    bad = tmp_path / "bad.json"
    for text, message in [("{not json", "bad.json is not valid JSON"), ("[1, 2]", "must hold a JSON object"),
                          ('{"database": {}}', "lists no videos"),
                          ('{"v": {"label": "x"}}', "video 'v' has no 'annotations' list"),
                          ('{"v": {"annotations": [{"segment": [5, 2]}]}}', r"video 'v' has first segment \[5, 2\]"),
                          ('{"v": {"annotations": [{"segment": "soon"}]}}', "expected \\[start_s, end_s\\]")]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            load_annotations(bad)
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        ClipSampling(8, 8, "first-segment", annotations=tmp_path / "nowhere.json")
    sampling = ClipSampling(2, 2, "first-segment", annotations=NOTES)
    with pytest.raises(ValueError, match="video 'v_other' has no entry in the annotations.*'other'"):
        sampling.indices(50, name="v_other", fps=5)
    with pytest.raises(ValueError, match="'unlabelled' is listed .* without annotated segments"):
        sampling.indices(50, name="unlabelled", fps=5)
    with pytest.raises(ValueError, match="frame rate of video 'abc' is unknown.*ClipSampling\\(fps=...\\)"):
        sampling.indices(50, name="abc")
    with pytest.raises(ValueError, match="2-5 s, holds no frame of its 2 at 1 fps"):
        sampling.indices(2, name="abc", fps=1)


# --- folder sources ----------------------------------------------------------------------------------------

def test_video_folder_reads_the_frames_its_sampling_names(tmp_path, footage):
    write_video(tmp_path / "v_abc.mp4", footage)
    write_video(tmp_path / "other.mp4", footage[:, :30])
    windows = {
        "center": ClipSampling(4, sampling_rate=4, window="center"),
        "random": ClipSampling(4, sampling_rate=4, window="random", seed=1),
        "spread": ClipSampling(4),
    }
    for sampling in windows.values():
        ds = VideoFolder(tmp_path, size=24, sampling=sampling)
        assert ds.num_frames == 4 and ds.sampling is sampling
        for i, clip in enumerate(ds.clips):
            expected = read_frames(clip.path, sampling.indices(clip.num_frames, i, name=clip.key), size=24)
            assert torch.equal(ds[i]["video"], expected)
    random_a = VideoFolder(tmp_path, size=24, sampling=windows["random"])[0]["video"]
    random_b = VideoFolder(tmp_path, size=24, sampling=ClipSampling(4, 4, "random", seed=1))[0]["video"]
    assert torch.equal(random_a, random_b)
    # ActivityNet-style notes name the video without its v_ prefix; its file gives 25 fps: 0.4-1 s = frames 10..24
    notes = {"abc": {"annotations": [{"segment": [0.4, 1.0]}]}, "other": {"annotations": [{"segment": [0, 1]}]}}
    segment = VideoFolder(tmp_path, size=24, sampling=ClipSampling(2, 5, "first-segment", annotations=notes))
    key = [c.key for c in segment.clips].index("v_abc")
    assert torch.equal(segment[key]["video"], read_frames(tmp_path / "v_abc.mp4", [10, 19], size=24))


def test_video_folder_refuses_samplings_its_videos_cannot_serve(tmp_path, footage):
    write_video(tmp_path / "long.mp4", footage)
    write_video(tmp_path / "short.mp4", footage[:, :10])
    with pytest.raises(ValueError, match="VideoFolder under .*: video 'short' is too short for a window of 16"):
        VideoFolder(tmp_path, sampling=ClipSampling(4, 4, "center", cycle=False))
    with pytest.raises(ValueError, match="video 'long' has no entry in .*notes.json.*and 1 more videos"):
        (tmp_path / "notes.json").write_text(json.dumps(NOTES))
        VideoFolder(tmp_path, sampling=ClipSampling(2, 2, "first-segment", annotations=tmp_path / "notes.json"))
    with pytest.raises(ValueError, match="num_frames=8 contradicts sampling"):
        VideoFolder(tmp_path, num_frames=8, sampling=ClipSampling(4))
    with pytest.raises(ValueError, match="pass stride or sampling, not both"):
        VideoFolder(tmp_path, stride=2, sampling=ClipSampling(4))
    with pytest.raises(ValueError, match="must be a lit_stbias.data.ClipSampling"):
        VideoFolder(tmp_path, sampling="random")
    assert VideoFolder(tmp_path, num_frames=4, sampling=ClipSampling(4), size=16)[0]["video"].shape[1] == 4


def test_prestylized_frame_folders_and_samples_take_a_sampling(tmp_path, footage):
    from PIL import Image

    for k in range(2):
        folder = tmp_path / f"style_{k}" / "v_abc"
        folder.mkdir(parents=True)
        for t in range(footage.shape[1]):
            frame = footage[:, t] if k == 0 else 1 - footage[:, t]
            array = (frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(array).save(folder / f"{t + 1:06d}.png")  # the release's frame names
    notes = {"abc": {"annotations": [{"segment": [2.0, 6.0]}]}}
    sampling = ClipSampling(4, 2, "first-segment", annotations=notes, fps=5)  # frames 10..29, window 10..17
    item = PrestylizedVideos(tmp_path, size=(48, 64), sampling=sampling)[0]
    assert torch.allclose(item["styled"]["style_0"], footage[:, [10, 12, 14, 17]], atol=1 / 255 + 1e-6)
    assert torch.allclose(item["styled"]["style_1"], 1 - item["styled"]["style_0"], atol=1 / 255 + 1e-6)
    with pytest.raises(ValueError, match="frame rate of video 'v_abc' is unknown"):
        PrestylizedVideos(tmp_path, sampling=ClipSampling(4, 2, "first-segment", annotations=notes))
    samples = SampleVideos(size=16, sampling=ClipSampling(3, 2, "center"))
    assert samples[0]["video"].shape == (3, 3, 16, 16) and samples.num_frames == 3


def test_from_spec_passes_the_sampling_on(tmp_path, footage):
    write_video(tmp_path / "a.mp4", footage)
    sampling = ClipSampling(4, 2, "random", seed=5)
    assert from_spec(tmp_path, sampling=sampling, size=16).sampling is sampling
    assert from_spec("samples", sampling=sampling, size=16).sampling is sampling
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from_spec("synthetic:motion", sampling=sampling, num_videos=2)
    assert any("ignores ['sampling']" in str(w.message) for w in caught)


# --- decoding only what a clip needs ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keyframed(tmp_path_factory, footage):
    """The same 40 frames as mp4 (H.264 with B-frames), avi (MPEG-4) and mkv, a keyframe every 8 frames."""
    folder = tmp_path_factory.mktemp("keyframed")
    return {ext: write_video(folder / f"clip.{ext}", footage, codec=codec, keyframe_interval=8)
            for ext, codec in (("mp4", "libx264"), ("avi", "mpeg4"), ("mkv", "libx264"))}


@pytest.mark.parametrize("ext", ["mp4", "avi", "mkv"])
def test_seek_decoding_gives_exactly_the_frames_of_a_full_decode(keyframed, ext):
    path = keyframed[ext]
    rng = np.random.default_rng(0)
    windows = [[30, 31, 39], [9, 17, 25], [38, 12, 12, 20], [6, 7]]
    windows += [ClipSampling(4, 2, "random").indices(40, i) for i in range(3)]
    windows += [sorted(rng.integers(5, 40, size=5).tolist()) for _ in range(3)]
    for indices in windows:
        seeked, full = decode_frames(path, indices), decode_frames(path, indices, seek=False)
        assert set(seeked.frames) == set(full.frames) == set(indices)
        assert all(np.array_equal(seeked.frames[i], full.frames[i]) for i in indices)
        # mp4 and avi index every frame at a constant rate, so the reader seeks; mkv has no such index
        assert seeked.seeked == (ext != "mkv") and full.decoded == max(indices) + 1
        if ext != "mkv" and min(indices) >= 16:
            assert seeked.decoded < full.decoded - 8
    assert torch.equal(read_frames(path, [33, 35, 37], size=16), read_frames(path, [33, 35, 37], size=16, seek=False))


def test_seek_decoding_on_a_bundled_clip_with_b_frames():
    path = sample_video_paths()["bikes"]  # 250 frames, keyframes every ~50, B-frames
    for indices in ([180, 190, 200, 210], [99, 100, 101], [240, 249]):
        seeked, full = decode_frames(path, indices), decode_frames(path, indices, seek=False)
        assert seeked.seeked and seeked.decoded < full.decoded
        assert all(np.array_equal(seeked.frames[i], full.frames[i]) for i in indices)
