"""Real-data sources on tiny files written on the fly: video folders, frame folders, DAVIS-like and pre-stylized
layouts, bad files, wrong layouts and the --data spec parser."""
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from lit_stbias.data import (
    DavisLike,
    PrestylizedVideos,
    SampleVideos,
    SyntheticVideos,
    SyntheticVOS,
    UnreadableVideo,
    VideoFolder,
    from_spec,
    read_flow_file,
    read_frames,
    read_video,
    sample_indices,
    sample_video_paths,
    write_video,
)
from lit_stbias.data.davis import FLO_MAGIC
from lit_stbias.data.video_io import SAMPLE_NAMES


@pytest.fixture(scope="module")
def footage():
    """12 real frames (3, 12, 72, 88) from a bundled sample clip."""
    return read_video(sample_video_paths()["carphone_pristine"], max_frames=12, size=(72, 88))


def write_frames(folder, video, ext="jpg"):
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(video.shape[1]):
        array = (video[:, t].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).save(folder / f"frame_{t + 1}.{ext}")  # frame_10 must sort after frame_9
    return folder


def test_sampling_spreads_uniformly_and_loops_short_videos():
    assert sample_indices(12, 4) == [1, 4, 7, 10]
    assert sample_indices(3, 7) == [0, 1, 2, 0, 1, 2, 0]
    assert sample_indices(20, 3, stride=4) == [5, 9, 13]
    assert sample_indices(5, 4, stride=2) == [0, 2, 4, 1]


def test_video_folder_reads_files_and_frame_folders_with_csv_labels(tmp_path, footage):
    write_video(tmp_path / "a.mp4", footage)
    (tmp_path / "sub").mkdir()
    write_video(tmp_path / "sub" / "b.avi", footage[:, :9], codec="mpeg4")
    write_frames(tmp_path / "c", footage[:, :11], ext="png")
    (tmp_path / "labels.csv").write_text("video,label\na.mp4,walk\nsub/b,run\nc,walk\n")
    ds = VideoFolder(tmp_path, num_frames=4, size=32)
    assert ds.classes == ("run", "walk") and len(ds) == 3
    items = {ds[i]["path"].split("/")[-1]: ds[i] for i in range(3)}
    assert [items[k]["label"] for k in ("a.mp4", "b.avi", "c")] == [1, 0, 1]
    assert all(item["video"].shape == (3, 4, 32, 32) for item in items.values())
    # uniform sampling: frames 1, 4, 7, 10 of the 12, resized then centre-cropped
    expected = read_frames(tmp_path / "a.mp4", [1, 4, 7, 10], size=32)
    assert torch.allclose(items["a.mp4"]["video"], expected)
    # headers that promise more frames than exist: indices are re-spread over the 12 real ones
    overstated = read_frames(tmp_path / "a.mp4", [0, 18, 35], size=32)  # -> frames 0, 6, 11
    assert torch.equal(overstated, read_frames(tmp_path / "a.mp4", [0, 6, 11], size=32))
    # the frame folder (lossless png) holds exactly the footage, in natural order (frame_10 after frame_9)
    direct = torch.nn.functional.interpolate(footage[:, [1, 4, 6, 9]].transpose(0, 1), size=(32, 39), mode="area")
    assert (items["c"]["video"] - direct.transpose(0, 1)[..., 3:35]).abs().mean() < 0.02
    looped = VideoFolder(tmp_path, num_frames=14, size=16)[2]["video"]  # 11 frames looped to 14
    assert torch.equal(looped[:, 0], looped[:, 11]) and not torch.equal(looped[:, 0], looped[:, 1])


def test_labels_from_integers_given_classes_or_class_folders(tmp_path, footage):
    for name in ("run/x", "walk/y", "walk/z"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write_video(tmp_path / f"{name}.mp4", footage[:, :4])
    by_folder = VideoFolder(tmp_path, num_frames=2, size=16)
    assert by_folder.classes == ("run", "walk") and [c.label for c in by_folder.clips] == [0, 1, 1]
    csv = tmp_path / "ints.csv"
    csv.write_text("id,class\nx,3\ny,0\n")
    ints = VideoFolder(tmp_path, labels_csv=csv, num_frames=2, size=16)
    assert ints.classes == ("0", "1", "2", "3") and [c.label for c in ints.clips] == [3, 0] and len(ints) == 2
    csv.write_text("video,label\nx,walk\ny,jump\n")
    fixed = VideoFolder(tmp_path, labels_csv=csv, classes=("jump", "run", "walk"), num_frames=2, size=16)
    assert [c.label for c in fixed.clips] == [2, 0] and fixed.num_classes == 3
    with pytest.raises(ValueError, match="not among the given classes"):
        VideoFolder(tmp_path, labels_csv=csv, classes=("run",), num_frames=2, size=16)


def test_bad_videos_are_skipped_counted_and_warned_once(tmp_path, footage):
    write_video(tmp_path / "good.mp4", footage[:, :6])
    write_frames(tmp_path / "good_frames", footage[:, :6])
    (tmp_path / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "empty.mp4").write_bytes(b"")
    write_video(tmp_path / "short.mp4", footage[:, :2])
    (tmp_path / "no_frames").mkdir()
    (tmp_path / "labels.csv").write_text(
        "video,label\ngood,0\ngood_frames,1\ncorrupt,0\nempty,1\nshort,0\nno_frames,1\nnever_downloaded,0\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = VideoFolder(tmp_path, num_frames=4, size=16, min_frames=4)
    assert len(caught) == 1 and "skipped 5 of 7" in str(caught[0].message)
    reasons = {entry["path"].split("/")[-1]: entry["reason"].split(":")[0] for entry in ds.skipped}
    assert reasons == {"corrupt.mp4": "unreadable", "empty.mp4": "empty", "short.mp4": "too short",
                       "no_frames": "empty", "never_downloaded": "missing"}
    assert len(ds) == 2 and ds[1]["video"].shape == (3, 4, 16, 16)


def test_a_frame_that_fails_to_decode_later_raises_and_is_never_replaced(tmp_path, footage):
    write_frames(tmp_path / "a", footage[:, :4])
    write_frames(tmp_path / "b", footage[:, 4:8])
    (tmp_path / "a" / "frame_2.jpg").write_bytes(b"not a jpeg")
    ds = VideoFolder(tmp_path, num_frames=4, size=16)  # the probe only counts frames: both pass
    assert len(ds) == 2 and not ds.skipped
    with pytest.raises(UnreadableVideo, match="cannot read .*a: unreadable") as err:
        ds[0]
    assert err.value.path == str(tmp_path / "a") and "cannot decode image frame_2.jpg" in err.value.reason
    assert ds[1]["path"].endswith("b") and ds[1]["index"] == 1 and len(ds) == 2 and not ds.skipped


def faststart_copy(src, dst):
    """``src`` remuxed with its index (moov) before the frames, as streaming downloads are written."""
    import av

    with av.open(str(src)) as source, av.open(str(dst), "w", options={"movflags": "faststart"}) as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    return dst


def rot_bytes(path, frame):
    """Overwrite the first bytes of one frame's data in the middle of the file (its NAL length): bit rot the
    decoder notices."""
    import av

    with av.open(str(path)) as container:
        position = container.streams.video[0].index_entries[frame].pos
    data = bytearray(path.read_bytes())
    data[position:position + 4] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))


@pytest.fixture()
def damaged_folder(tmp_path, footage):
    """Two good videos and four damaged ones: a partial mp4 (index at the end, lost), a partial mp4 written for
    streaming (index first), a partial avi, and a bit-rotted mp4."""
    root = tmp_path / "videos"
    root.mkdir()
    write_video(root / "good_a.mp4", footage)
    write_video(root / "good_b.mp4", 1 - footage)
    for name, cut in (("partial.mp4", 0.6), ("partial_streamed.mp4", 0.6)):
        full = write_video(tmp_path / name, footage)
        if name == "partial_streamed.mp4":
            full = faststart_copy(full, tmp_path / f"fs_{name}")
        data = full.read_bytes()
        (root / name).write_bytes(data[: int(len(data) * cut)])
    avi = write_video(tmp_path / "partial.avi", footage, codec="mpeg4").read_bytes()
    (root / "partial_avi.avi").write_bytes(avi[: int(len(avi) * 0.8)])
    write_video(root / "rotten.mp4", footage)
    rot_bytes(root / "rotten.mp4", frame=7)
    return root


def test_partial_and_bit_rotted_videos_are_skipped_never_replaced(damaged_folder):
    with pytest.warns(UserWarning, match="skipped 2 of 6"):
        ds = VideoFolder(damaged_folder, num_frames=4, size=16)
    # dropped when indexing: the partial mp4s (index lost, or listing frames past the end of the file)
    reasons = {entry["path"].split("/")[-1]: entry["reason"] for entry in ds.skipped}
    assert set(reasons) == {"partial.mp4", "partial_streamed.mp4"} and "truncated" in reasons["partial_streamed.mp4"]
    assert all(set(entry) == {"path", "reason"} and entry["reason"].startswith("unreadable") for entry in ds.skipped)
    # pass the header probe but fail to decode: raised, naming the file, never another video instead
    assert len(ds) == 4
    names = [clip.path.name for clip in ds.clips]
    assert names == ["good_a.mp4", "good_b.mp4", "partial_avi.avi", "rotten.mp4"]
    for index, clip in enumerate(ds.clips):
        if clip.path.name.startswith("good"):
            item = ds[index]
            assert item["path"] == str(clip.path) and item["index"] == index
            assert torch.equal(item["video"], read_frames(clip.path, sample_indices(12, 4), size=16))
            continue
        with pytest.raises(UnreadableVideo) as err:
            ds[index]
        assert err.value.path == str(clip.path) and clip.path.name in str(err.value)
        assert err.value.reason.startswith("unreadable") and str(clip.path) not in err.value.reason
        assert "never replaced" in str(err.value) and "\n" not in str(err.value)
    assert len(ds) == 4 and len(ds.skipped) == 2  # reading changes neither


def test_unprobed_partial_downloads_raise_when_read(damaged_folder):
    ds = VideoFolder(damaged_folder, num_frames=4, size=16, probe="none")
    assert len(ds) == 6 and not ds.skipped
    outcome = {}
    for index, clip in enumerate(ds.clips):
        try:
            outcome[clip.path.name] = ds[index]["path"] == str(clip.path)
        except UnreadableVideo as err:
            outcome[clip.path.name] = err.reason
    assert outcome["good_a.mp4"] is True and outcome["good_b.mp4"] is True
    assert "truncated" in outcome["partial_streamed.mp4"]
    assert all(isinstance(outcome[n], str) for n in ("partial.mp4", "partial_avi.avi", "rotten.mp4"))


def test_unreadable_video_survives_pickling_and_worker_reraise():
    import pickle

    err = UnreadableVideo("/data/v.mp4", "unreadable: cannot decode the file")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.reason, str(copy)) == (err.path, err.reason, str(err))
    rebuilt = UnreadableVideo("Caught UnreadableVideo in DataLoader worker process 0. ...")  # torch's re-raise
    assert isinstance(rebuilt, UnreadableVideo) and rebuilt.path is None and "worker" in rebuilt.reason


def test_wrong_layouts_say_what_was_expected(tmp_path, footage):
    with pytest.raises(FileNotFoundError, match="expected a folder of videos"):
        VideoFolder(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("no videos here")
    with pytest.raises(FileNotFoundError, match="no videos under"):
        VideoFolder(tmp_path)
    write_video(tmp_path / "a.mp4", footage[:, :3])
    (tmp_path / "labels.csv").write_text("clip;action\na;walk\n")
    with pytest.raises(ValueError, match="video,label"):
        VideoFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="labels CSV not found"):
        VideoFolder(tmp_path, labels_csv=tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        DavisLike(tmp_path)
    with pytest.raises(FileNotFoundError, match="style_0"):
        PrestylizedVideos(tmp_path)


def test_sample_videos_are_a_tiny_labelled_source():
    ds = SampleVideos(num_frames=3, size=24)
    assert len(ds) == 3 and ds.classes == SAMPLE_NAMES and not ds.skipped
    item = ds[2]
    assert item["label"] == 2 and item["video"].shape == (3, 3, 24, 24)
    assert item["path"].endswith("carphone_pristine.mp4")


# --- DAVIS-like --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vos_video():
    return SyntheticVOS(num_videos=1, num_frames=5, size=48)[0]


def write_davis(root, vos, level="480p", flow_ext=None):
    images = root / "JPEGImages" / level if level else root / "JPEGImages"
    notes = root / "Annotations" / level if level else root / "Annotations"
    write_frames(images / "bear", vos["frames"], ext="png")
    (notes / "bear").mkdir(parents=True)
    for t, mask in enumerate(vos["masks"]):
        Image.fromarray(mask.numpy().astype(np.uint8) * 2).save(notes / "bear" / f"frame_{t + 1}.png")  # id 2 > 0
    write_frames(images / "lonely", vos["frames"][:, :1])  # one frame: no flow possible
    if flow_ext:
        (root / "Flow" / "bear").mkdir(parents=True)
        for t in range(vos["flow"].shape[1]):
            flow = vos["flow"][:, t].permute(1, 2, 0).numpy()  # (H, W, 2)
            path = root / "Flow" / "bear" / f"frame_{t + 1}{flow_ext}"
            if flow_ext == ".npy":
                np.save(path, flow)
            else:
                with open(path, "wb") as handle:
                    np.array([FLO_MAGIC], np.float32).tofile(handle)
                    np.array([flow.shape[1], flow.shape[0]], np.int32).tofile(handle)
                    flow.astype(np.float32).tofile(handle)


def test_davis_like_computes_and_caches_farneback_flow(tmp_path, vos_video):
    write_davis(tmp_path, vos_video)
    with pytest.warns(UserWarning, match="skipped 1 of 2"):
        ds = DavisLike(tmp_path, size=None)
    assert ds.videos == ["bear"] and len(ds) == 4 and ds.skipped[0]["reason"].startswith("too short")
    item = ds[1]
    assert item["frame"].shape == (3, 48, 48) and item["flow"].shape == (2, 48, 48) and item["has_mask"]
    assert torch.equal(item["mask"][0], vos_video["masks"][1])
    assert torch.allclose(item["frame"], vos_video["frames"][:, 1], atol=1 / 255)
    cached = sorted((tmp_path / ".flow_cache").rglob("*.npy"))
    assert [p.stem for p in cached] == ["frame_2"]
    assert torch.allclose(ds[1]["flow"], item["flow"], atol=1e-2)  # now read from the cache (float16)
    # the estimate follows the exact flow far better than no motion does, where the object is
    exact, obj = vos_video["flow"][:, 1], vos_video["masks"][1] > 0
    error = (item["flow"] - exact).norm(dim=0)[obj].mean()
    assert error < 0.7 * exact.norm(dim=0)[obj].mean()


@pytest.mark.parametrize("flow_ext", [".npy", ".flo"])
def test_davis_like_reads_given_flow_and_scales_it_with_the_frame(tmp_path, vos_video, flow_ext):
    write_davis(tmp_path, vos_video, level=None, flow_ext=flow_ext)
    with pytest.warns(UserWarning):
        ds = DavisLike(tmp_path, size=24, videos=["bear", "lonely"])
    item = ds[2]
    half = torch.nn.functional.avg_pool2d(vos_video["flow"][:, 2], 2) / 2
    assert item["frame"].shape == (3, 24, 24) and torch.allclose(item["flow"], half, atol=1e-4)
    assert not (tmp_path / ".flow_cache").exists()
    assert torch.allclose(torch.from_numpy(read_flow_file(tmp_path / "Flow" / "bear" / f"frame_1{flow_ext}")),
                          vos_video["flow"][:, 0])


def test_davis_like_frame_that_fails_to_decode_raises_naming_it(tmp_path, vos_video):
    write_davis(tmp_path, vos_video, flow_ext=".npy")
    with pytest.warns(UserWarning, match="skipped 1 of 2"):
        ds = DavisLike(tmp_path, size=None)
    broken = ds.frame_paths[0][2]
    broken.write_bytes(b"not a png")
    with pytest.raises(UnreadableVideo) as err:
        ds[2]
    assert err.value.path == str(broken) and len(ds) == 4
    assert ds[3]["t"] == 3 and ds[1]["t"] == 1  # its neighbours still read, each as itself


# --- pre-stylized ------------------------------------------------------------------------------------------

def test_prestylized_videos_pair_every_style_of_a_video(tmp_path, footage):
    for k, style in enumerate((lambda v: v, lambda v: 1 - v)):
        for name, video in (("v1", footage[:, :6]), ("v2", footage[:, 6:])):
            write_frames(tmp_path / f"style_{k}" / name, style(video), ext="png")
    (tmp_path / "labels.csv").write_text("video,label\nv1,swim\nv2,jump\n")
    ds = PrestylizedVideos(tmp_path, num_frames=3, size=(72, 88))
    item = ds[0]
    assert ds.styles == ("style_0", "style_1") and item["video_id"] == "v1" and item["label"] == 1
    assert set(item["styled"]) == {"style_0", "style_1"} and item["styled"]["style_0"].shape == (3, 3, 72, 88)
    assert torch.allclose(item["styled"]["style_1"], 1 - item["styled"]["style_0"], atol=1 / 255 + 1e-6)
    assert torch.allclose(item["styled"]["style_0"], footage[:, [1, 3, 5]], atol=1 / 255 + 1e-6)


def test_prestylized_styles_must_hold_the_same_videos_and_bad_ones_are_skipped(tmp_path, footage):
    for k in range(2):
        for name in ("v1", "v2"):
            write_frames(tmp_path / f"style_{k}" / name, footage[:, :3])
    write_frames(tmp_path / "style_0" / "v3", footage[:, :3])
    with pytest.raises(ValueError, match=r"style_1 lacks \['v3'\]"):
        PrestylizedVideos(tmp_path)
    write_frames(tmp_path / "style_1" / "v3", footage[:, :1])
    with pytest.warns(UserWarning, match="skipped 1 of 3"):
        ds = PrestylizedVideos(tmp_path, num_frames=2, size=16, min_frames=2)
    assert ds.video_ids == ["v1", "v2"] and "style_1/v3" in ds.skipped[0]["path"]
    assert "label" not in ds[0]


# --- --data specs ------------------------------------------------------------------------------------------

def test_from_spec_builds_every_source(tmp_path, footage, vos_video):
    assert isinstance(from_spec("synthetic:appearance", num_videos=4), SyntheticVideos)
    mixed = from_spec("synthetic:mixed", num_videos=4, num_frames=4, size=32)
    assert mixed.task == "mixed" and mixed[0]["video"].shape == (3, 4, 32, 32)
    assert from_spec("synthetic-vos").center_bias and from_spec("synthetic-vos:centred").center_bias
    assert not from_spec("synthetic-vos:diffuse", num_videos=3).center_bias
    assert isinstance(from_spec("samples", num_frames=2, size=16), SampleVideos)
    write_davis(tmp_path / "davis", vos_video)
    write_frames(tmp_path / "styled" / "style_0" / "v", footage[:, :3])
    (tmp_path / "clips").mkdir()
    write_video(tmp_path / "clips" / "a.mp4", footage[:, :3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert isinstance(from_spec(str(tmp_path / "davis"), size=32, num_frames=8), DavisLike)
    assert any("ignores ['num_frames']" in str(w.message) for w in caught)
    styled = from_spec(tmp_path / "styled", num_frames=2, size=16)
    assert isinstance(styled, PrestylizedVideos) and styled.kind == "action"  # an action source, pre-stylized
    assert isinstance(from_spec(tmp_path / "clips", num_frames=2, size=16), VideoFolder)
    with pytest.warns(UserWarning, match="too short"):
        vos_kinds = {from_spec("synthetic-vos").kind, DavisLike(tmp_path / "davis", size=16).kind}
    assert all(kind.startswith("vos") for kind in vos_kinds) and mixed.kind == "action"


@pytest.mark.parametrize("spec", ["synthetic:colour", "synthetic-vos:sideways", "kinetics400", "/no/such/folder"])
def test_unknown_specs_list_the_accepted_forms(spec):
    with pytest.raises(ValueError, match="accepted data specs") as err:
        from_spec(spec)
    assert "synthetic:motion" in str(err.value) and "synthetic-vos:diffuse" in str(err.value)
