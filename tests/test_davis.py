"""Stylized DAVIS as the release lays it out, on a tiny fake tree written on the fly (2 sequences x 4 frames at
48 x 80, the release's four style folders, flow images colour-coded from known flow), and the sum of a VOS
dataset's masks at its own frame size (the paper's Fig. 7)."""
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from lit_stbias.data import (
    STYLIZED_DAVIS_STYLES,
    DavisLike,
    StylizedDavis,
    SyntheticVOS,
    UnreadableVideo,
    from_spec,
    mask_sum,
)
from lit_stbias.pairs import flow_to_rgb

H, W = 48, 80
SEQUENCES = ("bear", "camel")
FRAMES = 4


def known_flow(s: int, t: int) -> torch.Tensor:
    """A (2, H, W) flow field that differs for every sequence s and frame t."""
    y, x = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    return torch.stack([(x - W / 2) * 0.1 * (t + 1), (y - H / 2) * 0.05 * (s + 1) - t])


def flow_png(flow: torch.Tensor) -> np.ndarray:
    return (flow_to_rgb(flow).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def mask_of(s: int, t: int, shape=(H, W)) -> np.ndarray:
    """A 0/255 DAVIS-2016 mask: a box that moves with t."""
    mask = np.zeros(shape, np.uint8)
    mask[10 + 2 * t: 30 + 2 * t, 20 + 10 * s + 3 * t: 50 + 10 * s + 3 * t] = 255
    return mask


def write_release(root, stylized_root=None, flow_root=None):
    """DAVIS 2016 (split with one line per frame, masks, original frames) at ``root``, the style folders at
    ``stylized_root`` and the flow images at ``flow_root`` (both default ``root``). Returns what was written."""
    stylized_root, flow_root = stylized_root or root, flow_root or root
    rng = np.random.default_rng(0)
    lines, written = [], {}
    for s, seq in enumerate(SEQUENCES):
        for t in range(FRAMES):
            stem = f"{t:05d}"
            lines.append(f"/JPEGImages/480p/{seq}/{stem}.jpg /Annotations/480p/{seq}/{stem}.png")
            frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            for folder, array in [(root / "JPEGImages" / "480p", frame)] + [
                    (stylized_root / "JPEGImages" / style, np.roll(frame, 7 * k, axis=1) // (k + 1))
                    for k, style in enumerate(STYLIZED_DAVIS_STYLES)]:
                (folder / seq).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(folder / seq / f"{stem}.jpg")
            (root / "Annotations" / "480p" / seq).mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask_of(s, t)).save(root / "Annotations" / "480p" / seq / f"{stem}.png")
            if t < FRAMES - 1:  # forward flow t -> t+1, named like frame t
                written[seq, t, "fw"] = flow_png(known_flow(s, t))
                (flow_root / "FlowImages_gap1" / seq).mkdir(parents=True, exist_ok=True)
                Image.fromarray(written[seq, t, "fw"]).save(flow_root / "FlowImages_gap1" / seq / f"{stem}.png")
            if t > 0:  # backward flow t -> t-1, named like frame t
                written[seq, t, "bw"] = flow_png(-known_flow(s, t - 1))
                (flow_root / "FlowImages_gap-1" / seq).mkdir(parents=True, exist_ok=True)
                Image.fromarray(written[seq, t, "bw"]).save(flow_root / "FlowImages_gap-1" / seq / f"{stem}.png")
    (root / "ImageSets" / "480p").mkdir(parents=True)
    (root / "ImageSets" / "480p" / "val.txt").write_text("\n".join(lines) + "\n")
    return written


def decoded(path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1).float() / 255


@pytest.fixture
def release(tmp_path):
    root = tmp_path / "DAVIS"
    return root, write_release(root)


def test_items_carry_every_style_the_published_flow_image_and_the_mask_at_full_size(release):
    root, written = release
    ds = StylizedDavis(root)
    assert ds.styles == STYLIZED_DAVIS_STYLES and ds.reps == 5 and ds.frame_size == (H, W)
    assert ds.num_videos == 2 and ds.frames_per_rep == 2 * (FRAMES - 1) and len(ds) == 5 * 6
    # every frame but the last of each sequence (the last has no forward flow), in order, in every repetition
    assert [(ds[k]["video_id"], ds[k]["t"]) for k in range(6)] == [(s, t) for s in SEQUENCES for t in range(3)]
    item = ds[4]
    assert (item["video_id"], item["t"], item["frame_name"], item["rep"], item["index"]) == ("camel", 1, "00001", 0, 4)
    assert set(item) == {"styled", "flow_image", "mask", "has_mask", "index", "rep", "video_index", "video_id", "t",
                         "frame_name"}
    for style in STYLIZED_DAVIS_STYLES:
        assert torch.equal(item["styled"][style], decoded(root / "JPEGImages" / style / "camel" / "00001.jpg"))
    assert not torch.equal(item["styled"]["Lynx"], item["styled"]["Zuzka1"])
    # the flow image is the PNG's RGB as written from the known flow, never re-coded
    expected_flow = torch.from_numpy(written["camel", 1, "fw"]).permute(2, 0, 1).float() / 255
    assert item["flow_image"].shape == (3, H, W) and torch.equal(item["flow_image"], expected_flow)
    assert torch.equal(item["mask"][0], torch.from_numpy(mask_of(1, 1) > 0).float()) and item["has_mask"]
    # repetition 3 holds the same frame at index 3 * 6 + 4
    again = ds[3 * 6 + 4]
    assert again["rep"] == 3 and again["t"] == 1 and torch.equal(again["styled"]["Zuzka2"], item["styled"]["Zuzka2"])
    assert ds.frame_indices(1, rep=2) == [12 + 3, 12 + 4, 12 + 5]
    with pytest.raises(IndexError):
        ds[len(ds)]
    # full rectangular frames batch as they are
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["styled"]["Maruska640"].shape == (4, 3, H, W) and batch["flow_image"].shape == (4, 3, H, W)
    assert batch["video_id"] == ["bear", "bear", "bear", "camel"]


def test_backward_flow_items_for_rtnet_carry_both_flows_and_the_release_partner(release):
    root, written = release
    ds = StylizedDavis(root, backward_flow=True, reps=400, seed=3)
    # only the frames with both flows: all but the first and the last of each sequence
    assert ds.frames_per_rep == 4 and [(ds[k]["video_id"], ds[k]["t"]) for k in range(4)] == [
        ("bear", 1), ("bear", 2), ("camel", 1), ("camel", 2)]
    item = ds[3]
    assert torch.equal(item["flow_image"], torch.from_numpy(written["camel", 2, "fw"]).permute(2, 0, 1) / 255)
    assert torch.equal(item["flow_image_bw"], torch.from_numpy(written["camel", 2, "bw"]).permute(2, 0, 1) / 255)
    offsets = {}
    for k in range(len(ds)):
        partner = ds.partner(k)
        rep, j = divmod(k, 4)
        video = j // 2
        offsets.setdefault((rep, video), set()).add(partner["other"])
        # same repetition, same sequence, ``other`` usable frames along, wrapping around
        assert divmod(partner["partner_index"], 4)[0] == rep and (partner["partner_index"] % 4) // 2 == video
        assert partner["partner_index"] % 2 == (j % 2 + partner["other"]) % 2
        assert partner["partner_t"] == 1 + (j % 2 + partner["other"]) % 2
    assert all(len(drawn) == 1 for drawn in offsets.values())  # one draw per sequence and repetition
    drawn = [next(iter(d)) for d in offsets.values()]
    assert min(drawn) == -10 and max(drawn) == 9 and len(set(drawn)) == 20  # randint(-10, 10): -10..9
    assert {k: item[k] for k in ("other", "partner_index", "partner_t")} == ds.partner(3)
    # a pure function of (seed, rep, sequence): the same again, another seed draws otherwise
    first = [ds.partner(k)["other"] for k in range(0, 80, 2)]
    same, other_seed = (StylizedDavis(root, backward_flow=True, reps=400, seed=seed) for seed in (3, 4))
    assert [same.partner(k)["other"] for k in range(0, 80, 2)] == first
    assert [other_seed.partner(k)["other"] for k in range(0, 80, 2)] != first
    assert "flow_image_bw" not in StylizedDavis(root)[0]


def test_originals_and_styles_in_two_folders_with_the_flow_images_in_either(tmp_path):
    write_release(tmp_path / "DAVIS", tmp_path / "Stylized_DAVIS", flow_root=tmp_path / "Stylized_DAVIS")
    write_release(tmp_path / "one")
    split = StylizedDavis(tmp_path / "DAVIS", stylized_root=tmp_path / "Stylized_DAVIS", reps=1)
    joined = StylizedDavis(tmp_path / "one", reps=1)
    assert len(split) == len(joined) == 6
    for a, b in zip(split[5]["styled"].values(), joined[5]["styled"].values()):
        assert torch.equal(a, b)
    assert torch.equal(split[5]["flow_image"], joined[5]["flow_image"])
    with pytest.raises(FileNotFoundError, match="JPEGImages"):  # the styles are not in the DAVIS folder
        StylizedDavis(tmp_path / "DAVIS")


def test_sizes_are_height_and_width_never_a_square_crop(release):
    root, _ = release
    full = StylizedDavis(root, reps=1)[0]
    short = StylizedDavis(root, size=24, reps=1)[0]
    exact = StylizedDavis(root, size=(30, 50), reps=1)[0]
    assert short["styled"]["Lynx"].shape == (3, 24, 40) and short["flow_image"].shape == (3, 24, 40)
    assert exact["styled"]["Lynx"].shape == (3, 30, 50) and exact["mask"].shape == (1, 30, 50)
    assert set(exact["mask"].unique().tolist()) == {0.0, 1.0}
    # the whole picture, resized: the mean colour barely moves (a crop would cut the sides)
    assert torch.allclose(short["styled"]["Lynx"].mean((1, 2)), full["styled"]["Lynx"].mean((1, 2)), atol=0.01)
    for bad in (0, (48,), (48, 0), "full", True):
        with pytest.raises(ValueError, match="size must be"):
            StylizedDavis(root, size=bad)


def test_the_split_file_chooses_the_sequences(release):
    root, _ = release
    sets = root / "ImageSets" / "480p"
    (sets / "bears.txt").write_text("".join(f"/JPEGImages/480p/bear/{t:05d}.jpg\n" for t in range(FRAMES)))
    assert StylizedDavis(root, split="bears", reps=1).videos == ["bear"]
    (sets / "names.txt").write_text("camel\n")  # a line per sequence: every frame of JPEGImages/480p/camel
    names = StylizedDavis(root, split=sets / "names.txt", reps=1)
    assert names.videos == ["camel"] and [names[k]["t"] for k in range(len(names))] == [0, 1, 2]
    with pytest.raises(FileNotFoundError, match="split 'test'"):
        StylizedDavis(root, split="test")


def test_from_spec_tells_stylized_davis_from_a_davis_like_folder(tmp_path):
    write_release(tmp_path / "one")
    write_release(tmp_path / "DAVIS", tmp_path / "Stylized_DAVIS")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every keyword is one StylizedDavis takes
        stylized = from_spec(tmp_path / "one", size=None, reps=2, seed=1)
    assert isinstance(stylized, StylizedDavis) and len(stylized) == 12 and stylized.kind == "stylized-vos"
    two = from_spec(str(tmp_path / "DAVIS"), stylized_root=tmp_path / "Stylized_DAVIS", size=None)
    assert isinstance(two, StylizedDavis) and two.stylized_root == tmp_path / "Stylized_DAVIS"
    # the DAVIS folder alone (no style folders) is still read by DavisLike
    plain = from_spec(tmp_path / "DAVIS", size=16)
    assert isinstance(plain, DavisLike) and plain.videos == list(SEQUENCES) and plain[0]["frame"].shape == (3, 16, 16)
    # the Stylized DAVIS folder alone lacks DAVIS's split: the error says so
    with pytest.raises(FileNotFoundError, match="ImageSets"):
        from_spec(tmp_path / "Stylized_DAVIS")


def _remove(path):
    shutil.rmtree(path) if path.is_dir() else path.unlink()


@pytest.mark.parametrize("broken, kwargs, error, named", [
    ("ImageSets", {}, FileNotFoundError, "ImageSets"),
    ("JPEGImages", {}, FileNotFoundError, "JPEGImages"),
    ("JPEGImages/Zuzka2", {}, FileNotFoundError, "JPEGImages/Zuzka2"),
    ("JPEGImages/Lynx/camel", {}, FileNotFoundError, "JPEGImages/Lynx/camel"),
    ("Annotations", {}, FileNotFoundError, "Annotations"),
    ("FlowImages_gap1", {}, FileNotFoundError, "FlowImages_gap1"),
    ("FlowImages_gap1/bear/00001.png", {}, FileNotFoundError, "FlowImages_gap1/bear/00001.png"),
    ("FlowImages_gap-1/camel/00002.png", {"backward_flow": True}, FileNotFoundError,
     "FlowImages_gap-1/camel/00002.png"),
    ("JPEGImages/Maruska640/bear/00002.jpg", {}, FileNotFoundError, "JPEGImages/Maruska640/bear/00002.jpg"),
    ("Annotations/480p/camel/00000.png", {}, FileNotFoundError, "Annotations/480p/camel/00000.png"),
])
def test_missing_parts_of_the_release_are_one_error_naming_them(release, broken, kwargs, error, named):
    root, _ = release
    _remove(root / broken)
    with pytest.raises(error, match=named) as err:
        StylizedDavis(root, **kwargs)
    assert len(str(err.value).splitlines()) == 1 or "expected DAVIS 2016" in str(err.value)


def test_files_that_only_rtnet_needs_are_only_required_with_backward_flow(release):
    root, _ = release
    _remove(root / "FlowImages_gap-1")
    assert len(StylizedDavis(root, reps=1)) == 6  # FusionSeg / MATNet items need no backward flow
    with pytest.raises(FileNotFoundError, match="FlowImages_gap-1"):
        StylizedDavis(root, backward_flow=True)
    assert not (root / "FlowImages_gap1" / "camel" / "00003.png").exists()  # the last frame has no forward flow


def test_every_missing_file_is_counted_in_the_one_error(release):
    root, _ = release
    for name in ("bear/00000.png", "camel/00001.png", "camel/00002.png", "bear/00002.png"):
        _remove(root / "FlowImages_gap1" / name)
    with pytest.raises(FileNotFoundError, match=r"missing 4 of the files .*bear/00000.png.*\(and 1 more\)"):
        StylizedDavis(root)


def test_a_split_naming_a_missing_sequence_names_it(release):
    root, _ = release
    with open(root / "ImageSets" / "480p" / "val.txt", "a") as split:
        split.write("/JPEGImages/480p/zebra/00000.jpg /Annotations/480p/zebra/00000.png\n")
    with pytest.raises(FileNotFoundError, match=r"names sequence 'zebra', but .*zebra does not exist"):
        StylizedDavis(root)
    (root / "ImageSets" / "480p" / "names.txt").write_text("bear\nzebra\n")
    with pytest.raises(FileNotFoundError, match=r"names sequence 'zebra'"):
        StylizedDavis(root, split="names")


def test_a_mask_or_a_style_of_another_size_is_an_error_naming_it(release):
    root, _ = release
    mask = root / "Annotations" / "480p" / "bear" / "00001.png"
    Image.fromarray(mask_of(0, 1, shape=(40, W))).save(mask)
    with pytest.raises(ValueError, match=f"{mask}.*40x80.*mask"):
        StylizedDavis(root)
    Image.fromarray(mask_of(0, 1)).save(mask)
    styled = root / "JPEGImages" / "Zuzka1" / "camel" / "00002.jpg"
    Image.new("RGB", (W, H + 2)).save(styled)
    with pytest.raises(ValueError, match=f"{styled} is 50x80"):
        StylizedDavis(root)


def test_frames_of_different_sizes_cannot_share_a_batch_unless_resized(release):
    root, _ = release
    for style in STYLIZED_DAVIS_STYLES:  # one frame of camel is larger, in every style, with its mask
        Image.new("RGB", (90, 60), (200, 10, 10)).save(root / "JPEGImages" / style / "camel" / "00001.jpg")
    Image.fromarray(mask_of(1, 1, shape=(60, 90))).save(root / "Annotations" / "480p" / "camel" / "00001.png")
    with pytest.raises(ValueError, match=r"camel/00001.jpg is read at 60x90.*size=\(H, W\)"):
        StylizedDavis(root)
    with pytest.raises(ValueError, match="different sizes"):
        StylizedDavis(root, size=24)  # a short side keeps each aspect ratio: still two sizes
    resized = StylizedDavis(root, size=(H, W), reps=1)
    batch = next(iter(DataLoader(resized, batch_size=6)))
    assert batch["styled"]["Lynx"].shape == (6, 3, H, W) and batch["mask"].shape == (6, 1, H, W)


def test_bad_options_are_one_error(release):
    root, _ = release
    for kwargs, match in [({"reps": 0}, "reps"), ({"reps": 2.5}, "reps"), ({"styles": "Lynx"}, "styles"),
                          ({"styles": ("Lynx", "Lynx")}, "styles"), ({"styles": ("Lynx", "mask")}, "styles")]:
        with pytest.raises(ValueError, match=match):
            StylizedDavis(root, **kwargs)
    with pytest.raises(FileNotFoundError, match="JPEGImages/Picasso not found"):
        StylizedDavis(root, styles=("Lynx", "Picasso"))
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        StylizedDavis(root / "nowhere")
    two = StylizedDavis(root, styles=("Lynx", "Zuzka2"), reps=1)
    assert set(two[0]["styled"]) == {"Lynx", "Zuzka2"}


def test_unreadable_files_drop_their_frame_or_raise_naming_it_never_replaced(release):
    root, _ = release
    junk = root / "JPEGImages" / "Zuzka1" / "bear" / "00001.jpg"
    junk.write_bytes(b"not an image")  # no header: left out when indexing
    with pytest.warns(UserWarning, match="left out 1 .*1 unreadable"):
        ds = StylizedDavis(root, reps=2)
    assert ds.frames_per_rep == 5 and ds.skipped[0]["path"] == str(junk)
    assert [(ds[k]["video_id"], ds[k]["t"]) for k in range(5)] == [
        ("bear", 0), ("bear", 2), ("camel", 0), ("camel", 1), ("camel", 2)]
    cut = root / "FlowImages_gap1" / "camel" / "00001.png"
    cut.write_bytes(cut.read_bytes()[:60])  # the header survives, the pixels do not: raises when read
    with pytest.warns(UserWarning):
        ds = StylizedDavis(root, reps=2)
    with pytest.raises(UnreadableVideo) as err:
        ds[3]
    assert err.value.path == str(cut) and ds[4]["t"] == 2 and ds[2]["t"] == 0


# --- the sum of the masks (Fig. 7) ---------------------------------------------------------------------------

def test_mask_sum_adds_every_annotated_frame_at_full_size(release, capsys):
    root, _ = release
    expected = sum((mask_of(s, t) > 0).astype(np.float64) for s in range(2) for t in range(FRAMES))
    summed = mask_sum(StylizedDavis(root, size=24, reps=3))  # the items' size and reps change nothing
    assert "mask sum" in capsys.readouterr().err  # the progress bar
    assert summed.shape == (H, W) and summed.frames == 2 * FRAMES  # the last frames too, each once
    assert np.array_equal(summed.total, expected) and np.allclose(summed.mean, expected / 8)
    # the DAVIS-like reading of the same folder gives the same map, whatever size its items have
    davis = mask_sum(DavisLike(root, size=16), progress=False)
    assert davis.frames == 8 and np.array_equal(davis.total, expected)
    # the synthetic VOS source: every frame of every video, at its size
    synthetic = SyntheticVOS(num_videos=3, num_frames=4, size=32)
    by_hand = sum(synthetic[i]["masks"].sum(0).numpy() for i in range(3))
    summed = mask_sum(synthetic.frames(), progress=False)
    assert summed.frames == 12 and np.array_equal(summed.total, by_hand)


def test_mask_sum_needs_one_size_or_resizes_to_the_one_given(release):
    root, _ = release
    ds = StylizedDavis(root, reps=1)
    odd = root / "Annotations" / "480p" / "camel" / "00003.png"  # the last frame: no item, but a mask
    Image.fromarray(mask_of(1, 3).repeat(2, axis=0).repeat(2, axis=1)).save(odd)  # the same mask, twice as large
    with pytest.raises(ValueError, match=f"{odd} is 96x160"):
        mask_sum(ds, progress=False)
    resized = mask_sum(ds, size=(H, W), progress=False)  # nearest neighbour: an exact 2x downscale here
    assert resized.frames == 8 and resized.total.max() <= 8
    assert np.array_equal(resized.total, sum((mask_of(s, t) > 0).astype(float) for s in range(2) for t in range(4)))
    with pytest.raises(ValueError, match="takes a DavisLike"):
        mask_sum(from_spec("synthetic:motion", num_videos=2))
