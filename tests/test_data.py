"""Synthetic sources: determinism, shapes, labels that mean what they say, exact VOS flow."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lit_stbias.data import MOTIONS, SyntheticVideos, SyntheticVOS, VOSFrames, time_reversed_label
from lit_stbias.data.imagery import SCENES, object_catalogue


def small(task, **kw):
    kw = {"num_videos": 64, "num_frames": 8, "size": 32, **kw}
    return SyntheticVideos(task, **kw)


@pytest.mark.parametrize("task", ["appearance", "motion", "mixed"])
def test_items_have_documented_shapes_and_ranges(task):
    ds = SyntheticVideos(task, num_videos=5, num_frames=6, size=40, camera_pan=True)
    item = ds[4]
    assert set(item) == {"video", "label", "index"}
    assert item["video"].shape == (3, 6, 40, 40) and item["video"].dtype == torch.float32
    assert 0 <= item["video"].min() and item["video"].max() <= 1
    assert 0 <= item["label"] < ds.num_classes and item["index"] == 4
    assert len(ds) == 5 and len(ds.class_names) == ds.num_classes


def test_item_depends_only_on_seed_and_index():
    a, b = small("motion"), small("motion", num_videos=500)  # a longer dataset: same first items
    forward = [a[i]["video"] for i in (7, 3, 7)]
    assert torch.equal(forward[0], forward[2]) and torch.equal(forward[0], b[7]["video"])
    assert not torch.equal(forward[0], forward[1])
    assert not torch.equal(a[7]["video"], small("motion", seed=1)[7]["video"])
    loader = DataLoader(a, batch_size=4, num_workers=2, shuffle=False)
    batch = next(iter(loader))  # generated in worker processes
    assert torch.equal(batch["video"][3], a[3]["video"])
    assert batch["label"].tolist() == [a[i]["label"] for i in range(4)]


@pytest.mark.parametrize("task,classes", [("appearance", 10), ("motion", 8), ("mixed", 4)])
def test_labels_are_balanced_in_every_block(task, classes):
    ds = small(task, num_videos=3 * classes + 2, num_classes=classes)
    labels = [ds.describe(i)["label"] for i in range(len(ds))]
    for start in range(0, 3 * classes, classes):
        assert sorted(labels[start:start + classes]) == list(range(classes))
    assert labels[:classes] != list(range(classes)) or labels[classes:2 * classes] != list(range(classes))


def test_appearance_label_is_the_object_and_motion_is_random():
    ds = small("appearance", num_videos=200)
    info = [ds.describe(i) for i in range(200)]
    assert all(d["object"] == object_catalogue()[d["label"]] for d in info)
    assert ds.class_names[0].startswith("face:") and len(set(ds.class_names)) == 10
    for label in range(3):  # every class shows many motions
        assert len({d["motion"] for d in info if d["label"] == label}) >= 5


def _alpha_centroids(alpha):
    t, h, w = alpha.shape
    ys, xs = np.mgrid[:h, :w]
    mass = alpha.sum(axis=(1, 2))
    return (alpha * xs).sum(axis=(1, 2)) / mass, (alpha * ys).sum(axis=(1, 2)) / mass, mass


def test_motion_labels_mean_what_they_say_in_rendered_frames():
    ds = small("motion", num_videos=48, size=48)
    for i in range(48):
        _, alpha, info = ds.render(i)
        x, y, area = _alpha_centroids(alpha)
        motion, traj = info["motion"], info["trajectory"]
        assert info["label"] == MOTIONS.index(motion)
        if motion in ("right", "left", "up", "down"):
            moved = {"right": x[-1] - x[0], "left": x[0] - x[-1], "up": y[0] - y[-1], "down": y[-1] - y[0]}[motion]
            assert moved > 0.2 * 48
        elif motion in ("towards", "away"):
            assert (area[-1] > 1.5 * area[0]) == (motion == "towards")
            assert (area[0] > 1.5 * area[-1]) == (motion == "away")
        else:  # clockwise on screen = growing angle with y pointing down
            turn = traj.angle[-1] - traj.angle[0]
            assert (turn > 0.9) if motion == "rotate_cw" else (turn < -0.9)
            assert np.ptp(x) < 0.1 * 48 and np.ptp(y) < 0.1 * 48  # turns in place (the shape may be off-centre)


def test_time_reversal_maps_each_label_to_its_pair():
    assert [time_reversed_label(c) for c in range(8)] == [1, 0, 3, 2, 5, 4, 7, 6]
    assert [MOTIONS[time_reversed_label(c)] for c in (0, 2, 4, 6)] == ["left", "down", "away", "rotate_ccw"]
    ds = small("motion", num_videos=40)
    for i in range(40):  # the reversed trajectory has the paired class's sign of motion
        info = ds.describe(i)
        rev = info["trajectory"].reversed()
        pair = MOTIONS[time_reversed_label(info["label"])]
        dx, dy = rev.centre[-1] - rev.centre[0]
        signs = {"right": dx > 0, "left": dx < 0, "down": dy > 0, "up": dy < 0,
                 "towards": rev.scale[-1] > rev.scale[0], "away": rev.scale[-1] < rev.scale[0],
                 "rotate_cw": rev.angle[-1] > rev.angle[0], "rotate_ccw": rev.angle[-1] < rev.angle[0]}
        assert signs[pair]


def test_shuffled_frames_cannot_tell_a_class_from_its_pair():
    """The first frame gives direction away (positions drift); the mean over frames must not."""
    ds = small("motion", num_videos=480, num_classes=2)  # right vs left
    first, mean, labels = [], [], []
    for i in range(len(ds)):
        _, alpha, info = ds.render(i)
        x, _, _ = _alpha_centroids(alpha)
        first.append(x[0])
        mean.append(_alpha_centroids(alpha.mean(0, keepdims=True))[0][0])  # centroid of the mean frame
        labels.append(info["label"])
    first, mean, labels = map(np.asarray, (first, mean, labels))

    def t_stat(v):
        a, b = v[labels == 0], v[labels == 1]
        return abs(a.mean() - b.mean()) / np.sqrt(a.var() / len(a) + b.var() / len(b))

    assert t_stat(first) > 10
    assert t_stat(mean) < 3


def test_mixed_scene_follows_label_most_of_the_time_and_motion_never_does():
    mixed, motion = small("mixed", num_videos=320), small("motion", num_videos=320)
    def tied(ds) -> float:
        return np.mean([ds.describe(i)["scene_index"] == ds.describe(i)["label"] for i in range(len(ds))])

    assert 0.72 < tied(mixed) < 0.9
    assert tied(motion) < 1 / len(SCENES) + 0.06
    assert tied(small("mixed", num_videos=320, scene_bias=0.5)) < 0.62


def test_camera_pan_moves_the_background():
    for pan in (False, True):
        frames, alpha, _ = small("motion", camera_pan=pan).render(0)
        background = (alpha[0] == 0) & (alpha[1] == 0)
        change = np.abs(frames[1] - frames[0])[background].mean()
        assert (change > 1e-3) if pan else (change == 0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown task"):
        SyntheticVideos("colour")
    with pytest.raises(ValueError, match="even number"):
        SyntheticVideos("motion", num_classes=3)
    with pytest.raises(ValueError, match="appearance needs"):
        SyntheticVideos("appearance", num_classes=1000)


# --- VOS ---------------------------------------------------------------------------------------------------

def _landing_rate(masks, flow):
    """Share of object pixels at t that the flow carries onto the object at t+1 (rounded to pixels)."""
    t, h, w = masks.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    hits = total = 0
    for k in range(t - 1):
        sel = masks[k] > 0
        tx = (xs[sel] + flow[0, k][sel]).round().long()
        ty = (ys[sel] + flow[1, k][sel]).round().long()
        inside = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
        hits += (masks[k + 1][ty[inside], tx[inside]] > 0).sum().item()
        total += inside.sum().item()
    return hits / total


@pytest.mark.parametrize("pan", [False, True])
def test_vos_items_and_exact_flow_carry_masks_forward(pan):
    ds = SyntheticVOS(num_videos=12, num_frames=6, size=48, camera_pan=pan)
    rates, zero_rates = [], []
    for i in range(len(ds)):
        item = ds[i]
        assert item["frames"].shape == (3, 6, 48, 48) and item["masks"].shape == (6, 48, 48)
        assert item["flow"].shape == (2, 5, 48, 48) and item["index"] == i
        assert set(item["masks"].unique().tolist()) <= {0.0, 1.0} and item["masks"].sum() > 0
        rates.append(_landing_rate(item["masks"], item["flow"]))
        zero_rates.append(_landing_rate(item["masks"], torch.zeros_like(item["flow"])))
        background = item["masks"][:-1] == 0
        u = item["flow"][0][background]
        assert torch.allclose(u, u[0].expand_as(u), atol=1e-4)  # the scene moves as one (pan or still)
        assert (u.abs().max() > 0.1) == pan
    assert min(rates) > 0.85 and np.mean(rates) > 0.92
    assert np.mean(rates) > np.mean(zero_rates) + 0.1
    assert torch.equal(ds[3]["flow"], SyntheticVOS(num_videos=12, num_frames=6, size=48, camera_pan=pan)[3]["flow"])


def test_center_bias_keeps_objects_near_the_middle():
    def spread(center_bias):
        ds = SyntheticVOS(num_videos=40, num_frames=2, size=48, center_bias=center_bias)
        ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
        dist = ((xs - 23.5) ** 2 + (ys - 23.5) ** 2).sqrt()
        return np.mean([(ds[i]["masks"][0] * dist).sum().item() / ds[i]["masks"][0].sum().item() for i in range(40)])

    assert spread(True) < 0.6 * spread(False)


def test_vos_frames_give_every_frame_but_the_last_with_its_flow():
    videos = SyntheticVOS(num_videos=3, num_frames=5, size=32)
    frames = videos.frames()
    assert isinstance(frames, VOSFrames) and len(frames) == 3 * 4
    item, video = frames[6], videos[1]
    assert item["video_index"] == 1 and item["t"] == 2 and item["index"] == 6 and item["has_mask"]
    assert torch.equal(item["frame"], video["frames"][:, 2]) and torch.equal(item["flow"], video["flow"][:, 2])
    assert torch.equal(item["mask"], video["masks"][2][None])
    with pytest.raises(IndexError):
        frames[12]


def test_all_bundled_imagery_loads_offline():
    from lit_stbias.data import imagery
    from lit_stbias.data.render import scene_canvas

    canvas = scene_canvas(32)
    scenes = imagery.scenes(canvas)
    assert len(scenes) == len(SCENES) and all(min(s.shape[:2]) == canvas and s.shape[2] == 3 for s in scenes)
    assert len({round(float(s.mean()), 4) for s in scenes}) == len(SCENES)  # all different pictures
    for kind in object_catalogue():
        sprite = imagery.make_sprite(kind, 16, np.random.default_rng(0))
        assert sprite.shape == (16, 16, 4) and 0.15 < sprite[..., 3].mean() < 0.9
        assert (sprite[..., :3] <= sprite[..., 3:] + 1e-6).all()  # premultiplied colour
